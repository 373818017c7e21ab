import { applyOverrides, BUILTIN_SCENARIOS, loadScenario } from '../../scenarios/load.js';
import { capacityLines, capacitySession, CapacitySearchSchema, runCapacity, type CapacitySearch } from '../capacity.js';
import { optionFlag, parseCommand, type CommandSpec } from '../args.js';
import { defaultOf } from '../../model/options.js';
import { UsageError } from '../../model/errors.js';
import { runSessionFromCli, scenarioArg, SESSION_FLAG_HELP, SESSION_OPTIONS, sessionOverrides, sessionRunOptions } from './session-flags.js';

const spec: CommandSpec = {
  usage: "wami-bench capacity <scenario-name|path> --slo 'fanoutMs.p99 < 250' [--max-connections 30000] [--step 2500] [options]",
  summary:
    'Raises the sockets per variant, one full audited run per step, until the SLO breaks, the fleet becomes invalid ' +
    "(reported as the measuring machine's limit, not the server's), a run errors, or --max-connections is reached. " +
    'Reports the largest passing count per variant, with every evidence run in one result.json and report.\n' +
    `Shipped scenarios: ${BUILTIN_SCENARIOS.join(', ')}; the scenario gives the variants, boards, rate and warm-up; its stages are replaced by the steps.\n` +
    'Exit codes: 0 a passing count for every variant, 1 harness error or a step errored (the search is incomplete), 2 bad input, 3 some variant never met the SLO.',
  flagHelp: [
    "--slo EXPR           the service-level objective, a threshold like 'fanoutMs.p99 < 250' (repeatable; all must hold)",
    `--max-connections N  upper end of the search (default ${String(defaultOf(CapacitySearchSchema.shape.maxConnections))})`,
    `--step N             sockets added per step (default ${String(defaultOf(CapacitySearchSchema.shape.step))})`,
    '--start N            first step (default: --step)',
    "--duration-sec S     measured seconds per step (default: the scenario's first stage)",
    ...SESSION_FLAG_HELP,
  ],
  options: {
    slo: { type: 'string', multiple: true },
    'max-connections': { type: 'string' },
    step: { type: 'string' },
    start: { type: 'string' },
    'duration-sec': { type: 'string' },
    ...SESSION_OPTIONS,
  },
  allowPositionals: true,
};

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand(spec, argv);
  if (!p) return 0;
  const v = p.values;
  const F = CapacitySearchSchema.shape;
  const search: CapacitySearch = {
    slo: (v.slo as string[] | undefined) ?? [],
    maxConnections: optionFlag(v, 'max-connections', F.maxConnections) as number | undefined,
    step: optionFlag(v, 'step', F.step) as number | undefined,
    startConnections: optionFlag(v, 'start', F.startConnections) as number | undefined,
    durationSec: optionFlag(v, 'duration-sec', F.durationSec) as number | undefined,
  };
  if (search.slo.length === 0) throw new UsageError("--slo is required, e.g. --slo 'fanoutMs.p99 < 250'");
  const { scenario, file } = await loadScenario(scenarioArg(p.positionals, spec.usage));
  const s = applyOverrides(scenario, sessionOverrides(v), file);
  capacitySession(s, search); // refuses a bad SLO or start before anything runs
  const { out, exitCode } = await runSessionFromCli(v, sessionRunOptions(v, file), (o) => runCapacity(s, search, o));
  const cap = out.result.capacity;
  if (cap)
    process.stdout.write(
      `capacity (${cap.slo.join(' and ')}):\n${capacityLines(cap)
        .map((l) => `  ${l}`)
        .join('\n')}\n`,
    );
  return exitCode;
}
