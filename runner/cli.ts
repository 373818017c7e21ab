#!/usr/bin/env node
/**
 * wami-bench: the command-line entry. Each command lives in runner/commands/<name>.ts and exports
 * `main(argv): Promise<number>` (the exit code). Exit codes: 0 ok, 1 harness error, 2 bad input,
 * 3 thresholds or regression failed.
 *
 * A user's mistake is one line on stderr and exit 2, never a stack trace: a UsageError, or a system
 * error about something the user named (a path, a port, a host). A stack trace is printed only for
 * what is the harness's own fault (exit 1).
 */
import { errnoCode, firstLine, USER_ERRNO, UsageError } from '../model/errors.js';
import { didYouMean } from './args.js';
import { toolVersion } from './version.js';

interface CommandEntry {
  summary: string;
  load: () => Promise<{ main: (argv: string[]) => Promise<number> }>;
}

const COMMANDS: Record<string, CommandEntry> = {
  seed: { summary: 'create a fresh seeded SQLite database', load: () => import('./commands/seed.js') },
  serve: { summary: 'serve a database with a server variant (batched | per-request | floor)', load: () => import('./commands/serve.js') },
  conformance: { summary: "play protocol v1's rules against any server", load: () => import('./commands/conformance.js') },
  fleet: { summary: 'run the client fleet against any v1 server and write its JSON', load: () => import('./commands/fleet.js') },
  merge: { summary: "merge the results of a fleet's segments (fleet --segment I/N) from several hosts", load: () => import('./commands/merge.js') },
  run: { summary: 'run a scenario on its variants and write results/<runId>/', load: () => import('./commands/run.js') },
  report: { summary: 'turn a result.json into report.html and summary.md', load: () => import('./commands/report.js') },
  compare: { summary: 'compare two result files for CI (exit 3 on regression)', load: () => import('./commands/compare.js') },
  capacity: { summary: 'raise sockets per variant until an SLO breaks', load: () => import('./commands/capacity.js') },
  micro: { summary: 'tinybench suites of the parts', load: () => import('./commands/micro.js') },
};

function globalHelp(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    `wami-bench ${toolVersion()}`,
    '',
    'Usage: wami-bench <command> [options]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}  ${c.summary}`),
    '',
    'Run "wami-bench <command> --help" for the options of a command; "wami-bench --version" for the version.',
  ].join('\n');
}

/** How an error the command threw reaches the user: one line and exit 2 for their mistakes, the stack and exit 1 for the harness's. */
function reportError(cmd: string, e: unknown): { text: string; code: number } {
  if (e instanceof UsageError) return { text: `wami-bench ${cmd}: ${e.message}`, code: 2 };
  const code = errnoCode(e);
  if (code !== undefined && USER_ERRNO.has(code)) return { text: `wami-bench ${cmd}: ${firstLine(e)}`, code: 2 };
  if (code === 'ENOSPC' || code === 'EMFILE') return { text: `wami-bench ${cmd}: ${firstLine(e)}`, code: 1 };
  return { text: `wami-bench ${cmd}: ${(e as Error)?.stack ?? String(e)}`, code: 1 };
}

export async function cli(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(`${globalHelp()}\n`);
    return 0;
  }
  if (cmd === '--version' || (cmd !== undefined && COMMANDS[cmd] && rest.includes('--version'))) {
    process.stdout.write(`wami-bench ${toolVersion()}\n`);
    return 0;
  }
  if (cmd === undefined) {
    process.stderr.write(`wami-bench: missing the command, one of ${Object.keys(COMMANDS).join(', ')} (wami-bench --help says what each does)\n`);
    return 2;
  }
  const entry = COMMANDS[cmd];
  if (!entry) {
    const option = cmd.startsWith('-');
    const near = option ? didYouMean(cmd.replace(/^-+/, ''), ['version', 'help']) : didYouMean(cmd, Object.keys(COMMANDS));
    const what = option ? `unknown option "${cmd}"` : `unknown command "${cmd}"`;
    const hint = near
      ? `: did you mean "${option ? `--${near}` : near}"?`
      : ` (one of ${Object.keys(COMMANDS).join(', ')}; wami-bench --help says what each does)`;
    process.stderr.write(`wami-bench: ${what}${hint}\n`);
    return 2;
  }
  try {
    const mod = await entry.load();
    return await mod.main(rest);
  } catch (e) {
    const r = reportError(cmd, e);
    process.stderr.write(`${r.text}\n`);
    return r.code;
  }
}

cli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // A command that failed on the user's input has cleaned up what it started; should anything
    // still hold the event loop (a thread, a child's channel), do not stay alive for it.
    if (code === 2) setTimeout(() => process.exit(code), 2000).unref();
  },
  (e: unknown) => {
    process.stderr.write(`wami-bench: ${String(e)}\n`);
    process.exitCode = 1;
  },
);
