/**
 * A child process the runner owns (a server under test, Caddy): started with execa, its output kept
 * (bounded), its exit observed, and stopped by PID — SIGTERM, a grace period, then SIGKILL of its
 * whole tree — so a run never leaves orphans.
 */
import { execa, type ResultPromise } from 'execa';
import { readAllProcStats, treePids } from './proc.js';

export interface Exit {
  code: number | null;
  signal: string | null;
}

export interface ManagedChild {
  pid: number;
  /** The command line, for the record. */
  command: string[];
  exited: Promise<Exit>;
  isRunning: () => boolean;
  /** The last 64 KB it printed (stdout and stderr). */
  output: () => string;
  /** Calls `fn` with every chunk of stdout. */
  onStdout: (fn: (chunk: string) => void) => () => void;
  /** SIGTERM, wait up to `graceMs`, then SIGKILL the whole tree. Also kills any descendant left behind. */
  stop: (graceMs: number) => Promise<Exit & { forced: boolean }>;
}

const OUTPUT_KEEP = 65536;

/** Every descendant pid of `root` (not including root), from one pass over /proc. */
export function descendantPids(root: number): number[] {
  // A root that is gone has no children left: they were re-parented when it exited.
  const tree = treePids(readAllProcStats(), [root]);
  tree.delete(root);
  return [...tree];
}

export function killQuiet(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/** Kills `pid` and its whole tree with SIGKILL. */
export function killTree(pid: number): void {
  for (const p of descendantPids(pid)) killQuiet(p, 'SIGKILL');
  killQuiet(pid, 'SIGKILL');
}

/** Starts `file args…`, optionally under `taskset -c cpus`; `env` is added to this process's environment; `cwd` default: this process's. */
export function spawnChild(file: string, args: string[], opts: { cpus?: string; env?: Record<string, string>; cwd?: string } = {}): ManagedChild {
  const [cmd, argv] = opts.cpus ? ['taskset', ['-c', opts.cpus, file, ...args]] : [file, args];
  const child: ResultPromise = execa(cmd, argv, {
    reject: false,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    cleanup: true,
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  if (child.pid === undefined) throw new Error(`could not start ${cmd} ${argv.join(' ')}`);
  const pid = child.pid;
  let out = '';
  const append = (d: Buffer): void => {
    out += d.toString();
    if (out.length > OUTPUT_KEEP) out = out.slice(-OUTPUT_KEEP);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let running = true;
  const exited: Promise<Exit> = child.then((r) => {
    running = false;
    return { code: r.exitCode ?? null, signal: r.signal ?? null };
  });
  return {
    pid,
    command: [cmd, ...argv],
    exited,
    isRunning: () => running,
    output: () => out,
    onStdout: (fn) => {
      const h = (d: Buffer): void => fn(d.toString());
      child.stdout?.on('data', h);
      return () => child.stdout?.off('data', h);
    },
    stop: async (graceMs) => {
      let forced = false;
      if (running) {
        // With taskset the pid is the program itself (taskset execs), so SIGTERM reaches it.
        killQuiet(pid, 'SIGTERM');
        const timer = setTimeout(() => {
          forced = true;
          killTree(pid);
        }, graceMs);
        await exited;
        clearTimeout(timer);
      }
      // Workers of a cluster exit with their primary; make sure none is left behind.
      for (const p of descendantPids(pid)) killQuiet(p, 'SIGKILL');
      return { ...(await exited), forced };
    },
  };
}
