/**
 * SQLITE_BUSY contention as a curve over the worker count (the `contention` scenario): for the runs
 * of one stage and repeat, each per-request variant's BUSY hits and retries per update, exhausted
 * share, attempts p99 and ack p99.9 against its worker processes; the no-retry baseline (deferred
 * transactions) and batched as references. Pure: a function of the runs.
 */
import type { RunRecord } from '../model/result.js';
import { serverProcessesOfArgv } from '../model/variants.js';
import { isValid } from './runs.js';

export interface ContentionPoint {
  variant: string;
  workers: number;
  /** The plain Redbean/Fullmoon baseline (deferred transactions, no app retry). */
  baseline: boolean;
  valid: boolean;
  busyPerUpdate: number | null;
  retriesPerUpdate: number | null;
  /** BUSY_EXHAUSTED answers over updates sent, percent. */
  exhaustedPct: number;
  attemptsP99: number | null;
  ackP999Ms: number;
}

export interface ContentionCurve {
  /** Per-request with BEGIN IMMEDIATE and the app's retry, by worker count. */
  perRequest: ContentionPoint[];
  baseline: ContentionPoint[];
  /** batched's ack p99.9, for reference. */
  batched: Array<{ variant: string; ackP999Ms: number; valid: boolean }>;
}

const per = (n: number | null, d: number | null): number | null => (n !== null && d !== null && d > 0 ? Math.round((n / d) * 1e4) / 1e4 : null);

/** The curve of these runs, or null when they hold fewer than two per-request worker counts. */
export function contentionCurve(runs: readonly RunRecord[], cpuCount: number): ContentionCurve | null {
  const perRequest: ContentionPoint[] = [];
  const baseline: ContentionPoint[] = [];
  const batched: ContentionCurve['batched'] = [];
  for (const r of runs) {
    if (r.variantKind === 'batched') {
      batched.push({ variant: r.variant, ackP999Ms: r.latency.ackMs.p999, valid: isValid(r) });
      continue;
    }
    if (r.variantKind !== 'per-request') continue;
    const s = r.server;
    const p: ContentionPoint = {
      variant: r.variant,
      workers: serverProcessesOfArgv('per-request', r.variantFlags, cpuCount),
      baseline: r.variantFlags.includes('deferred'),
      valid: isValid(r),
      busyPerUpdate: per(s.busyHits, s.updatesReceived),
      retriesPerUpdate: per(s.retries, s.updatesReceived),
      exhaustedPct: r.updates.sent > 0 ? Math.round(((r.errors.byCode.BUSY_EXHAUSTED ?? 0) / r.updates.sent) * 1e6) / 1e4 : 0,
      attemptsP99: s.txAttempts?.p99 ?? null,
      ackP999Ms: r.latency.ackMs.p999,
    };
    (p.baseline ? baseline : perRequest).push(p);
  }
  perRequest.sort((a, b) => a.workers - b.workers);
  baseline.sort((a, b) => a.workers - b.workers);
  if (new Set(perRequest.map((p) => p.workers)).size < 2) return null;
  return { perRequest, baseline, batched };
}
