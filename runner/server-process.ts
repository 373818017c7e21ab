/**
 * Starting and stopping a server under test as a child process (execa), from compiled JS, with the
 * same Node flags for every variant. Knows the "listening on ws://…" line every `serve` prints.
 */
import { killTree, spawnChild, type Exit, type ManagedChild } from './child.js';
import { dirname, resolve } from 'node:path';
import { variantArgv, type VariantSet } from '../model/variants.js';
import { fileURLToPath } from 'node:url';

export { descendantPids } from './child.js';
export const CLI_JS = resolve(dirname(fileURLToPath(import.meta.url)), 'cli.js');
const LISTEN_RE = /listening on (wss?:\/\/([\d.]+):(\d+)\/ws)/;

export interface ServerSpec {
  /** The variant's kind and the options it sets: they become `serve` flags here, at the spawn. */
  variant: VariantSet;
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
  exited: Promise<Exit>;
  isRunning: () => boolean;
  /** Everything it printed (bounded to the last 64 KB). */
  output: () => string;
  /** SIGTERM, wait up to `graceMs`, then SIGKILL the whole tree. */
  stop: (graceMs?: number) => Promise<Exit & { forced: boolean }>;
}

export async function startServerProcess(spec: ServerSpec): Promise<RunningServer> {
  const host = spec.host ?? '127.0.0.1';
  const nodeArgs = [...spec.nodeFlags, CLI_JS, 'serve', spec.variant.kind, '--host', host, '--port', '0', '--db', spec.db, ...variantArgv(spec.variant)];
  const child = spawnChild(process.execPath, nodeArgs, spec.cpus ? { cpus: spec.cpus } : {});
  const { pid, exited } = child;
  const port = await listeningPort(child, spec.startTimeoutMs ?? 20000);
  return {
    pid,
    port,
    host,
    wsUrl: `ws://${host}:${port}/ws`,
    httpUrl: `http://${host}:${port}`,
    command: child.command,
    exited,
    isRunning: child.isRunning,
    output: child.output,
    stop: (graceMs = 20000) => child.stop(graceMs),
  };
}

/** Waits for a child's "listening on ws://…" line and returns its port; kills the child and throws if it exits or the time runs out. */
export async function listeningPort(child: ManagedChild, timeoutMs: number): Promise<number> {
  const { pid, exited } = child;
  return await new Promise<number>((res, rej) => {
    const timer = setTimeout(() => {
      rej(new Error(`server did not print its "listening on" line within ${timeoutMs} ms. Output:\n${child.output().slice(-4000)}`));
    }, timeoutMs);
    let off = (): void => undefined;
    const check = (): void => {
      const m = LISTEN_RE.exec(child.output());
      if (m) {
        clearTimeout(timer);
        off();
        res(Number(m[3]));
      }
    };
    off = child.onStdout(check);
    void exited.then((x) => {
      clearTimeout(timer);
      rej(new Error(`server exited (code ${x.code}, signal ${x.signal}) before listening. Output:\n${child.output().slice(-4000)}`));
    });
  }).catch(async (e: unknown) => {
    killTree(pid);
    await exited;
    throw e;
  });
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
