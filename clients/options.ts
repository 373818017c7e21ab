/**
 * Resolving the fleet's options (model/fleet-options.ts: the one schema, its bounds and defaults)
 * into what a run uses: the options with defaults filled in, and the fleet plan (workers, segments,
 * source addresses) that the coordinator spawns and the preflight checks. A bad option throws
 * FleetConfigError naming its CLI flag; the CLI turns that into exit code 2.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { z } from 'zod';
import {
  FLEET_FLAGS,
  FLEET_OPTIONS,
  FleetConfigError,
  FleetOptionsSchema,
  GUARD_FLAGS,
  GuardSchema,
  type FleetOptions,
  type GuardBounds,
} from '../model/fleet-options.js';
import { ruleOf, ruleText } from '../model/options.js';
import { isLoopbackHost, loopbackPortUsage, normaliseServerUrl, planFleet, planSegments, type BoardSegment, type FleetPlan } from './plan.js';

export type { FleetOptions } from '../model/fleet-options.js';
export { FleetConfigError } from '../model/fleet-options.js';

export interface ResolvedFleetOptions {
  /** The first (usually only) URL. */
  url: string;
  /** Every URL; board b's users connect to urls[(b - 1) % urls.length]. */
  urls: string[];
  connections: number;
  perBoard: number;
  /** --cards-per-board, when given (else the cards are read from the server). */
  cardsPerBoard?: number;
  updatesPerUserPerMin: number;
  rateSteps: Array<{ atSec: number; updatesPerUserPerMin: number }>;
  arrival: 'poisson' | 'fixed';
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
  /** Reconnect closed sockets with jittered backoff. */
  reconnect: boolean;
  /** Slow-consumer windows, seconds after the measured window starts. */
  stalls: Array<{ atSec: number; durationSec: number; fraction: number }>;
  /** Faults are injected by the caller: early closes are expected; the ledger carries times. */
  faultsScheduled: boolean;
  /** The fleet's layout: workers, their segments of the users, the source-address spread. */
  plan: FleetPlan;
  /**
   * `--segment I/N`: this process runs one segment of a larger fleet (whole boards); `connections`
   * and `firstUser` above are then the segment's, `fleetConnections` the whole fleet's.
   */
  segment?: BoardSegment & { fleetConnections: number };
  /** The scenario these options came from (`fleet --scenario`), for the record. */
  scenario?: { name: string; hash: string; stage: number };
}

function fail(option: string, message: string): never {
  const flag = (FLEET_FLAGS as Record<string, string>)[option] ?? option;
  throw new FleetConfigError(option, flag, `${flag}: ${message}`);
}

/** A server URL normalised (ws:// or wss://, /ws by default), or FleetConfigError naming --url. */
function serverUrl(x: string): URL {
  try {
    return normaliseServerUrl(x);
  } catch (e) {
    return fail('url', (e as Error).message);
  }
}

/** The first problem of a zod parse of fleet options, as a FleetConfigError naming the flag and the rule. */
function failFromIssue(issue: z.core.$ZodIssue, input: Record<string, unknown>): never {
  const [top, sub] = issue.path;
  const option = String(top ?? 'options');
  if (option === 'guard' && typeof sub === 'string') {
    const field = (GuardSchema.shape as Record<string, z.ZodType>)[sub];
    const flag = (GUARD_FLAGS as Record<string, string>)[sub] ?? `guard.${sub}`;
    const got = (input.guard as Record<string, unknown> | undefined)?.[sub];
    throw new FleetConfigError('guard', flag, `${flag}: ${field ? ruleText(ruleOf(field)) : issue.message}, got ${String(got)}`);
  }
  const field = (FLEET_OPTIONS as Record<string, z.ZodType>)[option];
  if (issue.code === 'unrecognized_keys') fail('options', `unknown option(s) ${issue.keys.join(', ')}`);
  if (field === undefined || issue.code === 'custom' || issue.path.length > 1) fail(option, issue.message);
  const rule = ruleOf(field);
  const got = input[option];
  if (got === undefined) fail(option, 'is required');
  if (rule.type === 'other' || rule.type === 'string' || rule.type === 'list') fail(option, issue.message);
  fail(option, `${ruleText(rule)}, got ${typeof got === 'string' ? `"${got}"` : String(got)}`);
}

/** Applies defaults, checks every option and plans the fleet; throws FleetConfigError naming the first bad one. */
export function resolveFleetOptions(o: FleetOptions, cpus = availableParallelism()): ResolvedFleetOptions {
  const parsed = FleetOptionsSchema.safeParse(o);
  if (!parsed.success) failFromIssue(parsed.error.issues[0]!, o as Record<string, unknown>);
  const v = parsed.data;
  const rawUrls = Array.isArray(v.url) ? v.url : [v.url];
  const urls: URL[] = rawUrls.map(serverUrl);
  const url = urls[0]!;
  if (v.perBoard > v.connections) fail('perBoard', `users per board (${v.perBoard}) cannot exceed --connections (${v.connections})`);
  const rateSteps = v.rateSteps.map((st, k) => ({ ...st, k }));
  for (const st of rateSteps) if (st.atSec > v.durationSec) fail('rateSteps', `must be a number between 0 and ${v.durationSec}, got ${st.atSec}`);
  rateSteps.sort((a, b) => a.atSec - b.atSec || a.k - b.k);
  for (const st of v.stalls)
    if (st.atSec + st.durationSec > v.durationSec)
      fail('stalls', `a stall from ${st.atSec} s for ${st.durationSec} s ends after the ${v.durationSec} s measured window`);
  const maxRate = Math.max(v.updatesPerUserPerMin, ...rateSteps.map((st) => st.updatesPerUserPerMin));
  if ((maxRate * (v.warmupSec + v.durationSec)) / 60 > 1e8) fail('updatesPerUserPerMin', 'more than 1e8 updates per user in one run');

  let segment: ResolvedFleetOptions['segment'];
  let connections = v.connections;
  let firstUser = v.firstUser;
  if (v.segment !== undefined) {
    if ((o as { firstUser?: unknown }).firstUser !== undefined)
      fail('segment', 'is not used with --first-user: a segment sets its own users (whole boards of the fleet of --connections)');
    try {
      const seg = planSegments(v.connections, v.perBoard, v.segment.of)[v.segment.index];
      if (!seg) fail('segment', `I must be between 0 and ${v.segment.of - 1}, got ${v.segment.index}/${v.segment.of}`);
      segment = { ...seg, fleetConnections: v.connections };
      connections = seg.users;
      firstUser = seg.firstUser;
    } catch (e) {
      if (e instanceof FleetConfigError) throw e;
      fail('segment', (e as Error).message);
    }
  }
  const loopback = urls.every((x) => isLoopbackHost(x.hostname));
  let plan: FleetPlan;
  try {
    plan = planFleet(
      { connections, firstUser, workers: v.workers, sourceAddresses: v.sourceAddresses, loopback },
      cpus,
      v.sourceAddresses === undefined && loopback ? loopbackPortUsage() : {},
    );
  } catch (e) {
    const m = /^(\w+): (.*)$/s.exec((e as Error).message);
    fail(m?.[1] ?? 'workers', m?.[2] ?? (e as Error).message);
  }
  const idPrefix = v.idPrefix ?? randomBytes(3).toString('hex');
  const guard: GuardBounds = GuardSchema.parse(v.guard ?? {});

  const r: ResolvedFleetOptions = {
    url: url.toString(),
    urls: urls.map((x) => x.toString()),
    connections,
    perBoard: v.perBoard,
    updatesPerUserPerMin: v.updatesPerUserPerMin,
    rateSteps: rateSteps.map(({ atSec, updatesPerUserPerMin: r }) => ({ atSec, updatesPerUserPerMin: r })),
    arrival: v.arrival,
    seed: v.seed,
    warmupSec: v.warmupSec,
    durationSec: v.durationSec,
    drainSec: v.drainSec,
    connectRatePerSec: v.connectRatePerSec,
    handshakeTimeoutMs: v.handshakeTimeoutMs,
    workers: plan.workers,
    sourceAddresses: plan.sourceAddresses,
    firstUser,
    sampleEvery: v.sampleEvery,
    nodeFlags: [...v.nodeFlags],
    idPrefix,
    guard,
    reconnect: v.reconnect,
    stalls: v.stalls.map((st) => ({ ...st })),
    faultsScheduled: v.faultsScheduled,
    plan,
  };
  if (v.ca !== undefined) r.ca = typeof v.ca === 'string' ? v.ca : v.ca.toString('utf8');
  if (v.ledgerFile !== undefined) r.ledgerFile = v.ledgerFile;
  if (v.cardsPerBoard !== undefined) r.cardsPerBoard = v.cardsPerBoard;
  if (v.cpus !== undefined) r.cpus = v.cpus;
  if (segment !== undefined) r.segment = segment;
  if (v.scenario !== undefined) r.scenario = { ...v.scenario };
  return r;
}
