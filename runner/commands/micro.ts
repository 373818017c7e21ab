import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { markdown, MICRO_SCHEMA_VERSION, terminalTable, txSplitLine, walCostLines, writerRatioLines, type MicroResultFile } from '../../micro/output.js';
import { runSuites, SUITE_NAMES, txSplit, walCost } from '../../micro/suites.js';
import { creatableDir, parseCommand, strFlag, type CommandSpec } from '../args.js';
import { UsageError } from '../../model/errors.js';
import { captureEnvironment } from '../environment.js';
import { makeRunId } from '../run.js';

const spec: CommandSpec = {
  usage: 'wami-bench micro [--quick] [--suites a,b] [--out DIR]',
  summary:
    "tinybench suites of the parts in isolation, with the servers' own code: the batched queue, protocol parse and validate, " +
    'broadcast serialization once vs per socket, the fan-out of frames to real loopback sockets, SQLite UPDATE+INSERT at 1, 10, 100, ' +
    '1,000 and 10,000 updates per transaction (each on a fresh database) through the batched writer and, at 100, 1,000 and 10,000, as a plain ' +
    'better-sqlite3 loop of the same statements on the same rows (the ratio is printed), against one transaction per update, and the retry policy. Prints a table; writes micro.json and micro.md under ' +
    `results/micro-<id>/. Suites: ${SUITE_NAMES.join(', ')}.`,
  flagHelp: [
    '--quick          100 ms per task instead of 1 s (a smoke check, not a measurement)',
    '--suites a,b     run only these suites',
    '--out DIR        output directory (default results/micro-<id>)',
  ],
  options: { quick: { type: 'boolean' }, suites: { type: 'string' }, out: { type: 'string' } },
};

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand(spec, argv);
  if (!p) return 0;
  const quick = p.values.quick === true;
  let suites: string[] | undefined;
  if (p.values.suites !== undefined) {
    suites = strFlag(p.values, 'suites', undefined)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const unknown = suites.filter((s) => !SUITE_NAMES.includes(s));
    if (unknown.length) throw new UsageError(`--suites: unknown suite(s) ${unknown.join(', ')} (known: ${SUITE_NAMES.join(', ')})`);
  }
  const started = new Date();
  const id = makeRunId('micro', started).replace(/^micro-/, '');
  const outDir = creatableDir('--out', typeof p.values.out === 'string' ? p.values.out : join('results', `micro-${id}`));
  const timeMs = quick ? 100 : 1000;
  const environment = captureEnvironment({ serverNodeFlags: process.execArgv, fleetNodeFlags: [], pinned: false });
  process.stderr.write(`wami-bench micro: ${timeMs} ms per task${quick ? ' (quick)' : ''}\n`);
  const tasks = await runSuites({ timeMs, warmupMs: quick ? 20 : 200, minIterations: quick ? 4 : 64, ...(suites ? { suites } : {}) }, (r) =>
    process.stderr.write(`  ${r.suite} / ${r.task}: ${r.unitsPerSec.toFixed(0)} ${r.unit} per s\n`),
  );
  const sqlite = !suites || suites.includes('sqlite');
  const wal = sqlite ? walCost() : undefined;
  const split = sqlite ? txSplit(quick ? 2000 : 6000) : undefined;
  const file: MicroResultFile = {
    schemaVersion: MICRO_SCHEMA_VERSION,
    kind: 'micro',
    id,
    quick,
    timeMsPerTask: timeMs,
    environment,
    tasks,
    ...(wal ? { wal } : {}),
    ...(split ? { txSplit: split } : {}),
    startedAtIso: started.toISOString(),
    finishedAtIso: new Date().toISOString(),
  };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'micro.json'), `${JSON.stringify(file, null, 1)}\n`);
  writeFileSync(join(outDir, 'micro.md'), markdown(file));
  process.stdout.write(`${terminalTable(tasks)}\n`);
  const ratios = writerRatioLines(tasks);
  if (ratios.length) process.stdout.write(`\n${ratios.join('\n')}\n`);
  if (wal) process.stdout.write(`${walCostLines(wal).join('\n')}\n`);
  if (split) process.stdout.write(`${txSplitLine(split)}\n`);
  process.stderr.write(`wrote ${join(outDir, 'micro.json')} and micro.md\n`);
  return 0;
}
