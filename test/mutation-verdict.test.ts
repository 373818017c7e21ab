/**
 * The verdict (report/verdict.ts) and the noise bands (report/noise.ts), every rule pinned on
 * hand-built results with hand-worked expectations: the tests that kill the mutants `npm run mutation`
 * found surviving or uncovered (issue 17). Pure, milliseconds.
 *
 * Bootstrap intervals are worked out without the random generator: a side whose values are all equal
 * resamples to that value every time, so its interval is [x–x]; a side [0, 5] resamples to a median
 * of 0 in about a quarter of the 2,000 draws, which puts the 2.5 % quantile of the ratios at 1.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ResultFile, RunRecord } from '../model/result.js';
import { bandFor, bandFractions, measureNoise, PROJECT_NOISE_BANDS, repeatsToDecide, type NoiseBands } from '../report/noise.js';
import { bootstrapRatio } from '../report/stats.js';
import { acrossStages, caveatOf, collectWarnings, computeVerdict, integrityOf, integrityProblem, type CriterionResult } from '../report/verdict.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixture = JSON.parse(readFileSync(join(root, 'results/fixtures/result-smoke.json'), 'utf8')) as ResultFile;

interface Spec {
  variant?: string;
  kind?: RunRecord['variantKind'];
  stage?: number;
  connections?: number;
  repeat?: number;
  fanout?: number;
  ack?: number;
  ram?: number;
  errors?: number;
}

/** One clean run (status ok, audit clean, nothing lost, no drift) with these figures. */
function run(s: Spec = {}): RunRecord {
  const r = structuredClone(fixture.runs[0]!);
  const errors = s.errors ?? 0;
  Object.assign(r, {
    variant: s.variant ?? 'batched',
    variantKind: s.kind ?? (s.variant === 'per-request' ? 'per-request' : 'batched'),
    variantFlags: [],
    stage: { index: s.stage ?? 0, connections: s.connections ?? 1000, durationSec: 30 },
    repeat: s.repeat ?? 1,
    status: 'ok',
    reasons: [],
    thresholds: [],
  });
  r.sockets = { asked: 1000, reached: 1000, failed: 0, failuresByKind: {}, closedEarly: 0 };
  r.latency.fanoutMs.p99 = s.fanout ?? 10;
  r.latency.ackMs.p99 = s.ack ?? 100;
  r.resources.server.rssBytesPerSocket = s.ram ?? 16_384;
  r.updates = { sent: 600, acked: 600, errored: 0, unanswered: 0 };
  r.delivery = { expected: 57_000, received: 57_000, missing: 0, duplicate: 0, outOfOrder: 0, phantom: 0 };
  r.errors = { total: errors, byCode: errors ? { OVERLOADED: errors } : {}, byKind: {} };
  if (errors) r.updates = { sent: 600, acked: 600 - errors, errored: errors, unanswered: 0 };
  r.audit = { lostAcked: 0, storedNotAcked: 0, phantom: 0, notBroadcast: 0, finalStateMismatches: 0, seqGaps: 0, eventsStored: 600, ok: true, examples: [] };
  // the fixture's last window is slower than its first: make them equal, so no run drifts unless a test says so
  r.drift.fanoutMs.last = structuredClone(r.drift.fanoutMs.first);
  r.drift.ackMs.last = structuredClone(r.drift.ackMs.first);
  return r;
}

const invalid = (r: RunRecord): RunRecord => Object.assign(r, { status: 'invalid', reasons: ['fleet fell behind'] });

function result(runs: RunRecord[]): ResultFile {
  const r = structuredClone(fixture);
  r.runs = runs;
  r.status = 'ok';
  r.reasons = [];
  delete r.capacity;
  return r;
}

const LABEL = 'batched · stage 1 · 1,000 sockets · repeat 1';
const crit = (r: ResultFile, id: CriterionResult['id'], opts = {}): CriterionResult => computeVerdict(r, opts).byStage[0]!.criteria.find((c) => c.id === id)!;

describe('integrity: sums over runs', () => {
  it('codes and kinds with a zero count are left out; counts of the same code or kind add up over runs', () => {
    const a = run();
    a.errors = { total: 5, byCode: { OVERLOADED: 3, BUSY_EXHAUSTED: 0 }, byKind: { closed: 2, connect: 0 } };
    const b = run();
    b.errors = { total: 5, byCode: { OVERLOADED: 1 }, byKind: { closed: 4 } };
    const i = integrityOf([a, b]);
    assert.deepEqual(i.refusedByCode, { OVERLOADED: 4 });
    assert.deepEqual(i.otherErrors, { closed: 6 });
  });

  it('every audit finding counts once: 1 + 2 + 4 + 8 + 16 + 32 = 63', () => {
    const r = run();
    r.audit = {
      lostAcked: 1,
      phantom: 2,
      storedNotAcked: 4,
      notBroadcast: 8,
      finalStateMismatches: 16,
      seqGaps: 32,
      eventsStored: 600,
      ok: false,
      examples: [],
    };
    assert.equal(integrityOf([r]).audit, 63);
    r.audit = null;
    assert.equal(integrityOf([r]).audit, 0);
  });

  it('refusals by code: most first, equal counts in alphabetical order', () => {
    const i = { ...integrityOf([]), sent: 700, refused: 7, refusedByCode: { B_CODE: 2, C_CODE: 3, A_CODE: 2 } };
    // 7 of 700 = 1 %
    assert.equal(integrityProblem(i), 'refused 7 updates (1 %): C_CODE 3, A_CODE 2, B_CODE 2');
  });
});

describe('judging a criterion', () => {
  it('one variant with valid runs: no comparison, and the stage it was judged at', () => {
    const c = crit(result([run(), invalid(run({ variant: 'per-request' }))]), 'fanoutP99');
    assert.deepEqual(
      [c.winner, c.tied, c.runnerUp, c.ratio, c.text, c.stage],
      [null, [], null, null, 'no comparison (only batched has valid runs)', { index: 0, connections: 1000 }],
    );
  });

  it('no valid runs at all: no comparison', () => {
    const c = crit(result([invalid(run()), invalid(run({ variant: 'per-request' }))]), 'ackP99');
    assert.deepEqual([c.winner, c.tied, c.text], [null, [], 'no comparison (no valid runs)']);
  });

  it('the only design that did its work wins by default, with nobody tied', () => {
    const c = crit(result([run({ fanout: 20 }), run({ variant: 'per-request', fanout: 5, errors: 6 })]), 'fanoutP99');
    assert.equal(c.winner, 'batched');
    assert.deepEqual(c.tied, []);
    // 6 of 600 = 1 %
    assert.equal(c.text, "batched: 20 ms (per-request's 5 ms does not count: it refused 6 updates (1 %): OVERLOADED 6)");
  });

  it('single runs: a runner-up exactly at 1 + band is not a tie (5 / 4 = 1.25, band 0.25); every other variant named', () => {
    const r = result([run({ fanout: 4 }), run({ variant: 'per-request', fanout: 5 }), run({ variant: 'third', kind: 'per-request', fanout: 6 })]);
    const c = crit(r, 'fanoutP99', { noiseBand: 0.25 });
    assert.equal(c.winner, 'batched');
    assert.deepEqual(c.tied, []);
    assert.equal(c.runnerUp, 'per-request');
    assert.equal(c.text, 'batched: 4 ms vs per-request 5 ms, third 6 ms (per-request ×1.25)');
  });

  it('single runs: within the band is a tie; a variant exactly at 1 + band is not tied (4.4 / 4 = 1.1, 5 / 4 = 1.25)', () => {
    const r = result([run({ fanout: 4 }), run({ variant: 'per-request', fanout: 4.4 }), run({ variant: 'third', kind: 'per-request', fanout: 5 })]);
    const c = crit(r, 'fanoutP99', { noiseBand: 0.25 });
    assert.equal(c.winner, null);
    assert.deepEqual(c.tied, ['batched', 'per-request']);
    assert.equal(c.runnerUp, 'per-request');
    assert.equal(c.text, 'tie within noise: batched 4 ms vs per-request 4.4 ms, third 5 ms (×1.1)');
  });

  it('repeats: an interval holding 1 is a tie, one wholly above 1 is not (every value equal on a side: [x–x])', () => {
    const runs = [1, 2].flatMap((repeat) => [
      run({ repeat, fanout: 10 }),
      run({ variant: 'per-request', repeat, fanout: 10 }),
      run({ variant: 'third', kind: 'per-request', repeat, fanout: 20 }),
    ]);
    const c = crit(result(runs), 'fanoutP99');
    assert.equal(c.winner, null);
    assert.deepEqual(c.tied, ['batched', 'per-request']);
    assert.deepEqual(c.ratio?.interval, { lo: 1, hi: 1, level: 0.95 });
    assert.equal(c.text, 'tie within noise: batched 10 ms vs per-request 10 ms, third 20 ms (×1 [1–1])');
    const two = [1, 2].flatMap((repeat) => [run({ repeat, fanout: 10 }), run({ variant: 'per-request', repeat, fanout: 20 })]);
    const w = crit(result(two), 'fanoutP99');
    assert.equal(w.winner, 'batched');
    assert.equal(w.text, 'batched: 10 ms vs per-request 20 ms (per-request ×2 [2–2])');
  });

  it('the seed reaches the bootstrap: the interval is the one bootstrapRatio gives with that seed, not with the default', () => {
    const base = [10, 11.1, 12.3, 13.7, 15.2, 16.9];
    const head = [12, 13.5, 15.1, 18.2, 20.3, 23.3];
    const runs = base.flatMap((b, i) => [run({ repeat: i + 1, fanout: b }), run({ variant: 'per-request', repeat: i + 1, fanout: head[i] })]);
    const seeded = crit(result(runs), 'fanoutP99', { seed: 2 }).ratio!.interval;
    assert.deepEqual(seeded, bootstrapRatio(base, head, { seed: 2 })!.interval);
    assert.notDeepEqual(seeded, bootstrapRatio(base, head)!.interval);
  });

  it('a tie at zero is "none at all", with or without the others named', () => {
    const c = crit(result([run(), run({ variant: 'per-request' })]), 'errors');
    assert.deepEqual([c.winner, c.tied, c.text], [null, ['batched', 'per-request'], 'tie: none at all (batched, per-request)']);
    const four = crit(
      result([
        run(),
        run({ variant: 'per-request' }),
        run({ variant: 'fourth', kind: 'per-request', errors: 4 }),
        run({ variant: 'third', kind: 'per-request', errors: 3 }),
      ]),
      'errors',
    );
    // the others in ascending order: third 3 before fourth 4
    assert.equal(four.text, 'tie: none at all (batched, per-request); third 3, fourth 4');
  });

  it('a tie whose best is 0 but runner-up is not is a tie within noise, not "none at all"', () => {
    // batched [0, 0] against per-request [0, 5] (median 2.5): a quarter of the resamples draw [0, 0], ratio 1, so the interval starts at 1
    const runs = [run({ repeat: 1 }), run({ repeat: 2 }), run({ variant: 'per-request', repeat: 1 }), run({ variant: 'per-request', repeat: 2, errors: 5 })];
    const c = crit(result(runs), 'errors');
    assert.equal(c.winner, null);
    assert.deepEqual(c.tied, ['batched', 'per-request']);
    assert.ok(c.text.startsWith('tie within noise: batched 0 vs per-request 2.5 (×∞ [1–'), c.text);
  });
});

describe('warnings', () => {
  const kinds = (r: ResultFile, kind: string) =>
    collectWarnings(r)
      .filter((w) => w.kind === kind)
      .map((w) => [w.severity, w.message]);

  it('the result as a whole: its status with or without reasons, and a result without runs', () => {
    const r = result([run(), run({ variant: 'per-request' })]);
    Object.assign(r, { status: 'invalid', reasons: ['fleet fell behind', 'sockets short'] });
    assert.deepEqual(kinds(r, 'result'), [['warn', 'The run as a whole is invalid: fleet fell behind; sockets short.']]);
    Object.assign(r, { status: 'errored', reasons: [], runs: [] });
    assert.deepEqual(kinds(r, 'result'), [
      ['error', 'The run as a whole is errored.'],
      ['error', 'The result holds no runs.'],
    ]);
    assert.deepEqual(collectWarnings(result([run(), run({ variant: 'per-request' })])), []);
  });

  it('a run: its status with or without reasons; an ok run that failed its audit', () => {
    const errored = Object.assign(run({ variant: 'per-request' }), { status: 'errored', reasons: [] });
    const audited = run({ variant: 'third', kind: 'per-request' });
    audited.audit!.ok = false;
    const r = result([Object.assign(run(), { status: 'invalid', reasons: ['fleet fell behind', 'sockets short'] }), errored, audited]);
    assert.deepEqual(kinds(r, 'run'), [
      ['warn', `${LABEL} is invalid: fleet fell behind; sockets short. Excluded from medians, ratios and winners.`],
      ['error', 'per-request · stage 1 · 1,000 sockets · repeat 1 is errored. Excluded from medians, ratios and winners.'],
      ['error', 'third · stage 1 · 1,000 sockets · repeat 1 failed its audit. Excluded from medians, ratios and winners.'],
    ]);
  });

  it('no audit: a warning for a valid design run, none for the floor or an invalid run', () => {
    const a = run();
    a.audit = null;
    const floor = run({ variant: 'floor', kind: 'floor' });
    floor.audit = null;
    const bad = invalid(run({ variant: 'per-request' }));
    bad.audit = null;
    assert.deepEqual(kinds(result([a, floor, bad]), 'audit'), [['warn', `${LABEL}: no audit of the database.`]]);
  });

  it('a failed audit: every finding named, two examples at most; none named: "see examples"', () => {
    const a = run();
    a.audit = {
      lostAcked: 1,
      phantom: 2,
      storedNotAcked: 3,
      notBroadcast: 4,
      finalStateMismatches: 5,
      seqGaps: 6,
      eventsStored: 600,
      ok: false,
      examples: ['x1', 'x2', 'x3'],
    };
    const b = run({ variant: 'per-request' });
    b.audit = { lostAcked: 0, phantom: 0, storedNotAcked: 0, notBroadcast: 0, finalStateMismatches: 0, seqGaps: 0, eventsStored: 600, ok: false, examples: [] };
    assert.deepEqual(kinds(result([a, b]), 'audit'), [
      [
        'error',
        `${LABEL}: audit FAILED: 1 acked but not stored, 2 broadcast but not stored, 3 stored but never acked, 4 stored but never broadcast, ` +
          '5 card(s) whose final state disagrees with the last event, 6 boards with seq gaps. e.g. x1; x2',
      ],
      ['error', 'per-request · stage 1 · 1,000 sockets · repeat 1: audit FAILED: see examples.'],
    ]);
    // one finding: the others are left out, not written as 0
    a.audit.phantom = 0;
    a.audit.storedNotAcked = 0;
    a.audit.notBroadcast = 0;
    a.audit.finalStateMismatches = 0;
    a.audit.seqGaps = 0;
    a.audit.examples = [];
    assert.deepEqual(kinds(result([a]), 'audit'), [['error', `${LABEL}: audit FAILED: 1 acked but not stored.`]]);
  });

  it('failed thresholds, with and without an actual figure; a passed one says nothing', () => {
    const a = run();
    a.thresholds = [
      { expr: 'fanout.p99Ms < 5', metric: 'fanout.p99Ms', op: '<', limit: 5, actual: 1234.5, pass: false },
      { expr: 'commit.p99Ms < 5', metric: 'commit.p99Ms', op: '<', limit: 5, actual: null, pass: false },
      { expr: 'ack.p99Ms < 500', metric: 'ack.p99Ms', op: '<', limit: 500, actual: 100, pass: true },
    ];
    // fmtNum rounds 1,234.5 to a whole number: 1,235
    assert.deepEqual(kinds(result([a]), 'threshold'), [
      ['warn', `${LABEL}: threshold failed: fanout.p99Ms < 5 (actual 1,235).`],
      ['warn', `${LABEL}: threshold failed: commit.p99Ms < 5 (actual none).`],
    ]);
  });

  it('delivery: each kind named only when there is some; phantom is an error; unanswered updates are an error of their own', () => {
    const a = run();
    a.delivery = { ...a.delivery, missing: 1, duplicate: 2, outOfOrder: 3 };
    const b = run({ variant: 'per-request' });
    b.delivery = { ...b.delivery, phantom: 4 };
    const c = run({ variant: 'third', kind: 'per-request' });
    c.delivery = { ...c.delivery, duplicate: 7 };
    c.updates.unanswered = 3;
    assert.deepEqual(kinds(result([a, b, c]), 'delivery'), [
      ['warn', `${LABEL}: broadcasts 1 missing, 2 duplicate, 3 out of order (of 57000 expected).`],
      ['error', 'per-request · stage 1 · 1,000 sockets · repeat 1: broadcasts 4 phantom (of 57000 expected).'],
      ['warn', 'third · stage 1 · 1,000 sockets · repeat 1: broadcasts 7 duplicate (of 57000 expected).'],
      ['error', 'third · stage 1 · 1,000 sockets · repeat 1: 3 update(s) were never answered (no ack, no error) by the end of the drain.'],
    ]);
  });

  it('errors: client-side kinds named; one error is singular; none by code or kind points to the table', () => {
    const a = run();
    a.errors = { total: 2, byCode: {}, byKind: { closed: 2 } };
    const b = run({ variant: 'per-request' });
    b.errors = { total: 1, byCode: {}, byKind: {} };
    assert.deepEqual(kinds(result([a, b]), 'errors'), [
      ['error', `${LABEL}: 2 errors: 2 other errors (closed 2).`],
      ['error', 'per-request · stage 1 · 1,000 sockets · repeat 1: 1 error: see the errors table.'],
    ]);
  });

  it('sockets: closed early; fewer connected than asked; failures even when all were reached', () => {
    const a = run();
    a.sockets.closedEarly = 2;
    const b = run({ variant: 'per-request' });
    b.sockets.reached = 990;
    const c = run({ variant: 'third', kind: 'per-request' });
    c.sockets.failed = 1;
    assert.deepEqual(kinds(result([a, b, c]), 'sockets'), [
      ['warn', `${LABEL}: 2 socket(s) were closed before the end of the run.`],
      ['warn', 'per-request · stage 1 · 1,000 sockets · repeat 1: 990 of 1000 sockets connected (0 failed).'],
      ['warn', 'third · stage 1 · 1,000 sockets · repeat 1: 1000 of 1000 sockets connected (1 failed).'],
    ]);
  });

  it('drift: a valid run whose fan-out p99 tripled over the window is a warning', () => {
    const a = run();
    // 1,121 and 722 samples in the two windows (over 100), last p99 three times the first: drifted
    a.drift.fanoutMs.last.p99 = a.drift.fanoutMs.first.p99 * 3;
    const w = kinds(result([a, run({ variant: 'per-request' })]), 'drift');
    assert.equal(w.length, 1);
    assert.equal(w[0]![0], 'warn');
  });

  it('comparison: a stage where fewer than two variants have valid runs, and why when a capacity search stopped', () => {
    // one variant in the whole result: nothing to compare, nothing to warn about
    assert.deepEqual(kinds(result([run()]), 'comparison'), []);
    assert.deepEqual(kinds(result([run(), run({ variant: 'per-request' })]), 'comparison'), []);
    const one = result([run(), invalid(run({ variant: 'per-request' }))]);
    assert.deepEqual(kinds(one, 'comparison'), [
      ['warn', 'stage 1 · 1,000 sockets: fewer than two variants have valid runs, so there is no winner at this stage.'],
    ]);
    // a capacity search: stage 2 ran batched only, stage 3 none of the two others
    const cap = result([
      run(),
      run({ variant: 'per-request' }),
      run({ variant: 'third', kind: 'per-request' }),
      run({ stage: 1, connections: 2000 }),
      run({ stage: 1, connections: 2000, variant: 'third', kind: 'per-request' }),
      run({ stage: 2, connections: 3000 }),
    ]);
    cap.capacity = { slo: [], startConnections: 1000, step: 1000, maxConnections: 3000, durationSec: 30, variants: [] };
    assert.deepEqual(kinds(cap, 'comparison'), [
      [
        'warn',
        'stage 3 · 3,000 sockets: fewer than two variants have valid runs (per-request, third not run here: their capacity search had stopped), so there is no winner at this stage.',
      ],
    ]);
    cap.runs.splice(4, 1, invalid(run({ stage: 1, connections: 2000, variant: 'third', kind: 'per-request' })));
    assert.deepEqual(kinds(cap, 'comparison')[0], [
      'warn',
      'stage 2 · 2,000 sockets: fewer than two variants have valid runs (per-request not run here: its capacity search had stopped), so there is no winner at this stage.',
    ]);
    // without a capacity search, no reason is guessed
    delete cap.capacity;
    assert.deepEqual(kinds(cap, 'comparison')[0], [
      'warn',
      'stage 2 · 2,000 sockets: fewer than two variants have valid runs, so there is no winner at this stage.',
    ]);
  });
});

describe('the verdict across stages', () => {
  it('the caveat: pinned or not', () => {
    const r = result([run()]);
    Object.assign(r.environment, { cpuCount: 2, cpuModel: 'X CPU', pinned: true });
    assert.equal(
      caveatOf(r),
      'Server and fleet share one machine (2 × X CPU; pinned to separate CPUs). Absolute figures are limited by that machine; the ratios between variants, measured under the same fleet, are the figures to rely on.',
    );
    r.environment.pinned = false;
    assert.equal(
      caveatOf(r),
      'Server and fleet share one machine (2 × X CPU; not pinned to separate CPUs, so they compete for the same cores). Absolute figures are limited by that machine; the ratios between variants, measured under the same fleet, are the figures to rely on.',
    );
  });

  /**
   * Four stages, not in connection order: 1 and 2 at 5,000 sockets, 3 at 1,000, 4 at 10,000 where
   * per-request's run is invalid. The headline is the largest comparable stage, the later on equal
   * sockets: stage 2 (index 1). Fan-out p99: per-request wins stage 1, batched stages 2 and 3.
   */
  const stages = (): ResultFile =>
    result([
      run({ stage: 0, connections: 5000, fanout: 20 }),
      run({ stage: 0, connections: 5000, variant: 'per-request', fanout: 10 }),
      run({ stage: 1, connections: 5000, fanout: 11 }),
      run({ stage: 1, connections: 5000, variant: 'per-request', fanout: 30 }),
      run({ stage: 2, connections: 1000, fanout: 12 }),
      run({ stage: 2, connections: 1000, variant: 'per-request', fanout: 40 }),
      run({ stage: 3, connections: 10_000, fanout: 13 }),
      invalid(run({ stage: 3, connections: 10_000, variant: 'per-request', fanout: 1 })),
    ]);

  it('the headline is the largest stage where two variants have valid runs, the later one on equal sockets', () => {
    const v = computeVerdict(stages());
    assert.deepEqual(v.headline, { index: 1, connections: 5000 });
    assert.equal(v.criteria, v.byStage[1]!.criteria);
    assert.equal(v.criteria.find((c) => c.id === 'fanoutP99')!.text, 'batched: 11 ms vs per-request 30 ms (per-request ×2.73)');
  });

  it('no stage with two valid variants: no headline, no criteria', () => {
    const v = computeVerdict(result([run(), invalid(run({ variant: 'per-request' }))]));
    assert.equal(v.headline, null);
    assert.deepEqual(v.criteria, []);
  });

  it('winners across stages: most wins first, ties counted as "tie", stages without a comparison left out of the wins', () => {
    const v = computeVerdict(stages());
    assert.equal(acrossStages(v, 'fanoutP99'), 'batched at 2 of 4 stages, per-request at 1 of 4 stages');
    assert.equal(acrossStages(v, 'errors'), 'tie at 3 of 4 stages');
    const none = computeVerdict(result([run(), invalid(run({ variant: 'per-request' }))]));
    assert.equal(acrossStages(none, 'ackP99'), 'no comparable stage');
  });
});

describe('noise bands', () => {
  /** Fan-out p99 by (variant, stage); one run per value. */
  function noisy(cells: Array<[variant: string, stage: number, values: number[]]>): ResultFile {
    const r = result(
      cells.flatMap(([variant, stage, values]) => values.map((fanout, i) => run({ variant, stage, connections: 1000 * (stage + 1), repeat: i + 1, fanout }))),
    );
    Object.assign(r, { runId: 'run-1', startedAtIso: '2026-12-01T06:00:00.000Z' });
    r.scenario.name = 'smoke';
    Object.assign(r.environment, { cpuModel: 'X CPU', cpuCount: 2, hostname: 'host-1', git: { commit: 'abc', dirty: false } });
    return r;
  }

  it('a cell needs two positive values; the spread is the widest of the cells, whatever their order', () => {
    // batched: stage 1 [10, 20] spread 1, stage 2 [10, 40] spread 3, stage 3 [10, 15] spread 0.5, stage 4 [7] alone;
    // per-request is absent at stage 2 (a cell with no runs)
    const r = noisy([
      ['batched', 0, [10, 20]],
      ['per-request', 0, [50, 50]],
      ['batched', 1, [10, 40]],
      ['batched', 2, [10, 15]],
      ['per-request', 2, [50, 50]],
      ['batched', 3, [7]],
    ]);
    const n = measureNoise(r);
    const b = n.byKind.batched!['fanout.p99Ms']!;
    assert.deepEqual([b.cells, b.runs, b.spread], [3, 6, 3]);
    const pooled = n.bands['fanout.p99Ms']!;
    assert.deepEqual([pooled.cells, pooled.runs, pooled.spread], [5, 10, 3]);
    assert.deepEqual(n.sources, [
      { runId: 'run-1', scenario: 'smoke', commit: 'abc', cpuModel: 'X CPU', cpuCount: 2, hostname: 'host-1', startedAtIso: '2026-12-01T06:00:00.000Z' },
    ]);
  });

  it('two values: one degree of freedom (ln 10, ln 40: deviations ±ln 2, sd = ln 2 · √2)', () => {
    const b = measureNoise(noisy([['batched', 0, [10, 40]]])).bands['fanout.p99Ms']!;
    assert.ok(Math.abs(b.sdLog! - Math.LN2 * Math.SQRT2) < 1e-12, String(b.sdLog));
    assert.deepEqual([b.cells, b.runs], [1, 2]);
  });

  it('repeats to decide: null for a band that is not positive or a ratio that is not a positive finite number', () => {
    assert.equal(repeatsToDecide(2, 0), null);
    assert.equal(repeatsToDecide(2, -0.5), null);
    assert.equal(repeatsToDecide(2, Number.NaN), null);
    assert.equal(repeatsToDecide(Number.POSITIVE_INFINITY, 0.5), null);
    assert.equal(repeatsToDecide(0, 0.5), null);
    assert.equal(repeatsToDecide(-2, 0.5), null);
    // (ln 2 / ln 2)² = 1, raised to the minimum of 2
    assert.equal(repeatsToDecide(2, 1), 2);
  });

  it('band fractions: unmeasurable bands left out, per kind too', () => {
    const band = (metric: string, b: number | null) => ({ metric, label: metric, band: b, sdLog: null, spread: null, cells: 0, runs: 0 });
    const n: NoiseBands = {
      sources: [],
      bands: { 'fanout.p99Ms': band('fanout.p99Ms', 0.5), 'errors.total': band('errors.total', null) },
      byKind: { batched: { 'fanout.p99Ms': band('fanout.p99Ms', 0.2), 'ack.p99Ms': band('ack.p99Ms', null) } },
    };
    assert.deepEqual(bandFractions(n), { all: { 'fanout.p99Ms': 0.5 }, byKind: { batched: { 'fanout.p99Ms': 0.2 } } });
    assert.deepEqual(bandFractions({ ...n, byKind: undefined as never }), { all: { 'fanout.p99Ms': 0.5 }, byKind: {} });
  });

  it('the project bands are the ones report/README.md documents (its "Noise bands" table, as fractions)', () => {
    assert.deepEqual(PROJECT_NOISE_BANDS, {
      all: { 'fanout.p99Ms': 7.2, 'fanout.p50Ms': 0.8, 'ack.p99Ms': 4.9, 'ack.p50Ms': 0.6, 'server.rssBytesPerSocket': 0.39, 'server.cpuSec': 0.28 },
      byKind: {
        batched: { 'fanout.p99Ms': 9.6, 'fanout.p50Ms': 0.69, 'ack.p99Ms': 2, 'ack.p50Ms': 0.14, 'server.rssBytesPerSocket': 0.057, 'server.cpuSec': 0.18 },
        'per-request': { 'fanout.p99Ms': 4.6, 'fanout.p50Ms': 0.94, 'ack.p99Ms': 9.8, 'ack.p50Ms': 1, 'server.rssBytesPerSocket': 0.65, 'server.cpuSec': 0.38 },
      },
    });
    assert.equal(bandFor(PROJECT_NOISE_BANDS, 'ack.p99Ms', 'batched'), 2);
    assert.equal(bandFor(PROJECT_NOISE_BANDS, 'ack.p99Ms', 'floor'), 4.9);
    assert.equal(bandFor(PROJECT_NOISE_BANDS, 'ack.p99Ms'), 4.9);
    assert.equal(bandFor(PROJECT_NOISE_BANDS, 'nope'), null);
  });
});
