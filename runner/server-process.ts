/**
 * Starting and stopping a server under test as a child process (execa), from compiled JS, with the
 * same Node flags for every variant. Knows the "listening on ws://…" line every `serve` prints.
 */
import { execa, type ResultPromise } from 'execa';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI_JS = resolve(dirname(fileURLToPath(import.meta.url)), 'cli.js');
const LISTEN_RE = /listening on (wss?:\/\/([\d.]+):(\d+)\/ws)/;

export interface ServerSpec {
  kind: 'batched' | 'per-request';
  flags: string[];
  db: string;
  nodeFlags: string[];
  host?: string;
  /** Run under `taskset -c <cpus>` (e.g. "0"). */
  cpus?: string;
  startTimeoutMs?: number;
}

export interface RunningServer {
  pid: number;
  port: number;
  host: string;
  wsUrl: string;
  httpUrl: string;
  /** The command line, for the record. */
  command: string[];
  /** Resolves when the process exits, with how. */
  exited: Promise<{ code: number | null; signal: string | null }>;
  isRunning: () => boolean;
  /** Everything it printed (bounded to the last 64 KB). */
  output: () => string;
  /** SIGTERM, wait up to `graceMs`, then SIGKILL the whole tree. */
  stop: (graceMs?: number) => Promise<{ code: number | null; signal: string | null; forced: boolean }>;
}

/** Every descendant pid of `root` (not including root), from /proc. */
export function descendantPids(root: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(e));
      children.set(ppid, list);
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const p = stack.pop()!;
    for (const c of children.get(p) ?? []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out;
}

function killQuiet(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

export async function startServerProcess(spec: ServerSpec): Promise<RunningServer> {
  const host = spec.host ?? '127.0.0.1';
  const nodeArgs = [...spec.nodeFlags, CLI_JS, 'serve', spec.kind, '--host', host, '--port', '0', '--db', spec.db, ...spec.flags];
  const [file, args] = spec.cpus ? ['taskset', ['-c', spec.cpus, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const child: ResultPromise = execa(file, args, { reject: false, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', buffer: false, cleanup: true });
  let out = '';
  const append = (d: Buffer): void => {
    out += d.toString();
    if (out.length > 65536) out = out.slice(-65536);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let running = true;
  const exited = child.then((r) => {
    running = false;
    return { code: r.exitCode ?? null, signal: r.signal ?? null };
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start the server: ${file} ${args.join(' ')}`);
  const port = await new Promise<number>((res, rej) => {
    const timer = setTimeout(() => {
      rej(new Error(`server did not print its "listening on" line within ${spec.startTimeoutMs ?? 20000} ms. Output:\n${out.slice(-4000)}`));
    }, spec.startTimeoutMs ?? 20000);
    const check = (): void => {
      const m = LISTEN_RE.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout?.off('data', check);
        res(Number(m[3]));
      }
    };
    child.stdout?.on('data', check);
    void exited.then((x) => {
      clearTimeout(timer);
      rej(new Error(`server exited (code ${x.code}, signal ${x.signal}) before listening. Output:\n${out.slice(-4000)}`));
    });
  }).catch(async (e: unknown) => {
    for (const p of descendantPids(pid)) killQuiet(p, 'SIGKILL');
    killQuiet(pid, 'SIGKILL');
    await exited;
    throw e;
  });
  const stop = async (graceMs = 20000): Promise<{ code: number | null; signal: string | null; forced: boolean }> => {
    if (!running) return { ...(await exited), forced: false };
    // With taskset the pid is node itself (taskset execs), so SIGTERM reaches the server.
    killQuiet(pid, 'SIGTERM');
    let forced = false;
    const timer = setTimeout(() => {
      forced = true;
      for (const p of descendantPids(pid)) killQuiet(p, 'SIGKILL');
      killQuiet(pid, 'SIGKILL');
    }, graceMs);
    const r = await exited;
    clearTimeout(timer);
    // Workers of a cluster exit with their primary; make sure none is left behind.
    for (const p of descendantPids(pid)) killQuiet(p, 'SIGKILL');
    return { ...r, forced };
  };
  return {
    pid,
    port,
    host,
    wsUrl: `ws://${host}:${port}/ws`,
    httpUrl: `http://${host}:${port}`,
    command: [file, ...args],
    exited,
    isRunning: () => running,
    output: () => out,
    stop,
  };
}

/** Polls GET /healthz until 200 or the deadline. */
export async function waitHealthy(httpUrl: string, timeoutMs = 15000): Promise<unknown> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const r = await fetch(`${httpUrl}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return await r.json();
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server at ${httpUrl} not healthy within ${timeoutMs} ms (last: ${last})`);
}
