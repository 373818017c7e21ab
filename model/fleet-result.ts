/**
 * The fleet's output contract, as zod schemas with the TypeScript types inferred from them.
 * `wami-bench fleet --out FILE.json` writes a FleetResult; the runner copies these same names into
 * each `runs[]` entry of result.json (model/result.ts), and the report reads them. Units are in the
 * names (ms, bytes, sec). This file is the single source of these shapes: no hand-written twin.
 */
import { z } from 'zod';

const num = z.number();
/** Counts by a string key (error code, failure kind). */
export const CountsSchema = z.record(z.string(), z.number());

export const RunStatusSchema = z.enum(['ok', 'invalid', 'errored']);
/** ok: measured honestly; invalid: the fleet could not hold its own schedule; errored: the run failed. */
export type RunStatus = z.infer<typeof RunStatusSchema>;

/** Percentiles of one HDR histogram, in ms (or the unit its name says). */
export const PercentilesSchema = z.object({ p50: num, p90: num, p99: num, p999: num, max: num, count: num, mean: num });
export type Percentiles = z.infer<typeof PercentilesSchema>;

/**
 * A latency histogram: its percentiles plus `histogram`, the HDR histogram compressed and
 * base64-encoded (hdr-histogram-js `encodeIntoCompressedBase64`), values in microseconds.
 */
export const LatencyStatSchema = PercentilesSchema.extend({ histogram: z.string() });
export type LatencyStat = z.infer<typeof LatencyStatSchema>;

/** Latency measured from the scheduled time `at` (corrected), with the `sentAt` twin beside it. */
export const CorrectedLatencyStatSchema = LatencyStatSchema.extend({ uncorrected: LatencyStatSchema });
export type CorrectedLatencyStat = z.infer<typeof CorrectedLatencyStatSchema>;

/**
 * One second of the run, counted over all workers; `t` counts seconds from the fleet's first connect.
 * `errorsByCode`: this second's errors by server code (OVERLOADED, …) or client kind (refused, …);
 * absent when none.
 */
export const TimePointSchema = z.object({
  t: num,
  openSockets: num,
  /** Sockets reconnected in this second (runs with `reconnect`); absent when none. */
  reconnected: num.optional(),
  sent: num,
  acked: num,
  errors: num,
  errorsByCode: CountsSchema.optional(),
  delivered: num,
  ackP50Ms: num,
  ackP99Ms: num,
  fanoutP50Ms: num,
  fanoutP99Ms: num,
  lagMsP99: num,
  fleetCpuPct: num,
  /**
   * This second's HDR histograms (encoded, µs): acks and broadcasts arriving in it, sends' lag. Only
   * in a segment's result (`fleet --segment`), so `merge` computes each second's percentiles over
   * every segment exactly; a merged result drops them.
   */
  histograms: z.object({ ack: z.string(), fanout: z.string(), lag: z.string() }).optional(),
});
export type TimePoint = z.infer<typeof TimePointSchema>;

/**
 * Sockets asked and reached. `failuresByKind`: refused | reset | timeout | EADDRNOTAVAIL | EMFILE |
 * http-<status> | other. `closedEarly`: sockets that closed before the end of the run, and
 * `closedEarlyByCode` by WebSocket close code (1006: the connection ended without a close frame,
 * e.g. the server died; 1001: the server stopped; 4008: slow consumer). `sendsOnClosed`: updates due
 * on a socket that was not open (closed or reconnecting), so not sent. `reconnects`: attempts to
 * reopen closed sockets (runs with faults). `stalled`: sockets that stopped reading for a while (the
 * slow-consumers fault); their latency is left out of every histogram (it is the stall's). The optional fields are absent in results from before they were recorded.
 */
export const SocketsReportSchema = z.object({
  asked: num,
  reached: num,
  failed: num,
  failuresByKind: CountsSchema,
  closedEarly: num,
  closedEarlyByCode: CountsSchema.optional(),
  sendsOnClosed: num.optional(),
  reconnects: z.object({ attempted: num, succeeded: num, failed: num }).optional(),
  stalled: num.optional(),
});
export type SocketsReport = z.infer<typeof SocketsReportSchema>;

/**
 * For a seeded sample of updates: arrival of the first, median and last recipient, from `at`, ms.
 */
/** Percentiles of the recipients' arrivals, with the HDR histogram (µs) so segments merge losslessly (absent in results from before). */
export const RecipientStatSchema = PercentilesSchema.extend({ histogram: z.string().optional() });
export const RecipientsReportSchema = z.object({ sampled: num, first: RecipientStatSchema, median: RecipientStatSchema, last: RecipientStatSchema });
export type RecipientsReport = z.infer<typeof RecipientsReportSchema>;

export const LatencyReportSchema = z.object({
  connectMs: LatencyStatSchema,
  ackMs: CorrectedLatencyStatSchema,
  fanoutMs: CorrectedLatencyStatSchema,
  recipients: RecipientsReportSchema,
});
export type LatencyReport = z.infer<typeof LatencyReportSchema>;

/**
 * Steady latency: the corrected latency of updates scheduled in the first `windowSec` of the
 * measured window against those in its last `windowSec` (60 s, or half the window when shorter).
 */
export const DriftReportSchema = z.object({
  windowSec: num,
  ackMs: z.object({ first: LatencyStatSchema, last: LatencyStatSchema }),
  fanoutMs: z.object({ first: LatencyStatSchema, last: LatencyStatSchema }),
});
export type DriftReport = z.infer<typeof DriftReportSchema>;

/**
 * The fleet's window: warm-up, measured seconds, and `measuredT`, the `t` of the first and last
 * time-series seconds wholly inside the measured window (absent when none).
 */
export const FleetWindowSchema = z.object({
  warmupSec: num,
  durationSec: num,
  startedAtIso: z.string(),
  wallSec: num,
  measuredT: z.object({ from: num, to: num }).optional(),
});
export type FleetWindow = z.infer<typeof FleetWindowSchema>;

/**
 * `errored`: answered with an error frame; `unanswered`: neither acked nor errored by the end of the
 * drain; `unansweredAtClose`: of those, the ones in flight when their socket closed (they can no
 * longer be answered: acks go to the socket that sent).
 */
export const UpdatesReportSchema = z.object({ sent: num, acked: num, errored: num, unanswered: num, unansweredAtClose: num.optional() });
export type UpdatesReport = z.infer<typeof UpdatesReportSchema>;

/**
 * `expected`: sum over acked updates of the members connected for the whole window, minus the
 * sender. `phantom`: broadcasts received of updates that were never acked (nor answered with an error).
 */
export const DeliveryReportSchema = z.object({ expected: num, received: num, missing: num, duplicate: num, outOfOrder: num, phantom: num });
export type DeliveryReport = z.infer<typeof DeliveryReportSchema>;

/** `byCode`: server error codes (OVERLOADED, BUSY_EXHAUSTED, …); `byKind`: client-side kinds (connect failures, protocol errors, closes). */
export const ErrorsReportSchema = z.object({ total: num, byCode: CountsSchema, byKind: CountsSchema });
export type ErrorsReport = z.infer<typeof ErrorsReportSchema>;

/**
 * What the fleet cost: `nodeFlags` the workers ran with; `lagMsP99` the schedule lag (sentAt − at)
 * p99, ms; `eventLoopDelayMsP99` the worst worker's; `cpuPctMax` the highest CPU of any one worker
 * over one second, percent of one core.
 */
export const FleetCostSchema = z.object({
  workers: num,
  nodeFlags: z.array(z.string()),
  cpuSec: num,
  /** Server frames the fleet's sockets received over the whole run (broadcasts, acks, error frames): the divisor of its CPU per received frame. */
  framesReceived: num.optional(),
  rssBytesMax: num,
  lagMsP99: num,
  eventLoopDelayMsP99: num,
  cpuPctMax: num,
});
export type FleetCost = z.infer<typeof FleetCostSchema>;

/** The whole fleet's CPU per received frame over the whole run, µs (workers and coordinator, connect phase included); null without frames. */
export function fleetCpuUsPerFrame(f: { cpuSec: number; framesReceived?: number | undefined }): number | null {
  return f.framesReceived ? (f.cpuSec * 1e6) / f.framesReceived : null;
}

/**
 * The workers' CPU per received frame over the measured seconds only, µs: the sum of `fleetCpuPct` / 100
 * over the seconds from `window.measuredT.from` to `.to` (inclusive) divided by the frames (broadcasts,
 * acks, error frames) that arrived in those seconds. This is the steady cost of receiving. It leaves out the
 * connect phase (one handshake per socket: at 30k sockets that alone adds tens of µs to every frame of a
 * 40 s stage), warm-up and drain, and the coordinator, all of which `fleet.cpuSec / framesReceived` holds.
 * null without a measured window or without frames in it.
 */
export function fleetCpuUsPerFrameMeasured(r: { timeseries: readonly TimePoint[]; window?: FleetWindow | undefined }): number | null {
  const m = r.window?.measuredT;
  if (!m) return null;
  let cpuSec = 0;
  let frames = 0;
  for (const s of r.timeseries) {
    if (s.t < m.from || s.t > m.to) continue;
    cpuSec += s.fleetCpuPct / 100;
    frames += s.delivered + s.acked + s.errors;
  }
  return frames > 0 ? (cpuSec * 1e6) / frames : null;
}

/** One threshold checked against a result: `actual` null when the metric had no value (a failure). */
export const ThresholdOutcomeSchema = z.object({ expr: z.string(), metric: z.string(), op: z.string(), limit: num, actual: num.nullable(), pass: z.boolean() });
export type ThresholdOutcome = z.infer<typeof ThresholdOutcomeSchema>;

export const FLEET_RESULT_SCHEMA_VERSION = 1;

/**
 * What the fleet saw of every update, for the audit against the database (see Ledger). A segment's
 * result carries it inline (`ledger`), so one file per host is everything `merge` needs.
 */
export const LedgerSchema = z.object({
  acked: z.array(z.tuple([num, z.string(), num, num.optional()])),
  errored: z.array(z.tuple([num, z.string(), z.string()])),
  unanswered: z.array(z.tuple([num, z.string(), num.optional()])),
  seen: z.array(z.tuple([num, z.string(), num, num, num.optional()])),
});

/** The clock a fleet measured latency with: its source, and the kernel boot it belongs to (processes of one boot share CLOCK_MONOTONIC). */
export const ClockSchema = z.object({
  /** 'CLOCK_MONOTONIC (process.hrtime.bigint)'. */
  source: z.string(),
  /** /proc/sys/kernel/random/boot_id: equal on two hosts only when they are one kernel (containers, network namespaces); null when unreadable. */
  bootId: z.string().nullable(),
});
export type Clock = z.infer<typeof ClockSchema>;

/**
 * One segment of a fleet split over hosts by whole boards (`wami-bench fleet --segment I/N`): which
 * segment, its boards and users, the whole fleet it is part of, the host and its clock. Fan-out and
 * ack latency of a segment are measured on its host's clock only (a board's sender and receivers are
 * in one segment); wall-clock times (epoch ms) only align the segments' seconds and start them together.
 */
export const SegmentInfoSchema = z.object({
  /** 0-based (Kubernetes' JOB_COMPLETION_INDEX), of `of`. */
  index: num,
  of: num,
  boards: z.object({ first: num, last: num, count: num }),
  users: z.object({ first: num, count: num }),
  /** The whole fleet: users (all segments) and users per board. */
  fleet: z.object({ connections: num, perBoard: num }),
  host: z.string(),
  clock: ClockSchema,
  /** Wall time of t = 0 of this segment's time series, ms since the epoch. */
  originEpochMs: num,
  /** Wall time the schedule started, ms since the epoch, and how it was set: `barrier` (every segment's readiness, see --barrier) or `now`. */
  startEpochMs: num.nullable(),
  start: z.enum(['barrier', 'now']),
  /** The scenario the segment ran (`fleet --scenario`), or null (flags). */
  scenario: z.object({ name: z.string(), hash: z.string(), stage: num }).nullable(),
});
export type SegmentInfo = z.infer<typeof SegmentInfoSchema>;

/** A merged result's account of one segment: where it ran, what it held, how it went. */
export const SegmentSummarySchema = z.object({
  index: num,
  of: num,
  host: z.string(),
  clock: ClockSchema,
  boards: z.object({ first: num, last: num, count: num }),
  users: z.object({ first: num, count: num }),
  status: RunStatusSchema,
  reasons: z.array(z.string()),
  /** The file it was read from. */
  file: z.string().optional(),
});
export type SegmentSummary = z.infer<typeof SegmentSummarySchema>;

/**
 * What `runFleet` returns and `wami-bench fleet --out` writes. `config` is the resolved fleet
 * options; `ledgerFile` the path of the ledger (see Ledger), written beside it for the audit.
 */
export const FleetResultSchema = z.object({
  schemaVersion: z.literal(FLEET_RESULT_SCHEMA_VERSION),
  status: RunStatusSchema,
  reasons: z.array(z.string()),
  config: z.record(z.string(), z.unknown()),
  window: FleetWindowSchema,
  sockets: SocketsReportSchema,
  latency: LatencyReportSchema,
  drift: DriftReportSchema,
  updates: UpdatesReportSchema,
  delivery: DeliveryReportSchema,
  errors: ErrorsReportSchema,
  fleet: FleetCostSchema,
  timeseries: z.array(TimePointSchema),
  ledgerFile: z.string().optional(),
  /**
   * `wami-bench fleet --threshold` (and its defaults: nothing missing, duplicated, reordered or
   * phantom, no error, nothing unanswered), checked after the run. A failed one is also in `reasons`;
   * `status` still says only whether the fleet measured honestly.
   */
  thresholds: z.array(ThresholdOutcomeSchema).optional(),
  /** A segment's result (`fleet --segment I/N`): which segment, host and clock (see SegmentInfo). */
  segment: SegmentInfoSchema.optional(),
  /** A segment's ledger, inline (absent otherwise: see `ledgerFile`). */
  ledger: LedgerSchema.optional(),
  /** A merged result (`wami-bench merge`): the segments it joins, in order. */
  segments: z.array(SegmentSummarySchema).optional(),
});
export type FleetResult = z.infer<typeof FleetResultSchema>;

/**
 * What the fleet saw of every update, for the audit against the database. Written as JSON beside
 * the fleet result. Users are the fleet's user ids (the `user` of the connect URL, which the server
 * stores as card_events.user_id).
 */
export interface Ledger {
  /** [user, clientMsgId, seq, ackAt?] of every acked update (ackAt: when the ack arrived, fleet clock ms; runs with faults). */
  acked: Array<[number, string, number, number?]>;
  /** [user, clientMsgId, code] of every update answered with an error. */
  errored: Array<[number, string, string]>;
  /** [user, clientMsgId, sentAt?] of every update sent and never answered (sentAt: runs with faults). */
  unanswered: Array<[number, string, number?]>;
  /**
   * [from, clientMsgId, board, seq, sentAt?] of every distinct broadcast any fleet socket received
   * (and of each other update received under a seq already taken: a reused seq). sentAt: the update's.
   */
  seen: Array<[number, string, number, number, number?]>;
}
