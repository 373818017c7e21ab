/**
 * Wire protocol v1: message types shared by the servers, the fleet and the conformance checker.
 * The normative description is protocol/README.md; this file is its executable form.
 */

/** Protocol version announced by `/healthz` and recorded in results. */
export const PROTOCOL_VERSION = 1;

/** Columns a card can be in. A frame naming any other column is `BAD_MESSAGE`. */
export const COLUMNS = ['backlog', 'todo', 'doing', 'review', 'done'] as const;
export type Column = (typeof COLUMNS)[number];

/** Largest client frame the parser accepts, in bytes (UTF-8). Larger frames get `BAD_MESSAGE`. */
export const MAX_FRAME_BYTES = 4096;
/** Largest `title`, in UTF-16 code units (JavaScript string length). */
export const MAX_TITLE_LENGTH = 200;
/** Largest `id` (client message id), in characters. */
export const MAX_ID_LENGTH = 64;
/**
 * The transport's hard ceiling (ws `maxPayload`), in bytes. Frames between MAX_FRAME_BYTES and this
 * get `BAD_MESSAGE` and the socket stays open; frames above it are closed by the transport with
 * close code 1009 (message too big), because a server must not buffer unbounded input.
 */
export const DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024;

/** Stable error codes. Never renumber or rename: outside implementations rely on them. */
export const ERROR_CODES = ['BAD_MESSAGE', 'UNKNOWN_CARD', 'OVERLOADED', 'BUSY_EXHAUSTED', 'WRITE_FAILED'] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** WebSocket close code used when a slow consumer's unsent buffer passes the server's bound. */
export const CLOSE_SLOW_CONSUMER = 4008;
/** WebSocket close code used when the server shuts down. */
export const CLOSE_GOING_AWAY = 1001;

/** client -> server */
export interface ClientUpdate {
  type: 'update';
  /** Unique per sender (per `user`); used to match the ack and for exactly-once storage. */
  id: string;
  /** Card id; must belong to the socket's board. */
  card: number;
  column: Column;
  title: string;
  /** Scheduled send time, ms on the fleet's shared clock. */
  at: number;
  /** Actual send time, ms on the fleet's shared clock. */
  sentAt: number;
}

/** server -> sender, once the update is durably committed. */
export interface AckMessage {
  type: 'ack';
  id: string;
  /** The board's sequence number given to this update. */
  seq: number;
  /** Time the update waited before its transaction began, ms. */
  queueMs: number;
  /** Time of the commit (of the batch, for batched), ms. */
  commitMs: number;
  /** Transaction attempts (1 = no retry). Always 1 for batched unless the batch was retried. */
  attempts: number;
}

/** server -> every other socket on the board. */
export interface BroadcastMessage extends Omit<ClientUpdate, 'type'> {
  type: 'update';
  /** The sender's user id. */
  from: number;
  seq: number;
}

/** server -> sender, when an update is refused or failed. */
export interface ErrorMessage {
  type: 'error';
  id?: string;
  code: ErrorCode;
  message: string;
}

export type ServerMessage = AckMessage | BroadcastMessage | ErrorMessage;

/**
 * The metric names of /metrics, spelled once: the servers register them, the runner scrapes them,
 * the conformance check requires them (see protocol/README.md §7).
 */
export const METRIC = {
  connections: 'wami_connections',
  received: 'wami_updates_received_total',
  persisted: 'wami_updates_persisted_total',
  broadcastFrames: 'wami_broadcast_frames_total',
  errors: 'wami_errors_total',
  slowConsumerCloses: 'wami_slow_consumer_closes_total',
  queueDepth: 'wami_queue_depth',
  batchSize: 'wami_batch_size',
  commitSeconds: 'wami_commit_duration_seconds',
  queueWaitSeconds: 'wami_queue_wait_seconds',
  busy: 'wami_sqlite_busy_total',
  retries: 'wami_tx_retries_total',
  exhausted: 'wami_busy_exhausted_total',
  txAttempts: 'wami_tx_attempts',
  walBytes: 'wami_wal_bytes',
  broadcastUnpersisted: 'wami_broadcast_unpersisted_total',
  /** batched only: failing batches split in two to isolate bad rows (not required of other servers). */
  batchSplits: 'wami_batch_splits_total',
  /** batched only: updates held because their board reached its committed seq lease (not required of other servers). */
  seqLeaseHolds: 'wami_seq_lease_holds_total',
  /** batched only: updates held for a seq lease right now (gauge; not required of other servers). */
  seqLeaseHeld: 'wami_seq_lease_held',
  /** batched only: transactions that only extended seq leases (no update rows; not required of other servers). */
  seqLeaseOnlyCommits: 'wami_seq_lease_only_commits_total',
  /** Reference servers: slow consumers whose 4008 close could not be completed within the grace and were dropped (not required). */
  slowConsumerDestroyed: 'wami_slow_consumer_destroyed_total',
  /** Reference servers: update frames that arrived after the server had sent its Close frame, so could not be answered (not required). */
  updatesAfterClose: 'wami_updates_after_close_total',
  /** Optional: the highest queue depth since the previous scrape (the server keeps it, resets it at each scrape). */
  queueDepthPeak: 'wami_queue_depth_peak',
  /** Optional (batched): one flush of the queue (take it, commit, ack), seconds. */
  flushSeconds: 'wami_flush_duration_seconds',
  /** Optional: each process's event-loop delay p99 since the previous scrape, seconds, labelled `pid`. */
  eventLoopDelayP99Seconds: 'wami_event_loop_delay_p99_seconds',
  /** Optional: the WAL header's checkpoint sequence number (+1 each time the WAL restarts after a complete checkpoint). */
  walCheckpointSeq: 'wami_wal_checkpoint_seq',
  /** Optional: WAL frames not yet copied into the database by a checkpoint. */
  walBacklogFrames: 'wami_wal_backlog_frames',
} as const;

/** Metrics of the reference servers that protocol v1 does not require of every server; the runner uses them when present. */
export const OPTIONAL_METRIC_NAMES: readonly string[] = [
  METRIC.batchSplits,
  METRIC.seqLeaseHolds,
  METRIC.seqLeaseHeld,
  METRIC.seqLeaseOnlyCommits,
  METRIC.slowConsumerDestroyed,
  METRIC.updatesAfterClose,
  METRIC.queueDepthPeak,
  METRIC.flushSeconds,
  METRIC.eventLoopDelayP99Seconds,
  METRIC.walCheckpointSeq,
  METRIC.walBacklogFrames,
];

/** The metric names every v1 server exposes on /metrics (all of METRIC but the optional ones above). */
export const METRIC_NAMES: readonly string[] = Object.values(METRIC).filter((n) => !OPTIONAL_METRIC_NAMES.includes(n));
