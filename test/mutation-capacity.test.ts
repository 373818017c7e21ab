/**
 * The capacity search's options (model/capacity-search.ts) and the search itself (runner/capacity.ts: ladder, lines,
 * session, driver),
 * pinned with hand-written values: the tests that kill the mutants `npm run mutation` found surviving
 * (issue 17). Pure, milliseconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { CAPACITY_SEARCH_OPTIONS } from '../model/capacity-search.js';
import {
  axisUnit,
  capacityExitCode,
  capacityLadder,
  capacityLines,
  capacityOutcome,
  capacitySession,
  newVariantState,
  nextConnections,
  recordStep,
  type CapacitySearch,
} from '../runner/capacity.js';
import { ceilingNeededUpTo, newFleetCeiling, recordCeilingStep, nextRate, recordRateStep, stepSignals, writeErrorRate } from '../runner/capacity-rate.js';
import type { CapacityVariant } from '../model/capacity.js';
import { parseThreshold } from '../scenarios/thresholds.js';
import type { CapacityReport } from '../model/capacity.js';
import type { RunRecord } from '../model/result.js';
import type { PlannedRun } from '../runner/plan.js';
import { validateScenario } from '../scenarios/load.js';
import type { Scenario } from '../scenarios/schema.js';

const schema = z.strictObject(CAPACITY_SEARCH_OPTIONS);
const ok = (o: Record<string, unknown>): boolean => schema.safeParse({ slo: [], ...o }).success;

test('capacity search options: the defaults', () => {
  assert.deepEqual(schema.parse({ slo: ['fanoutMs.p99 < 250'] }), {
    slo: ['fanoutMs.p99 < 250'],
    axis: 'sockets',
    maxConnections: 30_000,
    step: 2500,
    rateFactor: 1.5,
    maxRate: 50_000,
    maxErrorRate: 0.001,
    fleetCeiling: true,
  });
  assert.equal(schema.parse({ slo: [], axis: 'rate' }).axis, 'rate');
  assert.equal(ok({ axis: 'bytes' }), false);
  assert.equal(ok({ slo: [1] }), false);
  assert.equal(ok({ fleetCeiling: false }), true);
  assert.equal(ok({ fleetCeiling: 'no' }), false);
});

test('capacity search options: every bound, at and just past it', () => {
  for (const k of ['maxConnections', 'step', 'startConnections', 'connections']) {
    assert.deepEqual(
      [1, 200_000, 0, 200_001, 2.5].map((v) => ok({ [k]: v })),
      [true, true, false, false, false],
      k,
    );
  }
  for (const k of ['startRate', 'maxRate']) {
    assert.deepEqual(
      [1, 2.5, 10_000_000, 0.99, 10_000_001].map((v) => ok({ [k]: v })),
      [true, true, true, false, false],
      k,
    );
  }
  assert.deepEqual(
    [1.01, 10, 1, 10.01].map((v) => ok({ rateFactor: v })),
    [true, true, false, false],
  );
  assert.deepEqual(
    [0, 1, 0.5, -0.01, 1.01].map((v) => ok({ maxErrorRate: v })),
    [true, true, true, false, false],
  );
  assert.equal(ok({ durationSec: 6 }), true);
  assert.equal(ok({ nonsense: 1 }), false);
});

// ---- runner/capacity.ts: the ladder, the lines, the session a search builds and the driver's stepping ----

/** Two variants, 20 users a board, 1000 connects/s, 6 updates per user per minute, 5 s warm-up, drain 5 s (default). */
const scenario = (extra: Record<string, unknown> = {}): Scenario =>
  validateScenario(
    {
      name: 'cap',
      description: 'capacity test',
      variants: [
        { name: 'a', kind: 'batched' },
        { name: 'b', kind: 'per-request' },
      ],
      seed: { boards: 50, cardsPerBoard: 20 },
      users: { perBoard: 20, connectRatePerSec: 1000 },
      load: { updatesPerUserPerMin: 6, arrival: 'poisson', seed: 1 },
      stages: [{ connections: 1000, durationSec: 30 }],
      warmupSec: 5,
      repeats: 1,
      ...extra,
    },
    'test',
  );

/** A run with what recordStep and recordRateStep read: ack and fan-out p99, status, a passing audit. */
function run(p99: number, status: RunRecord['status'] = 'ok'): RunRecord {
  return {
    variantKind: 'per-request',
    variantFlags: [],
    stage: { index: 0, connections: 1000, durationSec: 30 },
    status,
    reasons: status === 'ok' ? [] : ['schedule lag p99 80 ms exceeds the bound of 50 ms'],
    window: { warmupSec: 5, durationSec: 30, startedAtIso: '', wallSec: 40 },
    latency: { ackMs: { p50: 1, p99 }, fanoutMs: { p99 }, connectMs: { p99: Number.NaN } },
    updates: { sent: 3500, acked: 3500, errored: 0, unanswered: 0 },
    errors: { total: 0, byCode: {}, byKind: {} },
    fleet: { lagMsP99: 1, eventLoopDelayMsP99: 1 },
    server: { updatesReceived: 3500, busyHits: 0, retries: 0, exhausted: 0, walBytesMax: 0, eventLoopDelayMsP99: 1 },
    audit: { ok: true, lostAcked: 0, phantom: 0 },
  } as unknown as RunRecord;
}

const usage = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
  return 'no error';
};

test('the socket ladder: start, + step, capped at the maximum; the axis unit', () => {
  assert.deepEqual(capacityLadder({ startConnections: 2500, step: 2500, maxConnections: 10_000 }), [2500, 5000, 7500, 10_000]);
  assert.deepEqual(capacityLadder({ startConnections: 2500, step: 2500, maxConnections: 9000 }), [2500, 5000, 7500, 9000]);
  assert.deepEqual(capacityLadder({ startConnections: 20_000, step: 2500, maxConnections: 10_000 }), [10_000]);
  assert.deepEqual(capacityLadder({ startConnections: 1, step: 1, maxConnections: 1 }), [1]);
  assert.equal(axisUnit('rate'), 'updates/s');
  assert.equal(axisUnit('sockets'), 'sockets');
});

test('capacity lines: no passing count or rate, a search not finished, a ceiling not measured', () => {
  const v = newVariantState('x');
  const stopped = { ...newVariantState('y'), largestPassing: 2000, stoppedAt: 4000, stoppedBecause: 'fleet-invalid' as const, detail: 'fell behind' };
  assert.deepEqual(capacityLines({ axis: 'sockets', variants: [v, stopped] } as unknown as CapacityReport), [
    'x: no passing count — not finished',
    'y: 2000 sockets — fell behind',
  ]);
  const ceiling = { largestValid: null, firstInvalid: 3000, steps: [], detail: '' };
  assert.deepEqual(capacityLines({ axis: 'rate', variants: [v, stopped], fleetCeiling: ceiling } as unknown as CapacityReport), [
    'x: no passing rate — not finished',
    'y: 2000 updates/s — fell behind',
    'fleet ceiling: not measured',
  ]);
  // a report from before the axis existed is a sockets search
  assert.deepEqual(capacityLines({ variants: [v] } as unknown as CapacityReport), ['x: no passing count — not finished']);
});

test('a sockets search: the scenario it runs, its description, and the driver stepping both variants in turn', async () => {
  const { scenario: s, driver } = capacitySession(scenario(), { slo: ['fanoutMs.p99 < 250'], maxConnections: 5000, step: 2000, durationSec: 10 });
  assert.deepEqual(s.stages, [
    { connections: 2000, durationSec: 10 },
    { connections: 4000, durationSec: 10 },
    { connections: 5000, durationSec: 10 },
  ]);
  assert.equal(s.seed.boards, 250, '5000 sockets / 20 a board');
  assert.equal(driver.idPrefix, 'capacity-cap');
  assert.equal(driver.maxConnections, 5000);
  // each run: connections/1000 + 5 warm-up + 10 + 5 drain + 8 = 30, 32, 33 s; 95 s a variant, 190 s in all
  assert.equal(driver.describe, 'capacity search, SLO fanoutMs.p99 < 250, 2000 → 5000 sockets in steps of 2000 (at most 6 runs, at most 3m10s)');
  const calls: Array<[string, number, number, number, number]> = [];
  const exec = async (pr: PlannedRun): Promise<RunRecord> => {
    calls.push([pr.variant.name, pr.stage.connections, pr.stageIndex, pr.repeat, driver.estimateLeftSec(calls.length)]);
    assert.deepEqual(pr.stage, { connections: pr.stage.connections, durationSec: 10 });
    return run(pr.variant.name === 'b' && pr.stage.connections > 2000 ? 300 : 100);
  };
  await driver.drive(exec, () => false);
  assert.deepEqual(calls, [
    ['a', 2000, 0, 1, 190],
    ['b', 2000, 0, 1, 160],
    ['a', 4000, 1, 1, 130],
    ['b', 4000, 1, 1, 98],
    ['a', 5000, 2, 1, 33],
  ]);
  assert.equal(driver.estimateLeftSec(5), 0);
  const report = (driver.extra!() as { capacity: CapacityReport }).capacity;
  assert.deepEqual(
    { ...report, variants: undefined },
    { axis: 'sockets', slo: ['fanoutMs.p99 < 250'], startConnections: 2000, step: 2000, maxConnections: 5000, durationSec: 10, variants: undefined },
  );
  assert.deepEqual(
    report.variants.map((v) => [v.variant, v.largestPassing, v.stoppedAt, v.stoppedBecause, v.detail]),
    [
      ['a', 5000, 5000, 'max-reached', 'the SLO held up to the maximum asked for, 5000 sockets'],
      ['b', 2000, 4000, 'slo-broken', 'the SLO broke at 4000 sockets: fanoutMs.p99 < 250 (actual 300)'],
    ],
  );
  assert.equal(driver.outcome!([]), 'ok');
  assert.equal(report.fleetCeiling, undefined);
});

test('an interrupted search marks every unfinished variant and is incomplete', async () => {
  const { driver } = capacitySession(scenario(), { slo: ['fanoutMs.p99 < 250'], maxConnections: 5000, step: 2000 });
  let n = 0;
  await driver.drive(
    async () => {
      n++;
      return run(100);
    },
    () => n >= 1,
  );
  assert.equal(n, 1);
  const report = (driver.extra!() as { capacity: CapacityReport }).capacity;
  assert.deepEqual(
    report.variants.map((v) => [v.variant, v.largestPassing, v.stoppedBecause, v.detail]),
    [
      ['a', 2000, 'interrupted', 'interrupted'],
      ['b', null, 'interrupted', 'interrupted'],
    ],
  );
  assert.equal(driver.outcome!([]), 'errored');
});

test('a sockets search: defaults from the scenario, the caller on top, and each mistake named', () => {
  // the scenario's capacity block gives the SLO and the step; the caller's maximum wins; undefined sets nothing
  const { scenario: s } = capacitySession(scenario({ capacity: { slo: ['fanoutMs.p99 < 100'], step: 1000, maxConnections: 9000 } }), {
    slo: [],
    maxConnections: 3000,
    step: undefined,
  });
  assert.deepEqual(
    s.stages.map((x) => x.connections),
    [1000, 2000, 3000],
  );
  // start defaults to the step, or the maximum when that is smaller
  const only = capacitySession(scenario(), { slo: ['fanoutMs.p99 < 250'], maxConnections: 1500, step: 2500 }).scenario;
  assert.deepEqual(
    only.stages.map((x) => [x.connections, x.durationSec]),
    [[1500, 30]],
  );
  assert.equal(only.seed.boards, 75);
  assert.equal(
    capacitySession(scenario(), { slo: ['fanoutMs.p99 < 250'], maxConnections: 100, step: 100 }).scenario.seed.boards,
    50,
    'never fewer boards than the scenario',
  );
  assert.equal(
    usage(() => capacitySession(scenario(), { slo: [] })),
    "UsageError: an SLO is required, e.g. --slo 'fanoutMs.p99 < 250' (or a `capacity.slo` in the scenario)",
  );
  assert.equal(
    usage(() => capacitySession(scenario(), { slo: ['fanoutMs.p99 << 1'] })),
    'UsageError: --slo: threshold "fanoutMs.p99 << 1" is not of the form "<metric> <op> <number>" with op one of < <= > >= == !=',
  );
  assert.equal(
    usage(() => capacitySession(scenario(), { slo: ['fanoutMs.p99 < 250'], startConnections: 10 })),
    "UsageError: --start 10 is fewer than the scenario's users.perBoard (20)",
  );
  assert.equal(
    usage(() => capacitySession(scenario(), { slo: ['fanoutMs.p99 < 250'], startConnections: 20 })),
    'no error',
  );
  assert.equal(
    usage(() => capacitySession(scenario(), { slo: ['fanoutMs.p99 < 250'], startConnections: 6000, maxConnections: 5000 })),
    'UsageError: --start must be between 1 and 5000, got 6000',
  );
  assert.equal(
    usage(() => capacitySession(scenario(), { slo: ['fanoutMs.p99 < 250'], startConnections: 5000, maxConnections: 5000 })),
    'no error',
  );
  assert.match(
    usage(() => capacitySession(scenario(), { slo: ['fanoutMs.p99 < 250'], step: 0 })),
    /^UsageError: --step: \S/,
  );
  assert.match(
    usage(() => capacitySession(scenario(), { slo: ['fanoutMs.p99 < 250'], maxErrorRate: 2 })),
    /^UsageError: --max-error-rate: \S/,
  );
});

test('a rate search: the ladder from the scenario’s own rate, the stages, the report, and each mistake named', async () => {
  const { scenario: s, driver } = capacitySession(scenario(), { slo: ['ackMs.p99 < 500'], axis: 'rate', maxRate: 300, rateFactor: 2, fleetCeiling: false });
  // 1000 users × 6 a minute = 100 updates/s: 100, 200, 300; per user 6, 12, 18 a minute
  assert.deepEqual(s.stages, [
    { connections: 1000, durationSec: 30, updatesPerUserPerMin: 6 },
    { connections: 1000, durationSec: 30, updatesPerUserPerMin: 12 },
    { connections: 1000, durationSec: 30, updatesPerUserPerMin: 18 },
  ]);
  assert.equal(s.seed.boards, 50);
  assert.deepEqual(s.load.steps, []);
  // each run 1 + 5 + 30 + 5 + 8 = 49 s; 3 rates × 2 variants
  assert.equal(driver.describe, 'capacity search, SLO ackMs.p99 < 500, 100 → 300 updates/s at 1000 sockets, ×2 per step (at most 6 runs, at most 4m54s)');
  assert.equal(driver.maxConnections, 1000);
  const rates: Array<[string, number | undefined]> = [];
  await driver.drive(
    async (pr) => {
      rates.push([pr.variant.name, pr.stage.updatesPerUserPerMin]);
      return run(pr.variant.name === 'b' && (pr.stage.updatesPerUserPerMin ?? 0) > 6 ? 900 : 100);
    },
    () => false,
  );
  assert.deepEqual(rates, [
    ['a', 6],
    ['b', 6],
    ['a', 12],
    ['b', 12],
    ['a', 18],
  ]);
  const report = (driver.extra!() as { capacity: CapacityReport }).capacity;
  assert.deepEqual(
    { ...report, variants: undefined },
    {
      axis: 'rate',
      slo: ['ackMs.p99 < 500'],
      startConnections: 1000,
      step: 0,
      maxConnections: 1000,
      durationSec: 30,
      rate: { startRate: 100, factor: 2, maxRate: 300, maxErrorRate: 0.001, connections: 1000 },
      variants: undefined,
    },
  );
  assert.deepEqual(
    report.variants.map((v) => [v.largestPassing, v.stoppedBecause]),
    [
      [300, 'max-reached'],
      [100, 'slo-broken'],
    ],
  );
  assert.equal(report.fleetCeiling, undefined, 'fleetCeiling false: no ceiling measured');

  // the start: the scenario's rate capped at the maximum, or the caller's
  const start = (o: Partial<CapacitySearch>): number[] =>
    capacitySession(scenario(), { slo: ['ackMs.p99 < 500'], axis: 'rate', rateFactor: 2, ...o }).scenario.stages.map((x) => x.updatesPerUserPerMin ?? 0);
  assert.deepEqual(start({ maxRate: 50 }), [3]);
  assert.deepEqual(start({ maxRate: 300, startRate: 150 }), [9, 18]);
  assert.deepEqual(start({ maxRate: 300, startRate: 300 }), [18]);
  assert.deepEqual(start({ maxRate: 400, connections: 2000 }), [6, 12]);
  assert.deepEqual(
    capacitySession(scenario(), { slo: ['ackMs.p99 < 500'], axis: 'rate', rateFactor: 2, maxRate: 400, connections: 2000 }).scenario.stages.map(
      (x) => x.connections,
    ),
    [2000, 2000],
  );
  assert.equal(
    usage(() => capacitySession(scenario(), { slo: ['ackMs.p99 < 500'], axis: 'rate', startRate: 400, maxRate: 300 })),
    'UsageError: --start-rate (400) must not be above --max-rate (300)',
  );
  assert.equal(
    usage(() => capacitySession(scenario(), { slo: ['ackMs.p99 < 500'], axis: 'rate', connections: 10 })),
    "UsageError: --connections 10 is fewer than the scenario's users.perBoard (20)",
  );
  assert.equal(
    usage(() => capacitySession(scenario(), { slo: ['ackMs.p99 < 500'], axis: 'rate', connections: 20, maxRate: 20_000 })),
    'no error',
  );
  // 20001 updates/s over 20 sockets: 60003 a user a minute
  assert.equal(
    usage(() => capacitySession(scenario(), { slo: ['ackMs.p99 < 500'], axis: 'rate', connections: 20, maxRate: 20_001 })),
    'UsageError: --max-rate 20001 over 20 sockets is 60003 updates per user per minute: more than 60,000',
  );
});

test("a rate search with the fleet's ceiling: described, and 'not measured' when no variant ran", async () => {
  const { driver } = capacitySession(scenario(), { slo: ['ackMs.p99 < 500'], axis: 'rate', maxRate: 300, rateFactor: 2 });
  assert.equal(
    driver.describe,
    'capacity search, SLO ackMs.p99 < 500, 100 → 300 updates/s at 1000 sockets, ×2 per step (at most 6 runs, at most 4m54s, then the fleet’s own ceiling)',
  );
  // without a session (a library caller's dry drive) nothing is measured
  const noSession = capacitySession(scenario(), { slo: ['ackMs.p99 < 500'], axis: 'rate', maxRate: 300, rateFactor: 2 }).driver;
  await noSession.drive(
    async () => run(100),
    () => false,
  );
  assert.equal((noSession.extra!() as { capacity: CapacityReport }).capacity.fleetCeiling, undefined);
  const logs: string[] = [];
  await driver.drive(
    async () => assert.fail('no run when interrupted at once'),
    () => true,
    { log: (m: string) => logs.push(m) } as never,
  );
  const report = (driver.extra!() as { capacity: CapacityReport }).capacity;
  assert.deepEqual(report.fleetCeiling, { largestValid: null, firstInvalid: null, steps: [], detail: 'not measured: no variant ran' });
  assert.deepEqual(logs, []);
  assert.equal(driver.outcome!([]), 'errored');
});

test('a sockets step: each stop with its exact words, the SLO actuals rounded to 0.01 or n/a', () => {
  const cfg = { slo: [parseThreshold('fanoutMs.p99 < 250'), parseThreshold('audit.lostAcked == 0')], startConnections: 3000, step: 1500, maxConnections: 6000 };
  const r = (p99: number, o: Partial<RunRecord> = {}): RunRecord => ({ ...run(p99), audit: { ok: true, lostAcked: 0, phantom: 0 }, ...o }) as RunRecord;
  const v = newVariantState('v');
  assert.equal(nextConnections(v, cfg), 3000);
  assert.equal(nextConnections(v, { ...cfg, maxConnections: 2000 }), 2000);
  recordStep(v, 3000, r(100), cfg);
  assert.equal(nextConnections(v, cfg), 4500);
  assert.deepEqual(v.steps[0], { connections: 3000, status: 'ok', sloPass: true, actual: { 'fanoutMs.p99': 100, 'audit.lostAcked': 0 } });
  assert.deepEqual([v.largestPassing, v.stoppedAt, v.stoppedBecause, v.detail], [3000, null, null, '']);
  recordStep(v, 4500, r(250.456, { audit: null }), cfg);
  assert.equal(nextConnections(v, cfg), null);
  assert.deepEqual(
    [v.largestPassing, v.stoppedAt, v.stoppedBecause, v.detail],
    [3000, 4500, 'slo-broken', 'the SLO broke at 4500 sockets: fanoutMs.p99 < 250 (actual 250.46); audit.lostAcked == 0 (actual n/a)'],
  );
  const stop = (o: Partial<RunRecord>): [string | null, string, number | null] => {
    const x = recordStep(newVariantState('x'), 3000, r(100, o), cfg);
    return [x.stoppedBecause, x.detail, x.largestPassing];
  };
  assert.deepEqual(stop({ status: 'errored', reasons: ['server exited', 'no scrape'] }), [
    'errored',
    'the run at 3000 sockets errored: server exited; no scrape',
    null,
  ]);
  assert.deepEqual(stop({ status: 'invalid', reasons: ['lag', 'cpu'] }), [
    'fleet-invalid',
    "at 3000 sockets the fleet could not hold its own schedule (lag; cpu): this is the measuring machine's limit, not a measured limit of the server",
    null,
  ]);
  assert.deepEqual(stop({ audit: { ok: false, lostAcked: 2, phantom: 1 } as RunRecord['audit'] }), [
    'audit-failed',
    'the audit failed at 3000 sockets (lostAcked 2, phantom 1)',
    null,
  ]);
  const top = recordStep(newVariantState('t'), 6000, r(100), cfg);
  assert.deepEqual([top.stoppedBecause, top.detail, top.largestPassing], ['max-reached', 'the SLO held up to the maximum asked for, 6000 sockets', 6000]);
  const past = recordStep(newVariantState('p'), 7000, r(100), cfg);
  assert.equal(past.stoppedBecause, 'max-reached');
  // outcomes: every variant passed somewhere; one never did; one interrupted
  const none = recordStep(newVariantState('n'), 3000, r(300), cfg);
  const cut = { ...newVariantState('i'), stoppedBecause: 'interrupted' as const, largestPassing: 3000 };
  const crashed = { ...newVariantState('c'), stoppedBecause: 'errored' as const, largestPassing: 3000 };
  const rep = (...variants: unknown[]) => ({ variants }) as unknown as CapacityReport;
  assert.deepEqual(
    [rep(top, v), rep(top, none), rep(top, cut), rep(none, cut), rep(top, crashed)].map((x) => [capacityOutcome(x), capacityExitCode(x)]),
    [
      ['ok', 0],
      ['failed', 3],
      ['errored', 1],
      ['errored', 1],
      ['errored', 1],
    ],
  );
});

test('a rate step: the exact words of each stop, the next rate after a step, the write errors counted', () => {
  const cfg = { slo: [parseThreshold('ackMs.p99 < 500')], connections: 1000, startRate: 100, factor: 2, maxRate: 400, maxErrorRate: 0.01 };
  const r = (p99: number, o: Partial<RunRecord> = {}): RunRecord => ({ ...run(p99), ...o }) as RunRecord;
  const v = newVariantState('v');
  assert.equal(nextRate(v, cfg), 100);
  recordRateStep(v, 100, r(100), cfg);
  assert.equal(nextRate(v, cfg), 200);
  recordRateStep(v, 200, r(Number.NaN), cfg);
  assert.deepEqual(
    [v.largestPassing, v.stoppedAt, v.stoppedBecause, v.detail],
    [100, 200, 'slo-broken', 'the SLO broke at 200 updates/s: ackMs.p99 < 500 (actual n/a)'],
  );
  assert.equal(nextRate(v, cfg), null);
  // a step of the sockets axis in a report read as rate: its connections stand for the rate
  assert.equal(nextRate({ ...newVariantState('s'), steps: [{ connections: 150, status: 'ok', sloPass: true, actual: {} }] }, cfg), 200);
  assert.equal(nextRate({ ...newVariantState('s'), steps: [{ connections: 400, status: 'ok', sloPass: true, actual: {} }] }, cfg), null);
  const stop = (o: Partial<RunRecord>, p99 = 100): [string | null, string] => {
    const x = recordRateStep(newVariantState('x'), 100, r(p99, o), cfg);
    return [x.stoppedBecause, x.detail];
  };
  assert.deepEqual(stop({ status: 'errored', reasons: ['server exited', 'no scrape'] }), [
    'errored',
    'the run at 100 updates/s errored: server exited; no scrape',
  ]);
  // the fleet fell behind, with errors at the allowed share and the SLO held: nothing else named
  assert.deepEqual(stop({ status: 'invalid', reasons: ['lag'], errors: { total: 35, byCode: { OVERLOADED: 35 }, byKind: {} } }), [
    'fleet-invalid',
    "at 100 updates/s the fleet could not hold its own schedule (lag): this is the measuring machine's limit, not a measured limit of the server",
  ]);
  // 36 of 3500 = 1.03 %, over 1 %: named with each write error code, in order
  assert.deepEqual(stop({ errors: { total: 41, byCode: { WRITE_FAILED: 1, BUSY_EXHAUSTED: 20, OVERLOADED: 15, BAD_MESSAGE: 5 }, byKind: {} } }), [
    'errors',
    'at 100 updates/s, 1.03 % of 3500 updates sent answered with an error (BUSY_EXHAUSTED 20, OVERLOADED 15, WRITE_FAILED 1): more than the 1 % allowed',
  ]);
  assert.equal(writeErrorRate({ errors: { total: 3, byCode: { BAD_MESSAGE: 3 }, byKind: {} }, updates: { sent: 0, acked: 0, errored: 0, unanswered: 0 } }), 0);
  assert.equal(writeErrorRate({ errors: { total: 7, byCode: { OVERLOADED: 7 }, byKind: {} }, updates: { sent: 0, acked: 0, errored: 0, unanswered: 0 } }), 0);
  assert.equal(
    writeErrorRate({ errors: { total: 7, byCode: { OVERLOADED: 7 }, byKind: {} }, updates: { sent: 700, acked: 0, errored: 0, unanswered: 0 } }),
    0.01,
  );
  // a step's signals with nothing sent, no server figures and no updates received
  const empty = r(100, { window: { warmupSec: 0, durationSec: 0, startedAtIso: '', wallSec: 0 } });
  (empty.server as { updatesReceived: number | null }).updatesReceived = 0;
  (empty.server as { busyHits: number | null }).busyHits = null;
  const sig = stepSignals(empty, 100);
  assert.deepEqual([sig.sentRate, sig.busyPerUpdate, sig.retriesPerUpdate, sig.commitMsP99, sig.eventLoopDelayMsMax], [0, null, null, null, 1]);
  (empty.server as { updatesReceived: number | null }).updatesReceived = 3;
  (empty.server as { retries: number | null }).retries = 1;
  const sig3 = stepSignals(empty, 100);
  assert.deepEqual([sig3.retriesPerUpdate, sig3.busyPerUpdate, sig3.flushIntervalMs], [0.3333, null, null]);
});

test('a rate step with two SLOs: one failing is enough, each failure and each reason named', () => {
  const cfg = {
    slo: [parseThreshold('ackMs.p99 < 500'), parseThreshold('fanoutMs.p99 < 50'), parseThreshold('connectMs.p99 < 1')],
    connections: 1000,
    startRate: 100,
    factor: 2,
    maxRate: 400,
    maxErrorRate: 0.01,
  };
  const v = recordRateStep(newVariantState('v'), 100, run(100), cfg);
  assert.deepEqual(
    [v.stoppedBecause, v.detail],
    ['slo-broken', 'the SLO broke at 100 updates/s: fanoutMs.p99 < 50 (actual 100); connectMs.p99 < 1 (actual n/a)'],
  );
  assert.deepEqual(v.steps[0]!.actual, { 'ackMs.p99': 100, 'fanoutMs.p99': 100, 'connectMs.p99': null });
  assert.equal(v.steps[0]!.sloPass, false);
  const inv = recordRateStep(
    newVariantState('i'),
    100,
    { ...run(100), status: 'invalid', reasons: ['lag', 'cpu'], errors: { total: 36, byCode: { OVERLOADED: 36 }, byKind: {} } } as RunRecord,
    cfg,
  );
  assert.equal(
    inv.detail,
    "at 100 updates/s the fleet could not hold its own schedule (lag; cpu): this is the measuring machine's limit, not a measured limit of the server; the server also had 1.03 % of 3500 updates sent answered with an error (OVERLOADED 36); the SLO was also broken: fanoutMs.p99 < 50 (actual 100); connectMs.p99 < 1 (actual n/a)",
  );
});

test("the fleet's ceiling: the highest rate run, and each detail in words", () => {
  const steps = (...rates: Array<number | undefined>) =>
    ({
      ...newVariantState('x'),
      steps: rates.map((rate) => ({ connections: 1000, status: 'ok', sloPass: true, actual: {}, ...(rate === undefined ? {} : { rate }) })),
    }) as CapacityVariant;
  assert.equal(ceilingNeededUpTo([steps(undefined)]), null, 'a sockets search has no rate');
  assert.equal(ceilingNeededUpTo([]), null);
  assert.equal(ceilingNeededUpTo([steps(100, 300, 200), steps(undefined, 250)]), 300);
  assert.equal(ceilingNeededUpTo([steps(undefined, 100), steps(400)]), 400);
  assert.deepEqual(newFleetCeiling(), { largestValid: null, firstInvalid: null, steps: [], detail: '' });
  const sink = (status: 'ok' | 'invalid' | 'errored', reasons: string[] = []) => ({
    status,
    reasons,
    sentRate: 1,
    lagMsP99: 1,
    eventLoopDelayMsP99: 1,
    cpuPctMax: 1,
    ackP99Ms: 1,
  });
  const c = newFleetCeiling();
  recordCeilingStep(c, 100, sink('ok'), 400);
  recordCeilingStep(c, 50, sink('ok'), 400);
  assert.equal(c.largestValid, 100, 'the largest rate held, not the last');
  recordCeilingStep(c, 400, sink('invalid'), 400);
  recordCeilingStep(c, 300, sink('invalid'), 400);
  recordCeilingStep(c, 350, sink('invalid'), 400);
  assert.equal(c.firstInvalid, 300, 'the smallest rate not held');
  assert.equal(
    c.detail,
    "against a no-op sink the fleet could not hold 300 updates/s; it held 100: a knee at or above 300 updates/s is the fleet's (the measuring machine's) limit, not the server's",
  );
  const none = newFleetCeiling();
  recordCeilingStep(none, 400, sink('invalid'), 400);
  recordCeilingStep(none, 200, sink('invalid'), 400);
  assert.deepEqual([none.largestValid, none.firstInvalid], [null, 200]);
  assert.equal(none.detail, "against a no-op sink the fleet held none of the rates tried (down to 200 updates/s): every knee here may be the fleet's limit");
  const err = newFleetCeiling();
  recordCeilingStep(err, 400, sink('errored', ['sink exited', 'no port']), 400);
  assert.equal(err.detail, "not measured: the fleet's run against the sink at 400 updates/s errored (sink exited; no port)");
  assert.deepEqual([err.largestValid, err.firstInvalid, err.steps.length], [null, null, 1]);
});

test('the last gaps the mutation run left: one SLO of two failing a sockets step, two SLOs described, two bad options, boards for a rate search, unreadable batched flags', () => {
  const cfg = { slo: [parseThreshold('fanoutMs.p99 < 250'), parseThreshold('ackMs.p99 < 50')], startConnections: 3000, step: 1500, maxConnections: 6000 };
  const v = recordStep(newVariantState('v'), 3000, run(100), cfg);
  assert.equal(v.detail, 'the SLO broke at 3000 sockets: ackMs.p99 < 50 (actual 100)');
  const { driver } = capacitySession(scenario(), { slo: ['fanoutMs.p99 < 250', 'ackMs.p99 < 500'], maxConnections: 5000, step: 2000, durationSec: 10 });
  assert.equal(
    driver.describe,
    'capacity search, SLO fanoutMs.p99 < 250 and ackMs.p99 < 500, 2000 → 5000 sockets in steps of 2000 (at most 6 runs, at most 3m10s)',
  );
  assert.match(
    usage(() => capacitySession(scenario(), { slo: ['fanoutMs.p99 < 250'], step: 0, maxErrorRate: 2 })),
    /^UsageError: --step: [^;]+; --max-error-rate: [^;]+$/,
  );
  // 2000 sockets at 20 a board: 100 boards, more than the scenario's 50
  assert.equal(capacitySession(scenario(), { slo: ['ackMs.p99 < 500'], axis: 'rate', connections: 2000, maxRate: 400 }).scenario.seed.boards, 100);
  const bad = { ...run(100), variantKind: 'batched', variantFlags: ['--no-such-flag', '1'] } as RunRecord;
  assert.equal(stepSignals(bad, 100).flushIntervalMs, null);
});
