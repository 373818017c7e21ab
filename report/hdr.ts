/**
 * HDR histograms as the report draws them: decode the fleet's compressed base64 encodings (values
 * in microseconds) and read a percentile distribution on the 1/(1-p) axis of HDR plots, a fixed
 * number of points per decade so the page stays small whatever the sample count.
 */
import * as hdr from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';
import { sig } from './format.js';

/** Decodes an hdr-histogram-js compressed base64 histogram; null when empty or unreadable. */
export function decodeHistogram(base64: string): Histogram | null {
  if (!base64) return null;
  try {
    return hdr.decodeFromCompressedBase64(base64);
  } catch {
    return null;
  }
}

/** Merges histograms losslessly (e.g. the repeats of one variant and stage); null when none decodes. */
export function mergeHistograms(encoded: readonly string[]): Histogram | null {
  let acc: Histogram | null = null;
  for (const e of encoded) {
    const h = decodeHistogram(e);
    if (!h) continue;
    if (acc === null) acc = h;
    else acc.add(h);
  }
  return acc;
}

export interface DistributionOptions {
  /** Points per decade of 1/(1-p); default 10. */
  pointsPerDecade?: number;
  /** Largest 1/(1-p) drawn; default 1e6 (p99.9999). Capped at the sample count. */
  maxX?: number;
  /** Divides the recorded values (µs -> ms: 1000, the default). */
  unitDivisor?: number;
}

/**
 * The percentile distribution as [x, value] points, x = 1/(1-p) from 1 (p0) up to the sample count
 * (the last point is the maximum), log-spaced, values in ms by default. Empty for an empty histogram.
 */
export function percentilePoints(h: Histogram, opts: DistributionOptions = {}): Array<[number, number]> {
  const n = h.totalCount;
  if (n <= 0) return [];
  const ppd = opts.pointsPerDecade ?? 10;
  const div = opts.unitDivisor ?? 1000;
  const xMax = Math.max(1, Math.min(n, opts.maxX ?? 1e6));
  const out: Array<[number, number]> = [];
  const steps = Math.floor(Math.log10(xMax) * ppd + 1e-9);
  for (let k = 0; k <= steps; k++) {
    const x = 10 ** (k / ppd);
    const p = 100 * (1 - 1 / x);
    out.push([sig(x, 4), sig(h.getValueAtPercentile(p) / div, 4)]);
  }
  const last = out[out.length - 1];
  const maxPoint: [number, number] = [sig(xMax, 4), sig(h.maxValue / div, 4)];
  if (!last || last[0] < maxPoint[0]) out.push(maxPoint);
  else last[1] = maxPoint[1];
  return out;
}

/** The percentile distribution of an encoded histogram; empty when it does not decode. */
export function distributionOf(base64: string, opts?: DistributionOptions): Array<[number, number]> {
  const h = decodeHistogram(base64);
  return h ? percentilePoints(h, opts) : [];
}

/** The percentile (0..100) shown at x = 1/(1-p): 1 -> 0, 10 -> 90, 1000 -> 99.9. */
export function percentileAt(x: number): number {
  return 100 * (1 - 1 / x);
}
