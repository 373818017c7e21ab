import { applyOverrides, BUILTIN_SCENARIOS, loadScenario } from '../../scenarios/load.js';
import { optionFlag, parseCommand, type CommandSpec } from '../args.js';
import { ScenarioSchema, StageSchema } from '../../scenarios/schema.js';
import { runScenario } from '../run.js';
import { runSessionFromCli, scenarioArg, SESSION_FLAG_HELP, SESSION_OPTIONS, sessionOverrides, sessionRunOptions } from './session-flags.js';

const spec: CommandSpec = {
  usage: 'wami-bench run <scenario-name|path> [options]',
  summary:
    `Runs a scenario on each of its variants (fresh database and server processes per run, variants interleaved), ` +
    `audits the database after each run, and writes results/<runId>/result.json, report.html and summary.md.\n` +
    `Shipped scenarios: ${BUILTIN_SCENARIOS.join(', ')}. A path may point to a .json, .js or .mjs scenario file.\n` +
    `Exit codes: 0 ok (invalid runs too: they are marked in result.json and the report), 1 harness error or a run errored, 2 bad input, 3 a threshold or the audit failed.`,
  flagHelp: [
    '--connections N      replace the stages with one stage of N sockets (boards grow to fit)',
    '--duration-sec S     measured seconds of every stage',
    '--repeats R          repeats of every variant and stage (interleaved A B A B)',
    ...SESSION_FLAG_HELP,
  ],
  options: {
    connections: { type: 'string' },
    'duration-sec': { type: 'string' },
    repeats: { type: 'string' },
    ...SESSION_OPTIONS,
  },
  allowPositionals: true,
};

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand(spec, argv);
  if (!p) return 0;
  const v = p.values;
  const { scenario, file } = await loadScenario(scenarioArg(p.positionals, spec.usage));
  const resolved = applyOverrides(
    scenario,
    {
      ...(v.connections !== undefined ? { connections: optionFlag(v, 'connections', StageSchema.shape.connections) as number } : {}),
      ...(v['duration-sec'] !== undefined ? { durationSec: optionFlag(v, 'duration-sec', StageSchema.shape.durationSec) as number } : {}),
      ...(v.repeats !== undefined ? { repeats: optionFlag(v, 'repeats', ScenarioSchema.shape.repeats) as number } : {}),
      ...sessionOverrides(v),
    },
    file,
  );
  const { exitCode } = await runSessionFromCli(v, sessionRunOptions(v, file), (o) => runScenario(resolved, o));
  return exitCode;
}
