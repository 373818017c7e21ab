/**
 * Steady latency: per stage and variant, p99 and p99.9 of fan-out and ack over the measured window,
 * and their drift: the corrected latency of updates scheduled in the first `drift.windowSec` of the
 * window against those in its last (60 s, or half the window when it is shorter). Values are medians
 * of the valid runs; a cell with only invalid runs shows their values, marked, and never warns.
 *
 * A drift is flagged (a warning in the verdict, red in the table) when last/first > 1.5, the change
 * is over 1 ms, and both windows hold enough samples for the percentile to mean something (100 for
 * p99, 1,000 for p99.9); otherwise the percentile is mostly the window's few slowest samples.
 */
import type { RunRecord } from '../model/result.js';
import { fmtMs, fmtNum, fmtRatio } from './format.js';
import { stageLabel, type StageGroup } from './runs.js';
import { median, safeRatio } from './stats.js';

/** last / first above this is a drift worth a warning. */
export const DRIFT_RATIO = 1.5;
/** A change smaller than this (ms) never counts as a drift. */
export const DRIFT_FLOOR_MS = 1;
/** Samples each window needs before its p99 / p99.9 is read as more than noise. */
export const MIN_SAMPLES = { p99: 100, p999: 1000 } as const;

export type SteadyKey = 'fanoutP99' | 'fanoutP999' | 'ackP99' | 'ackP999';

export const STEADY_METRICS: Array<{ key: SteadyKey; label: string; which: 'fanoutMs' | 'ackMs'; pct: 'p99' | 'p999' }> = [
  { key: 'fanoutP99', label: 'fan-out p99', which: 'fanoutMs', pct: 'p99' },
  { key: 'fanoutP999', label: 'fan-out p99.9', which: 'fanoutMs', pct: 'p999' },
  { key: 'ackP99', label: 'ack p99', which: 'ackMs', pct: 'p99' },
  { key: 'ackP999', label: 'ack p99.9', which: 'ackMs', pct: 'p999' },
];

export interface SteadyRow {
  key: SteadyKey;
  label: string;
  /** Over the whole measured window. */
  whole: number | null;
  first: number | null;
  last: number | null;
  /** last / first (of the medians); null when either is missing. */
  ratio: number | null;
  /** last − first, ms. */
  deltaMs: number | null;
  /** Fewest samples in the first or last window over the runs used. */
  minSamples: number;
  /** Enough samples in both windows for this percentile. */
  enoughSamples: boolean;
  /** ratio > DRIFT_RATIO, delta > DRIFT_FLOOR_MS and enough samples. */
  drifted: boolean;
}

export interface SteadyCell {
  variant: string;
  /** Runs the figures come from: the valid ones, else (marked) the others. */
  from: 'valid' | 'invalid' | 'none';
  runs: number;
  /** The drift window, seconds (median over the runs used). */
  windowSec: number | null;
  /** The measured window, seconds. */
  durationSec: number;
  rows: SteadyRow[];
}

export interface SteadyStage {
  index: number;
  connections: number;
  cells: SteadyCell[];
}

const med = (xs: number[]): number | null => (xs.length ? median(xs) : null);

function rowOf(runs: RunRecord[], m: (typeof STEADY_METRICS)[number]): SteadyRow {
  const whole = med(runs.map((r) => r.latency[m.which][m.pct]));
  const withDrift = runs.filter((r) => r.drift && r.drift[m.which].first.count > 0 && r.drift[m.which].last.count > 0);
  const first = med(withDrift.map((r) => r.drift[m.which].first[m.pct]));
  const last = med(withDrift.map((r) => r.drift[m.which].last[m.pct]));
  const minSamples = withDrift.length ? Math.min(...withDrift.flatMap((r) => [r.drift[m.which].first.count, r.drift[m.which].last.count])) : 0;
  const ratio = first !== null && last !== null ? safeRatio(last, first) : null;
  const deltaMs = first !== null && last !== null ? last - first : null;
  const enoughSamples = minSamples >= MIN_SAMPLES[m.pct];
  const drifted = ratio !== null && deltaMs !== null && enoughSamples && ratio > DRIFT_RATIO && deltaMs > DRIFT_FLOOR_MS;
  return { key: m.key, label: m.label, whole, first, last, ratio, deltaMs, minSamples, enoughSamples, drifted };
}

/** The steady-latency figures of one stage, one cell per variant. */
export function steadyStage(g: StageGroup): SteadyStage {
  const cells = g.cells.map((c): SteadyCell => {
    const from = c.valid.length ? 'valid' : c.runs.length ? 'invalid' : 'none';
    const runs = c.valid.length ? c.valid : c.runs;
    return {
      variant: c.variant,
      from,
      runs: runs.length,
      windowSec: med(runs.map((r) => r.drift?.windowSec).filter((x): x is number => typeof x === 'number' && x > 0)),
      durationSec: g.durationSec,
      rows: STEADY_METRICS.map((m) => rowOf(runs, m)),
    };
  });
  return { index: g.index, connections: g.connections, cells };
}

/** "first 30 s against last 30 s of 60 s measured" */
export function windowText(cell: Pick<SteadyCell, 'windowSec' | 'durationSec'>): string {
  return cell.windowSec === null
    ? 'no drift windows recorded'
    : `first ${fmtNum(cell.windowSec)} s against last ${fmtNum(cell.windowSec)} s of ${fmtNum(cell.durationSec)} s measured`;
}

/** "fan-out p99 5.65 ms → 12.8 ms (×2.27, +7.16 ms)" */
export function driftText(r: SteadyRow): string {
  const sign = (r.deltaMs ?? 0) >= 0 ? '+' : '−';
  return `${r.label} ${fmtMs(r.first)} → ${fmtMs(r.last)} (${fmtRatio(r.ratio)}, ${sign}${fmtMs(Math.abs(r.deltaMs ?? 0))})`;
}

/** One warning line per stage and variant whose valid runs drifted; [] when none did. */
export function driftWarnings(stages: StageGroup[]): string[] {
  const out: string[] = [];
  for (const g of stages) {
    for (const c of steadyStage(g).cells) {
      if (c.from !== 'valid') continue;
      const drifted = c.rows.filter((r) => r.drifted);
      if (!drifted.length) continue;
      const runs = c.runs > 1 ? ` (median of ${c.runs} valid runs)` : '';
      out.push(`${c.variant} · ${stageLabel(g)}: latency drifted over the measured window (${windowText(c)}${runs}): ${drifted.map(driftText).join('; ')}.`);
    }
  }
  return out;
}
