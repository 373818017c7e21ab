/**
 * Noise bands: how much a gate metric moves between runs of the same commit on the same machine,
 * measured from a result with repeats (`wami-bench compare --measure-noise RESULT.json`). `compare`
 * uses them when there is one run per side: a change inside its metric's band is inconclusive,
 * however far past the --max-regression bound, and the output says how many repeats would decide it.
 *
 * The band of a metric: within each (variant, stage) cell of valid runs, the standard deviation of
 * ln(value); pooled over the cells (weighted by runs − 1); band = exp(1.96 · √2 · s) − 1, the ratio
 * two single runs of the same code stay within 95 % of the time. Pure: no I/O.
 */
import type { ResultFile, RunRecord } from '../model/result.js';
import { GATE_METRICS } from './metrics.js';
import { groupByStage, valuesOf } from './runs.js';

export interface NoiseBand {
  /** Metric id, e.g. `fanout.p99Ms`. */
  metric: string;
  label: string;
  /** The band as a fraction (0.25 = two single runs differ by up to ×1.25); null when not measurable (no positive values, or no repeats). */
  band: number | null;
  /** Pooled standard deviation of ln(value) within cells. */
  sdLog: number | null;
  /** The largest max/min − 1 seen within one cell (the plain spread, for reference). */
  spread: number | null;
  /** Cells with at least two positive values, and the runs in them. */
  cells: number;
  runs: number;
}

export interface NoiseSource {
  runId: string;
  scenario: string;
  commit: string | null;
  cpuModel: string;
  cpuCount: number;
  hostname: string;
  startedAtIso: string;
}

export interface NoiseBands {
  /** Where they were measured: one entry per result file (each file's cells are kept apart, then pooled). */
  sources: NoiseSource[];
  /** Metric id -> band, pooled over every variant. */
  bands: Record<string, NoiseBand>;
  /** Variant kind -> metric id -> band: a design's own noise (per-request's polling makes its tail noisier than batched's). */
  byKind: Record<string, Record<string, NoiseBand>>;
}

/** Bands as `compare` uses them: fractions, pooled and per variant kind (the kind's own wins). */
export interface NoiseFractions {
  all: Record<string, number>;
  byKind?: Record<string, Record<string, number>>;
}

/** z for a two-sided 95 % interval. */
const Z95 = 1.959963984540054;

/** The band of each gate metric over the given cells (valid runs only). */
function bandsOf(cells: ReadonlyArray<{ valid: RunRecord[] }>): Record<string, NoiseBand> {
  const bands: Record<string, NoiseBand> = {};
  for (const m of GATE_METRICS) {
    let ss = 0;
    let dof = 0;
    let n = 0;
    let runs = 0;
    let spread: number | null = null;
    for (const c of cells) {
      const xs = valuesOf(c.valid, m).filter((x) => x > 0);
      if (xs.length < 2) continue;
      const logs = xs.map(Math.log);
      const mean = logs.reduce((a, b) => a + b, 0) / logs.length;
      ss += logs.reduce((a, b) => a + (b - mean) ** 2, 0);
      dof += logs.length - 1;
      n++;
      runs += xs.length;
      const s = Math.max(...xs) / Math.min(...xs) - 1;
      spread = spread === null ? s : Math.max(spread, s);
    }
    const sdLog = dof > 0 ? Math.sqrt(ss / dof) : null;
    bands[m.id] = { metric: m.id, label: m.label, band: sdLog === null ? null : Math.exp(Z95 * Math.SQRT2 * sdLog) - 1, sdLog, spread, cells: n, runs };
  }
  return bands;
}

/**
 * The noise band of every gate metric from the repeats of one or more results (valid runs only),
 * pooled and per variant kind. Each (result, variant, stage) is a cell of its own: sessions on
 * different days may differ in level; the band measures the spread within a session.
 */
export function measureNoise(results: ResultFile | readonly ResultFile[]): NoiseBands {
  const all = Array.isArray(results) ? (results as readonly ResultFile[]) : [results as ResultFile];
  const cells = all.flatMap((r) => groupByStage(r).flatMap((g) => g.cells));
  const kinds = [...new Set(cells.flatMap((c) => c.runs.map((r) => r.variantKind)))];
  const byKind: Record<string, Record<string, NoiseBand>> = {};
  for (const k of kinds) byKind[k] = bandsOf(cells.filter((c) => c.runs[0]?.variantKind === k));
  const sources = all.map((result) => {
    const e = result.environment;
    return {
      runId: result.runId,
      scenario: result.scenario.name,
      commit: e.git.commit,
      cpuModel: e.cpuModel,
      cpuCount: e.cpuCount,
      hostname: e.hostname,
      startedAtIso: result.startedAtIso,
    };
  });
  return { sources, bands: bandsOf(cells), byKind };
}

/**
 * About how many runs per side would tell a change of `ratio` from this noise: the band narrows
 * with √n (means of n runs), so n ≥ (ln(1 + band) / ln(ratio))², at least 2. Null when the ratio
 * is 1 or the band unknown.
 */
export function repeatsToDecide(ratio: number, band: number | null): number | null {
  if (band === null || !(band > 0) || !Number.isFinite(ratio) || ratio <= 0) return null;
  const l = Math.abs(Math.log(ratio));
  if (l === 0) return null;
  return Math.max(2, Math.ceil((Math.log1p(band) / l) ** 2));
}

/** The bands as `compare` takes them: fractions, unmeasurable metrics left out. */
export function bandFractions(n: NoiseBands): NoiseFractions {
  const frac = (bands: Record<string, NoiseBand>): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const [k, b] of Object.entries(bands)) if (b.band !== null) out[k] = b.band;
    return out;
  };
  const byKind: Record<string, Record<string, number>> = {};
  for (const [k, bands] of Object.entries(n.byKind ?? {})) byKind[k] = frac(bands);
  return { all: frac(n.bands), byKind };
}

/** The band of a metric for a variant kind: the kind's own when measured, else the pooled one, else null. */
export function bandFor(noise: NoiseFractions, metric: string, kind?: string): number | null {
  return (kind !== undefined ? noise.byKind?.[kind]?.[metric] : undefined) ?? noise.all[metric] ?? null;
}

/**
 * The bands this project measured (report/README.md, "Noise bands", says how, where and with which
 * command), used by `compare` unless `--noise FILE` gives bands measured on the reader's own
 * machine. Measured on a shared 2-core machine (other work running beside it): two `smoke` sessions
 * of 5 repeats per design, 18 valid runs; two significant digits.
 */
export const PROJECT_NOISE_BANDS: NoiseFractions = {
  all: {
    'fanout.p99Ms': 7.2,
    'fanout.p50Ms': 0.8,
    'ack.p99Ms': 4.9,
    'ack.p50Ms': 0.6,
    'server.rssBytesPerSocket': 0.39,
    'server.cpuSec': 0.28,
  },
  byKind: {
    batched: {
      'fanout.p99Ms': 9.6,
      'fanout.p50Ms': 0.69,
      'ack.p99Ms': 2,
      'ack.p50Ms': 0.14,
      'server.rssBytesPerSocket': 0.057,
      'server.cpuSec': 0.18,
    },
    'per-request': {
      'fanout.p99Ms': 4.6,
      'fanout.p50Ms': 0.94,
      'ack.p99Ms': 9.8,
      'ack.p50Ms': 1,
      'server.rssBytesPerSocket': 0.65,
      'server.cpuSec': 0.38,
    },
  },
};
