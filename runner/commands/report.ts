import { dirname, relative, resolve } from 'node:path';
import { REPORT_FORMATS, loadResult, writeReportFiles, type ReportFormat } from '../../report/index.js';
import { creatableDir, parseCommand, positionalError, strFlag, type CommandSpec } from '../args.js';
import { UsageError } from '../../model/errors.js';

const spec: CommandSpec = {
  usage: 'wami-bench report RESULT.json [--format FORMATS] [--out DIR]',
  summary:
    'Turns a result.json into report.html and summary.md beside it. The page is one self-contained file (no network): ' +
    'verdict and warnings, capacity (for a capacity search), scaling curve, side-by-side tables with the server shape, ' +
    "memory at each stage against the design note's claims, steady latency (first window against last), and the per-run charts. " +
    'Exports for CI tools on request: benchmark-gab.json (github-action-benchmark customSmallerIsBetter) and benchmark-bmf.json (Bencher Metric Format).',
  flagHelp: [
    '--format FORMATS   comma-separated: html, md, github-action-benchmark, bencher, or all (default html,md)',
    "--out DIR          directory to write into (default: the result file's directory)",
  ],
  options: { format: { type: 'string' }, out: { type: 'string' } },
  allowPositionals: true,
};

/** Parses --format: a comma-separated list of formats, or "all". */
export function parseFormats(raw: string): ReportFormat[] {
  const parts = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (parts.length === 0) throw new UsageError('--format needs a value');
  const out: ReportFormat[] = [];
  for (const p of parts) {
    if (p === 'all') out.push(...REPORT_FORMATS);
    else if ((REPORT_FORMATS as readonly string[]).includes(p)) out.push(p as ReportFormat);
    else throw new UsageError(`--format: unknown format "${p}" (one of ${REPORT_FORMATS.join(', ')}, all)`);
  }
  return [...new Set(out)];
}

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand(spec, argv);
  if (!p) return 0;
  if (p.positionals.length !== 1) throw positionalError('one result file', p.positionals.length, spec);
  const file = resolve(p.positionals[0] as string);
  const formats = parseFormats(strFlag(p.values, 'format', 'html,md'));
  const result = await loadResult(file);
  const outDir = creatableDir(p.values.out === undefined ? "--out (default: the result's directory)" : '--out', strFlag(p.values, 'out', dirname(file)));
  const written = await writeReportFiles(result, outDir, formats);
  for (const f of formats) {
    const path = written[f];
    if (path) process.stdout.write(`wrote ${relative(process.cwd(), path) || path}\n`);
  }
  return 0;
}
