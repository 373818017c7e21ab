/**
 * One shard of batched or floor `--shards N`: its core (the batched core with its queue and writer
 * thread, or the floor's core, nothing stored) for the boards b with shardOf(b, N) = its index, its
 * metrics and its health. Opened by a forked shard process (shard.ts) for shards 1…N-1, and by the
 * primary itself for shard 0 (sharded.ts): the primary hosts a shard, so a sharded tree is N
 * processes, not N + 1.
 */
import type { ServerMetrics } from '../common/metrics.js';
import { createMetrics } from '../common/metrics.js';
import { FloorCore } from '../floor/core.js';
import { loadFloorLayout } from '../floor/server.js';
import { BatchedCore } from './core.js';
import type { ShardConfig, ShardHealth } from './shard-ipc.js';

export interface OpenShard {
  core: BatchedCore | FloorCore;
  metrics: ServerMetrics;
  health: () => ShardHealth;
}

/** Opens shard `cfg.shard`'s core with its own metrics. Throws when it cannot start (the database, the writer thread). */
export async function openShard(cfg: ShardConfig): Promise<OpenShard> {
  const { shard, shards } = cfg;
  let core: BatchedCore | FloorCore | null = null;
  const metrics = createMetrics({
    dbFile: cfg.kind === 'floor' ? '' : cfg.opts.dbFile,
    connections: () => core?.connections ?? 0,
    queueDepth: () => core?.queueDepth ?? 0,
    queueDepthPeak: () => core?.takeQueuePeak() ?? 0,
    seqLeaseHeld: () => core?.held ?? 0,
  });
  core =
    cfg.kind === 'floor'
      ? new FloorCore({ ...loadFloorLayout(cfg.opts.dbFile, { index: shard, of: shards }), maxBufferedBytes: cfg.opts.maxBufferedBytes }, metrics)
      : await BatchedCore.open({ ...cfg.opts, writerSharedFile: true }, metrics, { index: shard, of: shards });
  const c = core;
  return {
    core: c,
    metrics,
    health: () => ({ shard, pid: process.pid, connections: c.connections, queueDepth: c.queueDepth, boards: c.boardCount }),
  };
}
