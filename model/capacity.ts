/**
 * The capacity report (`result.capacity`, written by `wami-bench capacity`): per variant, each step
 * of the search, the largest socket count that met the SLO, and why the search stopped.
 */
import { z } from 'zod';
import { RunStatusSchema } from './fleet-result.js';

const num = z.number();
const nullableNum = z.number().nullable();

export const CAPACITY_STOPS = ['slo-broken', 'fleet-invalid', 'errored', 'audit-failed', 'max-reached', 'interrupted'] as const;
export type CapacityStop = (typeof CAPACITY_STOPS)[number];

/** One step: its socket count, the run's status, whether the SLO held, and the SLO metrics' values. */
export const CapacityStepSchema = z.object({ connections: num, status: RunStatusSchema, sloPass: z.boolean(), actual: z.record(z.string(), nullableNum) });
export type CapacityStep = z.infer<typeof CapacityStepSchema>;

/**
 * One variant's search. `largestPassing`: the largest socket count whose run was valid, met the SLO
 * and passed the audit (null if none). `stoppedBecause`: why the search ended (null while running).
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

export const CapacityReportSchema = z.object({
  slo: z.array(z.string()),
  startConnections: num,
  step: num,
  maxConnections: num,
  durationSec: num,
  variants: z.array(CapacityVariantSchema),
});
export type CapacityReport = z.infer<typeof CapacityReportSchema>;
