/**
 * report.html: one self-contained page per result. chart.js's UMD build is inlined, the data is
 * embedded as escaped JSON, and nothing is fetched from anywhere. Sections in the order the reader
 * needs them: the decision (which design, for what, decided by which figure), verdict and warnings, (capacity, for a capacity search), (scaling curve when there
 * are stages), side-by-side tables, memory at each stage with the design note's claims, steady
 * latency, latency distribution, latency and throughput over time, errors, server resources,
 * (scaling curve when there is one stage), SQLite, audit, environment, resolved scenario.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResultFile, RunRecord } from '../model/result.js';
import { buildCharts, type ChartSpec } from './charts.js';
import { compactJson, escapeHtml, fmtBytes, fmtMs, fmtNum, fmtRatio, fmtUnit, jsonForScript } from './format.js';
import { AT_FLOOR_RATIO, FLOOR_METRICS, floorStages } from './floor.js';
import { axisUnitText, capacityRows, searchText, sloText, stepX, writeScalability } from './capacity.js';
import { axisOf } from '../model/capacity.js';
import { faultBlocks } from './faults.js';
import { designClaims } from './memory.js';
import { externalCommands, externalCommandText, runCommandLine } from './external.js';
import { MEMORY_ROWS } from './metrics.js';
import { groupByStage, isValid, scrapeText, serverShape, shapeLabel, stageLabel, type StageGroup } from './runs.js';
import { DRIFT_FLOOR_MS, DRIFT_RATIO, MIN_SAMPLES, steadyStage, windowText } from './steady.js';
import { PAGE_CSS } from './style.js';
import { stageTable, type StageTable } from './table.js';
import { acrossStages, computeVerdict, type Verdict } from './verdict.js';
import { computeDecision, type Decision } from './decision.js';

export interface HtmlOptions {
  /** Single-run noise band for winners and ratio colours; default 0.05. */
  noiseBand?: number;
  /** Bootstrap seed; default 0x5eed. */
  seed?: number;
}

let chartJsCache: string | null = null;
let pageScriptCache: string | null = null;

/** A library's text made safe inside a <script> element: a closing tag inside it would end the element early. */
function scriptSafe(text: string): string {
  return text.replace(/<\/(script)/gi, '<\\/$1').replace(/\/\/# sourceMappingURL=.*$/gm, '');
}

/** report/page.js in the source tree (this module runs from dist/report/): the page's own script, type-checked by `npm run lint`. */
export const PAGE_SCRIPT_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'report', 'page.js');

/** The page's script, read at render time like chart.js. */
export function pageScriptSource(): string {
  pageScriptCache ??= scriptSafe(readFileSync(PAGE_SCRIPT_FILE, 'utf8'));
  return pageScriptCache;
}

/**
 * chart.js's UMD build. Its package `exports` hide dist/chart.umd.js, so resolve the package's main
 * entry (dist/chart.cjs) and take the UMD file beside it.
 */
export function chartJsSource(): string {
  if (chartJsCache !== null) return chartJsCache;
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve('chart.js'));
  for (const name of ['chart.umd.min.js', 'chart.umd.js']) {
    const file = join(dir, name);
    if (existsSync(file)) {
      chartJsCache = scriptSafe(readFileSync(file, 'utf8'));
      return chartJsCache;
    }
  }
  throw new Error(`chart.js UMD build not found beside ${dir} (looked for chart.umd.min.js, chart.umd.js)`);
}

const e = escapeHtml;

function section(id: string, title: string, body: string): string {
  return `<section id="${id}"><h2>${e(title)}</h2>\n${body}\n</section>`;
}

function chartFigure(c: ChartSpec): string {
  return `<figure class="chart"><div class="box"><canvas id="chart-${e(c.id)}" role="img" aria-label="${e(c.title)}"></canvas></div>${c.note ? `<figcaption>${e(c.note)}</figcaption>` : ''}</figure>`;
}

function chartGrid(charts: ChartSpec[]): string {
  return `<div class="grid">${charts.map(chartFigure).join('\n')}</div>`;
}

function renderBanner(v: Verdict, stages: number): string {
  const errors = v.warnings.filter((w) => w.severity === 'error');
  const cls = errors.length ? 'banner has-errors' : v.warnings.length ? 'banner has-warnings' : 'banner';
  const head = v.headline
    ? `Verdict at ${fmtNum(v.headline.connections)} sockets${stages > 1 ? ' (largest comparable stage)' : ''}`
    : 'Verdict: no comparison possible';
  const rows = v.criteria
    .map((c) => {
      const who = c.winner ?? (c.tied.length ? `tie (${c.tied.join(', ')})` : '—');
      const across = stages > 1 ? `<td class="muted">${e(acrossStages(v, c.id))}</td>` : '';
      return `<tr><th>${e(c.label)}</th><td class="winner">${e(who)}</td><td>${e(c.text)}</td>${across}</tr>`;
    })
    .join('\n');
  const table = v.criteria.length
    ? `<div class="tablewrap"><table class="verdict"><thead><tr><th>criterion</th><th>wins</th><th>figures (median of valid runs)</th>${stages > 1 ? '<th>across stages</th>' : ''}</tr></thead><tbody>${rows}</tbody></table></div>`
    : '<p>Fewer than two variants have valid runs at any stage, so nothing can be compared.</p>';
  const warnings = v.warnings.length
    ? `<div class="warnings"><h3>Warnings (${v.warnings.length})</h3><ul>${v.warnings.map((w) => `<li class="${w.severity}">${e(w.message)}</li>`).join('\n')}</ul></div>`
    : '<p class="ok-line">No warnings: every run valid, every audit passed, every threshold met, every broadcast delivered.</p>';
  return `<section id="verdict" class="${cls}"><h2>${e(head)}</h2>\n${table}\n<p class="caveat">${e(v.caveat)}</p>\n${warnings}\n<p class="note">A winner needs its lead outside the noise: with repeats, the 95% bootstrap interval of the ratio must exclude 1; with single runs, the lead must exceed 5%. Invalid and errored runs never count.</p></section>`;
}

/** The decision: first on the page, what to pick at this load and why, one paragraph per design. */
function renderDecision(d: Decision): string {
  const headline = d.headline.length ? `<ul class="decision-problems">${d.headline.map((h) => `<li class="error">${e(h)}</li>`).join('')}</ul>` : '';
  const designs = d.designs.map((p) => `<p class="design"><b>${e(p.head)}</b>: ${e(p.body)}</p>`).join('\n');
  const other = d.otherLoads.length ? `<p class="other-loads"><b>At other loads.</b> ${e(d.otherLoads.join(' '))}</p>` : '';
  const sections = d.sections.length
    ? `<ul class="section-verdicts">${d.sections.map((s) => `<li><a href="#${e(s.section)}">${e(s.text)}</a></li>`).join('')}</ul>`
    : '';
  const title = `Decision${d.stage ? ` at ${fmtNum(d.stage.connections)} sockets` : ''}`;
  return `<section id="decision"${d.headline.length ? ' class="has-errors"' : ''}><h2>${e(title)}</h2>\n${headline}<p class="decided"><b>${e(d.decidedBy)}</b></p>\n${designs}\n${other}${sections}</section>`;
}

function renderTable(t: StageTable): string {
  const head = `<thead><tr>${t.header.map((h, i) => `<th${i > 0 ? ' class="num"' : ''}>${e(h)}</th>`).join('')}</tr></thead>`;
  const body = t.rows
    .map((r) => {
      if ('heading' in r) return `<tr class="heading"><td colspan="${t.header.length}">${e(r.heading)}</td></tr>`;
      const cells = r.cells.map((c) => `<td class="num${c.cls ? ` ${c.cls}` : ''}"${c.title ? ` title="${e(c.title)}"` : ''}>${e(c.text)}</td>`).join('');
      const sub = /^\s/.test(r.label);
      return `<tr><td${sub ? ' class="sub"' : ''}>${e(r.label.trim())}</td>${cells}</tr>`;
    })
    .join('\n');
  return `<div class="tablewrap"><table class="side">${head}<tbody>${body}</tbody></table></div>`;
}

function simpleTable(header: string[], rows: Array<Array<{ text: string; cls?: string } | string>>, rowCls?: (i: number) => string | undefined): string {
  const h = `<thead><tr>${header.map((x) => `<th>${e(x)}</th>`).join('')}</tr></thead>`;
  const b = rows
    .map((r, i) => {
      const cls = rowCls?.(i);
      return `<tr${cls ? ` class="${cls}"` : ''}>${r.map((c) => (typeof c === 'string' ? `<td>${e(c)}</td>` : `<td class="${c.cls ?? ''}">${e(c.text)}</td>`)).join('')}</tr>`;
    })
    .join('\n');
  return `<div class="tablewrap"><table>${h}<tbody>${b}</tbody></table></div>`;
}

const n = (x: number | null | undefined) => ({ text: fmtNum(x), cls: 'num' });
const runName = (r: RunRecord) => `${r.variant} · stage ${r.stage.index + 1} (${fmtNum(r.stage.connections)}) · #${r.repeat}`;

function renderSqlite(result: ResultFile): string {
  const join = (xs: Array<number | null | undefined>) => xs.map((x) => fmtNum(x)).join(' · ');
  const rows = result.runs.map((r) => {
    const s = r.server;
    return [
      runName(r),
      { text: r.status, cls: isValid(r) ? 'pass' : 'fail' },
      n(s.batchSize?.count),
      { text: s.batchSize ? join([s.batchSize.mean, s.batchSize.p50, s.batchSize.p99, s.batchSize.max]) : '—', cls: 'num' },
      { text: s.commitMs ? join([s.commitMs.mean, s.commitMs.p50, s.commitMs.p99]) : '—', cls: 'num' },
      n(s.queueDepthMax),
      n(s.queueDepthPeak),
      { text: s.flushMs ? fmtMs(s.flushMs.p99) : '—', cls: 'num' },
      n(s.busyHits),
      n(s.retries),
      n(s.exhausted),
      n(s.txAttempts?.p99),
      { text: `${fmtBytes(s.walBytesMax)} / ${fmtBytes(s.walBytesEnd)}`, cls: 'num' },
      n(s.walRestarts),
      { text: fmtMs(s.eventLoopDelayMsMaxProc), cls: 'num' },
      n(s.updatesPersisted),
    ];
  });
  return simpleTable(
    [
      'run',
      'status',
      'batches',
      'batch size mean · p50 · p99 · max',
      'commit ms mean · p50 · p99',
      'queue max (sampled)',
      'queue peak',
      'flush p99',
      'BUSY hits',
      'retries',
      'exhausted',
      'attempts p99',
      'WAL max / end',
      'WAL restarts',
      'event loop (worst process)',
      'persisted',
    ],
    rows,
    (i) => (result.runs[i] && !isValid(result.runs[i] as RunRecord) ? 'invalid' : undefined),
  );
}

function renderAudit(result: ResultFile): string {
  const invalid = (i: number) => (result.runs[i] && !isValid(result.runs[i] as RunRecord) ? 'invalid' : undefined);
  const runs = simpleTable(
    ['run', 'server', 'flags (external: the command)', 'via', 'status', 'sockets', 'updates sent · acked · errored · unanswered', 'wall (s)', 'reasons'],
    result.runs.map((r) => [
      runName(r),
      { text: `${r.variantKind}: ${shapeLabel(serverShape(r, result.environment.cpuCount))}`, cls: 'nowrap' },
      r.external ? { text: runCommandLine(r) ?? '', cls: 'command' } : { text: r.variantFlags.join(' ') || '—', cls: 'nowrap' },
      r.via,
      { text: r.status, cls: isValid(r) ? 'pass' : 'fail' },
      { text: `${fmtNum(r.sockets.reached)}/${fmtNum(r.sockets.asked)}`, cls: 'num' },
      { text: [r.updates.sent, r.updates.acked, r.updates.errored, r.updates.unanswered].map((x) => fmtNum(x)).join(' · '), cls: 'num' },
      n(r.wallSec),
      { text: r.reasons.join('; '), cls: 'reasons' },
    ]),
    invalid,
  );
  const audit = simpleTable(
    [
      'run',
      'audit',
      'acked, not stored',
      'broadcast, not stored',
      'stored, not acked',
      'stored, not broadcast',
      'final state mismatches',
      'boards with seq gaps',
      'seqs reused',
      'database integrity',
      'events stored',
      'examples',
    ],
    result.runs.map((r) => {
      const a = r.audit;
      if (!a) return [runName(r), { text: 'not audited', cls: 'fail' }, '', '', '', '', '', '', '', '', '', ''];
      const excused = a.excused?.length ? ` (faults: ${a.excused.join(', ')} by design)` : '';
      return [
        runName(r),
        { text: (a.ok ? 'passed' : 'FAILED') + excused, cls: a.ok ? 'pass' : 'fail' },
        n(a.lostAcked),
        n(a.phantom),
        n(a.storedNotAcked),
        n(a.notBroadcast),
        n(a.finalStateMismatches),
        n(a.seqGaps),
        n(a.seqReused),
        a.integrity === undefined
          ? '—'
          : { text: a.integrity.length > 120 ? `${a.integrity.slice(0, 120)}…` : a.integrity, cls: a.integrity === 'ok' ? '' : 'fail' },
        n(a.eventsStored),
        a.examples.slice(0, 3).join('; '),
      ];
    }),
    invalid,
  );
  const delivery = simpleTable(
    ['run', 'expected', 'received', 'missing', 'duplicate', 'out of order', 'phantom', 'sockets closed early'],
    result.runs.map((r) => [
      runName(r),
      n(r.delivery.expected),
      n(r.delivery.received),
      n(r.delivery.missing),
      n(r.delivery.duplicate),
      n(r.delivery.outOfOrder),
      n(r.delivery.phantom),
      n(r.sockets.closedEarly),
    ]),
    invalid,
  );
  // One row per run, one column per threshold: "✓ 0" or "✗ 3" (the actual value).
  const exprs = [...new Set(result.runs.flatMap((r) => r.thresholds.map((t) => t.expr)))];
  const thresholdRows = result.runs.map((r) => [
    runName(r),
    ...exprs.map((x) => {
      const t = r.thresholds.find((y) => y.expr === x);
      if (!t) return { text: '—', cls: 'muted' };
      return { text: `${t.pass ? '✓' : '✗ FAIL'} ${t.actual === null ? 'unknown' : fmtNum(t.actual)}`, cls: `num ${t.pass ? 'pass' : 'fail'}` };
    }),
  ]);
  const thresholds = exprs.length
    ? `<p class="note">Each cell: pass (✓) or FAIL (✗), and the run's actual value.</p>${simpleTable(['run', ...exprs], thresholdRows, invalid)}`
    : '<p class="note">The scenario sets no thresholds.</p>';
  return `<h3>Runs</h3>${runs}<h3>Audit: the database against what the fleet saw</h3>${audit}<h3>Delivery accounting</h3>${delivery}<h3>Thresholds</h3>${thresholds}`;
}

/** Faults: what each design lost, per fault, in words and side by side, and each run's timeline with its faults marked. */
function renderFaults(result: ResultFile, charts: ChartSpec[]): string {
  const blocks = faultBlocks(result);
  if (blocks.length === 0) return '';
  const body = blocks
    .map((b) => {
      const head = ['', ...b.columns.map((c) => c.label)];
      const rows = b.rows.map((r) => [
        { text: r.label.trim(), cls: /^\s/.test(r.label) ? 'sub' : '' },
        ...r.cells.map((t, i) => ({ text: t, cls: `num${r.bad?.[i] ? ' fail' : ''}` })),
      ]);
      return `<h3>${e(b.title)}</h3><ul class="plain">${b.words.map((w) => `<li>${e(w)}</li>`).join('')}</ul>${simpleTable(head, rows)}`;
    })
    .join('\n');
  const note =
    '<p class="note">Each fault owns what happened from 1 s before it to 1 s before the next (by when an update was sent, acked or committed). Lost acks and reused seqs fail the run whatever the fault. ' +
    'What a design documents it loses under a fault does not: batched broadcasts from RAM before it commits, so a crash loses what it broadcast in the last flush interval and a failed write leaves a phantom, and its seq lease makes a restart skip ahead (gaps, allowed and counted, never reuse). ' +
    'The audit table below says which of these a run excused.</p>';
  return section('faults', 'Faults: what each design loses', note + body + chartGrid(charts));
}

function renderCapacity(result: ResultFile, charts: ChartSpec[]): string {
  const c = result.capacity;
  if (!c) return '';
  const unit = axisUnitText(c);
  const rows = capacityRows(c).map((r) => [
    { text: r.variant, cls: 'strong' },
    { text: r.largest, cls: `num strong${r.largest === 'none' ? ' fail' : ''}` },
    { text: r.stoppedAt, cls: 'num' },
    { text: r.why, cls: r.ok ? '' : 'fail' },
    { text: r.detail, cls: 'muted' },
  ]);
  const table = simpleTable(['variant', `largest passing (${unit})`, 'stopped at', 'why it stopped', 'the runner’s account'], rows);
  const rate = axisOf(c) === 'rate';
  const body =
    `<p>SLO: <code>${e(sloText(c))}</code>, searched ${e(searchText(c))}. Each step is a full, audited run; its runs are in the tables below. ` +
    `“≥” marks a lower bound: the search stopped for a reason other than the server (the fleet, or the maximum asked for).</p>${table}` +
    (rate ? renderWriteScalability(result, charts) : charts.length ? chartGrid(charts) : '');
  return section('capacity', rate ? 'Capacity: the highest write rate that met the SLO' : 'Capacity: the most sockets that met the SLO', body);
}

/** The rate axis's write-scalability panel: one sentence per variant, the fleet's ceiling, the charts, and each step's pressure signals. */
function renderWriteScalability(result: ResultFile, charts: ChartSpec[]): string {
  const c = result.capacity!;
  const rows = writeScalability(result);
  const sentences = `<ul class="ws-sentences">${rows.map((r) => `<li>${e(r.sentence)}</li>`).join('')}</ul>`;
  const ceiling = c.fleetCeiling
    ? `<p class="note">The fleet’s own ceiling (the same fleet against a no-op sink that acks and broadcasts from RAM): ${e(c.fleetCeiling.detail)}.` +
      ` Steps: ${c.fleetCeiling.steps.map((s) => `${fmtNum(s.rate)} updates/s ${s.status} (lag p99 ${fmtMs(s.lagMsP99)})`).join('; ') || 'none'}.</p>`
    : '<p class="note">The fleet’s own ceiling was not measured in this search.</p>';
  const stepRows: Array<Array<{ text: string; cls?: string } | string>> = [];
  for (const v of c.variants) {
    for (const st of v.steps) {
      const g = st.signals;
      const pressure = !g
        ? '—'
        : g.flushIntervalMs !== null
          ? `queue peak ${fmtNum(g.queueDepthPeak)}; flush p99 ${fmtMs(g.flushMsP99)} / ${fmtMs(g.flushIntervalMs)}`
          : `${fmtNum(g.retriesPerUpdate)} retries/update; attempts p99 ${fmtNum(g.attemptsP99)}; exhausted ${fmtNum(g.exhausted)}`;
      stepRows.push([
        { text: v.variant, cls: 'strong' },
        { text: fmtNum(stepX(st)), cls: 'num' },
        { text: st.status, cls: st.status === 'ok' ? '' : 'fail' },
        { text: g ? fmtNum(g.sentRate) : '—', cls: 'num' },
        { text: g ? fmtMs(g.ackP99Ms) : '—', cls: 'num' },
        { text: g ? fmtMs(g.fanoutP99Ms) : '—', cls: 'num' },
        { text: g ? `${fmtNum(g.errorRate * 100)} %` : '—', cls: `num${g && g.errorRate > (c.rate?.maxErrorRate ?? 0) ? ' fail' : ''}` },
        { text: pressure, cls: 'muted' },
        { text: g ? fmtMs(g.commitMsP99) : '—', cls: 'num' },
        { text: g ? `${fmtBytes(g.walBytesMax)} / ${fmtBytes(g.walBytesEnd)}` : '—', cls: 'num' },
        { text: g ? fmtNum(g.walRestarts) : '—', cls: 'num' },
        { text: g ? fmtMs(g.eventLoopDelayMsMax) : '—', cls: 'num' },
        { text: st.sloPass ? '✓' : '✗', cls: st.sloPass ? 'pass' : 'fail' },
      ]);
    }
  }
  const steps = simpleTable(
    [
      'variant',
      'offered /s',
      'run',
      'sent /s',
      'ack p99',
      'fan-out p99',
      'write errors',
      'the design’s pressure',
      'commit p99',
      'WAL max / end',
      'WAL restarts',
      'event loop (worst process)',
      'SLO',
    ],
    stepRows,
  );
  return (
    `<h3 id="write-scalability">Write scalability</h3>${sentences}${ceiling}${chartGrid(charts)}` +
    `<h3>Each step’s pressure signals</h3><p class="note">Event loop: the worst process’s delay p99 in its worst second of the measured window. ` +
    'WAL restarts: times the WAL went back to its start after a complete checkpoint (a WAL that never restarts grows: checkpoints are starved).</p>' +
    steps
  );
}

/** The external servers by their commands, and the stages the preflight skipped: what ran, and what did not. */
function renderExternalAndSkipped(result: ResultFile): string {
  const cmds = externalCommands(result);
  const ext = cmds.length
    ? `<p class="note">External server${cmds.length === 1 ? '' : 's'} (started by ${cmds.length === 1 ? 'its' : 'their'} own command; each run's exact command line is in the Runs table): ${cmds
        .map((c) => `<code>${e(externalCommandText(c))}</code>`)
        .join('; ')}</p>`
    : '';
  const skipped = result.skippedStages?.length
    ? `<p class="note warn">Skipped by the preflight on this machine (optional stages, for every variant): ${result.skippedStages
        .map((x) => `stage ${x.index + 1} (${fmtNum(x.connections)} sockets): ${e(x.reason)}`)
        .join('; ')}</p>`
    : '';
  return ext + skipped;
}

function renderClaims(result: ResultFile): string {
  const claims = designClaims(result);
  if (!claims.length) return '';
  const cards = claims
    .map(
      (c) =>
        `<div class="claim" id="claim-${c.id}"><p class="quote">The design note: “${e(c.quote)}”</p><ul class="plain">${c.measured.map((m) => `<li>${e(m)}</li>`).join('')}</ul><p class="note">${e(c.caveat)}</p></div>`,
    )
    .join('\n');
  return `<h3>The design note’s memory claims, against this result</h3><div class="claims">${cards}</div>`;
}

function renderMemory(result: ResultFile, stages: StageGroup[], opts: HtmlOptions): string {
  const tables = `<div class="stages">${stages.map((g) => `<div><h3>${e(stageLabel(g))}</h3>${renderTable(stageTable(g, { ...opts, cpuCount: result.environment.cpuCount }, MEMORY_ROWS))}</div>`).join('\n')}</div>`;
  const note =
    '<p class="note">Peaks over the whole run (the connect burst and the closing of every socket included), except “RSS peak, measured window”: over the fleet’s measured window only (— for a result from before it was kept, or a fleet on other hosts). Medians of the valid runs. “÷ sockets” divides by the sockets reached; “growth” subtracts the RSS the server had before any socket connected, so it is what the sockets cost. ' +
    'The fleet runs on the same machine and its RSS includes the runner, which hosts its coordinator. Kernel TCP memory is the whole machine’s (/proc/net/sockstat): both ends of every loopback socket.</p>';
  return section('memory', 'Memory at each stage', renderClaims(result) + note + tables);
}

/** Each design against the floor, per stage (report/floor.ts); empty when no floor ran. */
function renderFloor(result: ResultFile): string {
  const fs = floorStages(result);
  if (fs.length === 0) return '';
  const blocks = fs.map((st) => {
    const rows = st.rows
      .map(
        (r) =>
          `<tr><td class="strong">${e(r.variant)}</td>${FLOOR_METRICS.map((m) => {
            const f = r[m.key];
            const cls = f.ratio !== null && m.key === 'fanoutP99' ? (f.ratio <= AT_FLOOR_RATIO ? 'good' : '') : '';
            return `<td class="num">${e(fmtUnit(f.value, m.metric.unit))}</td><td class="num ${cls}">${f.ratio === null ? '—' : e(`${fmtNum(f.ratio, 3)}×`)}</td>`;
          }).join('')}</tr>`,
      )
      .join('');
    const floorRow = st.rows[0]
      ? `<tr><td class="muted">${e(st.floor)} (floor)</td>${FLOOR_METRICS.map((m) => `<td class="num muted">${e(fmtUnit(st.rows[0]![m.key].floor, m.metric.unit))}</td><td class="num muted">1×</td>`).join('')}</tr>`
      : '';
    const head = `<thead><tr><th>variant</th>${FLOOR_METRICS.map((m) => `<th class="num">${e(m.label)}</th><th class="num">÷ floor</th>`).join('')}</tr></thead>`;
    return `<div><h3>${e(stageLabel(st))}</h3><p class="note">${e(st.sentence)}</p><div class="tablewrap"><table>${head}<tbody>${rows}${floorRow}</tbody></table></div></div>`;
  });
  const note = `<p class="note">The floor acks every update at once and broadcasts it from RAM through the same front, parser and fan-out, and stores nothing: what the measuring machine itself costs at that stage (same fleet, same load). Medians of the valid runs. A design within ${AT_FLOOR_RATIO}× of the floor on fan-out p99 (green) is limited by the machine, not by its design; when every design is, the stage cannot tell them apart.</p>`;
  return section('floor', 'Against the floor (the machine’s own ceiling)', `${note}<div class="stages">${blocks.join('\n')}</div>`);
}

function renderSteady(stages: StageGroup[]): string {
  const blocks = stages.map((g) => {
    const st = steadyStage(g);
    const win = st.cells.find((c) => c.windowSec !== null);
    const rows = st.cells
      .filter((c) => c.from !== 'none')
      .map((c) =>
        c.rows
          .map((r, i) => {
            const inv = c.from === 'invalid' ? ' invalid' : '';
            const head = i === 0 ? `<td rowspan="${c.rows.length}" class="strong${inv}">${e(c.variant)}${c.from === 'invalid' ? ' ⚠' : ''}</td>` : '';
            const few = !r.enoughSamples;
            const ratioCls = r.drifted ? 'bad' : few ? 'muted' : '';
            const ratioTitle = few
              ? `fewest samples in a window: ${r.minSamples}; a ${r.key.endsWith('999') ? 'p99.9 needs 1,000' : 'p99 needs 100'} to mean more than the window's slowest few`
              : `${r.minSamples} samples or more in each window`;
            const sign = r.deltaMs === null ? '' : r.deltaMs >= 0 ? '+' : '−';
            return `<tr>${head}<td>${e(r.label)}</td><td class="num${inv}">${e(fmtMs(r.whole))}</td><td class="num${inv}">${e(fmtMs(r.first))}</td><td class="num${inv}">${e(fmtMs(r.last))}</td><td class="num ${ratioCls}${inv}" title="${e(ratioTitle)}">${e(fmtRatio(r.ratio))}${few && r.ratio !== null ? ' †' : ''}${r.drifted ? ' ⚠' : ''}</td><td class="num${inv}">${r.deltaMs === null ? '—' : e(sign + fmtMs(Math.abs(r.deltaMs)))}</td></tr>`;
          })
          .join(''),
      )
      .join('\n');
    const head =
      '<thead><tr><th>variant</th><th>metric</th><th class="num">whole</th><th class="num">first</th><th class="num">last</th><th class="num">last ÷ first</th><th class="num">change</th></tr></thead>';
    return `<div><h3>${e(stageLabel(g))}</h3><p class="note">${e(win ? windowText(win) : 'no drift windows recorded')}</p><div class="tablewrap"><table class="steady">${head}<tbody>${rows}</tbody></table></div></div>`;
  });
  const note =
    `<p class="note">Corrected latency (from the scheduled send) of the updates scheduled in the first and in the last part of the measured window: 60 s each, or half the window when it is shorter. Medians of the valid runs (a variant marked ⚠ has only invalid runs here, shown for reference). ` +
    `A drift is flagged (red, and a warning in the verdict) when last ÷ first exceeds ${DRIFT_RATIO}× by more than ${DRIFT_FLOOR_MS} ms. † marks windows with too few samples for the percentile (under ${fmtNum(MIN_SAMPLES.p99)} for p99, ${fmtNum(MIN_SAMPLES.p999)} for p99.9): never flagged.</p>`;
  return section('steady', 'Steady latency: first window against last', `${note}<div class="stages">${blocks.join('\n')}</div>`);
}

function renderEnvironment(result: ResultFile): string {
  const env = result.environment;
  const items: Array<[string, string]> = [
    ['CPU', `${env.cpuCount} × ${env.cpuModel}`],
    ['memory', fmtBytes(env.memTotalBytes)],
    ['OS / kernel', `${env.os} / ${env.kernel}`],
    ['Node', env.node],
    ['SQLite', env.sqlite],
    ['server and fleet', env.pinned ? 'one machine, pinned to separate CPUs (taskset)' : 'one machine, NOT pinned: they share the same cores'],
    ['server Node flags', env.serverNodeFlags.join(' ') || '(none)'],
    ['fleet Node flags', env.fleetNodeFlags.join(' ') || '(none)'],
    ['file descriptors', `soft ${env.fdLimit.soft ?? '?'}, hard ${env.fdLimit.hard ?? '?'}`],
    ['ephemeral ports', env.ephemeralPortRange ? `${env.ephemeralPortRange[0]}–${env.ephemeralPortRange[1]}` : 'unknown'],
    ['host', env.hostname],
    ['git', `${env.git.commit ?? 'unknown'}${env.git.dirty ? ' (dirty)' : ''}`],
    [
      'packages',
      Object.entries(env.packages)
        .map(([k, v]) => `${k}@${v}`)
        .join(', '),
    ],
    ['tool', `${result.tool.name} ${result.tool.version}`],
    ['run', `${result.runId}, ${result.startedAtIso} → ${result.finishedAtIso}`],
  ];
  return `<dl class="env">${items.map(([k, v]) => `<dt>${e(k)}</dt><dd>${e(v)}</dd>`).join('\n')}</dl>`;
}

/** Renders the whole page. */
export function renderHtml(result: ResultFile, opts: HtmlOptions = {}): string {
  const verdict = computeVerdict(result, opts);
  const stages = groupByStage(result);
  const charts = buildCharts(result);
  const multiStage = stages.length > 1;

  const scalingBody = multiStage
    ? `<p class="note">Each point is the median of a variant's valid repeats at one stage; a missing point means no valid run there.</p>${chartGrid(charts.scaling)}`
    : '<p class="note">This scenario has a single stage, so there is no scaling curve: run a scenario with several stages (e.g. 1k → 30k sockets) to see one.</p>';
  const scalingSection = section('scaling', 'Scaling across stages', scalingBody);

  const tables = `<div class="stages">${stages.map((g) => `<div><h3>${e(stageLabel(g))} · ${fmtNum(g.durationSec)} s measured</h3>${renderTable(stageTable(g, { ...opts, cpuCount: result.environment.cpuCount }))}</div>`).join('\n')}</div>`;
  const baseline = stages[0]?.cells[0]?.variant ?? '';
  const tablesNote = `${renderExternalAndSkipped(result)}<p class="note">Values are medians of the valid runs (hover a cell for each repeat). Ratio columns divide by <b>${e(baseline)}</b>; green: that variant is better beyond noise, red: worse. Cells marked ⚠ come only from invalid or errored runs and count for nothing.</p>`;

  const options = charts.selections.map((s) => `<option value="${e(s.key)}"${s.key === charts.defaultSel ? ' selected' : ''}>${e(s.label)}</option>`).join('');
  const selbar = `<div class="selbar" id="selection"><label for="wami-sel"><b>Charts below show:</b></label> <select id="wami-sel">${options}</select><span class="muted">one run per variant at the chosen stage and repeat</span></div>`;

  const allCharts: ChartSpec[] = [
    ...charts.capacity,
    ...charts.scaling,
    ...charts.distribution,
    ...charts.overTime,
    ...charts.errors,
    ...charts.resources,
    ...charts.sqlite,
    ...charts.faults,
  ];
  const data = { defaultSel: charts.defaultSel, charts: allCharts };

  const toc: Array<[string, string]> = [
    ['decision', 'Decision'],
    ['verdict', 'Verdict'],
    ...(result.capacity ? ([['capacity', 'Capacity']] as Array<[string, string]>) : []),
    ...(multiStage ? ([['scaling', 'Scaling']] as Array<[string, string]>) : []),
    ['tables', 'Side by side'],
    ...(floorStages(result).length ? ([['floor', 'Floor']] as Array<[string, string]>) : []),
    ['memory', 'Memory'],
    ['steady', 'Steady latency'],
    ...(charts.faults.length ? ([['faults', 'Faults']] as Array<[string, string]>) : []),
    ['distribution', 'Latency distribution'],
    ['over-time', 'Over time'],
    ['errors', 'Errors'],
    ['resources', 'Server resources'],
    ...(multiStage ? [] : ([['scaling', 'Scaling']] as Array<[string, string]>)),
    ['sqlite', 'SQLite'],
    ['audit', 'Audit'],
    ['environment', 'Environment'],
    ['scenario', 'Scenario'],
  ];
  const title = `wami-bench · ${result.scenario.name} · ${result.runId}`;
  const variants = stages[0]?.cells.map((c) => c.variant) ?? [];
  const sqliteBody = `${chartGrid(charts.sqlite)}<h3>Batches, commits and contention per run</h3>${renderSqlite(result)}`;

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)}</title>
<style>${PAGE_CSS}</style>
</head>
<body>
<main>
<header class="top">
<h1>${e(result.scenario.name)}: ${e(variants.join(' vs '))}</h1>
<div class="meta">run ${e(result.runId)} · ${e(result.startedAtIso)} · ${stages.length} stage${stages.length === 1 ? '' : 's'} · ${result.runs.length} runs · status <b>${e(result.status)}</b> · ${e(result.tool.name)} ${e(result.tool.version)} · commit ${e((result.environment.git.commit ?? 'unknown').slice(0, 12))}${result.environment.git.dirty ? ' (dirty)' : ''}</div>
<nav class="toc">${toc.map(([id, label]) => `<a href="#${id}">${e(label)}</a>`).join('')}</nav>
</header>
${renderDecision(computeDecision(result, verdict))}
${renderBanner(verdict, stages.length)}
${renderCapacity(result, charts.capacity)}
${multiStage ? scalingSection : ''}
${section('tables', 'Side by side, per stage', tablesNote + tables)}
${renderFloor(result)}
${renderMemory(result, stages, opts)}
${renderSteady(stages)}
${renderFaults(result, charts.faults)}
${selbar}
${section('distribution', 'Latency percentile distribution', chartGrid(charts.distribution))}
${section('over-time', 'Latency and throughput over time', chartGrid(charts.overTime))}
${section('errors', 'Errors over time', chartGrid(charts.errors))}
${section('resources', 'Server resources', `<p class="note">${e(scrapeText(result))}</p>${chartGrid(charts.resources)}`)}
${multiStage ? '' : scalingSection}
${section('sqlite', 'SQLite', sqliteBody)}
${section('audit', 'Runs, audit and thresholds', renderAudit(result))}
${section('environment', 'Environment', renderEnvironment(result))}
${section('scenario', 'Resolved scenario', `<p class="note">${e(result.scenario.file ?? '(inline)')} · hash ${e(result.scenario.hash)}</p><pre>${e(compactJson(result.scenario.resolved))}</pre>`)}
<p class="note">Latency percentiles come from HDR histograms (hdr-histogram-js; recorded in microseconds, shown in ms). Generated by ${e(result.tool.name)} ${e(result.tool.version)}; this page fetches nothing from any network.</p>
</main>
<script type="application/json" id="wami-data">${jsonForScript(data)}</script>
<script>${chartJsSource()}</script>
<script>${pageScriptSource()}</script>
</body>
</html>
`;
}
