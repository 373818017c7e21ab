import { applyOverrides, BUILTIN_SCENARIOS, loadScenario } from '../../scenarios/load.js';
import { capacityLines, capacitySession, CapacitySearchSchema, runCapacity, type CapacitySearch } from '../capacity.js';
import { optionFlag, parseCommand, type CommandSpec } from '../args.js';
import { defaultOf } from '../../model/options.js';
import { UsageError } from '../../model/errors.js';
import { runSessionFromCli, scenarioArg, SESSION_FLAG_HELP, SESSION_OPTIONS, sessionOverrides, sessionRunOptions } from './session-flags.js';

const F = CapacitySearchSchema.shape;
const spec: CommandSpec = {
  usage:
    "wami-bench capacity <scenario-name|path> --slo 'fanoutMs.p99 < 250' [--max-connections 30000] [--step 2500] [options]\n" +
    "       wami-bench capacity <scenario-name|path> --axis rate --slo 'ackMs.p99 < 500' [--start-rate R] [--rate-factor 1.5] [--max-rate R] [options]",
  summary:
    'Raises one axis per variant, one full audited run per step, until the SLO breaks, the fleet becomes invalid ' +
    "(reported as the measuring machine's limit, not the server's), a run errors, or the maximum is reached. " +
    '--axis sockets (the default) raises the sockets at the scenario’s per-user rate; --axis rate raises the offered ' +
    'updates/s of the whole fleet at the scenario’s sockets, stops also when write errors (BUSY_EXHAUSTED, OVERLOADED, ' +
    'WRITE_FAILED) pass --max-error-rate, then measures the fleet’s own ceiling against a no-op sink so a knee above it is ' +
    'reported as the fleet’s limit. Reports the largest passing step per variant (sockets, or updates/s), with every evidence run ' +
    'in one result.json and report. A scenario may give defaults for any of these flags in its `capacity` block.\n' +
    `Shipped scenarios: ${BUILTIN_SCENARIOS.join(', ')}; the scenario gives the variants, boards, rate and warm-up; its stages are replaced by the steps.\n` +
    'Exit codes: 0 a passing step for every variant, 1 harness error or a step errored (the search is incomplete), 2 bad input, 3 some variant never met the SLO.',
  flagHelp: [
    "--slo EXPR           the service-level objective, a threshold like 'fanoutMs.p99 < 250' (repeatable; all must hold; default: the scenario's capacity.slo)",
    `--axis sockets|rate  what the search raises (default ${String(defaultOf(F.axis))})`,
    "--duration-sec S     measured seconds per step (default: the scenario's first stage)",
    'sockets axis:',
    `--max-connections N  upper end of the search (default ${String(defaultOf(F.maxConnections))})`,
    `--step N             sockets added per step (default ${String(defaultOf(F.step))})`,
    '--start N            first step (default: --step)',
    'rate axis (updates per second over the whole fleet):',
    "--connections N      sockets of every step (default: the scenario's first stage)",
    "--start-rate R       first offered rate (default: the scenario's own rate at those sockets)",
    `--rate-factor X      each step offers X times the previous rate (default ${String(defaultOf(F.rateFactor))})`,
    `--max-rate R         the last step at most (default ${String(defaultOf(F.maxRate))})`,
    '--max-error-rate X   stop when write errors pass this share of the updates sent, as a fraction (0.001) or a percentage (0.1%) (default 0.1%)',
    "--skip-fleet-ceiling do not measure the fleet's own ceiling after the variants",
    ...SESSION_FLAG_HELP,
  ],
  options: {
    slo: { type: 'string', multiple: true },
    axis: { type: 'string' },
    'max-connections': { type: 'string' },
    step: { type: 'string' },
    start: { type: 'string' },
    'duration-sec': { type: 'string' },
    connections: { type: 'string' },
    'start-rate': { type: 'string' },
    'rate-factor': { type: 'string' },
    'max-rate': { type: 'string' },
    'max-error-rate': { type: 'string' },
    'skip-fleet-ceiling': { type: 'boolean' },
    ...SESSION_OPTIONS,
  },
  allowPositionals: true,
};

/** --max-error-rate as a fraction: "0.001" or "0.1%". */
function errorRateFlag(v: Record<string, unknown>): number | undefined {
  const raw = v['max-error-rate'];
  if (typeof raw !== 'string') return undefined;
  const t = raw.trim();
  if (t.endsWith('%')) {
    const n = t.slice(0, -1).trim() === '' ? Number.NaN : Number(t.slice(0, -1));
    if (!Number.isFinite(n) || n < 0 || n > 100) throw new UsageError(`--max-error-rate must be a percentage between 0% and 100%, got "${raw}"`);
    return n / 100;
  }
  return optionFlag(v, 'max-error-rate', F.maxErrorRate) as number;
}

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand(spec, argv);
  if (!p) return 0;
  const v = p.values;
  const search: CapacitySearch = {
    slo: (v.slo as string[] | undefined) ?? [],
    axis: optionFlag(v, 'axis', F.axis) as CapacitySearch['axis'],
    maxConnections: optionFlag(v, 'max-connections', F.maxConnections) as number | undefined,
    step: optionFlag(v, 'step', F.step) as number | undefined,
    startConnections: optionFlag(v, 'start', F.startConnections) as number | undefined,
    durationSec: optionFlag(v, 'duration-sec', F.durationSec) as number | undefined,
    connections: optionFlag(v, 'connections', F.connections) as number | undefined,
    startRate: optionFlag(v, 'start-rate', F.startRate) as number | undefined,
    rateFactor: optionFlag(v, 'rate-factor', F.rateFactor) as number | undefined,
    maxRate: optionFlag(v, 'max-rate', F.maxRate) as number | undefined,
    maxErrorRate: errorRateFlag(v),
    ...(v['skip-fleet-ceiling'] === true ? { fleetCeiling: false } : {}),
  };
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
