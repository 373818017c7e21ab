/** The batched variant as a running server: the shared HTTP/upgrade front + the batched core. */
import { PROTOCOL_VERSION } from '../../protocol/messages.js';
import { boardReader } from '../common/boards.js';
import { openDb } from '../common/db.js';
import { Front } from '../common/front.js';
import { createMetrics, renderMetrics } from '../common/metrics.js';
import type { BatchedOptions } from '../../model/variants.js';
import { listenProblem } from '../../model/errors.js';
import { BatchedCore } from './core.js';

/** A batched server: its options (model/variants.ts) and where it serves which file. */
export interface BatchedServerOptions extends BatchedOptions {
  dbFile: string;
  host: string;
  port: number;
}

export interface RunningServer {
  host: string;
  port: number;
  /** Graceful stop (SIGTERM semantics). Resolves with the problems met (a process that did not stop cleanly), empty when clean. */
  stop(): Promise<string[]>;
  /** Resolves with a message when the server can no longer serve (a writer thread or a shard died): stop it, exit non-zero. */
  failed: Promise<string>;
}

export async function startBatchedServer(opts: BatchedServerOptions): Promise<RunningServer> {
  let core: BatchedCore | null = null;
  const metrics = createMetrics({
    dbFile: opts.dbFile,
    connections: () => core?.connections ?? 0,
    queueDepth: () => core?.queueDepth ?? 0,
    queueDepthPeak: () => core?.takeQueuePeak() ?? 0,
    seqLeaseHeld: () => core?.held ?? 0,
  });
  core = await BatchedCore.open(opts, metrics);
  const c = core;
  const reader = openDb(opts.dbFile, { readonly: true });
  const readBoard = boardReader(reader);
  const startedAt = Date.now();
  const front = new Front({
    host: opts.host,
    port: opts.port,
    maxPayloadBytes: opts.maxPayloadBytes,
    hasBoard: (id) => c.hasBoard(id),
    onSocket: (ws, board, user) => c.attach(ws, board, user),
    healthz: () => ({
      status: 'ok',
      variant: 'batched',
      protocol: PROTOCOL_VERSION,
      pid: process.pid,
      connections: c.connections,
      queueDepth: c.queueDepth,
      boards: c.boardCount,
      uptimeSec: Math.round((Date.now() - startedAt) / 1000),
    }),
    metrics: () => renderMetrics(metrics),
    readBoard,
    upgradeHeaders: [`X-Wami-Pid: ${process.pid}`],
    ...(opts.faultInjection
      ? {
          faults: {
            diskFull: async (on: boolean) => {
              await c.setDiskFull(on);
              return { diskFull: on, processes: 1 };
            },
          },
        }
      : {}),
  });
  let addr: Awaited<ReturnType<Front['listen']>>;
  try {
    addr = await front.listen();
  } catch (e) {
    // Nothing may outlive a failed start: the writer thread would keep the process alive.
    await c.shutdown();
    reader.close();
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
        const problem = await c.shutdown();
        if (problem) process.stderr.write(`batched: ${problem}\n`);
        await c.waitSocketsClosed(2000);
        front.destroyAll();
        reader.close();
        return [];
      })()),
  };
}
