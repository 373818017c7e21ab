/**
 * compare (report/compare.ts) and the decision (report/decision.ts), every rule pinned on hand-built
 * inputs with hand-worked outcomes: the tests that kill the mutants `npm run mutation` found surviving
 * (issue 17). Pure, milliseconds: no server, no spawn, no clock.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResultFile, RunRecord } from '../model/result.js';
import { compareCell, compareResults, environmentDifferences, nodeMajor, refusalsOf, type Side } from '../report/compare.js';
import { computeDecision, decideBy, designParagraph } from '../report/decision.js';
import { M } from '../report/metrics.js';
import { groupByStage } from '../report/runs.js';
import { computeVerdict } from '../report/verdict.js';
import { cleanAudit } from './helpers/audit-db.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const smoke = JSON.parse(readFileSync(join(root, 'results/fixtures/result-smoke.json'), 'utf8')) as ResultFile;

/** A side whose median is given by hand (the tests pass it, never compute it). */
const side = (values: number[], median: number | null, valid = values.length, total = valid): Side => ({ values, median, valid, total });
/** No noise band for any metric: the bound alone decides a single run. */
const NO_BANDS = { all: {} };

interface RunSpec {
  variant: string;
  kind?: string;
  stage?: number;
  connections?: number;
  durationSec?: number;
  fanout?: number;
  ack?: number;
  status?: RunRecord['status'];
}

/** One run with the fixture's figures, except these. */
function run(s: RunSpec): RunRecord {
  const r = structuredClone(smoke.runs[0]!);
  r.variant = s.variant;
  r.variantKind = (s.kind ?? s.variant) as RunRecord['variantKind'];
  r.stage = { index: s.stage ?? 0, connections: s.connections ?? 1000, durationSec: s.durationSec ?? 30 };
  r.status = s.status ?? 'ok';
  if (s.fanout !== undefined) r.latency.fanoutMs.p99 = s.fanout;
  if (s.ack !== undefined) r.latency.ackMs.p99 = s.ack;
  return r;
}

function result(runs: RunRecord[], patch: Partial<ResultFile> = {}): ResultFile {
  const r = structuredClone(smoke);
  r.runs = runs;
  return { ...r, ...patch };
}

describe('compare: what makes two results incomparable', () => {
  it('the Node major: a leading v is optional, spaces are trimmed, anything else is no version', () => {
    assert.equal(nodeMajor('  v18.1.0 '), 18);
    assert.equal(nodeMajor('20.3.1'), 20);
    assert.equal(nodeMajor('x20.1'), null);
  });

  it('the CPU model and the Node major, each in its own line', () => {
    const e = smoke.environment;
    assert.deepEqual(environmentDifferences(e, { ...e, cpuModel: 'Intel Xeon', node: 'v22.1.0' }), [
      'CPU model: BASE "AMD EPYC", HEAD "Intel Xeon"',
      'Node major: BASE v20.20.2, HEAD v22.1.0',
    ]);
  });

  it('the scenario: its name alone or its hash alone differs', () => {
    const base = result([run({ variant: 'batched' })]);
    const byName = { ...base, scenario: { ...base.scenario, name: 'other' } };
    // hash "c1b07b9ad9b181bd" is 16 characters: its first 15 are shown
    assert.deepEqual(refusalsOf(base, byName), ['different scenarios: BASE smoke (c1b07b9ad9b181b…), HEAD other (c1b07b9ad9b181b…)']);
    const byHash = { ...base, scenario: { ...base.scenario, hash: '0123456789abcdefff' } };
    assert.deepEqual(refusalsOf(base, byHash), ['different scenarios: BASE smoke (c1b07b9ad9b181b…), HEAD smoke (0123456789abcde…)']);
  });

  it('the stages: sorted by index, thousands separated, "none" for no run', () => {
    // BASE lists stage 1 before stage 0; the text is in index order
    const base = result([run({ variant: 'batched', stage: 1, connections: 5000, durationSec: 60 }), run({ variant: 'batched', stage: 0, connections: 1000 })]);
    const head = result([run({ variant: 'batched', stage: 0, connections: 1000 })]);
    assert.deepEqual(refusalsOf(base, head), ['different stages: BASE 1,000 × 30 s, 5,000 × 60 s; HEAD 1,000 × 30 s']);
    assert.deepEqual(refusalsOf(base, result([])), ['different stages: BASE 1,000 × 30 s, 5,000 × 60 s; HEAD none', 'different variants: BASE batched; HEAD ']);
  });

  it('the variants: sorted, a kind shown when it differs from the name', () => {
    // per-request first in BASE: the text is sorted; "fast" is a batched design under another name
    const base = result([run({ variant: 'per-request' }), run({ variant: 'batched' })]);
    const head = result([run({ variant: 'per-request' }), run({ variant: 'batched' }), run({ variant: 'fast', kind: 'batched' })]);
    assert.deepEqual(refusalsOf(base, head), ['different variants: BASE batched, per-request; HEAD batched, fast (batched), per-request']);
  });

  it('the machine, prefixed "different"', () => {
    const base = result([run({ variant: 'batched' })]);
    const head = { ...base, environment: { ...base.environment, cpuCount: 4 } };
    assert.deepEqual(refusalsOf(base, head), ['different core count: BASE 2, HEAD 4']);
  });
});

describe('compare: one cell, every branch of the rule', () => {
  it('a missing side, and a side with valid runs but no value of the metric', () => {
    assert.equal(compareCell(null, side([5], 5), M.fanoutP99).note, 'no such run in BASE');
    assert.equal(compareCell(side([], null, 1), side([5], 5), M.fanoutP99).note, 'no fan-out p99 value in BASE');
    assert.equal(compareCell(side([5], 5), side([], null, 1), M.fanoutP99).note, 'no fan-out p99 value in HEAD');
  });

  it('invalid runs on a side are named; notes are joined with "; "', () => {
    // 10 -> 10.5 ms: ×1.05, inside the 10 % bound; BASE had 2 runs, 1 valid
    const c = compareCell(side([10], 10, 1, 2), side([10.5], 10.5), M.fanoutP99, { noise: { all: { 'fanout.p99Ms': 0.5 } } });
    assert.equal(c.verdict, 'within noise');
    assert.equal(c.note, 'BASE: 1 of 2 runs valid; single run per side; noise band ±50%');
    const h = compareCell(side([10], 10), side([10.5], 10.5, 1, 3), M.fanoutP99, { noise: NO_BANDS });
    assert.equal(h.note, 'HEAD: 1 of 3 runs valid; single run per side, no noise band');
  });

  it('the bootstrap takes the given iterations: one resample gives an interval of one point', () => {
    // base 10, 20 and head 10, 20, 30: one resample is one ratio, so both ends of the interval are it
    const c = compareCell(side([10, 20], 15), side([10, 20, 30], 20), M.fanoutP99, { iterations: 1 });
    assert.ok(c.interval);
    assert.equal(c.interval.lo, c.interval.hi);
  });

  it('the absolute floor: the change |HEAD − BASE|, inclusive', () => {
    // 1 -> 1.9 ms: ×1.9 is past the bound, but the change is 0.9 ms ≤ 1 ms (a sum, 2.9, would not be)
    const a = compareCell(side([1], 1), side([1.9], 1.9), M.fanoutP99, { noise: NO_BANDS });
    assert.deepEqual([a.verdict, a.note], ['within noise', 'change under the absolute floor (1 ms); single run per side, no noise band']);
    // 1 -> 2 ms: a change of exactly the floor is still within noise
    assert.equal(compareCell(side([1], 1), side([2], 2), M.fanoutP99, { noise: NO_BANDS }).verdict, 'within noise');
    // within the bound and under the floor: within noise by the rule, and the floor is not mentioned
    assert.equal(compareCell(side([100], 100), side([100.5], 100.5), M.fanoutP99, { noise: NO_BANDS }).note, 'single run per side, no noise band');
  });

  it('exactly on the bound is not past it, on either side', () => {
    // bound 25 %: 40 -> 50 is ×1.25 = 1 + 0.25; 50 -> 40 is ×0.8 = 1 / 1.25
    for (const [b, h] of [
      [40, 50],
      [50, 40],
    ] as const) {
      const c = compareCell(side([b], b), side([h], h), M.fanoutP99, { noise: NO_BANDS, maxRegression: 0.25 });
      assert.deepEqual([c.verdict, c.note, c.repeatsNeeded], ['within noise', 'single run per side, no noise band', null]);
    }
  });

  it('past the bound inside the band: inconclusive only when the change clears the floor (strictly)', () => {
    // band 100 %: 1 -> 1.5 ms is past the 10 % bound, inside the band, but 0.5 ms is under the floor
    const under = compareCell(side([1], 1), side([1.5], 1.5), M.fanoutP99, { noise: { all: { 'fanout.p99Ms': 1 } } });
    assert.deepEqual([under.verdict, under.note], ['within noise', 'single run per side; noise band ±100%']);
    // band 200 %: 1 -> 2 ms, a change of exactly the 1 ms floor: within noise
    const at = compareCell(side([1], 1), side([2], 2), M.fanoutP99, { noise: { all: { 'fanout.p99Ms': 2 } } });
    assert.deepEqual([at.verdict, at.note], ['within noise', 'single run per side; noise band ±200%']);
  });

  it('with repeats: repeats to decide from the interval, widened by √n of the smaller side', () => {
    // BASE 10 ×4 is always 10; HEAD resamples of 5, 20, 30 have median 5, 20 or 30, each at the ends with
    // chance 7/27 (two or three of three draws), far above 2.5 %: interval [0.5, 3], ratio 20 / 10 = 2.
    // half = (ln 3 − ln 0.5) / 2 = ln 6 / 2; band = e^(half·√3) − 1 (n = min(4, 3) = 3);
    // repeats = ⌈(ln(1 + band) / ln 2)²⌉ = ⌈(3/4)·(ln 6 / ln 2)²⌉ = ⌈0.75 × 6.682⌉ = ⌈5.01⌉ = 6
    const c = compareCell(side([10, 10, 10, 10], 10), side([5, 20, 30], 20), M.fanoutP99);
    assert.deepEqual(c.interval, { lo: 0.5, hi: 3, level: 0.95 });
    assert.equal(c.verdict, 'inconclusive');
    assert.equal(c.repeatsNeeded, 6);
    assert.equal(c.note, 'past the 10% bound, but the 95% interval still holds 1; about 6 runs per side would decide it');
  });

  it('with repeats and an interval reaching 0: no band, so no count of repeats', () => {
    // HEAD 0, 0, 20, 20, 20: a resample's median is 0 when three or more draws are 0, chance
    // 10·0.4³·0.6² + 5·0.4⁴·0.6 + 0.4⁵ = 0.317 > 2.5 %: interval [0, 2]; ratio 20 / 10 = 2
    const c = compareCell(side([10, 10, 10], 10), side([0, 0, 20, 20, 20], 20), M.fanoutP99);
    assert.deepEqual(c.interval, { lo: 0, hi: 2, level: 0.95 });
    assert.deepEqual([c.verdict, c.repeatsNeeded], ['inconclusive', null]);
    assert.equal(c.note, 'past the 10% bound, but the 95% interval still holds 1');
  });

  it('with repeats: a real change inside the bound is said; an interval touching 1 is not a change', () => {
    // every resample of constant sides gives the same ratio: the interval is one point
    const up = compareCell(side([10, 10, 10], 10), side([10.5, 10.5, 10.5], 10.5), M.fanoutP99);
    assert.deepEqual([up.verdict, up.note], ['within noise', 'a real change, but within the 10% bound']);
    const down = compareCell(side([10, 10, 10], 10), side([9.5, 9.5, 9.5], 9.5), M.fanoutP99);
    assert.deepEqual([down.verdict, down.note], ['within noise', 'a real change, but within the 10% bound']);
    // HEAD 10, 10.5, 10.5: resample medians 10 (chance 7/27) or 10.5: interval [1, 1.05], touching 1
    const touchLo = compareCell(side([10, 10, 10], 10), side([10, 10.5, 10.5], 10.5), M.fanoutP99);
    assert.deepEqual([touchLo.interval, touchLo.note], [{ lo: 1, hi: 1.05, level: 0.95 }, '']);
    // HEAD 9.5, 10, 10 mirrored: [0.95, 1]
    const touchHi = compareCell(side([10, 10, 10], 10), side([9.5, 10, 10], 10), M.fanoutP99);
    assert.deepEqual([touchHi.interval, touchHi.note], [{ lo: 0.95, hi: 1, level: 0.95 }, '']);
    // HEAD 9.5, 10, 10.5 holds 1 on both sides: nothing to say
    assert.equal(compareCell(side([10, 10, 10], 10), side([9.5, 10, 10.5], 10), M.fanoutP99).note, '');
    // a regression says nothing about "within the bound"
    const reg = compareCell(side([10, 10, 10], 10), side([20, 20, 20], 20), M.fanoutP99);
    assert.deepEqual([reg.verdict, reg.note], ['regressed', '']);
  });
});

describe('compare: whole results', () => {
  it('stages in index order, variants HEAD first then BASE-only, absent cells skipped, stage objects kept', () => {
    // stages appear as 1, 0, 2; "a" runs at all three, "b" at 0 and 1 in BASE only, "c" at 2 in HEAD only
    const base = result([
      run({ variant: 'a', kind: 'batched', stage: 1, connections: 2000 }),
      run({ variant: 'b', kind: 'batched', stage: 1, connections: 2000 }),
      run({ variant: 'a', kind: 'batched', stage: 0, connections: 1000 }),
      run({ variant: 'b', kind: 'batched', stage: 0, connections: 1000 }),
      run({ variant: 'a', kind: 'batched', stage: 2, connections: 3000 }),
    ]);
    const head = result([
      run({ variant: 'a', kind: 'batched', stage: 1, connections: 2000 }),
      run({ variant: 'a', kind: 'batched', stage: 0, connections: 1000 }),
      run({ variant: 'a', kind: 'batched', stage: 2, connections: 3000 }),
      run({ variant: 'c', kind: 'batched', stage: 2, connections: 3000 }),
    ]);
    const c = compareResults(base, head, { maxRegression: 0.2 });
    const fan = c.rows.filter((r) => r.metric.id === 'fanout.p99Ms');
    assert.deepEqual(
      fan.map((r) => [r.stage, r.variant, r.verdict, r.note]),
      [
        [{ index: 0, connections: 1000 }, 'a', 'within noise', 'single run per side; noise band ±960%'],
        [{ index: 0, connections: 1000 }, 'b', 'inconclusive', 'no such run in HEAD'],
        [{ index: 1, connections: 2000 }, 'a', 'within noise', 'single run per side; noise band ±960%'],
        [{ index: 1, connections: 2000 }, 'b', 'inconclusive', 'no such run in HEAD'],
        [{ index: 2, connections: 3000 }, 'a', 'within noise', 'single run per side; noise band ±960%'],
        [{ index: 2, connections: 3000 }, 'c', 'inconclusive', 'no such run in BASE'],
      ],
    );
    assert.equal(c.rows.length, 6 * 7, 'six cells, seven gate metrics each');
    assert.equal(c.maxRegression, 0.2);
    assert.deepEqual(c.notes, []);
    assert.equal(c.repeatsNeeded, null, 'nothing inconclusive by noise');
    assert.deepEqual(c.base, { runId: smoke.runId, scenario: 'smoke', commit: smoke.environment.git.commit });
    assert.deepEqual(c.head, { runId: smoke.runId, scenario: 'smoke', commit: smoke.environment.git.commit });
  });

  it('a stage of a different size is inconclusive for every metric, numbered from 1', () => {
    const base = result([run({ variant: 'batched', stage: 0, connections: 1000 })]);
    const head = result([run({ variant: 'batched', stage: 0, connections: 2000 })]);
    const c = compareResults(base, head);
    assert.ok(c.rows.length === 7 && c.rows.every((r) => r.verdict === 'inconclusive' && r.ratio === null && r.interval === null));
    assert.equal(c.rows[0]!.note, 'stage 1 differs: 1000 sockets in BASE, 2000 in HEAD');
    assert.deepEqual(c.rows[0]!.stage, { index: 0, connections: 2000 });
  });

  it("HEAD's kind picks the noise band when a variant changed kind", () => {
    // band 100 % for batched only: as batched (BASE), 10 -> 15 ms is inside it; as per-request (HEAD) there
    // is no band, so ×1.5 past the 10 % bound regresses
    const noise = { all: {}, byKind: { batched: { 'fanout.p99Ms': 1 } } };
    const base = result([run({ variant: 'x', kind: 'batched', fanout: 10 })]);
    const head = result([run({ variant: 'x', kind: 'per-request', fanout: 15 })]);
    const c = compareResults(base, head, { noise });
    assert.equal(c.rows.find((r) => r.metric.id === 'fanout.p99Ms')!.verdict, 'regressed');
    assert.equal(c.noise, noise);
  });

  it('the repeats to decide: the largest over the rows; the pinning note', () => {
    // fan-out p99 band 50 %, ×1.3: ⌈(ln 1.5 / ln 1.3)²⌉ = ⌈2.37⌉ = 3; ack p99 band 100 %, ×1.11: ⌈(ln 2 / ln 1.11)²⌉ = ⌈44.1⌉ = 45
    const noise = { all: { 'fanout.p99Ms': 0.5, 'ack.p99Ms': 1 } };
    const base = result([run({ variant: 'batched', fanout: 100, ack: 100 })]);
    const head = result([run({ variant: 'batched', fanout: 130, ack: 111 })], {
      environment: { ...smoke.environment, pinned: true },
    });
    const c = compareResults(base, head, { noise });
    assert.deepEqual(
      c.rows.map((r) => r.repeatsNeeded),
      [3, null, 45, null, null, null, null],
    );
    assert.equal(c.repeatsNeeded, 45);
    assert.deepEqual(c.notes, ['CPU pinning differs: BASE not pinned, HEAD pinned.']);
    assert.deepEqual(compareResults(head, base, { noise }).notes, ['CPU pinning differs: BASE pinned, HEAD not pinned.']);
  });
});

/* ------------------------------------------------------------------------------------------------ */
/* The decision (report/decision.ts)                                                                 */
/* ------------------------------------------------------------------------------------------------ */

interface DSpec {
  variant: string;
  kind?: 'batched' | 'per-request' | 'floor';
  flags?: string[];
  stage?: number;
  connections?: number;
  repeat?: number;
  fanout?: number;
  ack?: number;
  ram?: number | null;
  status?: RunRecord['status'];
  reasons?: string[];
  refused?: number;
  commitP99?: number | null;
  busy?: number | null;
  received?: number;
}

/** One run with these figures (defaults: 1,000 sockets for 30 s, fan-out 10 ms, ack 100 ms, 16,000 B per socket, clean). */
function drun(s: DSpec): RunRecord {
  const r = structuredClone(smoke.runs[0]!);
  const refused = s.refused ?? 0;
  Object.assign(r, {
    variant: s.variant,
    variantKind: s.kind ?? 'batched',
    variantFlags: s.flags ?? [],
    stage: { index: s.stage ?? 0, connections: s.connections ?? 1000, durationSec: 30 },
    repeat: s.repeat ?? 1,
    status: s.status ?? 'ok',
    reasons: s.reasons ?? [],
    thresholds: [],
  });
  r.window = { ...r.window, warmupSec: 0, durationSec: 30 };
  r.latency.fanoutMs.p99 = s.fanout ?? 10;
  r.latency.ackMs.p99 = s.ack ?? 100;
  r.resources.server.rssBytesPerSocket = s.ram === undefined ? 16_000 : s.ram;
  r.resources.server.cpuSec = 4;
  r.updates = { sent: 600, acked: 600 - refused, errored: refused, unanswered: 0 };
  const received = s.received ?? 30_000;
  r.delivery = { expected: received, received, missing: 0, duplicate: 0, outOfOrder: 0, phantom: 0 };
  r.errors = { total: refused, byCode: refused ? { BUSY_EXHAUSTED: refused } : {}, byKind: {} };
  r.audit = cleanAudit(600 - refused);
  r.server.commitMs = s.commitP99 === undefined || s.commitP99 === null ? null : { count: 300, mean: 1, p50: 1, p99: s.commitP99 };
  [r.server.busyHits, r.server.retries, r.server.exhausted] = s.busy === undefined || s.busy === null ? [null, null, null] : [s.busy, s.busy, 0];
  return r;
}

function dresult(specs: DSpec[], patch: Partial<ResultFile> = {}): ResultFile {
  const r = structuredClone(smoke);
  r.runs = specs.map(drun);
  r.status = 'ok';
  r.reasons = [];
  r.environment.cpuCount = 2;
  delete r.capacity;
  return { ...r, ...patch };
}

const decide = (r: ResultFile) => computeDecision(r, computeVerdict(r));

describe('decision: which figure decides', () => {
  it('no two designs with valid runs: no decision, and the largest stage (the later one on a tie) is described', () => {
    // one design at 1,000, 5,000 and 5,000 sockets: the largest stage is 5,000, the later of the two is index 2
    const r = dresult([
      { variant: 'batched', stage: 0, connections: 1000, fanout: 10 },
      { variant: 'batched', stage: 1, connections: 5000, fanout: 20 },
      { variant: 'batched', stage: 2, connections: 5000, fanout: 30 },
    ]);
    const d = decide(r);
    assert.deepEqual(d.stage, { index: 2, connections: 5000 });
    assert.equal(d.decidedBy, 'No decision: fewer than two designs have valid runs at any stage, so nothing here compares them.');
    assert.equal(d.designs.length, 1);
    // a lone design is judged on nothing: no "At this load it is" sentence
    assert.ok(d.designs[0]!.body.endsWith('does not wait for SQLite.'), d.designs[0]!.body);
  });

  it('ack p99 decides when errors and fan-out tie; RAM per socket when ack ties too; all tie: either will do', () => {
    // fan-out 10 vs 10.2 (×1.02) and errors 0 vs 0 tie; ack 50 vs 100 ms: a wins on ack; b leads on RAM (8,000 vs 16,000 B)
    const ack = dresult([
      { variant: 'a', ack: 50, ram: 16_000 },
      { variant: 'b', fanout: 10.2, ack: 100, ram: 8000 },
    ]);
    assert.equal(decideBy(computeVerdict(ack)), 'At 1,000 sockets: a, decided by ack p99 — a: 50 ms vs b 100 ms (b ×2). b leads on RAM per socket.');
    // 8,000 B / 1,024 = 7.8125 KiB, three significant digits
    const ram = dresult([
      { variant: 'a', ack: 100, ram: 16_000 },
      { variant: 'b', fanout: 10.2, ack: 102, ram: 8000 },
    ]);
    assert.equal(decideBy(computeVerdict(ram)), 'At 1,000 sockets: b, decided by RAM per socket — b: 7.81 KiB vs a 15.6 KiB (a ×2).');
    const none = dresult([{ variant: 'a' }, { variant: 'b', fanout: 10.2, ack: 102, ram: 16_100 }]);
    assert.equal(
      decideBy(computeVerdict(none)),
      'At 1,000 sockets no figure separates the designs beyond the noise (fan-out p99, ack p99, RAM per socket and errors tie): at this load either will do, and the choice rests on what the other sections show.',
    );
  });

  it('two criteria led by others are joined with "; "', () => {
    // a wins fan-out (10 vs 20); b leads on ack (50 vs 100) and RAM (8,000 vs 16,000)
    const r = dresult([
      { variant: 'a', fanout: 10 },
      { variant: 'b', fanout: 20, ack: 50, ram: 8000 },
    ]);
    assert.equal(
      decideBy(computeVerdict(r)),
      'At 1,000 sockets: a, decided by fan-out p99 — a: 10 ms vs b 20 ms (b ×2). b leads on ack p99; b leads on RAM per socket.',
    );
  });
});

describe("decision: each design's paragraph", () => {
  it('batched without a commit figure; two runs, one with a commit p99: the median of the one figure', () => {
    const one = decide(dresult([{ variant: 'a' }, { variant: 'b', fanout: 20 }]));
    assert.ok(one.designs[0]!.body.includes('≈ the 100 ms flush interval + queueing, tunable'), one.designs[0]!.body);
    const two = decide(
      dresult([
        { variant: 'a', commitP99: null },
        { variant: 'a', repeat: 2, commitP99: 2 },
        { variant: 'b', fanout: 20 },
      ]),
    );
    assert.ok(two.designs[0]!.body.includes('≈ the 100 ms flush interval + commit p99 2 ms + queueing'), two.designs[0]!.body);
  });

  it('per-request: one worker, three workers, one attempt without deferred (busy_timeout defaults to 0), no BUSY figures', () => {
    const r = dresult([
      { variant: 'one', kind: 'per-request', flags: ['--workers', '1', '--retry-max-attempts', '1'], fanout: 40 },
      { variant: 'three', kind: 'per-request', flags: ['--workers', '3'], fanout: 50 },
    ]);
    const [one, three] = decide(r).designs;
    assert.ok(
      one!.body.includes(
        "ack p99 100 ms (no app retry: the Redbean/Fullmoon baseline, SQLite's busy_timeout 0 ms). With one worker every member is local: no poll stands between commit and broadcast (fan-out p99 40 ms).",
      ),
      one!.body,
    );
    assert.ok(
      three!.body.includes(
        'ack p99 100 ms (SQLITE_BUSY retried up to 20 times within 2,000 ms). Members on the other 2 workers learn of an update only by polling SQLite every 20 ms (--poll-ms), so a broadcast can wait up to one poll period: fan-out p99 50 ms.',
      ),
      three!.body,
    );
  });

  it('standing: best on everything says nothing of "behind"; behind a tie names both', () => {
    // a and b tie on fan-out (10 vs 10.2); c is ×3 behind them; a is best on ack and RAM
    const r = dresult([
      { variant: 'a', ack: 50, ram: 8000 },
      { variant: 'b', fanout: 10.2 },
      { variant: 'c', fanout: 30 },
    ]);
    const [a, , c] = decide(r).designs;
    assert.ok(a!.body.endsWith('At this load it is best on ack p99 and RAM per socket; tied on fan-out p99 and errors.'), a!.body);
    assert.ok(c!.body.endsWith("At this load it is tied on errors; behind on fan-out p99 (×3 a and b's), ack p99 (×2 a's), RAM per socket (×2 a's)."), c!.body);
  });

  it('standing: a design with no figure of a criterion says nothing of it; nor does one alone with a figure', () => {
    // RAM: a 8,000 B wins over b 16,000 B; c has no RAM figure, so its standing does not mention RAM
    const r = dresult([
      { variant: 'a', ram: 8000 },
      { variant: 'b', fanout: 10.2 },
      { variant: 'c', fanout: 10.1, ram: null },
    ]);
    assert.ok(decide(r).designs[2]!.body.endsWith('At this load it is tied on fan-out p99, ack p99 and errors.'), decide(r).designs[2]!.body);
    // RAM: only c has a figure, so nobody is judged on it: no comparison, and c is not "behind" anyone
    const alone = dresult([
      { variant: 'a', ram: null },
      { variant: 'b', fanout: 10.2, ram: null },
      { variant: 'c', fanout: 10.1 },
    ]);
    assert.ok(decide(alone).designs[2]!.body.endsWith('At this load it is tied on fan-out p99, ack p99 and errors.'), decide(alone).designs[2]!.body);
  });

  it("a design with one valid run is judged on it: the invalid run's refusals are not its problem", () => {
    const r = dresult([{ variant: 'a' }, { variant: 'a', repeat: 2, status: 'invalid', refused: 6 }, { variant: 'b', fanout: 20 }]);
    const d = decide(r);
    assert.equal(d.designs[0]!.problem, null);
    assert.deepEqual(d.headline, []);
  });

  it('no valid run: its standing, and the first two distinct reasons', () => {
    const r = dresult([
      { variant: 'a' },
      { variant: 'b', fanout: 20 },
      { variant: 'c', status: 'invalid', reasons: ['fleet fell behind', 'sockets failed'] },
      { variant: 'c', repeat: 2, status: 'invalid', reasons: ['fleet fell behind', 'third'] },
      { variant: 'e', status: 'invalid' },
    ]);
    const d = decide(r);
    assert.equal(
      d.designs[2]!.body,
      'no valid run at 1,000 sockets (invalid, invalid: fleet fell behind; sockets failed), so its figures count for nothing here.',
    );
    assert.equal(d.designs[3]!.body, 'no valid run at 1,000 sockets (invalid), so its figures count for nothing here.');
  });

  it('a design not run at a stage', () => {
    const r = dresult([
      { variant: 'a', stage: 0 },
      { variant: 'b', stage: 0 },
      { variant: 'a', stage: 1, connections: 5000 },
    ]);
    const v = computeVerdict(r);
    const g = groupByStage(r)[1]!;
    const p = designParagraph(g, g.cells[1]!, v, 2);
    assert.equal(p.text, 'b: not run at stage 2 · 5,000 sockets.');
    // no run, so no kind to read from one: 'unknown', and no integrity problem
    assert.equal(p.kind, 'unknown');
    assert.equal(p.problem, null);
  });

  it("the paragraph's standing is its own stage's, not the first stage's", () => {
    // stage 0 (1,000): a best on fan-out; stage 1 (5,000, the headline): b best on fan-out
    const r = dresult([
      { variant: 'a', stage: 0, fanout: 10 },
      { variant: 'b', stage: 0, fanout: 20 },
      { variant: 'a', stage: 1, connections: 5000, fanout: 20 },
      { variant: 'b', stage: 1, connections: 5000, fanout: 10 },
    ]);
    const d = decide(r);
    assert.deepEqual(d.stage, { index: 1, connections: 5000 });
    assert.ok(d.designs[1]!.body.endsWith('At this load it is best on fan-out p99; tied on ack p99, RAM per socket and errors.'), d.designs[1]!.body);
  });
});

describe('decision: other loads and the sections', () => {
  it('a criterion that ties at one stage and has no comparison at another', () => {
    // fan-out: a wins at 1,000 (10 vs 20), ties at 2,000 (10 vs 10.2); at 3,000 both refused: no comparison, left out
    const r = dresult([
      { variant: 'a', stage: 0, fanout: 10 },
      { variant: 'b', stage: 0, fanout: 20 },
      { variant: 'a', stage: 1, connections: 2000, fanout: 10 },
      { variant: 'b', stage: 1, connections: 2000, fanout: 10.2 },
      { variant: 'a', stage: 2, connections: 3000, fanout: 10, refused: 1 },
      { variant: 'b', stage: 2, connections: 3000, fanout: 10, refused: 1 },
    ]);
    const o = decide(r).otherLoads;
    assert.ok(o.includes('Fan-out p99 changes hands: a at 1,000, tie at 2,000.'), o.join('\n'));
  });

  it('a variant with one point has no trend; with no trend and no change the stages agree', () => {
    // a valid only at stage 0, b only at stage 1: no trend, and no criterion compares two designs
    const r = dresult([
      { variant: 'a', stage: 0 },
      { variant: 'b', stage: 0, status: 'invalid' },
      { variant: 'a', stage: 1, connections: 2000, status: 'invalid' },
      { variant: 'b', stage: 1, connections: 2000 },
    ]);
    assert.deepEqual(decide(r).otherLoads, ['The stages agree: no criterion changes hands between them.']);
  });

  it('one stage: at 30,000 sockets, or with no RAM figure, no straight lines; broadcasts from the first design that has them', () => {
    const tail = ' Run ramp-30k (stages up to 30,000) or wami-bench capacity to measure how each design scales.';
    const at30k = dresult([
      { variant: 'a', connections: 30_000 },
      { variant: 'b', connections: 30_000, fanout: 20 },
    ]);
    assert.deepEqual(decide(at30k).otherLoads, [`One stage (30,000 sockets) says nothing measured about other loads.${tail}`]);
    const noRam = dresult([
      { variant: 'a', ram: null },
      { variant: 'b', fanout: 20, ram: null },
    ]);
    assert.deepEqual(decide(noRam).otherLoads, [`One stage (1,000 sockets) says nothing measured about other loads.${tail}`]);
    // a has no valid run (no broadcasts figure); b delivered 30,000 in 30 s = 1,000/s, ×30 at 30,000 sockets; b's RAM
    // 16,000 B = 15.6 KiB per socket, × 30,000 = 480,000,000 B = 458 MiB
    const first = dresult([
      { variant: 'a', status: 'invalid' },
      { variant: 'b', fanout: 20 },
    ]);
    assert.deepEqual(decide(first).otherLoads, [
      'One stage (1,000 sockets) says nothing measured about other loads. Straight lines to 30,000 sockets, not measurements: ' +
        `server RSS growth b 458 MiB (15.6 KiB per socket); at the same rate per user, 30,000 broadcasts/s instead of 1,000.${tail}`,
    ]);
    // nothing delivered: no broadcasts sentence
    const none = dresult([
      { variant: 'a', received: 0 },
      { variant: 'b', fanout: 20, received: 0 },
    ]);
    assert.ok(decide(none).otherLoads[0]!.includes('(15.6 KiB per socket).'), decide(none).otherLoads[0]);
  });

  it('no runs at all: no stage, no designs, nothing about other loads', () => {
    const r = dresult([]);
    const d = decide(r);
    assert.deepEqual([d.stage, d.designs, d.otherLoads, d.headline], [null, [], [], []]);
  });

  it('the floor: its line among the sections', () => {
    // a floor run and no design: the floor section's sentence for a stage where only the floor ran
    assert.deepEqual(decide(dresult([{ variant: 'floor', kind: 'floor' }])).sections, [{ section: 'floor', text: 'At 1,000 sockets only the floor ran.' }]);
  });

  it('the capacity search: one line, each design with its largest count or why it has none; no other-loads text', () => {
    const capacity: NonNullable<ResultFile['capacity']> = {
      slo: ['fanoutMs.p99 < 250'],
      startConnections: 1000,
      step: 1000,
      maxConnections: 5000,
      durationSec: 30,
      variants: [
        { variant: 'a', steps: [], largestPassing: 3000, stoppedAt: 4000, stoppedBecause: 'slo-broken', detail: '' },
        { variant: 'b', steps: [], largestPassing: null, stoppedAt: 1000, stoppedBecause: 'slo-broken', detail: '' },
        { variant: 'c', steps: [], largestPassing: 5000, stoppedAt: null, stoppedBecause: 'max-reached', detail: '' },
      ],
    };
    const r = dresult([{ variant: 'a' }, { variant: 'b', fanout: 20 }], { capacity });
    const d = decide(r);
    assert.deepEqual(d.sections, [
      {
        section: 'capacity',
        text:
          'Capacity (SLO fanoutMs.p99 < 250): a 3,000 sockets; b never met it (the SLO broke: this is the server’s measured limit on this machine); ' +
          'c ≥ 5,000 sockets (the SLO held up to the maximum asked for: the real limit is higher).',
      },
    ]);
    assert.deepEqual(d.otherLoads, []);
  });
});
