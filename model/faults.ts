/**
 * Faults a scenario injects into every run, inside its measured window, and what result.json records
 * of each (model/result.ts `runs[].faults`). One schema each; the scenario schema, the runner and
 * the report read them. Pure.
 *
 * Kinds, and which servers support them:
 * - `kill`: SIGKILL of the server's whole process tree (workers, shards), restart on the same file
 *   and port after `restartAfterSec`. Any server the runner starts (by its process tree).
 * - `freeze`: SIGSTOP of the whole tree for `durationSec`, then SIGCONT. Any server.
 * - `disk-full`: the database's writes that need a new page fail (SQLITE_FULL) for `durationSec`:
 *   the server's fault injection (`faultInjection`, POST /faults/disk-full/on|off). Only kinds whose
 *   spec says `faults.diskFull` (batched, per-request).
 * - `slow-consumers`: a `fraction` of the fleet's sockets stop reading for `durationSec`. Any server
 *   (the fleet does it).
 */
import { z } from 'zod';

const sec = (max: number) => z.number().min(0).max(max);
const atSec = sec(24 * 3600).describe('seconds after the measured window starts');
const durationSec = z.number().min(0.1).max(3600);

export const FAULT_KINDS = ['kill', 'freeze', 'disk-full', 'slow-consumers'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const FaultSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('kill'),
    /** Seconds after the measured window starts. */
    atSec,
    /** Seconds between the kill and the restart on the same file (default 2). */
    restartAfterSec: sec(600).default(2),
  }),
  z.strictObject({ kind: z.literal('freeze'), atSec, /** Seconds the tree stays stopped. */ durationSec }),
  z.strictObject({ kind: z.literal('disk-full'), atSec, /** Seconds writes fail. */ durationSec }),
  z.strictObject({
    kind: z.literal('slow-consumers'),
    atSec,
    /** Seconds the sockets do not read. */
    durationSec,
    /** Fraction of the sockets, spread evenly over the users (default 0.1). */
    fraction: z.number().min(0.0001).max(1).default(0.1),
  }),
]);
export type Fault = z.output<typeof FaultSchema>;

/** How long a fault lasts, seconds (a kill: until the restart). */
export function faultSpanSec(f: Fault): number {
  return f.kind === 'kill' ? f.restartAfterSec : f.durationSec;
}

/** "kill at 8 s, restart after 2 s", "disk-full at 20 s for 5 s", for messages and the report. */
export function describeFault(f: Fault): string {
  switch (f.kind) {
    case 'kill':
      return `kill at ${f.atSec} s, restart after ${f.restartAfterSec} s`;
    case 'slow-consumers':
      return `slow-consumers at ${f.atSec} s for ${f.durationSec} s (${Math.round(f.fraction * 1000) / 10} % of the sockets)`;
    default:
      return `${f.kind} at ${f.atSec} s for ${f.durationSec} s`;
  }
}

/**
 * Problems of a fault list against a measured window of `durationSec`: each fault inside it, in
 * order of `atSec`, none overlapping another (a fault's span plus 1 s of settling before the next).
 */
export function faultListProblems(faults: readonly Fault[], durationSec: number): Array<{ index: number; message: string }> {
  const out: Array<{ index: number; message: string }> = [];
  faults.forEach((f, i) => {
    const end = f.atSec + faultSpanSec(f);
    if (end >= durationSec)
      out.push({ index: i, message: `${describeFault(f)} ends at ${end} s, not inside the ${durationSec} s measured window (it must end before it does)` });
    const prev = faults[i - 1];
    if (prev && f.atSec < prev.atSec + faultSpanSec(prev) + 1)
      out.push({
        index: i,
        message: `${describeFault(f)} starts before ${describeFault(prev)} has ended and settled (1 s): list faults in order, apart`,
      });
  });
  return out;
}

const num = z.number();
const nullableNum = z.number().nullable();

/**
 * What one fault did, in result.json. Times: `atT`/`endT` on the fleet's time-series axis (seconds
 * since the fleet started, like `timeseries[].t`). The loss figures count what happened from 1 s
 * before this fault to 1 s before the next (or the end of the run), by the time each update was
 * sent, acked or committed.
 */
export const FaultRecordSchema = z.object({
  kind: z.enum(FAULT_KINDS),
  /** The fault as the scenario asked for it. */
  spec: FaultSchema,
  /** What was done, e.g. "SIGKILL of 3 processes", "disk full on 2 of 2 writing processes". */
  injected: z.string(),
  /** When it began and ended (a kill: until the restarted server answered /healthz), fleet time-series seconds. */
  atT: num,
  endT: num,
  /** A kill: the restart. */
  restart: z
    .object({
      /** From the kill to the restarted server answering /healthz, ms. */
      readyMs: num,
      /** From then to the first ack the fleet got, ms; null when none came. */
      firstAckMs: nullableNum,
    })
    .optional(),
  loss: z.object({
    /** Acked updates not stored (or stored with another seq). Must be 0 for every design. */
    lostAcked: num,
    /** Updates broadcast to members and never stored (batched's window at a crash; failed writes). */
    broadcastNotStored: num,
    /** A kill: the largest gap between the broadcast of an update never stored and the kill, ms (sentAt to the kill); null when none. */
    maxBroadcastToCrashMs: nullableNum,
    /** Updates sent and never answered (no ack, no error), most of them in flight when their socket closed. */
    unanswered: num,
    /** Of those, stored anyway (the ack was lost with the connection). */
    storedUnacked: num,
    /** Seqs skipped (no update stored with them), and on how many boards. */
    seqGapSeqs: num,
    boardsWithGaps: num,
    /** (board, seq) pairs given to two updates. Must be 0 for every design. */
    seqReused: num,
  }),
  /** The worst per-second p99 the fleet saw from the fault's start to two seconds after its end, ms (a freeze shows here). */
  latencyMax: z.object({ ackP99Ms: nullableNum, fanoutP99Ms: nullableNum }).optional(),
  /** The fleet's errors by code or kind from the fault's start to one second after its end. */
  errorsByCode: z.record(z.string(), num),
  sockets: z.object({
    /** Sockets closed in that span (any code). */
    closed: num,
    /** Sockets reopened until the next fault or the end. */
    reconnected: num,
    /** Updates due on closed sockets in that span (not sent). */
    sendsOnClosed: num,
    /** Seconds from the fault's start until as many sockets were open as before it; null when that never happened. */
    allBackSec: nullableNum,
  }),
  /** Server process tree RSS: before, the most during, and about 2 s after, bytes (null: no server to read). */
  rssBytes: z.object({ before: nullableNum, duringMax: nullableNum, after: nullableNum }),
  /** The injection failed (the run then errored), why. */
  problem: z.string().optional(),
});
export type FaultRecord = z.infer<typeof FaultRecordSchema>;
