#!/usr/bin/env node
/**
 * wami-bench: the command-line entry. Each command lives in runner/commands/<name>.ts and exports
 * `main(argv): Promise<number>` (the exit code). Exit codes: 0 ok, 1 harness error, 2 bad input,
 * 3 thresholds or regression failed.
 */
import { UsageError } from '../model/errors.js';

interface CommandEntry {
  summary: string;
  load: () => Promise<{ main: (argv: string[]) => Promise<number> }>;
}

const COMMANDS: Record<string, CommandEntry> = {
  seed: { summary: 'create a fresh seeded SQLite database', load: () => import('./commands/seed.js') },
  serve: { summary: 'serve a database with a server variant (batched | per-request)', load: () => import('./commands/serve.js') },
  conformance: { summary: "play protocol v1's rules against any server", load: () => import('./commands/conformance.js') },
  fleet: { summary: 'run the client fleet against any v1 server and write its JSON', load: () => import('./commands/fleet.js') },
  run: { summary: 'run a scenario on its variants and write results/<runId>/', load: () => import('./commands/run.js') },
  report: { summary: 'turn a result.json into report.html and summary.md', load: () => import('./commands/report.js') },
  compare: { summary: 'compare two result files for CI (exit 3 on regression)', load: () => import('./commands/compare.js') },
  capacity: { summary: 'raise sockets per variant until an SLO breaks', load: () => import('./commands/capacity.js') },
  micro: { summary: 'tinybench suites of the parts', load: () => import('./commands/micro.js') },
};

function globalHelp(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    'Usage: wami-bench <command> [options]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}  ${c.summary}`),
    '',
    'Run "wami-bench <command> --help" for the options of a command.',
  ].join('\n');
}

export async function cli(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(`${globalHelp()}\n`);
    return cmd === undefined ? 2 : 0;
  }
  const entry = COMMANDS[cmd];
  if (!entry) {
    process.stderr.write(`wami-bench: unknown command "${cmd}"\n\n${globalHelp()}\n`);
    return 2;
  }
  try {
    const mod = await entry.load();
    return await mod.main(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`wami-bench ${cmd}: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`wami-bench ${cmd}: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}

cli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`wami-bench: ${String(e)}\n`);
    process.exitCode = 1;
  },
);
