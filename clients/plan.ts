/**
 * How a fleet is laid out: worker count, each worker's segment of the users, source addresses,
 * connect URLs. Pure functions with exact results (tested).
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

/** A worker never holds more sockets than this (a process here cannot open more than 20,000 files). */
export const MAX_SOCKETS_PER_WORKER = 19_000;
/** Default sockets per worker the default worker count aims at. */
export const DEFAULT_SOCKETS_PER_WORKER = 15_000;
/**
 * Default sockets per loopback source address. bind(0) on an address gets slow (kernel port search)
 * and finally fails (EADDRNOTAVAIL) as its ~28k ephemeral ports fill up, TIME_WAIT included.
 */
export const DEFAULT_SOCKETS_PER_ADDRESS = 8_000;
/** Hard ceiling of sockets per source address. */
export const MAX_SOCKETS_PER_ADDRESS = 20_000;

/**
 * Default worker count: at least 2 (never one process for everything), enough that no worker
 * holds more than 15,000 sockets, and on machines with many CPUs up to half of them for large fleets.
 */
export function defaultWorkerCount(connections: number, cpus: number): number {
  const bySockets = Math.ceil(connections / DEFAULT_SOCKETS_PER_WORKER);
  const byCpu = Math.min(Math.floor(cpus / 2), Math.ceil(connections / 5_000));
  return Math.max(1, Math.min(Math.max(2, bySockets, byCpu), connections));
}

export interface Segment {
  index: number;
  /** First user (global id). */
  firstUser: number;
  count: number;
}

/** Splits users [firstUser, firstUser+connections) into `workers` contiguous, balanced segments. */
export function segments(connections: number, workers: number, firstUser = 0): Segment[] {
  const out: Segment[] = [];
  const base = Math.floor(connections / workers);
  const extra = connections % workers;
  let u = firstUser;
  for (let i = 0; i < workers; i++) {
    const count = base + (i < extra ? 1 : 0);
    out.push({ index: i, firstUser: u, count });
    u += count;
  }
  return out;
}

/** Whether a URL's host is an IPv4 loopback address (or "localhost"). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/** The loopback source addresses the fleet may use: 127.0.0.2 … 127.0.0.254. */
export const LOOPBACK_SOURCES: readonly string[] = Array.from({ length: 253 }, (_, i) => `127.0.0.${i + 2}`);

/**
 * Default source addresses for a loopback target: ceil(connections / perAddress) of 127.0.0.2…254,
 * the least used first (`usage`: sockets per local address now, TIME_WAIT included, e.g. from
 * loopbackPortUsage()), ties broken by address order. Back-to-back runs thereby move to fresh
 * addresses instead of fighting the previous run's TIME_WAIT ports. Not loopback: none (the kernel chooses).
 */
export function defaultSourceAddresses(
  connections: number,
  targetHost: string,
  perAddress = DEFAULT_SOCKETS_PER_ADDRESS,
  usage: Record<string, number> = {},
): string[] {
  if (!isLoopbackHost(targetHost)) return [];
  const n = Math.max(1, Math.ceil(connections / perAddress));
  if (n > LOOPBACK_SOURCES.length) throw new RangeError(`too many source addresses needed (${n})`);
  return LOOPBACK_SOURCES.map((a, i) => ({ a, i, used: usage[a] ?? 0 }))
    .sort((x, y) => x.used - y.used || x.i - y.i)
    .slice(0, n)
    .sort((x, y) => x.i - y.i)
    .map((x) => x.a);
}

/** Sockets per IPv4 local address right now (all states), from /proc/net/tcp; {} when unreadable. */
export function loopbackPortUsage(procNetTcp = '/proc/net/tcp'): Record<string, number> {
  let text: string;
  try {
    text = readFileSync(procNetTcp, 'latin1');
  } catch {
    return {};
  }
  return countLocalAddresses(text);
}

/** Counts the local addresses of a /proc/net/tcp text ("0200007F:9C40" is 127.0.0.2). */
export function countLocalAddresses(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = /^\s*\d+:\s+([0-9A-F]{8}):/gm;
  let m: RegExpExecArray | null;
  const seen = new Map<string, string>();
  while ((m = re.exec(text)) !== null) {
    const hex = m[1]!;
    let a = seen.get(hex);
    if (a === undefined) {
      const v = parseInt(hex, 16);
      a = `${v & 255}.${(v >>> 8) & 255}.${(v >>> 16) & 255}.${v >>> 24}`;
      seen.set(hex, a);
    }
    out[a] = (out[a] ?? 0) + 1;
  }
  return out;
}

/** The source address of user `user` (round-robin by its index in the fleet); undefined when none. */
export function sourceAddressFor(user: number, firstUser: number, addresses: readonly string[]): string | undefined {
  if (addresses.length === 0) return undefined;
  return addresses[(user - firstUser) % addresses.length];
}

/** How many of the fleet's sockets each source address gets (same rule as sourceAddressFor). */
export function addressSpread(connections: number, addresses: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  const n = addresses.length;
  for (let i = 0; i < n; i++) out[addresses[i]!] = Math.floor(connections / n) + (i < connections % n ? 1 : 0);
  return out;
}

/**
 * Normalises the server URL: ws:// or wss:// only; an empty path or "/" becomes "/ws"; any query is
 * dropped (the fleet sets board and user). Throws a TypeError naming the problem.
 */
export function normaliseServerUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`not a URL: "${url}"`);
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new TypeError(`URL must start with ws:// or wss://, got "${url}"`);
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/ws';
  u.search = '';
  u.hash = '';
  return u;
}

/** The connect URL of one user. */
export function connectUrl(base: URL | string, board: number, user: number): string {
  const b = typeof base === 'string' ? base : base.toString();
  return `${b}${b.includes('?') ? '&' : '?'}board=${board}&user=${user}`;
}

/** The fleet's layout for one run: what the coordinator spawns and the preflight checks. */
export interface FleetPlan {
  /** Worker processes. */
  workers: number;
  /** Each worker's contiguous share of the users. */
  segments: Segment[];
  /** Source addresses the sockets spread over (none: the kernel chooses). */
  sourceAddresses: string[];
  /** Sockets per source address. */
  addressSpread: Record<string, number>;
}

export interface FleetPlanInput {
  connections: number;
  firstUser: number;
  /** Worker processes asked for; undefined: the default for the sockets and CPUs. */
  workers?: number | undefined;
  /** Source addresses asked for; undefined: the default for the target. */
  sourceAddresses?: readonly string[] | undefined;
  /** Whether every target is a loopback address (the default source addresses are then the least used of 127.0.0.2…). */
  loopback: boolean;
}

/**
 * Plans the fleet: workers (at least 2 by default, never over MAX_SOCKETS_PER_WORKER sockets each),
 * their segments, and the source addresses (`usage`: sockets per local address now, from
 * loopbackPortUsage()). Pure. Throws a RangeError whose message starts with the option at fault
 * ("workers: …", "sourceAddresses: …").
 */
export function planFleet(p: FleetPlanInput, cpus: number, usage: Record<string, number> = {}): FleetPlan {
  const minWorkers = Math.ceil(p.connections / MAX_SOCKETS_PER_WORKER);
  const workers = p.workers ?? Math.max(defaultWorkerCount(p.connections, cpus), minWorkers);
  if (workers > p.connections) throw new RangeError(`workers: more workers (${workers}) than connections (${p.connections})`);
  const segs = segments(p.connections, workers, p.firstUser);
  const biggest = segs.reduce((m, s) => Math.max(m, s.count), 0);
  if (biggest > MAX_SOCKETS_PER_WORKER) {
    throw new RangeError(
      `workers: ${workers} workers would hold ${biggest} sockets each; a process holds at most ${MAX_SOCKETS_PER_WORKER} (20,000-file limit): use at least ${minWorkers}`,
    );
  }
  let sourceAddresses: string[];
  if (p.sourceAddresses === undefined) {
    sourceAddresses = p.loopback ? defaultSourceAddresses(p.connections, '127.0.0.1', undefined, usage) : [];
  } else {
    sourceAddresses = [...p.sourceAddresses];
    for (const a of sourceAddresses) if (isIP(a) === 0) throw new RangeError(`sourceAddresses: "${a}" is not an IP address`);
  }
  const spread = addressSpread(p.connections, sourceAddresses);
  const most = Math.max(0, ...Object.values(spread));
  if (most > MAX_SOCKETS_PER_ADDRESS)
    throw new RangeError(`sourceAddresses: ${most} sockets per address exceeds ${MAX_SOCKETS_PER_ADDRESS}: give more addresses`);
  return { workers, segments: segs, sourceAddresses, addressSpread: spread };
}

/**
 * One segment of a fleet split over several hosts (`wami-bench fleet --segment I/N`). A segment holds
 * whole boards, so every board's sender and receivers run on one host and fan-out latency (sent on
 * one socket, received on another) is always measured on one host's clock; ack latency is one
 * socket's, so one clock too.
 */
export interface BoardSegment {
  /** 0-based: Kubernetes' JOB_COMPLETION_INDEX. */
  index: number;
  /** N, the number of segments. */
  of: number;
  /** Boards firstBoard..lastBoard (1-based, inclusive). */
  firstBoard: number;
  lastBoard: number;
  boards: number;
  /** Users firstUser..firstUser+users-1 (0-based global ids). */
  firstUser: number;
  users: number;
}

/** Parses "I/N" (0 <= I < N). Throws a RangeError naming the rule. */
export function parseSegmentSpec(text: string): { index: number; of: number } {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new RangeError(`must be I/N, the I-th of N segments counted from 0 (e.g. 0/2), got "${text}"`);
  const index = Number(m[1]);
  const of = Number(m[2]);
  if (of < 1 || of > 10_000) throw new RangeError(`N must be between 1 and 10000, got "${text}"`);
  if (index >= of) throw new RangeError(`I must be between 0 and N-1 (segments are counted from 0), got "${text}"`);
  return { index, of };
}

/**
 * Splits the fleet's boards (ceil(connections / perBoard); the last one partial when perBoard does
 * not divide connections) into `of` segments of whole boards, as even as boards allow: the first
 * (boards mod of) segments get one board more. Pure. Throws a RangeError when there are fewer
 * boards than segments (a segment cannot be empty, and a board is never split).
 */
export function planSegments(connections: number, perBoard: number, of: number): BoardSegment[] {
  if (!Number.isInteger(connections) || connections < 1) throw new RangeError(`connections must be a positive integer, got ${connections}`);
  if (!Number.isInteger(perBoard) || perBoard < 1) throw new RangeError(`perBoard must be a positive integer, got ${perBoard}`);
  const boards = Math.ceil(connections / perBoard);
  if (!Number.isInteger(of) || of < 1) throw new RangeError(`the number of segments must be a positive integer, got ${of}`);
  if (of > boards)
    throw new RangeError(
      `${of} segments but only ${boards} board${boards === 1 ? '' : 's'} (${connections} users, ${perBoard} per board): a segment holds whole boards, so use at most ${boards}`,
    );
  const base = Math.floor(boards / of);
  const extra = boards % of;
  const out: BoardSegment[] = [];
  let next = 1;
  for (let index = 0; index < of; index++) {
    const n = base + (index < extra ? 1 : 0);
    const firstBoard = next;
    const lastBoard = next + n - 1;
    const firstUser = (firstBoard - 1) * perBoard;
    const users = Math.min(lastBoard * perBoard, connections) - firstUser;
    out.push({ index, of, firstBoard, lastBoard, boards: n, firstUser, users });
    next += n;
  }
  return out;
}

/** Segment `index` of `of` (see planSegments). */
export function planSegment(connections: number, perBoard: number, index: number, of: number): BoardSegment {
  if (!Number.isInteger(index) || index < 0 || index >= of) throw new RangeError(`segment index must be between 0 and ${of - 1}, got ${index}`);
  return planSegments(connections, perBoard, of)[index]!;
}

/** What one fleet host can hold and drive, for sizing the number of segments. */
export interface HostLimits {
  /**
   * Sockets one host can open to the server: for a remote server, ephemeral ports per source
   * address (the preflight's port range) times the host's source addresses, and no more than
   * memory allows (the preflight's ~30 KiB per socket).
   */
  sockets: number;
  /** Broadcasts (plus acks) one host can receive per second with its workers under the saturation guard's CPU bound. */
  deliveriesPerSec: number;
}

/**
 * The fewest segments (hosts) for a fleet: enough that no host holds more sockets or receives
 * more messages per second than `limits`. Each update is delivered to the other perBoard-1 members
 * of its board and acked once. Pure; segments by whole boards never exceed the board count.
 */
export function segmentsNeeded(
  f: { connections: number; perBoard: number; updatesPerUserPerMin: number },
  limits: HostLimits,
): { bySockets: number; byDeliveries: number; segments: number; deliveriesPerSec: number; boards: number } {
  const boards = Math.ceil(f.connections / f.perBoard);
  const updatesPerSec = (f.connections * f.updatesPerUserPerMin) / 60;
  const deliveriesPerSec = updatesPerSec * (Math.min(f.perBoard, f.connections) - 1 + 1);
  const bySockets = Math.max(1, Math.ceil(f.connections / limits.sockets));
  const byDeliveries = Math.max(1, Math.ceil(deliveriesPerSec / limits.deliveriesPerSec));
  return { bySockets, byDeliveries, segments: Math.min(boards, Math.max(bySockets, byDeliveries)), deliveriesPerSec, boards };
}
