/** Exact numbers of the fleet's statistics and layout: percentiles, histogram merging, delivery join, guard, plan. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeHistogram, encodeHistogram, mergeEncoded, newHistogram, percentilesOf, recordMs, latencyStat } from '../clients/histogram.js';
import { nextRandom } from '../clients/prng.js';
import { firstMedianLast, isSampled, recipientsReport } from '../clients/sampling.js';
import { joinDelivery, type SeenEntry } from '../clients/delivery.js';
import { boardMembers, boardsWithOtherMembers } from '../protocol/layout.js';
import { evaluateGuard, longestRunAtOrAbove, DEFAULT_GUARD } from '../clients/guard.js';
import {
  addressSpread,
  connectUrl,
  countLocalAddresses,
  defaultSourceAddresses,
  loopbackPortUsage,
  defaultWorkerCount,
  normaliseServerUrl,
  segments,
  sourceAddressFor,
} from '../clients/plan.js';
import { classifyConnectError } from '../clients/failures.js';
import { parseVmRss, RssReader } from '../clients/procstat.js';
import { FleetConfigError, resolveFleetOptions } from '../clients/options.js';

test('percentiles: exact extraction (values below 2048 µs are exact at 3 digits)', () => {
  const h = newHistogram();
  for (let us = 1; us <= 2000; us++) recordMs(h, us / 1000);
  assert.deepEqual(percentilesOf(h), { p50: 1, p90: 1.8, p99: 1.98, p999: 1.998, max: 2, count: 2000, mean: 1.001 });
  assert.deepEqual(percentilesOf(newHistogram()), { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, count: 0, mean: 0 });
  // Larger values: within the 3-significant-digit resolution (0.1%), never below the true value.
  const g = newHistogram();
  for (let ms = 1; ms <= 100; ms++) recordMs(g, ms);
  const p = percentilesOf(g);
  assert.equal(p.p50, 50.015); // the top of 50 ms's bucket (32 µs wide)
  assert.equal(p.p99, 99.007);
  assert.equal(p.max, 100.031);
  assert.equal(p.p90, 90.047);
  assert.equal(p.p999, 100.031, 'p99.9 of 100 values is the 100th: 100 ms, the top of its bucket');
  // Clamping: negative -> 0, above one hour -> one hour.
  const c = newHistogram();
  recordMs(c, -5);
  recordMs(c, 7_200_000);
  assert.equal(c.totalCount, 2);
  assert.equal(c.getValueAtPercentile(1), 0);
  assert.ok(c.maxValue <= 3_600_000_000 * 1.001 && c.maxValue >= 3_600_000_000);
});

test('histograms: the merge of encoded parts equals the histogram of the whole', () => {
  const whole = newHistogram();
  const parts = [newHistogram(), newHistogram(), newHistogram()];
  const rng = { rng: 12345 };
  for (let i = 0; i < 30_000; i++) {
    const v = Math.exp(nextRandom(rng) * 12) / 10; // 0.1 ms .. ~16 s, log-spread
    recordMs(whole, v);
    recordMs(parts[i % 3]!, v);
  }
  const merged = mergeEncoded(parts.map(encodeHistogram));
  const decodedWhole = decodeHistogram(encodeHistogram(whole));
  assert.equal(merged.totalCount, 30_000);
  for (const q of [0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100]) {
    assert.equal(merged.getValueAtPercentile(q), whole.getValueAtPercentile(q), `p${q}`);
    assert.equal(decodedWhole.getValueAtPercentile(q), whole.getValueAtPercentile(q), `decoded p${q}`);
  }
  assert.deepEqual(percentilesOf(merged), percentilesOf(whole));
  assert.equal(mergeEncoded(['', '']).totalCount, 0);
  assert.equal(encodeHistogram(newHistogram()), '');
  const st = latencyStat(whole);
  assert.equal(decodeHistogram(st.histogram).totalCount, 30_000);
});

test('recipient sampling: agreed by hash, about 1 in N; first/median/last', () => {
  assert.equal(isSampled(1, 5, 'a-1', 1), true);
  let n = 0;
  for (let u = 0; u < 100; u++) for (let k = 0; k < 100; k++) if (isSampled(7, u, `p-${k}`, 100)) n++;
  assert.ok(n > 60 && n < 140, `sampled ${n} of 10000`);
  assert.equal(isSampled(7, 3, 'p-9', 100), isSampled(7, 3, 'p-9', 100));
  assert.deepEqual(firstMedianLast([5, 1, 3, 2]), { first: 1, median: 2, last: 5 });
  assert.deepEqual(firstMedianLast([4]), { first: 4, median: 4, last: 4 });
  // Arrivals of one update split over two workers are joined before taking first/median/last.
  const r = recipientsReport([
    [['1|a-1', [3, 1]]],
    [
      ['1|a-1', [2]],
      ['2|b-1', [10]],
    ],
  ]);
  assert.equal(r.sampled, 2);
  assert.equal(r.first.count, 2);
  assert.equal(r.first.p50, 1); // first of update 1|a-1 is 1 ms, of 2|b-1 10 ms
  assert.equal(r.median.p50, 2);
  assert.equal(r.last.max, 10.007); // 10 ms, top of its 8 µs bucket
});

test('delivery join across workers: expected, received, missing, phantom', () => {
  // 6 users, 3 per board: board 1 = users 0,1,2 ; board 2 = users 3,4,5. Worker A: 0..2, worker B: 3..5.
  // User 5 closed early (not a whole-window member).
  const acked: Array<[number, string, number]> = [
    [0, 'x-0', 1], // board 1 seq 1 from user 0: expected 2 (users 1, 2)
    [1, 'x-0', 2], // board 1 seq 2 from user 1: expected 2
    [3, 'x-0', 1], // board 2 seq 1 from user 3: expected 1 (user 4; 5 is not whole-window)
    [5, 'x-0', 2], // board 2 seq 2 from user 5 (not whole): expected 2 (users 3, 4)
  ];
  const errored: Array<[number, string, string]> = [[2, 'x-0', 'WRITE_FAILED']];
  const seenA: SeenEntry[] = [
    [1, 1, 0, 'x-0', 2],
    [1, 2, 1, 'x-0', 1], // one receipt of seq 2 missing
    [1, 3, 2, 'x-0', 2], // broadcast, then errored: not a phantom
    [1, 4, 2, 'x-9', 1], // never acked nor errored: phantom
  ];
  const seenB: SeenEntry[] = [
    [2, 1, 3, 'x-0', 1],
    [2, 2, 5, 'x-0', 2],
  ];
  const j = joinDelivery({ firstUser: 0, connections: 6, perBoard: 3, notWholeUsers: [5], acked, errored, seen: [seenA, seenB], duplicate: 1, outOfOrder: 2 });
  assert.deepEqual(j.report, { expected: 7, received: 6, missing: 1, duplicate: 1, outOfOrder: 2, phantom: 1 });
  assert.equal(j.seqConflicts, 0);
  assert.equal(j.ledgerSeen.length, 6);
  assert.deepEqual(j.ledgerSeen[0], [0, 'x-0', 1, 1]);
  // A board split across two workers: receipts add up.
  const k = joinDelivery({
    firstUser: 0,
    connections: 4,
    perBoard: 4,
    notWholeUsers: [],
    acked: [[0, 'a-0', 1]],
    errored: [],
    seen: [[[1, 1, 0, 'a-0', 1]], [[1, 1, 0, 'a-0', 2]]],
    duplicate: 0,
    outOfOrder: 0,
  });
  assert.deepEqual(k.report, { expected: 3, received: 3, missing: 0, duplicate: 0, outOfOrder: 0, phantom: 0 });
  // Two updates under one seq: a conflict.
  const c = joinDelivery({
    firstUser: 0,
    connections: 2,
    perBoard: 2,
    notWholeUsers: [],
    acked: [[0, 'a-0', 1]],
    errored: [],
    seen: [[[1, 1, 1, 'a-5', 1]]],
    duplicate: 0,
    outOfOrder: 0,
  });
  assert.equal(c.seqConflicts, 1);
  assert.equal(boardMembers(2, 10, 15, 100), 5);
  assert.equal(boardMembers(3, 10, 0, 25), 5);
  assert.deepEqual([...boardsWithOtherMembers(21, 10)], [1, 2], 'board 3 holds one user: nobody to broadcast to');
  assert.deepEqual([...boardsWithOtherMembers(22, 10)], [1, 2, 3]);
});

test('saturation guard: reasons name the numbers', () => {
  assert.deepEqual(longestRunAtOrAbove([95, 99, 50, 91, 92, 93, 10], 90), { length: 3, max: 93 });
  const ok = evaluateGuard({
    asked: 10,
    reached: 10,
    failuresByKind: {},
    lagMsP99: 3,
    workers: [{ index: 0, cpuPctBySecond: [50, 95, 95, 40], eventLoopDelayMsP99: 2 }],
  });
  assert.deepEqual(ok, []);
  const bad = evaluateGuard(
    {
      asked: 10,
      reached: 7,
      failuresByKind: { refused: 2, timeout: 1 },
      lagMsP99: 87.25,
      unsent: 12,
      workers: [{ index: 1, cpuPctBySecond: [99, 98, 97, 96.5], eventLoopDelayMsP99: 120 }],
    },
    DEFAULT_GUARD,
  );
  assert.deepEqual(bad, [
    'sockets: reached 7 of 10 asked (3 failed: refused=2, timeout=1)',
    'schedule lag p99 87.3 ms exceeds the bound of 50 ms: the fleet fell behind its own schedule',
    '12 scheduled updates were never sent: the fleet fell behind its own schedule',
    'worker 1 CPU at or above 90% of a core for 4 consecutive seconds (max 99%): the fleet saturated its CPU',
    'worker 1 event-loop delay p99 120 ms exceeds the bound of 50 ms',
  ]);
});

test('plan: segments, workers, source-address spread, URLs', () => {
  assert.deepEqual(segments(10, 3, 5), [
    { index: 0, firstUser: 5, count: 4 },
    { index: 1, firstUser: 9, count: 3 },
    { index: 2, firstUser: 12, count: 3 },
  ]);
  assert.deepEqual(
    [200, 10_000, 30_000, 45_000, 1].map((c) => defaultWorkerCount(c, 2)),
    [2, 2, 2, 3, 1],
  );
  assert.equal(defaultWorkerCount(30_000, 16), 6);
  assert.deepEqual(defaultSourceAddresses(1000, '127.0.0.1'), ['127.0.0.2']);
  assert.deepEqual(defaultSourceAddresses(8000, 'localhost'), ['127.0.0.2']);
  assert.deepEqual(defaultSourceAddresses(8001, 'localhost'), ['127.0.0.2', '127.0.0.3']);
  assert.deepEqual(defaultSourceAddresses(30_000, '127.0.0.1'), ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']);
  assert.deepEqual(defaultSourceAddresses(30_000, '10.0.0.5'), []);
  assert.deepEqual(defaultSourceAddresses(30_000, '127.0.0.1', 15_000), ['127.0.0.2', '127.0.0.3']);
  // The least used addresses first (a previous run's TIME_WAIT ports), ties by address order.
  assert.deepEqual(defaultSourceAddresses(20_000, '127.0.0.1', 8000, { '127.0.0.2': 14_000, '127.0.0.3': 5, '127.0.0.5': 1 }), [
    '127.0.0.4',
    '127.0.0.6',
    '127.0.0.7',
  ]);
  assert.deepEqual(
    countLocalAddresses(
      '  sl  local_address rem_address   st\n   0: 0100007F:A3B1 0100007F:0050 06\n   1: 0200007F:9C40 0100007F:0050 01\n  12: 0200007F:9C41 0100007F:0050 06\n',
    ),
    { '127.0.0.1': 1, '127.0.0.2': 2 },
  );
  assert.equal(typeof loopbackPortUsage(), 'object');
  assert.deepEqual(loopbackPortUsage('/nonexistent'), {});
  const addrs = ['127.0.0.2', '127.0.0.3'];
  assert.deepEqual(addressSpread(30_001, addrs), { '127.0.0.2': 15_001, '127.0.0.3': 15_000 });
  assert.deepEqual(
    [100, 101, 102, 103].map((u) => sourceAddressFor(u, 100, addrs)),
    ['127.0.0.2', '127.0.0.3', '127.0.0.2', '127.0.0.3'],
  );
  // the spread rule and the per-user rule agree
  const count: Record<string, number> = {};
  for (let u = 7; u < 7 + 1001; u++) count[sourceAddressFor(u, 7, addrs)!] = (count[sourceAddressFor(u, 7, addrs)!] ?? 0) + 1;
  assert.deepEqual(count, addressSpread(1001, addrs));
  assert.equal(sourceAddressFor(5, 0, []), undefined);
  assert.equal(normaliseServerUrl('ws://127.0.0.1:8080').toString(), 'ws://127.0.0.1:8080/ws');
  assert.equal(normaliseServerUrl('wss://localhost:8443/ws?x=1').toString(), 'wss://localhost:8443/ws');
  assert.throws(() => normaliseServerUrl('http://127.0.0.1:1/ws'), /ws:\/\/ or wss:\/\//);
  assert.equal(connectUrl('ws://127.0.0.1:1/ws', 3, 42), 'ws://127.0.0.1:1/ws?board=3&user=42');
});

test('connect failures are classified by kind', () => {
  const err = (code: string, message = code): Error => Object.assign(new Error(message), { code });
  assert.equal(classifyConnectError(err('ECONNREFUSED')), 'refused');
  assert.equal(classifyConnectError(err('ECONNRESET')), 'reset');
  assert.equal(classifyConnectError(err('EADDRNOTAVAIL')), 'EADDRNOTAVAIL');
  assert.equal(classifyConnectError(err('EMFILE')), 'EMFILE');
  assert.equal(classifyConnectError(new Error('Opening handshake has timed out')), 'timeout');
  assert.equal(classifyConnectError(new Error('Unexpected server response: 404')), 'http-404');
  assert.equal(classifyConnectError(new Error('weird')), 'other');
});

test('RSS from /proc/<pid>/status, through one kept descriptor', () => {
  assert.equal(parseVmRss('Name:\tnode\nVmRSS:\t  12345 kB\n'), 12345 * 1024);
  assert.equal(parseVmRss('Name: x\n'), null);
  const r = new RssReader('self');
  const a = r.read();
  const b = r.read();
  r.close();
  assert.ok(a !== null && a > 10_000_000 && b !== null && b > 10_000_000, `${a} ${b}`);
  assert.equal(r.read(), null);
});

test('options: defaults and errors that name the flag', () => {
  const r = resolveFleetOptions({ url: 'ws://127.0.0.1:9', connections: 30_000, perBoard: 30, updatesPerUserPerMin: 1, durationSec: 60 }, 2);
  assert.equal(r.workers, 2);
  assert.equal(r.sourceAddresses.length, 4);
  assert.deepEqual(r.nodeFlags, ['--max-semi-space-size=16']);
  assert.equal(r.url, 'ws://127.0.0.1:9/ws');
  assert.equal(r.warmupSec, 5);
  assert.equal(r.drainSec, 5);
  assert.equal(r.sampleEvery, 100);
  assert.equal(r.connectRatePerSec, 2000, 'one default for the fleet, the CLI and scenarios');
  assert.deepEqual(
    r.plan.segments,
    [
      { index: 0, firstUser: 0, count: 15_000 },
      { index: 1, firstUser: 15_000, count: 15_000 },
    ],
    'the plan the coordinator spawns',
  );
  assert.equal(
    Object.values(r.plan.addressSpread).reduce((a, b) => a + b, 0),
    30_000,
  );
  assert.deepEqual(Object.values(r.plan.addressSpread), [7500, 7500, 7500, 7500]);
  const bad = (o: object, re: RegExp): void => {
    assert.throws(
      () => resolveFleetOptions({ url: 'ws://127.0.0.1:9', connections: 10, perBoard: 5, updatesPerUserPerMin: 1, durationSec: 5, ...o }),
      (e: unknown) => e instanceof FleetConfigError && re.test(e.message),
    );
  };
  bad({ perBoard: 11 }, /--per-board.*cannot exceed --connections/);
  bad({ updatesPerUserPerMin: -1 }, /--updates-per-user-per-min/);
  bad({ url: 'http://x' }, /--url/);
  bad({ workers: 11 }, /--workers/);
  bad({ connections: 40_000, perBoard: 5, workers: 2 }, /--workers.*20,000-file limit/);
  bad({ sourceAddresses: ['nope'] }, /--source-addresses/);
  bad({ arrival: 'uniform' }, /--arrival/);
  bad({ idPrefix: 'a b' }, /--id-prefix/);
});
