/**
 * The report's entry points: turn a result.json into report.html and summary.md (and, on request,
 * the CI exports) beside it. `wami-bench run` calls writeReport at its end; `wami-bench report`
 * calls writeReportFiles with the formats asked for.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { ResultFile } from '../model/result.js';
import { toBencherBmf, toGithubActionBenchmark } from './exports.js';
import { renderHtml } from './html.js';
import { loadResult } from './load.js';
import { renderMarkdown } from './markdown.js';

export { loadResult, validateResult, ResultLoadError } from './load.js';
export { renderHtml, chartJsSource } from './html.js';
export { renderMarkdown } from './markdown.js';
export { computeVerdict } from './verdict.js';
export { compareResults, environmentDifferences } from './compare.js';
export { compareMarkdown, compareHtml } from './compare-render.js';
export { toBencherBmf, toGithubActionBenchmark } from './exports.js';
export { designClaims } from './memory.js';
export { steadyStage, driftWarnings } from './steady.js';
export { capacityRows, failureMode, writeScalability, type ScalabilityRow } from './capacity.js';
export { contentionCurve, type ContentionCurve, type ContentionPoint } from './contention.js';

export const REPORT_FORMATS = ['html', 'md', 'github-action-benchmark', 'bencher'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** File names written beside the result. */
export const REPORT_FILES: Record<ReportFormat, string> = {
  html: 'report.html',
  md: 'summary.md',
  'github-action-benchmark': 'benchmark-gab.json',
  bencher: 'benchmark-bmf.json',
};

export interface ReportOptions {
  /** Where to write; default: the result file's directory. */
  outDir?: string;
  /** Single-run noise band for winners and ratio colours; default 0.05. */
  noiseBand?: number;
  /** Bootstrap seed; default 0x5eed. */
  seed?: number;
}

export interface WriteReportOptions extends ReportOptions {
  /** Export formats to write as well as report.html and summary.md; default none. */
  exports?: Array<'github-action-benchmark' | 'bencher'>;
}

/** Paths written, by format. */
export type WrittenFiles = Partial<Record<ReportFormat, string>>;

/** Writes the given formats of an already loaded result into `outDir`; returns the paths. */
export async function writeReportFiles(result: ResultFile, outDir: string, formats: readonly ReportFormat[], opts: ReportOptions = {}): Promise<WrittenFiles> {
  await mkdir(outDir, { recursive: true });
  const out: WrittenFiles = {};
  for (const f of new Set(formats)) {
    const file = join(outDir, REPORT_FILES[f]);
    let text: string;
    switch (f) {
      case 'html':
        text = renderHtml(result, opts);
        break;
      case 'md':
        text = renderMarkdown(result, { ...opts, htmlName: REPORT_FILES.html });
        break;
      case 'github-action-benchmark':
        text = `${JSON.stringify(toGithubActionBenchmark(result), null, 2)}\n`;
        break;
      case 'bencher':
        text = `${JSON.stringify(toBencherBmf(result), null, 2)}\n`;
        break;
    }
    await writeFile(file, text);
    out[f] = file;
  }
  return out;
}

/**
 * Reads and checks `resultPath`, then writes report.html and summary.md beside it (or into
 * opts.outDir), plus any exports asked for. Throws ResultLoadError for a missing or invalid file.
 */
export async function writeReport(resultPath: string, opts: WriteReportOptions = {}): Promise<{ html: string; md: string } & WrittenFiles> {
  const result = await loadResult(resultPath);
  const outDir = resolve(opts.outDir ?? dirname(resultPath));
  const files = await writeReportFiles(result, outDir, ['html', 'md', ...(opts.exports ?? [])], opts);
  return { ...files, html: files.html as string, md: files.md as string };
}
