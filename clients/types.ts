/**
 * The fleet's output contract. `wami-bench fleet --out FILE.json` writes a FleetResult; the runner
 * copies these same names into each `runs[]` entry of result.json, and the report reads them.
 * Units are in the names (ms, bytes, sec). Keep this file the single source of these shapes.
 */

export type RunStatus = 'ok' | 'invalid' | 'errored';

/** Percentiles of one HDR histogram, in ms (or the unit its name says). */
export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  count: number;
  mean: number;
}

/** A latency histogram: its percentiles plus the encoded HDR histogram (base64, hdr-histogram-js encode). */
export interface LatencyStat extends Percentiles {
  /** HDR histogram, compressed and base64-encoded (hdr-histogram-js `encodeIntoCompressedBase64`); values in microseconds. */
  histogram: string;
}

/** Latency measured from the scheduled time `at` (corrected), with the `sentAt` twin beside it. */
export interface CorrectedLatencyStat extends LatencyStat {
  uncorrected: LatencyStat;
}

export interface SocketsReport {
  asked: number;
  reached: number;
  failed: number;
  /** refused | reset | timeout | EADDRNOTAVAIL | EMFILE | http-<status> | other */
  failuresByKind: Record<string, number>;
  /** Sockets that closed before the end of the run (slow-consumer close, server crash, …). */
  closedEarly: number;
}

export interface DeliveryReport {
  /** Sum over acked updates of the members connected for the whole window, minus the sender. */
  expected: number;
  received: number;
  missing: number;
  duplicate: number;
  outOfOrder: number;
  /** Broadcasts received of updates that were never acked (and not answered with an error either). */
  phantom: number;
}

export interface UpdatesReport {
  sent: number;
  acked: number;
  /** Answered with an error frame. */
  errored: number;
  /** Neither acked nor errored by the end of the drain. */
  unanswered: number;
}

export interface ErrorsReport {
  total: number;
  /** Server error codes (OVERLOADED, BUSY_EXHAUSTED, …). */
  byCode: Record<string, number>;
  /** Client-side kinds: connect failures, protocol errors, unexpected closes. */
  byKind: Record<string, number>;
}

export interface FleetCost {
  workers: number;
  /** Node flags the workers ran with (e.g. --max-semi-space-size=64). */
  nodeFlags: string[];
  cpuSec: number;
  rssBytesMax: number;
  /** p99 of the schedule lag (sentAt - at), ms. */
  lagMsP99: number;
  /** Worst per-worker event-loop delay p99, ms. */
  eventLoopDelayMsP99: number;
  /** Highest CPU use of any one worker over one second, percent of one core. */
  cpuPctMax: number;
}

/** One second of the run, counted over all workers. `t` is seconds since the window began (warm-up included, negative during warm-up is not used: t counts from the first connect). */
export interface TimePoint {
  t: number;
  openSockets: number;
  sent: number;
  acked: number;
  errors: number;
  /** This second's errors by server code (OVERLOADED, BUSY_EXHAUSTED, …) or client kind (refused, timeout, …); absent when none. */
  errorsByCode?: Record<string, number>;
  delivered: number;
  ackP50Ms: number;
  ackP99Ms: number;
  fanoutP50Ms: number;
  fanoutP99Ms: number;
  lagMsP99: number;
  fleetCpuPct: number;
}

/** For a seeded sample of updates: arrival of the first, median and last recipient, from `at`, ms. */
export interface RecipientsReport {
  sampled: number;
  first: Percentiles;
  median: Percentiles;
  last: Percentiles;
}

/**
 * Steady latency: the corrected latency of updates scheduled in the first `windowSec` of the
 * measured window against those in its last `windowSec` (60 s, or half the window when shorter).
 */
export interface DriftReport {
  windowSec: number;
  ackMs: { first: LatencyStat; last: LatencyStat };
  fanoutMs: { first: LatencyStat; last: LatencyStat };
}

export interface FleetResult {
  schemaVersion: 1;
  status: RunStatus;
  reasons: string[];
  /** The resolved fleet options (url, connections, perBoard, rates, seed, warm-up, duration, workers…). */
  config: Record<string, unknown>;
  window: {
    warmupSec: number;
    durationSec: number;
    startedAtIso: string;
    wallSec: number;
    /** The `t` of the first and last time-series seconds wholly inside the measured window (absent when none). */
    measuredT?: { from: number; to: number };
  };
  sockets: SocketsReport;
  latency: {
    connectMs: LatencyStat;
    ackMs: CorrectedLatencyStat;
    fanoutMs: CorrectedLatencyStat;
    recipients: RecipientsReport;
  };
  drift: DriftReport;
  updates: UpdatesReport;
  delivery: DeliveryReport;
  errors: ErrorsReport;
  fleet: FleetCost;
  timeseries: TimePoint[];
  /** Path of the ledger file (see Ledger), written beside the result, for the audit. */
  ledgerFile?: string;
}

/**
 * What the fleet saw of every update, for the audit against the database.
 * Written as JSON beside the fleet result. Users are the fleet's user ids (the `user` of the
 * connect URL, which the server stores as card_events.user_id).
 */
export interface Ledger {
  /** [user, clientMsgId, seq] of every acked update. */
  acked: Array<[number, string, number]>;
  /** [user, clientMsgId, code] of every update answered with an error. */
  errored: Array<[number, string, string]>;
  /** [user, clientMsgId] of every update sent and never answered. */
  unanswered: Array<[number, string]>;
  /** [from, clientMsgId, board, seq] of every distinct broadcast any fleet socket received. */
  seen: Array<[number, string, number, number]>;
}
