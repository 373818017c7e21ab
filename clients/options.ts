/**
 * The fleet's options: one typed options object and one resolved-defaults type. Validation names the
 * option (and its CLI flag) and throws FleetConfigError; the CLI turns that into exit code 2.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { isIP } from 'node:net';
import { DEFAULT_GUARD, type GuardBounds } from './guard.js';
import { addressSpread, defaultSourceAddresses, isLoopbackHost, loopbackPortUsage, defaultWorkerCount, MAX_SOCKETS_PER_ADDRESS, MAX_SOCKETS_PER_WORKER, normaliseServerUrl, segments } from './plan.js';
import type { Arrival } from './schedule.js';

export interface FleetOptions {
  /**
   * Server URL, ws:// or wss://; a missing path means /ws. Several URLs (servers that each serve
   * every board, e.g. two processes on two ports when one cannot hold all the sockets): board b's
   * users connect to urls[(b - 1) % urls.length].
   */
  url: string | string[];
  /** Sockets (= users) to open. */
  connections: number;
  /** Users per board: user u is on board floor(u / perBoard) + 1. */
  perBoard: number;
  /** Cards per board of the seeded database. Default 20. */
  cardsPerBoard?: number;
  /** Updates each user sends per minute (open loop); 0 = connect only. */
  updatesPerUserPerMin: number;
  /**
   * Rate steps inside the measured window: from `atSec` seconds after the measured window starts,
   * every user sends at `updatesPerUserPerMin`. Default none.
   */
  rateSteps?: Array<{ atSec: number; updatesPerUserPerMin: number }>;
  /** Inter-arrival law per user. Default 'poisson'. */
  arrival?: Arrival;
  /** Schedule seed (same seed, same schedule). Default 1. */
  seed?: number;
  /** Seconds of sending before the measured window (not measured, but in the ledger). Default 5. */
  warmupSec?: number;
  /** Measured seconds. */
  durationSec: number;
  /** Longest wait after the last scheduled send for acks and broadcasts, s. Default 5. */
  drainSec?: number;
  /** Connection attempts per second, whole fleet. Default 1000. */
  connectRatePerSec?: number;
  /** WebSocket handshake timeout, ms. Default 10000. */
  handshakeTimeoutMs?: number;
  /** Worker processes. Default from CPUs and sockets, at least 2 (see defaultWorkerCount). */
  workers?: number;
  /** Source addresses to spread sockets over. Default: for loopback targets, the least used of 127.0.0.2…254, 8,000 sockets each. */
  sourceAddresses?: string[];
  /** Global id of the fleet's first user (to run a segment of a larger fleet elsewhere). Default 0. */
  firstUser?: number;
  /** Sample 1 in N updates for first/median/last recipient latency. Default 100. */
  sampleEvery?: number;
  /** Node flags of the worker processes. Default ['--max-semi-space-size=64']. */
  nodeFlags?: string[];
  /** PEM CA(s) to trust for wss:// (passed to the ws client's `ca`). */
  ca?: string | Buffer;
  /** If set, the Ledger JSON is written there. */
  ledgerFile?: string;
  /** Prefix of client message ids (`<prefix>-<n>`). Default: random per run, so reruns never reuse ids. */
  idPrefix?: string;
  /** Saturation guard bounds (see GuardBounds). */
  guard?: Partial<GuardBounds>;
  /** Pin the workers to these CPUs (a taskset list, e.g. "1-3"); needs taskset. Default: not pinned. */
  cpus?: string;
}

export interface ResolvedFleetOptions {
  /** The first (usually only) URL. */
  url: string;
  /** Every URL; board b's users connect to urls[(b - 1) % urls.length]. */
  urls: string[];
  connections: number;
  perBoard: number;
  cardsPerBoard: number;
  updatesPerUserPerMin: number;
  rateSteps: Array<{ atSec: number; updatesPerUserPerMin: number }>;
  arrival: Arrival;
  seed: number;
  warmupSec: number;
  durationSec: number;
  drainSec: number;
  connectRatePerSec: number;
  handshakeTimeoutMs: number;
  workers: number;
  sourceAddresses: string[];
  firstUser: number;
  sampleEvery: number;
  nodeFlags: string[];
  ca?: string;
  ledgerFile?: string;
  idPrefix: string;
  guard: GuardBounds;
  cpus?: string;
}

export const DEFAULT_NODE_FLAGS = ['--max-semi-space-size=64'];

/** An invalid fleet option. `flag` is the CLI flag of the option. */
export class FleetConfigError extends Error {
  override name = 'FleetConfigError';
  constructor(
    readonly option: string,
    readonly flag: string,
    message: string,
  ) {
    super(message);
  }
}

const FLAGS: Record<string, string> = {
  url: '--url',
  connections: '--connections',
  perBoard: '--per-board',
  cardsPerBoard: '--cards-per-board',
  updatesPerUserPerMin: '--updates-per-user-per-min',
  rateSteps: 'rateSteps',
  cpus: '--cpus',
  arrival: '--arrival',
  seed: '--seed',
  warmupSec: '--warmup-sec',
  durationSec: '--duration-sec',
  drainSec: '--drain-sec',
  connectRatePerSec: '--connect-rate',
  handshakeTimeoutMs: '--handshake-timeout-ms',
  workers: '--workers',
  sourceAddresses: '--source-addresses',
  firstUser: '--first-user',
  sampleEvery: '--sample-every',
  nodeFlags: '--node-flags',
  idPrefix: '--id-prefix',
  guard: '--lag-bound-ms/--cpu-bound-pct',
};

function fail(option: string, message: string): never {
  throw new FleetConfigError(option, FLAGS[option] ?? option, `${FLAGS[option] ?? option}: ${message}`);
}

function int(option: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) fail(option, `must be an integer between ${min} and ${max}, got ${String(v)}`);
  return v;
}

function num(option: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) fail(option, `must be a number between ${min} and ${max}, got ${String(v)}`);
  return v;
}

/** Applies defaults and checks every option; throws FleetConfigError naming the first bad one. */
export function resolveFleetOptions(o: FleetOptions, cpus = availableParallelism()): ResolvedFleetOptions {
  const rawUrls = Array.isArray(o.url) ? o.url : [o.url];
  if (rawUrls.length === 0) fail('url', 'at least one URL is needed');
  const urls: URL[] = rawUrls.map((x) => {
    try {
      return normaliseServerUrl(x);
    } catch (e) {
      fail('url', (e as Error).message);
    }
  });
  const url = urls[0]!;
  const allLoopback = urls.every((x) => isLoopbackHost(x.hostname));
  const connections = int('connections', o.connections, 1, 1_000_000);
  const perBoard = int('perBoard', o.perBoard, 1, 1_000_000);
  if (perBoard > connections) fail('perBoard', `users per board (${perBoard}) cannot exceed --connections (${connections})`);
  const cardsPerBoard = int('cardsPerBoard', o.cardsPerBoard ?? 20, 1, 100_000);
  const updatesPerUserPerMin = num('updatesPerUserPerMin', o.updatesPerUserPerMin, 0, 60_000);
  const arrival = o.arrival ?? 'poisson';
  if (arrival !== 'poisson' && arrival !== 'fixed') fail('arrival', `must be poisson or fixed, got ${String(arrival)}`);
  const seed = int('seed', o.seed ?? 1, 0, Number.MAX_SAFE_INTEGER);
  const warmupSec = num('warmupSec', o.warmupSec ?? 5, 0, 3600);
  const durationSec = num('durationSec', o.durationSec, 1, 24 * 3600);
  const drainSec = num('drainSec', o.drainSec ?? 5, 0, 600);
  const connectRatePerSec = num('connectRatePerSec', o.connectRatePerSec ?? 1000, 1, 1_000_000);
  const handshakeTimeoutMs = int('handshakeTimeoutMs', o.handshakeTimeoutMs ?? 10_000, 1, 600_000);
  const firstUser = int('firstUser', o.firstUser ?? 0, 0, 1e12);
  const sampleEvery = int('sampleEvery', o.sampleEvery ?? 100, 1, 1_000_000);
  const rateSteps = (o.rateSteps ?? []).map((st, k) => ({
    atSec: num('rateSteps', st.atSec, 0, durationSec),
    updatesPerUserPerMin: num('rateSteps', st.updatesPerUserPerMin, 0, 60_000),
    k,
  }));
  rateSteps.sort((a, b) => a.atSec - b.atSec || a.k - b.k);
  const maxRate = Math.max(updatesPerUserPerMin, ...rateSteps.map((st) => st.updatesPerUserPerMin));
  if ((maxRate * (warmupSec + durationSec)) / 60 > 1e8) fail('updatesPerUserPerMin', 'more than 1e8 updates per user in one run');

  const minWorkers = Math.ceil(connections / MAX_SOCKETS_PER_WORKER);
  const workers = o.workers === undefined ? Math.max(defaultWorkerCount(connections, cpus), minWorkers) : int('workers', o.workers, 1, 1024);
  if (workers > connections) fail('workers', `more workers (${workers}) than connections (${connections})`);
  const biggest = segments(connections, workers, firstUser).reduce((m, s) => Math.max(m, s.count), 0);
  if (biggest > MAX_SOCKETS_PER_WORKER) {
    fail('workers', `${workers} workers would hold ${biggest} sockets each; a process holds at most ${MAX_SOCKETS_PER_WORKER} (20,000-file limit): use at least ${minWorkers}`);
  }

  let sourceAddresses: string[];
  if (o.sourceAddresses === undefined) {
    sourceAddresses = allLoopback ? defaultSourceAddresses(connections, url.hostname, undefined, loopbackPortUsage()) : [];
  } else {
    sourceAddresses = [...o.sourceAddresses];
    for (const a of sourceAddresses) if (isIP(a) === 0) fail('sourceAddresses', `"${a}" is not an IP address`);
    if (sourceAddresses.length > 0) {
      const most = Math.max(...Object.values(addressSpread(connections, sourceAddresses)));
      if (most > MAX_SOCKETS_PER_ADDRESS) fail('sourceAddresses', `${most} sockets per address exceeds ${MAX_SOCKETS_PER_ADDRESS}: give more addresses`);
    }
  }

  const nodeFlags = o.nodeFlags ? [...o.nodeFlags] : [...DEFAULT_NODE_FLAGS];
  for (const f of nodeFlags) if (!f.startsWith('--')) fail('nodeFlags', `"${f}" is not a node flag`);
  const idPrefix = o.idPrefix ?? randomBytes(3).toString('hex');
  if (!/^[A-Za-z0-9_.]{1,24}$/.test(idPrefix)) fail('idPrefix', `must be 1-24 of [A-Za-z0-9_.], got "${idPrefix}"`);
  const guard: GuardBounds = { ...DEFAULT_GUARD, ...(o.guard ?? {}) };
  num('guard', guard.lagMsP99, 0, 1e7);
  num('guard', guard.cpuPct, 0, 1e4);
  int('guard', guard.cpuSustainSec, 1, 1e6);
  num('guard', guard.eventLoopDelayMsP99, 0, 1e7);

  const r: ResolvedFleetOptions = {
    url: url.toString(),
    urls: urls.map((x) => x.toString()),
    connections,
    perBoard,
    cardsPerBoard,
    updatesPerUserPerMin,
    rateSteps: rateSteps.map(({ atSec, updatesPerUserPerMin: r }) => ({ atSec, updatesPerUserPerMin: r })),
    arrival,
    seed,
    warmupSec,
    durationSec,
    drainSec,
    connectRatePerSec,
    handshakeTimeoutMs,
    workers,
    sourceAddresses,
    firstUser,
    sampleEvery,
    nodeFlags,
    idPrefix,
    guard,
  };
  if (o.ca !== undefined) r.ca = typeof o.ca === 'string' ? o.ca : o.ca.toString('utf8');
  if (o.ledgerFile !== undefined) r.ledgerFile = o.ledgerFile;
  if (o.cpus !== undefined) {
    if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(o.cpus)) fail('cpus', `must be a CPU list like "1-3" or "1,3", got "${o.cpus}"`);
    r.cpus = o.cpus;
  }
  return r;
}
