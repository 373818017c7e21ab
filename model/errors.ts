/**
 * Bad input from the user: a flag, a scenario file, a result file, an option passed to the library.
 * The CLI prints the message (one line or a short block, never a stack) and exits 2; library callers
 * can tell it apart from a harness failure with `instanceof UsageError`.
 */

/** The directory part of a path (no node:path here: the report page's type check sees this file). */
function dirname(path: string): string {
  const i = path.replace(/\/+$/, '').lastIndexOf('/');
  return i <= 0 ? (path.startsWith('/') ? '/' : '.') : path.slice(0, i);
}

export class UsageError extends Error {
  override name = 'UsageError';
}

/** The `code` of a Node system error (`ENOENT`, `EADDRINUSE`, …), or undefined. */
export function errnoCode(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' && /^E[A-Z0-9]+$/.test(c) ? c : undefined;
}

/**
 * System error codes that come from what the user asked for (a path, a port, a host) rather than a
 * fault of the harness: the CLI reports them in one line and exits 2.
 */
export const USER_ERRNO = new Set([
  'ENOENT',
  'EACCES',
  'EPERM',
  'ENOTDIR',
  'EISDIR',
  'EROFS',
  'EEXIST',
  'EADDRINUSE',
  'EADDRNOTAVAIL',
  'ENOTFOUND',
  'ENAMETOOLONG',
  'ELOOP',
]);

/**
 * One line, in plain words, for a file-system error on `path`, naming the fix. `doing`: what was
 * being done with it (`read` a file; `write` or `create` it, where a missing directory is the usual cause).
 */
export function fsProblem(e: unknown, path: string, doing: 'read' | 'write' | 'create'): string {
  switch (errnoCode(e)) {
    case 'ENOENT':
      return doing === 'read'
        ? `${path}: no such file`
        : `${path}: the directory ${dirname(path)} does not exist (create it first, e.g. mkdir -p ${dirname(path)})`;
    case 'EACCES':
    case 'EPERM':
      return doing === 'read'
        ? `${path}: permission denied (make it readable, or pass a file you can read)`
        : `${path}: permission denied (choose a place you can write to)`;
    case 'EISDIR':
      return `${path} is a directory: give a file name`;
    case 'ENOTDIR':
      return `${path}: a part of the path is a file, not a directory`;
    case 'EROFS':
      return `${path}: the file system is read-only (choose a place you can write to)`;
    case 'ENOSPC':
      return `${path}: no space left on the device`;
    case 'ENAMETOOLONG':
      return `${path}: the name is too long`;
    default:
      return `${path}: cannot ${doing}: ${firstLine(e)}`;
  }
}

/**
 * The UsageError for a server that could not listen on `host:port` (port in use, a privileged port,
 * an address that is not this machine's), or null when the failure is something else.
 */
export function listenProblem(e: unknown, host: string, port: number): UsageError | null {
  switch (errnoCode(e)) {
    case 'EADDRINUSE':
      return new UsageError(`port ${port} on ${host} is already in use: stop what listens there, or choose another --port (--port 0 takes any free port)`);
    case 'EACCES':
    case 'EPERM':
      return new UsageError(`no permission to listen on ${host}:${port} (ports below 1024 need privileges): choose --port 1024 or above, or --port 0`);
    case 'EADDRNOTAVAIL':
      return new UsageError(`--host ${host} is not an address of this machine: choose another --host, e.g. 127.0.0.1`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new UsageError(`--host ${host} does not resolve to an address: give an IP address, e.g. 127.0.0.1`);
    default:
      return null;
  }
}

/** The first line of an error's message (never its stack). */
export function firstLine(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0] ?? m;
}

/**
 * Levenshtein distance, with an adjacent transposition counting as one edit (so `--conections`
 * and `--connectoins` are both one edit from `--connections`).
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidate the user most likely meant by `input`, or null: the closest within a third of its
 * length (at least 1, at most 3 edits), or the only candidate that starts with it.
 */
export function didYouMean(input: string, candidates: readonly string[]): string | null {
  const x = input.toLowerCase();
  let best: string | null = null;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(x, c.toLowerCase());
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  const allowed = Math.min(3, Math.max(1, Math.floor(x.length / 3)));
  if (best !== null && bestD <= allowed) return best;
  const prefixed = candidates.filter((c) => c.startsWith(x) && x.length >= 3);
  return prefixed.length === 1 ? prefixed[0]! : null;
}
