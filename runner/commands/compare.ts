import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { compareHtml, compareMarkdown, compareResults, loadResult } from '../../report/index.js';
import { bandFractions, measureNoise, PROJECT_NOISE_BANDS, type NoiseBands, type NoiseFractions } from '../../report/noise.js';
import { fmtNum } from '../../report/format.js';
import { creatableDir, parseCommand, positionalError, strFlag, type CommandSpec } from '../args.js';
import { fsProblem, UsageError } from '../../model/errors.js';

const spec: CommandSpec = {
  usage:
    'wami-bench compare BASE.json HEAD.json [--max-regression 10%] [--noise BANDS.json] [--force] [--out DIR] | compare --measure-noise RESULT.json… [--out BANDS.json]',
  summary:
    'Compares HEAD against BASE per variant, stage and metric (fan-out and ack p99/p50, RAM per socket, server CPU, errors): ' +
    'the ratio HEAD/BASE, a 95% bootstrap interval when there are repeats, and a verdict (improved, regressed, within noise, inconclusive). ' +
    "With one run per side a change must also be beyond the metric's noise band (how far two runs of the same commit drift apart; " +
    'measured by --measure-noise from a result with repeats), else it is inconclusive and the output says how many repeats would decide it. ' +
    'Writes compare.md and compare.html and prints the markdown.\n' +
    'Refuses (exit 2) results of different scenarios, stages, variants or machines (host, CPU, cores, memory, Node major) unless --force.\n' +
    '--measure-noise RESULT.json… prints the noise band of every gate metric from the repeats in one or more results (and writes them as JSON with --out), ' +
    'e.g. after "wami-bench run smoke --repeats 5".\n' +
    'Exit codes: 0 no regression (inconclusive cells do not fail), 3 a metric regressed beyond the bound and the noise, 2 bad input or not comparable.',
  flagHelp: [
    '--max-regression B   tolerated slowdown, "10%" or a fraction "0.1" (default 10%)',
    "--noise FILE         noise bands measured on this machine (compare --measure-noise … --out FILE) instead of the project's",
    '--force              compare even when the scenarios, stages, variants or machines differ',
    "--out DIR            where to write compare.md and compare.html (default: HEAD's directory); with --measure-noise, the JSON file",
    '--measure-noise      measure the noise bands from the repeats of one result',
  ],
  options: {
    'max-regression': { type: 'string' },
    force: { type: 'boolean' },
    out: { type: 'string' },
    noise: { type: 'string' },
    'measure-noise': { type: 'boolean' },
  },
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

/** The noise bands as a table for the terminal. */
export function noiseTable(n: NoiseBands): string {
  const all = [
    ...Object.values(n.bands).map((b) => ['all', b] as const),
    ...Object.entries(n.byKind).flatMap(([k, bands]) => Object.values(bands).map((b) => [k, b] as const)),
  ];
  const rows = all.map(([k, b]) => [
    k,
    b.label,
    b.band === null ? '—' : `±${fmtNum(b.band * 100, 2)}%`,
    b.sdLog === null ? '—' : fmtNum(b.sdLog, 3),
    b.spread === null ? '—' : `${fmtNum(b.spread * 100, 2)}%`,
    `${b.runs} runs in ${b.cells} cell${b.cells === 1 ? '' : 's'}`,
  ]);
  const header = ['variants', 'metric', 'band (2 runs, 95%)', 'sd of ln', 'max/min − 1', 'from'];
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(w[i]!)).join('  ');
  return [
    ...n.sources.map(
      (s) => `noise bands from ${s.runId} (${s.scenario}, commit ${(s.commit ?? 'unknown').slice(0, 12)}, ${s.cpuCount} × ${s.cpuModel}, host ${s.hostname})`,
    ),
    line(header),
    ...rows.map(line),
  ].join('\n');
}

/** Reads noise bands written by --measure-noise --out. */
async function readNoise(file: string): Promise<NoiseFractions> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`--noise ${fsProblem(e, file, 'read')}`);
  }
  try {
    const n = JSON.parse(text) as NoiseBands;
    if (typeof n !== 'object' || n === null || typeof n.bands !== 'object') throw new Error('no "bands" object');
    return bandFractions(n);
  } catch (e) {
    throw new UsageError(`--noise ${file}: not a file written by "wami-bench compare --measure-noise … --out FILE" (${(e as Error).message})`);
  }
}

async function measure(positionals: string[], out: string | undefined): Promise<number> {
  if (positionals.length === 0) throw positionalError('one or more RESULT.json with repeats', 0, spec);
  const results = [];
  for (const f of positionals) results.push(await loadResult(resolve(f)));
  const n = measureNoise(results);
  if (Object.values(n.bands).every((b) => b.band === null))
    throw new UsageError(
      `${positionals.join(', ')} ${positionals.length === 1 ? 'has' : 'have'} no repeats to measure noise from: run a scenario with --repeats 3 or more`,
    );
  process.stdout.write(`${noiseTable(n)}\n`);
  if (out) {
    const file = resolve(out);
    try {
      await writeFile(file, `${JSON.stringify(n, null, 1)}\n`);
    } catch (e) {
      throw new UsageError(`--out ${fsProblem(e, file, 'write')}`);
    }
    process.stdout.write(`wrote ${file} (use it with: wami-bench compare BASE.json HEAD.json --noise ${file})\n`);
  }
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand(spec, argv);
  if (!p) return 0;
  if (p.values['measure-noise'] === true) return measure(p.positionals, typeof p.values.out === 'string' ? p.values.out : undefined);
  if (p.positionals.length !== 2) throw positionalError('BASE.json and HEAD.json', p.positionals.length, spec);
  const [baseFile, headFile] = p.positionals.map((f) => resolve(f)) as [string, string];
  const maxRegression = parseBound(strFlag(p.values, 'max-regression', '10%'));
  const force = p.values.force === true;
  const noise = typeof p.values.noise === 'string' ? await readNoise(resolve(p.values.noise)) : PROJECT_NOISE_BANDS;
  const [base, head] = [await loadResult(baseFile), await loadResult(headFile)];
  const outDir = creatableDir(p.values.out === undefined ? "--out (default: HEAD's directory)" : '--out', strFlag(p.values, 'out', dirname(headFile)));
  const c = compareResults(base, head, { maxRegression, noise });
  if (c.refusals.length && !force) throw new UsageError(`refusing to compare: ${c.refusals.join('; ')} (--force compares anyway)`);
  const md = compareMarkdown(c, force);
  const mdFile = join(outDir, 'compare.md');
  const htmlFile = join(outDir, 'compare.html');
  try {
    await mkdir(outDir, { recursive: true });
    await writeFile(mdFile, md);
    await writeFile(htmlFile, compareHtml(c, force));
  } catch (e) {
    throw new UsageError(`--out ${fsProblem(e, outDir, 'write')}`);
  }
  process.stdout.write(md);
  process.stdout.write(`\nwrote ${relative(process.cwd(), mdFile) || mdFile}, ${relative(process.cwd(), htmlFile) || htmlFile}\n`);
  return c.regressions.length > 0 ? 3 : 0;
}
