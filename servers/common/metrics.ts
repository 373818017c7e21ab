/**
 * The metrics both variants expose on `GET /metrics` (Prometheus text via prom-client). The names
 * are a contract with the runner, which scrapes them by name; see protocol/README.md.
 *
 * Two registries: `app` (the wami_* metrics) and `defaults` (prom-client's default process/Node
 * metrics, among them `nodejs_eventloop_lag_p99_seconds` and `process_resident_memory_bytes`).
 * They are collected separately and every collection is caught, so a scrape can never crash a
 * server (near 20k sockets reading /proc or `process.memoryUsage()` can throw EMFILE).
 */
import { statSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { METRIC } from '../../protocol/messages.js';
import { WalHeads, type WalState } from './wal.js';
import client, { type Counter, type Gauge, type Histogram, type MetricObjectWithValues, type MetricValue, Registry } from 'prom-client';

export interface MetricsHooks {
  /** Open sockets of this process. */
  connections: () => number;
  /** Updates waiting to be written (batched: queued, not yet taken by the writer; per-request: in flight). */
  queueDepth: () => number;
  /** The SQLite database file; its `-wal` file's size is `wami_wal_bytes`. */
  dbFile: string;
  /** The highest queue depth since the last call, which starts a new period (`wami_queue_depth_peak`). */
  queueDepthPeak?: () => number;
  /** batched: updates held for a seq lease now; registers the seq lease metrics. */
  seqLeaseHeld?: () => number;
}

/**
 * prom-client default metrics whose collect() costs O(sockets) in the scraped process's event loop,
 * left out of every server's /metrics: `process_open_fds` lists /proc/self/fd (one entry per socket),
 * `nodejs_active_handles[_total]` and `nodejs_active_resources[_total]` build an array of every
 * libuv handle (a socket is one) at each scrape. The runner reads none of them.
 */
export const PER_SOCKET_DEFAULT_METRICS = [
  'process_open_fds',
  'nodejs_active_handles',
  'nodejs_active_handles_total',
  'nodejs_active_resources',
  'nodejs_active_resources_total',
] as const;

/** Resolution of the event-loop monitors, ms (prom-client's default metrics use the same). */
export const EVENT_LOOP_RESOLUTION_MS = 10;

export interface ServerMetrics {
  app: Registry;
  defaults: Registry;
  updatesReceived: Counter;
  updatesPersisted: Counter;
  broadcastFrames: Counter;
  errors: Counter<'code'>;
  slowConsumerCloses: Counter;
  batchSize: Histogram;
  commitDuration: Histogram;
  queueWait: Histogram;
  sqliteBusy: Counter;
  txRetries: Counter;
  busyExhausted: Counter;
  txAttempts: Histogram;
  broadcastUnpersisted: Counter;
  batchSplits: Counter;
  flushDuration: Histogram;
  slowConsumerDestroyed: Counter;
  updatesAfterClose: Counter;
  /** batched only (registered when the hooks give seqLeaseHeld). */
  seqLeaseHolds?: Counter;
  seqLeaseOnlyCommits?: Counter;
}

/**
 * Makes one metric's collect() unable to fail a scrape: if it throws (EMFILE reading /proc or in
 * process.memoryUsage() near the file limit), the metric keeps its last value.
 */
function guardCollect(m: unknown): void {
  const metric = m as { collect?: (this: unknown) => unknown };
  const orig = metric.collect;
  if (typeof orig !== 'function') return;
  metric.collect = function (this: unknown) {
    try {
      const r = orig.call(this);
      return r instanceof Promise ? r.catch(() => undefined) : r;
    } catch {
      return undefined;
    }
  };
}

/**
 * Sets a gauge from a collector, or leaves its sample out when the collector fails (throws, or gives
 * no finite number): a failed reading is unknown, never 0 (the runner reads an absent sample as null).
 */
function setOrOmit(g: Gauge, fn: () => number): void {
  let v: number;
  try {
    v = fn();
  } catch {
    v = Number.NaN;
  }
  if (Number.isFinite(v)) g.set(v);
  else g.remove();
}

/** The size of the -wal file: 0 when there is none (checkpointed and truncated, or never written); a failed stat throws. */
function walSize(dbFile: string): number {
  try {
    return statSync(`${dbFile}-wal`).size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
}

export function createMetrics(hooks: MetricsHooks): ServerMetrics {
  const app = new Registry();
  const defaults = new Registry();
  try {
    client.collectDefaultMetrics({ register: defaults, eventLoopMonitoringPrecision: 10 });
    // The observer effect: these walk every socket of the process on each scrape, in its event loop
    // (readdirSync of /proc/self/fd; an array of every libuv handle or resource, built twice). The
    // runner reads none of them; `micro --suites scrape` measures what they cost.
    for (const name of PER_SOCKET_DEFAULT_METRICS) defaults.removeSingleMetric(name);
    for (const m of defaults.getMetricsAsArray()) guardCollect(m);
  } catch {
    // default metrics are a nice-to-have; never fail startup on them
  }
  const reg = [app];
  const counter = (name: string, help: string): Counter => new client.Counter({ name, help, registers: reg });
  new client.Gauge({
    name: METRIC.connections,
    help: 'Open WebSocket connections.',
    registers: reg,
    collect(this: Gauge) {
      setOrOmit(this, hooks.connections);
    },
  });
  new client.Gauge({
    name: METRIC.queueDepth,
    help: 'Updates accepted but not yet in a transaction (batched: waiting in the queue; per-request: in flight incl. backoff).',
    registers: reg,
    collect(this: Gauge) {
      setOrOmit(this, hooks.queueDepth);
    },
  });
  new client.Gauge({
    name: METRIC.walBytes,
    help: 'Size of the SQLite -wal file in bytes.',
    registers: reg,
    aggregator: 'max',
    collect(this: Gauge) {
      setOrOmit(this, () => walSize(hooks.dbFile));
    },
  });
  if (hooks.queueDepthPeak) {
    const peak = hooks.queueDepthPeak;
    new client.Gauge({
      name: METRIC.queueDepthPeak,
      help: 'Highest wami_queue_depth since the previous scrape (kept by the server between scrapes; summed over processes).',
      registers: reg,
      collect(this: Gauge) {
        setOrOmit(this, peak);
      },
    });
  }
  // This process's event-loop delay since the previous scrape, labelled by pid so an aggregate over
  // processes keeps one series each: a saturated worker cannot hide in prom-client's average.
  const eld = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
  eld.enable();
  const pid = String(process.pid);
  new client.Gauge({
    name: METRIC.eventLoopDelayP99Seconds,
    help: `This process's event-loop delay p99 since the previous scrape, seconds (includes the monitor's ${EVENT_LOOP_RESOLUTION_MS} ms resolution).`,
    labelNames: ['pid'] as const,
    registers: reg,
    collect(this: Gauge<'pid'>) {
      const v = eld.count > 0 ? eld.percentile(99) / 1e9 : 0;
      eld.reset();
      this.set({ pid }, Number.isFinite(v) ? v : 0);
    },
  });
  // held for the process's life (see WalHeads); none for a server that stores nothing (the floor: no file)
  const wal = hooks.dbFile ? new WalHeads(hooks.dbFile) : null;
  const walGauge = (name: string, help: string, pick: (w: WalState) => number): void => {
    new client.Gauge({
      name,
      help,
      registers: reg,
      aggregator: 'max',
      collect(this: Gauge) {
        const w = wal?.read();
        if (w) this.set(pick(w));
      },
    });
  };
  walGauge(
    METRIC.walCheckpointSeq,
    'The WAL header checkpoint sequence number: +1 each time the WAL restarts from its start after a complete checkpoint.',
    (w) => w.checkpointSeq,
  );
  walGauge(METRIC.walBacklogFrames, 'WAL frames not yet copied into the database by a checkpoint (wal-index mxFrame - nBackfill).', (w) =>
    Math.max(0, w.frames - w.backfilled),
  );
  const lease = hooks.seqLeaseHeld;
  if (lease) {
    new client.Gauge({
      name: METRIC.seqLeaseHeld,
      help: 'batched: updates held because their board reached its committed seq lease (no seq, not broadcast yet).',
      registers: reg,
      collect(this: Gauge) {
        setOrOmit(this, lease);
      },
    });
  }
  return {
    ...(lease
      ? {
          seqLeaseHolds: counter(METRIC.seqLeaseHolds, 'batched: updates held until their board got a new seq lease (committed by the writer).'),
          seqLeaseOnlyCommits: counter(METRIC.seqLeaseOnlyCommits, 'batched: transactions that only extended seq leases (no update rows).'),
        }
      : {}),
    app,
    defaults,
    flushDuration: new client.Histogram({
      name: METRIC.flushSeconds,
      help: 'batched: one flush of the queue, from taking it to the last ack sent, seconds (compare with the flush interval).',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10],
      registers: reg,
    }),
    updatesReceived: counter(METRIC.received, 'Valid update frames received from clients.'),
    updatesPersisted: counter(METRIC.persisted, 'Updates committed to SQLite (one cards UPDATE + one card_events INSERT each).'),
    broadcastFrames: counter(METRIC.broadcastFrames, 'Broadcast frames sent to sockets (one per receiving socket).'),
    errors: new client.Counter({ name: METRIC.errors, help: 'Error frames sent, by code.', labelNames: ['code'] as const, registers: reg }),
    slowConsumerCloses: counter(METRIC.slowConsumerCloses, 'Sockets closed (4008) because their unsent buffer passed --max-buffered-bytes.'),
    batchSize: new client.Histogram({
      name: METRIC.batchSize,
      help: 'Updates per committed transaction.',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000],
      registers: reg,
    }),
    commitDuration: new client.Histogram({
      name: METRIC.commitSeconds,
      help: 'Duration of a committed transaction, BEGIN to COMMIT, in seconds.',
      buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
      registers: reg,
    }),
    queueWait: new client.Histogram({
      name: METRIC.queueWaitSeconds,
      help: 'Per update: from receipt to the start of the transaction that committed it, in seconds.',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10],
      registers: reg,
    }),
    sqliteBusy: counter(METRIC.busy, 'SQLITE_BUSY errors met (each failed attempt).'),
    txRetries: counter(METRIC.retries, 'Transaction attempts beyond the first (retries).'),
    busyExhausted: counter(METRIC.exhausted, 'Updates answered BUSY_EXHAUSTED (retries ran out).'),
    txAttempts: new client.Histogram({
      name: METRIC.txAttempts,
      help: 'Transaction attempts per finished update (committed or given up).',
      buckets: [1, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50, 100],
      registers: reg,
    }),
    broadcastUnpersisted: counter(
      METRIC.broadcastUnpersisted,
      'batched: updates already broadcast (before commit) whose write finally failed: phantoms by design.',
    ),
    batchSplits: counter(METRIC.batchSplits, 'batched: failing batches split in two to isolate bad rows.'),
    slowConsumerDestroyed: counter(
      METRIC.slowConsumerDestroyed,
      'Slow consumers (closed with 4008) whose close could not be completed within the grace (the peer did not read): the connection was dropped.',
    ),
    updatesAfterClose: counter(
      METRIC.updatesAfterClose,
      'Update frames that arrived after the server sent its Close frame (shutdown): not processed, and no answer can be sent (RFC 6455).',
    ),
  };
}

async function safeText(r: Registry, what: string): Promise<string> {
  try {
    return await r.metrics();
  } catch (e) {
    return `# ${what} metrics unavailable: ${String((e as Error)?.message ?? e).replace(/\n/g, ' ')}\n`;
  }
}

/** Prometheus text of this process's metrics. Never throws. */
export async function renderMetrics(m: ServerMetrics): Promise<string> {
  const a = await safeText(m.app, 'wami');
  const d = await safeText(m.defaults, 'default');
  return a.endsWith('\n') || a === '' ? a + d : `${a}\n${d}`;
}

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/** This process's metrics as JSON (for cluster aggregation). Never throws; a failing registry is skipped. */
export async function metricsJson(m: ServerMetrics): Promise<MetricObjectWithValues<MetricValue<string>>[][]> {
  const out: MetricObjectWithValues<MetricValue<string>>[][] = [];
  for (const r of [m.app, m.defaults]) {
    try {
      out.push((await r.getMetricsAsJSON()) as MetricObjectWithValues<MetricValue<string>>[]);
    } catch {
      // skipped: see renderMetrics
    }
  }
  return out;
}

/**
 * An unlabelled gauge that some process left out (its collector failed: unknown) is left out of the
 * aggregate too: a sum or max over the processes that answered would be a wrong number, not a partial one.
 */
export function withoutPartialGauges(flat: MetricObjectWithValues<MetricValue<string>>[][]): MetricObjectWithValues<MetricValue<string>>[][] {
  const omitted = new Set<string>();
  for (const list of flat) for (const m of list) if (String(m.type) === 'gauge' && m.values.length === 0) omitted.add(m.name);
  if (omitted.size === 0) return flat;
  const unlabelled = (m: MetricObjectWithValues<MetricValue<string>>): boolean => m.values.every((v) => Object.keys(v.labels ?? {}).length === 0);
  const partial = new Set<string>();
  for (const list of flat) for (const m of list) if (omitted.has(m.name) && m.values.length > 0 && unlabelled(m)) partial.add(m.name);
  return flat.map((list) => list.map((m) => (partial.has(m.name) ? { ...m, values: [] } : m)));
}

/** Aggregates the JSON metrics of several processes (sum unless the metric says otherwise). Never throws. */
export async function aggregateMetrics(perProcess: MetricObjectWithValues<MetricValue<string>>[][][]): Promise<string> {
  try {
    const flat = perProcess.flat();
    return await client.AggregatorRegistry.aggregate(withoutPartialGauges(flat)).metrics();
  } catch (e) {
    return `# aggregated metrics unavailable: ${String((e as Error)?.message ?? e).replace(/\n/g, ' ')}\n`;
  }
}
