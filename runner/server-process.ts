/**
 * Starting and stopping a server under test as a child process (execa), from compiled JS, with the
 * same Node flags for every variant. Knows the "listening on ws://…" line every `serve` prints.
 * An external variant is started by its own command instead (runner/external.ts).
 */
import { killTree, spawnChild, type Exit, type ManagedChild } from './child.js';
import { dirname, resolve } from 'node:path';
import type { ExternalRun } from '../model/result.js';
import { variantArgv, type VariantSet } from '../model/variants.js';
import { fileURLToPath } from 'node:url';
import { startExternalServer, type ExternalVariant } from './external.js';

export { descendantPids } from './child.js';
export const CLI_JS = resolve(dirname(fileURLToPath(import.meta.url)), 'cli.js');
const LISTEN_RE = /listening on (wss?:\/\/([\d.]+):(\d+)\/ws)/;

export interface ServerSpec {
  /** The variant's kind and the options it sets: they become `serve` flags here, at the spawn. */
  variant: VariantSet;
  db: string;
  nodeFlags: string[];
  host?: string;
  /** Port to listen on; default 0 (any free port). A restart after a kill uses the port it had. */
  port?: number;
  /** Run under `taskset -c <cpus>` (e.g. "0"). */
  cpus?: string;
  startTimeoutMs?: number;
  /** external variants: what a relative `cwd` is resolved against (default: the current directory). */
  baseDir?: string;
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
  /** The grace the server asked for between SIGTERM and SIGKILL (external: stopTimeoutSec); absent: the runner's default. */
  stopGraceMs?: number;
  /** external variants: how it was started (for the record and the report). */
  external?: ExternalRun;
}

/**
 * Starts the server of a variant and returns once it listens: a built-in kind through
 * `wami-bench serve` (then await waitHealthy), an external one through its command, ready path
 * already answered.
 */
export async function startServerProcess(spec: ServerSpec): Promise<RunningServer> {
  if (spec.variant.kind === 'external') {
    const x = await startExternalServer({
      variant: { name: 'external', ...spec.variant } as ExternalVariant,
      db: spec.db,
      baseDir: spec.baseDir ?? process.cwd(),
      ...(spec.host ? { host: spec.host } : {}),
      ...(spec.cpus ? { cpus: spec.cpus } : {}),
      ...(spec.port ? { port: spec.port } : {}),
    });
    const c = x.child;
    return {
      pid: c.pid,
      port: x.port,
      host: x.host,
      wsUrl: `ws://${x.host}:${x.port}/ws`,
      httpUrl: `http://${x.host}:${x.port}`,
      command: x.external.command,
      exited: c.exited,
      isRunning: c.isRunning,
      output: c.output,
      stop: (graceMs = x.stopGraceMs) => c.stop(graceMs),
      stopGraceMs: x.stopGraceMs,
      external: x.external,
    };
  }
  const host = spec.host ?? '127.0.0.1';
  // Every server process gets the run's flags: a sharded server's primary holds shard 0 and forks the
  // other shards with its own flags (servers/batched/sharded.ts).
  const nodeArgs = [
    ...spec.nodeFlags,
    CLI_JS,
    'serve',
    spec.variant.kind,
    '--host',
    host,
    '--port',
    String(spec.port ?? 0),
    '--db',
    spec.db,
    ...variantArgv(spec.variant),
  ];
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
