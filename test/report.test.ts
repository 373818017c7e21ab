/**
 * The report from committed fixtures: files written, nothing fetched from a network, size limits,
 * the verdict and its warnings, input validation (CLI exit 2) and the CI exports.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { toBencherBmf, toGithubActionBenchmark, measureSlug } from '../report/exports.js';
import { renderHtml } from '../report/html.js';
import { loadResult, ResultLoadError, validateResult, writeReport, writeReportFiles } from '../report/index.js';
import { renderMarkdown, SUMMARY_MAX_BYTES } from '../report/markdown.js';
import { GATE_METRICS } from '../report/metrics.js';
import { groupByStage } from '../report/runs.js';
import { stageTable } from '../report/table.js';
import { computeVerdict } from '../report/verdict.js';
import type { ResultFile, RunRecord } from '../model/result.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixture = (name: string) => join(root, 'results/fixtures', name);
const cli = join(root, 'dist/runner/cli.js');
const read = (name: string): ResultFile => JSON.parse(readFileSync(fixture(name), 'utf8')) as ResultFile;
const clone = <T>(x: T): T => structuredClone(x);

const tmp = mkdtempSync(join(tmpdir(), 'wami-report-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function copyTo(dir: string, result: unknown): string {
  const d = join(tmp, dir);
  rmSync(d, { recursive: true, force: true });
  const f = join(d, 'result.json');
  spawnSync('mkdir', ['-p', d]);
  writeFileSync(f, JSON.stringify(result));
  return f;
}

function runCli(args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: root });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every src=/href=/data= of a loading element, plus any url(...) or @import in the styles. */
function externalRefs(html: string): string[] {
  const refs: string[] = [];
  for (const m of html.matchAll(/<(script|link|img|iframe|source|embed|object)\b[^>]*?\b(src|href|data)\s*=\s*["']?([^"'\s>]+)/gi)) refs.push(m[3] as string);
  for (const style of html.matchAll(/<style>([\s\S]*?)<\/style>/gi)) {
    for (const m of (style[1] as string).matchAll(/url\(\s*["']?([^"')]+)|@import/gi)) refs.push(m[1] ?? '@import');
  }
  return refs;
}

describe('report from the committed fixtures', () => {
  for (const name of ['result-smoke.json', 'result-stages.json', 'result-invalid.json']) {
    it(`${name}: writes report.html and summary.md, self-contained and small`, async () => {
      const f = copyTo(name.replace('.json', ''), read(name));
      const out = await writeReport(f);
      assert.equal(out.html, join(tmp, name.replace('.json', ''), 'report.html'));
      assert.ok(existsSync(out.html) && existsSync(out.md));
      const html = readFileSync(out.html, 'utf8');
      assert.ok(statSync(out.html).size < 2 * 1024 * 1024, `report.html is ${statSync(out.html).size} bytes`);
      assert.ok(statSync(out.md).size < 64 * 1024);
      assert.deepEqual(externalRefs(html), [], 'no src/href/url() at all');
      assert.doesNotMatch(html, /<script[^>]+src=/i);
      assert.doesNotMatch(html, /<link[^>]+href=/i);
      assert.match(html, /Chart\.js v4/, 'chart.js inlined');
      assert.match(html, /<script type="application\/json" id="wami-data">/);
      // The sections, in the order (scaling first only when there are stages).
      const order = [
        'decision',
        'verdict',
        'tables',
        'memory',
        'steady',
        'distribution',
        'over-time',
        'errors',
        'resources',
        'sqlite',
        'audit',
        'environment',
        'scenario',
      ];
      const at = (id: string) => html.indexOf(`<section id="${id}"`);
      const pos = order.map(at);
      assert.ok(
        pos.every((p) => p > 0),
        String(pos),
      );
      assert.deepEqual(
        [...pos].sort((a, b) => a - b),
        pos,
      );
      const scaling = at('scaling');
      const r = read(name);
      const multi = new Set(r.runs.map((x) => x.stage.index)).size > 1;
      if (multi) assert.ok(scaling > at('verdict') && scaling < at('tables'), 'scaling right after the verdict');
      else assert.ok(scaling > at('resources') && scaling < at('sqlite'), 'scaling in its place when one stage');
      assert.equal(at('capacity'), -1, 'no capacity section without a capacity search');
      assert.match(html, /Server and fleet share one machine/);
      const md = readFileSync(out.md, 'utf8');
      assert.match(md, /Server and fleet share one machine/);
      assert.match(md, /\| metric \|/);
    });
  }

  it('the embedded data survives hostile strings in the scenario', () => {
    const r = read('result-smoke.json');
    r.scenario.resolved = { description: '</script><script>alert(1)</script>\u2028<!--' };
    const html = renderHtml(r);
    assert.equal(html.match(/<script/g)?.length, 3, 'only our three script elements');
    assert.ok(html.includes('&lt;/script&gt;&lt;script&gt;alert(1)'));
  });

  it('renders sparse results: null server stats, empty histograms and series, no drift samples, no audit, one run', async () => {
    const r = read('result-smoke.json');
    const run = r.runs[0] as RunRecord;
    const none = { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, count: 0, mean: 0, histogram: '' };
    run.server.timeseries = run.server.timeseries.map((p) => ({
      t: p.t,
      queueDepth: null,
      walBytes: null,
      busyHits: 0,
      retries: 0,
      exhausted: 0,
      persisted: 0,
      commitMsP99: null,
      eventLoopDelayMsP99: null,
    }));
    Object.assign(run.server, { batchSize: null, commitMs: null, queueDepthMax: null, walBytesMax: null, eventLoopDelayMsP99: null });
    run.latency.fanoutMs = { ...none, uncorrected: { ...none } };
    run.drift = { windowSec: 0, ackMs: { first: { ...none }, last: { ...none } }, fanoutMs: { first: { ...none }, last: { ...none } } };
    run.window = { warmupSec: run.window.warmupSec, durationSec: run.window.durationSec, startedAtIso: run.window.startedAtIso, wallSec: 0 };
    run.timeseries = [];
    run.resources.server = { ...run.resources.server, samples: [], rssBytesPerSocket: null, pssBytesMax: null };
    run.audit = null;
    r.runs = [run];
    const valid = validateResult(r);
    assert.deepEqual(
      valid.runs.map((x) => [x.variant, x.audit, x.timeseries.length, x.server.batchSize, x.latency.fanoutMs.count]),
      [[run.variant, null, 0, null, 0]],
      'the sparse result is schema-valid as it is',
    );
    const html = renderHtml(r);
    assert.match(html, /Verdict: no comparison possible/);
    assert.match(html, /no audit of the database/);
    assert.match(html, /<section id="memory"/);
    assert.match(html, /<section id="steady"/);
    const md = renderMarkdown(r);
    assert.match(md, /no comparison possible/);
    assert.match(md, /no audit of the database/);
    r.runs = [];
    assert.deepEqual(validateResult(r).runs, []);
    assert.match(renderHtml(r), /The result holds no runs/);
    assert.match(renderMarkdown(r), /The result holds no runs/);
  });

  it('stays under 2 MB for a ramp-30k-sized result (5 stages × 2 variants, 20-minute series)', () => {
    const smoke = read('result-smoke.json');
    const r = clone(smoke);
    const stages = [1000, 5000, 10000, 20000, 30000];
    r.runs = [];
    stages.forEach((connections, index) => {
      for (const base of smoke.runs) {
        const run = clone(base);
        run.stage = { index, connections, durationSec: 1200 };
        const n = 1200;
        run.timeseries = Array.from({ length: n }, (_, t) => ({ ...(base.timeseries[t % base.timeseries.length] as RunRecord['timeseries'][number]), t }));
        run.resources.server.samples = Array.from({ length: n }, (_, t) => ({
          ...(base.resources.server.samples[t % base.resources.server.samples.length] as RunRecord['resources']['server']['samples'][number]),
          t,
        }));
        run.server.timeseries = Array.from({ length: n }, (_, t) => ({
          ...(base.server.timeseries[t % base.server.timeseries.length] as RunRecord['server']['timeseries'][number]),
          t,
        }));
        r.runs.push(run);
      }
    });
    const html = renderHtml(r);
    const bytes = Buffer.byteLength(html);
    assert.ok(bytes < 2 * 1024 * 1024, `ramp-sized report is ${bytes} bytes`);
    assert.ok(Buffer.byteLength(renderMarkdown(r)) <= SUMMARY_MAX_BYTES);
  });

  it('summary.md stays under 64 KB when there are very many warnings and stages', () => {
    const smoke = read('result-invalid.json');
    const r = clone(smoke);
    r.runs = [];
    for (let s = 0; s < 40; s++)
      for (const base of smoke.runs) r.runs.push({ ...clone(base), stage: { index: s, connections: 1000 * (s + 1), durationSec: 60 } });
    const md = renderMarkdown(r);
    assert.ok(Buffer.byteLength(md) <= SUMMARY_MAX_BYTES, String(Buffer.byteLength(md)));
    assert.match(md, /more: see the HTML report/);
  });
});

describe('verdict', () => {
  it('names a winner per criterion at the largest comparable stage', () => {
    const r = read('result-stages.json');
    // Constructed figures, the same in each of the 3 repeats. At 200 sockets (the headline stage):
    // batched leads on fan-out (10 vs 30 ms), per-request on ack (20 vs 60 ms) and on RAM per socket
    // (20 vs 40 KB), and both have no errors. At 100 sockets the fan-out lead is reversed, so a
    // verdict read at the wrong stage names the wrong winner.
    for (const run of r.runs) {
      const b = run.variant === 'batched';
      const big = run.stage.connections === 200;
      run.latency.fanoutMs.p99 = b === big ? 10 : 30;
      run.latency.ackMs.p99 = b ? 60 : 20;
      run.resources.server.rssBytesPerSocket = b ? 40_000 : 20_000;
      run.errors.total = 0;
    }
    const v = computeVerdict(r);
    assert.deepEqual(v.headline, { index: 1, connections: 200 });
    assert.deepEqual(
      v.criteria.map((c) => [c.id, c.winner, c.tied, c.runnerUp]),
      [
        ['fanoutP99', 'batched', [], 'per-request'],
        ['ackP99', 'per-request', [], 'batched'],
        ['ramPerSocket', 'per-request', [], 'batched'],
        ['errors', null, ['batched', 'per-request'], 'per-request'],
      ],
    );
    // Every repeat the same: the ratio is exact and so is its bootstrap interval.
    assert.deepEqual(
      v.criteria.map((c) => [c.ratio?.ratio, c.ratio?.interval?.lo, c.ratio?.interval?.hi]),
      [
        [3, 3, 3],
        [3, 3, 3],
        [2, 2, 2],
        [1, 1, 1],
      ],
    );
    assert.equal(v.criteria[3]!.text, 'tie: none at all (batched, per-request)');
    assert.equal(v.byStage.length, 2);
    assert.deepEqual(
      v.byStage.map((s) => [s.connections, s.criteria.find((c) => c.id === 'fanoutP99')!.winner]),
      [
        [100, 'per-request'],
        [200, 'batched'],
      ],
    );
  });

  it('decides from the numbers: lower wins, equal is a tie, and a 3x lead with repeats is clear', () => {
    const r = read('result-stages.json');
    for (const run of r.runs) {
      run.latency.fanoutMs.p99 = run.variant === 'batched' ? 10 + run.repeat : 30 + run.repeat;
      run.latency.ackMs.p99 = 50;
    }
    const v = computeVerdict(r);
    const fan = v.criteria.find((c) => c.id === 'fanoutP99');
    assert.equal(fan?.winner, 'batched');
    assert.equal(fan?.ratio?.ratio, 32 / 12);
    assert.ok(fan?.ratio?.interval && fan.ratio.interval.lo > 1);
    const ack = v.criteria.find((c) => c.id === 'ackP99');
    assert.equal(ack?.winner, null);
    assert.deepEqual(ack?.tied, ['batched', 'per-request']);
  });

  it('never lets an invalid run win, and warns about it, the audit and thresholds', () => {
    const r = read('result-invalid.json');
    const v = computeVerdict(r);
    const invalid = r.runs.filter((x) => x.status !== 'ok');
    const validVariants = new Set(r.runs.filter((x) => x.status === 'ok').map((x) => x.variant));
    assert.ok(invalid.length > 0, 'the fixture has invalid runs');
    if (validVariants.size < 2) assert.equal(v.headline, null, 'fewer than two variants valid: no comparison');
    const text = v.warnings.map((w) => `${w.kind}:${w.message}`).join('\n');
    const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    for (const run of invalid) {
      // The runner's own reasons, verbatim.
      assert.match(text, new RegExp(`^run:${esc(run.variant)} · stage ${run.stage.index + 1} .* is ${run.status}: ${esc(run.reasons[0] ?? '')}`, 'm'));
    }
    const failedAudit = r.runs.filter((x) => x.audit && !x.audit.ok);
    assert.ok(failedAudit.length > 0, 'the fixture has a failed audit');
    for (const run of failedAudit) {
      assert.match(text, new RegExp(`^audit:${esc(run.variant)} .* audit FAILED: ${run.audit!.lostAcked} acked but not stored`, 'm'));
    }
    for (const run of r.runs)
      for (const t of run.thresholds.filter((x) => !x.pass)) {
        assert.match(text, new RegExp(`^threshold:${esc(run.variant)} .* threshold failed: ${esc(t.expr)} \\(actual ${t.actual}\\)`, 'm'));
      }
    assert.match(text, /^result:The run as a whole is invalid/m);
    assert.ok(v.warnings.some((w) => w.severity === 'error'));
    // Invalid variants are marked in the table and have no ratio.
    const g = groupByStage(r)[0]!;
    const table = stageTable(g);
    const p99 = table.rows.find((x) => 'metricId' in x && x.metricId === 'fanout.p99Ms');
    assert.ok(p99 && 'cells' in p99);
    g.cells.forEach((c, i) => {
      if (c.valid.length === 0) {
        assert.equal(p99.cells[i]?.cls, 'invalid');
        assert.match(p99.cells[i]?.text ?? '', new RegExp(`⚠ ${c.runs[0]!.status}`));
      }
    });
    if (g.cells.some((c) => c.valid.length === 0)) assert.match(p99.cells[g.cells.length]?.text ?? '', /no valid runs/);
    const md = renderMarkdown(r);
    assert.match(md, /### Warnings \(\d+\)/);
    assert.match(md, /invalid 1\/1 \(excluded\)/);
  });

  it('excludes an invalid repeat from the median but keeps the others', () => {
    const r = read('result-stages.json');
    const bad = r.runs.find((x) => x.variant === 'per-request' && x.stage.index === 1 && x.repeat === 2) as RunRecord;
    bad.status = 'errored';
    bad.reasons = ['server crashed'];
    bad.latency.fanoutMs.p99 = 1e6;
    const v = computeVerdict(r);
    const fan = v.criteria.find((c) => c.id === 'fanoutP99');
    const pr = fan?.candidates.find((c) => c.variant === 'per-request');
    assert.deepEqual([pr?.valid, pr?.total], [2, 3]);
    assert.ok((pr?.value ?? Infinity) < 1e6);
    assert.ok(v.warnings.some((w) => w.kind === 'run' && w.severity === 'error' && /server crashed/.test(w.message)));
  });

  it('handles more than two variants: one column and one ratio per extra variant', () => {
    const r = read('result-smoke.json');
    const third = clone(r.runs[1] as RunRecord);
    third.variant = 'per-request-8w';
    r.runs.push(third);
    const t = stageTable(groupByStage(r)[0]!);
    assert.deepEqual(t.header, ['metric', 'batched', 'per-request', 'per-request-8w', 'per-request / batched', 'per-request-8w / batched']);
    const v = computeVerdict(r);
    assert.equal(v.criteria[0]?.candidates.length, 3);
  });
});

describe('input validation', () => {
  it('refuses missing, garbled, wrong-version and wrong-shape files with a clear message', async () => {
    await assert.rejects(loadResult(join(tmp, 'nope.json')), (e: Error) => e instanceof ResultLoadError && /no such file/.test(e.message));
    const garbled = join(tmp, 'garbled.json');
    writeFileSync(garbled, '{"schemaVersion": 1, "runs": [');
    await assert.rejects(loadResult(garbled), /not valid JSON/);
    const r = read('result-smoke.json') as unknown as Record<string, unknown>;
    assert.throws(
      () => validateResult({ ...r, schemaVersion: 2 }, 'x.json'),
      /x\.json: schemaVersion 2; this wami-bench reads result files of schemaVersion 1/,
    );
    assert.throws(() => validateResult([1, 2], 'x.json'), /expected a JSON object/);
    const bad = clone(r) as { runs: Array<{ latency: { fanoutMs: { p99: unknown } } }> };
    (bad.runs[0] as { latency: { fanoutMs: { p99: unknown } } }).latency.fanoutMs.p99 = 'fast';
    assert.throws(() => validateResult(bad, 'x.json'), /runs\[0\]\.latency\.fanoutMs\.p99: .*number/);
  });

  it('the CLI exits 2 with the reason, and writes what --format asks', () => {
    let res = runCli(['report', join(tmp, 'missing.json')]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /missing\.json: no such file/);
    const garbled = join(tmp, 'garbled2.json');
    writeFileSync(garbled, 'not json');
    res = runCli(['report', garbled]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /not valid JSON/);
    const f = copyTo('cli', read('result-smoke.json'));
    res = runCli(['report', f, '--format', 'nope']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /unknown format "nope"/);
    res = runCli(['report', f, '--format', 'bencher,github-action-benchmark']);
    assert.equal(res.code, 0, res.stderr);
    assert.ok(existsSync(join(tmp, 'cli', 'benchmark-bmf.json')));
    assert.ok(existsSync(join(tmp, 'cli', 'benchmark-gab.json')));
    assert.ok(!existsSync(join(tmp, 'cli', 'report.html')));
    res = runCli(['report', f]);
    assert.equal(res.code, 0, res.stderr);
    assert.ok(existsSync(join(tmp, 'cli', 'report.html')) && existsSync(join(tmp, 'cli', 'summary.md')));
    res = runCli(['report']);
    assert.equal(res.code, 2);
  });
});

describe('exports', () => {
  it('github-action-benchmark customSmallerIsBetter: {name, unit, value, extra?}', () => {
    const r = read('result-stages.json');
    const gab = toGithubActionBenchmark(r);
    assert.equal(gab.length, 2 * 2 * GATE_METRICS.length);
    for (const e of gab) {
      assert.equal(typeof e.name, 'string');
      assert.equal(typeof e.unit, 'string');
      assert.ok(Number.isFinite(e.value));
      assert.ok(Object.keys(e).every((k) => ['name', 'unit', 'value', 'range', 'extra'].includes(k)));
    }
    assert.equal(new Set(gab.map((e) => e.name)).size, gab.length, 'names are unique');
    const top = Math.max(...r.runs.map((x) => x.stage.connections));
    const runs = r.runs.filter((x) => x.variant === 'batched' && x.stage.connections === top);
    const p99 = gab.find((e) => e.name === `${r.scenario.name} · batched · ${top} sockets · fan-out p99`);
    assert.equal(p99?.unit, 'ms');
    const valid = runs.filter((x) => x.status === 'ok').length;
    assert.match(p99?.extra ?? '', new RegExp(`median of ${valid} valid runs? of ${runs.length}`));
  });

  it('Bencher BMF: benchmark -> measure -> {value, lower_value, upper_value}', async () => {
    const r = read('result-stages.json');
    const bmf = toBencherBmf(r);
    const benches = (res: ResultFile, onlyValid: boolean) =>
      [
        ...new Set(res.runs.filter((x) => !onlyValid || x.status === 'ok').map((x) => `${res.scenario.name}/${x.variant}/${x.stage.connections} sockets`)),
      ].sort();
    assert.deepEqual(Object.keys(bmf).sort(), benches(r, true));
    const first = r.runs.find((x) => x.status === 'ok')!;
    const m = bmf[`${r.scenario.name}/${first.variant}/${first.stage.connections} sockets`]?.['fanout-p99-ms'];
    assert.ok(m && m.lower_value !== undefined && m.upper_value !== undefined, 'repeats give bounds');
    assert.ok(m.lower_value <= m.value && m.value <= m.upper_value);
    assert.equal(measureSlug(GATE_METRICS[4]!), 'server-rss-bytes-per-socket');
    // Invalid cells are left out.
    const invalid = read('result-invalid.json');
    assert.ok(invalid.runs.some((x) => x.status !== 'ok'));
    assert.deepEqual(Object.keys(toBencherBmf(invalid)).sort(), benches(invalid, true));
    // Single runs have no bounds.
    const smoke = read('result-smoke.json');
    const single = toBencherBmf(smoke);
    assert.ok(Object.keys(single).length > 0);
    for (const measures of Object.values(single)) assert.deepEqual(Object.keys(measures['errors-total'] ?? {}), ['value']);
    const dir = join(tmp, 'exports');
    const w = await writeReportFiles(r, dir, ['bencher', 'github-action-benchmark']);
    assert.deepEqual(JSON.parse(readFileSync(w.bencher as string, 'utf8')), bmf);
  });
});
