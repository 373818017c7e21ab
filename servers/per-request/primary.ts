/**
 * The per-request variant's primary: forks W workers (node:cluster, round-robin connection
 * balancing on one port) under the shared supervisor (servers/common/supervisor.ts), aggregates
 * their metrics (prom-client AggregatorRegistry.aggregate over each worker's JSON) and health for
 * whichever worker serves `/metrics` or `/healthz`, and stops them on SIGTERM. It holds no sockets
 * and no database connection itself.
 */
import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { listenProblem } from '../../model/errors.js';
import { aggregateMetrics } from '../common/metrics.js';
import { Supervisor } from '../common/supervisor.js';
import { WORKER_CONFIG_ENV, type PerRequestServerOptions, type ToPrimary, type ToWorker } from './config.js';

export interface RunningPerRequest {
  host: string;
  port: number;
  workerPids: number[];
  /** Graceful stop; resolves with the problems met (a worker that did not exit 0 in time), empty when clean. */
  stop(): Promise<string[]>;
  /** Resolves with an error message if a worker dies on its own (the others are then stopped). */
  failed: Promise<string>;
}

/** Longest wait for the workers' answers to a /metrics or /healthz gather. */
const GATHER_TIMEOUT_MS = 2000;
/** Longest wait for a worker to finish its transactions and exit on stop before it is killed. */
const STOP_TIMEOUT_MS = 15_000;

export async function startPerRequestServer(opts: PerRequestServerOptions): Promise<RunningPerRequest> {
  if (!cluster.isPrimary) throw new Error('startPerRequestServer must run in the primary process');
  cluster.setupPrimary({ exec: fileURLToPath(new URL('./worker.js', import.meta.url)), args: [] });
  cluster.schedulingPolicy = cluster.SCHED_RR;

  const sup = new Supervisor({
    describe: (c) => `worker pid ${c.pid}`,
    gatherTimeoutMs: GATHER_TIMEOUT_MS,
    stopTimeoutMs: STOP_TIMEOUT_MS,
    stopWhat: 'finish its transactions',
  });
  const env = { [WORKER_CONFIG_ENV]: JSON.stringify(opts) };
  const listening = new Promise<{ address: string; port: number }>((resolve, reject) => {
    let n = 0;
    let first: { address: string; port: number } | null = null;
    for (let i = 0; i < opts.workers; i++) {
      const w = cluster.fork(env);
      const c = sup.add(w.process, i, (_c, { code, signal }, stopping) => {
        if (!stopping) reject(new Error(`worker ${w.process.pid} exited (code ${code}, signal ${signal}) before listening`));
      });
      // A worker asks for a gather over all workers (for the /metrics or /healthz it serves): gather, answer it.
      w.process.on('message', (m: ToPrimary) => {
        if (m?.wami === 'listen-failed') {
          const e = Object.assign(new Error(m.message), m.code ? { code: m.code } : {});
          reject(listenProblem(e, opts.host, opts.port) ?? e);
          return;
        }
        if (m?.wami !== 'gather') return;
        void sup.gather(m.what).then(async (got) => {
          const data = m.what === 'metrics' ? await aggregateMetrics(got as MetricObjectWithValues<MetricValue<string>>[][][]) : got;
          if (!c.dead && c.child.connected) c.child.send({ wami: 'gathered', req: m.req, data } satisfies ToWorker);
        });
      });
      w.once('listening', (addr) => {
        first ??= { address: addr.address ?? opts.host, port: addr.port };
        if (++n === opts.workers) resolve(first);
      });
    }
  });

  const stop = (): Promise<string[]> => sup.stop();
  void sup.failed.then(() => void stop());
  try {
    const addr = await listening;
    return { host: addr.address, port: addr.port, workerPids: sup.children.map((c) => c.pid), stop, failed: sup.failed };
  } catch (e) {
    await stop();
    throw e;
  }
}
