/**
 * The saturation guard: a fleet that fell behind its own schedule, ran out of CPU, stalled its
 * event loop or did not reach every socket measured itself, not the server. Such a run is
 * `invalid`, with reasons that name the numbers. Pure.
 */
import { GuardSchema, type GuardBounds } from '../model/fleet-options.js';

export type { GuardBounds } from '../model/fleet-options.js';

/** The bounds' defaults, from their one declaration (model/fleet-options.ts). */
export const DEFAULT_GUARD: GuardBounds = GuardSchema.parse({});

export interface GuardInput {
  asked: number;
  reached: number;
  failuresByKind: Record<string, number>;
  /** Fleet-wide schedule lag p99 over the measured window, ms. */
  lagMsP99: number;
  /**
   * Updates scheduled in the window that the fleet never sent by the end (it fell so far behind
   * that they are not in the lag either). Optional: 0 when absent.
   */
  unsent?: number;
  workers: Array<{
    index: number;
    /** CPU percent of one core in each measured second, in time order. */
    cpuPctBySecond: number[];
    /** Event-loop delay p99 over the measured window, ms. */
    eventLoopDelayMsP99: number;
  }>;
}

const fmt = (x: number): string => (Math.round(x * 10) / 10).toString();

/** Longest run of consecutive values >= bound, and the max within it. */
export function longestRunAtOrAbove(values: readonly number[], bound: number): { length: number; max: number } {
  let best = { length: 0, max: 0 };
  let len = 0;
  let max = 0;
  for (const v of values) {
    if (v >= bound) {
      len++;
      max = Math.max(max, v);
      if (len > best.length) best = { length: len, max };
    } else {
      len = 0;
      max = 0;
    }
  }
  return best;
}

/** Reasons the run is invalid; empty when the fleet kept up. */
export function evaluateGuard(input: GuardInput, bounds: GuardBounds = DEFAULT_GUARD): string[] {
  const reasons: string[] = [];
  if (input.reached < input.asked) {
    const kinds = Object.entries(input.failuresByKind)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k}=${n}`)
      .join(', ');
    reasons.push(`sockets: reached ${input.reached} of ${input.asked} asked (${input.asked - input.reached} failed${kinds ? `: ${kinds}` : ''})`);
  }
  if (input.lagMsP99 > bounds.lagMsP99) {
    reasons.push(`schedule lag p99 ${fmt(input.lagMsP99)} ms exceeds the bound of ${bounds.lagMsP99} ms: the fleet fell behind its own schedule`);
  }
  if ((input.unsent ?? 0) > 0) {
    reasons.push(`${input.unsent} scheduled update${input.unsent === 1 ? ' was' : 's were'} never sent: the fleet fell behind its own schedule`);
  }
  for (const w of input.workers) {
    const run = longestRunAtOrAbove(w.cpuPctBySecond, bounds.cpuPct);
    if (run.length >= bounds.cpuSustainSec) {
      reasons.push(
        `worker ${w.index} CPU at or above ${bounds.cpuPct}% of a core for ${run.length} consecutive seconds (max ${fmt(run.max)}%): the fleet saturated its CPU`,
      );
    }
    if (w.eventLoopDelayMsP99 > bounds.eventLoopDelayMsP99) {
      reasons.push(`worker ${w.index} event-loop delay p99 ${fmt(w.eventLoopDelayMsP99)} ms exceeds the bound of ${bounds.eventLoopDelayMsP99} ms`);
    }
  }
  return reasons;
}
