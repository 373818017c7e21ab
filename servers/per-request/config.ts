/** Options of the per-request variant (shared by the primary and its workers). */
import type { RetryPolicy } from './retry-policy.js';
import type { TxMode } from './tx.js';

export interface PerRequestOptions {
  dbFile: string;
  host: string;
  port: number;
  /** Worker processes (node:cluster). Default os.availableParallelism(). */
  workers: number;
  /** `immediate` (BEGIN IMMEDIATE, default) or `deferred` (plain BEGIN: the Redbean/Fullmoon baseline). */
  txMode: TxMode;
  /** SQLite's own busy_timeout, ms. Default 0: the app retries instead. */
  busyTimeoutMs: number;
  retry: RetryPolicy;
  /** Period of the card_events poll, ms. Default 20. */
  pollMs: number;
  /** Rows read per poll at most (the next poll goes on). Default 10000. */
  pollBatch: number;
  maxPayloadBytes: number;
  maxBufferedBytes: number;
}

export const WORKER_CONFIG_ENV = 'WAMI_PER_REQUEST_CONFIG';

/** IPC between a worker and the primary (cluster messages). */
export type ToPrimary =
  | { wami: 'gather'; req: number; what: 'metrics' | 'health' }
  | { wami: 'collected'; gid: number; data: unknown };
export type ToWorker =
  | { wami: 'collect'; gid: number; what: 'metrics' | 'health' }
  | { wami: 'gathered'; req: number; data: unknown };

export interface WorkerHealth {
  pid: number;
  connections: number;
  inflight: number;
  activeBoards: number;
}
