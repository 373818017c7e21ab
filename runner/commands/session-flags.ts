/**
 * Flags shared by the commands that run a session of audited runs (`run`, `capacity`): output,
 * pinning, report, progress, and the scenario overrides they have in common.
 */
import { creatableDir, optionFlag, type Options } from '../args.js';
import { ScenarioSchema } from '../../scenarios/schema.js';
import { UsageError } from '../../model/errors.js';
import type { RunOptions, RunOutcome } from '../run.js';
import { Progress } from '../progress.js';
import { EXIT, exitCodeFor } from '../../model/exit-codes.js';
import type { Overrides } from '../../scenarios/load.js';

export const SESSION_OPTIONS: Options = {
  'warmup-sec': { type: 'string' },
  variants: { type: 'string' },
  out: { type: 'string' },
  pin: { type: 'boolean' },
  'keep-db': { type: 'boolean' },
  'no-report': { type: 'boolean' },
  quiet: { type: 'boolean' },
};

export const SESSION_FLAG_HELP = [
  '--warmup-sec S       warm-up seconds before each measured window',
  '--variants A,B       run only these variants (names from the scenario)',
  '--out DIR            output directory (default results/<runId>)',
  '--pin                pin the server to CPU 0 and the fleet to the other CPUs (taskset)',
  "--keep-db            keep each run's SQLite file and ledger under <out>/work/",
  '--no-report          write result.json only',
  '--quiet              no progress output',
];

/** The overrides of SESSION_OPTIONS (warm-up, variants); bounds are the scenario fields'. */
export function sessionOverrides(v: Record<string, unknown>): Overrides {
  return {
    ...(v['warmup-sec'] !== undefined ? { warmupSec: optionFlag(v, 'warmup-sec', ScenarioSchema.shape.warmupSec) as number } : {}),
    ...(typeof v.variants === 'string'
      ? {
          variants: v.variants
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean),
        }
      : {}),
  };
}

/** RunOptions from SESSION_OPTIONS (progress and signals are added by runSessionFromCli). */
export function sessionRunOptions(v: Record<string, unknown>, scenarioFile: string): RunOptions {
  return {
    scenarioFile,
    ...(typeof v.out === 'string' ? { outDir: creatableDir('--out', v.out) } : {}),
    pin: v.pin === true,
    keepDb: v['keep-db'] === true,
    noReport: v['no-report'] === true,
  };
}

/**
 * Runs a session as the CLI does: progress on stderr (unless --quiet), Ctrl-C or SIGTERM stops the
 * current run cleanly and ends the session (a second one exits at once, 130). Returns the outcome
 * and the exit code (an interrupted session is 1: its measurement is incomplete).
 */
export async function runSessionFromCli(
  v: Record<string, unknown>,
  opts: RunOptions,
  run: (opts: RunOptions) => Promise<RunOutcome>,
): Promise<{ out: RunOutcome; exitCode: number }> {
  const progress = new Progress(process.stderr, v.quiet === true);
  const abort = new AbortController();
  const onSignal = (): void => {
    if (abort.signal.aborted) {
      progress.log('second interrupt: exiting now');
      process.exit(EXIT.interrupted);
    }
    progress.log('interrupted: stopping the current run cleanly (Ctrl-C again to exit at once)');
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const out = await run({
      ...opts,
      signal: abort.signal,
      onEvent: (e) => (e.type === 'log' ? progress.log(e.message) : progress.status(e.state)),
    });
    return { out, exitCode: out.interrupted ? EXIT.error : exitCodeFor(out.outcome) };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The one scenario name or path both commands take. */
export function scenarioArg(positionals: string[], usage: string): string {
  if (positionals.length !== 1) throw new UsageError(`expected exactly one scenario name or path, got ${positionals.length} (usage: ${usage})`);
  return positionals[0]!;
}
