/**
 * One per-request worker process (node:cluster, forked by primary.ts): the process around a
 * PerRequestCore (core.ts). It reads its options from the environment, serves the shared front on
 * the cluster's port, answers the primary's gathers, asks the primary to gather /metrics and
 * /healthz over all workers, and stops gracefully on SIGTERM, SIGINT or when the primary goes away.
 */
import { PROTOCOL_VERSION } from '../../protocol/messages.js';
import { Front } from '../common/front.js';
import { createMetrics } from '../common/metrics.js';
import { answerCollect, type GatherWhat } from '../common/supervisor.js';
import { WORKER_CONFIG_ENV, type PerRequestServerOptions, type ToPrimary, type ToWorker, type WorkerHealth } from './config.js';
import { PerRequestCore } from './core.js';

const opts = JSON.parse(process.env[WORKER_CONFIG_ENV] ?? 'null') as PerRequestServerOptions | null;
if (!opts) {
  process.stderr.write(`per-request worker: ${WORKER_CONFIG_ENV} is not set (started outside the primary?)\n`);
  process.exit(2);
}

let core: PerRequestCore | null = null;
const metrics = createMetrics({
  dbFile: opts.dbFile,
  connections: () => core?.connections ?? 0,
  queueDepth: () => core?.inflight ?? 0,
  queueDepthPeak: () => core?.takeInflightPeak() ?? 0,
});
core = PerRequestCore.open(opts, metrics);
const c = core;

// --- gathering metrics / health over all workers, through the primary -------------------------
let nextReq = 1;
const gathers = new Map<number, (data: unknown) => void>();
function gather(what: GatherWhat): Promise<unknown> {
  const req = nextReq++;
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      gathers.delete(req);
      resolve(null);
    }, 3000);
    gathers.set(req, (d) => {
      clearTimeout(t);
      resolve(d);
    });
    process.send?.({ wami: 'gather', req, what } satisfies ToPrimary);
  });
}
process.on('message', (m: ToWorker) => {
  if (m?.wami === 'gathered') {
    gathers.get(m.req)?.(m.data);
    gathers.delete(m.req);
  } else
    answerCollect(
      m,
      metrics,
      () => c.health(),
      (reply) => void process.send?.(reply),
      (on) => c.setDiskFull(on),
    );
});

const front = new Front({
  host: opts.host,
  port: opts.port,
  maxPayloadBytes: opts.maxPayloadBytes,
  hasBoard: (id) => c.hasBoard(id),
  onSocket: (ws, board, user) => c.attach(ws, board, user),
  healthz: async () => {
    const all = ((await gather('health')) as WorkerHealth[] | null) ?? [c.health()];
    return {
      status: 'ok',
      variant: 'per-request',
      protocol: PROTOCOL_VERSION,
      pid: process.pid,
      primaryPid: process.ppid,
      workers: opts.workers,
      connections: all.reduce((s, w) => s + w.connections, 0),
      txMode: opts.txMode,
      perWorker: all,
    };
  },
  metrics: async () => {
    const text = (await gather('metrics')) as string | null;
    return text ?? '# aggregated metrics unavailable (primary did not answer)\n';
  },
  readBoard: c.readBoard,
  upgradeHeaders: [`X-Wami-Pid: ${process.pid}`],
  ...(opts.faultInjection
    ? {
        faults: {
          // every worker's connection, through the primary
          diskFull: async (on: boolean) => {
            const got = ((await gather(on ? 'disk-full-on' : 'disk-full-off')) as unknown[] | null) ?? [];
            return { diskFull: on, processes: got.filter((x) => x === true).length, of: opts.workers };
          },
        },
      }
    : {}),
});

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  front.stopAccepting();
  await c.shutdown();
  front.destroyAll();
  c.close();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
process.on('disconnect', () => void shutdown()); // the primary is gone

front.listen().catch((e: NodeJS.ErrnoException) => {
  // The primary reports it (once, for every worker) and stops the others; this worker just goes.
  const done = (): void => {
    c.close();
    process.exit(1);
  };
  if (process.send) process.send({ wami: 'listen-failed', code: e.code ?? null, message: e.message } satisfies ToPrimary, done);
  else {
    process.stderr.write(`per-request worker ${process.pid}: listen failed: ${e.message}\n`);
    done();
  }
});
