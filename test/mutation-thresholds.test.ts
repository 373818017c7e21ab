/**
 * Thresholds (scenarios/thresholds.ts), every metric id and every rule pinned with hand-written values:
 * the tests that kill the mutants `npm run mutation` found surviving (issue 17). Pure, milliseconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunRecord } from '../model/result.js';
import {
  DEFAULT_FLEET_THRESHOLDS,
  evaluateFleetThresholds,
  evaluateThresholds,
  FLEET_METRICS,
  fleetThresholds,
  METRICS,
  parseThreshold,
  THRESHOLD_OPS,
  thresholdReason,
} from '../scenarios/thresholds.js';

/** p50 = d1, p90 = d2, ... count = d7 (connectMs 11..17, ackMs 21..27, its uncorrected twin 31..37, ...). */
const pcts = (d: number) => ({
  p50: d * 10 + 1,
  p90: d * 10 + 2,
  p99: d * 10 + 3,
  p999: d * 10 + 4,
  max: d * 10 + 5,
  mean: d * 10 + 6,
  count: d * 10 + 7,
  histogram: '',
});

/** A run with a distinct value in every field a threshold can name. */
function record(): RunRecord {
  return {
    latency: {
      connectMs: pcts(1),
      ackMs: { ...pcts(2), uncorrected: pcts(3) },
      fanoutMs: { ...pcts(4), uncorrected: pcts(5) },
    },
    sockets: { asked: 100, reached: 98, failed: 2, failuresByKind: {}, closedEarly: 3 },
    delivery: { expected: 1000, received: 990, missing: 10, duplicate: 11, outOfOrder: 12, phantom: 13 },
    updates: { sent: 500, acked: 480, errored: 14, unanswered: 6 },
    errors: { total: 15, byCode: { BAD_MESSAGE: 1, UNKNOWN_CARD: 2, OVERLOADED: 3, BUSY_EXHAUSTED: 4, WRITE_FAILED: 5 }, byKind: {} },
    // measured seconds t 2..3: CPU 0.5 + 1.5 s over 5000 + 3000 frames (t 1 and t 4 are outside)
    window: { warmupSec: 1, durationSec: 2, startedAtIso: '', wallSec: 5, measuredT: { from: 2, to: 3 } },
    timeseries: [
      { t: 1, fleetCpuPct: 90, delivered: 1000, acked: 0, errors: 0 },
      { t: 2, fleetCpuPct: 50, delivered: 4000, acked: 900, errors: 100 },
      { t: 3, fleetCpuPct: 150, delivered: 2900, acked: 100, errors: 0 },
      { t: 4, fleetCpuPct: 90, delivered: 1000, acked: 0, errors: 0 },
    ],
    fleet: { workers: 2, nodeFlags: [], cpuSec: 12.5, framesReceived: 250_000, rssBytesMax: 196_000, lagMsP99: 7.5, eventLoopDelayMsP99: 1, cpuPctMax: 50 },
    audit: {
      lostAcked: 21,
      storedNotAcked: 22,
      phantom: 23,
      notBroadcast: 24,
      finalStateMismatches: 25,
      seqGaps: 26,
      seqReused: 27,
      eventsStored: 480,
      ok: false,
      examples: [],
    },
    resources: { server: { rssBytesMax: 50_000_000, rssBytesMaxMeasured: 45_000_000, pssBytesMax: 40_000_000, rssBytesPerSocket: 3000, cpuSec: 9.25 } },
    server: { busyHits: 31, retries: 32, exhausted: 33, walBytesMax: 34_000, eventLoopDelayMsP99: 3.5, queueDepthMax: 36, slowConsumerCloses: 37 },
  } as unknown as RunRecord;
}

/** Every metric id and its value in record(), written out by hand. */
const EXPECTED: Array<[string, number]> = [
  ['connectMs.p50', 11],
  ['connectMs.p90', 12],
  ['connectMs.p99', 13],
  ['connectMs.p999', 14],
  ['connectMs.max', 15],
  ['connectMs.mean', 16],
  ['connectMs.count', 17],
  ['ackMs.p50', 21],
  ['ackMs.uncorrected.p50', 31],
  ['ackMs.p90', 22],
  ['ackMs.uncorrected.p90', 32],
  ['ackMs.p99', 23],
  ['ackMs.uncorrected.p99', 33],
  ['ackMs.p999', 24],
  ['ackMs.uncorrected.p999', 34],
  ['ackMs.max', 25],
  ['ackMs.uncorrected.max', 35],
  ['ackMs.mean', 26],
  ['ackMs.uncorrected.mean', 36],
  ['ackMs.count', 27],
  ['ackMs.uncorrected.count', 37],
  ['fanoutMs.p50', 41],
  ['fanoutMs.uncorrected.p50', 51],
  ['fanoutMs.p90', 42],
  ['fanoutMs.uncorrected.p90', 52],
  ['fanoutMs.p99', 43],
  ['fanoutMs.uncorrected.p99', 53],
  ['fanoutMs.p999', 44],
  ['fanoutMs.uncorrected.p999', 54],
  ['fanoutMs.max', 45],
  ['fanoutMs.uncorrected.max', 55],
  ['fanoutMs.mean', 46],
  ['fanoutMs.uncorrected.mean', 56],
  ['fanoutMs.count', 47],
  ['fanoutMs.uncorrected.count', 57],
  ['sockets.asked', 100],
  ['sockets.reached', 98],
  ['sockets.failed', 2],
  ['sockets.closedEarly', 3],
  ['delivery.expected', 1000],
  ['delivery.received', 990],
  ['delivery.missing', 10],
  ['delivery.duplicate', 11],
  ['delivery.outOfOrder', 12],
  ['delivery.phantom', 13],
  ['updates.sent', 500],
  ['updates.acked', 480],
  ['updates.errored', 14],
  ['updates.unanswered', 6],
  ['errors.total', 15],
  ['errors.byCode.BAD_MESSAGE', 1],
  ['errors.byCode.UNKNOWN_CARD', 2],
  ['errors.byCode.OVERLOADED', 3],
  ['errors.byCode.BUSY_EXHAUSTED', 4],
  ['errors.byCode.WRITE_FAILED', 5],
  ['fleet.lagMsP99', 7.5],
  ['fleet.cpuSec', 12.5],
  ['fleet.rssBytesMax', 196_000],
  // 196000 B / 98 sockets; 12.5 s * 1e6 / 250000 frames
  ['fleet.rssBytesPerSocket', 2000],
  ['fleet.cpuUsPerFrame', 50],
  // 2 s of CPU * 1e6 / 8000 frames
  ['fleet.cpuUsPerFrameMeasured', 250],
];
const EXPECTED_RUN_ONLY: Array<[string, number]> = [
  ['audit.lostAcked', 21],
  ['audit.storedNotAcked', 22],
  ['audit.phantom', 23],
  ['audit.notBroadcast', 24],
  ['audit.finalStateMismatches', 25],
  ['audit.seqGaps', 26],
  ['audit.seqReused', 27],
  ['resources.server.rssBytesMax', 50_000_000],
  ['resources.server.rssBytesMaxMeasured', 45_000_000],
  ['resources.server.pssBytesMax', 40_000_000],
  ['resources.server.rssBytesPerSocket', 3000],
  ['resources.server.cpuSec', 9.25],
  ['server.busyHits', 31],
  ['server.retries', 32],
  ['server.exhausted', 33],
  ['server.walBytesMax', 34_000],
  ['server.eventLoopDelayMsP99', 3.5],
  ['server.queueDepthMax', 36],
  ['server.slowConsumerCloses', 37],
];

test('every metric id a threshold can name, in order, and the value each reads from a run', () => {
  assert.deepEqual(
    [...FLEET_METRICS.keys()],
    EXPECTED.map(([k]) => k),
  );
  assert.deepEqual(
    [...METRICS.keys()],
    [...EXPECTED, ...EXPECTED_RUN_ONLY].map(([k]) => k),
  );
  const run = record();
  for (const [k, v] of [...EXPECTED, ...EXPECTED_RUN_ONLY]) assert.equal(METRICS.get(k)!(run), v, k);
  for (const [k, v] of EXPECTED) assert.equal(FLEET_METRICS.get(k)!(run), v, k);
  // through evaluation: each one equal to its value passes
  const out = evaluateThresholds(
    run,
    [...EXPECTED, ...EXPECTED_RUN_ONLY].map(([k, v]) => parseThreshold(`${k} == ${v}`)),
  );
  assert.deepEqual(
    out.filter((o) => !o.pass || o.actual === null).map((o) => o.expr),
    [],
  );
  const fleetOut = evaluateFleetThresholds(
    run,
    EXPECTED.map(([k, v]) => parseThreshold(`${k} == ${v}`, 'fleet')),
  );
  assert.equal(fleetOut.filter((o) => o.pass).length, EXPECTED.length);
});

test('metrics with nothing to read: null (or 0 for an error code never seen)', () => {
  const run = record();
  run.sockets.reached = 0;
  run.fleet.framesReceived = 0;
  run.errors.byCode = {};
  assert.equal(METRICS.get('fleet.rssBytesPerSocket')!(run), null);
  assert.equal(METRICS.get('fleet.cpuUsPerFrame')!(run), null);
  delete run.window.measuredT;
  assert.equal(METRICS.get('fleet.cpuUsPerFrameMeasured')!(run), null);
  for (const code of ['BAD_MESSAGE', 'UNKNOWN_CARD', 'OVERLOADED', 'BUSY_EXHAUSTED', 'WRITE_FAILED']) {
    assert.equal(METRICS.get(`errors.byCode.${code}`)!(run), 0, code);
  }
  delete run.fleet.framesReceived;
  assert.equal(METRICS.get('fleet.cpuUsPerFrame')!(run), null);
  // an audit from before seq reuse was checked: null, not 0
  delete run.audit!.seqReused;
  assert.equal(METRICS.get('audit.seqReused')!(run), null);
  assert.equal(METRICS.get('audit.lostAcked')!(run), 21);
  run.audit = null;
  for (const k of ['lostAcked', 'storedNotAcked', 'phantom', 'notBroadcast', 'finalStateMismatches', 'seqGaps', 'seqReused']) {
    assert.equal(METRICS.get(`audit.${k}`)!(run), null, k);
  }
  const out = evaluateThresholds(run, [parseThreshold('audit.lostAcked == 0'), parseThreshold('audit.seqReused < 1')]);
  assert.deepEqual(
    out.map((o) => [o.actual, o.pass]),
    [
      [null, false],
      [null, false],
    ],
  );
});

test('parsing: spaces, signs, decimals and exponents; the expression kept trimmed', () => {
  const cases: Array<[string, string, string, number]> = [
    ['ackMs.p99<5', 'ackMs.p99', '<', 5],
    ['ackMs.p99 <= 100', 'ackMs.p99', '<=', 100],
    ['  ackMs.p99   >=   -2.5e+3  ', 'ackMs.p99', '>=', -2500],
    ['ackMs.p99 > 1E3', 'ackMs.p99', '>', 1000],
    ['ackMs.p99 > 2e3', 'ackMs.p99', '>', 2000],
    ['ackMs.p99 < 1e10', 'ackMs.p99', '<', 10_000_000_000],
    ['ackMs.p99 != 12.75', 'ackMs.p99', '!=', 12.75],
    ['ackMs.p99 == 1e-2', 'ackMs.p99', '==', 0.01],
    ['\tfanoutMs.uncorrected.p999\t==\t0', 'fanoutMs.uncorrected.p999', '==', 0],
    ['audit.seqReused==-0.5', 'audit.seqReused', '==', -0.5],
  ];
  for (const [expr, metric, op, limit] of cases) {
    assert.deepEqual(parseThreshold(expr), { expr: expr.trim(), metric, op, limit }, expr);
  }
  assert.deepEqual(THRESHOLD_OPS, ['<', '<=', '>', '>=', '==', '!=']);
  assert.deepEqual(DEFAULT_FLEET_THRESHOLDS, [
    'delivery.missing == 0',
    'delivery.duplicate == 0',
    'delivery.phantom == 0',
    'delivery.outOfOrder == 0',
    'errors.total == 0',
    'updates.unanswered == 0',
  ]);
});

test('parsing: what is not "<metric> <op> <number>" is refused with the rule in words', () => {
  const bad = [
    'ackMs.p99 =< 1',
    'ackMs.p99 < 1 x',
    'x ackMs.p99 < 1',
    'ackMs.p99 <',
    'ackMs.p99 1',
    'ackMs.p99 < 1.',
    'ackMs.p99 < .5',
    'ackMs.p99 < 1e',
    'ackMs.p99 < 1e+',
    'ackMs.p99 < 1x3',
    '1ackMs.p99 < 1',
    '.ackMs.p99 < 1',
    'ackMs.p99 < --1',
    'ackMs.p99 <> 1',
    'ackMs-p99 < 1',
    '',
  ];
  for (const expr of bad) {
    assert.throws(
      () => parseThreshold(expr),
      (e: Error) => e.message === `threshold "${expr}" is not of the form "<metric> <op> <number>" with op one of < <= > >= == !=`,
      expr,
    );
  }
});

test('parsing: an unknown metric names up to 8 known ids of its family; the fleet scope names what it cannot measure', () => {
  const msg = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      return (e as Error).message;
    }
    return 'no error';
  };
  assert.equal(
    msg(() => parseThreshold('audit.lost == 0')),
    'threshold "audit.lost == 0" names an unknown metric "audit.lost" (known: audit.lostAcked, audit.storedNotAcked, audit.phantom, audit.notBroadcast, audit.finalStateMismatches, audit.seqGaps, audit.seqReused, …)',
  );
  assert.equal(
    msg(() => parseThreshold('ackMs.p98 < 1')),
    'threshold "ackMs.p98 < 1" names an unknown metric "ackMs.p98" (known: ackMs.p50, ackMs.uncorrected.p50, ackMs.p90, ackMs.uncorrected.p90, ackMs.p99, ackMs.uncorrected.p99, ackMs.p999, ackMs.uncorrected.p999, …)',
  );
  assert.equal(
    msg(() => parseThreshold('nothing.x < 1')),
    'threshold "nothing.x < 1" names an unknown metric "nothing.x"',
  );
  assert.equal(
    msg(() => parseThreshold('connectMs.uncorrected.p99 < 1')).startsWith('threshold "connectMs.uncorrected.p99 < 1" names an unknown metric'),
    true,
  );
  // fleet scope: an unknown metric is unknown, a run-only one is named as such
  assert.equal(
    msg(() => parseThreshold('nothing.x < 1', 'fleet')),
    'threshold "nothing.x < 1" names an unknown metric "nothing.x"',
  );
  assert.equal(
    msg(() => parseThreshold('audit.seqGaps == 0', 'fleet')),
    'threshold "audit.seqGaps == 0" names audit.seqGaps, which the fleet alone does not measure (wami-bench run measures the server and audits the database)',
  );
  assert.deepEqual(parseThreshold('server.busyHits == 0'), { expr: 'server.busyHits == 0', metric: 'server.busyHits', op: '==', limit: 0 });
  assert.deepEqual(parseThreshold('fanoutMs.p99 < 250', 'fleet'), { expr: 'fanoutMs.p99 < 250', metric: 'fanoutMs.p99', op: '<', limit: 250 });
  // a run-scope threshold handed to the fleet's evaluation
  assert.equal(
    msg(() => evaluateFleetThresholds(record(), [parseThreshold('server.busyHits == 0')])),
    'threshold "server.busyHits == 0": server.busyHits is not a fleet metric',
  );
});

test('every operator below, at and above its limit', () => {
  const run = record(); // ackMs.p99 = 23
  const at = (op: string): boolean[] => ['22', '23', '24'].map((lim) => evaluateThresholds(run, [parseThreshold(`ackMs.p99 ${op} ${lim}`)])[0]!.pass);
  assert.deepEqual(at('<'), [false, false, true]);
  assert.deepEqual(at('<='), [false, true, true]);
  assert.deepEqual(at('>'), [true, false, false]);
  assert.deepEqual(at('>='), [true, true, false]);
  assert.deepEqual(at('=='), [false, true, false]);
  assert.deepEqual(at('!='), [true, false, true]);
  const o = evaluateThresholds(run, [parseThreshold('ackMs.p99 <= 23')])[0];
  assert.deepEqual(o, { expr: 'ackMs.p99 <= 23', metric: 'ackMs.p99', op: '<=', limit: 23, actual: 23, pass: true });
});

test('a value that is not a finite number is no value: the threshold fails whatever its operator', () => {
  for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, null, undefined]) {
    const run = record();
    (run.latency.ackMs as { p99: unknown }).p99 = bad;
    const out = evaluateThresholds(
      run,
      ['ackMs.p99 < 1', 'ackMs.p99 > 1', 'ackMs.p99 != 1', 'ackMs.p99 <= 0'].map((e) => parseThreshold(e)),
    );
    assert.deepEqual(
      out.map((x) => [x.actual, x.pass]),
      [
        [null, false],
        [null, false],
        [null, false],
        [null, false],
      ],
      String(bad),
    );
  }
  assert.equal(
    thresholdReason({ expr: 'audit.lostAcked == 0', metric: 'audit.lostAcked', op: '==', limit: 0, actual: null, pass: false }),
    'threshold failed: audit.lostAcked == 0 (actual none)',
  );
  assert.equal(
    thresholdReason({ expr: 'ackMs.p99 < 1', metric: 'ackMs.p99', op: '<', limit: 1, actual: 0, pass: false }),
    'threshold failed: ackMs.p99 < 1 (actual 0)',
  );
});

test("fleet thresholds: a user's threshold replaces the default on its metric, in the user's order after the rest", () => {
  const got = fleetThresholds(['updates.unanswered < 5', 'delivery.missing <= 2', 'ackMs.p99 < 90']);
  assert.deepEqual(
    got.map((t) => t.expr),
    [
      'delivery.duplicate == 0',
      'delivery.phantom == 0',
      'delivery.outOfOrder == 0',
      'errors.total == 0',
      'updates.unanswered < 5',
      'delivery.missing <= 2',
      'ackMs.p99 < 90',
    ],
  );
  assert.deepEqual(got[5], { expr: 'delivery.missing <= 2', metric: 'delivery.missing', op: '<=', limit: 2 });
  const out = evaluateFleetThresholds(record(), got);
  assert.deepEqual(
    out.map((o) => [o.actual, o.pass]),
    [
      [11, false],
      [13, false],
      [12, false],
      [15, false],
      [6, false],
      [10, false],
      [23, true],
    ],
  );
});
