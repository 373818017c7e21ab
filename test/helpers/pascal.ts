/**
 * Test helper for the Free Pascal server: builds it once per test file (or says why it cannot),
 * seeds temp databases through the CLI, starts the binary on port 0 and reads its port from the
 * "listening on" line, stops it with a signal and reports how it exited.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPascal, PASCAL_BINARY } from '../../servers/pascal/index.js';
import { CLI, LISTEN_RE } from './server.js';

let cached: string | false | null = null;

/** undefined when the server is built and current; the reason to skip when fpc is missing. Throws when the build fails. */
export function pascalSkipReason(): string | undefined {
  if (cached === null) {
    const b = buildPascal();
    cached = b.built ? false : b.reason;
  }
  return cached === false ? undefined : cached;
}

/** A temp dir with a seeded database made by `wami-bench seed` (the same seeding every variant gets). */
export function seedTemp(boards: number, cardsPerBoard: number): { dir: string; db: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'wami-pascal-'));
  const db = join(dir, 'board.db');
  const r = spawnSync(process.execPath, [CLI, 'seed', '--db', db, '--boards', String(boards), '--cards-per-board', String(cardsPerBoard)], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`seed failed: ${r.stdout}${r.stderr}`);
  return { dir, db, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface PascalServer {
  wsUrl: string;
  httpUrl: string;
  port: number;
  pid: number;
  child: ChildProcess;
  output: () => string;
  /** Resolves with how the process ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (default SIGTERM) and waits for the exit (SIGKILL after 20 s). */
  stop: (signal?: NodeJS.Signals) => Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Servers started and not yet exited: a failing test must not leave one running (it would also keep the test process alive). */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** SIGKILLs every server a test left running and waits for them; for `after()` hooks. */
export async function stopAllPascal(): Promise<void> {
  await Promise.all(
    [...live].map(
      (c) =>
        new Promise<void>((res) => {
          c.once('exit', () => res());
          c.kill('SIGKILL');
        }),
    ),
  );
}

export async function startPascal(db: string, flags: string[] = [], timeoutMs = 20_000): Promise<PascalServer> {
  const child = spawn(PASCAL_BINARY, ['--db', db, '--port', '0', ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => {
      live.delete(child);
      res({ code, signal });
    }),
  );
  const port = await new Promise<number>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`wami-pascal did not print its listening line in time:\n${out}`)), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = LISTEN_RE.exec(out);
      if (m) {
        clearTimeout(timer);
        res(Number(m[2]));
      }
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    void exited.then((x) => {
      clearTimeout(timer);
      rej(new Error(`wami-pascal exited (${x.code ?? x.signal}) before listening:\n${out}`));
    });
  });
  return {
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    child,
    output: () => out,
    exited,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const x = await exited;
      clearTimeout(t);
      return x;
    },
  };
}
