/**
 * The rate axis of a capacity search, pure: the ladder of offered rates (updates per second over the
 * whole fleet, at a fixed number of sockets), the stop rules of one step, what a step showed of each
 * design's way of failing (`stepSignals`), and the fleet's own ceiling (the same fleet against a
 * no-op sink, tried top-down from the highest rate any variant was run at). Tested with exact numbers.
 */
import type { CapacityStop, CapacityVariant, FleetCeiling, StepSignals } from '../model/capacity.js';
import type { RunRecord } from '../model/result.js';
import { resolveBatchedOptions, variantSetFromArgv } from '../model/variants.js';
import { evaluateThresholds, type ParsedThreshold } from '../scenarios/thresholds.js';
import type { SinkRunSummary } from './fleet-ceiling.js';

export interface RateConfig {
  slo: ParsedThreshold[];
  /** Sockets of every step (the scenario's). */
  connections: number;
  /** First offered rate, updates/s. */
  startRate: number;
  /** Each step offers `factor` times the previous one (rounded to whole updates/s). */
  factor: number;
  /** Last step at most; the ladder ends on it. */
  maxRate: number;
  /** Stop when BUSY_EXHAUSTED + OVERLOADED + WRITE_FAILED exceed this share of the updates sent (0.001 = 0.1 %). */
  maxErrorRate: number;
}

/** The server's answers that count as a failed write on the rate axis. */
export const WRITE_ERROR_CODES = ['BUSY_EXHAUSTED', 'OVERLOADED', 'WRITE_FAILED'] as const;

/**
 * The offered rates: round(start · factor^k) for k = 0, 1, … while below the maximum, then the
 * maximum itself; each at least one more than the one before. start 500, factor 1.5, max 5000:
 * 500, 750, 1125, 1688, 2531, 3797, 5000.
 */
export function rateLadder(cfg: Pick<RateConfig, 'startRate' | 'factor' | 'maxRate'>): number[] {
  const { startRate, factor, maxRate } = cfg;
  if (!(factor > 1)) throw new RangeError(`the rate factor must be above 1, got ${factor}`);
  const out: number[] = [];
  for (let k = 0; ; k++) {
    const prev = out[out.length - 1] ?? 0;
    const r = Math.max(prev + 1, Math.round(startRate * factor ** k));
    if (r >= maxRate) {
      out.push(maxRate);
      return out;
    }
    out.push(r);
  }
}

/** Each user's rate, updates per minute, for `rate` updates/s over `connections` users. */
export function perUserRate(rate: number, connections: number): number {
  return (rate * 60) / connections;
}

/** The next rate to offer this variant, or null when its search is over. */
export function nextRate(v: CapacityVariant, cfg: Pick<RateConfig, 'startRate' | 'factor' | 'maxRate'>): number | null {
  if (v.stoppedBecause !== null) return null;
  const ladder = rateLadder(cfg);
  const last = v.steps[v.steps.length - 1];
  if (!last) return ladder[0]!;
  return ladder.find((r) => r > (last.rate ?? last.connections)) ?? null;
}

/** BUSY_EXHAUSTED + OVERLOADED + WRITE_FAILED answers over updates sent (0 when nothing was sent). */
export function writeErrorRate(run: Pick<RunRecord, 'errors' | 'updates'>): number {
  const n = WRITE_ERROR_CODES.reduce((a, c) => a + (run.errors.byCode[c] ?? 0), 0);
  return run.updates.sent > 0 ? n / run.updates.sent : 0;
}

const r3 = (x: number): number => Math.round(x * 1000) / 1000;
const per = (n: number | null, d: number | null): number | null => (n !== null && d !== null && d > 0 ? Math.round((n / d) * 1e4) / 1e4 : null);

/** The batched flush interval a run was started with (its recorded argv), null for other kinds. */
export function flushIntervalOf(run: Pick<RunRecord, 'variantKind' | 'variantFlags'>): number | null {
  if (run.variantKind !== 'batched') return null;
  try {
    return resolveBatchedOptions(variantSetFromArgv('batched', run.variantFlags)).flushIntervalMs;
  } catch {
    return null;
  }
}

/** What one step showed of the design's way of failing, from its run record. */
export function stepSignals(run: RunRecord, offeredRate: number): StepSignals {
  const s = run.server;
  const sendSec = run.window.warmupSec + run.window.durationSec;
  const attempts = s.txAttempts ?? null;
  const flush = s.flushMs ?? null;
  return {
    offeredRate,
    sentRate: sendSec > 0 ? r3(run.updates.sent / sendSec) : 0,
    ackP50Ms: run.latency.ackMs.p50,
    ackP99Ms: run.latency.ackMs.p99,
    fanoutP99Ms: run.latency.fanoutMs.p99,
    errorRate: Math.round(writeErrorRate(run) * 1e6) / 1e6,
    errorsByCode: { ...run.errors.byCode },
    busyPerUpdate: per(s.busyHits, s.updatesReceived),
    retriesPerUpdate: per(s.retries, s.updatesReceived),
    exhausted: s.exhausted,
    attemptsP99: attempts?.p99 ?? null,
    attemptsMax: attempts?.max ?? null,
    queueDepthPeak: s.queueDepthPeak ?? null,
    flushMsP99: flush?.p99 ?? null,
    flushMsMax: flush?.max ?? null,
    flushIntervalMs: flushIntervalOf(run),
    overloaded: run.errors.byCode.OVERLOADED ?? 0,
    commitMsP99: s.commitMs?.p99 == null ? null : r3(s.commitMs.p99),
    walBytesMax: s.walBytesMax,
    walBytesEnd: s.walBytesEnd ?? null,
    walRestarts: s.walRestarts ?? null,
    walBacklogFramesMax: s.walBacklogFramesMax ?? null,
    eventLoopDelayMsMax: s.eventLoopDelayMsMaxProc ?? s.eventLoopDelayMsP99,
    fleetLagMsP99: run.fleet.lagMsP99,
    fleetEventLoopDelayMsP99: run.fleet.eventLoopDelayMsP99,
  };
}

const pct = (x: number): string => `${Math.round(x * 10000) / 100} %`;

/**
 * Folds one rate step's run into the variant's state (mutates and returns it). Stops, in this
 * order: the run errored; the audit failed; the fleet fell behind (the measuring machine's limit,
 * never the server's: the detail still says when the server was also failing writes); the write
 * errors passed `maxErrorRate`; the SLO broke. Otherwise the rate passes, and the maximum ends it.
 */
export function recordRateStep(v: CapacityVariant, rate: number, run: RunRecord, cfg: RateConfig): CapacityVariant {
  const outcomes = evaluateThresholds(run, cfg.slo);
  const sloPass = outcomes.every((o) => o.pass);
  const signals = stepSignals(run, rate);
  v.steps.push({
    connections: run.stage.connections,
    rate,
    status: run.status,
    sloPass,
    actual: Object.fromEntries(outcomes.map((o) => [o.metric, o.actual])),
    signals,
  });
  const stop = (because: CapacityStop, detail: string): CapacityVariant => {
    v.stoppedAt = rate;
    v.stoppedBecause = because;
    v.detail = detail;
    return v;
  };
  const at = `at ${rate} updates/s`;
  const errs = WRITE_ERROR_CODES.filter((c) => (run.errors.byCode[c] ?? 0) > 0).map((c) => `${c} ${run.errors.byCode[c]}`);
  const errText = `${pct(signals.errorRate)} of ${run.updates.sent} updates sent answered with an error (${errs.join(', ')})`;
  if (run.status === 'errored') return stop('errored', `the run ${at} errored: ${run.reasons.join('; ')}`);
  if (run.audit && !run.audit.ok) return stop('audit-failed', `the audit failed ${at} (lostAcked ${run.audit.lostAcked}, phantom ${run.audit.phantom})`);
  const failedSlo = outcomes.filter((o) => !o.pass).map((o) => `${o.expr} (actual ${o.actual === null ? 'n/a' : Math.round(o.actual * 100) / 100})`);
  if (run.status === 'invalid') {
    const also =
      (signals.errorRate > cfg.maxErrorRate ? `; the server also had ${errText}` : '') +
      (failedSlo.length ? `; the SLO was also broken: ${failedSlo.join('; ')}` : '');
    return stop(
      'fleet-invalid',
      `${at} the fleet could not hold its own schedule (${run.reasons.join('; ')}): this is the measuring machine's limit, not a measured limit of the server${also}`,
    );
  }
  if (signals.errorRate > cfg.maxErrorRate) return stop('errors', `${at}, ${errText}: more than the ${pct(cfg.maxErrorRate)} allowed`);
  if (!sloPass) return stop('slo-broken', `the SLO broke ${at}: ${failedSlo.join('; ')}`);
  v.largestPassing = rate;
  if (rate >= cfg.maxRate) return stop('max-reached', `the SLO held up to the maximum asked for, ${cfg.maxRate} updates/s`);
  return v;
}

// ---- the fleet's own ceiling ----

/** The highest rate any variant was run at (null when none ran): the fleet must be shown to hold up to it. */
export function ceilingNeededUpTo(variants: readonly CapacityVariant[]): number | null {
  let top: number | null = null;
  for (const v of variants) for (const s of v.steps) if (s.rate !== undefined && (top === null || s.rate > top)) top = s.rate;
  return top;
}

export function newFleetCeiling(): FleetCeiling {
  return { largestValid: null, firstInvalid: null, steps: [], detail: '' };
}

/**
 * The next rate to try against the sink, top-down: the highest rate any variant ran at first, then
 * each lower rate of the ladder, until one holds (the fleet's ceiling) or none is left. Null: done.
 */
export function nextCeilingRate(c: FleetCeiling, ladder: readonly number[], upTo: number | null): number | null {
  if (upTo === null || c.largestValid !== null || c.steps.some((s) => s.status === 'errored')) return null;
  const tried = new Set(c.steps.map((s) => s.rate));
  const down = [upTo, ...ladder.filter((r) => r < upTo).reverse()];
  return down.find((r) => !tried.has(r)) ?? null;
}

/** Folds one sink run into the ceiling (mutates and returns it); `upTo` as for nextCeilingRate. An errored run ends the measurement. */
export function recordCeilingStep(c: FleetCeiling, rate: number, f: SinkRunSummary, upTo: number): FleetCeiling {
  c.steps.push({
    rate,
    status: f.status,
    reasons: f.reasons,
    sentRate: f.sentRate,
    lagMsP99: f.lagMsP99,
    eventLoopDelayMsP99: f.eventLoopDelayMsP99,
    cpuPctMax: f.cpuPctMax,
    ackP99Ms: f.ackP99Ms,
  });
  if (f.status === 'errored') {
    c.detail = `not measured: the fleet's run against the sink at ${rate} updates/s errored (${f.reasons.join('; ')})`;
    return c;
  }
  if (f.status === 'ok') c.largestValid = Math.max(c.largestValid ?? 0, rate);
  else c.firstInvalid = Math.min(c.firstInvalid ?? Number.POSITIVE_INFINITY, rate);
  if (c.largestValid === upTo) {
    c.detail = `against a no-op sink the fleet held its schedule at ${upTo} updates/s, the highest rate any variant was run at: no SLO or error knee here is past the fleet's own ceiling (a step where the fleet fell behind beside a server is still the machine's limit: server and fleet share its cores)`;
  } else if (c.largestValid !== null) {
    c.detail = `against a no-op sink the fleet could not hold ${c.firstInvalid} updates/s; it held ${c.largestValid}: a knee at or above ${c.firstInvalid} updates/s is the fleet's (the measuring machine's) limit, not the server's`;
  } else {
    c.detail = `against a no-op sink the fleet held none of the rates tried (down to ${c.firstInvalid} updates/s): every knee here may be the fleet's limit`;
  }
  return c;
}
