/**
 * Test helper: seeds a temp database and starts a real server variant as a child process through
 * the compiled CLI (`dist/runner/cli.js serve …`), on port 0, and waits for its "listening" line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seedDatabase } from '../../servers/common/db.js';

export const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../runner/cli.js');

export interface TestServer {
  /** ws://127.0.0.1:PORT/ws */
  wsUrl: string;
  /** http://127.0.0.1:PORT */
  httpUrl: string;
  port: number;
  db: string;
  dir: string;
  child: ChildProcess;
  output: () => string;
  /** SIGTERM and wait for exit; resolves to the exit code. */
  stop: () => Promise<number | null>;
  /** Remove the temp dir (after stop). */
  cleanup: () => void;
}

export interface StartOptions {
  boards?: number;
  cardsPerBoard?: number;
  /** Extra CLI flags for the variant, e.g. ['--workers', '2']. */
  flags?: string[];
  /** Use this database instead of seeding a new one. */
  db?: string;
  timeoutMs?: number;
}

/** Whether a process is still alive (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The line every `serve` prints once it accepts connections. */
export const LISTEN_RE = /listening on (ws:\/\/[\d.]+:(\d+)\/ws)/;

export async function startServer(variant: 'batched' | 'per-request', opts: StartOptions = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'wami-test-'));
  const db = opts.db ?? join(dir, 'board.db');
  if (!opts.db) seedDatabase(db, { boards: opts.boards ?? 4, cardsPerBoard: opts.cardsPerBoard ?? 10 });
  const child = spawn(process.execPath, [CLI, 'serve', variant, '--port', '0', '--db', db, ...(opts.flags ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const port = await new Promise<number>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`server did not start in time:\n${out}`)), opts.timeoutMs ?? 15000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = LISTEN_RE.exec(out);
      if (m) {
        clearTimeout(timer);
        res(Number(m[2]));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`server exited with ${code} before listening:\n${out}`));
    });
  });
  return {
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    port,
    db,
    dir,
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
