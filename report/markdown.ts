/**
 * summary.md: the decision first (which design, for what, and which figure decided), then the
 * verdict, the warnings and the side-by-side tables, for a CI job summary or a pull request comment. Always under 64 KB: when a large result would exceed it, the warnings are capped
 * and the tables keep only the gate metrics, and as a last resort the text is cut with a note.
 */
import type { ResultFile } from '../model/result.js';
import { fmtNum, mdCell } from './format.js';
import { GATE_METRICS } from './metrics.js';
import { groupByStage, stageLabel } from './runs.js';
import { stageTable, type StageTable } from './table.js';
import { acrossStages, computeVerdict } from './verdict.js';
import { axisUnitText, capacityRows, searchText, sloText, writeScalability } from './capacity.js';
import { computeDecision, type Decision } from './decision.js';
import { faultBlocks } from './faults.js';
import { designClaims } from './memory.js';
import { externalCommands, externalCommandText } from './external.js';

/** Hard ceiling of summary.md in bytes (GitHub comments take 65,536 characters). */
export const SUMMARY_MAX_BYTES = 60_000;

export interface MarkdownOptions {
  noiseBand?: number;
  seed?: number;
  /** Name of the HTML report to point to, e.g. "report.html". */
  htmlName?: string;
}

const GATE_IDS = new Set(['runs', ...GATE_METRICS.map((m) => m.id)]);

function mdTable(t: StageTable, compact: boolean): string {
  const lines = [`| ${t.header.map(mdCell).join(' | ')} |`, `|${t.header.map((_, i) => (i === 0 ? ':--' : '--:')).join('|')}|`];
  for (const r of t.rows) {
    if ('heading' in r) {
      if (!compact) lines.push(`| **${mdCell(r.heading)}** |${' |'.repeat(t.header.length - 1)}`);
      continue;
    }
    if (compact && !GATE_IDS.has(r.metricId)) continue;
    const cells = r.cells.map((c) => {
      const text = mdCell(c.text);
      if (c.cls === 'good') return `${text} ✅`;
      if (c.cls === 'bad') return `${text} 🔻`;
      return text;
    });
    lines.push(`| ${mdCell(r.label.replace(/^\s+/, '↳ '))} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

function render(result: ResultFile, opts: MarkdownOptions, compact: boolean): string {
  const v = computeVerdict(result, opts);
  const stages = groupByStage(result);
  const variants = stages[0]?.cells.map((c) => c.variant) ?? [];
  const out: string[] = [];
  out.push(`## wami-bench · ${mdCell(result.scenario.name)} · ${mdCell(result.runId)}`);
  out.push('');
  out.push(
    `**${variants.map(mdCell).join(' vs ')}** · ${stages.length} stage${stages.length === 1 ? '' : 's'} · ${result.runs.length} runs · status **${result.status}** · commit \`${(result.environment.git.commit ?? 'unknown').slice(0, 12)}\`${result.environment.git.dirty ? ' (dirty)' : ''}`,
  );
  out.push('');
  for (const c of externalCommands(result))
    out.push(`External server ${mdCell(c.variant)}: \`${mdCell(externalCommandText(c).slice(c.variant.length + 2))}\`  `);
  for (const x of result.skippedStages ?? [])
    out.push(`⚠ Skipped by the preflight (optional stage ${x.index + 1}, ${fmtNum(x.connections)} sockets, every variant): ${mdCell(x.reason)}  `);
  out.push('');
  out.push(...decisionMarkdown(computeDecision(result, v), compact));
  out.push(`> ${v.caveat}`);
  out.push('');
  if (v.headline) {
    out.push(`### Verdict at ${fmtNum(v.headline.connections)} sockets${stages.length > 1 ? ' (largest comparable stage)' : ''}`);
    out.push('');
    const multi = stages.length > 1;
    out.push(`| criterion | wins | figures (median of valid runs) |${multi ? ' across stages |' : ''}`);
    out.push(`|:--|:--|:--|${multi ? ':--|' : ''}`);
    for (const c of v.criteria) {
      const who = c.winner ? `**${mdCell(c.winner)}**` : c.tied.length ? `tie (${mdCell(c.tied.join(', '))})` : '—';
      out.push(`| ${c.label} | ${who} | ${mdCell(c.text)} |${multi ? ` ${mdCell(acrossStages(v, c.id))} |` : ''}`);
    }
  } else {
    out.push('### Verdict: no comparison possible');
    out.push('');
    out.push('Fewer than two variants have valid runs at any stage.');
  }
  out.push('');
  if (result.capacity) {
    const c = result.capacity;
    out.push(`### Capacity (SLO \`${mdCell(sloText(c))}\`)`);
    out.push('');
    out.push(`| variant | largest passing (${axisUnitText(c)}) | stopped at | why |`);
    out.push('|:--|--:|--:|:--|');
    for (const r of capacityRows(c)) out.push(`| ${mdCell(r.variant)} | **${mdCell(r.largest)}** | ${mdCell(r.stoppedAt)} | ${mdCell(r.why)} |`);
    out.push('');
    out.push(`<sub>Searched ${mdCell(searchText(c))}. ≥ marks a lower bound: the search stopped for a reason other than the server.</sub>`);
    out.push('');
    const ws = writeScalability(result);
    if (ws.length) {
      for (const r of ws) out.push(`- ${r.sentence}`);
      if (c.fleetCeiling) out.push(`- The fleet's own ceiling: ${c.fleetCeiling.detail}.`);
      out.push('');
    }
  }
  if (v.warnings.length) {
    const cap = compact ? 20 : 60;
    out.push(`### Warnings (${v.warnings.length})`);
    out.push('');
    for (const w of v.warnings.slice(0, cap)) out.push(`- ${w.severity === 'error' ? '✖' : '⚠'} ${w.message.replace(/\r?\n/g, ' ')}`);
    if (v.warnings.length > cap) out.push(`- … and ${v.warnings.length - cap} more: see the HTML report.`);
  } else {
    out.push('✅ No warnings: every run valid, every audit passed, every threshold met, every broadcast delivered.');
  }
  out.push('');
  const faults = faultBlocks(result);
  if (faults.length) {
    out.push('### Faults: what each design loses');
    out.push('');
    for (const b of faults) {
      out.push(`**${mdCell(b.title)}**`);
      out.push('');
      for (const w of b.words) out.push(`- ${w}`);
      out.push('');
    }
  }
  const claims = compact ? [] : designClaims(result);
  if (claims.length) {
    out.push('### The design note’s memory claims, against this result');
    out.push('');
    out.push('| the design note says | this result measured |');
    out.push('|:--|:--|');
    for (const c of claims) out.push(`| “${mdCell(c.quote)}” | ${c.measured.map(mdCell).join('<br>')} |`);
    out.push('');
    out.push(
      '<sub>Extrapolations to 30,000 sockets are straight lines from the largest stage, not measurements. The bytes of a queued update are not measured. Kernel TCP memory is the whole machine’s (both ends of each loopback socket). How to read each figure: report.html, “Memory at each stage”.</sub>',
    );
    out.push('');
  }
  for (const g of stages) {
    out.push(`### ${stageLabel(g)} · ${fmtNum(g.durationSec)} s measured`);
    out.push('');
    out.push(mdTable(stageTable(g, { ...opts, cpuCount: result.environment.cpuCount }), compact));
    out.push('');
  }
  const base = variants[0] ?? '';
  out.push(
    `<sub>Medians of valid runs; ratio columns divide by ${mdCell(base)}, with a 95% bootstrap interval when there are repeats. ✅ better / 🔻 worse beyond noise. ⚠ marks figures from invalid or errored runs, which count for nothing.${compact ? ' Tables trimmed to the gate metrics to fit.' : ''}${opts.htmlName ? ` Charts and the full tables: ${mdCell(opts.htmlName)}.` : ''}</sub>`,
  );
  return `${out.join('\n')}\n`;
}

/** The decision section of summary.md (lines, ending with a blank line). */
export function decisionMarkdown(d: Decision, compact = false): string[] {
  const out: string[] = [];
  out.push(`### Decision${d.stage ? ` at ${fmtNum(d.stage.connections)} sockets` : ''}`);
  out.push('');
  for (const h of d.headline) out.push(`- ✖ **${mdCell(h)}**`);
  if (d.headline.length) out.push('');
  out.push(d.decidedBy);
  out.push('');
  for (const p of d.designs) out.push(`- **${mdCell(p.head)}**: ${compact ? p.body.split('. ').slice(0, 2).join('. ') : p.body}`);
  if (d.designs.length) out.push('');
  if (d.otherLoads.length) {
    out.push(`**At other loads.** ${d.otherLoads.join(' ')}`);
    out.push('');
  }
  for (const s of d.sections) out.push(`- ${s.text}`);
  if (d.sections.length) out.push('');
  return out;
}

/** Renders summary.md, trimmed to stay under SUMMARY_MAX_BYTES. */
export function renderMarkdown(result: ResultFile, opts: MarkdownOptions = {}): string {
  let md = render(result, opts, false);
  if (Buffer.byteLength(md) <= SUMMARY_MAX_BYTES) return md;
  md = render(result, opts, true);
  if (Buffer.byteLength(md) <= SUMMARY_MAX_BYTES) return md;
  const note = '\n\n… (cut to fit 64 KB; see the HTML report)\n';
  let cut = md.slice(0, SUMMARY_MAX_BYTES - 200);
  while (Buffer.byteLength(cut) > SUMMARY_MAX_BYTES - 200) cut = cut.slice(0, -100);
  return cut.slice(0, cut.lastIndexOf('\n')) + note;
}
