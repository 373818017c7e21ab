/** Options of the per-request variant (shared by the primary and its workers), and their IPC. */
import type { PerRequestOptions } from '../../model/variants.js';
import type { CollectedMessage, CollectMessage, GatherWhat } from '../common/supervisor.js';
import type { RetryPolicy } from './retry-policy.js';

/** A per-request server: its options (model/variants.ts, defaults resolved) and where it serves which file. */
export interface PerRequestServerOptions extends PerRequestOptions {
  dbFile: string;
  host: string;
  port: number;
}

/** The retry policy a per-request server runs with, from its options. */
export function retryPolicyOf(o: PerRequestOptions): RetryPolicy {
  return { maxAttempts: o.retryMaxAttempts, deadlineMs: o.retryDeadlineMs, baseMs: o.retryBaseMs, maxMs: o.retryMaxMs };
}

export const WORKER_CONFIG_ENV = 'WAMI_PER_REQUEST_CONFIG';

/** IPC between a worker and the primary (cluster messages). */
export type ToPrimary =
  | { wami: 'gather'; req: number; what: GatherWhat }
  | CollectedMessage
  /** The worker could not listen (port in use, …): the primary reports it once and stops every worker. */
  | { wami: 'listen-failed'; code: string | null; message: string };
export type ToWorker = CollectMessage | { wami: 'gathered'; req: number; data: unknown };

export interface WorkerHealth {
  pid: number;
  connections: number;
  inflight: number;
  activeBoards: number;
}
