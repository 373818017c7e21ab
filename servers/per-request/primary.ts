/**
 * The per-request variant's primary: forks W workers (node:cluster, round-robin connection
 * balancing on one port), aggregates their metrics (prom-client AggregatorRegistry.aggregate over
 * each worker's JSON) and health for whichever worker serves `/metrics` or `/healthz`, and stops
 * them on SIGTERM. It holds no sockets and no database connection itself.
 */
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { aggregateMetrics } from '../common/metrics.js';
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

const GATHER_TIMEOUT_MS = 2000;

export async function startPerRequestServer(opts: PerRequestServerOptions): Promise<RunningPerRequest> {
  if (!cluster.isPrimary) throw new Error('startPerRequestServer must run in the primary process');
  cluster.setupPrimary({ exec: fileURLToPath(new URL('./worker.js', import.meta.url)), args: [] });
  cluster.schedulingPolicy = cluster.SCHED_RR;

  const workers: Worker[] = [];
  let stopping = false;
  let failWith: (msg: string) => void = () => {};
  const failed = new Promise<string>((r) => (failWith = r));

  // gather: one request from a worker -> collect from all workers -> answer the requester
  let nextGid = 1;
  const pending = new Map<number, { want: number; got: unknown[]; done: () => void }>();
  const onMessage = (from: Worker, m: ToPrimary): void => {
    if (m?.wami === 'collected') {
      const p = pending.get(m.gid);
      if (!p) return;
      p.got.push(m.data);
      if (p.got.length >= p.want) p.done();
    } else if (m?.wami === 'gather') {
      const gid = nextGid++;
      const live = workers.filter((w) => w.isConnected());
      const entry = { want: live.length, got: [] as unknown[], done: () => {} };
      const finished = new Promise<void>((r) => (entry.done = r));
      pending.set(gid, entry);
      for (const w of live) w.send({ wami: 'collect', gid, what: m.what } satisfies ToWorker);
      const timer = setTimeout(() => entry.done(), GATHER_TIMEOUT_MS);
      void finished.then(async () => {
        clearTimeout(timer);
        pending.delete(gid);
        const data =
          m.what === 'metrics'
            ? await aggregateMetrics(entry.got as MetricObjectWithValues<MetricValue<string>>[][][])
            : entry.got;
        if (from.isConnected()) from.send({ wami: 'gathered', req: m.req, data } satisfies ToWorker);
      });
    }
  };
  cluster.on('message', onMessage);

  const env = { [WORKER_CONFIG_ENV]: JSON.stringify(opts) };
  const listening = new Promise<{ address: string; port: number }>((resolve, reject) => {
    let n = 0;
    let first: { address: string; port: number } | null = null;
    for (let i = 0; i < opts.workers; i++) {
      const w = cluster.fork(env);
      workers.push(w);
      w.once('listening', (addr) => {
        first ??= { address: addr.address ?? opts.host, port: addr.port };
        if (++n === opts.workers) resolve(first);
      });
      w.once('exit', (code, signal) => {
        if (stopping) return;
        const msg = `worker ${w.process.pid} exited (code ${code}, signal ${signal})`;
        reject(new Error(`${msg} before listening`));
        failWith(msg);
      });
    }
  });

  let stopPromise: Promise<string[]> | null = null;
  const stop = (): Promise<string[]> =>
    (stopPromise ??= (async () => {
      stopping = true;
      const problems: string[] = [];
      await Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((res) => {
              if (w.isDead()) return res();
              let killed = false;
              const t = setTimeout(() => {
                killed = true;
                w.process.kill('SIGKILL');
              }, 15000);
              w.once('exit', (code: number | null, signal: string | null) => {
                clearTimeout(t);
                if (killed || code !== 0) {
                  problems.push(`worker pid ${w.process.pid} ${killed ? 'did not finish its transactions within 15 s and was killed' : `exited with code ${code}, signal ${signal}`}`);
                }
                res();
              });
              w.process.kill('SIGTERM');
            }),
        ),
      );
      cluster.off('message', onMessage);
      return problems;
    })());

  void failed.then(() => void stop());
  try {
    const addr = await listening;
    return { host: addr.address, port: addr.port, workerPids: workers.map((w) => w.process.pid ?? 0), stop, failed };
  } catch (e) {
    await stop();
    throw e;
  }
}
