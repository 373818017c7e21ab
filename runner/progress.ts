/**
 * Terminal progress: for a session of runs, one status line a second (rewritten in place on a TTY,
 * every 5 s otherwise) and plain lines for events; for `wami-bench fleet`, one line a second.
 * Pure formatting is separate from writing.
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

export function formatProgress(p: ProgressState): string {
  const t = p.point;
  const body = t
    ? `sockets ${t.openSockets}  sent ${t.sent}/s  acked ${t.acked}/s  delivered ${t.delivered}/s  err ${t.errors}/s  ` +
      `p99 ack ${fmtMs(t.ackP99Ms)} fanout ${fmtMs(t.fanoutP99Ms)}  lag ${fmtMs(t.lagMsP99)}`
    : '';
  return `[${p.label}] ${p.phase.padEnd(7)} ${body}  left ${fmtDuration(p.runLeftSec)} (all ${fmtDuration(p.totalLeftSec)})`;
}

/** The fleet's one line a second (stderr of `wami-bench fleet`). */
export function formatFleetProgress(p: FleetProgress): string {
  return (
    `fleet ${p.phase.padEnd(7)} ${String(p.elapsedSec).padStart(4)}s  open ${p.openSockets}/${p.connections}  ` +
    `sent ${fmtCompact(p.sent)}/s  acked ${fmtCompact(p.acked)}/s  delivered ${fmtCompact(p.delivered)}/s  errors ${p.errors}  ` +
    `ack p99 ${fmtMs(p.ackP99Ms)}  fanout p99 ${fmtMs(p.fanoutP99Ms)}  lag p99 ${fmtMs(p.lagMsP99)}  ` +
    `cpu ${Math.round(p.fleetCpuPct)}%  left ${p.timeLeftSec}s`
  );
}

export class Progress {
  private lastPlain = 0;
  private live = false;
  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly quiet = false,
  ) {}

  /** A status line; on a TTY it replaces the previous one. */
  status(p: ProgressState): void {
    if (this.quiet) return;
    const line = formatProgress(p);
    if (this.out.isTTY) {
      const width = this.out.columns ?? 160;
      this.out.write(`\r\x1b[2K${line.slice(0, width - 1)}`);
      this.live = true;
    } else if (Date.now() - this.lastPlain >= 5000) {
      this.lastPlain = Date.now();
      this.out.write(`${line}\n`);
    }
  }

  /** A line that stays. */
  log(msg: string): void {
    if (this.quiet) return;
    if (this.live) {
      this.out.write('\r\x1b[2K');
      this.live = false;
    }
    this.out.write(`${msg}\n`);
  }
}
