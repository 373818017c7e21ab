/** compare's rules (report/compare.ts) and the noise bands (report/noise.ts), pure and exact. The CLI is in compare.test.ts. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compareCell, compareResults, environmentDifferences, nodeMajor, refusalsOf, type Side } from '../report/compare.js';
import { measureNoise, repeatsToDecide } from '../report/noise.js';
import { M } from '../report/metrics.js';
import { parseBound } from '../runner/commands/compare.js';
import type { ResultFile } from '../model/result.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (name: string): ResultFile => JSON.parse(readFileSync(join(root, 'results/fixtures', name), 'utf8')) as ResultFile;

describe('compare logic', () => {
  it('parses the bound', () => {
    assert.equal(parseBound('10%'), 0.1);
    assert.equal(parseBound('0.25'), 0.25);
    assert.equal(parseBound('2.5%'), 0.025);
    assert.throws(() => parseBound('ten'));
    assert.throws(() => parseBound('0%'));
  });

  it('machine differences: host, CPU model, cores, memory, Node major; not the kernel or a Node minor', () => {
    const e = read('result-smoke.json').environment;
    const major = nodeMajor(e.node);
    assert.ok(major !== null);
    assert.deepEqual(environmentDifferences(e, { ...e, node: `v${major}.0.1`, kernel: 'x' }), []);
    assert.deepEqual(environmentDifferences(e, { ...e, hostname: 'other', cpuCount: e.cpuCount + 2, memTotalBytes: 1024 }), [
      `machine: BASE ${e.hostname}, HEAD other`,
      `core count: BASE ${e.cpuCount}, HEAD ${e.cpuCount + 2}`,
      `memory: BASE ${e.memTotalBytes} B, HEAD 1024 B`,
    ]);
    assert.equal(nodeMajor('v20.20.2'), 20);
    const r = read('result-smoke.json');
    assert.deepEqual(refusalsOf(r, r), []);
  });

  const side = (values: number[], valid = values.length, total = valid): Side => ({
    values,
    median: values.length ? ([...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? null) : null,
    valid,
    total,
  });

  it('with repeats: the interval decides; past the bound with an interval holding 1 is inconclusive', () => {
    const clear = compareCell(side([10, 11, 12]), side([20, 21, 22]), M.fanoutP99, { maxRegression: 0.1 });
    assert.equal(clear.verdict, 'regressed');
    assert.equal(clear.ratio, 21 / 11);
    assert.ok(clear.interval && clear.interval.lo > 1);
    assert.equal(clear.repeatsNeeded, null);
    const noisy = compareCell(side([10, 30, 12]), side([20, 11, 25]), M.fanoutP99, { maxRegression: 0.1 });
    assert.equal(noisy.verdict, 'inconclusive');
    assert.ok(noisy.interval && noisy.interval.lo <= 1);
    assert.match(noisy.note, /past the 10% bound, but the 95% interval still holds 1; about \d+ runs per side would decide it/);
    const better = compareCell(side([20, 21, 22]), side([10, 11, 12]), M.fanoutP99);
    assert.equal(better.verdict, 'improved');
    const small = compareCell(side([10, 11, 12]), side([10.5, 11.5, 12.5]), M.fanoutP99, { maxRegression: 0.1 });
    assert.equal(small.verdict, 'within noise');
  });

  it('one run per side: the bound and the noise band, whichever is wider; repeats to decide from the band', () => {
    const noise = { all: { 'fanout.p99Ms': 0.5 }, byKind: { batched: { 'fanout.p99Ms': 0.2 } } };
    const opts = { maxRegression: 0.1, noise };
    // pooled band 50%: ×1.3 is past the bound, inside the band
    const inside = compareCell(side([100]), side([130]), M.fanoutP99, opts, 'per-request');
    assert.equal(inside.verdict, 'inconclusive');
    assert.equal(inside.repeatsNeeded, Math.ceil((Math.log(1.5) / Math.log(1.3)) ** 2));
    assert.equal(inside.repeatsNeeded, 3);
    assert.equal(
      inside.note,
      "past the 10% bound but inside this metric's noise band (±50% between two runs of the same commit); about 3 runs per side would decide it",
    );
    // the batched kind's own band (20%) is narrower: the same ×1.3 is a regression there
    assert.equal(compareCell(side([100]), side([130]), M.fanoutP99, opts, 'batched').verdict, 'regressed');
    assert.equal(compareCell(side([100]), side([160]), M.fanoutP99, opts, 'per-request').verdict, 'regressed');
    assert.equal(compareCell(side([160]), side([100]), M.fanoutP99, opts, 'per-request').verdict, 'improved');
    assert.equal(compareCell(side([130]), side([100]), M.fanoutP99, opts, 'per-request').verdict, 'inconclusive');
    // within the bound: within noise, whatever the band
    const within = compareCell(side([100]), side([105]), M.fanoutP99, opts, 'per-request');
    assert.equal(within.verdict, 'within noise');
    assert.equal(within.note, 'single run per side; noise band ±50%');
    // no band for the metric: the bound alone
    assert.equal(compareCell(side([100]), side([130]), M.ackP99, opts).verdict, 'regressed');
  });

  it('repeatsToDecide: (ln(1 + band) / ln(ratio))², at least 2', () => {
    assert.equal(repeatsToDecide(1.3, 0.5), 3);
    assert.equal(repeatsToDecide(1.1, 1), 53);
    assert.equal(repeatsToDecide(2, 0.5), 2);
    assert.equal(repeatsToDecide(1 / 1.3, 0.5), 3);
    assert.equal(repeatsToDecide(1, 0.5), null);
    assert.equal(repeatsToDecide(1.3, null), null);
  });

  it('measureNoise: pooled sd of ln within cells, band = exp(1.96·√2·sd) − 1, per kind too', () => {
    const r = read('result-stages.json');
    // Two cells of three repeats each, fan-out p99 set by hand.
    const runs = r.runs.filter((x) => x.stage.index === 0);
    const want: Record<string, number[]> = { batched: [10, 20, 40], 'per-request': [100, 100, 100] };
    for (const run of runs) run.latency.fanoutMs.p99 = want[run.variant]![run.repeat - 1]!;
    r.runs = runs;
    const n = measureNoise(r);
    const sdB = Math.log(2); // ln 10, ln 20, ln 40: mean ln 20, deviations ±ln 2, variance (2·ln²2)/2
    const b = n.byKind.batched!['fanout.p99Ms']!;
    assert.ok(Math.abs(b.sdLog! - sdB) < 1e-12, String(b.sdLog));
    assert.ok(Math.abs(b.band! - (Math.exp(1.959963984540054 * Math.SQRT2 * sdB) - 1)) < 1e-12);
    assert.equal(b.spread, 3);
    assert.deepEqual([b.cells, b.runs], [1, 3]);
    assert.equal(n.byKind['per-request']!['fanout.p99Ms']!.band, 0);
    // pooled: (2·ln²2 + 0) / (2 + 2)
    assert.ok(Math.abs(n.bands['fanout.p99Ms']!.sdLog! - Math.sqrt((2 * sdB ** 2) / 4)) < 1e-12);
    assert.equal(n.bands['errors.total']!.band, null, 'no positive values: not measurable');
  });

  it('tiny absolute changes never count, invalid sides are inconclusive', () => {
    const tiny = compareCell(side([0.2]), side([0.6]), M.fanoutP99, { noise: { all: {} } });
    assert.equal(tiny.verdict, 'within noise');
    assert.match(tiny.note, /absolute floor/);
    assert.equal(compareCell(side([], 0, 1), side([5]), M.fanoutP99).verdict, 'inconclusive');
    assert.equal(compareCell(null, side([5]), M.fanoutP99).verdict, 'inconclusive');
    assert.equal(compareCell(side([0]), side([0]), M.errors).verdict, 'within noise');
    assert.equal(compareCell(side([0]), side([50]), M.errors).verdict, 'regressed');
  });

  it('compares results: invalid runs and missing stages are inconclusive, repeats give intervals', () => {
    const inv = read('result-invalid.json');
    const smoke = read('result-smoke.json');
    const c = compareResults(smoke, inv);
    const pr = c.rows.filter((r) => r.variant === 'per-request');
    assert.ok(pr.length > 0 && pr.every((r) => r.verdict === 'inconclusive'));
    assert.match(pr[0]?.note ?? '', /HEAD has no valid run/);
    const stages = read('result-stages.json');
    const s = compareResults(stages, stages);
    assert.ok(
      s.rows.every((r) => r.verdict === 'within noise'),
      JSON.stringify(s.counts),
    );
    assert.ok(s.rows.filter((r) => r.metric.id === 'fanout.p99Ms').every((r) => r.interval !== null));
    const fewer = structuredClone(stages);
    fewer.runs = fewer.runs.filter((r) => r.stage.index === 0);
    const m = compareResults(stages, fewer);
    assert.ok(m.rows.filter((r) => r.stage.index === 1).every((r) => r.verdict === 'inconclusive' && /no such run in HEAD/.test(r.note)));
    assert.equal(m.regressions.length, 0);
  });
});
