/**
 * Output of the micro suites: a terminal table, markdown, and the JSON written to
 * results/micro-<id>/ with the environment captured like a run.
 */
import type { Environment } from '../model/result.js';
import { fmtCompact, fmtMs } from '../report/format.js';
import { PLAIN_PREFIX, WRITER_PREFIX, type MicroTaskResult, type TxSplit, type WalCost } from './suites.js';

export const MICRO_SCHEMA_VERSION = 1;

export interface MicroResultFile {
  schemaVersion: typeof MICRO_SCHEMA_VERSION;
  kind: 'micro';
  id: string;
  quick: boolean;
  timeMsPerTask: number;
  environment: Environment;
  tasks: MicroTaskResult[];
  /** WAL pages written per update by each design (counted; present when the sqlite suite ran). */
  wal?: WalCost[];
  /** The per-request transaction taken apart (present when the sqlite suite ran). */
  txSplit?: TxSplit;
  startedAtIso: string;
  finishedAtIso: string;
}

const plural = (u: string): string => (/(s|sh|ch|x)$/.test(u) ? `${u}es` : `${u}s`);

export function rows(tasks: MicroTaskResult[]): string[][] {
  return tasks.map((t) => [
    t.suite,
    t.task,
    fmtCompact(t.opsPerSec),
    `${fmtCompact(t.unitsPerSec)} ${plural(t.unit)}/s`,
    fmtMs(t.meanMs),
    fmtMs(t.p99Ms),
    `±${t.rmePct.toFixed(1)}%`,
    String(t.samples),
  ]);
}

const HEAD = ['suite', 'task', 'ops/s', 'units/s', 'mean', 'p99', 'rme', 'samples'];

export function terminalTable(tasks: MicroTaskResult[]): string {
  const all = [HEAD, ...rows(tasks)];
  const widths = HEAD.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i >= 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [line(HEAD), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(line)].join('\n');
}

/** The writer path against the plain loop at each batch size measured in this run: updates/s of each and writer / plain. */
export function writerRatios(tasks: MicroTaskResult[]): Array<{ size: number; writer: number; plain: number; ratio: number }> {
  const out: Array<{ size: number; writer: number; plain: number; ratio: number }> = [];
  for (const p of tasks) {
    if (p.suite !== 'sqlite' || !p.task.startsWith(PLAIN_PREFIX)) continue;
    const size = p.unitsPerOp;
    const w = tasks.find((t) => t.suite === 'sqlite' && t.task.startsWith(WRITER_PREFIX) && t.unitsPerOp === size);
    if (w && p.unitsPerSec > 0)
      out.push({ size, writer: w.unitsPerSec, plain: p.unitsPerSec, ratio: Math.round((w.unitsPerSec / p.unitsPerSec) * 1000) / 1000 });
  }
  return out;
}

/** "writer path / plain better-sqlite3 at 1000 per transaction: 105k / 99k updates/s = 1.06" lines. */
export function writerRatioLines(tasks: MicroTaskResult[]): string[] {
  return writerRatios(tasks).map(
    (r) =>
      `writer path / plain better-sqlite3 at ${r.size} updates per transaction: ${fmtCompact(r.writer)} / ${fmtCompact(r.plain)} updates/s = ${r.ratio.toFixed(2)}`,
  );
}

/** "per-request: 1 update per transaction: 5.28 WAL pages (21.2 KiB) per update" lines. */
export function walCostLines(wal: WalCost[]): string[] {
  return wal.map(
    (w) => `${w.what}: ${w.pagesPerUpdate} WAL pages (${(w.walBytesPerUpdate / 1024).toFixed(2)} KiB) written per update, counted over ${w.updates} updates`,
  );
}

/** "per-request transaction: BEGIN 7 µs, statements 6 µs, COMMIT 28 µs p50 …" */
export function txSplitLine(t: TxSplit): string {
  return (
    `per-request transaction, one connection: BEGIN IMMEDIATE ${fmtMs(t.beginMeanUs / 1000)}, statements ${fmtMs(t.statementsMeanUs / 1000)}, ` +
    `COMMIT ${fmtMs(t.commitMeanUs / 1000)} (p50 ${fmtMs(t.commitP50Us / 1000)}, p99 ${fmtMs(t.commitP99Us / 1000)}) on average; COMMIT is ${(t.commitShare * 100).toFixed(1)} % of the time, ` +
    `and the ${t.slowCommits} of ${t.transactions} commits over 1 ms (they ran the automatic checkpoint) ${(t.slowCommitShare * 100).toFixed(1)} %`
  );
}

export function markdown(f: MicroResultFile): string {
  const e = f.environment;
  return [
    `## wami-bench micro · ${f.id}${f.quick ? ' (quick)' : ''}`,
    '',
    `${e.cpuCount} × ${e.cpuModel} · Node ${e.node} · SQLite ${e.sqlite} · ${e.os} · commit \`${(e.git.commit ?? 'unknown').slice(0, 12)}\`${e.git.dirty ? ' (dirty)' : ''} · ${f.timeMsPerTask} ms per task`,
    '',
    `| ${HEAD.join(' | ')} |`,
    `|${HEAD.map((_, i) => (i >= 2 ? '--:' : ':--')).join('|')}|`,
    ...rows(f.tasks).map((r) => `| ${r.join(' | ')} |`),
    '',
    ...writerRatioLines(f.tasks).map((l) => `- ${l}`),
    ...walCostLines(f.wal ?? []).map((l) => `- ${l}`),
    ...(f.txSplit ? [`- ${txSplitLine(f.txSplit)}`] : []),
    '',
    '<sub>ops/s: iterations of the task per second; units/s: updates, frames, pushes or decisions per second (ops/s × units per op). Noisy shared 2-core machines: compare ratios within one run.</sub>',
    '',
  ].join('\n');
}
