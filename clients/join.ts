/**
 * Joining parts of one fleet into its whole, said once: the coordinator joins its workers' final
 * reports with these, and `wami-bench merge` joins segments (whole fleets on other hosts) with the
 * same functions. Counts add, histograms merge (HDR, lossless: the merge of the parts' histograms is
 * the histogram of the whole), ledgers concatenate, and the worst status wins. Pure.
 */
import type { LatencyStat, Ledger, RunStatus } from '../model/fleet-result.js';
import { latencyStat, mergeEncoded } from './histogram.js';

/** Adds `from`'s counts into `into`. */
export function mergeCounts(into: Record<string, number>, from: Record<string, number> | undefined): void {
  if (!from) return;
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

/** What a part saw of its sockets (a worker's final report, or a segment's SocketsReport). */
export interface SocketTotals {
  reached: number;
  failuresByKind: Record<string, number>;
  closedEarly: number;
  closedEarlyByCode: Record<string, number>;
  sendsOnClosed: number;
  reconnects: { attempted: number; succeeded: number; failed: number };
  stalled: number;
}

export function emptySocketTotals(): SocketTotals {
  return {
    reached: 0,
    failuresByKind: {},
    closedEarly: 0,
    closedEarlyByCode: {},
    sendsOnClosed: 0,
    reconnects: { attempted: 0, succeeded: 0, failed: 0 },
    stalled: 0,
  };
}

/** Adds one part's socket counts (fields a part does not have count as 0). */
export function addSockets(into: SocketTotals, p: Partial<SocketTotals> & { reached: number }): void {
  into.reached += p.reached;
  mergeCounts(into.failuresByKind, p.failuresByKind);
  into.closedEarly += p.closedEarly ?? 0;
  mergeCounts(into.closedEarlyByCode, p.closedEarlyByCode);
  into.sendsOnClosed += p.sendsOnClosed ?? 0;
  into.stalled += p.stalled ?? 0;
  into.reconnects.attempted += p.reconnects?.attempted ?? 0;
  into.reconnects.succeeded += p.reconnects?.succeeded ?? 0;
  into.reconnects.failed += p.reconnects?.failed ?? 0;
}

export interface UpdateTotals {
  sent: number;
  acked: number;
  errored: number;
  unanswered: number;
  unansweredAtClose: number;
}

export function emptyUpdateTotals(): UpdateTotals {
  return { sent: 0, acked: 0, errored: 0, unanswered: 0, unansweredAtClose: 0 };
}

export function addUpdates(into: UpdateTotals, p: Omit<UpdateTotals, 'unansweredAtClose'> & { unansweredAtClose?: number | undefined }): void {
  into.sent += p.sent;
  into.acked += p.acked;
  into.errored += p.errored;
  into.unanswered += p.unanswered;
  into.unansweredAtClose += p.unansweredAtClose ?? 0;
}

/** Appends a part's answers to the ledger: acked, errored, unanswered (`seen` is joined apart: clients/delivery.ts, or appendSeen). */
export function appendLedger(into: Omit<Ledger, 'seen'>, part: Omit<Ledger, 'seen'>): void {
  for (const a of part.acked) into.acked.push(a);
  for (const e of part.errored) into.errored.push(e);
  for (const u of part.unanswered) into.unanswered.push(u);
}

/** The parts' encoded histograms merged into one LatencyStat (percentiles of the whole). */
export function mergedStat(parts: Iterable<string>): LatencyStat {
  return latencyStat(mergeEncoded(parts));
}

const RANK: Record<RunStatus, number> = { ok: 0, invalid: 1, errored: 2 };

/** The worst of the parts' statuses: errored over invalid over ok. */
export function worstStatus(statuses: Iterable<RunStatus>): RunStatus {
  let w: RunStatus = 'ok';
  for (const s of statuses) if (RANK[s] > RANK[w]) w = s;
  return w;
}
