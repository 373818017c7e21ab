/**
 * `wami-bench conformance ws://HOST:PORT`: plays wire protocol v1's rules against any server and
 * prints each check as PASS or FAIL with the reason. Exit 0 only if all pass (1 if any fails,
 * 2 on bad flags or when nothing listens at the URL).
 */
import { connect } from 'node:net';
import { flagOf } from '../../model/options.js';
import {
  CONFORMANCE_OPTIONS,
  ConformanceOptionsSchema,
  DEFAULT_CONFORMANCE_OPTIONS as D,
  normalizeServerUrl,
  runConformance,
} from '../../protocol/conformance.js';
import { optionFlag, parseCommand, type CommandSpec } from '../args.js';
import { UsageError } from '../../model/errors.js';

const spec: CommandSpec = {
  usage: 'wami-bench conformance ws://HOST:PORT[/ws] [--board N] [--other-board N] [--cards-per-board M]',
  summary:
    "Plays wire protocol v1's rules (protocol/README.md) against a running server, through real sockets and HTTP,\n" +
    'and prints each check as PASS, FAIL or SKIP with the reason (SKIP: a check that needs storage, against a server\n' +
    'whose /healthz says "storage": "none", the floor). Exit 0 only if no check fails. It needs two\n' +
    'existing boards and the seeded layout (board b owns cards (b-1)*M+1 .. b*M); run it against a server\n' +
    'nobody else is using.\nExit codes: 0 every check passed or was skipped, 1 a check failed, 2 bad flags or nothing listening at the URL.',
  flagHelp: [
    `--board N              a board that exists (default ${D.board})`,
    `--other-board N        another board that exists (default ${D.otherBoard})`,
    `--unknown-board N      a board id that does not exist (default ${D.unknownBoard})`,
    `--cards-per-board M    cards per board of the seeded layout (default ${D.cardsPerBoard})`,
    `--timeout-ms N         longest wait for any expected frame or response (default ${D.timeoutMs})`,
    `--quiet-ms N           silence awaited before concluding something did not arrive (default ${D.quietMs})`,
    `--burst N              updates per sender in the seq burst check (default ${D.burst})`,
  ],
  options: {
    board: { type: 'string' },
    'other-board': { type: 'string' },
    'unknown-board': { type: 'string' },
    'cards-per-board': { type: 'string' },
    'timeout-ms': { type: 'string' },
    'quiet-ms': { type: 'string' },
    burst: { type: 'string' },
  },
  allowPositionals: true,
};

/**
 * A URL where nothing listens is the user's mistake (a wrong port, a server not started), not 17
 * failed checks: one line, exit 2. A TCP connection that opens means a server is there.
 */
function reachable(ws: string, url: string, timeoutMs: number): Promise<void> {
  const u = new URL(ws);
  const port = Number(u.port || (u.protocol === 'wss:' ? 443 : 80));
  return new Promise((resolve, reject) => {
    const sock = connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port, timeout: timeoutMs });
    sock.once('connect', () => {
      sock.destroy();
      resolve();
    });
    const fail = (why: string): void => {
      sock.destroy();
      reject(new UsageError(`nothing answers at ${url} (${why}): start the server first, or check the host and port`));
    };
    sock.once('timeout', () => fail(`no connection within ${timeoutMs} ms`));
    sock.once('error', (e: NodeJS.ErrnoException) => fail(e.code ?? e.message));
  });
}

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand(spec, argv);
  if (!p) return 0;
  const [url, ...extra] = p.positionals;
  if (url === undefined) throw new UsageError(`missing the server URL, e.g. ws://127.0.0.1:8080 (usage: ${spec.usage})`);
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  let target: { ws: string; http: string };
  try {
    target = normalizeServerUrl(url);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = p.values;
  const set: Record<string, unknown> = { url };
  for (const [key, field] of Object.entries(CONFORMANCE_OPTIONS)) {
    if (key !== 'requiredMetrics') set[key] = optionFlag(v, flagOf(key).slice(2), field);
  }
  const parsed = ConformanceOptionsSchema.safeParse(set);
  if (!parsed.success) throw new UsageError(parsed.error.issues.map((i) => i.message).join('; '));
  const opts = parsed.data;
  await reachable(target.ws, url, opts.timeoutMs);
  process.stdout.write(`wami-bench conformance: protocol v1 against ${url}\n`);
  const results = await runConformance(opts, (r) =>
    process.stdout.write(`${r.skipped ? 'SKIP' : r.ok ? 'PASS' : 'FAIL'}  ${r.name}${r.detail ? ` — ${r.detail}` : ''}\n`),
  );
  const skipped = results.filter((r) => r.skipped).length;
  const failed = results.filter((r) => !r.ok && !r.skipped).length;
  process.stdout.write(`\n${results.length - failed - skipped} passed, ${failed} failed${skipped ? `, ${skipped} skipped (the server stores nothing)` : ''}\n`);
  return failed === 0 ? 0 : 1;
}
