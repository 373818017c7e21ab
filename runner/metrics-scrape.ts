/**
 * Scrapes the server's `GET /metrics` once a second and reduces the scrapes to a ServerMetricsSummary.
 *
 * `MetricsReducer` is pure (feed it parsed scrapes with their times; tested with exact numbers);
 * `MetricsScraper` wraps it with fetch, a timer and failure counting, and never throws.
 *
 * Semantics (units in the names):
 * - Counters (`updatesReceived`, `busyHits`, …, `errorsByCode`) are totals since the server started:
 *   the first scrape's value plus every increase after it; a drop is a counter reset (a restarted
 *   worker) and counts the new value as the increase. Series of one name are summed over their labels
 *   (per-worker series, or prom-client's cluster aggregation, which already sums).
 * - Histograms (`batchSize`, `commitMs`, queue wait, tx attempts) are accumulated the same way, bucket by
 *   bucket; percentiles are interpolated within buckets as Prometheus's histogram_quantile. `max` is the
 *   upper bound of the highest non-empty bucket (a bound, not an observation).
 * - Batch sizes and tx attempts are positive integers: their percentiles interpolate over a+1..b in a
 *   bucket (a, b] (see histogramQuantile), so all-single batches give p50 1, not 0.5.
 * - Gauges: `queueDepthMax` is the max over scrapes of the sum over series; `walBytesMax` the max of the
 *   max over series (all workers share one WAL file); `eventLoopDelayMsP99` the max over scrapes of
 *   `nodejs_eventloop_lag_p99_seconds` × 1000, less `eventLoopResolutionMs` (prom-client resets its event-loop histogram at every
 *   collect, so each scrape's p99 covers the second since the previous one: the figure is the worst
 *   second). Anything else that scrapes /metrics meanwhile splits those windows: read the connection
 *   count from this scraper (`lastValue('wami_connections')`), do not fetch /metrics twice.
 * - `timeseries`: one point per scrape after the first; counters as increase per second over the
 *   interval since the previous scrape, gauges as sampled, `commitMsP99` from that interval's bucket deltas.
 * - The measured window (`setWindow`, the fleet's measured window on the scrape clock): a scrape
 *   belongs to it when the midpoint of the interval it covers (previous scrape to this one) lies in
 *   it. Once a window is set, `eventLoopDelayMsP99`, `eventLoopDelayMsMaxProc` (the worst process,
 *   from `wami_event_loop_delay_p99_seconds{pid}`), `eventLoopDelayMsByProcess`, `queueDepthMax`
 *   and `queueDepthPeak` (`wami_queue_depth_peak`, kept by the server between scrapes) are over its
 *   scrapes only: the connect phase's spikes are not the load's. Without a window, over every scrape.
 * - WAL: `walBytesEnd` the last scrape's size; `walRestarts` the increase of the WAL's checkpoint
 *   sequence number over the run; `walBacklogFramesMax` the most frames waiting for a checkpoint.
 * - Unknown is null, never 0: a counter, gauge or histogram that no scrape carried (no /metrics at
 *   all, or a server that does not expose it: an external server, nodejs_* on a non-Node server)
 *   is null in the summary and in the series; `errorsByCode` is null unless a scrape carried the
 *   errors family (an empty object then means no errors).
 */
import { nowMs } from '../protocol/clock.js';
import { METRIC as WAMI_METRIC } from '../protocol/messages.js';
import {
  histogramDelta,
  histogramMaxBound,
  histogramOf,
  histogramQuantile,
  maxOf,
  parsePromText,
  sumByLabel,
  sumOf,
  type HistogramData,
  type ParsedMetrics,
} from './prom-text.js';
import type { ServerMetricsSummary } from '../model/result.js';

/** The metric names scraped: the servers' (protocol/messages.ts) and prom-client's process defaults. */
export const METRIC = {
  ...WAMI_METRIC,
  eventLoopP99Seconds: 'nodejs_eventloop_lag_p99_seconds',
  eventLoopMaxSeconds: 'nodejs_eventloop_lag_max_seconds',
  eventLoopDelayP99Seconds: WAMI_METRIC.eventLoopDelayP99Seconds,
  residentMemory: 'process_resident_memory_bytes',
} as const;

export interface HistogramSummary {
  count: number;
  mean: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

/** ServerMetricsSummary plus optional extras (structurally a ServerMetricsSummary). */
export interface ServerMetricsSummaryDetailed extends ServerMetricsSummary {
  /** Scrapes that succeeded / failed (network error, timeout, HTTP status, parse error). */
  scrapes: number;
  scrapeFailures: number;
  /** Broadcasts sent of updates that were then not persisted (batched: a failed batch), total; null when not exposed. */
  broadcastUnpersisted: number | null;
  /** batched: failing batches split in two to isolate bad rows, total; null when not exposed. */
  batchSplits: number | null;
  /** Time an update waited in the queue before its transaction began, ms. */
  queueWaitMs: HistogramSummary | null;
  /** Transaction attempts per update (1 = no retry). */
  txAttempts: HistogramSummary | null;
  /** Highest `wami_connections` seen (sum over series). */
  connectionsMax: number | null;
  /** Highest `process_resident_memory_bytes` seen (sum over series: the primary and its workers when aggregated). */
  residentMemoryBytesMax: number | null;
  /** Highest `nodejs_eventloop_lag_max_seconds` seen, ms. */
  eventLoopDelayMsMax: number | null;
}

/** Counter increase with reset handling: since 0 on the first sight, new value after a drop. */
export function counterIncrease(prev: number | null, cur: number): number {
  if (prev === null) return cur;
  return cur >= prev ? cur - prev : cur;
}

function addHistograms(a: HistogramData | null, d: HistogramData): HistogramData {
  if (!a || a.buckets.length !== d.buckets.length || a.buckets.some((b, i) => b.le !== d.buckets[i]!.le)) {
    return { buckets: d.buckets.map((b) => ({ ...b })), sum: d.sum, count: d.count };
  }
  return {
    buckets: a.buckets.map((b, i) => ({ le: b.le, count: b.count + d.buckets[i]!.count })),
    sum: a.sum + d.sum,
    count: a.count + d.count,
  };
}

/**
 * count, mean, p50, p99, max of a histogram, values multiplied by `scale` (1000 for seconds → ms).
 * `positiveIntegers`: see histogramQuantile (batch sizes, attempts).
 */
export function summarizeHistogram(h: HistogramData, scale = 1, positiveIntegers = false): HistogramSummary {
  const q = (x: number): number | null => {
    const v = histogramQuantile(x, h.buckets, { positiveIntegers });
    return v === null ? null : v * scale;
  };
  const max = histogramMaxBound(h);
  return {
    count: h.count,
    mean: h.count > 0 ? (h.sum / h.count) * scale : 0,
    p50: q(0.5),
    p99: q(0.99),
    max: max === null ? null : max * scale,
  };
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;
const maxNullable = (a: number | null, b: number | null): number | null => (b === null ? a : a === null ? b : Math.max(a, b));

type CounterKey =
  | 'received'
  | 'persisted'
  | 'broadcastFrames'
  | 'slowConsumerCloses'
  | 'busy'
  | 'retries'
  | 'exhausted'
  | 'broadcastUnpersisted'
  | 'batchSplits';
const COUNTERS: CounterKey[] = [
  'received',
  'persisted',
  'broadcastFrames',
  'slowConsumerCloses',
  'busy',
  'retries',
  'exhausted',
  'broadcastUnpersisted',
  'batchSplits',
];
type HistKey = 'batchSize' | 'commitSeconds' | 'queueWaitSeconds' | 'txAttempts' | 'flushSeconds';
const HISTS: HistKey[] = ['batchSize', 'commitSeconds', 'queueWaitSeconds', 'txAttempts', 'flushSeconds'];

/** What one scrape says that is kept per scrape, for the figures over the measured window. */
interface ScrapeMark {
  atMs: number;
  /** The previous scrape's time (null for the first: the interval it covers is unknown). */
  prevAtMs: number | null;
  queueDepth: number | null;
  queueDepthPeak: number | null;
  elP99Ms: number | null;
  /** Event-loop delay p99 per process (pid label), ms. */
  elByPid: Map<string, number>;
}

export interface MetricsReducerOptions {
  /** Origin of the series' `t`, in the same clock (ms) as `add`'s atMs. Default 0. */
  originMs?: number;
  /**
   * Subtracted (floor 0) from the event-loop delay gauges, ms. Node's monitorEventLoopDelay records
   * whole timer intervals, so prom-client's lag gauges include its `eventLoopMonitoringPrecision`
   * (default 10 ms): an idle server reports ≈ 10.2 ms. Pass that precision to get the delay itself.
   * Default 0 (figures as exposed).
   */
  eventLoopResolutionMs?: number;
}

/** Reduces a series of parsed scrapes (in time order) to the summary. Pure. */
export class MetricsReducer {
  private scrapes = 0;
  private failures = 0;
  private prevAtMs: number | null = null;
  private readonly counterPrev = new Map<CounterKey, number>();
  private readonly counterTotal = new Map<CounterKey, number>();
  private readonly errPrev = new Map<string, number>();
  private readonly errTotal = new Map<string, number>();
  /** Whether any scrape carried the errors family (its TYPE line or a sample): otherwise errorsByCode is unknown. */
  private errorsSeen = false;
  private readonly histPrev = new Map<HistKey, HistogramData>();
  private readonly histAcc = new Map<HistKey, HistogramData>();
  private walBytesMax: number | null = null;
  private elMax: number | null = null;
  private connMax: number | null = null;
  private rssMax: number | null = null;
  private walBytesEnd: number | null = null;
  private walSeqFirst: number | null = null;
  private walSeqLast: number | null = null;
  private walBacklogMax: number | null = null;
  private readonly marks: ScrapeMark[] = [];
  private window: { fromMs: number; toMs: number } | null = null;
  private readonly series: ServerMetricsSummary['timeseries'] = [];

  private readonly originMs: number;
  private readonly elResMs: number;

  constructor(opts: MetricsReducerOptions = {}) {
    this.originMs = opts.originMs ?? 0;
    this.elResMs = opts.eventLoopResolutionMs ?? 0;
  }

  /** Counts a failed scrape. */
  fail(): void {
    this.failures++;
  }

  /** The measured window, in the clock of `add`'s atMs (may be set before, during or after the scrapes). */
  setWindow(fromMs: number, toMs: number): void {
    this.window = { fromMs, toMs };
  }

  /** The scrapes whose interval's midpoint lies in the window (every scrape without a window). */
  private inWindow(): ScrapeMark[] {
    const w = this.window;
    if (!w) return this.marks;
    return this.marks.filter((k) => k.prevAtMs !== null && (k.prevAtMs + k.atMs) / 2 >= w.fromMs && (k.prevAtMs + k.atMs) / 2 <= w.toMs);
  }

  /** Adds one scrape taken at `atMs` (ms, any monotonic clock shared with originMs). */
  add(atMs: number, m: ParsedMetrics): void {
    this.scrapes++;
    const increases = new Map<CounterKey, number>();
    for (const k of COUNTERS) {
      const cur = sumOf(m, METRIC[k]);
      if (cur === null) continue;
      const inc = counterIncrease(this.counterPrev.get(k) ?? null, cur);
      increases.set(k, inc);
      this.counterPrev.set(k, cur);
      this.counterTotal.set(k, (this.counterTotal.get(k) ?? 0) + inc);
    }
    if (m.families.has(METRIC.errors) || m.byName.has(METRIC.errors)) this.errorsSeen = true;
    for (const [code, cur] of Object.entries(sumByLabel(m, METRIC.errors, 'code'))) {
      const inc = counterIncrease(this.errPrev.get(code) ?? null, cur);
      this.errPrev.set(code, cur);
      this.errTotal.set(code, (this.errTotal.get(code) ?? 0) + inc);
    }
    let commitDelta: HistogramData | null = null;
    for (const k of HISTS) {
      const cur = histogramOf(m, METRIC[k]);
      if (!cur) continue;
      const prev = this.histPrev.get(k) ?? null;
      const d = histogramDelta(cur, prev) ?? cur; // null = reset: count from zero
      this.histAcc.set(k, addHistograms(this.histAcc.get(k) ?? null, d));
      this.histPrev.set(k, cur);
      if (k === 'commitSeconds' && prev) commitDelta = d;
    }
    const queueDepth = sumOf(m, METRIC.queueDepth);
    const walBytes = maxOf(m, METRIC.walBytes);
    const elP99 = maxOf(m, METRIC.eventLoopP99Seconds);
    const elMs = (sec: number | null): number | null => (sec === null || !Number.isFinite(sec) ? null : Math.max(0, sec * 1000 - this.elResMs));
    const elP99Ms = elMs(elP99);
    const queueDepthPeak = sumOf(m, METRIC.queueDepthPeak);
    const elByPid = new Map<string, number>();
    for (const x of m.byName.get(METRIC.eventLoopDelayP99Seconds) ?? []) {
      const v = elMs(x.value);
      if (v !== null) elByPid.set(x.labels.pid ?? '', Math.max(v, elByPid.get(x.labels.pid ?? '') ?? 0));
    }
    const elMaxProc = elByPid.size > 0 ? Math.max(...elByPid.values()) : null;
    this.marks.push({ atMs, prevAtMs: this.prevAtMs, queueDepth, queueDepthPeak, elP99Ms, elByPid });
    this.walBytesMax = maxNullable(this.walBytesMax, walBytes);
    if (walBytes !== null) this.walBytesEnd = walBytes;
    const walSeq = maxOf(m, METRIC.walCheckpointSeq);
    if (walSeq !== null) {
      this.walSeqFirst ??= walSeq;
      this.walSeqLast = walSeq;
    }
    this.walBacklogMax = maxNullable(this.walBacklogMax, maxOf(m, METRIC.walBacklogFrames));
    this.elMax = maxNullable(this.elMax, elMs(maxOf(m, METRIC.eventLoopMaxSeconds)));
    this.connMax = maxNullable(this.connMax, sumOf(m, METRIC.connections));
    this.rssMax = maxNullable(this.rssMax, sumOf(m, METRIC.residentMemory));

    if (this.prevAtMs !== null) {
      const dtSec = (atMs - this.prevAtMs) / 1000;
      // A counter this scrape did not carry is unknown for this second (null), not 0.
      const rate = (k: CounterKey): number | null => {
        const inc = increases.get(k);
        return inc === undefined ? null : dtSec > 0 ? r3(inc / dtSec) : 0;
      };
      const p99 = commitDelta ? histogramQuantile(0.99, commitDelta.buckets) : null;
      this.series.push({
        t: r3((atMs - this.originMs) / 1000),
        queueDepth,
        walBytes,
        busyHits: rate('busy'),
        retries: rate('retries'),
        exhausted: rate('exhausted'),
        persisted: rate('persisted'),
        commitMsP99: p99 === null ? null : r3(p99 * 1000),
        eventLoopDelayMsP99: elP99Ms === null ? null : r3(elP99Ms),
        ...(queueDepthPeak !== null ? { queueDepthPeak } : {}),
        ...(elMaxProc !== null ? { eventLoopDelayMsMaxProc: r3(elMaxProc) } : {}),
      });
    }
    this.prevAtMs = atMs;
  }

  summary(): ServerMetricsSummaryDetailed {
    // Never seen in any scrape: unknown (null), never 0.
    const total = (k: CounterKey): number | null => this.counterTotal.get(k) ?? null;
    const hist = (k: HistKey, scale: number): HistogramSummary | null => {
      const h = this.histAcc.get(k);
      return h ? summarizeHistogram(h, scale, k === 'batchSize' || k === 'txAttempts') : null;
    };
    const commit = hist('commitSeconds', 1000);
    const win = this.inWindow();
    let queueDepthMax: number | null = null;
    let queueDepthPeak: number | null = null;
    let elP99Max: number | null = null;
    const byProc = new Map<string, number>();
    for (const k of win) {
      queueDepthMax = maxNullable(queueDepthMax, k.queueDepth);
      queueDepthPeak = maxNullable(queueDepthPeak, k.queueDepthPeak);
      elP99Max = maxNullable(elP99Max, k.elP99Ms);
      for (const [pid, v] of k.elByPid) byProc.set(pid, Math.max(v, byProc.get(pid) ?? 0));
    }
    const flush = hist('flushSeconds', 1000);
    const rounded = (h: HistogramSummary | null): HistogramSummary | null =>
      h && {
        count: h.count,
        mean: r3(h.mean),
        p50: h.p50 === null ? null : r3(h.p50),
        p99: h.p99 === null ? null : r3(h.p99),
        max: h.max === null ? null : r3(h.max),
      };
    return {
      updatesReceived: total('received'),
      updatesPersisted: total('persisted'),
      broadcastFrames: total('broadcastFrames'),
      errorsByCode: this.errorsSeen ? Object.fromEntries(this.errTotal) : null,
      batchSize: hist('batchSize', 1),
      commitMs: commit ? { count: commit.count, mean: commit.mean, p50: commit.p50, p99: commit.p99 } : null,
      queueDepthMax,
      busyHits: total('busy'),
      retries: total('retries'),
      exhausted: total('exhausted'),
      walBytesMax: this.walBytesMax,
      eventLoopDelayMsP99: elP99Max,
      window: {
        scrapes: win.length,
        fromSec: this.window ? r3((this.window.fromMs - this.originMs) / 1000) : null,
        toSec: this.window ? r3((this.window.toMs - this.originMs) / 1000) : null,
      },
      queueDepthPeak,
      eventLoopDelayMsMaxProc: byProc.size > 0 ? r3(Math.max(...byProc.values())) : null,
      eventLoopDelayMsByProcess: Object.fromEntries([...byProc].map(([pid, v]) => [pid, r3(v)])),
      flushMs: flush && flush.count > 0 ? rounded(flush) : null,
      txAttempts: rounded(hist('txAttempts', 1)),
      walBytesEnd: this.walBytesEnd,
      walRestarts: this.walSeqFirst === null || this.walSeqLast === null ? null : Math.max(0, this.walSeqLast - this.walSeqFirst),
      walBacklogFramesMax: this.walBacklogMax,
      slowConsumerCloses: total('slowConsumerCloses'),
      timeseries: this.series,
      scrapes: this.scrapes,
      scrapeFailures: this.failures,
      broadcastUnpersisted: total('broadcastUnpersisted'),
      batchSplits: total('batchSplits'),
      queueWaitMs: hist('queueWaitSeconds', 1000),
      connectionsMax: this.connMax,
      residentMemoryBytesMax: this.rssMax,
      eventLoopDelayMsMax: this.elMax,
    };
  }
}

export interface MetricsScraperOptions {
  /** Full URL of the metrics endpoint, e.g. http://127.0.0.1:8080/metrics. */
  url: string;
  /** Default 1000. */
  intervalMs?: number;
  /** Per-scrape timeout (request and body), ms. Default max(500, min(intervalMs, 2000) × 0.9). */
  timeoutMs?: number;
  /** Origin of the series' `t`, on the fleet's shared clock (protocol/clock.ts nowMs, ms). Default: the time of start(). */
  originMs?: number;
  /** See MetricsReducerOptions.eventLoopResolutionMs. Default 0. */
  eventLoopResolutionMs?: number;
}

/** Fetches and parses one scrape; throws on a network error, timeout, non-2xx status or bad text. */
export async function fetchMetrics(url: string, timeoutMs: number): Promise<ParsedMetrics> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'text/plain' } });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return parsePromText(text);
}

export class MetricsScraper {
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private originMs: number | undefined;
  private reducer: MetricsReducer | null = null;
  private window: { fromMs: number; toMs: number } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private stopped = false;
  private inFlight: Promise<boolean> | null = null;
  private lastParsed: ParsedMetrics | null = null;
  private lastAtMs: number | null = null;
  private final: ServerMetricsSummaryDetailed | null = null;
  /** The last scrape error message, for the reasons of a run. */
  lastError: string | null = null;

  constructor(private readonly opts: MetricsScraperOptions) {
    this.intervalMs = opts.intervalMs ?? 1000;
    if (!(this.intervalMs > 0)) throw new RangeError(`intervalMs must be > 0, got ${this.intervalMs}`);
    this.timeoutMs = opts.timeoutMs ?? Math.max(500, Math.min(this.intervalMs, 2000) * 0.9);
    this.originMs = opts.originMs;
  }

  /** Starts scraping: one scrape now, then one every intervalMs (skipped while one is in flight). */
  start(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    this.originMs ??= nowMs();
    this.reducer = new MetricsReducer({ originMs: this.originMs, eventLoopResolutionMs: this.opts.eventLoopResolutionMs ?? 0 });
    if (this.window) this.reducer.setWindow(this.window.fromMs, this.window.toMs);
    void this.scrapeNow();
    this.timer = setInterval(() => {
      if (!this.inFlight) void this.scrapeNow();
    }, this.intervalMs);
    this.timer.unref();
  }

  /**
   * Scrapes once now (or joins the scrape in flight); resolves true when it succeeded. Never rejects.
   * Before start() or after stop() the result is not recorded in the summary but still updates last().
   */
  scrapeNow(): Promise<boolean> {
    if (this.inFlight) return this.inFlight;
    const p = (async (): Promise<boolean> => {
      try {
        const m = await fetchMetrics(this.opts.url, this.timeoutMs);
        const at = nowMs();
        this.lastParsed = m;
        this.lastAtMs = at;
        if (this.running) this.reducer?.add(at, m);
        return true;
      } catch (e) {
        this.lastError = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        if (this.running) this.reducer?.fail();
        return false;
      } finally {
        this.inFlight = null;
      }
    })();
    this.inFlight = p;
    return p;
  }

  /** The fleet's measured window on the shared clock (nowMs): see MetricsReducer.setWindow. */
  setWindow(fromMs: number, toMs: number): void {
    this.window = { fromMs, toMs };
    this.reducer?.setWindow(fromMs, toMs);
  }

  /** Waits for the scrape in flight, takes a final scrape, then stops. Never rejects. */
  async finish(): Promise<ServerMetricsSummaryDetailed> {
    if (this.running) {
      if (this.inFlight) await this.inFlight;
      await this.scrapeNow();
    }
    return this.stop();
  }

  /** Stops scraping (a scrape in flight is not recorded) and returns the summary. Idempotent. */
  stop(): ServerMetricsSummaryDetailed {
    if (this.final) return this.final;
    this.running = false;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.final = (this.reducer ?? new MetricsReducer()).summary();
    return this.final;
  }

  /** The last successful scrape, parsed; null before the first. */
  last(): ParsedMetrics | null {
    return this.lastParsed;
  }

  /** Seconds since the last successful scrape; null before the first. */
  lastAgeSec(): number | null {
    return this.lastAtMs === null ? null : (nowMs() - this.lastAtMs) / 1000;
  }

  /** Sum over series of a metric in the last scrape (e.g. 'wami_connections'); null when unknown. */
  lastValue(name: string): number | null {
    return this.lastParsed ? sumOf(this.lastParsed, name) : null;
  }

  /** The summary so far, without stopping (for live progress). */
  snapshot(): ServerMetricsSummaryDetailed | null {
    return this.final ?? this.reducer?.summary() ?? null;
  }
}
