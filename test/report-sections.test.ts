/**
 * The report's sections from issue 7, against the committed real-run fixtures: server shape, memory
 * at each stage and the design note's claims, steady latency and its drift warning, and the
 * capacity section (a capacity result built from the fixture's real runs by the runner's own
 * stepping logic). Expected figures are derived from the fixture data, never written in.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { capacityRows } from '../report/capacity.js';
import { buildCharts } from '../report/charts.js';
import { fmtMs, fmtNum } from '../report/format.js';
import { renderHtml } from '../report/html.js';
import { validateResult } from '../report/load.js';
import { renderMarkdown } from '../report/markdown.js';
import { CLAIM_SOCKETS, designClaims } from '../report/memory.js';
import { MEMORY_ROWS } from '../report/metrics.js';
import { groupByStage } from '../report/runs.js';
import { median } from '../report/stats.js';
import { steadyStage } from '../report/steady.js';
import { stageTable } from '../report/table.js';
import { computeVerdict } from '../report/verdict.js';
import type { ResultFile } from '../model/result.js';
import { capacityFixture } from './helpers/report-capacity.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (name: string): ResultFile => JSON.parse(readFileSync(join(root, 'results/fixtures', name), 'utf8')) as ResultFile;
/** The hand-written result (results/fixtures/golden/README.md): its figures are round, so the expected texts below are worked out by hand. */
const golden = (): ResultFile => read('golden/result.json');
const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The cell texts of a row of a stage table, by metric id (or label for relabelled rows). */
function rowCells(t: ReturnType<typeof stageTable>, id: string, label?: string): string[] {
  const row = t.rows.find((r) => 'metricId' in r && r.metricId === id && (label === undefined || r.label === label));
  assert.ok(row && 'cells' in row, `row ${id}`);
  return row.cells.map((c) => c.text);
}

describe('server shape', () => {
  it('states shards and workers per variant: flags, else the defaults (1 shard; CPU count workers; 1 process)', () => {
    const g = groupByStage(golden())[0]!;
    // the golden designs: batched (no flag), per-request --workers 2, batched --shards 2, per-request --workers 4, an external server
    assert.deepEqual(rowCells(stageTable(g, { cpuCount: 2 }), 'server.shape').slice(0, 5), ['1 shard', '2 workers', '2 shards', '4 workers', '1 process']);
    assert.equal(
      stageTable(g).rows.some((r) => 'metricId' in r && r.metricId === 'server.shape'),
      false,
      'no row without the CPU count',
    );
    const noFlags = golden();
    for (const r of noFlags.runs) r.variantFlags = [];
    assert.deepEqual(rowCells(stageTable(groupByStage(noFlags)[0]!, { cpuCount: 6 }), 'server.shape').slice(0, 5), [
      '1 shard',
      '6 workers',
      '1 shard',
      '6 workers',
      '1 process',
    ]);
    const eq = golden();
    eq.runs[0]!.variantFlags = ['--shards', '3'];
    eq.runs[1]!.variantFlags = ['--workers=5'];
    assert.deepEqual(rowCells(stageTable(groupByStage(eq)[0]!, { cpuCount: 2 }), 'server.shape').slice(0, 2), ['3 shards', '5 workers']);
    // The run table says where the count came from and how many processes were seen (1 in every golden run).
    const html = renderHtml(golden());
    assert.match(html, /1 shard \(default\) · 1 process/);
    assert.match(html, /2 workers · 1 process/);
  });
});

describe('memory at each stage', () => {
  it('server RSS total and per socket, fleet RSS per socket: the golden figures by hand', () => {
    const g = groupByStage(golden())[0]!;
    const t = stageTable(g, {}, MEMORY_ROWS);
    // RSS max = idle + growth × 100 sockets: 76 MiB + 40 KiB × 100 = 83,787,776 B = 79.9 MiB, …
    assert.deepEqual(rowCells(t, 'server.rssBytesMax').slice(0, 5), ['79.9 MiB', '192 MiB', '123 MiB', '302 MiB ⚠ audit failed', '6.1 MiB']);
    // … and per socket reached: 83,787,776 / 100 = 818 KiB
    assert.deepEqual(rowCells(t, 'server.rssBytesMaxPerSocket').slice(0, 5), ['818 KiB', '1.92 MiB', '1.23 MiB', '3.02 MiB ⚠ audit failed', '62.4 KiB']);
    assert.deepEqual(rowCells(t, 'server.rssBytesPerSocket').slice(0, 5), ['40 KiB', '20 KiB', '30 KiB', '25 KiB ⚠ audit failed', '1 KiB']);
    assert.deepEqual(rowCells(t, 'server.pssBytesMaxPerSocket').slice(0, 5), ['—', '—', '—', '—', '—'], 'no PSS was read');
    // results written before the measured-window figure existed have none: a dash, never 0
    assert.deepEqual(rowCells(t, 'server.rssBytesMaxMeasured').slice(0, 5), ['—', '—', '—', '—', '—']);
    const w = golden();
    w.runs[0]!.resources.server.rssBytesMaxMeasured = 64 * 1024 * 1024;
    assert.equal(rowCells(stageTable(groupByStage(w)[0]!, {}, MEMORY_ROWS), 'server.rssBytesMaxMeasured')[0], '64 MiB');
    // the fleet's 100 MiB over 100 sockets
    assert.deepEqual(rowCells(t, 'fleet.rssBytesPerSocket').slice(0, 5), ['1 MiB', '1 MiB', '1 MiB', '1 MiB ⚠ audit failed', '1 MiB']);
    // Process and queue counts have no ratio column.
    assert.equal(rowCells(t, 'server.processes')[g.cells.length], '');
    const html = renderHtml(golden());
    assert.ok(html.indexOf('<section id="memory"') > html.indexOf('<section id="tables"'));
  });

  it('the design claims: RAM extrapolated to 30k below 30k sockets (and said so), measured at 30k', () => {
    const r = golden();
    const claims = designClaims(r);
    const ram = claims.find((c) => c.id === 'ram30k')!;
    const line = (variant: string): string => ram.measured.find((l) => l.startsWith(`${variant}:`)) ?? '';
    // idle + growth per socket × 30,000: 76 MiB + 40 KiB × 30,000 = 1,308,491,776 B = 1.22 GiB
    assert.ok(line('batched').includes('≈ 1.22 GiB'), line('batched'));
    // 190 MiB + 20 KiB × 30,000 = 813,629,440 B = 776 MiB
    assert.ok(line('per-request').includes('≈ 776 MiB'), line('per-request'));
    // 6 MiB + 1 KiB × 30,000 = 37,011,456 B = 35.3 MiB
    assert.ok(line('pascal').includes('≈ 35.3 MiB'), line('pascal'));
    for (const v of ['batched', 'per-request', 'pascal']) assert.match(line(v), /Extrapolated to 30,000.*not a measurement/);
    assert.match(ram.caveat, /straight line/);
    // The queue: depth is measured (batched's gauge peaked at 40), bytes are not, and the text says which.
    const queue = claims.find((c) => c.id === 'queue30k')!;
    assert.ok(queue.measured.some((l) => l.startsWith('batched:') && l.includes('at most 40 updates')));
    assert.match(queue.caveat, /^Not measured: the bytes a queued update takes/);
    const buffers = claims.find((c) => c.id === 'buffers')!;
    assert.ok(buffers.measured.some((l) => l.startsWith('batched:') && l.includes('40 KiB per socket')));

    const big = golden();
    for (const run of big.runs) {
      run.stage.connections = CLAIM_SOCKETS;
      run.sockets.reached = CLAIM_SOCKETS;
    }
    const at30k = designClaims(big).find((c) => c.id === 'ram30k')!;
    const b = at30k.measured.find((l) => l.startsWith('batched:')) ?? '';
    assert.ok(b.includes('server RSS 79.9 MiB'), b);
    assert.match(b, /measured at 30,000 sockets/);
    assert.doesNotMatch(b, /Extrapolated/);
    const html = renderHtml(r);
    assert.match(html, /30k users could use 500 MB – 1\.5 GB RAM/);
    assert.match(html, /30k updates take just a couple MB/);
    assert.match(html, /Reduce the WebSocket read and write buffers \(e\.g\. 4 KB per connection\)/);
    assert.match(renderMarkdown(r), /memory claims, against this result/);
  });
});

describe('steady latency', () => {
  it('p99 and p99.9 over the window and first against last window, medians of the valid runs', () => {
    const r = read('result-stages.json');
    for (const g of groupByStage(r)) {
      const st = steadyStage(g);
      for (const c of st.cells) {
        const runs = g.cells.find((x) => x.variant === c.variant)!.valid;
        const row = c.rows.find((x) => x.key === 'fanoutP99')!;
        assert.equal(row.whole, median(runs.map((x) => x.latency.fanoutMs.p99)));
        assert.equal(row.first, median(runs.map((x) => x.drift.fanoutMs.first.p99)));
        assert.equal(row.last, median(runs.map((x) => x.drift.fanoutMs.last.p99)));
        assert.equal(row.ratio, (row.last as number) / (row.first as number));
        assert.equal(row.minSamples, Math.min(...runs.flatMap((x) => [x.drift.fanoutMs.first.count, x.drift.fanoutMs.last.count])));
        const ack999 = c.rows.find((x) => x.key === 'ackP999')!;
        assert.equal(ack999.last, median(runs.map((x) => x.drift.ackMs.last.p999)));
        assert.equal(c.windowSec, median(runs.map((x) => x.drift.windowSec)));
      }
    }
    const html = renderHtml(r);
    const at = (id: string) => html.indexOf(`<section id="${id}"`);
    assert.ok(at('steady') > at('memory') && at('steady') < at('distribution'));
  });

  it('drift over 1.5× (and over 1 ms, with enough samples) is a warning in the verdict', () => {
    const base = read('result-smoke.json');
    const withDrift = (firstMs: number, lastMs: number, count: number): ResultFile => {
      const r = structuredClone(base);
      for (const run of r.runs) {
        Object.assign(run.drift.fanoutMs.first, { p99: firstMs, count });
        Object.assign(run.drift.fanoutMs.last, { p99: lastMs, count });
        // Keep every other percentile flat so only this one can drift.
        for (const w of ['ackMs', 'fanoutMs'] as const) {
          run.drift[w].last.p999 = run.drift[w].first.p999;
          if (w === 'ackMs') run.drift[w].last.p99 = run.drift[w].first.p99;
        }
      }
      return r;
    };
    const drifts = (r: ResultFile) => computeVerdict(r).warnings.filter((w) => w.kind === 'drift');
    const doubled = withDrift(10, 20, 500);
    const w = drifts(doubled);
    assert.equal(w.length, doubled.runs.length, 'one warning per variant and stage');
    for (const run of doubled.runs) {
      const msg = w.find((x) => x.message.startsWith(`${run.variant} ·`))?.message ?? '';
      assert.ok(msg.includes(`fan-out p99 ${fmtMs(10)} → ${fmtMs(20)} (×2, +${fmtMs(10)})`), msg);
      assert.ok(msg.includes(`first ${fmtNum(run.drift.windowSec)} s against last`), msg);
    }
    assert.equal(drifts(withDrift(10, 14, 500)).length, 0, '1.4× is not a drift');
    assert.equal(drifts(withDrift(10, 20, 50)).length, 0, 'too few samples for a p99');
    assert.equal(drifts(withDrift(0.2, 0.9, 500)).length, 0, 'under the 1 ms floor');
    const invalid = withDrift(10, 20, 500);
    for (const run of invalid.runs) run.status = 'invalid';
    assert.equal(drifts(invalid).length, 0, 'invalid runs never warn');
    // The page marks the drifted cell.
    assert.match(renderHtml(doubled), /<td class="num bad"[^>]*>×2 ⚠<\/td>/);
    assert.match(renderMarkdown(doubled), /latency drifted over the measured window/);
  });
});

describe('capacity', () => {
  it('a section right after the verdict: largest passing per variant, why it stopped, the SLO, a chart', () => {
    const { result, low, top } = capacityFixture();
    assert.deepEqual(validateResult(result).capacity, result.capacity, 'schema-valid, the capacity report kept as it is');
    const rows = capacityRows(result.capacity!);
    const batched = rows.find((x) => x.variant === 'batched')!;
    const perRequest = rows.find((x) => x.variant === 'per-request')!;
    assert.equal(batched.largest, fmtNum(low));
    assert.equal(batched.serverLimit, true);
    assert.match(batched.why, /SLO broke/);
    assert.equal(perRequest.largest, `≥ ${fmtNum(low)}`, 'a fleet limit is a lower bound');
    assert.equal(perRequest.serverLimit, false);
    assert.match(perRequest.why, /measuring machine’s limit, not the server’s/);
    assert.equal(perRequest.stoppedAt, fmtNum(top));

    const html = renderHtml(result);
    const at = (id: string) => html.indexOf(`<section id="${id}"`);
    assert.ok(at('verdict') < at('capacity') && at('capacity') < at('scaling') && at('scaling') < at('tables'), 'verdict, capacity, scaling, tables');
    for (const expr of result.capacity!.slo) assert.ok(html.includes(`<code>${expr.replace(/</g, '&lt;')}`) || html.includes(expr.replace(/</g, '&lt;')), expr);
    assert.match(html, /not the server’s/);

    const charts = buildCharts(result).capacity;
    assert.equal(charts.length, result.capacity!.slo.length, 'one chart per SLO metric');
    for (const c of charts) {
      const ds = c.datasets ?? [];
      assert.ok(ds.some((d) => d.label.startsWith('SLO:') && d.dash === 'dashed'));
      assert.ok(ds.some((d) => d.label.startsWith('per-request: invalid') && d.pointStyle === 'crossRot' && d.data.some((p) => p[0] === top)));
      assert.ok(ds.some((d) => d.label.startsWith('batched ') && d.data.length === 2));
    }
    const md = renderMarkdown(result);
    assert.match(md, new RegExp(`### Capacity \\(SLO \`${esc(result.capacity!.slo.join(' and '))}\`\\)`));
    assert.match(md, new RegExp(`\\| batched \\| \\*\\*${esc(fmtNum(low))}\\*\\* \\| ${esc(fmtNum(top))} \\| the SLO broke`));
    assert.match(md, new RegExp(`\\| per-request \\| \\*\\*≥ ${esc(fmtNum(low))}\\*\\* \\|`));
  });
});

describe('charts: clocks and the measured window', () => {
  it('fleet-clock charts shade outside window.measuredT; server-clock charts are labelled as such', () => {
    const r = read('result-smoke.json');
    const c = buildCharts(r);
    const all = [...c.overTime, ...c.errors, ...c.resources, ...c.sqlite];
    for (const ch of all) {
      if (ch.x.label === 'open sockets') continue;
      assert.ok(['time since the fleet started (s)', 'time since the run started (s)'].includes(ch.x.label), `${ch.id}: ${ch.x.label}`);
      if (ch.x.label.includes('fleet')) {
        const key = c.defaultSel;
        const runs = r.runs.filter((x) => `${x.stage.index}:${x.repeat}` === key && x.window.measuredT);
        const from = Math.min(...runs.map((x) => x.window.measuredT!.from));
        const to = Math.max(...runs.map((x) => x.window.measuredT!.to));
        assert.deepEqual(ch.measured?.[key], [from, to], ch.id);
      } else assert.equal(ch.measured, undefined, ch.id);
    }
  });
});
