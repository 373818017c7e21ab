/**
 * The capacity report (`result.capacity`, written by `wami-bench capacity`): per variant, each step
 * of the search, the largest value of the search's axis that met the SLO, and why the search stopped.
 * The axis is `sockets` (raise the connections at the scenario's per-user rate) or `rate` (raise
 * the offered updates per second of the whole fleet at a fixed number of sockets); `largestPassing`
 * and `stoppedAt` are in that axis's unit (sockets, or updates/s).
 */
import { z } from 'zod';
import { RunStatusSchema } from './fleet-result.js';

const num = z.number();
const nullableNum = z.number().nullable();

export const CAPACITY_AXES = ['sockets', 'rate'] as const;
export type CapacityAxis = (typeof CAPACITY_AXES)[number];

/**
 * Why a variant's search stopped. `errors`: (rate axis) the server answered more than the allowed
 * share of updates with BUSY_EXHAUSTED, OVERLOADED or WRITE_FAILED.
 */
export const CAPACITY_STOPS = ['slo-broken', 'errors', 'fleet-invalid', 'errored', 'audit-failed', 'max-reached', 'interrupted'] as const;
export type CapacityStop = (typeof CAPACITY_STOPS)[number];

/**
 * What a step showed of each design's way of failing (rate axis; null where the server does not
 * expose it). Rates are per second over the run's measured window; ratios per update received.
 */
export const StepSignalsSchema = z.object({
  /** Offered (scheduled) updates per second over the whole fleet. */
  offeredRate: num,
  /** Updates sent per second, whole run (warm-up included) over its sending window. */
  sentRate: num,
  ackP50Ms: num,
  ackP99Ms: num,
  fanoutP99Ms: num,
  /** Updates answered BUSY_EXHAUSTED, OVERLOADED or WRITE_FAILED, over updates sent (0.001 = 0.1 %). */
  errorRate: num,
  /** Error frames by code (all codes). */
  errorsByCode: z.record(z.string(), num),
  /** per-request: SQLITE_BUSY met per update received; batched: busy transactions per update. */
  busyPerUpdate: nullableNum,
  /** Transaction attempts beyond the first, per update received. */
  retriesPerUpdate: nullableNum,
  /** Updates answered BUSY_EXHAUSTED (retries ran out), as the server counted them (null: not exposed). */
  exhausted: nullableNum,
  /** Transaction attempts per update, p99 and max bound (from the server's histogram). */
  attemptsP99: nullableNum,
  attemptsMax: nullableNum,
  /** batched: highest queue depth over the measured window (the server keeps the peak between scrapes). */
  queueDepthPeak: nullableNum,
  /** batched: one flush (take the queue, commit, ack), p99 and max bound, ms, against `flushIntervalMs`. */
  flushMsP99: nullableNum,
  flushMsMax: nullableNum,
  flushIntervalMs: nullableNum,
  /** Updates refused with OVERLOADED. */
  overloaded: num,
  /** Transaction BEGIN to COMMIT, p99, ms. */
  commitMsP99: nullableNum,
  /** -wal file size, highest and at the end of the run, bytes. */
  walBytesMax: nullableNum,
  walBytesEnd: nullableNum,
  /** Times the WAL went back to its start after a complete checkpoint, during the run. */
  walRestarts: nullableNum,
  /** Highest WAL frames not yet checkpointed into the database, at a scrape. */
  walBacklogFramesMax: nullableNum,
  /** Event-loop delay p99, ms: the worst process in the worst second of the measured window. */
  eventLoopDelayMsMax: nullableNum,
  /** The fleet's schedule lag p99 and its worst worker's event-loop delay p99, ms. */
  fleetLagMsP99: num,
  fleetEventLoopDelayMsP99: num,
});
export type StepSignals = z.infer<typeof StepSignalsSchema>;

/**
 * One step: its socket count (and, on the rate axis, its offered rate), the run's status, whether
 * the SLO held, the SLO metrics' values and (rate axis) the pressure signals.
 */
export const CapacityStepSchema = z.object({
  connections: num,
  rate: num.optional(),
  status: RunStatusSchema,
  sloPass: z.boolean(),
  actual: z.record(z.string(), nullableNum),
  signals: StepSignalsSchema.optional(),
});
export type CapacityStep = z.infer<typeof CapacityStepSchema>;

/**
 * One variant's search. `largestPassing`: the largest step (sockets or updates/s, by the axis) whose
 * run was valid, met the SLO, passed the audit and (rate axis) stayed under the error rate (null if
 * none). `stoppedBecause`: why the search ended (null while running).
 */
export const CapacityVariantSchema = z.object({
  variant: z.string(),
  steps: z.array(CapacityStepSchema),
  largestPassing: nullableNum,
  stoppedAt: nullableNum,
  stoppedBecause: z.enum(CAPACITY_STOPS).nullable(),
  detail: z.string(),
});
export type CapacityVariant = z.infer<typeof CapacityVariantSchema>;

/** The rate axis's search: first rate, factor between steps, maximum, allowed error share. */
export const RateSearchSchema = z.object({ startRate: num, factor: num, maxRate: num, maxErrorRate: num, connections: num });
export type RateSearch = z.infer<typeof RateSearchSchema>;

/**
 * One step of the fleet's own ceiling: the same fleet (sockets, boards, rate) against a sink that
 * answers every update at once from RAM (an ack and the broadcasts, no SQLite), so only the fleet
 * and the cheapest possible server share the machine.
 */
export const FleetCeilingStepSchema = z.object({
  rate: num,
  status: RunStatusSchema,
  reasons: z.array(z.string()),
  sentRate: num,
  lagMsP99: num,
  eventLoopDelayMsP99: num,
  cpuPctMax: num,
  ackP99Ms: num,
});

/**
 * The fleet's send ceiling on this machine: the largest offered rate at which the fleet kept its
 * schedule against the sink (null if it never did), and the first rate at which it did not (null:
 * it held every rate tried). A variant's knee at or above `largestValid` is the fleet's limit.
 */
export const FleetCeilingSchema = z.object({
  largestValid: nullableNum,
  firstInvalid: nullableNum,
  steps: z.array(FleetCeilingStepSchema),
  detail: z.string(),
});
export type FleetCeiling = z.infer<typeof FleetCeilingSchema>;

export const CapacityReportSchema = z.object({
  /** Which axis the search raised (absent in results written before the rate axis: sockets). */
  axis: z.enum(CAPACITY_AXES).optional(),
  slo: z.array(z.string()),
  /** Sockets axis: first step, step, maximum. Rate axis: the fixed socket count in all three, step 0. */
  startConnections: num,
  step: num,
  maxConnections: num,
  durationSec: num,
  /** Rate axis: the search's parameters. */
  rate: RateSearchSchema.optional(),
  /** Rate axis: the fleet's own ceiling, when measured. */
  fleetCeiling: FleetCeilingSchema.optional(),
  variants: z.array(CapacityVariantSchema),
});
export type CapacityReport = z.infer<typeof CapacityReportSchema>;

/** The axis of a report (sockets for results written before the rate axis). */
export function axisOf(c: Pick<CapacityReport, 'axis'>): CapacityAxis {
  return c.axis ?? 'sockets';
}

/** Whether a variant's stop is the fleet's (the measuring machine's) limit: it fell behind, or the stop is at or past what the fleet could not offer even to a no-op sink. */
export function stopIsFleetLimit(v: Pick<CapacityVariant, 'stoppedAt' | 'stoppedBecause'>, c: FleetCeiling | undefined): boolean {
  if (v.stoppedBecause === 'fleet-invalid') return true;
  if (!c || v.stoppedAt === null || c.firstInvalid === null) return false;
  return v.stoppedAt >= c.firstInvalid;
}
