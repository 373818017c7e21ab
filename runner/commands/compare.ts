import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { compareHtml, compareMarkdown, compareResults, loadResult } from '../../report/index.js';
import { parseCommand, strFlag, type CommandSpec } from '../args.js';
import { UsageError } from '../../model/errors.js';

const spec: CommandSpec = {
  usage: 'wami-bench compare BASE.json HEAD.json [--max-regression 10%] [--force] [--out DIR]',
  summary:
    'Compares HEAD against BASE per variant, stage and metric (fan-out and ack p99/p50, RAM per socket, server CPU, errors): ' +
    'the ratio HEAD/BASE, a 95% bootstrap interval when there are repeats, and a verdict (improved, regressed, within noise, inconclusive). ' +
    'Writes compare.md and compare.html and prints the markdown. Exits 3 when a metric regressed beyond the bound and outside the noise; ' +
    'refuses (exit 2) results from different CPU models, core counts or Node majors unless --force.',
  flagHelp: [
    '--max-regression B  tolerated slowdown, "10%" or a fraction "0.1" (default 10%)',
    '--force             compare even when the environments differ',
    "--out DIR           where to write compare.md and compare.html (default: HEAD's directory)",
  ],
  options: { 'max-regression': { type: 'string' }, force: { type: 'boolean' }, out: { type: 'string' } },
  allowPositionals: true,
};

/** "10%" -> 0.1, "0.1" -> 0.1; a bare number above 1 is refused as ambiguous. */
export function parseBound(raw: string): number {
  const s = raw.trim();
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(s);
  const n = pct ? Number(pct[1]) / 100 : /^\d*\.?\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isFinite(n)) throw new UsageError(`--max-regression must be a percentage like 10% or a fraction like 0.1, got "${raw}"`);
  if (!pct && n > 1) throw new UsageError(`--max-regression ${raw} is ambiguous: write ${raw}% or ${n / 100}`);
  if (n <= 0 || n > 10) throw new UsageError(`--max-regression must be above 0% and at most 1000%, got "${raw}"`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand(spec, argv);
  if (!p) return 0;
  if (p.positionals.length !== 2) throw new UsageError(`expected BASE.json and HEAD.json, got ${p.positionals.length} file(s)\n\nUsage: ${spec.usage}`);
  const [baseFile, headFile] = p.positionals.map((f) => resolve(f)) as [string, string];
  const maxRegression = parseBound(strFlag(p.values, 'max-regression', '10%'));
  const force = p.values.force === true;
  const outDir = resolve(strFlag(p.values, 'out', dirname(headFile)));
  const [base, head] = [await loadResult(baseFile), await loadResult(headFile)];
  const c = compareResults(base, head, { maxRegression });
  if (c.envDifferences.length && !force) {
    throw new UsageError(`refusing to compare results from different environments (use --force to compare anyway):\n  ${c.envDifferences.join('\n  ')}`);
  }
  const md = compareMarkdown(c, force);
  await mkdir(outDir, { recursive: true });
  const mdFile = join(outDir, 'compare.md');
  const htmlFile = join(outDir, 'compare.html');
  await writeFile(mdFile, md);
  await writeFile(htmlFile, compareHtml(c, force));
  process.stdout.write(md);
  process.stdout.write(`\nwrote ${relative(process.cwd(), mdFile) || mdFile}, ${relative(process.cwd(), htmlFile) || htmlFile}\n`);
  return c.regressions.length > 0 ? 3 : 0;
}
