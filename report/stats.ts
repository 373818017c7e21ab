/**
 * Pure statistics for the report and the comparison gate: median and quantiles, a seeded PRNG, the
 * bootstrap interval of a ratio of medians, and the rule that turns a ratio into a verdict.
 * No I/O, no clock, no Math.random: the same input gives the same numbers, so tests can pin them.
 */

/** A deterministic PRNG (mulberry32): returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Quantile q (0..1) of the values by linear interpolation between order statistics (Hyndman & Fan
 * type 7, the default of R and NumPy). Infinity is allowed. Throws on an empty array.
 */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new RangeError('quantile of an empty array');
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile q must be in [0, 1], got ${q}`);
  const s = [...values].sort((a, b) => a - b);
  return quantileSorted(s, q);
}

function quantileSorted(s: readonly number[], q: number): number {
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const frac = pos - lo;
  const a = s[lo] as number;
  if (frac === 0 || lo + 1 >= s.length) return a;
  const b = s[lo + 1] as number;
  if (a === b) return a;
  return a + (b - a) * frac;
}

/** Median (mean of the two middle values for an even count). Throws on an empty array. */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Median, or null for an empty array. */
export function medianOrNull(values: readonly number[]): number | null {
  return values.length === 0 ? null : median(values);
}

/**
 * `a / b` for non-negative measurements: 1 when both are 0 (no change), Infinity when only the
 * denominator is 0.
 */
export function safeRatio(a: number, b: number): number {
  if (b === 0) return a === 0 ? 1 : Infinity;
  return a / b;
}

export interface BootstrapOptions {
  /** Resamples; default 2000. */
  iterations?: number;
  /** PRNG seed; default 0x5eed. */
  seed?: number;
  /** Coverage of the interval; default 0.95. */
  level?: number;
}

export interface RatioEstimate {
  /** median(head) / median(base). */
  ratio: number;
  /** Bootstrap percentile interval of the ratio; null when both sides have a single value. */
  interval: { lo: number; hi: number; level: number } | null;
  n: { base: number; head: number };
}

/**
 * The ratio of medians `median(head) / median(base)` and its percentile bootstrap interval: each
 * side is resampled with replacement (independently), the ratio of the resampled medians taken
 * `iterations` times, and the (1-level)/2 and (1+level)/2 quantiles of those ratios reported.
 * With one value on each side there is no variation to resample and the interval is null.
 * Returns null when either side is empty.
 */
export function bootstrapRatio(base: readonly number[], head: readonly number[], opts: BootstrapOptions = {}): RatioEstimate | null {
  if (base.length === 0 || head.length === 0) return null;
  const ratio = safeRatio(median(head), median(base));
  const n = { base: base.length, head: head.length };
  if (base.length < 2 && head.length < 2) return { ratio, interval: null, n };
  const iterations = opts.iterations ?? 2000;
  const level = opts.level ?? 0.95;
  const rnd = mulberry32(opts.seed ?? 0x5eed);
  const ratios = new Array<number>(iterations);
  const bs = new Array<number>(base.length);
  const hs = new Array<number>(head.length);
  for (let i = 0; i < iterations; i++) {
    for (let j = 0; j < base.length; j++) bs[j] = base[Math.floor(rnd() * base.length)] as number;
    for (let j = 0; j < head.length; j++) hs[j] = head[Math.floor(rnd() * head.length)] as number;
    ratios[i] = safeRatio(median(hs), median(bs));
  }
  ratios.sort((a, b) => a - b);
  return { ratio, interval: { lo: quantileSorted(ratios, (1 - level) / 2), hi: quantileSorted(ratios, (1 + level) / 2), level }, n };
}

export type RatioVerdict = 'improved' | 'regressed' | 'within noise';

/**
 * The noise rule, for a lower-is-better metric and ratio = head / base, with bound b (0.1 = 10%):
 * - with an interval: regressed when ratio > 1 + b and the interval lies wholly above 1;
 *   improved when ratio < 1 / (1 + b) and the interval lies wholly below 1; else within noise.
 * - without one (a single run per side): the bound is the noise band, so regressed when
 *   ratio > 1 + b, improved when ratio < 1 / (1 + b), else within noise.
 * A change outside the interval but inside the bound counts as within noise (too small to gate on).
 */
export function ratioVerdict(est: Pick<RatioEstimate, 'ratio' | 'interval'>, bound: number): RatioVerdict {
  const { ratio, interval } = est;
  const up = 1 + bound;
  if (ratio > up && (interval === null || interval.lo > 1)) return 'regressed';
  if (ratio < 1 / up && (interval === null || interval.hi < 1)) return 'improved';
  return 'within noise';
}
