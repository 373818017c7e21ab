/**
 * The capacity section (a result of `wami-bench capacity` carries `capacity`): per variant the
 * largest socket count that met the SLO, why the search stopped, and a chart of each SLO metric
 * against sockets. A fleet that could not keep its schedule is the measuring machine's limit, not
 * the server's, and the text says so; so is a search that stopped at the maximum asked for.
 */
import type { CapacityReport, CapacityVariant } from '../model/capacity.js';
import { parseThreshold } from '../scenarios/thresholds.js';
import { fmtNum, sig, type Unit } from './format.js';

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
  'fleet-invalid':
    'the fleet could not keep its own schedule: the measuring machine’s limit, not the server’s; the server held at least the largest passing count',
  errored: 'a run errored',
  'audit-failed': 'the audit found lost or phantom updates',
  'max-reached': 'the SLO held up to the maximum asked for: the real limit is higher',
  interrupted: 'the search was interrupted',
};

/** One row per variant. */
export function capacityRows(c: CapacityReport): CapacityRow[] {
  return c.variants.map((v) => {
    const lowerBound = v.stoppedBecause === 'fleet-invalid' || v.stoppedBecause === 'max-reached' || v.stoppedBecause === 'interrupted';
    const largest = v.largestPassing === null ? 'none' : `${lowerBound ? '≥ ' : ''}${fmtNum(v.largestPassing)}`;
    return {
      variant: v.variant,
      largest,
      serverLimit: v.largestPassing !== null && v.stoppedBecause === 'slo-broken',
      stoppedAt: v.stoppedAt === null ? '—' : fmtNum(v.stoppedAt),
      why: v.stoppedBecause ? STOP_TEXT[v.stoppedBecause] : 'not finished',
      detail: v.detail,
      ok: v.stoppedBecause !== 'errored' && v.stoppedBecause !== 'audit-failed',
    };
  });
}

/** "fanoutMs.p99 < 250 and ackMs.p99 < 500" */
export function sloText(c: CapacityReport): string {
  return c.slo.join(' and ') || '(none)';
}

/** "12,500 sockets in steps of 2,500 from 2,500, at most 30,000, 60 s each" */
export function searchText(c: CapacityReport): string {
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

/** [sockets, value] per step of a variant: those that passed the audit and fleet guard, and the rest. */
export function stepPoints(v: CapacityVariant, metric: string, scale = 1): { ok: Array<[number, number]>; invalid: Array<[number, number]> } {
  const ok: Array<[number, number]> = [];
  const invalid: Array<[number, number]> = [];
  for (const s of v.steps) {
    const y = s.actual[metric];
    if (y === null || y === undefined || !Number.isFinite(y)) continue;
    (s.status === 'ok' ? ok : invalid).push([s.connections, sig(y * scale, 4)]);
  }
  return { ok, invalid };
}
