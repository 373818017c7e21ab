/**
 * This process's open-file limits, from /proc/self/limits: what the runner sizes server processes
 * by (runner/preflight.ts) and what a sharded primary budgets its sockets by
 * (servers/batched/sharded.ts). Node raises the soft limit to the hard one at start.
 */
import { readFileSync } from 'node:fs';

/** The soft and hard "Max open files"; null where unreadable (not Linux) or "unlimited". */
export function readFdLimits(): { soft: number | null; hard: number | null } {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    const n = (s: string | undefined): number | null => (s && /^\d+$/.test(s) ? Number(s) : null);
    return { soft: n(m?.[1]), hard: n(m?.[2]) };
  } catch {
    return { soft: null, hard: null };
  }
}
