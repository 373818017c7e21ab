/**
 * The fleet's options: one zod schema with every option's bounds and default, read by
 * `runFleet` (clients/options.ts resolves it into the fleet plan), by `wami-bench fleet` (its flags)
 * and by the scenario schema (users, load, warm-up and fleet sections are these same fields).
 * FLEET_FLAGS names each option's CLI flag, so a bad value is reported by its flag everywhere.
 * Pure: what depends on the machine (worker count, source addresses) is planned in clients/plan.ts.
 */
import { z } from 'zod';
import { UsageError } from './errors.js';

const int = (min: number, max: number) => z.number().int().min(min).max(max);
const num = (min: number, max: number) => z.number().min(min).max(max);

/** The saturation guard's bounds: a run past one is `invalid` (the fleet measured itself, not the server). */
export const GUARD_OPTIONS = {
  /** Schedule lag (sentAt − at) p99 over the measured window above this, ms, makes the run invalid (default 50). */
  lagMsP99: num(0, 1e7).default(50),
  /** A worker at or above this CPU, percent of one core, … (default 90) */
  cpuPct: num(0, 1e4).default(90),
  /** … for at least this many consecutive measured seconds makes the run invalid (default 3). */
  cpuSustainSec: int(1, 1_000_000).default(3),
  /** A worker's event-loop delay p99 over the measured window above this, ms, makes the run invalid (default 50). */
  eventLoopDelayMsP99: num(0, 1e7).default(50),
};
export const GuardSchema = z.strictObject(GUARD_OPTIONS);
export type GuardBounds = z.output<typeof GuardSchema>;

export const RateStepSchema = z.strictObject({
  /** Seconds after the measured window starts. */
  atSec: num(0, 24 * 3600),
  /** Per-user rate from then on, updates per minute. */
  updatesPerUserPerMin: num(0, 60_000),
});
export type RateStep = z.output<typeof RateStepSchema>;

/** A fraction of the sockets stop reading for a while (the `slow-consumers` fault). */
export const StallSchema = z.strictObject({
  /** Seconds after the measured window starts. */
  atSec: num(0, 24 * 3600),
  /** How long they do not read, seconds. */
  durationSec: num(0.001, 24 * 3600),
  /** Fraction of the sockets, spread evenly over the users (0.1: every tenth user). */
  fraction: num(0.0001, 1),
});
export type Stall = z.output<typeof StallSchema>;

/** The connection rate every fleet uses unless told otherwise, attempts per second over the whole fleet. */
export const DEFAULT_CONNECT_RATE_PER_SEC = 2000;
/**
 * Node flags of the fleet's worker processes unless told otherwise. A 16 MB semi-space, not 64: at
 * 30,000 sockets (fleet-cost against the floor, 2026-12-01, quiet machine) the fleet's RSS was 673 MB
 * at 16 MB against 793 MB at 64 MB, with fan-out p99 27.0 vs 30.5 ms, schedule lag p99 13.5 vs 16.6 ms
 * and CPU per received frame 33.6 vs 34.0 µs: the larger young generation bought nothing measurable.
 */
export const DEFAULT_FLEET_NODE_FLAGS = ['--max-semi-space-size=16'];

export const FLEET_OPTIONS = {
  /**
   * Server URL, ws:// or wss://; a missing path means /ws. Several URLs (servers that each serve
   * every board): board b's users connect to urls[(b - 1) % urls.length].
   */
  url: z.union([z.string(), z.array(z.string()).min(1)]),
  /** Sockets (= users) to open. */
  connections: int(1, 1_000_000),
  /** Users per board: user u is on board floor(u / perBoard) + 1. */
  perBoard: int(1, 1_000_000),
  /**
   * Cards per board of the seeded layout (board b owns cards (b-1)*M+1 .. b*M). Not set: the fleet
   * reads each board's cards from the server (GET /boards/:id). Set: checked against the server's
   * cards when it has that route (a mismatch is a FleetConfigError), used as is when it has not.
   */
  cardsPerBoard: int(1, 100_000).optional(),
  /** Updates each user sends per minute (open loop); 0 = connect only. */
  updatesPerUserPerMin: num(0, 60_000),
  /** Rate steps inside the measured window: from `atSec` after it starts, every user sends at their rate. */
  rateSteps: z.array(RateStepSchema).default([]),
  /** Inter-arrival law per user (default poisson). */
  arrival: z.enum(['poisson', 'fixed']).default('poisson'),
  /** Schedule seed: same seed, same schedule (default 1). */
  seed: int(0, Number.MAX_SAFE_INTEGER).default(1),
  /** Seconds of sending before the measured window (not measured, but in the ledger; default 5). */
  warmupSec: num(0, 3600).default(5),
  /** Measured seconds. */
  durationSec: num(1, 24 * 3600),
  /** Longest wait after the last scheduled send for acks and broadcasts, s (default 5). */
  drainSec: num(0, 600).default(5),
  /** Connection attempts per second, whole fleet (default 2000). */
  connectRatePerSec: num(1, 1_000_000).default(DEFAULT_CONNECT_RATE_PER_SEC),
  /** WebSocket handshake timeout, ms (default 10000). */
  handshakeTimeoutMs: int(1, 600_000).default(10_000),
  /** Worker processes. Not set: from CPUs and sockets, at least 2 (clients/plan.ts defaultWorkerCount). */
  workers: int(1, 1024).optional(),
  /** Source addresses to spread sockets over. Not set: for loopback targets, the least used of 127.0.0.2…254, 8,000 sockets each. */
  sourceAddresses: z.array(z.string()).optional(),
  /** Global id of the fleet's first user (to run a segment of a larger fleet elsewhere; default 0). */
  firstUser: int(0, 1e12).default(0),
  /**
   * Run only segment `index` (0-based) of `of`, by whole boards (clients/plan.ts planSegments):
   * `connections` is then the whole fleet's, this process opens the users of its boards only, and its
   * result carries the segment, its ledger inline and per-second histograms, for `wami-bench merge`.
   * Not with `firstUser`.
   */
  segment: z.strictObject({ index: int(0, 9_999), of: int(1, 10_000) }).optional(),
  /** The scenario (name, hash, 1-based stage) these options came from (`fleet --scenario`), recorded in a segment's result so `merge` refuses mixed scenarios. */
  scenario: z.strictObject({ name: z.string().min(1), hash: z.string().min(1), stage: int(1, 10_000) }).optional(),
  /** Sample 1 in N updates for first/median/last recipient latency (default 100). */
  sampleEvery: int(1, 1_000_000).default(100),
  /** Node flags of the worker processes (default --max-semi-space-size=16). */
  nodeFlags: z.array(z.string().regex(/^--[\w-]+(=.*)?$/, 'a Node flag like --max-semi-space-size=64')).default(DEFAULT_FLEET_NODE_FLAGS),
  /** PEM CA(s) to trust for wss:// (the ws client's `ca`). */
  ca: z.union([z.string(), z.instanceof(Buffer)]).optional(),
  /** If set, the Ledger JSON is written there. */
  ledgerFile: z.string().optional(),
  /** Prefix of client message ids (`<prefix>-<n>`). Not set: random per run, so reruns never reuse ids. */
  idPrefix: z
    .string()
    .regex(/^[A-Za-z0-9_.]{1,24}$/, 'must be 1-24 of [A-Za-z0-9_.]')
    .optional(),
  /** Saturation guard bounds (see GUARD_OPTIONS). */
  guard: GuardSchema.partial().optional(),
  /**
   * Reconnect sockets the server closed, with jittered exponential backoff (full jitter, from 200 ms
   * doubling to 5 s), until the schedule ends; counted (default false: a closed socket stays closed).
   */
  reconnect: z.boolean().default(false),
  /** Windows in which a fraction of the sockets stop reading (slow consumers), inside the measured window. */
  stalls: z.array(StallSchema).default([]),
  /**
   * The caller injects faults into the server (a run with `faults`): sockets closed early and sends on
   * closed sockets are expected and reported, not a reason to fail the run; the ledger carries times.
   * Default false: a server that goes away makes the run `errored`.
   */
  faultsScheduled: z.boolean().default(false),
  /** Pin the workers to these CPUs (a taskset list, e.g. "1-3"); needs taskset. Not set: not pinned. */
  cpus: z
    .string()
    .regex(/^\d+(-\d+)?(,\d+(-\d+)?)*$/, 'must be a CPU list like "1-3" or "1,3"')
    .optional(),
};
export const FleetOptionsSchema = z.strictObject(FLEET_OPTIONS);
/** The fleet's options as a caller gives them (defaults optional). */
export type FleetOptions = z.input<typeof FleetOptionsSchema>;

/** The CLI flag of each fleet option (most are the option in kebab case; a few are shorter). */
export const FLEET_FLAGS: Record<keyof typeof FLEET_OPTIONS, string> = {
  url: '--url',
  connections: '--connections',
  perBoard: '--per-board',
  cardsPerBoard: '--cards-per-board',
  updatesPerUserPerMin: '--updates-per-user-per-min',
  rateSteps: 'rateSteps',
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
  segment: '--segment',
  scenario: '--scenario',
  sampleEvery: '--sample-every',
  nodeFlags: '--node-flags',
  ca: '--ca',
  ledgerFile: '--ledger',
  idPrefix: '--id-prefix',
  guard: '--lag-bound-ms/--cpu-bound-pct/--eld-bound-ms',
  reconnect: 'reconnect',
  stalls: 'stalls',
  faultsScheduled: 'faultsScheduled',
  cpus: '--cpus',
};

/** The CLI flags of the guard bounds that have one. */
export const GUARD_FLAGS: Partial<Record<keyof typeof GUARD_OPTIONS, string>> = {
  lagMsP99: '--lag-bound-ms',
  cpuPct: '--cpu-bound-pct',
  eventLoopDelayMsP99: '--eld-bound-ms',
};

/** An invalid fleet option. `option` is its name, `flag` its CLI flag; the message starts with the flag. */
export class FleetConfigError extends UsageError {
  override name = 'FleetConfigError';
  constructor(
    readonly option: string,
    readonly flag: string,
    message: string,
  ) {
    super(message);
  }
}
