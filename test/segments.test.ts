/**
 * A fleet over several hosts, its pure parts with exact numbers: the segment plan by whole boards,
 * the sizing of N, the start barrier, and the merge of segment results (lossless, refusals).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { latencyStat, newHistogram, percentilesOf, recordMs } from '../clients/histogram.js';
import { MAX_START_SPREAD_MS, MergeError, mergeSegments, type SegmentPart } from '../clients/merge.js';
import { parseSegmentSpec, planSegment, planSegments, segmentsNeeded } from '../clients/plan.js';
import { FleetConfigError, resolveFleetOptions } from '../clients/options.js';
import { FleetResultSchema, type FleetResult, type Ledger, type TimePoint } from '../model/fleet-result.js';
import { BARRIER_LEAD_MS, barrierGate, barrierStart, readyFileName } from '../runner/segments.js';
import { segmentMismatch } from '../runner/external-fleet.js';
import { loadScenario } from '../scenarios/load.js';

const seg = (s: ReturnType<typeof planSegments>[number]) => [s.index, s.firstBoard, s.lastBoard, s.boards, s.firstUser, s.users];

test('segments hold whole boards: even and uneven splits, the last board partial, exact users', () => {
  // 100 users, 10 per board: 10 boards over 3 segments -> 4, 3, 3 boards
  assert.deepEqual(planSegments(100, 10, 3).map(seg), [
    [0, 1, 4, 4, 0, 40],
    [1, 5, 7, 3, 40, 30],
    [2, 8, 10, 3, 70, 30],
  ]);
  // 95 users, 10 per board: 10 boards, the last with 5 users
  assert.deepEqual(planSegments(95, 10, 2).map(seg), [
    [0, 1, 5, 5, 0, 50],
    [1, 6, 10, 5, 50, 45],
  ]);
  // one segment is the whole fleet
  assert.deepEqual(planSegments(7, 3, 1).map(seg), [[0, 1, 3, 3, 0, 7]]);
  // as many segments as boards: one board each, the last partial
  assert.deepEqual(planSegments(7, 3, 3).map(seg), [
    [0, 1, 1, 1, 0, 3],
    [1, 2, 2, 1, 3, 3],
    [2, 3, 3, 1, 6, 1],
  ]);
  // 30,000 users in boards of 20 over 4 hosts: 1,500 boards, 375 each
  assert.deepEqual(planSegments(30_000, 20, 4).map(seg), [
    [0, 1, 375, 375, 0, 7500],
    [1, 376, 750, 375, 7500, 7500],
    [2, 751, 1125, 375, 15000, 7500],
    [3, 1126, 1500, 375, 22500, 7500],
  ]);
  // the segments tile the users exactly
  for (const [c, k, n] of [
    [1000, 7, 9],
    [123, 1, 17],
    [50, 50, 1],
  ] as const) {
    const all = planSegments(c, k, n);
    assert.equal(
      all.reduce((x, s) => x + s.users, 0),
      c,
    );
    for (let i = 1; i < n; i++) assert.equal(all[i]!.firstUser, all[i - 1]!.firstUser + all[i - 1]!.users);
  }
  assert.deepEqual(seg(planSegment(95, 10, 1, 2)), [1, 6, 10, 5, 50, 45]);
});

test('segments: N larger than the boards, and bad specs, are refused with the rule', () => {
  assert.throws(() => planSegments(95, 10, 11), /11 segments but only 10 boards \(95 users, 10 per board\): a segment holds whole boards, so use at most 10/);
  assert.throws(() => planSegments(5, 10, 2), /2 segments but only 1 board/);
  assert.throws(() => planSegment(95, 10, 2, 2), /between 0 and 1/);
  assert.deepEqual(parseSegmentSpec('0/2'), { index: 0, of: 2 });
  assert.deepEqual(parseSegmentSpec(' 3 / 4 '), { index: 3, of: 4 });
  assert.throws(() => parseSegmentSpec('2/2'), /I must be between 0 and N-1 \(segments are counted from 0\)/);
  assert.throws(() => parseSegmentSpec('1/0'), /N must be between 1 and 10000/);
  assert.throws(() => parseSegmentSpec('a/2'), /must be I\/N/);
  assert.throws(() => parseSegmentSpec('-1/2'), /must be I\/N/);
});

test('fleet options: --segment picks its users and boards; not with --first-user; N over the boards is a FleetConfigError', () => {
  const base = { url: 'ws://127.0.0.1:9/ws', connections: 95, perBoard: 10, updatesPerUserPerMin: 6, durationSec: 5, workers: 1, sourceAddresses: [] };
  const r = resolveFleetOptions({ ...base, segment: { index: 1, of: 2 } }, 2);
  assert.equal(r.connections, 45);
  assert.equal(r.firstUser, 50);
  assert.deepEqual(r.plan.segments, [{ index: 0, firstUser: 50, count: 45 }]);
  assert.equal(r.segment?.fleetConnections, 95);
  assert.equal(r.segment?.firstBoard, 6);
  assert.throws(
    () => resolveFleetOptions({ ...base, segment: { index: 0, of: 2 }, firstUser: 10 }, 2),
    (e: unknown) => e instanceof FleetConfigError && /^--segment: is not used with --first-user/.test(e.message),
  );
  assert.throws(
    () => resolveFleetOptions({ ...base, segment: { index: 0, of: 11 } }, 2),
    (e: unknown) => e instanceof FleetConfigError && /^--segment: 11 segments but only 10 boards/.test(e.message),
  );
});

test('sizing N: the fewest hosts for sockets and for deliveries per second', () => {
  // 30,000 users, 20 per board, 6 updates per user per minute: 3,000 updates/s, each delivered to 19 and acked once
  const n = segmentsNeeded({ connections: 30_000, perBoard: 20, updatesPerUserPerMin: 6 }, { sockets: 28_000, deliveriesPerSec: 40_000 });
  assert.deepEqual(n, { bySockets: 2, byDeliveries: 2, segments: 2, deliveriesPerSec: 60_000, boards: 1500 });
  const m = segmentsNeeded({ connections: 30_000, perBoard: 20, updatesPerUserPerMin: 12 }, { sockets: 28_000, deliveriesPerSec: 40_000 });
  assert.equal(m.byDeliveries, 3);
  assert.equal(m.segments, 3);
  // never more segments than boards
  assert.equal(segmentsNeeded({ connections: 40, perBoard: 20, updatesPerUserPerMin: 600 }, { sockets: 10, deliveriesPerSec: 1 }).segments, 2);
});

test('barrier: every segment computes the same start from the same notes; notes of another fleet do not count', () => {
  const k = 'fleet-a';
  const notes = [
    { index: 0, of: 2, key: k, host: 'a', readyEpochMs: 1000 },
    { index: 1, of: 3, key: k, host: 'b', readyEpochMs: 9000 },
    { index: 1, of: 2, key: 'fleet-b', host: 'c', readyEpochMs: 5000 },
  ];
  assert.equal(barrierStart(notes, k, 2), null);
  notes.push({ index: 1, of: 2, key: k, host: 'd', readyEpochMs: 4000 });
  assert.equal(barrierStart(notes, k, 2), 4000 + BARRIER_LEAD_MS);
  assert.equal(barrierStart(notes, k, 1), null);
});

test('barrier: a segment whose peers never come fails with the missing segments named, within its bound', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wami-barrier-'));
  try {
    writeFileSync(join(dir, readyFileName(2, 3)), JSON.stringify({ index: 2, of: 3, key: 'k', host: 'x', readyEpochMs: Date.now() }));
    const g = barrierGate(dir, 0, 3, 'k', 300);
    assert.equal(g.maxWaitMs, 300 + BARRIER_LEAD_MS);
    await assert.rejects(g.wait(), /segment 1\/3 did not connect within 0 s/);
    const all = barrierGate(dir, 1, 3, 'k', 5000);
    writeFileSync(join(dir, readyFileName(0, 3)), JSON.stringify({ index: 0, of: 3, key: 'k', host: 'y', readyEpochMs: 1 }));
    const at = await all.wait();
    assert.ok(at >= Date.now() - 5000 && at <= Date.now() + BARRIER_LEAD_MS);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// --- merge: synthetic segments with known values ---

interface SegSpec {
  index: number;
  of: number;
  connections: number;
  perBoard: number;
  ack: number[];
  fanout: number[];
  originEpochMs: number;
  startEpochMs?: number;
  status?: FleetResult['status'];
  reasons?: string[];
  seed?: number;
  /** [t, sent, ack ms values] per second */
  seconds: Array<[number, number, number[]]>;
  ledger: Ledger;
  delivery: FleetResult['delivery'];
  scenario?: { name: string; hash: string; stage: number } | null;
}

const stat = (ms: number[]) => {
  const h = newHistogram();
  for (const v of ms) recordMs(h, v);
  return latencyStat(h);
};

function makeSegment(s: SegSpec): FleetResult {
  const plan = planSegments(s.connections, s.perBoard, s.of)[s.index]!;
  const point = ([t, sent, ack]: [number, number, number[]]): TimePoint => {
    const a = stat(ack);
    return {
      t,
      openSockets: plan.users,
      sent,
      acked: ack.length,
      errors: 0,
      delivered: 0,
      ackP50Ms: a.p50,
      ackP99Ms: a.p99,
      fanoutP50Ms: 0,
      fanoutP99Ms: 0,
      lagMsP99: 0,
      fleetCpuPct: 10,
      histograms: { ack: a.histogram, fanout: '', lag: '' },
    };
  };
  const sent = s.seconds.reduce((n, x) => n + x[1], 0);
  const r: FleetResult = {
    schemaVersion: 1,
    status: s.status ?? 'ok',
    reasons: s.reasons ?? [],
    config: {
      seed: s.seed ?? 1,
      updatesPerUserPerMin: 6,
      rateSteps: [],
      arrival: 'poisson',
      warmupSec: 0,
      durationSec: 2,
      drainSec: 5,
      sampleEvery: 100,
      stalls: [],
      idPrefix: `p${s.index}`,
    },
    window: { warmupSec: 0, durationSec: 2, startedAtIso: new Date(s.originEpochMs).toISOString(), wallSec: 4, measuredT: { from: 1, to: 2 } },
    sockets: { asked: plan.users, reached: plan.users, failed: 0, failuresByKind: {}, closedEarly: 0 },
    latency: {
      connectMs: stat([1, 2]),
      ackMs: { ...stat(s.ack), uncorrected: stat(s.ack) },
      fanoutMs: { ...stat(s.fanout), uncorrected: stat(s.fanout) },
      recipients: { sampled: 1, first: stat([s.fanout[0] ?? 0]), median: stat([s.fanout[0] ?? 0]), last: stat([s.fanout[0] ?? 0]) },
    },
    drift: { windowSec: 1, ackMs: { first: stat(s.ack), last: stat([]) }, fanoutMs: { first: stat(s.fanout), last: stat([]) } },
    updates: { sent, acked: s.ack.length, errored: 0, unanswered: 0, unansweredAtClose: 0 },
    delivery: s.delivery,
    errors: { total: 0, byCode: {}, byKind: {} },
    fleet: {
      workers: 1,
      nodeFlags: [],
      cpuSec: 1.5,
      framesReceived: 1000 + s.index,
      rssBytesMax: 100,
      lagMsP99: s.index + 1,
      eventLoopDelayMsP99: 2,
      cpuPctMax: 20 + s.index,
    },
    timeseries: s.seconds.map(point),
    segment: {
      index: s.index,
      of: s.of,
      boards: { first: plan.firstBoard, last: plan.lastBoard, count: plan.boards },
      users: { first: plan.firstUser, count: plan.users },
      fleet: { connections: s.connections, perBoard: s.perBoard },
      host: `host-${s.index}`,
      clock: { source: 'CLOCK_MONOTONIC (process.hrtime.bigint)', bootId: `boot-${s.index}` },
      originEpochMs: s.originEpochMs,
      startEpochMs: s.startEpochMs ?? 1_000_000,
      start: 'barrier',
      scenario: s.scenario ?? null,
    },
    ledger: s.ledger,
  };
  return FleetResultSchema.parse(r);
}

const A: SegSpec = {
  index: 0,
  of: 2,
  connections: 30,
  perBoard: 10,
  ack: [1, 2, 3, 4],
  fanout: [5, 6],
  originEpochMs: 1_000_000 - 2400,
  seconds: [
    [0, 0, []],
    [1, 3, [1, 2, 3]],
    [2, 1, [4]],
  ],
  ledger: { acked: [[3, 'p0-1', 1]], errored: [], unanswered: [], seen: [[3, 'p0-1', 1, 1]] },
  delivery: { expected: 18, received: 17, missing: 1, duplicate: 0, outOfOrder: 0, phantom: 0 },
};
const B: SegSpec = {
  index: 1,
  of: 2,
  connections: 30,
  perBoard: 10,
  ack: [10, 20],
  fanout: [30],
  // 1.1 s later than A: its seconds land one later on the merged axis
  originEpochMs: 1_000_000 - 1300,
  seconds: [
    [0, 0, []],
    [1, 2, [10, 20]],
  ],
  ledger: { acked: [[25, 'p1-1', 1]], errored: [[26, 'p1-2', 'OVERLOADED']], unanswered: [], seen: [[25, 'p1-1', 3, 1]] },
  delivery: { expected: 9, received: 9, missing: 0, duplicate: 1, outOfOrder: 0, phantom: 0 },
};
const part = (s: SegSpec, file = `seg-${s.index}.json`): SegmentPart => ({ file, result: makeSegment(s) });

test('merge: histograms of the whole, counts added, seconds aligned by wall clock, ledgers concatenated', () => {
  const { result: m, ledger } = mergeSegments([part(B), part(A)]);
  FleetResultSchema.parse(m);
  // the merged histogram is the histogram of all values, not an average of percentiles
  assert.deepEqual({ ...m.latency.ackMs, histogram: '', uncorrected: undefined }, { ...stat([1, 2, 3, 4, 10, 20]), histogram: '', uncorrected: undefined });
  assert.deepEqual(percentilesOf(newHistogram()), { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, count: 0, mean: 0 });
  assert.equal(m.latency.fanoutMs.count, 3);
  assert.equal(m.latency.fanoutMs.max, stat([30]).max);
  assert.equal(m.latency.recipients.sampled, 2);
  assert.equal(m.latency.recipients.first.count, 2);
  assert.deepEqual(m.delivery, { expected: 27, received: 26, missing: 1, duplicate: 1, outOfOrder: 0, phantom: 0 });
  assert.deepEqual(m.updates, { sent: 6, acked: 6, errored: 0, unanswered: 0, unansweredAtClose: 0 });
  assert.deepEqual(m.sockets.asked, 30);
  assert.deepEqual(m.sockets.reached, 30);
  // B's origin is 1.1 s after A's: shifted by one second
  assert.deepEqual(
    m.timeseries.map((p) => [p.t, p.sent, p.acked, p.fleetCpuPct]),
    [
      [0, 0, 0, 10],
      [1, 3, 3, 20],
      [2, 3, 3, 20],
    ],
  );
  assert.equal(m.timeseries[2]!.ackP99Ms, stat([4, 10, 20]).p99);
  assert.equal(m.timeseries[2]!.histograms, undefined);
  // the seconds both segments measured: A 1..2, B 2..3
  assert.deepEqual(m.window.measuredT, { from: 2, to: 2 });
  assert.deepEqual(ledger, {
    acked: [
      [3, 'p0-1', 1],
      [25, 'p1-1', 1],
    ],
    errored: [[26, 'p1-2', 'OVERLOADED']],
    unanswered: [],
    seen: [
      [3, 'p0-1', 1, 1],
      [25, 'p1-1', 3, 1],
    ],
  });
  assert.deepEqual(
    m.segments?.map((s) => [s.index, s.host, s.users, s.boards, s.status]),
    [
      [0, 'host-0', { first: 0, count: 20 }, { first: 1, last: 2, count: 2 }, 'ok'],
      [1, 'host-1', { first: 20, count: 10 }, { first: 3, last: 3, count: 1 }, 'ok'],
    ],
  );
  assert.equal(m.status, 'ok');
  assert.equal(m.fleet.workers, 2);
  assert.equal(m.fleet.cpuSec, 3);
  assert.equal(m.fleet.framesReceived, 2001, "the segments' received frames, added (the divisor of the fleet's CPU per frame)");
  const older = makeSegment(B);
  delete older.fleet.framesReceived;
  assert.equal(mergeSegments([part(A), { file: 'older.json', result: older }]).result.fleet.framesReceived, undefined, 'not a partial sum');
  assert.equal(m.fleet.lagMsP99, 2);
  assert.equal(m.fleet.cpuPctMax, 21);
  assert.equal(m.config.connections, 30);
});

test("merge: the worst segment's status, with its reasons; segments that did not start together are invalid", () => {
  const bad = mergeSegments([
    part(A),
    part({ ...B, status: 'invalid', reasons: ['schedule lag p99 80 ms exceeds the bound of 50 ms: the fleet fell behind its own schedule'] }),
  ]);
  assert.equal(bad.result.status, 'invalid');
  assert.deepEqual(bad.result.reasons, ['segment 1/2 (host-1): schedule lag p99 80 ms exceeds the bound of 50 ms: the fleet fell behind its own schedule']);
  assert.equal(mergeSegments([part({ ...A, status: 'errored', reasons: ['x'] }), part({ ...B, status: 'invalid' })]).result.status, 'errored');
  const apart = mergeSegments([part(A), part({ ...B, startEpochMs: 1_000_000 + MAX_START_SPREAD_MS + 1 })]);
  assert.equal(apart.result.status, 'invalid');
  assert.match(
    apart.result.reasons[0]!,
    /started 1001 ms apart \(more than 1000 ms\): the server never carried the whole fleet's load at once; start them together with --barrier DIR/,
  );
});

test('merge refuses what is not one fleet, in one line each', () => {
  const refuse = (parts: SegmentPart[], re: RegExp): void => {
    assert.throws(
      () => mergeSegments(parts),
      (e: unknown) => e instanceof MergeError && re.test(e.message) && !e.message.includes('\n'),
    );
  };
  refuse([], /no segment results to merge/);
  refuse([part(A), part(A, 'again.json')], /^overlapping segments: seg-0\.json and again\.json are both segment 0\/2$/);
  refuse([part(A)], /^missing segment 1\/2: have 0\/2 \(seg-0\.json\)$/);
  refuse([part(A), part({ ...B, of: 3 })], /segments of different fleets: seg-0\.json is segment 0\/2, seg-1\.json is segment 1\/3/);
  refuse([part(A), part({ ...B, seed: 2 })], /^mixed seeds: seg-0\.json ran seed 1, seg-1\.json seed 2$/);
  refuse(
    [part({ ...A, scenario: { name: 'smoke', hash: 'h', stage: 1 } }), part({ ...B, scenario: { name: 'fanout', hash: 'h', stage: 1 } })],
    /^mixed scenarios: seg-0\.json ran scenario "smoke" stage 1, seg-1\.json ran scenario "fanout" stage 1$/,
  );
  refuse([part(A), part({ ...B, connections: 40 })], /mixed scenarios: seg-0\.json is part of a fleet of 30 users \(10 per board\), seg-1\.json of 40/);
  const other = makeSegment(B);
  other.config.updatesPerUserPerMin = 12;
  refuse([part(A), { file: 'rate.json', result: other }], /^mixed scenarios: seg-0\.json ran updatesPerUserPerMin 6, rate\.json updatesPerUserPerMin 12$/);
  const { segment: _s, ...notSeg } = makeSegment(B);
  refuse([part(A), { file: 'plain.json', result: notSeg as FleetResult }], /plain\.json is not a segment's result: run wami-bench fleet with --segment I\/N/);
  const moved = makeSegment(B);
  moved.segment!.boards = { first: 2, last: 3, count: 2 };
  refuse([part(A), { file: 'moved.json', result: moved }], /moved\.json holds boards 2\.\.3 .* but segment 1\/2 of 30 users is boards 3\.\.3/);
});

test("run --fleet external: segments of another load are not this run's", async () => {
  const { scenario } = await loadScenario('smoke');
  const st = scenario.stages[0]!;
  const cfg = { connections: st.connections, perBoard: 20, updatesPerUserPerMin: 6, seed: 1, warmupSec: 5, durationSec: 30, arrival: 'poisson' };
  const r = (extra: Record<string, unknown>) => ({ config: { ...cfg, ...extra } }) as unknown as FleetResult;
  assert.equal(segmentMismatch(r({}), scenario, st, 1), null);
  assert.equal(segmentMismatch(r({ seed: 3 }), scenario, st, 1), 'the segments ran seed 3, this run needs 1');
  assert.equal(
    segmentMismatch(r({ scenario: { name: 'smoke', stage: 2 } }), scenario, st, 1),
    'the segments ran scenario "smoke" stage 2, this run is "smoke" stage 1',
  );
});

test('flags: --segment, --barrier, --scenario and --fleet external refuse what cannot work, naming the flag', async () => {
  const { fleetOptionsFromArgv } = await import('../runner/commands/fleet.js');
  const { externalFleetFlags } = await import('../runner/commands/run.js');
  const base = ['--url', 'ws://127.0.0.1:9/ws', '--connections', '100', '--per-board', '10', '--updates-per-user-per-min', '6', '--duration-sec', '2'];
  const bad: Array<[string[], RegExp]> = [
    [[...base, '--segment', '2/2'], /: --segment I must be between 0 and N-1/],
    [[...base, '--segment', '0/2', '--first-user', '5'], /: --segment is not used with --first-user/],
    [[...base, '--barrier', tmpdir()], /: --barrier needs --segment I\/N/],
    [[...base, '--stage', '2'], /: --stage needs --scenario/],
    [['--url', 'ws://h:1', '--scenario', 'smoke', '--per-board', '5'], /: --per-board comes from the scenario with --scenario/],
    [[...base, '--segment', '0/2', '--barrier', tmpdir(), '--barrier-timeout-sec', '0'], /: --barrier-timeout-sec must be/],
  ];
  for (const [argv, re] of bad) assert.throws(() => fleetOptionsFromArgv(argv), re, argv.join(' '));
  const ok = fleetOptionsFromArgv(['--url', 'ws://h:1', '--scenario', 'smoke', '--connections', '200', '--segment', '1/2'])!;
  assert.deepEqual(ok.scenario, { nameOrPath: 'smoke', stage: 1, overrides: { connections: 200 } });
  assert.deepEqual(ok.opts.segment, { index: 1, of: 2 });
  assert.equal(ok.opts.connections, undefined);

  assert.equal(externalFleetFlags({}, 'smoke', undefined), null);
  assert.throws(() => externalFleetFlags({ segments: '2' }, 'smoke', undefined), /: --segments needs --fleet external$/);
  assert.throws(() => externalFleetFlags({ fleet: 'external' }, 'smoke', undefined), /--fleet external needs --segments N/);
  assert.throws(() => externalFleetFlags({ fleet: 'elsewhere' }, 'smoke', undefined), /--fleet must be local or external/);
  assert.throws(() => externalFleetFlags({ fleet: 'external', segments: '0' }, 'smoke', undefined), /--segments must be a whole number between 1 and 10000/);
  const x = externalFleetFlags({ fleet: 'external', segments: '3', 'duration-sec': '5', host: '0.0.0.0', port: '8080' }, 'smoke', '/tmp/o')!;
  assert.deepEqual(
    { ...x, dir: x.dir },
    {
      segments: 3,
      dir: '/tmp/o/segments',
      files: null,
      timeoutSec: null,
      host: '0.0.0.0',
      port: 8080,
      url: null,
      fleetArgs: ['--scenario', 'smoke', '--duration-sec', '5'],
    },
  );
});
