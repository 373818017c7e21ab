/**
 * result.json, schema version 1: what `wami-bench run` and `wami-bench capacity` write to
 * results/<runId>/result.json, and what the report, compare and the exports read. The zod schema is
 * the one definition: the runner validates what it writes, the report what it reads, the TypeScript
 * types are inferred from it, and model/result.schema.json is the JSON Schema generated from it
 * (`node dist/model/schema-file.js --write`; a test keeps the committed file equal).
 * The fleet's names (model/fleet-result.ts) are reused as they are.
 */
import { z } from 'zod';
import { CapacityReportSchema } from './capacity.js';
import {
  CorrectedLatencyStatSchema,
  CountsSchema,
  DeliveryReportSchema,
  DriftReportSchema,
  ErrorsReportSchema,
  FleetCostSchema,
  FleetWindowSchema,
  LatencyStatSchema,
  RecipientsReportSchema,
  SegmentSummarySchema,
  RunStatusSchema,
  SocketsReportSchema,
  ThresholdOutcomeSchema,
  TimePointSchema,
  UpdatesReportSchema,
} from './fleet-result.js';
import { FaultRecordSchema } from './faults.js';
import { VARIANT_KINDS } from './variants.js';

export const RESULT_SCHEMA_VERSION = 1;

const num = z.number();
const nullableNum = z.number().nullable();

/**
 * One resource sample of the server process tree (and the fleet), taken once a second. `t`: seconds
 * since the run started; `serverCpuPct`: the whole server tree over the last second, percent of one
 * core; `serverConnections`: sockets open at the server, if its metrics say so; `kernelTcpMemBytes`:
 * kernel TCP socket memory from /proc/net/sockstat (pages × page size).
 */
export const ResourceSampleSchema = z.object({
  t: num,
  serverRssBytes: num,
  serverPssBytes: nullableNum,
  serverCpuPct: num,
  serverProcesses: num,
  fleetRssBytes: num,
  fleetCpuPct: num,
  serverConnections: nullableNum,
  kernelTcpMemBytes: nullableNum,
});
export type ResourceSample = z.infer<typeof ResourceSampleSchema>;

/** The fleet's process tree over a run's window; `cpuPctMax` over one interval, percent of one core. */
export const FleetResourcesSchema = z.object({ rssBytesMax: num, cpuSec: num, cpuPctMax: num, processesMax: num });
export type FleetResources = z.infer<typeof FleetResourcesSchema>;

/**
 * The server's process tree over a run. `rssBytesPerSocket`: (rssBytesMax − rssBytesIdle) / sockets
 * reached, null when none was; `rssBytesIdle`: RSS after start, before the fleet connected; `fleet`:
 * the fleet's tree over the same window (the runner's own process included); `kernelTcpMemBytesMax`:
 * the highest kernel TCP socket memory (the whole host: both ends of loopback sockets); `tickErrors`:
 * resource readings that failed unexpectedly. `rssBytesMax` is over the whole run (the connect burst
 * and the close of every socket included); `rssBytesMaxMeasured` over the readings inside the fleet's
 * measured window only (null when none was; absent in results written before it existed).
 */
export const ServerResourcesSchema = z.object({
  rssBytesMax: num,
  rssBytesMaxMeasured: nullableNum.optional(),
  pssBytesMax: nullableNum,
  cpuSec: num,
  rssBytesPerSocket: nullableNum,
  rssBytesIdle: num,
  processes: num,
  samples: z.array(ResourceSampleSchema),
  fleet: FleetResourcesSchema.optional(),
  kernelTcpMemBytesMax: nullableNum.optional(),
  tickErrors: num.optional(),
});
export type ServerResources = z.infer<typeof ServerResourcesSchema>;

/** One second of the server's /metrics: counters as increase per second, gauges as sampled; null: the server does not expose it. */
export const ServerMetricsPointSchema = z.object({
  t: num,
  queueDepth: nullableNum,
  walBytes: nullableNum,
  busyHits: nullableNum,
  retries: nullableNum,
  exhausted: nullableNum,
  persisted: nullableNum,
  commitMsP99: nullableNum,
  eventLoopDelayMsP99: nullableNum,
  /** The queue-depth peak the server kept since the previous scrape (servers that expose it). */
  queueDepthPeak: nullableNum.optional(),
  /** Event-loop delay p99 of the worst process over the interval, ms (servers that expose it per process). */
  eventLoopDelayMsMaxProc: nullableNum.optional(),
});
export type ServerMetricsPoint = z.infer<typeof ServerMetricsPointSchema>;

/**
 * Metrics scraped from the server's /metrics once a second, reduced to what the report shows. A
 * figure is null when no scrape carried its metric (no /metrics, a server that does not expose it,
 * e.g. an external server's): unknown, never 0. A counter the server exposes but never increased is 0.
 */
export const ServerMetricsSummarySchema = z.object({
  updatesReceived: nullableNum,
  updatesPersisted: nullableNum,
  broadcastFrames: nullableNum,
  errorsByCode: CountsSchema.nullable(),
  batchSize: z.object({ count: num, mean: num, p50: nullableNum, p99: nullableNum, max: nullableNum }).nullable(),
  commitMs: z.object({ count: num, mean: num, p50: nullableNum, p99: nullableNum }).nullable(),
  busyHits: nullableNum,
  retries: nullableNum,
  exhausted: nullableNum,
  walBytesMax: nullableNum,
  eventLoopDelayMsP99: nullableNum,
  queueDepthMax: nullableNum,
  slowConsumerCloses: nullableNum,
  /**
   * Added with the write-ceiling work; absent in older results and null where a server does not
   * expose the metric. `window`: what of the run the scrapes covered, on the run's scrape clock:
   * the figures marked "window" below are over the fleet's measured window only (connect, warm-up
   * and drain left out); the rest are over the whole run.
   */
  window: z.object({ scrapes: num, fromSec: nullableNum, toSec: nullableNum }).optional(),
  /** Window: the highest queue depth, from the peak the server keeps between scrapes (sum over processes). */
  queueDepthPeak: nullableNum.optional(),
  /** Window: event-loop delay p99 of the worst process in its worst second, ms (a saturated worker cannot hide in an average). */
  eventLoopDelayMsMaxProc: nullableNum.optional(),
  /** Window: each process's worst event-loop delay p99, ms, by process id. */
  eventLoopDelayMsByProcess: z.record(z.string(), num).optional(),
  /** batched: one flush (take the queue, commit, ack), ms. */
  flushMs: z.object({ count: num, mean: num, p50: nullableNum, p99: nullableNum, max: nullableNum }).nullable().optional(),
  /** Transaction attempts per finished update (1 = no retry). */
  txAttempts: z.object({ count: num, mean: num, p50: nullableNum, p99: nullableNum, max: nullableNum }).nullable().optional(),
  /** The -wal file's size at the last scrape, bytes. */
  walBytesEnd: nullableNum.optional(),
  /** Times the WAL went back to its start after a complete checkpoint during the run (its checkpoint sequence number's increase). */
  walRestarts: nullableNum.optional(),
  /** Highest WAL frames not yet copied into the database by a checkpoint, at a scrape. */
  walBacklogFramesMax: nullableNum.optional(),
  /** Per-second series of the counters above (deltas per second), for the SQLite panel. */
  timeseries: z.array(ServerMetricsPointSchema),
});
export type ServerMetricsSummary = z.infer<typeof ServerMetricsSummarySchema>;

/**
 * The database against what the fleet saw. lostAcked: acked but not in card_events (> 0 fails the
 * correctness gate); storedNotAcked: stored but never acked; phantom: broadcast but not stored (> 0
 * fails the gate); notBroadcast: stored but seen by no member (on boards that had other members);
 * finalStateMismatches: cards whose row disagrees with their last event; seqGaps: boards whose stored
 * seqs are not 1..n; seqReused: (board, seq) pairs given to two different updates (> 0 fails the
 * gate, always; absent in results from before it was checked); examples: a few of each failure, for
 * the reader. `excused`: in a run with faults, what the design documents it loses under a fault
 * (phantom, seqGaps; see the run's `faults`) and so did not fail the audit. integrity: SQLite's
 * `PRAGMA integrity_check` of the file, "ok" or the problems it found (anything else fails the gate,
 * always; absent in results from before it was checked).
 */
export const AuditReportSchema = z.object({
  lostAcked: num,
  storedNotAcked: num,
  phantom: num,
  notBroadcast: num,
  finalStateMismatches: num,
  seqGaps: num,
  seqReused: num.optional(),
  excused: z.array(z.enum(['phantom', 'seqGaps'])).optional(),
  eventsStored: num,
  integrity: z.string().optional(),
  ok: z.boolean(),
  examples: z.array(z.string()),
});
export type AuditReport = z.infer<typeof AuditReportSchema>;

export { ThresholdOutcomeSchema, type ThresholdOutcome } from './fleet-result.js';

/**
 * How an external variant's server was started in one run: `command` the argv as spawned (program
 * resolved to an absolute path, placeholders filled), `cwd`, `env` the variables the variant added
 * (filled), `port` and where it came from (`placeholder`: the runner picked it for `{port}`;
 * `listening line`: the server printed it), `ready` the path awaited, `stopTimeoutSec` the SIGTERM
 * to SIGKILL bound.
 */
export const ExternalRunSchema = z.object({
  command: z.array(z.string()),
  cwd: z.string(),
  env: z.record(z.string(), z.string()),
  port: z.number().int(),
  portFrom: z.enum(['placeholder', 'listening line']),
  ready: z.string(),
  stopTimeoutSec: num,
});
export type ExternalRun = z.infer<typeof ExternalRunSchema>;

/**
 * One (variant, stage, repeat). `variantKind` and `variantFlags`: the server design and the argv it
 * was started with (for an external variant: its options as flags, e.g. `--processes 2`; its command
 * is in `external`); `drift`: first against last part of the measured window; `window`: warm-up,
 * measured seconds, and which time-series seconds were measured; `http`: autocannon's results on the
 * read path, when the scenario has an `http` block.
 */
export const RunRecordSchema = z.object({
  variant: z.string(),
  variantKind: z.enum(VARIANT_KINDS),
  variantFlags: z.array(z.string()),
  via: z.enum(['direct', 'caddy']),
  stage: z.object({ index: z.number().int().nonnegative(), connections: z.number().int().positive(), durationSec: num }),
  repeat: z.number().int().positive(),
  status: RunStatusSchema,
  reasons: z.array(z.string()),
  sockets: SocketsReportSchema,
  latency: z.object({
    connectMs: LatencyStatSchema,
    ackMs: CorrectedLatencyStatSchema,
    fanoutMs: CorrectedLatencyStatSchema,
    recipients: RecipientsReportSchema,
  }),
  drift: DriftReportSchema,
  window: FleetWindowSchema,
  updates: UpdatesReportSchema,
  delivery: DeliveryReportSchema,
  errors: ErrorsReportSchema,
  fleet: FleetCostSchema,
  timeseries: z.array(TimePointSchema),
  resources: z.object({ server: ServerResourcesSchema }),
  server: ServerMetricsSummarySchema,
  audit: AuditReportSchema.nullable(),
  thresholds: z.array(ThresholdOutcomeSchema),
  http: z.record(z.string(), z.unknown()).optional(),
  /** The scenario's faults as this run met them (absent when the scenario has none). */
  faults: z.array(FaultRecordSchema).optional(),
  external: ExternalRunSchema.optional(),
  /** Seconds between the runner's /metrics scrapes of this run's server (0: not scraped; absent in older results: 1). */
  scrapeIntervalSec: num.optional(),
  /** The server's Node flags in this run, when its variant set its own (else the environment's serverNodeFlags). */
  serverNodeFlags: z.array(z.string()).optional(),
  /** The fleet ran on other hosts (`run --fleet external`): its segments, merged into this record. */
  fleetSegments: z.array(SegmentSummarySchema).optional(),
  wallSec: num,
});
export type RunRecord = z.infer<typeof RunRecordSchema>;

/** The context every result carries: machine, OS, runtime, versions, limits, the Node flags of server and fleet, pinning. */
export const EnvironmentSchema = z.object({
  cpuModel: z.string(),
  cpuCount: num,
  memTotalBytes: num,
  kernel: z.string(),
  os: z.string(),
  node: z.string(),
  sqlite: z.string(),
  packages: z.record(z.string(), z.string()),
  git: z.object({ commit: z.string().nullable(), dirty: z.boolean().nullable() }),
  fdLimit: z.object({ soft: nullableNum, hard: nullableNum }),
  ephemeralPortRange: z.tuple([num, num]).nullable(),
  serverNodeFlags: z.array(z.string()),
  fleetNodeFlags: z.array(z.string()),
  pinned: z.boolean(),
  hostname: z.string(),
  startedAtIso: z.string(),
});
export type Environment = z.infer<typeof EnvironmentSchema>;

/** result.json. `capacity` is present when the result comes from `wami-bench capacity`; `skippedStages` when the preflight skipped optional stages. */
export const ResultFileSchema = z.object({
  schemaVersion: z.literal(RESULT_SCHEMA_VERSION),
  runId: z.string().min(1),
  tool: z.object({ name: z.literal('wami-bench'), version: z.string() }),
  scenario: z.object({
    name: z.string(),
    file: z.string().nullable(),
    hash: z.string(),
    resolved: z.record(z.string(), z.unknown()),
  }),
  environment: EnvironmentSchema,
  status: RunStatusSchema,
  reasons: z.array(z.string()),
  runs: z.array(RunRecordSchema),
  startedAtIso: z.string(),
  finishedAtIso: z.string(),
  capacity: CapacityReportSchema.optional(),
  /** Stages marked `optional` that the preflight skipped on this machine (for every variant), with why. */
  skippedStages: z.array(z.object({ index: z.number().int().nonnegative(), connections: num, reason: z.string() })).optional(),
});
export type ResultFile = z.infer<typeof ResultFileSchema>;

/** The JSON Schema of result.json (draft 2020-12), as committed in model/result.schema.json. */
export function resultJsonSchema(): unknown {
  return z.toJSONSchema(ResultFileSchema, { target: 'draft-2020-12' });
}
