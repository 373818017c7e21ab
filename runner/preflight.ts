/**
 * Preflight: before any process starts, check that the machine can hold what the scenario asks for,
 * and say what to do when it cannot. `checkPlan` is pure (tested with exact numbers); `gatherFacts`
 * reads the machine.
 */
import { createServer } from 'node:net';
import { readFileSync, statfsSync, existsSync } from 'node:fs';
import { availableParallelism, freemem, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';
import type { Scenario, Variant } from '../scenarios/schema.js';
import { defaultWorkerCount, DEFAULT_SOCKETS_PER_ADDRESS } from '../clients/plan.js';
import { flagValue, processFlag, serverProcesses } from '../model/variants.js';

export interface MachineFacts {
  cpus: number;
  fdSoft: number | null;
  fdHard: number | null;
  portRange: [number, number] | null;
  /** Loopback source addresses that could be bound, e.g. ['127.0.0.2', '127.0.0.3']. */
  loopbackOk: string[];
  loopbackFailed: string[];
  freeDiskBytes: number | null;
  freeMemBytes: number;
  totalMemBytes: number;
  caddyPath: string | null;
  tasksetPath: string | null;
  conntrackMax: number | null;
}

/** Descriptors a process keeps for itself (stdio, db, wal, shm, pipes, epoll, …). */
export const FD_RESERVE = 400;
/** Sockets per loopback source address, as the fleet spreads them (a safe share of the ephemeral range). */
export const SOCKETS_PER_SOURCE_ADDRESS = DEFAULT_SOCKETS_PER_ADDRESS;
/** Rough memory per socket, both sides and the kernel, for the memory check (bytes). */
export const EST_BYTES_PER_SOCKET = 30 * 1024;
/** Caddy holds two descriptors per proxied socket (client side and upstream). */
export const CADDY_FDS_PER_SOCKET = 2;


/** Sockets one server process may hold: the fd limit less a reserve, and for per-request a 10% margin for round-robin imbalance. */
function socketsPerProcess(kind: Variant['kind'], procs: number, fd: number): number {
  const perProc = fd - FD_RESERVE;
  return kind === 'per-request' && procs > 1 ? Math.floor(perProc / 1.1) : perProc;
}

/**
 * The serve flags a variant runs with at `connections` sockets. Explicit flags are never changed.
 * - batched without --shards gets the fewest shards that keep every process under the fd limit
 *   (1 — the seed's single-process design — whenever one process can hold them);
 * - per-request without --workers gets `--workers <cpus>` written out: its own default follows the
 *   CPU affinity, so under `--pin` (taskset -c 0) it would silently run one worker.
 */
export function effectiveFlags(v: Pick<Variant, 'kind' | 'flags'>, connections: number, fdLimit: number | null, cpus: number): string[] {
  if (v.kind === 'per-request') {
    return flagValue(v.flags, '--workers') === undefined ? [...v.flags, '--workers', String(Math.max(1, cpus))] : [...v.flags];
  }
  if (fdLimit === null || flagValue(v.flags, '--shards') !== undefined) return [...v.flags];
  const shards = Math.max(1, Math.ceil(connections / socketsPerProcess('batched', 1, fdLimit)));
  return shards > 1 ? [...v.flags, '--shards', String(shards)] : [...v.flags];
}

export interface PlanCheck {
  ok: boolean;
  /** Problems that stop the run, each with what to do. */
  errors: string[];
  warnings: string[];
  /** Facts worth recording. */
  notes: string[];
}

export function checkPlan(s: Scenario, f: MachineFacts, outDirBytesNeeded = 200 * 1024 * 1024): PlanCheck {
  const errors: string[] = [];
  const warnings: string[] = [];
  const notes: string[] = [];
  const fd = f.fdSoft ?? f.fdHard;
  const maxConn = Math.max(...s.stages.map((st) => st.connections));
  if (fd !== null) {
    const perProc = fd - FD_RESERVE;
    notes.push(`file-descriptor limit per process: soft ${f.fdSoft ?? '?'}, hard ${f.fdHard ?? '?'} -> at most ${perProc} sockets per process`);
    for (const v of s.variants) {
      const flags = effectiveFlags(v, maxConn, fd, f.cpus);
      const procs = serverProcesses({ kind: v.kind, flags }, f.cpus);
      if (v.kind === 'batched' && flags.length !== v.flags.length) notes.push(`variant "${v.name}": ${maxConn} sockets need ${flagValue(flags, '--shards')} shards (one process holds at most ${perProc} sockets here); added --shards where a stage needs it`);
      // per-request balances sockets round-robin over workers; allow 10% imbalance.
      const perServerProc = Math.ceil((maxConn / procs) * (v.kind === 'per-request' && procs > 1 ? 1.1 : 1));
      if (perServerProc > perProc) {
        const need = Math.ceil((maxConn * (v.kind === 'per-request' ? 1.1 : 1)) / perProc);
        const flag = processFlag(v.kind);
        errors.push(
          `variant "${v.name}": ${maxConn} sockets over ${procs} server process(es) is ~${perServerProc} per process, over the ` +
            `${fd}-descriptor limit (the hard limit ${f.fdHard ?? '?'} cannot be raised here). Give it ${flag} ${need} or more in the scenario's variant flags.`,
        );
      }
      const via = v.via ?? s.via;
      if (via === 'caddy') {
        if (maxConn * CADDY_FDS_PER_SOCKET > perProc) {
          errors.push(
            `variant "${v.name}" goes through Caddy, which holds ${CADDY_FDS_PER_SOCKET} descriptors per proxied socket: ` +
              `${maxConn} sockets need ~${maxConn * CADDY_FDS_PER_SOCKET}, over the ${fd} limit (Caddy returns 502 beyond ~${Math.floor(perProc / CADDY_FDS_PER_SOCKET)} sockets here). Lower the connections or use via: 'direct'.`,
          );
        }
      }
    }
    const fleetWorkers = s.fleet.workers ?? defaultWorkerCount(maxConn, f.cpus);
    const perFleet = Math.ceil(maxConn / fleetWorkers);
    if (perFleet > perProc) {
      errors.push(`the fleet would hold ~${perFleet} sockets per worker process (${fleetWorkers} workers), over the ${fd} limit: raise fleet.workers to ${Math.ceil(maxConn / perProc)} or more`);
    }
  } else {
    warnings.push('could not read the file-descriptor limit (/proc/self/limits)');
  }
  const addressesNeeded = Math.ceil(maxConn / SOCKETS_PER_SOURCE_ADDRESS);
  if (f.portRange) {
    const ports = f.portRange[1] - f.portRange[0] + 1;
    notes.push(`ephemeral ports ${f.portRange[0]}-${f.portRange[1]} (${ports}) per source address; ${addressesNeeded} source address(es) needed for ${maxConn} sockets`);
    if (ports < Math.min(maxConn, SOCKETS_PER_SOURCE_ADDRESS)) {
      errors.push(
        `the ephemeral port range has ${ports} ports but up to ${Math.min(maxConn, SOCKETS_PER_SOURCE_ADDRESS)} sockets would share one source address: widen net.ipv4.ip_local_port_range (e.g. sysctl -w net.ipv4.ip_local_port_range="1024 65000")`,
      );
    }
  }
  if (f.loopbackOk.length < addressesNeeded) {
    errors.push(
      `${maxConn} sockets need ${addressesNeeded} loopback source addresses (127.0.0.2, …) but only ${f.loopbackOk.length} could be bound` +
        (f.loopbackFailed.length ? ` (failed: ${f.loopbackFailed.join(', ')})` : '') +
        ': on Linux all of 127.0.0.0/8 is local; elsewhere add the aliases (e.g. ifconfig lo0 alias 127.0.0.2 up)',
    );
  }
  if (f.conntrackMax !== null && maxConn * 2 > f.conntrackMax) {
    warnings.push(`nf_conntrack_max is ${f.conntrackMax}, below the ~${maxConn * 2} tracked connections of this run: raise it or expect dropped SYNs`);
  }
  const memNeeded = maxConn * EST_BYTES_PER_SOCKET + 512 * 1024 * 1024;
  if (memNeeded > f.freeMemBytes) {
    const msg = `about ${(memNeeded / 2 ** 30).toFixed(1)} GiB of memory is needed for ${maxConn} sockets and only ${(f.freeMemBytes / 2 ** 30).toFixed(1)} GiB is free`;
    if (memNeeded > f.totalMemBytes) errors.push(msg);
    else warnings.push(msg);
  }
  if (f.freeDiskBytes !== null && f.freeDiskBytes < outDirBytesNeeded) {
    errors.push(`only ${(f.freeDiskBytes / 2 ** 20).toFixed(0)} MiB free on the output disk; at least ${(outDirBytesNeeded / 2 ** 20).toFixed(0)} MiB needed for databases and results`);
  }
  if (s.variants.some((v) => (v.via ?? s.via) === 'caddy') && !f.caddyPath) {
    errors.push("this scenario goes through Caddy but no `caddy` is on PATH: install Caddy 2 (Debian: apt-get install -y caddy), or run with via: 'direct'");
  }
  return { ok: errors.length === 0, errors, warnings, notes };
}

function readLimits(): { soft: number | null; hard: number | null } {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const m = line ? /Max open files\s+(\S+)\s+(\S+)/.exec(line) : null;
    const n = (s: string | undefined): number | null => (s && /^\d+$/.test(s) ? Number(s) : null);
    return { soft: n(m?.[1]), hard: n(m?.[2]) };
  } catch {
    return { soft: null, hard: null };
  }
}

function readPortRange(): [number, number] | null {
  try {
    const [a, b] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) ? [a, b] : null;
  } catch {
    return null;
  }
}

function which(cmd: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

function canBind(address: string): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once('error', () => res(false));
    srv.listen(0, address, () => srv.close(() => res(true)));
  });
}

export async function gatherFacts(outDir: string, addressesToCheck: number): Promise<MachineFacts> {
  const lim = readLimits();
  const addrs = Array.from({ length: Math.max(1, addressesToCheck) }, (_, i) => `127.0.0.${i + 2}`);
  const ok: string[] = [];
  const failed: string[] = [];
  for (const a of addrs) ((await canBind(a)) ? ok : failed).push(a);
  let freeDisk: number | null = null;
  try {
    let dir = outDir;
    while (!existsSync(dir) && dir !== '/') dir = dir.replace(/\/[^/]*$/, '') || '/';
    const st = statfsSync(dir);
    freeDisk = st.bavail * st.bsize;
  } catch {
    freeDisk = null;
  }
  let conntrack: number | null = null;
  try {
    conntrack = Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_max', 'utf8').trim());
  } catch {
    conntrack = null;
  }
  return {
    cpus: availableParallelism(),
    fdSoft: lim.soft,
    fdHard: lim.hard,
    portRange: readPortRange(),
    loopbackOk: ok,
    loopbackFailed: failed,
    freeDiskBytes: freeDisk,
    freeMemBytes: freemem(),
    totalMemBytes: totalmem(),
    caddyPath: which('caddy'),
    tasksetPath: which('taskset'),
    conntrackMax: conntrack,
  };
}
