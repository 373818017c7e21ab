/**
 * How a fleet is laid out: worker count, each worker's segment of the users, source addresses,
 * connect URLs. Pure functions with exact results (tested).
 */
import { isIP } from 'node:net';

/** A worker never holds more sockets than this (a process here cannot open more than 20,000 files). */
export const MAX_SOCKETS_PER_WORKER = 19_000;
/** Default sockets per worker the default worker count aims at. */
export const DEFAULT_SOCKETS_PER_WORKER = 15_000;
/** Default sockets per loopback source address (each address has ~28k ephemeral ports). */
export const DEFAULT_SOCKETS_PER_ADDRESS = 15_000;
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

/**
 * Default source addresses: 127.0.0.2, 127.0.0.3, … with at most DEFAULT_SOCKETS_PER_ADDRESS
 * sockets each, when the target is a loopback address; otherwise none (the kernel chooses).
 */
export function defaultSourceAddresses(connections: number, targetHost: string, perAddress = DEFAULT_SOCKETS_PER_ADDRESS): string[] {
  if (!isLoopbackHost(targetHost)) return [];
  const n = Math.max(1, Math.ceil(connections / perAddress));
  if (n > 250) throw new RangeError(`too many source addresses needed (${n})`);
  return Array.from({ length: n }, (_, i) => `127.0.0.${i + 2}`);
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
