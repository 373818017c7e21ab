/**
 * The context every result carries (mitata style): machine, OS, runtime, SQLite and package versions,
 * git state, limits. `captureEnvironment` never throws: what cannot be read is null, 'unknown' or absent.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Environment } from '../model/result.js';

/** Packages whose versions the result records (besides wami-bench itself). */
export const RECORDED_PACKAGES = [
  'ws',
  'better-sqlite3',
  'hdr-histogram-js',
  'prom-client',
  'chart.js',
  'autocannon',
  'tinybench',
  'typescript',
  'execa',
  'zod',
] as const;

export interface CaptureOptions {
  serverNodeFlags: string[];
  fleetNodeFlags: string[];
  pinned: boolean;
  /** The project root (with package.json and node_modules). Default: found from this module's location. */
  projectRoot?: string;
  /** Start time to record. Default: now. */
  startedAt?: Date;
}

/** The nearest directory at or above `from` holding a package.json named wami-bench (else the first package.json). */
export function findProjectRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  let dir = resolve(from);
  let firstPkg: string | null = null;
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      firstPkg ??= dir;
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'wami-bench') return dir;
      } catch {
        // unreadable package.json: keep looking
      }
    }
    const up = dirname(dir);
    if (up === dir) return firstPkg ?? process.cwd();
    dir = up;
  }
}

/** "Max open files" soft and hard limits from /proc/<self>/limits text; null for unlimited or unreadable. */
export function parseFdLimits(text: string): { soft: number | null; hard: number | null } {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  const num = (s: string | undefined): number | null => (s && /^\d+$/.test(s) ? Number(s) : null);
  return { soft: num(m?.[1]), hard: num(m?.[2]) };
}

/** ip_local_port_range text ("32768\t60999") → [low, high]; null when malformed. */
export function parsePortRange(text: string): [number, number] | null {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** PRETTY_NAME from /etc/os-release text; null when absent. */
export function parsePrettyName(text: string): string | null {
  const m = /^PRETTY_NAME=(.*)$/m.exec(text);
  if (!m) return null;
  return m[1]!
    .trim()
    .replace(/^"(.*)"$/, '$1')
    .replace(/^'(.*)'$/, '$1');
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function git(args: string[], cwd: string): string | null {
  try {
    return execFileSync('git', args, { cwd, encoding: 'utf8', timeout: 15000, stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 16 << 20 });
  } catch {
    return null;
  }
}

/** HEAD commit and whether the work tree has changes; nulls when not a git repository or git is missing. */
export function gitState(cwd: string): { commit: string | null; dirty: boolean | null } {
  const head = git(['rev-parse', 'HEAD'], cwd);
  const commit = head && /^[0-9a-f]{7,64}$/.test(head.trim()) ? head.trim() : null;
  if (commit === null) return { commit: null, dirty: null };
  const status = git(['status', '--porcelain'], cwd);
  return { commit, dirty: status === null ? null : status.trim().length > 0 };
}

/** SQLite version of the better-sqlite3 binding in use; 'unknown' when it cannot load. */
export function sqliteVersion(projectRoot: string): string {
  try {
    const req = createRequire(join(projectRoot, 'package.json'));
    const Database = req('better-sqlite3') as new (
      f: string,
    ) => {
      prepare(sql: string): { pluck(): { get(): unknown } };
      close(): void;
    };
    const db = new Database(':memory:');
    try {
      return String(db.prepare('select sqlite_version()').pluck().get());
    } finally {
      db.close();
    }
  } catch {
    return 'unknown';
  }
}

/** Versions of the given packages as installed under the project (node_modules/<pkg>/package.json); missing ones are left out. */
export function packageVersions(projectRoot: string, names: readonly string[] = RECORDED_PACKAGES): Record<string, string> {
  const out: Record<string, string> = {};
  const own = readText(join(projectRoot, 'package.json'));
  if (own) {
    try {
      const p = JSON.parse(own) as { name?: string; version?: string };
      if (p.name && p.version) out[p.name] = p.version;
    } catch {
      // ignore
    }
  }
  for (const name of names) {
    // Walk up like Node's resolution, reading the package.json directly (some packages' exports hide it).
    let dir = projectRoot;
    for (;;) {
      const t = readText(join(dir, 'node_modules', name, 'package.json'));
      if (t) {
        try {
          const v = (JSON.parse(t) as { version?: unknown }).version;
          if (typeof v === 'string') out[name] = v;
        } catch {
          // ignore
        }
        break;
      }
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  return out;
}

/** Captures the environment. Synchronous (spawns git twice, ≤ 15 s each); never throws. */
export function captureEnvironment(opts: CaptureOptions): Environment {
  const root = opts.projectRoot ?? findProjectRoot();
  const cpus = os.cpus();
  const pretty = parsePrettyName(readText('/etc/os-release') ?? '');
  const limits = readText('/proc/self/limits');
  const ports = readText('/proc/sys/net/ipv4/ip_local_port_range');
  const safe = <T>(f: () => T, fallback: T): T => {
    try {
      return f();
    } catch {
      return fallback;
    }
  };
  return {
    cpuModel: cpus[0]?.model.trim() || 'unknown',
    cpuCount: cpus.length > 0 ? cpus.length : safe(() => os.availableParallelism(), 0),
    memTotalBytes: safe(() => os.totalmem(), 0),
    kernel: safe(() => os.release(), 'unknown'),
    os: pretty ? `${os.type()} (${pretty})` : safe(() => os.type(), 'unknown'),
    node: process.version,
    sqlite: sqliteVersion(root),
    packages: packageVersions(root),
    git: gitState(root),
    fdLimit: limits ? parseFdLimits(limits) : { soft: null, hard: null },
    ephemeralPortRange: ports ? parsePortRange(ports) : null,
    serverNodeFlags: [...opts.serverNodeFlags],
    fleetNodeFlags: [...opts.fleetNodeFlags],
    pinned: opts.pinned,
    hostname: safe(() => os.hostname(), 'unknown'),
    startedAtIso: (opts.startedAt ?? new Date()).toISOString(),
  };
}
