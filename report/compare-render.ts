/** compare.md and compare.html: the comparison as a table, regressions first in the headline. */
import type { Comparison, CompareRow } from './compare.js';
import { escapeHtml, fmtInterval, fmtNum, fmtRatio, fmtUnit, mdCell } from './format.js';
import { PAGE_CSS } from './style.js';

const MARK: Record<CompareRow['verdict'], string> = {
  regressed: '🔻 regressed',
  improved: '✅ improved',
  'within noise': 'within noise',
  inconclusive: '❔ inconclusive',
};

function headline(c: Comparison): string {
  const pct = `${fmtNum(c.maxRegression * 100)}%`;
  if (c.regressions.length) return `${c.regressions.length} regression${c.regressions.length === 1 ? '' : 's'} beyond ${pct} and outside the noise`;
  if (c.counts.inconclusive) return `No regression beyond ${pct} and outside the noise; ${c.counts.inconclusive} inconclusive`;
  return `No regression beyond ${pct}`;
}

function counts(c: Comparison): string {
  return `${c.counts.regressed} regressed · ${c.counts.improved} improved · ${c.counts['within noise']} within noise · ${c.counts.inconclusive} inconclusive`;
}

/** What would settle the inconclusive changes, or null when there are none past the bound. */
export function decideHint(c: Comparison): string | null {
  if (c.repeatsNeeded === null) return null;
  const n = c.rows.filter((r) => r.repeatsNeeded !== null).length;
  return `${n} change${n === 1 ? '' : 's'} past the ${fmtNum(c.maxRegression * 100)}% bound cannot be told from noise with these runs: about ${c.repeatsNeeded} runs per side would decide ${n === 1 ? 'it' : 'them'} (the scenario's \`repeats\`, or \`wami-bench run … --repeats ${c.repeatsNeeded}\` on both sides).`;
}

const cellValue = (r: CompareRow, s: 'base' | 'head') => {
  const x = r[s];
  if (!x) return 'missing';
  if (x.median === null) return x.valid === 0 ? `${x.total} invalid` : '—';
  return fmtUnit(x.median, r.metric.unit) + (x.values.length > 1 ? ` (n=${x.values.length})` : '');
};

const RULE = (c: Comparison) =>
  `A regression counts when HEAD/BASE exceeds 1 + ${fmtNum(c.maxRegression * 100)}% and, with repeats, the 95% bootstrap interval of the ratio lies wholly above 1; with one run per side it must also exceed the metric's noise band (how far two runs of the same commit drift apart: report/README.md), else it is inconclusive. Changes under an absolute floor (1 ms, 512 B, 0.5 s CPU, 5 errors) never count. Invalid or errored runs make a cell inconclusive.`;

/** compare.md */
export function compareMarkdown(c: Comparison, forced = false): string {
  const out: string[] = [];
  out.push(`## wami-bench compare: ${headline(c)}`);
  out.push('');
  out.push(
    `BASE \`${mdCell(c.base.runId)}\` (${mdCell(c.base.scenario)}, commit \`${(c.base.commit ?? 'unknown').slice(0, 12)}\`) → HEAD \`${mdCell(c.head.runId)}\` (${mdCell(c.head.scenario)}, commit \`${(c.head.commit ?? 'unknown').slice(0, 12)}\`)`,
  );
  out.push('');
  out.push(counts(c));
  out.push('');
  if (c.refusals.length) out.push(`> ⚠ Not comparable (${forced ? 'compared anyway with --force' : 'refused'}): ${c.refusals.map(mdCell).join('; ')}`, '');
  for (const n of c.notes) out.push(`> ⚠ ${mdCell(n)}`, '');
  const hint = decideHint(c);
  if (hint) out.push(`> ❔ ${hint}`, '');
  out.push('| variant | stage | metric | BASE | HEAD | HEAD/BASE | 95% CI | verdict | note |');
  out.push('|:--|--:|:--|--:|--:|--:|--:|:--|:--|');
  const order = (r: CompareRow) => (r.verdict === 'regressed' ? 0 : 1);
  const rows = [...c.rows].sort((a, b) => order(a) - order(b));
  for (const r of rows) {
    const verdict = r.verdict === 'regressed' ? `**${MARK[r.verdict]}**` : MARK[r.verdict];
    out.push(
      `| ${mdCell(r.variant)} | ${fmtNum(r.stage.connections)} | ${mdCell(r.metric.label)} | ${mdCell(cellValue(r, 'base'))} | ${mdCell(cellValue(r, 'head'))} | ${fmtRatio(r.ratio)} | ${fmtInterval(r.interval) || '—'} | ${verdict} | ${mdCell(r.note)} |`,
    );
  }
  out.push('');
  out.push(`<sub>${RULE(c)}</sub>`);
  return `${out.join('\n')}\n`;
}

/** compare.html: the same table as a standalone page (no scripts). */
export function compareHtml(c: Comparison, forced = false): string {
  const e = escapeHtml;
  const rows = c.rows
    .map((r) => {
      const cls = r.verdict === 'regressed' ? 'bad' : r.verdict === 'improved' ? 'good' : r.verdict === 'inconclusive' ? 'invalid' : '';
      return `<tr><td>${e(r.variant)}</td><td class="num">${fmtNum(r.stage.connections)}</td><td>${e(r.metric.label)}</td><td class="num">${e(cellValue(r, 'base'))}</td><td class="num">${e(cellValue(r, 'head'))}</td><td class="num">${e(fmtRatio(r.ratio))}</td><td class="num">${e(fmtInterval(r.interval) || '—')}</td><td class="${cls}">${e(r.verdict)}</td><td class="muted">${e(r.note)}</td></tr>`;
    })
    .join('\n');
  const hint = decideHint(c);
  const warn = [
    ...(c.refusals.length ? [`Not comparable (${forced ? 'compared anyway with --force' : 'refused'}): ${c.refusals.join('; ')}`] : []),
    ...c.notes,
    ...(hint ? [hint.replace(/`/g, '')] : []),
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>wami-bench compare · ${e(c.base.runId)} → ${e(c.head.runId)}</title><style>${PAGE_CSS}</style></head>
<body><main>
<header class="top"><h1>Compare: ${e(headline(c))}</h1>
<div class="meta">BASE ${e(c.base.runId)} (${e(c.base.scenario)}, commit ${e((c.base.commit ?? 'unknown').slice(0, 12))}) → HEAD ${e(c.head.runId)} (${e(c.head.scenario)}, commit ${e((c.head.commit ?? 'unknown').slice(0, 12))})</div></header>
<section class="banner${c.regressions.length ? ' has-errors' : ''}"><p><b>${e(counts(c))}</b></p>${warn.length ? `<div class="warnings"><ul>${warn.map((w) => `<li class="warn">${e(w)}</li>`).join('')}</ul></div>` : ''}<p class="note">${e(RULE(c))}</p></section>
<div class="tablewrap"><table><thead><tr><th>variant</th><th class="num">sockets</th><th>metric</th><th class="num">BASE</th><th class="num">HEAD</th><th class="num">HEAD/BASE</th><th class="num">95% CI</th><th>verdict</th><th>note</th></tr></thead>
<tbody>${rows}</tbody></table></div>
</main></body></html>
`;
}
