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
import { DEFAULT_SOCKETS_PER_ADDRESS, type HostLimits, planFleet, segmentsNeeded, type FleetPlan } from '../clients/plan.js';
import { flagOf } from '../model/options.js';
import { readFdLimits } from '../servers/common/fd-limits.js';
import { FD_RESERVE, serverProcesses, VARIANT_SPECS, type VariantSet } from '../model/variants.js';

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

export { FD_RESERVE };
/**
 * Sockets a sharded server's primary keeps free, beyond its own shard's, for the sockets waiting in
 * it to be handed to another shard (servers/batched/sharded.ts): the primary is shard 0, so its
 * shard's share must leave it room for a connect burst (at 2,500 connects/s a few hundred wait).
 */
export const SHARD_PRIMARY_HEADROOM = 2_000;

/** The fewest shards that hold `connections` sockets at `perProc` per process, the primary's headroom kept. */
function shardsFor(connections: number, perProc: number): number {
  if (connections <= perProc) return 1;
  return Math.max(2, Math.ceil(connections / Math.max(1, perProc - SHARD_PRIMARY_HEADROOM)));
}
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
  const shards = shardsFor(connections, fdLimit - FD_RESERVE);
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
  // a sharded primary holds its own shard's sockets and keeps room for those waiting for the others
  const sharded = (v.kind === 'batched' || v.kind === 'floor') && procs > 1;
  if (perServerProc <= perProc - (sharded ? SHARD_PRIMARY_HEADROOM : 0)) return null;
  const need = v.kind === 'batched' || v.kind === 'floor' ? shardsFor(connections, perProc) : Math.ceil((connections * margin) / perProc);
  if (v.kind === 'external')
    return (
      `variant "${v.name}": ${connections} sockets on an external server of ${procs} process${procs === 1 ? '' : 'es'} is ~${perServerProc} per process, over the ` +
      `${fd}-descriptor limit (the hard limit ${fdHard ?? '?'} cannot be raised here; one process holds at most ${perProc} sockets). Lower the stage, ` +
      `mark it optional: true to skip it where it does not fit, or, if the server spreads its sockets over ${need} or more processes, say so with options.processes.`
    );
  const flag = flagOf(spec.processOption);
  return (
    `variant "${v.name}": ${connections} sockets over ${procs} server process(es) is ~${perServerProc} per process, over ` +
    (sharded
      ? `the ${perProc - SHARD_PRIMARY_HEADROOM} a sharded primary holds of its own shard's (the ${fd}-descriptor limit less ${FD_RESERVE}, less ${SHARD_PRIMARY_HEADROOM} kept for sockets waiting for the other shards; `
      : `the ${fd}-descriptor limit (`) +
    `the hard limit ${fdHard ?? '?'} cannot be raised here). Give it ${flag} ${need} or more (options.${spec.processOption} in the scenario's variant).`
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

/** CPU a fleet host spends per message it receives (a broadcast or an ack), µs: the figure measured here (README.md, "Going to 30,000 sockets"). */
export const FLEET_US_PER_DELIVERY = 25;
/**
 * The share of a fleet host's CPUs the sizing counts on: half, the headroom README.md advises for one
 * machine (the saturation guard marks a run invalid when a worker nears a full core, and a Poisson
 * schedule comes in bursts).
 */
export const FLEET_CPU_SHARE = 0.5;
/** Linux's default ephemeral port range, 32768-60999: assumed when /proc cannot be read. */
export const DEFAULT_EPHEMERAL_PORTS = 28_232;
/** Memory a host keeps for itself before sockets (the same 512 MiB as the memory check). */
const HOST_MEM_RESERVE = 512 * 1024 * 1024;

/** What one fleet host like this one can hold and drive against a remote server, with the reasons in words. */
export interface FleetHostLimits extends HostLimits {
  /** e.g. "≤ 28232 sockets: the 28232 ephemeral ports (32768-60999) of one source address; ≤ 40000 deliveries/s: 2 CPUs at ~25 µs a message, half of them". */
  why: string;
}

/**
 * The limits of a fleet host like this one (segmentsNeeded's input), from what the preflight reads:
 * sockets, the ephemeral ports of one source address (a remote server is one address and port, so
 * every socket of the host takes one of them), and no more than its memory holds at ~30 KiB a
 * socket; deliveries/s, its CPUs at FLEET_US_PER_DELIVERY each, FLEET_CPU_SHARE of them. The file
 * limit is per process and does not bound a host (the fleet adds workers). Pure.
 */
export function fleetHostLimits(f: Pick<MachineFacts, 'cpus' | 'portRange' | 'totalMemBytes'>): FleetHostLimits {
  const ports = f.portRange ? f.portRange[1] - f.portRange[0] + 1 : DEFAULT_EPHEMERAL_PORTS;
  const byMemory = Math.max(1, Math.floor((f.totalMemBytes - HOST_MEM_RESERVE) / EST_BYTES_PER_SOCKET));
  const sockets = Math.max(1, Math.min(ports, byMemory));
  const cpus = Math.max(1, f.cpus);
  const deliveriesPerSec = Math.floor(((cpus * 1e6) / FLEET_US_PER_DELIVERY) * FLEET_CPU_SHARE);
  const portWords = f.portRange
    ? `the ${ports} ephemeral ports (${f.portRange[0]}-${f.portRange[1]})`
    : `the ${ports} ephemeral ports of Linux's default range (assumed)`;
  const socketWhy =
    byMemory < ports
      ? `≤ ${sockets} sockets: ${(f.totalMemBytes / 2 ** 30).toFixed(1)} GiB of memory at ~${EST_BYTES_PER_SOCKET / 1024} KiB a socket`
      : `≤ ${sockets} sockets: ${portWords} of one source address`;
  return {
    sockets,
    deliveriesPerSec,
    why: `${socketWhy}; ≤ ${deliveriesPerSec} deliveries/s: ${cpus} CPU${cpus === 1 ? '' : 's'} at ~${FLEET_US_PER_DELIVERY} µs a message, ${FLEET_CPU_SHARE * 100}% of them`,
  };
}

/** How many fleet hosts a scenario's most demanding stage needs (segmentsNeeded on each stage). */
export interface FleetSizing {
  /** The stage (0-based) that needs the most hosts; of equals, the most deliveries/s, then the most users, then the first. */
  stageIndex: number;
  connections: number;
  boards: number;
  /** Messages the whole fleet receives a second at that stage: broadcasts and acks. */
  deliveriesPerSec: number;
  bySockets: number;
  byDeliveries: number;
  /** The fewest segments (hosts), never more than the stage's boards. */
  segments: number;
}

/** The sizing of the stages `stageIndices` (default all) of a scenario against `limits`: its most demanding stage. Pure. */
export function fleetSizing(s: Scenario, limits: HostLimits, stageIndices: readonly number[] = s.stages.map((_, i) => i)): FleetSizing {
  let best: FleetSizing | null = null;
  for (const i of stageIndices) {
    const st = s.stages[i]!;
    const n = segmentsNeeded(
      { connections: st.connections, perBoard: s.users.perBoard, updatesPerUserPerMin: st.updatesPerUserPerMin ?? s.load.updatesPerUserPerMin },
      limits,
    );
    const more =
      best === null ||
      n.segments > best.segments ||
      (n.segments === best.segments &&
        (n.deliveriesPerSec > best.deliveriesPerSec || (n.deliveriesPerSec === best.deliveriesPerSec && st.connections > best.connections)));
    if (more)
      best = {
        stageIndex: i,
        connections: st.connections,
        boards: n.boards,
        deliveriesPerSec: Math.round(n.deliveriesPerSec),
        bySockets: n.bySockets,
        byDeliveries: n.byDeliveries,
        segments: n.segments,
      };
  }
  if (best === null) throw new RangeError('fleetSizing: no stage to size');
  return best;
}

/**
 * The preflight's words for a sizing: a note always; a warning when an external fleet of `given`
 * segments is fewer than needed (null: the runner's own fleet). Pure.
 */
export function fleetSizingText(z: FleetSizing, limits: FleetHostLimits, given: number | null): { note: string; warning: string | null } {
  const hosts = (n: number): string => `${n} fleet host${n === 1 ? '' : 's'}`;
  const note =
    `fleet hosts: stage ${z.stageIndex + 1} (${z.connections} users on ${z.boards} boards, ~${z.deliveriesPerSec} deliveries/s with the acks) ` +
    `needs ${hosts(z.segments)} like this one (by sockets ${z.bySockets}, by deliveries ${z.byDeliveries}; a host: ${limits.why})` +
    (given === null
      ? z.segments > 1
        ? `; here one host runs it over loopback source addresses, beside the server: to spread it, run --fleet external --segments ${z.segments}`
        : ''
      : `; --segments ${given}`);
  if (given === null || given >= z.segments) return { note, warning: null };
  const users = Math.ceil(z.connections / given);
  const rate = Math.round(z.deliveriesPerSec / given);
  return {
    note,
    warning:
      `--segments ${given} is fewer than the ${hosts(z.segments)} stage ${z.stageIndex + 1} needs: each segment would hold ~${users} sockets and ` +
      `receive ~${rate} deliveries/s, beyond one host like this one (${limits.sockets} sockets, ${limits.deliveriesPerSec} deliveries/s); expect failed ` +
      `connects or the saturation guard to mark the run invalid; give --segments ${z.segments} (and as many hosts)`,
  };
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
          `variant "${v.name}": ${maxConn} sockets need ${procs} shards (one process holds at most ${perProc} sockets here, the primary ${SHARD_PRIMARY_HEADROOM} fewer of its own shard's: it keeps room for handoffs); added --shards where a stage needs it`,
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
  const lim = readFdLimits();
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
