/** `wami-bench compare`: the CI gate, through the CLI (exit codes) and the pure comparison. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compareCell, compareResults, environmentDifferences, nodeMajor, type Side } from '../report/compare.js';
import { M } from '../report/metrics.js';
import { parseBound } from '../runner/commands/compare.js';
import type { ResultFile } from '../model/result.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'dist/runner/cli.js');
const read = (name: string): ResultFile => JSON.parse(readFileSync(join(root, 'results/fixtures', name), 'utf8')) as ResultFile;
const tmp = mkdtempSync(join(tmpdir(), 'wami-compare-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function put(dir: string, r: ResultFile): string {
  const d = join(tmp, dir);
  mkdirSync(d, { recursive: true });
  const f = join(d, 'result.json');
  writeFileSync(f, JSON.stringify(r));
  return f;
}

function compare(args: string[]) {
  const r = spawnSync(process.execPath, [cli, 'compare', ...args], { encoding: 'utf8', cwd: root });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function slowerFanout(r: ResultFile, factor: number): ResultFile {
  const h = structuredClone(r);
  h.runId = `${r.runId}-head`;
  for (const run of h.runs) run.latency.fanoutMs.p99 *= factor;
  return h;
}

describe('compare CLI', () => {
  const base = read('result-smoke.json');

  it('fan-out p99 three times BASE: exits 3 and says regressed', () => {
    const b = put('base', base);
    const h = put('head-slow', slowerFanout(base, 3));
    const res = compare([b, h, '--max-regression', '10%']);
    assert.equal(res.code, 3, res.stderr);
    assert.match(res.stdout, /regression.* beyond 10%/);
    const first = base.runs[0]!;
    const conns = first.stage.connections.toLocaleString('en-US');
    const interval = base.runs.filter((r) => r.variant === first.variant && r.stage.index === first.stage.index).length > 1 ? '\\[[^|]+\\]' : '—';
    assert.match(res.stdout, new RegExp(`\\| ${first.variant} \\| ${conns} \\| fan-out p99 \\| .* \\| ×3 \\| ${interval} \\| \\*\\*🔻 regressed\\*\\*`));
    assert.ok(existsSync(join(tmp, 'head-slow', 'compare.md')));
    assert.ok(existsSync(join(tmp, 'head-slow', 'compare.html')));
    const html = readFileSync(join(tmp, 'head-slow', 'compare.html'), 'utf8');
    assert.match(html, /regressed/);
    assert.doesNotMatch(html, /<script/);
  });

  it('the same file against itself: within noise, exit 0', () => {
    const b = put('self', base);
    const out = join(tmp, 'self-out');
    const res = compare([b, b, '--out', out]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /No regression beyond 10%/);
    const cells = new Set(base.runs.map((r) => `${r.variant}/${r.stage.index}`)).size;
    assert.match(res.stdout, new RegExp(`0 regressed · 0 improved · ${cells * 7} within noise · 0 inconclusive`));
    assert.ok(existsSync(join(out, 'compare.md')));
  });

  it('a 3x slowdown within a 250% bound is not a failure', () => {
    const res = compare([put('b2', base), put('h2', slowerFanout(base, 3)), '--max-regression', '250%']);
    assert.equal(res.code, 0, res.stderr);
  });

  it('refuses different environments (exit 2) unless --force', () => {
    const other = structuredClone(base);
    other.environment.cpuModel = 'Intel(R) Xeon(R) CPU @ 2.20GHz';
    other.environment.node = 'v22.11.0';
    assert.notEqual(base.environment.cpuModel, other.environment.cpuModel);
    assert.notEqual(nodeMajor(base.environment.node), 22);
    const b = put('env-base', base);
    const h = put('env-head', other);
    let res = compare([b, h]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /refusing to compare results from different environments/);
    const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(res.stderr, new RegExp(`CPU model: BASE "${esc(base.environment.cpuModel)}", HEAD "Intel`));
    assert.match(res.stderr, new RegExp(`Node major: BASE ${esc(base.environment.node)}, HEAD v22\\.11\\.0`));
    res = compare([b, h, '--force']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /Environments differ \(compared anyway with --force\)/);
  });

  it('bad input exits 2', () => {
    assert.equal(compare([put('x', base)]).code, 2);
    assert.equal(compare([join(tmp, 'nope.json'), join(tmp, 'nope2.json')]).code, 2);
    const b = put('y', base);
    const res = compare([b, b, '--max-regression', '10']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /ambiguous/);
  });
});

describe('compare logic', () => {
  it('parses the bound', () => {
    assert.equal(parseBound('10%'), 0.1);
    assert.equal(parseBound('0.25'), 0.25);
    assert.equal(parseBound('2.5%'), 0.025);
    assert.throws(() => parseBound('ten'));
    assert.throws(() => parseBound('0%'));
  });

  it('environment differences: CPU model, cores, Node major only', () => {
    const e = read('result-smoke.json').environment;
    const major = nodeMajor(e.node);
    assert.ok(major !== null);
    assert.deepEqual(environmentDifferences(e, { ...e, node: `v${major}.0.1`, hostname: 'other', kernel: 'x' }), []);
    assert.deepEqual(environmentDifferences(e, { ...e, cpuCount: e.cpuCount + 2 }), [`core count: BASE ${e.cpuCount}, HEAD ${e.cpuCount + 2}`]);
    assert.equal(nodeMajor('v20.20.2'), 20);
  });

  const side = (values: number[], valid = values.length, total = valid): Side => ({
    values,
    median: values.length ? ([...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? null) : null,
    valid,
    total,
  });

  it('with repeats: the interval decides whether a slowdown is outside the noise', () => {
    const clear = compareCell(side([10, 11, 12]), side([20, 21, 22]), M.fanoutP99, { maxRegression: 0.1 });
    assert.equal(clear.verdict, 'regressed');
    assert.equal(clear.ratio, 21 / 11);
    assert.ok(clear.interval && clear.interval.lo > 1);
    const noisy = compareCell(side([10, 30, 12]), side([20, 11, 25]), M.fanoutP99, { maxRegression: 0.1 });
    assert.equal(noisy.verdict, 'within noise');
    assert.ok(noisy.interval && noisy.interval.lo <= 1);
    const better = compareCell(side([20, 21, 22]), side([10, 11, 12]), M.fanoutP99);
    assert.equal(better.verdict, 'improved');
  });

  it('tiny absolute changes never count, invalid sides are inconclusive', () => {
    const tiny = compareCell(side([0.2]), side([0.6]), M.fanoutP99);
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
