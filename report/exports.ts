/**
 * Exports for the benchmark tools CI users already run. Both carry the gate metrics (metrics.ts
 * GATE_METRICS) per variant and stage, as medians of valid runs; cells with no valid run are left
 * out rather than reported as numbers.
 *
 * - github-action-benchmark, tool `customSmallerIsBetter`: an array of
 *   `{ name, unit, value, range?, extra? }`.
 * - Bencher Metric Format (BMF): `{ "<benchmark>": { "<measure>": { value, lower_value?, upper_value? } } }`,
 *   with lower/upper the min and max over the valid repeats when there are several.
 */
import type { ResultFile } from '../model/result.js';
import { fmtNum, sig, type Unit } from './format.js';
import { GATE_METRICS, type MetricDef } from './metrics.js';
import { groupByStage, valuesOf } from './runs.js';
import { median } from './stats.js';

export interface GabEntry {
  name: string;
  unit: string;
  value: number;
  range?: string;
  extra?: string;
}

export interface BmfMeasure {
  value: number;
  lower_value?: number;
  upper_value?: number;
}

export type Bmf = Record<string, Record<string, BmfMeasure>>;

const GAB_UNIT: Record<Unit, string> = { ms: 'ms', bytes: 'bytes', sec: 's', count: 'count', perSec: '1/s', pct: '%' };

/** "fanout.p99Ms" -> "fanout-p99-ms", "server.rssBytesPerSocket" -> "server-rss-bytes-per-socket" */
export function measureSlug(m: MetricDef): string {
  return m.id
    .replace(/\./g, '-')
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .toLowerCase();
}

interface Cell {
  variant: string;
  connections: number;
  metric: MetricDef;
  values: number[];
  total: number;
}

function cells(result: ResultFile): Cell[] {
  const out: Cell[] = [];
  for (const g of groupByStage(result)) {
    for (const c of g.cells) {
      if (c.runs.length === 0) continue;
      for (const m of GATE_METRICS) out.push({ variant: c.variant, connections: g.connections, metric: m, values: valuesOf(c.valid, m), total: c.runs.length });
    }
  }
  return out;
}

/** github-action-benchmark `customSmallerIsBetter` entries (all gate metrics are lower-is-better). */
export function toGithubActionBenchmark(result: ResultFile): GabEntry[] {
  const out: GabEntry[] = [];
  for (const c of cells(result)) {
    if (c.values.length === 0) continue;
    const value = sig(median(c.values), 6);
    const entry: GabEntry = {
      name: `${result.scenario.name} · ${c.variant} · ${c.connections} sockets · ${c.metric.label}`,
      unit: GAB_UNIT[c.metric.unit],
      value,
    };
    if (c.values.length > 1) {
      const lo = Math.min(...c.values);
      const hi = Math.max(...c.values);
      entry.range = `${fmtNum(lo)}–${fmtNum(hi)}`;
    }
    entry.extra = `median of ${c.values.length} valid run${c.values.length === 1 ? '' : 's'} of ${c.total}; run ${result.runId}; commit ${result.environment.git.commit ?? 'unknown'}`;
    out.push(entry);
  }
  return out;
}

/** Bencher Metric Format: benchmark "<scenario>/<variant>/<N> sockets", measures by metric slug. */
export function toBencherBmf(result: ResultFile): Bmf {
  const out: Bmf = {};
  for (const c of cells(result)) {
    if (c.values.length === 0) continue;
    const bench = `${result.scenario.name}/${c.variant}/${c.connections} sockets`;
    const m: BmfMeasure = { value: sig(median(c.values), 6) };
    if (c.values.length > 1) {
      m.lower_value = sig(Math.min(...c.values), 6);
      m.upper_value = sig(Math.max(...c.values), 6);
    }
    (out[bench] ??= {})[measureSlug(c.metric)] = m;
  }
  return out;
}
