/**
 * result.json, schema version 1: what `wami-bench run` writes to results/<runId>/result.json and
 * what the report, compare and exports read. The fleet's names (clients/types.ts) are reused as-is.
 * The JSON Schema published in the repo (runner/result.schema.json) is generated from the zod schema
 * in runner/result-schema.ts; this file is the TypeScript view of the same shape.
 */
import type {
  DeliveryReport,
  DriftReport,
  ErrorsReport,
  FleetCost,
  FleetResult,
  RunStatus,
  SocketsReport,
  TimePoint,
  UpdatesReport,
} from '../clients/types.js';

export const RESULT_SCHEMA_VERSION = 1;

export interface Environment {
  cpuModel: string;
  cpuCount: number;
  memTotalBytes: number;
  kernel: string;
  os: string;
  node: string;
  sqlite: string;
  packages: Record<string, string>;
  git: { commit: string | null; dirty: boolean | null };
  fdLimit: { soft: number | null; hard: number | null };
  ephemeralPortRange: [number, number] | null;
  /** Node flags every server process ran with (identical for all variants). */
  serverNodeFlags: string[];
  /** Node flags every fleet worker ran with. */
  fleetNodeFlags: string[];
  /** Whether server and fleet were pinned to separate CPUs (taskset). */
  pinned: boolean;
  hostname: string;
  startedAtIso: string;
}

/** One resource sample of the server process tree (and the fleet), taken once a second. */
export interface ResourceSample {
  /** Seconds since the run (this variant/stage/repeat) started. */
  t: number;
  serverRssBytes: number;
  serverPssBytes: number | null;
  /** Server CPU over the last second, percent of one core (the whole process tree). */
  serverCpuPct: number;
  serverProcesses: number;
  fleetRssBytes: number;
  fleetCpuPct: number;
  /** Sockets open at the server, if its metrics say so. */
  serverConnections: number | null;
  /** Kernel TCP socket memory from /proc/net/sockstat (pages * page size), bytes. */
  kernelTcpMemBytes: number | null;
}

/** The fleet's process tree over a run's window, as the resource sampler saw it. */
export interface FleetResources {
  rssBytesMax: number;
  cpuSec: number;
  /** Highest CPU of the whole fleet tree over one interval, percent of one core. */
  cpuPctMax: number;
  processesMax: number;
}

export interface ServerResources {
  rssBytesMax: number;
  pssBytesMax: number | null;
  cpuSec: number;
  /** (rssBytesMax - rss before sockets) / sockets reached; null when no socket was reached. */
  rssBytesPerSocket: number | null;
  /** RSS of the server tree after start, before the fleet connected. */
  rssBytesIdle: number;
  processes: number;
  samples: ResourceSample[];
  /** The fleet's process tree over the same window (the runner's own process included). */
  fleet?: FleetResources;
  /** Highest kernel TCP socket memory (/proc/net/sockstat, the whole host: both ends of loopback sockets), bytes. */
  kernelTcpMemBytesMax?: number | null;
  /** Resource readings that failed unexpectedly. */
  tickErrors?: number;
}

/** Metrics scraped from the server's /metrics once a second, reduced to what the report shows. */
export interface ServerMetricsSummary {
  updatesReceived: number;
  updatesPersisted: number;
  broadcastFrames: number;
  errorsByCode: Record<string, number>;
  batchSize: { count: number; mean: number; p50: number | null; p99: number | null; max: number | null } | null;
  commitMs: { count: number; mean: number; p50: number | null; p99: number | null } | null;
  queueDepthMax: number | null;
  busyHits: number;
  retries: number;
  exhausted: number;
  walBytesMax: number | null;
  eventLoopDelayMsP99: number | null;
  slowConsumerCloses: number;
  /** Per-second series of the counters above (deltas per second), for the SQLite panel. */
  timeseries: Array<{ t: number; queueDepth: number | null; walBytes: number | null; busyHits: number; retries: number; exhausted: number; persisted: number; commitMsP99: number | null; eventLoopDelayMsP99: number | null }>;
}

export interface AuditReport {
  /** Acked by the server but not in card_events. Any > 0 fails the correctness gate. */
  lostAcked: number;
  /** In card_events but never acked to the sender (e.g. ack lost in a crash). */
  storedNotAcked: number;
  /** Broadcast to members but not stored. Any > 0 fails the correctness gate. */
  phantom: number;
  /** Stored but never seen by any member (only counted where the board had other members connected). */
  notBroadcast: number;
  /** Cards whose row disagrees with the last event stored for the card. */
  finalStateMismatches: number;
  /** Boards whose stored seq is not 1..n without gaps. */
  seqGaps: number;
  eventsStored: number;
  ok: boolean;
  /** A few examples of each failure, for the reader. */
  examples: string[];
}

export interface ThresholdOutcome {
  expr: string;
  metric: string;
  op: string;
  limit: number;
  actual: number | null;
  pass: boolean;
}

export interface RunRecord {
  variant: string;
  /** The variant's kind (batched | per-request) and the flags it was started with. */
  variantKind: 'batched' | 'per-request';
  variantFlags: string[];
  via: 'direct' | 'caddy';
  stage: { index: number; connections: number; durationSec: number };
  repeat: number;
  status: RunStatus;
  reasons: string[];
  sockets: SocketsReport;
  latency: FleetResult['latency'];
  /** First against last part of the measured window (steady latency). */
  drift: DriftReport;
  /** The fleet's window: warm-up, measured seconds, and which time-series seconds were measured. */
  window: FleetResult['window'];
  updates: UpdatesReport;
  delivery: DeliveryReport;
  errors: ErrorsReport;
  fleet: FleetCost;
  timeseries: TimePoint[];
  resources: { server: ServerResources };
  server: ServerMetricsSummary;
  audit: AuditReport | null;
  thresholds: ThresholdOutcome[];
  /** autocannon results on the read path, when the scenario has an `http` block. */
  http?: Record<string, unknown>;
  wallSec: number;
}

export interface ResultFile {
  schemaVersion: typeof RESULT_SCHEMA_VERSION;
  runId: string;
  tool: { name: 'wami-bench'; version: string };
  scenario: { name: string; file: string | null; hash: string; resolved: Record<string, unknown> };
  environment: Environment;
  status: RunStatus;
  reasons: string[];
  runs: RunRecord[];
  startedAtIso: string;
  finishedAtIso: string;
  /** Present when the result comes from `wami-bench capacity`. */
  capacity?: import('./capacity.js').CapacityReport;
}
