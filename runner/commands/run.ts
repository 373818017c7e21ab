import { resolve } from 'node:path';
import { applyOverrides, BUILTIN_SCENARIOS, loadScenario } from '../../scenarios/load.js';
import { UsageError } from '../../model/errors.js';
import { creatableDir, optionFlag, parseCommand, strFlag, type CommandSpec } from '../args.js';
import type { ExternalFleet } from '../external-fleet.js';
import { ScenarioSchema, StageSchema } from '../../scenarios/schema.js';
import { planScenario, runScenario } from '../run.js';
import { runSessionFromCli, scenarioArg, SESSION_FLAG_HELP, SESSION_OPTIONS, sessionOverrides, sessionRunOptions } from './session-flags.js';

const spec: CommandSpec = {
  usage: 'wami-bench run <scenario-name|path> [options]',
  summary:
    `Runs a scenario on each of its variants (fresh database and server processes per run, variants interleaved), ` +
    `audits the database after each run, and writes results/<runId>/result.json, report.html and summary.md.\n` +
    `Shipped scenarios: ${BUILTIN_SCENARIOS.join(', ')}. A path may point to a .json, .js or .mjs scenario file.\n` +
    `Exit codes: 0 ok (invalid runs too: they are marked in result.json and the report), 1 harness error or a run errored, 2 bad input, 3 a threshold or the audit failed.\n\n` +
    `Many hosts: with --fleet external --segments N the fleet runs elsewhere, as N segments of whole boards (wami-bench fleet --segment I/N, ` +
    `e.g. a Kubernetes Indexed Job, deploy/k8s/). For each run the runner starts the server (--host, --port: where the fleet's hosts reach it), ` +
    `says which command each host runs, waits for the N segment files in --segment-dir (bounded: --segments-timeout-sec), merges them ` +
    `(as wami-bench merge does), audits the database against the merged ledger and reports as usual. ` +
    `How many hosts: the preflight's "fleet hosts" line (--plan-only prints it without running).`,
  flagHelp: [
    '--connections N      replace the stages with one stage of N sockets (boards grow to fit)',
    '--duration-sec S     measured seconds of every stage',
    '--repeats R          repeats of every variant and stage (interleaved A B A B)',
    ...SESSION_FLAG_HELP,
    '--fleet local|external         where the fleet runs: here (default), or on other hosts as segments',
    '--segments N                   with --fleet external: the number of segments (fleet --segment I/N)',
    '--segment-dir DIR              the directory the segments write to and meet in (default <out>/segments, or results/segments without --out), cleared before each run',
    "--segment-files F1,F2,…        or the segments' files themselves (a scenario of one run)",
    '--segments-timeout-sec S       longest wait for the segments of a run (default: the run plus 600 s)',
    '--host ADDR                    with --fleet external: the address the server listens on (default 127.0.0.1; 0.0.0.0 for all)',
    '--port P                       with --fleet external: its port (default: any free port)',
    '--fleet-url URL                with --fleet external: the URL the segments connect to (default ws://HOST:PORT/ws)',
    '--plan-only                    print the preflight (limits, how many fleet hosts like this one the scenario needs) and the runs, on stdout, then exit 0 without starting anything',
  ],
  options: {
    connections: { type: 'string' },
    'duration-sec': { type: 'string' },
    repeats: { type: 'string' },
    ...SESSION_OPTIONS,
    fleet: { type: 'string' },
    segments: { type: 'string' },
    'segment-dir': { type: 'string' },
    'segment-files': { type: 'string' },
    'segments-timeout-sec': { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'fleet-url': { type: 'string' },
    'plan-only': { type: 'boolean' },
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
  const runOpts = sessionRunOptions(v, file);
  const ext = externalFleetFlags(v, scenarioArg(p.positionals, spec.usage), runOpts.outDir);
  if (v['plan-only'] === true) {
    await planScenario(resolved, {
      ...runOpts,
      ...(ext ? { externalFleet: ext } : {}),
      onEvent: (e) => {
        if (e.type === 'log') process.stdout.write(`${e.message}\n`);
      },
    });
    return 0;
  }
  const { exitCode } = await runSessionFromCli(v, { ...runOpts, ...(ext ? { externalFleet: ext } : {}) }, (o) => runScenario(resolved, o));
  return exitCode;
}

const EXTERNAL_ONLY = ['segments', 'segment-dir', 'segment-files', 'segments-timeout-sec', 'host', 'port', 'fleet-url'] as const;

function intFlag(v: Record<string, unknown>, flag: string, min: number, max: number): number {
  const raw = String(v[flag]);
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) throw new UsageError(`--${flag} must be a whole number between ${min} and ${max}, got "${raw}"`);
  return n;
}

/** The external fleet the flags ask for (null: the runner's own fleet). Throws UsageError naming the flag. */
export function externalFleetFlags(v: Record<string, unknown>, scenarioArgText: string, outDir: string | undefined): ExternalFleet | null {
  const mode = v.fleet === undefined ? 'local' : String(v.fleet);
  if (mode !== 'local' && mode !== 'external') throw new UsageError(`--fleet must be local or external, got "${mode}"`);
  if (mode === 'local') {
    const stray = EXTERNAL_ONLY.find((k) => v[k] !== undefined);
    if (stray) throw new UsageError(`--${stray} needs --fleet external`);
    return null;
  }
  if (v.segments === undefined) throw new UsageError('--fleet external needs --segments N (how many fleet segments will run)');
  const segments = intFlag(v, 'segments', 1, 10_000);
  if (v['segment-dir'] !== undefined && v['segment-files'] !== undefined) throw new UsageError('give --segment-dir or --segment-files, not both');
  const files =
    v['segment-files'] !== undefined
      ? String(v['segment-files'])
          .split(',')
          .map((f) => f.trim())
          .filter(Boolean)
          .map((f) => resolve(f))
      : null;
  const dir = files ? null : creatableDir('--segment-dir', strFlag(v, 'segment-dir', resolve(outDir ?? 'results', 'segments')));
  const url = v['fleet-url'] === undefined ? null : String(v['fleet-url']);
  if (url !== null && !/^wss?:\/\//.test(url)) throw new UsageError(`--fleet-url must start with ws:// or wss://, got "${url}"`);
  const args = ['--scenario', scenarioArgText];
  for (const k of ['connections', 'duration-sec', 'warmup-sec'] as const) if (v[k] !== undefined) args.push(`--${k}`, String(v[k]));
  return {
    segments,
    dir,
    files,
    timeoutSec: v['segments-timeout-sec'] === undefined ? null : intFlag(v, 'segments-timeout-sec', 1, 7 * 86_400),
    host: v.host === undefined ? '127.0.0.1' : String(v.host),
    port: v.port === undefined ? 0 : intFlag(v, 'port', 1, 65_535),
    url,
    fleetArgs: args,
  };
}
