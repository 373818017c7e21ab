/**
 * What each fault of a run cost, from what the injector recorded (when, what, RSS), the fleet's
 * timed ledger, the audit's failing items, the stored rows and the fleet's per-second series. Pure:
 * tested with exact numbers.
 *
 * Attribution: a fault owns what happened from 1 s before it starts to 1 s before the next fault
 * starts (the first fault from the start of the run, the last to its end), by the time an update was
 * sent (broadcast, unanswered), acked (lost acks) or committed (the next stored seq after a gap, a
 * reused seq's row). Something the ledger has no time for counts for the last fault.
 */
import type { Fault, FaultRecord } from '../model/faults.js';
import type { Ledger, TimePoint } from '../model/fleet-result.js';
import type { AuditReportDetailed, StoredState } from './audit.js';
import { seqGapsOf } from './audit.js';

/** A fault's lead: what happened this long before it started is its doing (a batch in flight, a send on its way). */
export const FAULT_LEAD_MS = 1000;

/** What the injector recorded of one fault (times on the shared clock, ms). */
export interface FaultTiming {
  spec: Fault;
  injected: string;
  startMs: number;
  endMs: number;
  /** A kill: when the restarted server answered /healthz. */
  readyMs?: number;
  rssBytes: { before: number | null; duringMax: number | null; after: number | null };
  problem?: string;
}

export interface FaultLossInput {
  faults: readonly FaultTiming[];
  /** t = 0 of the fleet's time series, shared clock ms. */
  originMs: number;
  ledger: Ledger;
  /** The audit with its items (AuditOptions.collect). */
  audit: AuditReportDetailed;
  stored: StoredState;
  timeseries: readonly TimePoint[];
}

const round1 = (x: number): number => Math.round(x * 10) / 10;
const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** The index of the fault that owns an event at `ms` (undefined time: the last fault). */
export function faultOwning(starts: readonly number[], ms: number | null | undefined): number {
  if (starts.length === 0) return -1;
  // null, undefined, NaN and ±Infinity are no time: Number.isFinite is false for each
  if (!Number.isFinite(ms)) return starts.length - 1;
  const t = ms as number;
  let i = 0;
  // past the last start there is no next one: the comparison with Infinity ends the walk
  while (t >= (starts[i + 1] ?? Number.POSITIVE_INFINITY) - FAULT_LEAD_MS) i++;
  return i;
}

export function faultRecords(x: FaultLossInput): FaultRecord[] {
  const starts = x.faults.map((f) => f.startMs);
  const n = x.faults.length;
  const zero = () => new Array<number>(n).fill(0);
  const own = (ms: number | null | undefined): number => faultOwning(starts, ms);
  const items = x.audit.items ?? { lostAcked: [], phantom: [], storedUnanswered: [] };

  const lostAcked = zero();
  for (const a of items.lostAcked) lostAcked[own(a[3])]!++;
  const phantom = zero();
  const maxGap = new Array<number | null>(n).fill(null);
  for (const p of items.phantom) {
    const i = own(p[4]);
    phantom[i]!++;
    const f = x.faults[i]!;
    const sentAt = p[4];
    if (f.spec.kind === 'kill' && sentAt !== undefined && sentAt <= f.startMs) maxGap[i] = Math.max(maxGap[i] ?? 0, f.startMs - sentAt);
  }
  const unanswered = zero();
  for (const u of x.ledger.unanswered) unanswered[own(u[2])]!++;
  const storedUnacked = zero();
  for (const u of items.storedUnanswered) storedUnacked[own(u[2])]!++;
  const gapSeqs = zero();
  const gapBoards = Array.from({ length: n }, () => new Set<number>());
  for (const [board, , count, nextAt] of seqGapsOf(x.stored)) {
    const i = own(nextAt);
    gapSeqs[i]! += count;
    gapBoards[i]!.add(board);
  }
  // a reused seq: when its row was committed, else when a member saw it
  const committed = new Map<string, number | undefined>();
  for (const e of x.stored.events) committed.set(`${e.board}/${e.seq}`, e.committedAt);
  const seenAt = new Map<string, number | undefined>();
  for (const s of x.ledger.seen) if (!seenAt.has(`${s[2]}/${s[3]}`)) seenAt.set(`${s[2]}/${s[3]}`, s[4]);
  const reused = zero();
  for (const [b, q] of x.audit.reusedSeqs) reused[own(committed.get(`${b}/${q}`) ?? seenAt.get(`${b}/${q}`))]!++;

  // acks after a restart
  const ackTimes = x.ledger.acked.map((a) => a[3]).filter((t): t is number => t !== undefined);

  const t = (ms: number): number => round3((ms - x.originMs) / 1000);
  return x.faults.map((f, i): FaultRecord => {
    const atT = t(f.startMs);
    const endT = t(f.endMs);
    const nextT = i + 1 < n ? t(x.faults[i + 1]!.startMs) : Infinity;
    // the fleet's seconds: errors from the start to one second after the end
    const errorsByCode: Record<string, number> = {};
    let closed = 0;
    let sendsOnClosed = 0;
    let reconnected = 0;
    let ackMax: number | null = null;
    let fanMax: number | null = null;
    for (const p of x.timeseries) {
      if (p.t + 1 > atT && p.t <= endT + 2) {
        if (p.acked > 0) ackMax = Math.max(ackMax ?? 0, p.ackP99Ms);
        if (p.delivered > 0) fanMax = Math.max(fanMax ?? 0, p.fanoutP99Ms);
      }
      if (p.t + 1 > atT && p.t <= endT + 1) {
        for (const [k, v] of Object.entries(p.errorsByCode ?? {})) {
          errorsByCode[k] = (errorsByCode[k] ?? 0) + v;
          if (k.startsWith('closed-')) closed += v;
          if (k === 'send-not-open') sendsOnClosed += v;
        }
      }
      if (p.t + 1 > atT && p.t < nextT) reconnected += p.reconnected ?? 0;
    }
    const record: FaultRecord = {
      kind: f.spec.kind,
      spec: f.spec,
      injected: f.injected,
      atT,
      endT,
      loss: {
        lostAcked: lostAcked[i]!,
        broadcastNotStored: phantom[i]!,
        maxBroadcastToCrashMs: maxGap[i] === null ? null : round1(maxGap[i]!),
        unanswered: unanswered[i]!,
        storedUnacked: storedUnacked[i]!,
        seqGapSeqs: gapSeqs[i]!,
        boardsWithGaps: gapBoards[i]!.size,
        seqReused: reused[i]!,
      },
      latencyMax: { ackP99Ms: ackMax, fanoutP99Ms: fanMax },
      errorsByCode,
      sockets: { closed, reconnected, sendsOnClosed, allBackSec: allBackSec(x.timeseries, atT, nextT) },
      rssBytes: f.rssBytes,
    };
    if (f.readyMs !== undefined) {
      const ready = f.readyMs;
      const first = ackTimes.reduce((m, a) => (a >= ready && a < m ? a : m), Infinity);
      record.restart = { readyMs: round1(ready - f.startMs), firstAckMs: Number.isFinite(first) ? round1(first - ready) : null };
    }
    if (f.problem) record.problem = f.problem;
    return record;
  });
}

/**
 * Seconds from `atT` until as many sockets were open as in the second before it (0 when none
 * closed), looking no further than `untilT`; null when they never all came back.
 */
export function allBackSec(ts: readonly TimePoint[], atT: number, untilT: number): number | null {
  const before = [...ts].reverse().find((p) => p.t + 1 <= atT);
  if (!before) return null;
  const after = ts.filter((p) => p.t + 1 > atT && p.t < untilT);
  let dipped = false;
  for (const p of after) {
    if (p.openSockets < before.openSockets) dipped = true;
    else if (dipped) return round1(p.t + 1 - atT);
  }
  return dipped ? null : 0;
}
