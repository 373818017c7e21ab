/** `wami-bench compare`: the CI gate, through the CLI (exit codes) and the pure comparison. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { refusalsOf } from '../report/compare.js';
import { bandFor, measureNoise, PROJECT_NOISE_BANDS, type NoiseBands } from '../report/noise.js';
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

/** A --noise file with these pooled bands (metric id -> fraction). */
function noiseFile(all: Record<string, number>): string {
  const f = join(tmp, `noise-${Object.keys(all).join('-') || 'none'}.json`);
  const bands = Object.fromEntries(Object.entries(all).map(([k, band]) => [k, { metric: k, label: k, band, sdLog: 0, spread: 0, cells: 1, runs: 2 }]));
  writeFileSync(f, JSON.stringify({ source: {}, bands, byKind: {} }));
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
    const res = compare([b, h, '--max-regression', '10%', '--noise', noiseFile({})]);
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

  it("the same fixture perturbed inside the project's noise bands: exit 0, inconclusive with the repeats that would decide; beyond them: exit 3", () => {
    // One run per side: a change must clear the metric's own band (per variant kind), whatever the
    // bound. Whatever bands the project measured (a quiet machine's are narrow), the bound is set
    // below half of the narrowest, and fan-out p99 at 1 s, so the 1 ms floor plays no part.
    const bands = [...new Set(base.runs.map((r) => r.variantKind))].map((k) => bandFor(PROJECT_NOISE_BANDS, 'fanout.p99Ms', k));
    assert.ok(
      bands.every((x) => x !== null && x > 0.004),
      `the project has a fan-out p99 band for every kind (report/noise.ts): ${bands.join(', ')}`,
    );
    const bound = Math.min(0.1, Math.min(...(bands as number[])) / 4);
    const boundArg = `${(bound * 100).toFixed(2)}%`;
    const ref = structuredClone(base);
    for (const run of ref.runs) run.latency.fanoutMs.p99 = 1000;
    const perturb = (scale: (band: number) => number): ResultFile => {
      const h = structuredClone(ref);
      h.runId = `${base.runId}-perturbed`;
      for (const run of h.runs) run.latency.fanoutMs.p99 *= scale(bandFor(PROJECT_NOISE_BANDS, 'fanout.p99Ms', run.variantKind)!);
      return h;
    };
    const b = put('band-base', ref);
    // Half-way into the band (and past the bound): not a regression, not nothing.
    const inside = compare([
      b,
      put(
        'band-inside',
        perturb((band) => 1 + band / 2),
      ),
      '--max-regression',
      boundArg,
    ]);
    assert.equal(inside.code, 0, inside.stdout + inside.stderr);
    assert.match(inside.stdout, /0 regressed · 0 improved · \d+ within noise · 2 inconclusive/);
    assert.match(
      inside.stdout,
      /past the \d+% bound but inside this metric's noise band \(±\d+% between two runs of the same commit\); about \d+ runs per side would decide it/,
    );
    assert.match(inside.stdout, /2 changes past the [\d.]+% bound cannot be told from noise with these runs: about \d+ runs per side would decide them/);
    // A fifth past the band: a regression on both variants.
    const beyond = compare([
      b,
      put(
        'band-beyond',
        perturb((band) => (1 + band) * 1.2),
      ),
      '--max-regression',
      boundArg,
    ]);
    assert.equal(beyond.code, 3, beyond.stdout + beyond.stderr);
    assert.match(beyond.stdout, /## wami-bench compare: 2 regressions beyond [\d.]+% and outside the noise/);
  });

  it('a 3x slowdown within a 250% bound is not a failure', () => {
    const res = compare([put('b2', base), put('h2', slowerFanout(base, 3)), '--max-regression', '250%', '--noise', noiseFile({})]);
    assert.equal(res.code, 0, res.stderr);
  });

  it('refuses different machines, scenarios, stages or variants (exit 2, one line) unless --force', () => {
    // Every kind of difference, exactly, in the pure function; the CLI's refusal once, all together.
    const other = structuredClone(base);
    other.environment.hostname = 'elsewhere';
    other.environment.cpuModel = 'Intel(R) Xeon(R) CPU @ 2.20GHz';
    other.environment.node = 'v22.11.0';
    other.scenario.name = 'steady-5k';
    other.scenario.hash = 'sha256:0000000000000000';
    for (const x of other.runs) {
      x.stage.durationSec = 60;
      if (x.variant === 'batched') x.variant = 'batched-2';
    }
    const e = base.environment;
    const conns = base.runs[0]!.stage.connections.toLocaleString('en-US');
    const secs = base.runs[0]!.stage.durationSec;
    const expected = [
      `different scenarios: BASE ${base.scenario.name} (${base.scenario.hash.slice(0, 15)}…), HEAD steady-5k (sha256:00000000…)`,
      `different stages: BASE ${conns} × ${secs} s; HEAD ${conns} × 60 s`,
      'different variants: BASE batched, per-request; HEAD batched-2 (batched), per-request',
      `different machine: BASE ${e.hostname}, HEAD elsewhere`,
      `different CPU model: BASE "${e.cpuModel}", HEAD "Intel(R) Xeon(R) CPU @ 2.20GHz"`,
      `different Node major: BASE ${e.node}, HEAD v22.11.0`,
    ];
    assert.deepEqual(refusalsOf(base, other), expected);
    const b = put('env-base', base);
    const h = put('env-head', other);
    const res = compare([b, h]);
    assert.equal(res.code, 2, res.stdout + res.stderr);
    assert.equal(res.stderr, `wami-bench compare: refusing to compare: ${expected.join('; ')} (--force compares anyway)\n`);
    const forced = compare([b, h, '--force']);
    assert.notEqual(forced.code, 2, forced.stderr);
    assert.match(forced.stdout, /Not comparable \(compared anyway with --force\)/);
  });

  it('--measure-noise: bands from the repeats of a result, written as JSON that --noise reads', () => {
    const stages = put('noise-src', read('result-stages.json'));
    const out = join(tmp, 'bands.json');
    const res = spawnSync(process.execPath, [cli, 'compare', '--measure-noise', stages, '--out', out], { encoding: 'utf8', cwd: root });
    assert.equal(res.status, 0, res.stderr);
    assert.match(res.stdout, /^noise bands from /);
    assert.match(res.stdout, /all +fan-out p99 +±\d/);
    assert.match(res.stdout, /batched +RAM per socket +±\d/);
    const n = JSON.parse(readFileSync(out, 'utf8')) as NoiseBands;
    assert.deepEqual(n, measureNoise([read('result-stages.json')]));
    const b = put('with-noise', base);
    assert.equal(compare([b, b, '--noise', out]).code, 0);
    // one run per cell: nothing to measure
    const none = spawnSync(process.execPath, [cli, 'compare', '--measure-noise', put('noise-none', base)], { encoding: 'utf8', cwd: root });
    assert.equal(none.status, 2);
    assert.match(none.stderr, /has no repeats to measure noise from: run a scenario with --repeats 3 or more/);
  });

  it('bad input exits 2', () => {
    assert.equal(compare([put('x', base)]).code, 2);
    assert.equal(compare([join(tmp, 'nope.json'), join(tmp, 'nope2.json')]).code, 2);
    const b = put('y', base);
    const res = compare([b, b, '--max-regression', '10']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /ambiguous/);
    const bad = join(tmp, 'bad-noise.json');
    writeFileSync(bad, '{"hello": 1}');
    const n = compare([b, b, '--noise', bad]);
    assert.equal(n.code, 2);
    assert.match(n.stderr, /--noise .*bad-noise\.json: not a file written by "wami-bench compare --measure-noise/);
  });
});
