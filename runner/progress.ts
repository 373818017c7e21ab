/**
 * Terminal progress: for a session of runs, one status a second; for `wami-bench fleet`, one a
 * second. On a terminal the status is rewritten in place and wrapped to its width on at most two
 * lines, the most important fields first (phase, sockets, time left, p99s, errors), dropping what
 * does not fit; elsewhere (a pipe, a CI log) every field is written as one plain line. Pure
 * formatting is separate from writing.
 */
import type { FleetProgress } from '../clients/coordinator.js';
import type { TimePoint } from '../model/fleet-result.js';
import { fmtCompact, fmtMs } from '../report/format.js';

export interface ProgressState {
  label: string;
  phase: string;
  point: TimePoint | null;
  /** Seconds left in this run, and in the whole plan. */
  runLeftSec: number;
  totalLeftSec: number;
}

export function fmtDuration(sec: number): string {
  const s = Math.max(0, Math.round(sec));
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** Separator between fields. */
const SEP = '  ';

const width = (s: string): number => [...s].length;
const cut = (s: string, w: number): string => (width(s) <= w ? s : `${[...s].slice(0, Math.max(0, w - 1)).join('')}…`);

/**
 * Fields joined by two spaces on at most `maxLines` lines of `cols` columns, in order (most
 * important first): a field that does not fit on the current line starts the next one, and once
 * the last line is full, what does not fit is left out (a later, shorter field may still fit). A
 * field wider than a line is cut with "…". Every field must be one line.
 */
export function wrapFields(fields: readonly string[], cols: number, maxLines = 2): string[] {
  const w = Math.max(1, Math.floor(cols));
  const lines: string[] = [];
  let cur = '';
  for (const raw of fields) {
    if (raw === '') continue;
    const f = cut(raw, w);
    const next = cur === '' ? f : `${cur}${SEP}${f}`;
    if (width(next) <= w) cur = next;
    else if (lines.length + 1 < maxLines) {
      lines.push(cur);
      cur = f;
    }
  }
  if (cur !== '') lines.push(cur);
  return lines;
}

/** The fields on one line of `cols` columns (see wrapFields). */
export function fitFields(fields: readonly string[], cols: number): string {
  return wrapFields(fields, cols, 1)[0] ?? '';
}

/** A session's status, as fields in order of importance. */
export function progressFields(p: ProgressState): string[] {
  const t = p.point;
  const head = `[${p.label}] ${p.phase}`;
  const left = `left ${fmtDuration(p.runLeftSec)} (all ${fmtDuration(p.totalLeftSec)})`;
  if (!t) return [head, left];
  return [
    head,
    `sockets ${t.openSockets}`,
    left,
    `p99 fanout ${fmtMs(t.fanoutP99Ms)} ack ${fmtMs(t.ackP99Ms)}`,
    `err ${t.errors}/s`,
    `lag ${fmtMs(t.lagMsP99)}`,
    `sent ${t.sent}/s acked ${t.acked}/s delivered ${t.delivered}/s`,
  ];
}

/** The whole status line, every field (what a log gets). */
export function formatProgress(p: ProgressState): string {
  return progressFields(p).join(SEP);
}

/** The fleet's one line a second, as fields in order of importance. */
export function fleetProgressFields(p: FleetProgress): string[] {
  return [
    `fleet ${p.phase} ${p.elapsedSec}s`,
    `open ${p.openSockets}/${p.connections}`,
    `left ${fmtDuration(p.timeLeftSec)}`,
    `p99 fanout ${fmtMs(p.fanoutP99Ms)} ack ${fmtMs(p.ackP99Ms)}`,
    `errors ${p.errors}`,
    `lag p99 ${fmtMs(p.lagMsP99)}`,
    `sent ${fmtCompact(p.sent)}/s acked ${fmtCompact(p.acked)}/s delivered ${fmtCompact(p.delivered)}/s`,
    `cpu ${Math.round(p.fleetCpuPct)}%`,
  ];
}

/** The fleet's whole line (stderr of `wami-bench fleet` when it is not a terminal). */
export function formatFleetProgress(p: FleetProgress): string {
  return fleetProgressFields(p).join(SEP);
}

/** Where progress goes: a stream that may be a terminal (`isTTY`, `columns`). */
export interface ProgressOut {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export class Progress {
  private lastPlain = -Infinity;
  /** Lines of the status now on the terminal (0: none). */
  private live = 0;
  /**
   * @param plainEveryMs when `out` is not a terminal, at most one status line per this many ms
   *   (default 5000: a session's log stays short; the fleet uses 0, a line a second).
   * @param now the clock, for tests.
   */
  constructor(
    private readonly out: ProgressOut = process.stderr,
    private readonly quiet = false,
    private readonly plainEveryMs = 5000,
    private readonly now: () => number = Date.now,
  ) {}

  /** A status; on a terminal it replaces the previous one, wrapped to its width on at most two lines. */
  line(fields: readonly string[]): void {
    if (this.quiet) return;
    if (this.out.isTTY) {
      const lines = wrapFields(fields, (this.out.columns ?? 80) - 1, 2);
      this.out.write(`${this.erase()}${lines.join('\n')}`);
      this.live = lines.length;
    } else if (this.now() - this.lastPlain >= this.plainEveryMs) {
      this.lastPlain = this.now();
      this.out.write(`${fields.filter((f) => f !== '').join(SEP)}\n`);
    }
  }

  /** A session's status line. */
  status(p: ProgressState): void {
    this.line(progressFields(p));
  }

  /** A line that stays (clears a live status line first). */
  log(msg: string): void {
    if (this.quiet) return;
    this.clear();
    this.out.write(`${msg}\n`);
  }

  /** Removes the live status, if any. */
  clear(): void {
    if (this.live > 0) {
      this.out.write(this.erase());
      this.live = 0;
    }
  }

  /** Clears the status lines on the terminal, leaving the cursor at the start of the first. */
  private erase(): string {
    return `\r\x1b[2K${'\x1b[1A\r\x1b[2K'.repeat(Math.max(0, this.live - 1))}`;
  }
}
