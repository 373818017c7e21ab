/**
 * Starting an `external` variant's server (model/external.ts): resolve its program and working
 * directory, pick its port, fill the placeholders, spawn it, wait for its port and ready path, and
 * hand back a RunningServer like a built-in variant's (the lifecycle samples, scrapes, stops and
 * audits it the same way).
 *
 * Paths: `cwd` (default ".") is resolved against the scenario's base directory (scenarioBaseDir: the
 * scenario file's directory; the package root for a shipped scenario; the current directory for a
 * scenario given as an object). A program with a "/" is a path resolved against that cwd, as a
 * shell would after `cd cwd`; a bare name is looked up on PATH. The preflight checks all of it
 * before any run starts (externalProblems), so a missing build is one clear error, not a failed run.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, isAbsolute, resolve } from 'node:path';
import { commandLine, fillPlaceholders, parseListeningLine, usesPortPlaceholder, type PlaceholderValues } from '../model/external.js';
import type { ExternalRun } from '../model/result.js';
import type { VariantSet } from '../model/variants.js';
import { killTree, spawnChild, type ManagedChild } from './child.js';
import { readPortRange } from './preflight.js';

/** An external variant as a scenario holds it (name, options, command, …). */
export type ExternalVariant = Extract<VariantSet, { kind: 'external' }> & { name: string };

export interface ResolvedCommand {
  /** Absolute path of the program. */
  program: string;
  /** The arguments as written (placeholders not yet filled). */
  args: string[];
  /** Absolute working directory. */
  cwd: string;
}

function isExecutableFile(p: string): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The program, args and cwd of an external variant, or the problem in one sentence that says what
 * was looked for where, and what to do (the variant's `setup` when it has one).
 */
export function resolveCommand(
  v: ExternalVariant,
  baseDir: string,
  env: NodeJS.ProcessEnv = process.env,
): { ok: true; cmd: ResolvedCommand } | { ok: false; problem: string } {
  const what = `variant "${v.name}"`;
  const cwd = resolve(baseDir, v.cwd ?? '.');
  const cwdText = v.cwd === undefined ? `${cwd} (the scenario's directory)` : `${cwd} (cwd "${v.cwd}" resolved against ${baseDir})`;
  let isDir = false;
  try {
    isDir = statSync(cwd).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) return { ok: false, problem: `${what}: its working directory ${cwdText} does not exist or is not a directory` };
  const [prog = '', ...args] = v.command;
  const todo = v.setup ? `run \`${v.setup}\` first` : 'build or install the server first, or fix the path';
  if (prog.includes('/')) {
    const program = isAbsolute(prog) ? prog : resolve(cwd, prog);
    const where = isAbsolute(prog) ? program : `${program} (command[0] "${prog}" resolved against the working directory ${cwdText})`;
    let exists = false;
    try {
      exists = statSync(program).isFile();
    } catch {
      exists = false;
    }
    if (!exists) return { ok: false, problem: `${what}: the server's program ${where} does not exist: ${todo}` };
    if (!isExecutableFile(program))
      return {
        ok: false,
        problem: `${what}: the server's program ${where} is not executable (chmod +x it, or start it through its interpreter, e.g. ["node", "server.js", …])`,
      };
    return { ok: true, cmd: { program, args, cwd } };
  }
  const path = (v.env?.PATH ?? env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const dir of path) {
    const p = resolve(cwd, dir, prog);
    if (isExecutableFile(p)) return { ok: true, cmd: { program: p, args, cwd } };
  }
  const install = v.setup ? `run \`${v.setup}\` first` : 'install it';
  return {
    ok: false,
    problem: `${what}: the server's program "${prog}" is not on PATH (${path.length} directories searched): ${install}, or give its path (a name with a "/" is a path, relative to the working directory ${cwdText})`,
  };
}

/** Every external variant's problem (missing program, cwd, …) for the preflight; empty when all can start. */
export function externalProblems(variants: readonly VariantSet[], baseDir: string): string[] {
  const out: string[] = [];
  for (const v of variants) {
    if (v.kind !== 'external') continue;
    const r = resolveCommand(v as ExternalVariant, baseDir);
    if (!r.ok) out.push(r.problem);
  }
  return out;
}

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => res(true)));
  });
}

/**
 * The ports a `{port}` is picked from: below the kernel's ephemeral range (net.ipv4.ip_local_port_range),
 * or above it, so that no outgoing connection (the fleet's among them) and no port-0 listener can be
 * given the port between this check and the server's bind. Null when neither side has room.
 */
export function portWindow(range: [number, number] | null): [number, number] | null {
  const [lo, hi] = range ?? [32768, 60999];
  if (lo - 1 - 10000 >= 1000) return [10000, lo - 1];
  if (65535 - (hi + 1) >= 1000) return [hi + 1, 65535];
  if (lo - 1 - 1024 >= 200) return [1024, lo - 1];
  return null;
}

/** A port nothing listens on, from portWindow (random tries), else one the kernel gives for port 0. */
export async function pickPort(host: string, range: [number, number] | null = readPortRange()): Promise<number> {
  const w = portWindow(range);
  if (w) {
    for (let i = 0; i < 64; i++) {
      const port = w[0] + Math.floor(Math.random() * (w[1] - w[0] + 1));
      if (await canListen(host, port)) return port;
    }
  }
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, host, () => {
      const a = srv.address();
      srv.close(() => (a && typeof a === 'object' ? res(a.port) : rej(new Error('no port'))));
    });
  });
}

export interface ExternalStart {
  variant: ExternalVariant;
  /** The run's seeded database. */
  db: string;
  /** What a relative `cwd` is resolved against (scenarioBaseDir). */
  baseDir: string;
  /** Default 127.0.0.1: what `{host}` becomes, and where the runner connects. */
  host?: string;
  /** Run under `taskset -c <cpus>`. */
  cpus?: string;
  /** The port `{port}` becomes (a restart after a kill reuses the port the fleet knows); default: a free one, picked. */
  port?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An external server that answered its ready path. */
export interface ExternalStarted {
  child: ManagedChild;
  /** Where the runner connects (127.0.0.1, or the loopback address the server printed). */
  host: string;
  port: number;
  /** SIGTERM to SIGKILL, ms (stopTimeoutSec). */
  stopGraceMs: number;
  external: ExternalRun;
}

/** Starts an external server and waits for its port and ready path; on failure it is killed and the error says why, with its last output. */
export async function startExternalServer(spec: ExternalStart): Promise<ExternalStarted> {
  const v = spec.variant;
  const host = spec.host ?? '127.0.0.1';
  const r = resolveCommand(v, spec.baseDir);
  if (!r.ok) throw new Error(r.problem);
  const { program, cwd } = r.cmd;
  const picked = usesPortPlaceholder(v) ? spec.port || (await pickPort(host)) : null;
  const values: PlaceholderValues = { db: spec.db, port: String(picked ?? 0), host };
  const args = r.cmd.args.map((a) => fillPlaceholders(a, values));
  const env = Object.fromEntries(Object.entries(v.env ?? {}).map(([k, x]) => [k, fillPlaceholders(x, values)]));
  const t0 = Date.now();
  const deadline = t0 + v.readyTimeoutSec * 1000;
  const child = spawnChild(program, args, { env, cwd, ...(spec.cpus ? { cpus: spec.cpus } : {}) });
  let exit: { code: number | null; signal: string | null } | null = null;
  void child.exited.then((x) => {
    exit = x;
  });
  const tail = () => child.output().slice(-4000).trim();
  const fail = async (why: string): Promise<never> => {
    killTree(child.pid);
    await child.exited;
    throw new Error(`${why}. Command: ${commandLine([program, ...args])} (in ${cwd}). Output:\n${tail() || '(nothing)'}`);
  };
  const exitedText = () => `the server exited (code ${exit?.code ?? null}, signal ${exit?.signal ?? null}) before it was ready`;

  let port = picked;
  let connectHost = host;
  let portFrom: ExternalRun['portFrom'] = 'placeholder';
  if (port === null) {
    portFrom = 'listening line';
    while (port === null) {
      if (exit) return fail(exitedText());
      const line = parseListeningLine(child.output());
      if (line) {
        port = line.port;
        if (line.host?.startsWith('127.')) connectHost = line.host;
        break;
      }
      if (Date.now() > deadline)
        return fail(`the command has no {port} and the server printed no "listening on ws://HOST:PORT" line within ${v.readyTimeoutSec} s (readyTimeoutSec)`);
      await sleep(50);
    }
  }
  const httpUrl = `http://${connectHost}:${port}`;
  let last = 'no answer yet';
  for (;;) {
    if (exit) return fail(exitedText());
    try {
      const res = await fetch(`${httpUrl}${v.ready}`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) break;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) return fail(`GET ${httpUrl}${v.ready} did not answer 2xx within ${v.readyTimeoutSec} s (readyTimeoutSec; last: ${last})`);
    await sleep(100);
  }
  return {
    child,
    host: connectHost,
    port,
    stopGraceMs: v.stopTimeoutSec * 1000,
    external: { command: [program, ...args], cwd, env, port, portFrom, ready: v.ready, stopTimeoutSec: v.stopTimeoutSec },
  };
}
