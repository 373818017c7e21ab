/**
 * batched and floor `--shards N`: what the primary and its shard processes share. Board b lives in shard
 * `shardOf(b, N)`; the messages they exchange over the fork() IPC channel.
 */
import type { CollectedMessage, CollectMessage } from '../common/supervisor.js';
import type { FloorServerOptions } from '../floor/server.js';
import type { BatchedServerOptions } from './server.js';

export { shardOf } from './shard-of.js';

/** Environment variable carrying a shard's ShardConfig (JSON). */
export const SHARD_CONFIG_ENV = 'WAMI_BATCHED_SHARD_CONFIG';

/** Which core a shard runs, with the server's options (host/port unused: a shard never listens). */
export type ShardedKind = { kind: 'batched'; opts: BatchedServerOptions } | { kind: 'floor'; opts: FloorServerOptions };

export type ShardConfig = ShardedKind & {
  /** This shard's index, 0..shards-1. */
  shard: number;
  shards: number;
};

/** Primary -> shard. A `conn` message comes with the socket's handle. */
export type ToShard =
  | { wami: 'conn' /** the request head as read by the primary, plus any bytes after it (latin1) */; head: string }
  | CollectMessage
  | { wami: 'stop' };

/** Shard -> primary. */
export type FromShard =
  | { wami: 'ready'; pid: number; boards: number }
  /** Answers every `conn` at once (before the handshake): the primary may send the next socket. */
  | { wami: 'got' }
  | CollectedMessage
  | { wami: 'fatal'; message: string };

export interface ShardHealth {
  shard: number;
  pid: number;
  connections: number;
  queueDepth: number;
  boards: number;
}
