/**
 * A capacity search's options as one zod shape (apart from model/capacity.ts, the report's schema,
 * which the report page's script reads without Node's types).
 */
import { z } from 'zod';
import { CAPACITY_AXES } from './capacity.js';
import { FLEET_OPTIONS } from './fleet-options.js';

const sockets = z.number().int().min(1).max(200_000);
const rate = z.number().min(1).max(10_000_000);

/**
 * A capacity search's options, each with its bounds and default: `wami-bench capacity` reads its
 * flags by them (flag = option in kebab case), and a scenario's `capacity` block may set any of them
 * as its defaults (the flags win).
 */
export const CAPACITY_SEARCH_OPTIONS = {
  /** The SLO, thresholds like 'fanoutMs.p99 < 250' (all must hold). */
  slo: z.array(z.string()),
  /** What the search raises: `sockets` (default) or `rate` (updates/s of the whole fleet at the scenario's sockets). */
  axis: z.enum(CAPACITY_AXES).default('sockets'),
  /** Sockets axis: upper end of the search, sockets (default 30000). */
  maxConnections: sockets.default(30_000),
  /** Sockets axis: sockets added per step (default 2500). */
  step: sockets.default(2500),
  /** Sockets axis: first step (default: the step, or the maximum when smaller). */
  startConnections: sockets.optional(),
  /** Measured seconds per step (default: the scenario's first stage). */
  durationSec: FLEET_OPTIONS.durationSec.optional(),
  /** Rate axis: sockets of every step (default: the scenario's first stage). */
  connections: sockets.optional(),
  /** Rate axis: first offered rate, updates/s (default: the scenario's own rate at its sockets). */
  startRate: rate.optional(),
  /** Rate axis: each step offers this many times the previous rate (default 1.5). */
  rateFactor: z.number().min(1.01).max(10).default(1.5),
  /** Rate axis: the last step at most, updates/s (default 50,000). */
  maxRate: rate.default(50_000),
  /** Rate axis: stop when BUSY_EXHAUSTED + OVERLOADED + WRITE_FAILED pass this share of the updates sent (default 0.001 = 0.1 %). */
  maxErrorRate: z.number().min(0).max(1).default(0.001),
  /** Rate axis: measure the fleet's own ceiling against a no-op sink after the variants (default true). */
  fleetCeiling: z.boolean().default(true),
};
