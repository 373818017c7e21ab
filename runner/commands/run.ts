import { applyOverrides, BUILTIN_SCENARIOS, loadScenario } from '../../scenarios/load.js';
import { intFlag, numFlag, parseCommand, UsageError, type CommandSpec } from '../args.js';
import { runScenario } from '../run.js';

const spec: CommandSpec = {
  usage: 'wami-bench run <scenario-name|path> [options]',
  summary:
    `Runs a scenario on each of its variants (fresh database and server processes per run, variants interleaved), ` +
    `audits the database after each run, and writes results/<runId>/result.json, report.html and summary.md.\n` +
    `Shipped scenarios: ${BUILTIN_SCENARIOS.join(', ')}. A path may point to a .json, .js or .mjs scenario file.\n` +
    `Exit codes: 0 ok, 1 harness error or a run errored, 2 bad input, 3 a threshold or the audit failed.`,
  flagHelp: [
    '--connections N     replace the stages with one stage of N sockets (boards grow to fit)',
    '--duration-sec S    measured seconds of every stage',
    '--warmup-sec S      warm-up seconds before each measured window',
    '--repeats R         repeats of every variant and stage (interleaved A B A B)',
    '--variants A,B      run only these variants (names from the scenario)',
    '--out DIR           output directory (default results/<runId>)',
    '--pin               pin the server to CPU 0 and the fleet to the other CPUs (taskset)',
    '--keep-db           keep each run\'s SQLite file and ledger under <out>/work/',
    '--no-report         write result.json only',
    '--quiet             no progress output',
  ],
  options: {
    connections: { type: 'string' },
    'duration-sec': { type: 'string' },
    'warmup-sec': { type: 'string' },
    repeats: { type: 'string' },
    variants: { type: 'string' },
    out: { type: 'string' },
    pin: { type: 'boolean' },
    'keep-db': { type: 'boolean' },
    'no-report': { type: 'boolean' },
    quiet: { type: 'boolean' },
  },
  allowPositionals: true,
};

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand(spec, argv);
  if (!p) return 0;
  if (p.positionals.length !== 1) throw new UsageError(`expected exactly one scenario name or path, got ${p.positionals.length}\n\nUsage: ${spec.usage}`);
  const v = p.values;
  const { scenario, file } = await loadScenario(p.positionals[0]!);
  const resolved = applyOverrides(
    scenario,
    {
      ...(v.connections !== undefined ? { connections: intFlag(v, 'connections', undefined, 1, 200_000) } : {}),
      ...(v['duration-sec'] !== undefined ? { durationSec: numFlag(v, 'duration-sec', undefined, 1, 3600) } : {}),
      ...(v['warmup-sec'] !== undefined ? { warmupSec: numFlag(v, 'warmup-sec', undefined, 0, 600) } : {}),
      ...(v.repeats !== undefined ? { repeats: intFlag(v, 'repeats', undefined, 1, 50) } : {}),
      ...(typeof v.variants === 'string' ? { variants: v.variants.split(',').map((x) => x.trim()).filter(Boolean) } : {}),
    },
    file,
  );
  const out = await runScenario(resolved, {
    scenarioFile: file,
    ...(typeof v.out === 'string' ? { outDir: v.out } : {}),
    pin: v.pin === true,
    keepDb: v['keep-db'] === true,
    noReport: v['no-report'] === true,
    quiet: v.quiet === true,
  });
  return out.exitCode;
}
