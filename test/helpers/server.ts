/**
 * Test helper: seeds a temp database and starts a real server variant as a child process through
 * the compiled CLI (`dist/runner/cli.js serve …`), on port 0, and waits for its "listening" line.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { descendantPids, killQuiet } from '../../runner/child.js';
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

export async function startServer(variant: 'batched' | 'per-request' | 'floor', opts: StartOptions = {}): Promise<TestServer> {
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

/** A server process on a given file, stopped by a signal; SIGKILL kills its whole tree (workers, shards). */
/** Runs `fn` against a fresh server, then stops it and checks that it exited 0 (its output in the message). */
export async function withStartedServer(
  variant: 'batched' | 'per-request' | 'floor',
  opts: StartOptions,
  fn: (srv: TestServer) => Promise<void>,
): Promise<void> {
  const srv = await startServer(variant, opts);
  try {
    await fn(srv);
  } finally {
    const code = await srv.stop();
    srv.cleanup();
    assert.equal(code, 0, srv.output());
  }
}

export interface FileServer {
  wsUrl: string;
  httpUrl: string;
  port: number;
  pid: number;
  child: ChildProcess;
  output: () => string;
  /** Resolves with how the process ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends `signal` (default SIGTERM; SIGKILL goes to the whole tree) and waits for the exit (SIGKILL after 30 s). */
  stop: (signal?: NodeJS.Signals) => Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Servers started and not yet exited: a failing test must not leave one running (it would also keep the test process alive). */
const liveServers = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of liveServers) c.kill('SIGKILL');
});

/** SIGKILLs every server started with spawnListening that is still running, and waits for them (for `after()` hooks). */
export async function stopAllOnFile(): Promise<void> {
  await Promise.all(
    [...liveServers].map(
      (c) =>
        new Promise<void>((res) => {
          c.once('exit', () => res());
          for (const p of descendantPids(c.pid!)) killQuiet(p, 'SIGKILL');
          c.kill('SIGKILL');
        }),
    ),
  );
}

/** Starts `file args…` (any server that prints the "listening on ws://HOST:PORT/ws" line) and resolves once it listens. */
export async function spawnListening(file: string, args: string[], what: string, timeoutMs = 20_000): Promise<FileServer> {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  liveServers.add(child);
  let out = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => {
      liveServers.delete(child);
      res({ code, signal });
    }),
  );
  const port = await new Promise<number>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${what} did not print its listening line in time:\n${out}`)), timeoutMs);
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
      rej(new Error(`${what} exited (${x.code ?? x.signal}) before listening:\n${out}`));
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
      if (child.exitCode === null && child.signalCode === null) {
        // SIGKILL is a crash of the whole server: its workers or shards die with it, nothing flushes
        if (signal === 'SIGKILL') for (const p of descendantPids(child.pid!)) killQuiet(p, 'SIGKILL');
        child.kill(signal);
      }
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      const x = await exited;
      clearTimeout(t);
      return x;
    },
  };
}

/** `wami-bench serve <variant> --db db --port 0 …flags` on an existing file. */
export function startOnFile(variant: 'batched' | 'per-request', db: string, flags: string[] = [], timeoutMs = 20_000): Promise<FileServer> {
  return spawnListening(process.execPath, [CLI, 'serve', variant, '--port', '0', '--db', db, ...flags], `wami-bench serve ${variant}`, timeoutMs);
}
