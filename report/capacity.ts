/**
 * The capacity section (a result of `wami-bench capacity` carries `capacity`): per variant the
 * largest step (sockets, or offered updates/s on the rate axis) that met the SLO, why the search
 * stopped, and a chart of each SLO metric against the axis. A fleet that could not keep its schedule
 * is the measuring machine's limit, not the server's, and the text says so; so is a knee at or past
 * the fleet's own ceiling (rate axis), and a search that stopped at the maximum asked for.
 * On the rate axis, the write-scalability panel: per variant its knee and, in one sentence, what
 * limits it, read from the pressure signals of its steps (writeScalability).
 */
import { axisOf, stopIsFleetLimit, type CapacityReport, type CapacityStep, type CapacityVariant, type StepSignals } from '../model/capacity.js';
import type { ResultFile } from '../model/result.js';
import { serverProcessesOfArgv } from '../model/variants.js';
import { parseThreshold } from '../scenarios/thresholds.js';
import { fmtMs, fmtNum, sig, type Unit } from './format.js';

export interface CapacityRow {
  variant: string;
  /** "12,500", "≥ 20,000" (a lower bound), or "none". */
  largest: string;
  /** Whether `largest` is the server's measured limit (false: a lower bound, or none found). */
  serverLimit: boolean;
  stoppedAt: string;
  /** Why the search stopped, in plain words. */
  why: string;
  /** The runner's own account of the stop. */
  detail: string;
  /** false when the stop is a problem (errored, audit failed). */
  ok: boolean;
}

const STOP_TEXT: Record<NonNullable<CapacityVariant['stoppedBecause']>, string> = {
  'slo-broken': 'the SLO broke: this is the server’s measured limit on this machine',
  errors: 'write errors (BUSY_EXHAUSTED, OVERLOADED, WRITE_FAILED) passed the allowed rate: the server’s measured limit on this machine',
  'fleet-invalid':
    'the fleet could not keep its own schedule: the measuring machine’s limit, not the server’s; the server held at least the largest passing count',
  errored: 'a run errored',
  'audit-failed': 'the audit found lost or phantom updates',
  'max-reached': 'the SLO held up to the maximum asked for: the real limit is higher',
  interrupted: 'the search was interrupted',
};

const FLEET_CEILING_TEXT = 'at or past what the fleet could offer even to a no-op sink (its own ceiling): the fleet’s limit, not the server’s';

/** One row per variant. */
export function capacityRows(c: CapacityReport): CapacityRow[] {
  return c.variants.map((v) => {
    const fleetLimit = v.stoppedBecause !== 'fleet-invalid' && stopIsFleetLimit(v, c.fleetCeiling);
    const lowerBound = fleetLimit || v.stoppedBecause === 'fleet-invalid' || v.stoppedBecause === 'max-reached' || v.stoppedBecause === 'interrupted';
    const largest = v.largestPassing === null ? 'none' : `${lowerBound ? '≥ ' : ''}${fmtNum(v.largestPassing)}`;
    return {
      variant: v.variant,
      largest,
      serverLimit: v.largestPassing !== null && (v.stoppedBecause === 'slo-broken' || v.stoppedBecause === 'errors') && !fleetLimit,
      stoppedAt: v.stoppedAt === null ? '—' : fmtNum(v.stoppedAt),
      why: fleetLimit ? FLEET_CEILING_TEXT : v.stoppedBecause ? STOP_TEXT[v.stoppedBecause] : 'not finished',
      detail: v.detail,
      ok: v.stoppedBecause !== 'errored' && v.stoppedBecause !== 'audit-failed',
    };
  });
}

/** The unit of the search's axis: "sockets" or "updates/s". */
export function axisUnitText(c: CapacityReport): string {
  return axisOf(c) === 'rate' ? 'updates/s' : 'sockets';
}

/** "fanoutMs.p99 < 250 and ackMs.p99 < 500" */
export function sloText(c: CapacityReport): string {
  return c.slo.join(' and ') || '(none)';
}

/** "from 2,500 sockets in steps of 2,500, at most 30,000, 60 s measured per step", or the rate axis's search. */
export function searchText(c: CapacityReport): string {
  if (axisOf(c) === 'rate' && c.rate) {
    const r = c.rate;
    return (
      `the offered rate from ${fmtNum(r.startRate)} updates/s, ×${fmtNum(r.factor)} per step, at most ${fmtNum(r.maxRate)}, at ${fmtNum(r.connections)} sockets, ` +
      `${fmtNum(c.durationSec)} s measured per step, write errors allowed up to ${fmtNum(r.maxErrorRate * 100)} % of updates`
    );
  }
  return `from ${fmtNum(c.startConnections)} sockets in steps of ${fmtNum(c.step)}, at most ${fmtNum(c.maxConnections)}, ${fmtNum(c.durationSec)} s measured per step`;
}

export interface SloMetric {
  metric: string;
  expr: string;
  op: string;
  limit: number;
  unit: Unit;
}

/** The unit of a threshold metric id, from its name (units are in the names). */
export function unitOfMetric(id: string): Unit {
  if (/Ms(\.|$)/.test(id)) return 'ms';
  if (/Bytes/.test(id)) return 'bytes';
  if (/Sec$/.test(id)) return 'sec';
  return 'count';
}

/** The SLO's metrics, parsed; an expression that does not parse is skipped. */
export function sloMetrics(c: CapacityReport): SloMetric[] {
  const out: SloMetric[] = [];
  for (const expr of c.slo) {
    try {
      const t = parseThreshold(expr);
      out.push({ metric: t.metric, expr: t.expr, op: t.op, limit: t.limit, unit: unitOfMetric(t.metric) });
    } catch {
      /* not a threshold this version knows: listed in the text, not charted */
    }
  }
  return out;
}

/** A step's place on the axis: its offered rate on the rate axis, else its sockets. */
export function stepX(s: CapacityStep): number {
  return s.rate ?? s.connections;
}

/** [axis value, value] per step of a variant: those that passed the audit and fleet guard, and the rest. */
export function stepPoints(v: CapacityVariant, metric: string, scale = 1): { ok: Array<[number, number]>; invalid: Array<[number, number]> } {
  return signalPoints(v, (s) => s.actual[metric], scale);
}

/** [axis value, value] per step from any reading of the step (null or missing: no point). */
export function signalPoints(
  v: CapacityVariant,
  read: (s: CapacityStep) => number | null | undefined,
  scale = 1,
): { ok: Array<[number, number]>; invalid: Array<[number, number]> } {
  const ok: Array<[number, number]> = [];
  const invalid: Array<[number, number]> = [];
  for (const s of v.steps) {
    const y = read(s);
    if (y === null || y === undefined || !Number.isFinite(y)) continue;
    (s.status === 'ok' ? ok : invalid).push([stepX(s), sig(y * scale, 4)]);
  }
  return { ok, invalid };
}

// ---- the write-scalability panel (rate axis) ----

/** What limits a variant, in one sentence, with the figures behind it. */
export interface ScalabilityRow {
  variant: string;
  kind: string;
  /** "per-request with 2 workers", "batched". */
  label: string;
  /** Largest rate that passed (updates/s), null if none. */
  knee: number | null;
  stoppedAt: number | null;
  /** Whether the limit found is the fleet's (it fell behind, or the stop is past the fleet's own ceiling). */
  fleetLimit: boolean;
  /** The stop step's signals, when there is one. */
  at: StepSignals | null;
  sentence: string;
}

const pct = (x: number): string => `${fmtNum(x * 100)} %`;

/** How a design failed at a step, from its own pressure signals (what the server said), in words. */
export function failureMode(kind: string, g: StepSignals, slowMs = 50): string {
  const errCodes = Object.entries(g.errorsByCode).filter(([c, n]) => n > 0 && c !== 'BAD_MESSAGE' && c !== 'UNKNOWN_CARD');
  const eld = g.eventLoopDelayMsMax;
  if (kind === 'batched') {
    if (g.overloaded > 0)
      return `OVERLOADED answers (the queue was full${g.queueDepthPeak !== null ? `: peak ${fmtNum(g.queueDepthPeak)} updates` : ''}), ${pct(g.errorRate)} of updates refused`;
    if (g.flushMsP99 !== null && g.flushIntervalMs !== null && g.flushMsP99 > g.flushIntervalMs)
      return `its writer falling behind: a flush takes ${fmtMs(g.flushMsP99)} at p99 against a ${fmtMs(g.flushIntervalMs)} interval (queue peak ${fmtNum(g.queueDepthPeak)}), ack p99 ${fmtMs(g.ackP99Ms)}`;
    if (eld !== null && eld > slowMs)
      return `its event loop saturating (delay p99 ${fmtMs(eld)}), ack p99 ${fmtMs(g.ackP99Ms)} and fan-out p99 ${fmtMs(g.fanoutP99Ms)}`;
  } else if (kind === 'per-request') {
    const busy = g.errorsByCode.BUSY_EXHAUSTED ?? 0;
    const retries = g.retriesPerUpdate !== null ? `${fmtNum(g.retriesPerUpdate)} retries per update, attempts p99 ${fmtNum(g.attemptsP99)}` : 'retries unknown';
    if (busy > 0) return `BUSY_EXHAUSTED on ${fmtNum(busy)} update${busy === 1 ? '' : 's'} (${pct(g.errorRate)} of those sent; ${retries})`;
    if (g.retriesPerUpdate !== null && g.retriesPerUpdate >= 0.1) return `SQLITE_BUSY contention (${retries}) pushing ack p99 to ${fmtMs(g.ackP99Ms)}`;
    if (eld !== null && eld > slowMs) return `its busiest worker's event loop saturating (delay p99 ${fmtMs(eld)}), ack p99 ${fmtMs(g.ackP99Ms)}`;
  }
  if (errCodes.length && g.errorRate > 0) return `${errCodes.map(([c, n]) => `${c} ${fmtNum(n)}`).join(', ')} (${pct(g.errorRate)} of updates)`;
  return `latency: ack p99 ${fmtMs(g.ackP99Ms)}, fan-out p99 ${fmtMs(g.fanoutP99Ms)}`;
}

/** "batched", "per-request with 2 workers" (from a run of the variant), or the bare name. */
function designLabel(result: ResultFile, variant: string): { kind: string; label: string } {
  const run = result.runs.find((r) => r.variant === variant);
  if (!run) return { kind: 'unknown', label: variant };
  if (run.variantKind === 'per-request') {
    const n = serverProcessesOfArgv('per-request', run.variantFlags, result.environment.cpuCount);
    const baseline = run.variantFlags.includes('deferred') ? ', the no-retry baseline' : '';
    return { kind: run.variantKind, label: `per-request with ${n} worker${n === 1 ? '' : 's'}${baseline}` };
  }
  if (run.variantKind !== 'batched') return { kind: run.variantKind, label: `${run.variantKind} server` };
  const shards = serverProcessesOfArgv('batched', run.variantFlags, result.environment.cpuCount);
  return { kind: run.variantKind, label: shards > 1 ? `batched with ${shards} shards` : 'batched' };
}

/** One row per variant of a rate-axis search: its knee and what limits it (empty for the sockets axis). */
export function writeScalability(result: ResultFile): ScalabilityRow[] {
  const c = result.capacity;
  if (!c || axisOf(c) !== 'rate') return [];
  return c.variants.map((v) => {
    const { kind, label } = designLabel(result, v.variant);
    const stopStep = v.stoppedAt === null ? undefined : [...v.steps].reverse().find((s) => stepX(s) === v.stoppedAt);
    const at = stopStep?.signals ?? null;
    const fleetLimit = stopIsFleetLimit(v, c.fleetCeiling);
    const knee = v.largestPassing;
    const sustains = knee === null ? `${v.variant} (${label}) sustains none of the rates tried` : `${v.variant} (${label}) sustains ${fmtNum(knee)} updates/s`;
    const z = v.stoppedAt === null ? '' : fmtNum(v.stoppedAt);
    let rest: string;
    if (v.stoppedBecause === 'fleet-invalid') {
      const also = at && (at.errorRate > 0 || stopStep?.sloPass === false) ? `; the server was also failing: ${failureMode(kind, at)}` : '';
      rest = `, limited by the fleet: at ${z} updates/s the fleet could not keep its own schedule (the measuring machine’s limit, not the server’s)${also}`;
    } else if (fleetLimit) {
      rest = `, limited by the fleet: at ${z} updates/s it is past what the fleet could offer even to a no-op sink (${fmtNum(c.fleetCeiling?.largestValid)} updates/s)${at ? `; what the server showed there: ${failureMode(kind, at)}` : ''}`;
    } else if (v.stoppedBecause === 'max-reached') {
      rest = ` up to the maximum asked for: its limit is higher`;
    } else if (v.stoppedBecause === 'errored') {
      rest = `; at ${z} updates/s its run errored, so the search is incomplete`;
    } else if (v.stoppedBecause === 'audit-failed') {
      rest = `; at ${z} updates/s the audit found lost or phantom updates`;
    } else if (v.stoppedBecause === 'interrupted' || v.stoppedBecause === null) {
      rest = '; the search did not finish';
    } else {
      rest = `, then fails at ${z} updates/s by ${at ? failureMode(kind, at) : 'its SLO'}`;
    }
    return { variant: v.variant, kind, label, knee, stoppedAt: v.stoppedAt, fleetLimit, at, sentence: `${sustains}${rest}.` };
  });
}
