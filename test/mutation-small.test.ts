/**
 * The schedule's rate segments and message ids, the saturation guard, the fleet's histograms, the
 * report's percentile points and the statistics: the cases that kill the mutants `npm run mutation`
 * found surviving (issue 17). Every expected value is worked out by hand (the comment says how).
 * Pure, milliseconds: no server, no spawn, no timing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { drawUpdate, meanIntervalMs, messageIndex, planUser, rateSegments, type ScheduleConfig, type UserSchedule } from '../clients/schedule.js';
import { evaluateGuard, longestRunAtOrAbove, type GuardBounds, type GuardInput } from '../clients/guard.js';
import { decodeHistogram, encodeHistogram, newHistogram, percentileMs, recordMs } from '../clients/histogram.js';
import { distributionOf, percentilePoints } from '../report/hdr.js';
import { bootstrapRatio, medianOrNull, quantile, ratioVerdict } from '../report/stats.js';

const cfg = (extra: Partial<ScheduleConfig> = {}): ScheduleConfig => ({
  seed: 7,
  perBoard: 10,
  cardsPerBoard: 20,
  updatesPerUserPerMin: 60,
  arrival: 'fixed',
  windowMs: 10_000,
  ...extra,
});

test('schedule: rate segments sorted, steps at or before 0 ignored, intensity summed per segment, cached', () => {
  const c = cfg({
    steps: [
      { atMs: 3000, updatesPerUserPerMin: 0 },
      { atMs: 1000, updatesPerUserPerMin: 120 },
      { atMs: 0, updatesPerUserPerMin: 600 },
      { atMs: -5, updatesPerUserPerMin: 600 },
    ],
  });
  // base 60/min = 0.001 per ms from 0; 120/min = 0.002 from 1000: Λ(1000) = 1000 × 0.001 = 1;
  // 0 from 3000: Λ(3000) = 1 + (3000 − 1000) × 0.002 = 5. The steps at 0 and −5 do not replace the base.
  const segs = rateSegments(c);
  assert.deepEqual(segs, [
    { startMs: 0, perMs: 0.001, lamStart: 0 },
    { startMs: 1000, perMs: 0.002, lamStart: 1 },
    { startMs: 3000, perMs: 0, lamStart: 5 },
  ]);
  assert.equal(rateSegments(c), segs, 'compiled once per config object');
  // one step, no others: the base alone
  assert.deepEqual(rateSegments(cfg()), [{ startMs: 0, perMs: 0.001, lamStart: 0 }]);
});

test('schedule: the mean interval is 60000 / rate, Infinity when the user never sends', () => {
  assert.equal(meanIntervalMs({ updatesPerUserPerMin: 30 }), 2000);
  assert.equal(meanIntervalMs({ updatesPerUserPerMin: 0 }), Infinity);
  assert.equal(meanIntervalMs({ updatesPerUserPerMin: -5 }), Infinity);
});

test('schedule: an arrival exactly at the end of the window is not scheduled', () => {
  // fixed arrivals at 60/min: intensity 1 is at 1000 ms, intensity 2 at 2000 ms = windowMs (excluded)
  const c = cfg({ windowMs: 2000 });
  const s: UserSchedule = { user: 3, board: 1, rng: 12345, n: 0, lam: 1, next: 1000 };
  const u = drawUpdate(c, s);
  assert.equal(u.n, 0);
  assert.equal(u.offsetMs, 1000);
  assert.equal(s.lam, 2);
  assert.equal(s.n, 1);
  assert.equal(s.next, Infinity);
});

test('schedule: a board with listed cards draws both of its two cards', () => {
  // user 0 is on board 1 (perBoard 10); 6000/min for 10 s is ~1000 draws of floor(U × 2) ∈ {0, 1}
  const c = cfg({ updatesPerUserPerMin: 6000, boardCards: new Map([[1, [777, 888]]]) });
  const cards = new Set(planUser(c, 0).map((p) => p.card));
  assert.deepEqual([...cards].sort(), [777, 888]);
});

test('messageIndex: prefix, separator and 1 to 9 digits, nothing else', () => {
  assert.equal(messageIndex('p', 'p-12'), 12);
  assert.equal(messageIndex('p', 'p-123456789'), 123456789);
  assert.equal(messageIndex('p', 'x-5'), -1); // another prefix of the same length
  assert.equal(messageIndex('p', 'p-a5'), -1);
  assert.equal(messageIndex('p', 'p-1234567890'), -1);
  assert.equal(messageIndex('p', 'p'), -1);
  assert.equal(messageIndex('p', 'p-'), -1);
  assert.equal(messageIndex('p', 'p5'), -1);
  assert.equal(messageIndex('p', 'px12'), -1); // digits after another separator
  assert.equal(messageIndex('p', ''), -1);
});

const bounds: GuardBounds = { lagMsP99: 50, cpuPct: 90, cpuSustainSec: 3, eventLoopDelayMsP99: 50 };
const input = (extra: Partial<GuardInput> = {}): GuardInput => ({ asked: 10, reached: 10, failuresByKind: {}, lagMsP99: 0, workers: [], ...extra });

test('guard: the longest run at or above the bound; the first of two equal runs is kept', () => {
  assert.deepEqual(longestRunAtOrAbove([90, 90], 90), { length: 2, max: 90 });
  assert.deepEqual(longestRunAtOrAbove([95, 50, 99], 90), { length: 1, max: 95 });
  assert.deepEqual(longestRunAtOrAbove([95, 91, 50, 99], 90), { length: 2, max: 95 });
  assert.deepEqual(longestRunAtOrAbove([], 90), { length: 0, max: 0 });
});

test('guard: values exactly at the bounds pass; a CPU run exactly cpuSustainSec long fails', () => {
  const atBounds = input({ lagMsP99: 50, unsent: 0, workers: [{ index: 0, cpuPctBySecond: [90, 90, 10], eventLoopDelayMsP99: 50 }] });
  assert.deepEqual(evaluateGuard(atBounds, bounds), []);
  // 90, 95.04, 90: three seconds at or above 90; max 95.04 printed to one decimal, 95
  const three = input({ workers: [{ index: 1, cpuPctBySecond: [89, 90, 95.04, 90, 10], eventLoopDelayMsP99: 0 }] });
  assert.deepEqual(evaluateGuard(three, bounds), ['worker 1 CPU at or above 90% of a core for 3 consecutive seconds (max 95%): the fleet saturated its CPU']);
});

test('guard: socket failures list only the kinds that happened', () => {
  assert.deepEqual(evaluateGuard(input({ reached: 7, failuresByKind: { refused: 2, timeout: 0, reset: 1 } }), bounds), [
    'sockets: reached 7 of 10 asked (3 failed: refused=2, reset=1)',
  ]);
  assert.deepEqual(evaluateGuard(input({ reached: 7, failuresByKind: { timeout: 0 } }), bounds), ['sockets: reached 7 of 10 asked (3 failed)']);
  assert.deepEqual(evaluateGuard(input({ reached: 7 }), bounds), ['sockets: reached 7 of 10 asked (3 failed)']);
});

test('guard: one unsent update is singular', () => {
  assert.deepEqual(evaluateGuard(input({ unsent: 1 }), bounds), ['1 scheduled update was never sent: the fleet fell behind its own schedule']);
  assert.deepEqual(evaluateGuard(input({ unsent: 2 }), bounds), ['2 scheduled updates were never sent: the fleet fell behind its own schedule']);
});

test('histogram: 64-bit counts hold more than 2^32 in one bucket; a raw value past one hour is refused', () => {
  // five billion values of 1000 µs: p50 is the 2.5e9-th, 1 ms. A 32-bit counts array keeps only
  // 5e9 − 2^32 = 705032704 in that bucket, fewer than 2.5e9, and the search finds no value (0).
  const h64 = newHistogram(64);
  h64.recordValueWithCount(1000, 5e9);
  assert.equal(percentileMs(h64, 50), 1);
  const h32 = newHistogram(32);
  h32.recordValueWithCount(1000, 5e9);
  assert.equal(percentileMs(h32, 50), 0);
  // '' decodes to an empty histogram with 64-bit counts, safe to merge into
  const d = decodeHistogram('');
  assert.equal(d.totalCount, 0);
  d.recordValueWithCount(1000, 5e9);
  assert.equal(percentileMs(d, 50), 1);
  // the range is fixed at one hour (no auto-resize): recordMs clamps, a raw value of two hours throws
  assert.throws(() => newHistogram().recordValue(7_200_000_000), /outside of histogram covered range/);
  const h = newHistogram();
  recordMs(h, 7_200_000);
  assert.equal(h.totalCount, 1);
});

test('histogram: one percentile in ms, 0 when empty', () => {
  // 1500 and 2000 µs are below 2048, where 3 significant digits keep every µs: p50 is the 1st of 2
  const h = newHistogram();
  recordMs(h, 1.5);
  recordMs(h, 2);
  assert.equal(percentileMs(h, 50), 1.5);
  assert.equal(percentileMs(h, 100), 2);
  assert.equal(percentileMs(newHistogram(), 99), 0);
});

/** 1, 2, …, n µs, once each (below 2048 every value is its own bucket). */
const ramp = (n: number) => {
  const h = newHistogram();
  for (let v = 1; v <= n; v++) h.recordValue(v);
  return h;
};

test('percentile points: two per decade, the last step, then the maximum', () => {
  // x = 10^(k/2) for k = 0..floor(2 × log10 150) = 4: 1, 3.162, 10, 31.62, 100. hdr's value at p is
  // the ceil(n × p/100)-th smallest: p = 100 (1 − 1/x), n = 150: count 1 (at least one), 102.57 → 103,
  // 135, 145.26 → 146, 148.5 → 149. 100 < 150 = xMax, so the maximum (150) is a point of its own.
  const h150 = ramp(150);
  const pts150: Array<[number, number]> = [
    [1, 1],
    [3.162, 103],
    [10, 135],
    [31.62, 146],
    [100, 149],
    [150, 150],
  ];
  assert.deepEqual(percentilePoints(h150, { pointsPerDecade: 2, unitDivisor: 1 }), pts150);
  // n = 100: the last step is x = 100 = xMax, so its value becomes the maximum (100, not the 99th)
  assert.deepEqual(percentilePoints(ramp(100), { pointsPerDecade: 2, unitDivisor: 1 }), [
    [1, 1],
    [3.162, 69], // 68.38 → 69
    [10, 90],
    [31.62, 97], // 96.84 → 97
    [100, 100],
  ]);
  // a negative density draws no step: the maximum alone
  assert.deepEqual(percentilePoints(h150, { pointsPerDecade: -1, unitDivisor: 1 }), [[150, 150]]);
  // the same points through the encoding; nothing for an empty or unreadable one
  assert.deepEqual(distributionOf(encodeHistogram(h150), { pointsPerDecade: 2, unitDivisor: 1 }), pts150);
  assert.deepEqual(distributionOf(''), []);
  assert.deepEqual(distributionOf('not a histogram'), []);
});

test('quantile: its errors name the problem; q = 0 and q = 1 are order statistics, not interpolations', () => {
  assert.throws(() => quantile([], 0.5), { name: 'RangeError', message: 'quantile of an empty array' });
  assert.throws(() => quantile([1], 1.5), { name: 'RangeError', message: 'quantile q must be in [0, 1], got 1.5' });
  assert.throws(() => quantile([1], -0.1), { name: 'RangeError', message: 'quantile q must be in [0, 1], got -0.1' });
  assert.throws(() => quantile([1], Number.NaN), { name: 'RangeError', message: 'quantile q must be in [0, 1], got NaN' });
  // 1 + (Infinity − 1) × 0 would be NaN
  assert.equal(quantile([1, Number.POSITIVE_INFINITY], 0), 1);
  // the largest: there is no order statistic after it to interpolate towards
  assert.equal(quantile([2, 1], 1), 2);
  assert.equal(medianOrNull([3, 1, 2]), 2);
  assert.equal(medianOrNull([]), null);
});

test('bootstrap: an interval as soon as one side has two values; the default seed; exactly `iterations` resamples', () => {
  // every resample of [3, 3] has median 3, of [2] median 2: each ratio is 3 / 2
  assert.deepEqual(bootstrapRatio([2], [3, 3]), { ratio: 1.5, interval: { lo: 1.5, hi: 1.5, level: 0.95 }, n: { base: 1, head: 2 } });
  assert.deepEqual(bootstrapRatio([2, 2], [3]), { ratio: 1.5, interval: { lo: 1.5, hi: 1.5, level: 0.95 }, n: { base: 2, head: 1 } });
  // One resample. mulberry32(0x5eed) draws 0.7100, 0.2863, … (an independent Python port of mulberry32
  // gives 0.710032, 0.286337, 0.951903, 0.101760, 0.378414): base[floor(0.71 × 2)] = 10,
  // base[floor(0.29 × 2)] = 1, head[0] = 5, so median 5.5 and ratio 5 / 5.5, the same as the point
  // ratio. Seed 0 would draw 0.2664, 0.0003 (base 1, 1: ratio 5); a second resample (0.1018, 0.3784:
  // base 1, 1) would add a 5 and move both quantiles.
  const one = 5 / 5.5;
  assert.deepEqual(bootstrapRatio([1, 10], [5], { iterations: 1 }), { ratio: one, interval: { lo: one, hi: one, level: 0.95 }, n: { base: 2, head: 1 } });
});

test('ratio verdict: an interval that touches 1 is within noise', () => {
  const v = (ratio: number, lo: number, hi: number) => ratioVerdict({ ratio, interval: { lo, hi, level: 0.95 } }, 0.1);
  assert.equal(v(2, 1, 3), 'within noise');
  assert.equal(v(2, 1.01, 3), 'regressed');
  assert.equal(v(0.5, 0.4, 1.2), 'within noise');
  assert.equal(v(0.5, 0.3, 1), 'within noise');
  assert.equal(v(0.5, 0.3, 0.99), 'improved');
});
