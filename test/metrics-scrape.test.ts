import { strict as assert } from 'node:assert';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { MetricsReducer, MetricsScraper, counterIncrease } from '../runner/metrics-scrape.js';
import {
  PromParseError,
  histogramDelta,
  histogramMaxBound,
  histogramOf,
  histogramQuantile,
  parsePromText,
  parsePromValue,
  samplesOf,
  sumByLabel,
  sumOf,
} from '../runner/prom-text.js';

/** What a server exposes, prom-client style (cluster-aggregated counters have no worker label). */
function exposition(o: {
  received: number;
  persisted: number;
  busy: number;
  retries: number;
  exhausted: number;
  overloaded: number;
  queue: number;
  wal: number;
  lagP99: number;
  commit: [number, number, number, number, number]; // cumulative counts for le 0.001, 0.005, 0.01, 0.05, +Inf
  commitSum: number;
}): string {
  return `# HELP wami_connections Open WebSocket connections.
# TYPE wami_connections gauge
wami_connections 1000

# HELP wami_updates_received_total Updates received from clients.
# TYPE wami_updates_received_total counter
wami_updates_received_total ${o.received}

# HELP wami_updates_persisted_total Updates committed to SQLite.
# TYPE wami_updates_persisted_total counter
wami_updates_persisted_total ${o.persisted}

# HELP wami_errors_total Error frames sent, by code.
# TYPE wami_errors_total counter
wami_errors_total{code="OVERLOADED"} ${o.overloaded}
wami_errors_total{code="BAD_MESSAGE"} 2

# HELP wami_sqlite_busy_total SQLITE_BUSY hits.
# TYPE wami_sqlite_busy_total counter
wami_sqlite_busy_total ${o.busy}
# TYPE wami_tx_retries_total counter
wami_tx_retries_total ${o.retries}
# TYPE wami_busy_exhausted_total counter
wami_busy_exhausted_total ${o.exhausted}
# HELP wami_queue_depth Updates queued, not yet committed.
# TYPE wami_queue_depth gauge
wami_queue_depth ${o.queue}
# TYPE wami_wal_bytes gauge
wami_wal_bytes ${o.wal}

# HELP wami_commit_duration_seconds Time of one COMMIT.
# TYPE wami_commit_duration_seconds histogram
wami_commit_duration_seconds_bucket{le="0.001"} ${o.commit[0]}
wami_commit_duration_seconds_bucket{le="0.005"} ${o.commit[1]}
wami_commit_duration_seconds_bucket{le="0.01"} ${o.commit[2]}
wami_commit_duration_seconds_bucket{le="0.05"} ${o.commit[3]}
wami_commit_duration_seconds_bucket{le="+Inf"} ${o.commit[4]}
wami_commit_duration_seconds_sum ${o.commitSum}
wami_commit_duration_seconds_count ${o.commit[4]}

# HELP nodejs_eventloop_lag_p99_seconds The 99th percentile of the recorded event loop delays.
# TYPE nodejs_eventloop_lag_p99_seconds gauge
nodejs_eventloop_lag_p99_seconds ${o.lagP99}
`;
}

const REALISTIC = `# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 52428800

# HELP nodejs_version_info Node.js version info.
# TYPE nodejs_version_info gauge
nodejs_version_info{version="v20.19.0",major="20",minor="19",patch="0"} 1

# HELP wami_batch_size Updates per transaction.
# TYPE wami_batch_size histogram
wami_batch_size_bucket{le="1",variant="batched"} 10
wami_batch_size_bucket{le="5",variant="batched"} 30
wami_batch_size_bucket{le="10",variant="batched"} 70
wami_batch_size_bucket{le="50",variant="batched"} 100
wami_batch_size_bucket{le="+Inf",variant="batched"} 100
wami_batch_size_sum{variant="batched"} 1800
wami_batch_size_count{variant="batched"} 100

# HELP wami_errors_total Error frames sent, by code.
# TYPE wami_errors_total counter
wami_errors_total{code="OVERLOADED",worker="1"} 3
wami_errors_total{code="OVERLOADED",worker="2"} 4
wami_errors_total{ code = "BUSY_EXHAUSTED" , worker="2", } 5

# A plain comment line, then odd values and escapes.
# HELP weird_metric Help with a backslash \\\\ and a newline \\n here.
# TYPE weird_metric untyped
weird_metric{path="a\\"b\\\\c\\nd",x=""} NaN
weird_metric{path="inf"} +Inf 1712345678901
weird_metric{path="neg"} -Inf
weird_metric{path="exp"} 1.5e-3
`;

/** Polls `pred` every 10 ms until it holds (bounded by the test's own timeout). */
async function until(pred: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('Prometheus text parser', () => {
  test('parses a realistic exposition: types, help, labels with escapes, NaN/±Inf, timestamps', () => {
    const m = parsePromText(REALISTIC);
    assert.equal(m.families.get('wami_batch_size')!.type, 'histogram');
    assert.equal(m.families.get('wami_batch_size')!.samples.length, 7);
    assert.equal(m.families.get('wami_errors_total')!.type, 'counter');
    assert.equal(m.families.get('process_resident_memory_bytes')!.help, 'Resident memory size in bytes.');
    assert.equal(m.families.get('weird_metric')!.help, 'Help with a backslash \\ and a newline \n here.');
    assert.equal(sumOf(m, 'process_resident_memory_bytes'), 52428800);
    assert.deepEqual(samplesOf(m, 'nodejs_version_info')[0]!.labels, { version: 'v20.19.0', major: '20', minor: '19', patch: '0' });
    assert.deepEqual(sumByLabel(m, 'wami_errors_total', 'code'), { OVERLOADED: 7, BUSY_EXHAUSTED: 5 });
    assert.equal(sumOf(m, 'wami_errors_total'), 12);
    assert.equal(sumOf(m, 'wami_errors_total', { worker: '2' }), 9);
    const weird = samplesOf(m, 'weird_metric');
    assert.equal(weird.length, 4);
    assert.deepEqual(weird[0]!.labels, { path: 'a"b\\c\nd', x: '' });
    assert.ok(Number.isNaN(weird[0]!.value));
    assert.equal(weird[1]!.value, Infinity);
    assert.equal(weird[1]!.timestampMs, 1712345678901);
    assert.equal(weird[2]!.value, -Infinity);
    assert.equal(weird[3]!.value, 0.0015);
    assert.equal(sumOf(m, 'absent_metric'), null);

    const h = histogramOf(m, 'wami_batch_size')!;
    assert.deepEqual(h, {
      buckets: [
        { le: 1, count: 10 },
        { le: 5, count: 30 },
        { le: 10, count: 70 },
        { le: 50, count: 100 },
        { le: Infinity, count: 100 },
      ],
      sum: 1800,
      count: 100,
    });
    assert.equal(histogramMaxBound(h), 50);
  });

  test('per-worker histogram series are merged bucket by bucket', () => {
    const m = parsePromText(`# TYPE h histogram
h_bucket{le="1",worker="1"} 1
h_bucket{le="+Inf",worker="1"} 2
h_sum{worker="1"} 3
h_count{worker="1"} 2
h_bucket{le="1",worker="2"} 4
h_bucket{le="+Inf",worker="2"} 8
h_sum{worker="2"} 20
h_count{worker="2"} 8
`);
    assert.deepEqual(histogramOf(m, 'h'), {
      buckets: [
        { le: 1, count: 5 },
        { le: Infinity, count: 10 },
      ],
      sum: 23,
      count: 10,
    });
  });

  test('rejects malformed lines with the line number', () => {
    const bad = [
      'metric{a="1" 2',
      'metric{a="1"} ',
      'metric{a=1} 2',
      'metric{a="x\\q"} 2',
      'metric{a="1",a="2"} 2',
      'metric 1 2 3',
      'metric abc',
      '9metric 1',
      '# TYPE metric flavour',
      'metric{a="unterminated} 1',
    ];
    for (const line of bad) {
      assert.throws(
        () => parsePromText(`ok_metric 1\n${line}\n`),
        (e: unknown) => e instanceof PromParseError && e.line === 2,
        line,
      );
    }
    assert.equal(parsePromValue('1e3'), 1000);
    assert.ok(Number.isNaN(parsePromValue('nan')));
    assert.equal(parsePromValue('1.2.3'), null);
  });
});

describe('histogramQuantile (as Prometheus histogram_quantile)', () => {
  const b = [
    { le: 1, count: 10 },
    { le: 5, count: 30 },
    { le: 10, count: 70 },
    { le: 50, count: 100 },
    { le: Infinity, count: 100 },
  ];
  test('linear interpolation inside the bucket', () => {
    assert.equal(histogramQuantile(0.5, b), 7.5); // rank 50 in (5,10]: 5 + 5 × 20/40
    assert.equal(histogramQuantile(0.05, b), 0.5); // rank 5 in (0,1]: 0 + 1 × 5/10
    assert.equal(histogramQuantile(0.3, b), 5); // rank 30: top of (1,5]
    assert.equal(histogramQuantile(1, b), 50);
    assert.ok(Math.abs(histogramQuantile(0.99, b)! - (10 + (40 * 29) / 30)) < 1e-12); // 48.666…
  });
  test('rank in the +Inf bucket returns the highest finite bound; edge cases are null', () => {
    const inf = [
      { le: 1, count: 5 },
      { le: 2, count: 8 },
      { le: Infinity, count: 10 },
    ];
    assert.equal(histogramQuantile(0.9, inf), 2);
    assert.equal(histogramQuantile(0.8, inf), 2); // rank 8: exactly the top of (1,2]
    assert.equal(histogramQuantile(0.65, inf), 1.5);
    assert.equal(
      histogramQuantile(0.5, [
        { le: 1, count: 0 },
        { le: Infinity, count: 0 },
      ]),
      null,
    );
    assert.equal(
      histogramQuantile(0.5, [
        { le: 1, count: 3 },
        { le: 2, count: 5 },
      ]),
      null,
    ); // no +Inf
    assert.equal(histogramQuantile(0.5, [{ le: Infinity, count: 3 }]), null);
    assert.equal(histogramQuantile(1.5, inf), Infinity);
    assert.equal(histogramQuantile(-1, inf), -Infinity);
    assert.equal(
      histogramQuantile(0.5, [
        { le: -1, count: 4 },
        { le: 0, count: 6 },
        { le: Infinity, count: 8 },
      ]),
      -1,
    ); // lowest bound ≤ 0
  });
  test('bucket deltas and resets', () => {
    const prev = {
      buckets: [
        { le: 1, count: 2 },
        { le: Infinity, count: 3 },
      ],
      sum: 2,
      count: 3,
    };
    const cur = {
      buckets: [
        { le: 1, count: 5 },
        { le: Infinity, count: 9 },
      ],
      sum: 7,
      count: 9,
    };
    assert.deepEqual(histogramDelta(cur, prev), {
      buckets: [
        { le: 1, count: 3 },
        { le: Infinity, count: 6 },
      ],
      sum: 5,
      count: 6,
    });
    assert.equal(histogramDelta(prev, cur), null);
    assert.equal(counterIncrease(null, 5), 5);
    assert.equal(counterIncrease(5, 8), 3);
    assert.equal(counterIncrease(8, 2), 2);
  });
});

describe('MetricsReducer (pure)', () => {
  test('totals, reset handling, maxima and the per-second series', () => {
    const r = new MetricsReducer({ originMs: 0 });
    const base = { received: 0, persisted: 0, busy: 0, retries: 0, exhausted: 0, overloaded: 0, queue: 0, wal: 4096, lagP99: 0.002 };
    r.add(1000, parsePromText(exposition({ ...base, received: 10, persisted: 8, commit: [1, 2, 2, 2, 2], commitSum: 0.003 })));
    r.fail();
    r.add(
      2000,
      parsePromText(
        exposition({
          ...base,
          received: 110,
          persisted: 100,
          busy: 4,
          retries: 3,
          queue: 12,
          wal: 81920,
          lagP99: 0.015,
          overloaded: 1,
          commit: [1, 12, 22, 22, 22],
          commitSum: 0.103,
        }),
      ),
    );
    // 2.5 s later, a worker restarted: counters dropped (reset), then counted again from there.
    r.add(
      4500,
      parsePromText(
        exposition({
          ...base,
          received: 50,
          persisted: 50,
          busy: 1,
          retries: 1,
          exhausted: 1,
          queue: 3,
          wal: 8192,
          lagP99: 0.004,
          overloaded: 1,
          commit: [0, 0, 10, 10, 10],
          commitSum: 0.08,
        }),
      ),
    );
    const s = r.summary();
    assert.equal(s.scrapes, 3);
    assert.equal(s.scrapeFailures, 1);
    assert.equal(s.updatesReceived, 160); // 10 + 100 + 50 (reset)
    assert.equal(s.updatesPersisted, 150);
    assert.equal(s.busyHits, 5);
    assert.equal(s.retries, 4);
    assert.equal(s.exhausted, 1);
    assert.deepEqual(s.errorsByCode, { OVERLOADED: 1, BAD_MESSAGE: 2 }); // OVERLOADED 0 → 1 → 1
    assert.equal(s.queueDepthMax, 12);
    assert.equal(s.walBytesMax, 81920);
    assert.equal(s.eventLoopDelayMsP99, 15);
    assert.equal(s.connectionsMax, 1000);
    assert.equal(s.batchSize, null);
    // Accumulated commit histogram: [1,2,2,2,2] + [0,10,20,20,20] + reset [0,0,10,10,10] = [1,12,32,32,32]
    assert.equal(s.commitMs!.count, 32);
    assert.ok(Math.abs(s.commitMs!.mean - ((0.003 + 0.1 + 0.08) / 32) * 1000) < 1e-9);
    // p50: rank 16 in (5ms, 10ms] holding 20 (12 below): 5 + 5 × 4/20 = 6 ms
    assert.ok(Math.abs(s.commitMs!.p50! - 6) < 1e-9);
    assert.equal(s.timeseries.length, 2);
    const [p1, p2] = s.timeseries;
    assert.deepEqual(p1, {
      t: 2,
      queueDepth: 12,
      walBytes: 81920,
      busyHits: 4,
      retries: 3,
      exhausted: 0,
      persisted: 92,
      commitMsP99: 9.9,
      eventLoopDelayMsP99: 15,
    });
    // interval of 2.5 s: per-second rates; commit p99 from the reset scrape itself (10 in (5,10] ms).
    assert.deepEqual(p2, {
      t: 4.5,
      queueDepth: 3,
      walBytes: 8192,
      busyHits: 0.4,
      retries: 0.4,
      exhausted: 0.4,
      persisted: 20,
      commitMsP99: 9.95,
      eventLoopDelayMsP99: 4,
    });
  });

  test('event-loop resolution is subtracted when given; integer histograms interpolate from a+1', () => {
    const r = new MetricsReducer({ eventLoopResolutionMs: 10 });
    r.add(
      0,
      parsePromText(
        'nodejs_eventloop_lag_p99_seconds 0.0125\nnodejs_eventloop_lag_max_seconds 0.004\n' +
          '# TYPE wami_batch_size histogram\nwami_batch_size_bucket{le="1"} 6\nwami_batch_size_bucket{le="2"} 6\nwami_batch_size_bucket{le="5"} 10\nwami_batch_size_bucket{le="+Inf"} 10\nwami_batch_size_sum 20\nwami_batch_size_count 10\n',
      ),
    );
    const s = r.summary();
    assert.equal(s.eventLoopDelayMsP99, 2.5);
    assert.equal(s.eventLoopDelayMsMax, 0);
    // p50: rank 5 in le=1 → 1 (not 0.5); p99: rank 9.9 in (2,5] → values 3..5: 3 + 2 × 3.9/4 = 4.95
    assert.deepEqual(s.batchSize, { count: 10, mean: 2, p50: 1, p99: 4.95, max: 5 });
  });

  test('the measured window: event-loop delay per process (the worst, not an average), queue-depth peaks; WAL restarts and backlog over the run', () => {
    const scrape = (o: {
      pids: Record<string, number>;
      lagP99: number;
      queue: number;
      peak: number;
      seq: number;
      backlog: number;
      wal: number;
      flush: number;
    }): string =>
      '# TYPE wami_event_loop_delay_p99_seconds gauge\n' +
      Object.entries(o.pids)
        .map(([pid, v]) => `wami_event_loop_delay_p99_seconds{pid="${pid}"} ${v}\n`)
        .join('') +
      `nodejs_eventloop_lag_p99_seconds ${o.lagP99}\n# TYPE wami_queue_depth gauge\nwami_queue_depth ${o.queue}\n` +
      `# TYPE wami_queue_depth_peak gauge\nwami_queue_depth_peak ${o.peak}\n# TYPE wami_wal_checkpoint_seq gauge\nwami_wal_checkpoint_seq ${o.seq}\n` +
      `# TYPE wami_wal_backlog_frames gauge\nwami_wal_backlog_frames ${o.backlog}\n# TYPE wami_wal_bytes gauge\nwami_wal_bytes ${o.wal}\n` +
      `# TYPE wami_flush_duration_seconds histogram\nwami_flush_duration_seconds_bucket{le="0.01"} ${o.flush}\nwami_flush_duration_seconds_bucket{le="0.1"} ${o.flush}\n` +
      `wami_flush_duration_seconds_bucket{le="+Inf"} ${o.flush}\nwami_flush_duration_seconds_sum ${o.flush * 0.005}\nwami_flush_duration_seconds_count ${o.flush}\n`;
    const r = new MetricsReducer({ originMs: 10_000, eventLoopResolutionMs: 10 });
    // 11 s: connecting (the spike the window leaves out); 12-15 s: measured; 16 s: drain.
    r.add(11_000, parsePromText(scrape({ pids: { 7: 0.11, 8: 0.09 }, lagP99: 0.1, queue: 900, peak: 4000, seq: 2, backlog: 10, wal: 4096, flush: 0 })));
    r.add(12_000, parsePromText(scrape({ pids: { 7: 0.2, 8: 0.015 }, lagP99: 0.105, queue: 800, peak: 3000, seq: 2, backlog: 300, wal: 8192, flush: 5 })));
    r.setWindow(12_000, 15_000);
    r.add(
      13_000,
      parsePromText(scrape({ pids: { 7: 0.012, 8: 0.045 }, lagP99: 0.028, queue: 40, peak: 120, seq: 3, backlog: 950, wal: 4_128_272, flush: 15 })),
    );
    r.add(14_000, parsePromText(scrape({ pids: { 7: 0.014, 8: 0.016 }, lagP99: 0.015, queue: 3, peak: 95, seq: 5, backlog: 20, wal: 4_128_272, flush: 25 })));
    r.add(15_000, parsePromText(scrape({ pids: { 7: 0.011, 8: 0.02 }, lagP99: 0.015, queue: 0, peak: 60, seq: 6, backlog: 5, wal: 4_128_272, flush: 35 })));
    r.add(16_000, parsePromText(scrape({ pids: { 7: 0.3, 8: 0.3 }, lagP99: 0.3, queue: 0, peak: 9000, seq: 6, backlog: 1, wal: 4_132_392, flush: 36 })));
    const s = r.summary();
    // Window scrapes: those at 13, 14, 15 s (interval midpoints 12.5, 13.5, 14.5 s); 12 s covers 11.5 s (connecting), 16 s 15.5 s (drain).
    assert.deepEqual(s.window, { scrapes: 3, fromSec: 2, toSec: 5 });
    assert.equal(s.eventLoopDelayMsMaxProc, 35, 'pid 8 at 13 s: 45 ms less the 10 ms resolution');
    assert.deepEqual(s.eventLoopDelayMsByProcess, { 7: 4, 8: 35 });
    assert.equal(s.eventLoopDelayMsP99, 18, 'prom-client’s averaged gauge, window only: 28 ms less 10');
    assert.equal(s.queueDepthMax, 40);
    assert.equal(s.queueDepthPeak, 120, 'the peaks the server kept, not the sampled depth');
    assert.equal(s.walBytesMax, 4_132_392);
    assert.equal(s.walBytesEnd, 4_132_392);
    assert.equal(s.walRestarts, 4, 'checkpoint sequence 2 → 6');
    assert.equal(s.walBacklogFramesMax, 950);
    assert.deepEqual(s.flushMs, { count: 36, mean: 5, p50: 5, p99: 9.9, max: 10 }, 'every flush in (0, 10 ms]: interpolated within the bucket');
    assert.equal(s.timeseries[2]!.queueDepthPeak, 95);
    assert.equal(s.timeseries[2]!.eventLoopDelayMsMaxProc, 6);
    // without a window: every scrape (the first included)
    const all = new MetricsReducer({ eventLoopResolutionMs: 10 });
    all.add(0, parsePromText(scrape({ pids: { 7: 0.11 }, lagP99: 0.1, queue: 900, peak: 4000, seq: 0, backlog: 0, wal: 0, flush: 0 })));
    assert.equal(all.summary().eventLoopDelayMsMaxProc, 100);
    assert.equal(all.summary().queueDepthPeak, 4000);
    assert.equal(all.summary().window!.scrapes, 1);
  });

  test('no scrapes: every figure unknown (null), never zero', () => {
    const s = new MetricsReducer().summary();
    for (const k of [
      'updatesReceived',
      'updatesPersisted',
      'broadcastFrames',
      'busyHits',
      'retries',
      'exhausted',
      'slowConsumerCloses',
      'errorsByCode',
    ] as const)
      assert.equal(s[k], null, k);
    assert.equal(s.commitMs, null);
    assert.equal(s.queueDepthMax, null);
    assert.equal(s.broadcastUnpersisted, null);
    assert.deepEqual(s.timeseries, []);
  });

  test('a server exposing only some metrics: the others are unknown (null), the exposed ones counted from 0', () => {
    // Like a non-Node server: no nodejs_* gauges, no BUSY or retry counters, the errors family declared but still empty.
    const page = (received: number, persisted: number) =>
      parsePromText(
        [
          '# TYPE wami_updates_received_total counter',
          `wami_updates_received_total ${received}`,
          '# TYPE wami_updates_persisted_total counter',
          `wami_updates_persisted_total ${persisted}`,
          '# TYPE wami_errors_total counter',
          '# TYPE wami_queue_depth gauge',
          'wami_queue_depth 0',
          '',
        ].join('\n'),
      );
    const r = new MetricsReducer();
    r.add(0, page(0, 0));
    r.add(1000, page(7, 5));
    const s = r.summary();
    assert.equal(s.updatesReceived, 7);
    assert.equal(s.updatesPersisted, 5);
    assert.equal(s.queueDepthMax, 0);
    assert.deepEqual(s.errorsByCode, {}, 'the family is declared: no errors, known');
    for (const k of ['busyHits', 'retries', 'exhausted', 'broadcastFrames', 'slowConsumerCloses', 'walBytesMax', 'eventLoopDelayMsP99'] as const)
      assert.equal(s[k], null, k);
    assert.equal(s.batchSize, null);
    assert.deepEqual(s.timeseries, [
      { t: 1, queueDepth: 0, walBytes: null, busyHits: null, retries: null, exhausted: null, persisted: 5, commitMsP99: null, eventLoopDelayMsP99: null },
    ]);
  });
});

describe('MetricsScraper against a real HTTP server', () => {
  let server: Server;
  let port = 0;
  let mode: 'ok' | '500' | 'garbage' = 'ok';
  let hits = 0;
  before(async () => {
    server = createServer((req, res) => {
      hits++;
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      if (mode === '500') {
        res.writeHead(500).end('oops');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(
        mode === 'garbage'
          ? 'this is {not metrics\n'
          : REALISTIC +
              exposition({
                received: 7,
                persisted: 7,
                busy: 0,
                retries: 0,
                exhausted: 0,
                overloaded: 0,
                queue: 1,
                wal: 100,
                lagP99: 0.001,
                commit: [1, 1, 1, 1, 1],
                commitSum: 0.0005,
              }),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  test('scrapes once per interval and reduces', async () => {
    mode = 'ok';
    const sc = new MetricsScraper({ url: `http://127.0.0.1:${port}/metrics`, intervalMs: 100 });
    assert.equal(sc.last(), null);
    sc.start();
    // Wait for the scrapes themselves, not for a time a busy machine may not keep.
    await until(() => (sc.snapshot()?.scrapes ?? 0) >= 2, 'two scrapes');
    assert.equal(sc.lastValue('wami_connections'), 1000);
    const s = await sc.finish();
    assert.ok(s.scrapes >= 2, `scrapes ${s.scrapes}`);
    assert.equal(s.scrapeFailures, 0);
    assert.equal(s.updatesReceived, 7);
    assert.deepEqual(s.errorsByCode, { OVERLOADED: 7, BUSY_EXHAUSTED: 5, BAD_MESSAGE: 2 });
    const { p99, ...rest } = s.batchSize!;
    // batch sizes are positive integers: (5,10] holds 6..10, so p50 = 6 + 4 × 20/40 = 8; p99 = 11 + 39 × 29/30
    assert.deepEqual(rest, { count: 100, mean: 18, p50: 8, max: 50 });
    assert.ok(Math.abs(p99! - 48.7) < 1e-9);
    assert.equal(s.residentMemoryBytesMax, 52428800);
    assert.equal(s.timeseries.length, s.scrapes - 1);
    assert.ok(s.timeseries.every((p) => p.persisted === 0 && p.commitMsP99 === null && p.queueDepth === 1));
    assert.strictEqual(sc.stop(), s);
  });

  test('failed scrapes (HTTP 500, bad text, refused, timeout) are counted, never thrown', async () => {
    for (const m of ['500', 'garbage'] as const) {
      mode = m;
      const sc = new MetricsScraper({ url: `http://127.0.0.1:${port}/metrics`, intervalMs: 60 });
      sc.start();
      await until(() => (sc.snapshot()?.scrapeFailures ?? 0) >= 2, `${m}: two failed scrapes`);
      const s = await sc.finish();
      assert.equal(s.scrapes, 0);
      assert.ok(s.scrapeFailures >= 2, `${m}: ${s.scrapeFailures}`);
      assert.ok(sc.lastError && (m === '500' ? /HTTP 500/.test(sc.lastError) : /PromParseError/.test(sc.lastError)), sc.lastError ?? '');
    }
    // Nothing listens on this port (ours, closed below by a fresh server we close at once).
    const tmp = createServer();
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
    const deadPort = (tmp.address() as AddressInfo).port;
    await new Promise((r) => tmp.close(r));
    const refused = new MetricsScraper({ url: `http://127.0.0.1:${deadPort}/metrics`, intervalMs: 50 });
    refused.start();
    await until(() => (refused.snapshot()?.scrapeFailures ?? 0) >= 1, 'a refused scrape');
    const s = await refused.finish(); // waits for the attempt in flight, then one more
    assert.equal(s.scrapes, 0);
    assert.ok(s.scrapeFailures >= 1);
    assert.match(refused.lastError ?? '', /fetch failed|ECONNREFUSED/);

    // A server that never answers: the timeout aborts the scrape.
    const hang = createServer(() => {});
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    const hangPort = (hang.address() as AddressInfo).port;
    const slow = new MetricsScraper({ url: `http://127.0.0.1:${hangPort}/metrics`, intervalMs: 1000, timeoutMs: 100 });
    slow.start();
    assert.equal(await slow.scrapeNow(), false);
    assert.match(slow.lastError ?? '', /Timeout|abort/i);
    slow.stop();
    hang.closeAllConnections();
    await new Promise((r) => hang.close(r));
    assert.ok(hits > 0);
  });
});
