/**
 * A fleet's segments on disk, for fleets on several hosts sharing one directory (a volume every
 * Kubernetes pod mounts, or any shared directory): the segment files (`segment-I-of-N.json`), the
 * start barrier (`ready-I-of-N.json`: every segment connects, then all start their schedules at
 * one wall-clock time), and the runner's bounded wait for N segment files.
 *
 * Wall clocks are used only to start the segments together and to align their seconds; every
 * latency is measured on one host's monotonic clock (see clients/plan.ts BoardSegment).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fsProblem, UsageError } from '../model/errors.js';
import { FleetResultSchema } from '../model/fleet-result.js';
import type { SegmentPart } from '../clients/merge.js';

/** The file name of segment I of N in a segment directory. */
export function segmentFileName(index: number, of: number): string {
  return `segment-${index}-of-${of}.json`;
}

/** The barrier's file of segment I of N. */
export function readyFileName(index: number, of: number): string {
  return `ready-${index}-of-${of}.json`;
}

const SEGMENT_RE = /^segment-(\d+)-of-(\d+)\.json$/;
const READY_RE = /^ready-(\d+)-of-(\d+)\.json$/;

/** Writes a file whole or not at all (a reader polling the directory never sees half of it). */
export function writeAtomically(file: string, text: string): void {
  const tmp = join(resolve(file, '..'), `.${basename(file)}.${process.pid}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** Reads one segment's result; a UsageError names the file and what is wrong with it. */
export function readSegmentFile(file: string): SegmentPart {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(fsProblem(e, file, 'read'));
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${file} is not JSON (${(e as Error).message})`);
  }
  const v = FleetResultSchema.safeParse(raw);
  if (!v.success) {
    const i = v.error.issues[0]!;
    throw new UsageError(`${file} is not a fleet result: ${i.path.join('.') || '(top)'}: ${i.message}`);
  }
  return { file, result: v.data };
}

/** What a segment announces at the barrier once all its sockets are connected. */
export interface ReadyNote {
  index: number;
  of: number;
  /** The fleet these segments belong to (scenario, load and seed): notes of another fleet are ignored. */
  key: string;
  host: string;
  /** Wall time the segment was ready, ms since the epoch. */
  readyEpochMs: number;
}

/** Head start after the last segment is ready, so every segment (polling the directory) sees it in time, ms. */
export const BARRIER_LEAD_MS = 2000;
/** How often a segment looks at the barrier directory, ms. */
const POLL_MS = 100;

/**
 * The start time every segment computes from the same notes: the last one ready plus the lead; null
 * until all N of this fleet (`key`) are there. Pure.
 */
export function barrierStart(notes: readonly ReadyNote[], key: string, of: number): number | null {
  const mine = new Map<number, ReadyNote>();
  for (const n of notes) if (n.key === key && n.of === of && n.index >= 0 && n.index < of) mine.set(n.index, n);
  if (mine.size < of) return null;
  return Math.max(...[...mine.values()].map((n) => n.readyEpochMs)) + BARRIER_LEAD_MS;
}

function readNotes(dir: string): ReadyNote[] {
  const out: ReadyNote[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const f of names) {
    if (!READY_RE.test(f)) continue;
    try {
      out.push(JSON.parse(readFileSync(join(dir, f), 'utf8')) as ReadyNote);
    } catch {
      /* being written or not ours: read again at the next poll */
    }
  }
  return out;
}

/**
 * The fleet's start gate for `--barrier DIR`: once connected, write this segment's note, then wait
 * (polling, at most `timeoutMs`) until all N segments' notes are there; every segment then starts at
 * the same wall time. Rejects with a message naming the segments that never came.
 */
export function barrierGate(dir: string, index: number, of: number, key: string, timeoutMs: number) {
  return {
    maxWaitMs: timeoutMs + BARRIER_LEAD_MS,
    wait: async (signal?: AbortSignal): Promise<number> => {
      const note: ReadyNote = { index, of, key, host: hostname(), readyEpochMs: Date.now() };
      writeAtomically(join(dir, readyFileName(index, of)), `${JSON.stringify(note)}\n`);
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const notes = readNotes(dir);
        const at = barrierStart(notes, key, of);
        if (at !== null) return at;
        if (signal?.aborted) throw new Error('aborted at the barrier');
        if (Date.now() >= deadline) {
          const have = new Set(notes.filter((n) => n.key === key && n.of === of).map((n) => n.index));
          const missing = Array.from({ length: of }, (_, i) => i).filter((i) => !have.has(i));
          throw new Error(
            `barrier ${dir}: segment${missing.length === 1 ? '' : 's'} ${missing.map((i) => `${i}/${of}`).join(', ')} did not connect within ${Math.round(timeoutMs / 1000)} s (--barrier-timeout-sec)`,
          );
        }
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    },
  };
}

/** Removes an earlier run's segment and barrier files from a segment directory (creating it if needed). */
export function clearSegmentDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new UsageError(`--segment-dir ${fsProblem(e, dir, 'create')}`);
  }
  for (const f of readdirSync(dir)) if (SEGMENT_RE.test(f) || READY_RE.test(f)) rmSync(join(dir, f), { force: true });
}

export interface SegmentWait {
  /** The files to wait for: in a directory (segment-I-of-N.json for I = 0..N-1), or given paths. */
  files: string[];
  timeoutMs: number;
  signal?: AbortSignal;
  /** Called every `progressMs` while waiting, with the files present and missing and the seconds left. */
  onProgress?: (p: { present: string[]; missing: string[]; leftSec: number }) => void;
  progressMs?: number;
}

/** The segment files a run waits for: dir/segment-I-of-N.json for each I. */
export function expectedSegmentFiles(dir: string, of: number): string[] {
  return Array.from({ length: of }, (_, i) => join(dir, segmentFileName(i, of)));
}

/**
 * Waits (bounded) until every file exists, then returns them; rejects with one line naming the
 * missing ones at the timeout, or when aborted.
 */
export async function waitForSegmentFiles(w: SegmentWait): Promise<string[]> {
  const deadline = Date.now() + w.timeoutMs;
  const every = w.progressMs ?? 10_000;
  let nextProgress = Date.now() + every;
  for (;;) {
    const present = w.files.filter((f) => existsSync(f));
    const missing = w.files.filter((f) => !present.includes(f));
    if (missing.length === 0) return w.files;
    if (w.signal?.aborted) throw new Error('interrupted while waiting for the fleet segments');
    const now = Date.now();
    if (now >= deadline)
      throw new Error(
        `${present.length} of ${w.files.length} fleet segment files appeared within ${Math.round(w.timeoutMs / 1000)} s (--segments-timeout-sec); missing: ${missing.join(', ')}`,
      );
    if (now >= nextProgress) {
      nextProgress = now + every;
      w.onProgress?.({ present, missing, leftSec: Math.round((deadline - now) / 1000) });
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
