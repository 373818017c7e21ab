/**
 * Preflight: before any process starts, check that the machine can hold what the scenario asks for,
 * and say what to do when it cannot. `checkPlan` is pure (tested with exact numbers); `gatherFacts`
 * reads the machine.
 */
import { createServer } from 'node:net';
import { readFileSync, statfsSync, existsSync } from 'node:fs';
import { availableParallelism, freemem, totalmem } from 'node:os';
import { execFileSync } from 'node:child_process';
import type { Scenario } from '../scenarios/schema.js';
import { DEFAULT_SOCKETS_PER_ADDRESS, planFleet, type FleetPlan } from '../clients/plan.js';
import { flagOf } from '../model/options.js';
import { serverProcesses, VARIANT_SPECS, type VariantSet } from '../model/variants.js';

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

/**
 * The options a variant runs with at `connections` sockets. What the variant set is never changed.
 * - batched without `shards` gets the fewest shards that keep every process under the fd limit
 *   (1, the seed's single-process design, whenever one process can hold them: then nothing is added);
 * - per-request without `workers` gets `workers: cpus` written out: its own default follows the
 *   CPU affinity, so under `--pin` (taskset -c 0) it would silently run one worker.
 */
export function effectiveOptions<V extends VariantSet>(v: V, connections: number, fdLimit: number | null, cpus: number): V {
  if (v.kind === 'per-request') {
    return v.options.workers === undefined ? { ...v, options: { ...v.options, workers: Math.max(1, cpus) } } : v;
  }
  if ((v.kind !== 'batched' && v.kind !== 'floor') || fdLimit === null || v.options.shards !== undefined) return v;
  const shards = Math.max(1, Math.ceil(connections / (fdLimit - FD_RESERVE)));
  return shards > 1 ? { ...v, options: { ...v.options, shards } } : v;
}

/**
 * Why a variant's server processes cannot hold `connections` sockets under the per-process file
 * limit `fd`, with what to do; null when they can. A batched variant without `shards` always fits
 * (effectiveOptions adds shards); an external server is one process unless its `options.processes`
 * says otherwise (the runner cannot spread its sockets for it).
 */
export function socketsDoNotFit(v: VariantSet & { name: string }, connections: number, fd: number, cpus: number, fdHard: number | null): string | null {
  const perProc = fd - FD_RESERVE;
  const spec = VARIANT_SPECS[v.kind];
  const procs = serverProcesses(effectiveOptions(v, connections, fd, cpus), cpus);
  // per-request balances sockets round-robin over workers (an external server's spread is unknown): allow 10% imbalance.
  const margin = spec.roundRobin ? 1.1 : 1;
  const perServerProc = Math.ceil((connections / procs) * (procs > 1 ? margin : 1));
  if (perServerProc <= perProc) return null;
  const need = Math.ceil((connections * margin) / perProc);
  if (v.kind === 'external')
    return (
      `variant "${v.name}": ${connections} sockets on an external server of ${procs} process${procs === 1 ? '' : 'es'} is ~${perServerProc} per process, over the ` +
      `${fd}-descriptor limit (the hard limit ${fdHard ?? '?'} cannot be raised here; one process holds at most ${perProc} sockets). Lower the stage, ` +
      `mark it optional: true to skip it where it does not fit, or, if the server spreads its sockets over ${need} or more processes, say so with options.processes.`
    );
  const flag = flagOf(spec.processOption);
  return (
    `variant "${v.name}": ${connections} sockets over ${procs} server process(es) is ~${perServerProc} per process, over the ` +
    `${fd}-descriptor limit (the hard limit ${fdHard ?? '?'} cannot be raised here). Give it ${flag} ${need} or more (options.${spec.processOption} in the scenario's variant).`
  );
}

/**
 * The stages marked `optional` that some variant's processes cannot hold here, each with why: the
 * preflight skips them (for every variant, so each stage that runs compares them all). Pure.
 */
export function optionalStagesToSkip(
  s: Scenario,
  fd: number | null,
  cpus: number,
  fdHard: number | null,
): Array<{ index: number; connections: number; why: string }> {
  if (fd === null) return [];
  const out: Array<{ index: number; connections: number; why: string }> = [];
  s.stages.forEach((st, index) => {
    if (!st.optional) return;
    const problems = s.variants.map((v) => socketsDoNotFit(v, st.connections, fd, cpus, fdHard)).filter((p): p is string => p !== null);
    if (problems.length)
      out.push({
        index,
        connections: st.connections,
        why: problems.map((p) => p.replace(/ Lower the stage, mark it optional.*$| Give it --.*$/, '')).join('; '),
      });
  });
  return out;
}

/** The fleet's plan for the largest stage of a scenario (loopback targets, as a run here has). */
export function scenarioFleetPlan(s: Scenario, connections: number, cpus: number, usage: Record<string, number> = {}): FleetPlan {
  return planFleet({ connections, firstUser: 0, workers: s.fleet.workers, loopback: true }, cpus, usage);
}

export interface PlanCheck {
  ok: boolean;
  /** Problems that stop the run, each with what to do. */
  errors: string[];
  warnings: string[];
  /** Facts worth recording. */
  notes: string[];
}

/**
 * Checks a scenario against the machine. `plan`: the fleet's plan at the largest stage (default:
 * planned from the facts, with no sockets in use), the same plan the coordinator will spawn.
 */
export function checkPlan(s: Scenario, f: MachineFacts, outDirBytesNeeded = 200 * 1024 * 1024, plan?: FleetPlan, fleetHere = true): PlanCheck {
  const errors: string[] = [];
  const warnings: string[] = [];
  const notes: string[] = [];
  const fd = f.fdSoft ?? f.fdHard;
  const maxConn = Math.max(...s.stages.map((st) => st.connections));
  let fleetPlan: FleetPlan | null = plan ?? null;
  // An external fleet (run --fleet external) runs on other hosts: its workers, source addresses and ports are theirs to check.
  if (!fleetHere) notes.push('the fleet runs on other hosts (--fleet external): its workers, source addresses and ports are checked there, not here');
  if (!fleetHere) fleetPlan = null;
  else if (!fleetPlan) {
    try {
      fleetPlan = scenarioFleetPlan(s, maxConn, f.cpus);
    } catch (e) {
      errors.push(`fleet: ${(e as Error).message.replace(/^workers: /, 'fleet.workers: ')}`);
    }
  }
  if (fd !== null) {
    const perProc = fd - FD_RESERVE;
    notes.push(`file-descriptor limit per process: soft ${f.fdSoft ?? '?'}, hard ${f.fdHard ?? '?'} -> at most ${perProc} sockets per process`);
    for (const v of s.variants) {
      const eff = effectiveOptions(v, maxConn, fd, f.cpus);
      const procs = serverProcesses(eff, f.cpus);
      if (VARIANT_SPECS[v.kind].autoShards && procs !== serverProcesses(v, f.cpus))
        notes.push(
          `variant "${v.name}": ${maxConn} sockets need ${procs} shards (one process holds at most ${perProc} sockets here); added --shards where a stage needs it`,
        );
      const problem = socketsDoNotFit(v, maxConn, fd, f.cpus, f.fdHard);
      if (problem) errors.push(problem);
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
    const perFleet = fleetPlan && fleetHere ? Math.max(...fleetPlan.segments.map((g) => g.count)) : 0;
    if (fleetPlan && perFleet > perProc) {
      errors.push(
        `the fleet would hold ~${perFleet} sockets per worker process (${fleetPlan.workers} workers), over the ${fd} limit: raise fleet.workers to ${Math.ceil(maxConn / perProc)} or more`,
      );
    }
  } else {
    warnings.push('could not read the file-descriptor limit (/proc/self/limits)');
  }
  const addressesNeeded = !fleetHere ? 0 : fleetPlan ? fleetPlan.sourceAddresses.length : Math.ceil(maxConn / SOCKETS_PER_SOURCE_ADDRESS);
  if (f.portRange && fleetHere) {
    const ports = f.portRange[1] - f.portRange[0] + 1;
    notes.push(
      `ephemeral ports ${f.portRange[0]}-${f.portRange[1]} (${ports}) per source address; ${addressesNeeded} source address(es) needed for ${maxConn} sockets`,
    );
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
    errors.push(
      `only ${(f.freeDiskBytes / 2 ** 20).toFixed(0)} MiB free on the output disk; at least ${(outDirBytesNeeded / 2 ** 20).toFixed(0)} MiB needed for databases and results`,
    );
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

export function readPortRange(): [number, number] | null {
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

/** Reads the machine; `addresses`: the source addresses the fleet plans to bind (each is tried). */
export async function gatherFacts(outDir: string, addresses: readonly string[]): Promise<MachineFacts> {
  const lim = readLimits();
  const addrs = addresses.length > 0 ? addresses : ['127.0.0.2'];
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
