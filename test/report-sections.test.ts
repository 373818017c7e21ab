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
import { fmtBytes, fmtMs, fmtNum } from '../report/format.js';
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
import type { ResultFile, RunRecord } from '../model/result.js';
import { capacityFixture } from './helpers/report-capacity.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (name: string): ResultFile => JSON.parse(readFileSync(join(root, 'results/fixtures', name), 'utf8')) as ResultFile;
const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The cell texts of a row of a stage table, by metric id (or label for relabelled rows). */
function rowCells(t: ReturnType<typeof stageTable>, id: string, label?: string): string[] {
  const row = t.rows.find((r) => 'metricId' in r && r.metricId === id && (label === undefined || r.label === label));
  assert.ok(row && 'cells' in row, `row ${id}`);
  return row.cells.map((c) => c.text);
}

describe('server shape', () => {
  it('states shards and workers per variant: flags, else the defaults (1 shard; CPU count workers)', () => {
    const smoke = read('result-smoke.json');
    const cpus = smoke.environment.cpuCount;
    const g = groupByStage(smoke)[0]!;
    const t = stageTable(g, { cpuCount: cpus });
    const expect = g.cells.map((c) => {
      const run = c.runs[0]!;
      const flag = run.variantKind === 'batched' ? '--shards' : '--workers';
      const i = run.variantFlags.indexOf(flag);
      const n = i >= 0 ? Number(run.variantFlags[i + 1]) : run.variantKind === 'batched' ? 1 : cpus;
      return `${n} ${run.variantKind === 'batched' ? 'shard' : 'worker'}${n === 1 ? '' : 's'}`;
    });
    assert.deepEqual(rowCells(t, 'server.shape').slice(0, g.cells.length), expect);
    assert.equal(
      stageTable(g).rows.some((r) => 'metricId' in r && r.metricId === 'server.shape'),
      false,
      'no row without the CPU count',
    );

    const flagged = structuredClone(smoke);
    for (const r of flagged.runs) r.variantFlags = r.variantKind === 'batched' ? ['--shards', '3'] : ['--workers=5'];
    assert.deepEqual(rowCells(stageTable(groupByStage(flagged)[0]!, { cpuCount: cpus }), 'server.shape').slice(0, 2), ['3 shards', '5 workers']);
    // The run table says where the count came from and how many processes were seen.
    const html = renderHtml(smoke);
    for (const r of smoke.runs)
      assert.match(html, new RegExp(`${r.variantKind === 'batched' ? 'shard' : 'worker'}s?( \\(default[^)]*\\))? · ${r.resources.server.processes} process`));
  });
});

describe('memory at each stage', () => {
  it('server RSS/PSS total and per socket, fleet RSS per socket, kernel TCP memory per socket', () => {
    const r = read('result-smoke.json');
    const g = groupByStage(r)[0]!;
    const t = stageTable(g, {}, MEMORY_ROWS);
    g.cells.forEach((c, i) => {
      const run = c.valid[0]!;
      const reached = run.sockets.reached;
      const s = run.resources.server as RunRecord['resources']['server'] & { fleet?: { rssBytesMax: number } };
      assert.equal(rowCells(t, 'server.rssBytesMax')[i], fmtBytes(s.rssBytesMax));
      assert.equal(rowCells(t, 'server.rssBytesMaxPerSocket')[i], fmtBytes(s.rssBytesMax / reached));
      assert.equal(rowCells(t, 'server.rssBytesPerSocket')[i], fmtBytes(s.rssBytesPerSocket));
      assert.equal(rowCells(t, 'server.pssBytesMaxPerSocket')[i], fmtBytes(s.pssBytesMax === null ? null : s.pssBytesMax / reached));
      const fleetRss = s.fleet?.rssBytesMax ?? run.fleet.rssBytesMax;
      assert.equal(rowCells(t, 'fleet.rssBytesPerSocket')[i], fmtBytes(fleetRss / reached));
      const ktcp = Math.max(...s.samples.map((x) => x.kernelTcpMemBytes ?? 0));
      assert.equal(rowCells(t, 'kernel.tcpMemBytesMax')[i], fmtBytes(ktcp));
      assert.equal(rowCells(t, 'kernel.tcpMemBytesPerSocket')[i], fmtBytes(ktcp / reached));
    });
    // Process and queue counts have no ratio column.
    assert.equal(rowCells(t, 'server.processes')[g.cells.length], '');
    const html = renderHtml(r);
    assert.ok(html.indexOf('<section id="memory"') > html.indexOf('<section id="tables"'));
  });

  it('the design claims: RAM extrapolated to 30k below 30k sockets (and said so), measured at 30k', () => {
    const r = read('result-smoke.json');
    const claims = designClaims(r);
    assert.deepEqual(
      claims.map((c) => c.id),
      ['ram30k', 'queue30k', 'buffers'],
    );
    const ram = claims[0]!;
    for (const run of r.runs) {
      const s = run.resources.server;
      const line = ram.measured.find((l) => l.startsWith(`${run.variant}:`));
      assert.ok(line, run.variant);
      assert.ok(run.stage.connections < CLAIM_SOCKETS);
      assert.ok(line.includes(`≈ ${fmtBytes(s.rssBytesIdle + (s.rssBytesPerSocket as number) * CLAIM_SOCKETS)}`), line);
      assert.match(line, /Extrapolated to 30,000.*not a measurement/);
    }
    assert.match(ram.caveat, /straight line/);
    // The queue: depth is measured, bytes are not, and the text says which.
    const queue = claims[1]!;
    const batched = r.runs.find((x) => x.variantKind === 'batched')!;
    assert.ok(queue.measured.some((l) => l.includes(`at most ${fmtNum(batched.server.queueDepthMax)} updates`)));
    assert.match(queue.caveat, /^Not measured: the bytes a queued update takes/);
    const buffers = claims[2]!;
    assert.ok(buffers.measured.some((l) => l.includes(`${fmtBytes(batched.resources.server.rssBytesPerSocket)} per socket`)));

    const big = structuredClone(r);
    for (const run of big.runs) {
      run.stage.connections = CLAIM_SOCKETS;
      run.sockets.reached = CLAIM_SOCKETS;
    }
    const ram30k = designClaims(big)[0]!;
    for (const run of big.runs) {
      const line = ram30k.measured.find((l) => l.startsWith(`${run.variant}:`)) ?? '';
      assert.ok(line.includes(`server RSS ${fmtBytes(run.resources.server.rssBytesMax)}`), line);
      assert.match(line, /measured at 30,000 sockets/);
      assert.doesNotMatch(line, /Extrapolated/);
    }
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
    assert.doesNotThrow(() => validateResult(result), 'schema-valid');
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
