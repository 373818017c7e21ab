/**
 * Linux /proc readers for the resource sampler: pure parsers (tested on fixed text) and small
 * readers that never throw (a process that exits between listing and reading is normal).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { parseVmRss } from '../clients/procstat.js';

/** The fields of /proc/<pid>/stat the sampler uses. Times in clock ticks, rss in pages. */
export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  utimeTicks: number;
  stimeTicks: number;
  /** CPU of waited-for children that exited (reaped), ticks. */
  cutimeTicks: number;
  cstimeTicks: number;
  /** Start time after boot, ticks: with the pid it identifies a process across pid reuse. */
  startTicks: number;
  rssPages: number;
}

/**
 * Parses /proc/<pid>/stat. `comm` may contain spaces and parentheses, so the fields are read
 * after the last ')'. Returns null for text that does not look like a stat line.
 */
export function parseProcStat(text: string): ProcStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const pid = Number(text.slice(0, open).trim());
  const comm = text.slice(open + 1, close);
  // Fields from 3 (state) on; index 0 here is field 3.
  const f = text
    .slice(close + 2)
    .trim()
    .split(' ');
  if (f.length < 22) return null;
  const n = (i: number): number => Number(f[i - 3]);
  const st: ProcStat = {
    pid,
    comm,
    state: f[0] ?? '?',
    ppid: n(4),
    utimeTicks: n(14),
    stimeTicks: n(15),
    cutimeTicks: n(16),
    cstimeTicks: n(17),
    startTicks: n(22),
    rssPages: n(24),
  };
  if (!Number.isFinite(st.pid) || !Number.isFinite(st.ppid) || !Number.isFinite(st.utimeTicks)) return null;
  return st;
}

/** Pss from /proc/<pid>/smaps_rollup, bytes; null when absent. */
export function parseSmapsRollupPssBytes(text: string): number | null {
  const m = /^Pss:\s+(\d+)\s+kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : null;
}

/** The `mem` of the TCP line of /proc/net/sockstat, in pages; null when absent. */
export function parseSockstatTcpMemPages(text: string): number | null {
  const m = /^TCP:.*\bmem (\d+)/m.exec(text);
  return m ? Number(m[1]) : null;
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

let clkTck: number | null = null;
let pageSize: number | null = null;

function getconf(name: string, fallback: number): number {
  try {
    const v = Number(execFileSync('getconf', [name], { encoding: 'utf8', timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return Number.isSafeInteger(v) && v > 0 ? v : fallback;
  } catch {
    return fallback;
  }
}

/** Clock ticks per second (`getconf CLK_TCK`, read once; 100 when getconf is unavailable, Linux's value). */
export function clockTicksPerSec(): number {
  return (clkTck ??= getconf('CLK_TCK', 100));
}

/** Page size in bytes (`getconf PAGESIZE`, read once; 4096 when getconf is unavailable). */
export function pageSizeBytes(): number {
  return (pageSize ??= getconf('PAGESIZE', 4096));
}

/** Reads and parses /proc/<pid>/stat; null when the process is gone. */
export function readProcStat(pid: number): ProcStat | null {
  const t = readText(`/proc/${pid}/stat`);
  return t === null ? null : parseProcStat(t);
}

/** RSS of one process in bytes (VmRSS; falls back to stat's rss pages); null when gone. */
export function readRssBytes(pid: number, stat?: ProcStat | null): number | null {
  const t = readText(`/proc/${pid}/status`);
  const v = t === null ? null : parseVmRss(t);
  if (v !== null) return v;
  return stat ? stat.rssPages * pageSizeBytes() : null;
}

/** PSS of one process in bytes from smaps_rollup; null when unreadable (no permission, old kernel, gone). */
export function readPssBytes(pid: number): number | null {
  const t = readText(`/proc/${pid}/smaps_rollup`);
  return t === null ? null : parseSmapsRollupPssBytes(t);
}

/** Kernel TCP socket memory in bytes (sockstat TCP mem pages × page size); null when unreadable. */
export function readKernelTcpMemBytes(): number | null {
  const t = readText('/proc/net/sockstat');
  const pages = t === null ? null : parseSockstatTcpMemPages(t);
  return pages === null ? null : pages * pageSizeBytes();
}

/** Stat of every process on the host (one pass over /proc/[0-9]*). */
export function readAllProcStats(): Map<number, ProcStat> {
  const out = new Map<number, ProcStat>();
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of names) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const st = readProcStat(Number(name));
    if (st) out.set(st.pid, st);
  }
  return out;
}

/**
 * The pids of the trees rooted at `roots` (roots included when alive), from a ppid snapshot.
 * Pure: pass the result of readAllProcStats (or a fixture).
 */
export function treePids(all: Map<number, { ppid: number }>, roots: Iterable<number>): Set<number> {
  const children = new Map<number, number[]>();
  for (const [pid, st] of all) {
    let l = children.get(st.ppid);
    if (!l) children.set(st.ppid, (l = []));
    l.push(pid);
  }
  const out = new Set<number>();
  const stack: number[] = [];
  for (const r of roots) if (all.has(r)) stack.push(r);
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (out.has(p)) continue;
    out.add(p);
    for (const c of children.get(p) ?? []) stack.push(c);
  }
  return out;
}
