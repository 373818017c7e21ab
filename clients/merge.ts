/**
 * `wami-bench merge`: joins the results of a fleet's segments (`fleet --segment I/N`, one per host)
 * into the one result the whole fleet would have written, losslessly and with the coordinator's own
 * joining code (clients/join.ts, the per-second SecondsAggregator): HDR histograms merged, never
 * averaged; counts summed; the time series aligned by wall second; the worst segment's status (the
 * saturation guard's verdict is per host); the ledgers concatenated for the audit.
 *
 * Delivery accounting adds up because a segment holds whole boards: every broadcast's sender and
 * receivers are in one segment, so each segment's expected, received and missing are complete.
 *
 * Refuses (MergeError, a UsageError: one line, exit 2) what cannot be one fleet: a file that is not a
 * segment's result, segments of different N, overlapping or missing segments, boards that are not
 * the segment's, mixed scenarios, mixed seeds. Pure.
 */
import { UsageError } from '../model/errors.js';
import type { FleetResult, LatencyStat, Ledger, RecipientsReport, SegmentInfo, SegmentSummary, TimePoint } from '../model/fleet-result.js';
import { addSockets, addUpdates, appendLedger, emptySocketTotals, emptyUpdateTotals, mergeCounts, mergedStat, worstStatus } from './join.js';
import { planSegments } from './plan.js';
import { SecondsAggregator } from './seconds.js';

export class MergeError extends UsageError {
  override name = 'MergeError';
}

/** One segment's result and where it came from (a file name, for the messages). */
export interface SegmentPart {
  file: string;
  result: FleetResult;
}

/** The merged result and the whole fleet's ledger (for the audit). */
export interface Merged {
  result: FleetResult;
  ledger: Ledger;
}

/**
 * Segments whose schedules started further apart than this (or 5 % of the measured window, if
 * larger) never put the whole fleet's load on the server at once: the merged run is `invalid`.
 */
export const MAX_START_SPREAD_MS = 1000;

type Seg = SegmentPart & { seg: SegmentInfo; ledger: Ledger };

const tag = (s: { index: number; of: number }): string => `${s.index}/${s.of}`;
const cfgOf = (r: FleetResult, k: string): unknown => r.config[k];

/** The fields that make two segments parts of one fleet's load (beside the scenario and the seed). */
const LOAD_FIELDS = ['updatesPerUserPerMin', 'rateSteps', 'arrival', 'warmupSec', 'durationSec', 'drainSec', 'sampleEvery', 'stalls'] as const;

/** Every check that the parts are the segments of one fleet, in order; throws MergeError at the first failure. */
function checkParts(parts: readonly SegmentPart[]): Seg[] {
  if (parts.length === 0) throw new MergeError('no segment results to merge');
  const segs: Seg[] = parts.map((p) => {
    const { segment, ledger } = p.result;
    if (!segment || !ledger)
      throw new MergeError(`${p.file} is not a segment's result: run wami-bench fleet with --segment I/N (it records its boards, clock and ledger)`);
    return { ...p, seg: segment, ledger };
  });
  const first = segs[0]!;
  for (const s of segs)
    if (s.seg.of !== first.seg.of)
      throw new MergeError(`segments of different fleets: ${first.file} is segment ${tag(first.seg)}, ${s.file} is segment ${tag(s.seg)}`);
  const byIndex = new Map<number, Seg>();
  for (const s of segs) {
    const other = byIndex.get(s.seg.index);
    if (other) throw new MergeError(`overlapping segments: ${other.file} and ${s.file} are both segment ${tag(s.seg)}`);
    byIndex.set(s.seg.index, s);
  }
  const of = first.seg.of;
  const missing: string[] = [];
  for (let i = 0; i < of; i++) if (!byIndex.has(i)) missing.push(`${i}/${of}`);
  if (missing.length > 0) {
    const have = [...byIndex.values()].sort((a, b) => a.seg.index - b.seg.index).map((s) => `${tag(s.seg)} (${s.file})`);
    throw new MergeError(`missing segment${missing.length === 1 ? '' : 's'} ${missing.join(', ')}: have ${have.join(', ')}`);
  }
  // One scenario (when the segments ran one), then one seed, then one load.
  const scen = (s: Seg): string => (s.seg.scenario ? `scenario "${s.seg.scenario.name}" stage ${s.seg.scenario.stage}` : 'no scenario (flags)');
  for (const s of segs) {
    const a = first.seg.scenario;
    const b = s.seg.scenario;
    if ((a === null) !== (b === null) || (a && b && (a.name !== b.name || a.stage !== b.stage)))
      throw new MergeError(`mixed scenarios: ${first.file} ran ${scen(first)}, ${s.file} ran ${scen(s)}`);
  }
  for (const s of segs) {
    const a = cfgOf(first.result, 'seed');
    const b = cfgOf(s.result, 'seed');
    if (a !== b) throw new MergeError(`mixed seeds: ${first.file} ran seed ${String(a)}, ${s.file} seed ${String(b)}`);
  }
  for (const s of segs) {
    const fa = first.seg.fleet;
    const fb = s.seg.fleet;
    if (fa.connections !== fb.connections || fa.perBoard !== fb.perBoard)
      throw new MergeError(
        `mixed scenarios: ${first.file} is part of a fleet of ${fa.connections} users (${fa.perBoard} per board), ${s.file} of ${fb.connections} (${fb.perBoard} per board)`,
      );
    for (const k of LOAD_FIELDS) {
      const a = JSON.stringify(cfgOf(first.result, k) ?? null);
      const b = JSON.stringify(cfgOf(s.result, k) ?? null);
      if (a !== b) throw new MergeError(`mixed scenarios: ${first.file} ran ${k} ${a}, ${s.file} ${k} ${b}`);
    }
    const a = first.seg.scenario;
    const b = s.seg.scenario;
    if (a && b && a.hash !== b.hash)
      throw new MergeError(`mixed scenarios: ${first.file} and ${s.file} ran different versions of ${scen(s)} (hash ${a.hash} vs ${b.hash})`);
  }
  // Each segment holds exactly the boards of its place in the plan (the plan is pure: every host computes the same).
  const plan = planSegments(first.seg.fleet.connections, first.seg.fleet.perBoard, of);
  for (const s of segs) {
    const p = plan[s.seg.index]!;
    const g = s.seg;
    if (g.boards.first !== p.firstBoard || g.boards.last !== p.lastBoard || g.users.first !== p.firstUser || g.users.count !== p.users)
      throw new MergeError(
        `${s.file} holds boards ${g.boards.first}..${g.boards.last} (users ${g.users.first}+${g.users.count}), but segment ${tag(g)} of ${g.fleet.connections} users is boards ${p.firstBoard}..${p.lastBoard} (users ${p.firstUser}+${p.users})`,
      );
  }
  for (const s of segs) {
    const r = s.result;
    const older =
      r.timeseries.some((t) => !t.histograms) ||
      [r.latency.recipients.first, r.latency.recipients.median, r.latency.recipients.last].some((x) => x.histogram === undefined);
    if (older) throw new MergeError(`${s.file} has no per-second or recipient histograms (written by an older wami-bench): run the segment again`);
  }
  return segs.sort((a, b) => a.seg.index - b.seg.index);
}

/** The merged recipients: each update's recipients are all in one segment, so the per-update histograms add. */
function mergeRecipients(rs: readonly RecipientsReport[]): RecipientsReport {
  const pick = (k: 'first' | 'median' | 'last'): LatencyStat => mergedStat(rs.map((r) => r[k].histogram ?? ''));
  return { sampled: rs.reduce((n, r) => n + r.sampled, 0), first: pick('first'), median: pick('median'), last: pick('last') };
}

/** The segments' seconds on one wall-clock axis: t = 0 is the earliest segment's, each shifted by its origin, rounded to a second. */
function mergeSeries(segs: readonly Seg[], originMs: number): { timeseries: TimePoint[]; shifts: number[] } {
  const shifts = segs.map((s) => Math.round((s.seg.originEpochMs - originMs) / 1000));
  const agg = new SecondsAggregator();
  // every segment counts as live until the end, so no second is emitted before all segments' ticks for it are in
  const live = segs.map((s) => s.seg.index);
  segs.forEach((s, k) => {
    for (const p of s.result.timeseries) {
      const h = p.histograms!;
      agg.tick(
        {
          type: 'tick',
          index: s.seg.index,
          t: p.t + shifts[k]!,
          openSockets: p.openSockets,
          reconnected: p.reconnected ?? 0,
          sent: p.sent,
          acked: p.acked,
          errors: p.errors,
          errorsBy: p.errorsByCode ?? {},
          delivered: p.delivered,
          ackHist: h.ack,
          fanoutHist: h.fanout,
          lagHist: h.lag,
          cpuPct: p.fleetCpuPct,
          eventLoopDelayMsP99: 0,
          rssBytes: null,
          pendingAcks: 0,
        },
        live,
      );
    }
  });
  agg.flush(true);
  return { timeseries: agg.timeseries, shifts };
}

/** Merges the results of every segment of one fleet (any order). Throws MergeError when they are not that. */
export function mergeSegments(parts: readonly SegmentPart[]): Merged {
  const segs = checkParts(parts);
  const rs = segs.map((s) => s.result);
  const r0 = rs[0]!;
  const s0 = segs[0]!.seg;
  const originMs = Math.min(...segs.map((s) => s.seg.originEpochMs));
  const { timeseries, shifts } = mergeSeries(segs, originMs);

  const sockets = emptySocketTotals();
  const updates = emptyUpdateTotals();
  const byCode: Record<string, number> = {};
  const byKind: Record<string, number> = {};
  const ledger: Ledger = { acked: [], errored: [], unanswered: [], seen: [] };
  const delivery = { expected: 0, received: 0, missing: 0, duplicate: 0, outOfOrder: 0, phantom: 0 };
  for (const s of segs) {
    const r = s.result;
    addSockets(sockets, r.sockets);
    addUpdates(updates, r.updates);
    mergeCounts(byCode, r.errors.byCode);
    mergeCounts(byKind, r.errors.byKind);
    for (const k of Object.keys(delivery) as Array<keyof typeof delivery>) delivery[k] += r.delivery[k];
    appendLedger(ledger, s.ledger);
    for (const x of s.ledger.seen) ledger.seen.push(x);
  }
  ledger.seen.sort((x, y) => x[2] - y[2] || x[3] - y[3]);

  // Status: the worst segment's; and a fleet whose parts did not run together never offered its load.
  const reasons: string[] = [];
  // A segment's own threshold outcomes stay in its summary: the merged result's are checked again on the whole.
  const own = (s: Seg): Set<string> => new Set((s.result.thresholds ?? []).filter((t) => !t.pass).map((t) => t.expr));
  for (const s of segs) {
    const failed = own(s);
    for (const why of s.result.reasons) {
      const m = /^threshold failed: (.*) \(actual [^)]*\)$/.exec(why);
      if (m && failed.has(m[1]!)) continue;
      reasons.push(`segment ${tag(s.seg)} (${s.seg.host}): ${why}`);
    }
  }
  let status = worstStatus(rs.map((r) => r.status));
  const starts = segs.map((s) => s.seg.startEpochMs);
  const started = starts.filter((x): x is number => x !== null);
  if (started.length === segs.length) {
    const spread = Math.max(...started) - Math.min(...started);
    const allowed = Math.max(MAX_START_SPREAD_MS, 0.05 * Number(r0.window.durationSec) * 1000);
    if (spread > allowed) {
      reasons.push(
        `the segments' schedules started ${spread} ms apart (more than ${Math.round(allowed)} ms): the server never carried the whole fleet's load at once; start them together with --barrier DIR`,
      );
      if (status === 'ok') status = 'invalid';
    }
  }

  // The seconds wholly measured by every segment.
  const measured = segs.map((s, k) =>
    s.result.window.measuredT ? { from: s.result.window.measuredT.from + shifts[k]!, to: s.result.window.measuredT.to + shifts[k]! } : null,
  );
  const from = Math.max(...measured.map((m) => m?.from ?? Infinity));
  const to = Math.min(...measured.map((m) => m?.to ?? -Infinity));
  const ends = segs.map((s) => s.seg.originEpochMs + s.result.window.wallSec * 1000);

  const hist = (pick: (r: FleetResult) => LatencyStat): LatencyStat => mergedStat(rs.map((r) => pick(r).histogram));
  const sum = (pick: (r: FleetResult) => number): number => rs.reduce((n, r) => n + pick(r), 0);
  const max = (pick: (r: FleetResult) => number): number => Math.max(...rs.map(pick));
  const connections = s0.fleet.connections;
  const total = Object.values(byCode).reduce((a, b) => a + b, 0) + Object.values(byKind).reduce((a, b) => a + b, 0);
  const anyReconnect = rs.some((r) => r.sockets.reconnects !== undefined);
  const anyStall = rs.some((r) => r.sockets.stalled !== undefined);

  const {
    segment: _seg,
    scenario,
    cards: _cards,
    sourceAddresses: _sa,
    sourceAddressSpread: _sp,
    segments: _ws,
    errorExamples: _ex,
    idPrefix: _id,
    ...config
  } = r0.config;
  const segments: SegmentSummary[] = segs.map((s) => ({
    index: s.seg.index,
    of: s.seg.of,
    host: s.seg.host,
    clock: s.seg.clock,
    boards: s.seg.boards,
    users: s.seg.users,
    status: s.result.status,
    reasons: s.result.reasons,
    file: s.file,
  }));
  const result: FleetResult = {
    schemaVersion: 1,
    status,
    reasons,
    config: {
      ...config,
      ...(scenario !== undefined ? { scenario } : {}),
      connections,
      firstUser: 0,
      workers: sum((r) => r.fleet.workers),
      segmentsOf: s0.of,
      hosts: [...new Set(segs.map((s) => s.seg.host))],
    },
    window: {
      warmupSec: r0.window.warmupSec,
      durationSec: r0.window.durationSec,
      startedAtIso: new Date(originMs).toISOString(),
      wallSec: Math.round(Math.max(...ends) - originMs) / 1000,
      ...(Number.isFinite(from) && Number.isFinite(to) && from <= to ? { measuredT: { from, to } } : {}),
    },
    sockets: {
      asked: sum((r) => r.sockets.asked),
      reached: sockets.reached,
      failed: sum((r) => r.sockets.asked) - sockets.reached,
      failuresByKind: sockets.failuresByKind,
      closedEarly: sockets.closedEarly,
      closedEarlyByCode: sockets.closedEarlyByCode,
      sendsOnClosed: sockets.sendsOnClosed,
      ...(anyReconnect ? { reconnects: sockets.reconnects } : {}),
      ...(anyStall ? { stalled: sockets.stalled } : {}),
    },
    latency: {
      connectMs: hist((r) => r.latency.connectMs),
      ackMs: { ...hist((r) => r.latency.ackMs), uncorrected: hist((r) => r.latency.ackMs.uncorrected) },
      fanoutMs: { ...hist((r) => r.latency.fanoutMs), uncorrected: hist((r) => r.latency.fanoutMs.uncorrected) },
      recipients: mergeRecipients(rs.map((r) => r.latency.recipients)),
    },
    drift: {
      windowSec: r0.drift.windowSec,
      ackMs: { first: hist((r) => r.drift.ackMs.first), last: hist((r) => r.drift.ackMs.last) },
      fanoutMs: { first: hist((r) => r.drift.fanoutMs.first), last: hist((r) => r.drift.fanoutMs.last) },
    },
    updates: updates,
    delivery,
    errors: { total, byCode, byKind },
    fleet: {
      workers: sum((r) => r.fleet.workers),
      nodeFlags: r0.fleet.nodeFlags,
      cpuSec: Math.round(sum((r) => r.fleet.cpuSec) * 1000) / 1000,
      // the divisor of the fleet's CPU per received frame (the report's fleet-cost metric): every segment's, or none
      ...(rs.every((r) => r.fleet.framesReceived !== undefined) ? { framesReceived: sum((r) => r.fleet.framesReceived!) } : {}),
      // each host's peak, added: an upper bound of the whole fleet's (the hosts' peaks need not coincide)
      rssBytesMax: sum((r) => r.fleet.rssBytesMax),
      // the worst host's (each segment's guard judged its own)
      lagMsP99: max((r) => r.fleet.lagMsP99),
      eventLoopDelayMsP99: max((r) => r.fleet.eventLoopDelayMsP99),
      cpuPctMax: max((r) => r.fleet.cpuPctMax),
    },
    timeseries,
    segments,
  };
  return { result, ledger };
}
