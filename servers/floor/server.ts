/**
 * `wami-bench serve floor` as a running server: the shared front + the floor's core
 * (servers/floor/core.ts). The seeded file is read once at start for the layout (which boards
 * exist, which board owns each card, each board's seq) and closed: nothing is stored, no SQLite
 * runs while serving, and `/healthz` says `storage: "none"`. With `--shards N` (N >= 2) it runs
 * the batched primary and shards (servers/batched/sharded.ts) with this core in each shard.
 */
import { listenProblem } from '../../model/errors.js';
import type { FloorOptions } from '../../model/variants.js';
import { PROTOCOL_VERSION } from '../../protocol/messages.js';
import { CardIndex, loadBoardSeqs } from '../common/boards.js';
import { openDb } from '../common/db.js';
import { Front } from '../common/front.js';
import { createMetrics, renderMetrics } from '../common/metrics.js';
import { shardOf } from '../batched/shard-of.js';
import type { RunningServer } from '../batched/server.js';
import { FloorCore } from './core.js';

export interface FloorServerOptions extends FloorOptions {
  /** The seeded database, read once at start for the layout. */
  dbFile: string;
  host: string;
  port: number;
}

/** The boards (with their seq) and cards of the seeded file; a shard keeps only its own boards. */
export function loadFloorLayout(dbFile: string, shard?: { index: number; of: number }): { boards: [number, number][]; cards: CardIndex } {
  const db = openDb(dbFile, { readonly: true });
  try {
    const boards = [...loadBoardSeqs(db)].filter(([id]) => !shard || shardOf(id, shard.of) === shard.index);
    return { boards, cards: CardIndex.load(db) };
  } finally {
    db.close();
  }
}

export async function startFloorServer(opts: FloorServerOptions): Promise<RunningServer> {
  let core: FloorCore | null = null;
  const metrics = createMetrics({ dbFile: '', connections: () => core?.connections ?? 0, queueDepth: () => 0, queueDepthPeak: () => 0 });
  core = new FloorCore({ ...loadFloorLayout(opts.dbFile), maxBufferedBytes: opts.maxBufferedBytes }, metrics);
  const c = core;
  const startedAt = Date.now();
  const front = new Front({
    host: opts.host,
    port: opts.port,
    maxPayloadBytes: opts.maxPayloadBytes,
    hasBoard: (id) => c.hasBoard(id),
    onSocket: (ws, board, user) => c.attach(ws, board, user),
    healthz: () => ({
      status: 'ok',
      variant: 'floor',
      storage: 'none',
      protocol: PROTOCOL_VERSION,
      pid: process.pid,
      connections: c.connections,
      queueDepth: 0,
      boards: c.boardCount,
      uptimeSec: Math.round((Date.now() - startedAt) / 1000),
    }),
    metrics: () => renderMetrics(metrics),
    upgradeHeaders: [`X-Wami-Pid: ${process.pid}`],
  });
  let addr: Awaited<ReturnType<Front['listen']>>;
  try {
    addr = await front.listen();
  } catch (e) {
    throw listenProblem(e, opts.host, opts.port) ?? e;
  }
  let stopping: Promise<string[]> | null = null;
  return {
    host: addr.address,
    port: addr.port,
    failed: c.failed,
    stop: () =>
      (stopping ??= (async () => {
        front.stopAccepting();
        await c.shutdown();
        await c.waitSocketsClosed(2000);
        front.destroyAll();
        return [];
      })()),
  };
}
