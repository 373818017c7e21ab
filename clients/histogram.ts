/**
 * HDR histograms (hdr-histogram-js, the plain JS implementation; no WebAssembly). Values are
 * recorded in integer MICROSECONDS, from 0 to one hour, with 3 significant digits; percentiles
 * come out in milliseconds. Workers encode (compressed base64) and the coordinator decodes and
 * adds: merging is lossless, so the merge of parts equals the histogram of the whole.
 */
import * as hdr from 'hdr-histogram-js';
import type { Histogram } from 'hdr-histogram-js';
import type { LatencyStat, Percentiles } from '../model/fleet-result.js';
import { round3 } from '../protocol/clock.js';

export type { Histogram };

/** Highest value a histogram tracks, µs (one hour). Larger values are clamped to it. */
export const HIGHEST_TRACKABLE_US = 3_600_000_000;

export function newHistogram(bitBucketSize: 32 | 64 = 32): Histogram {
  return hdr.build({
    bitBucketSize,
    autoResize: false,
    lowestDiscernibleValue: 1,
    highestTrackableValue: HIGHEST_TRACKABLE_US,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

/** Records a duration given in ms (float) as integer µs, clamped to [0, one hour]. */
export function recordMs(h: Histogram, ms: number): void {
  let us = Math.round(ms * 1000);
  if (!(us >= 0)) us = 0;
  else if (us > HIGHEST_TRACKABLE_US) us = HIGHEST_TRACKABLE_US;
  h.recordValue(us);
}

/** Compressed base64 of the histogram; '' for an empty one (cheap to ship every second). */
export function encodeHistogram(h: Histogram): string {
  return h.totalCount === 0 ? '' : hdr.encodeIntoCompressedBase64(h);
}

/** Decodes what encodeHistogram wrote ('' gives an empty histogram). 64-bit counts, safe to merge into. */
export function decodeHistogram(s: string): Histogram {
  if (s === '') return newHistogram(64);
  const d = hdr.decodeFromCompressedBase64(s, 64, false);
  const out = newHistogram(64);
  out.add(d);
  return out;
}

/** Adds every encoded histogram into one (64-bit counts). */
export function mergeEncoded(parts: Iterable<string>): Histogram {
  const out = newHistogram(64);
  for (const p of parts) {
    if (p === '') continue;
    out.add(hdr.decodeFromCompressedBase64(p, 64, false));
  }
  return out;
}

/** p50 p90 p99 p99.9 max count mean, in ms (3 decimals). All zero for an empty histogram. */
export function percentilesOf(h: Histogram): Percentiles {
  if (h.totalCount === 0) return { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, count: 0, mean: 0 };
  const ms = (us: number): number => round3(us / 1000);
  return {
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    // The top of the max's bucket, like the percentiles, so max >= p99.9 always holds.
    max: ms(h.getValueAtPercentile(100)),
    count: h.totalCount,
    mean: ms(h.mean),
  };
}

/** One percentile in ms (0 when empty). */
export function percentileMs(h: Histogram, p: number): number {
  return h.totalCount === 0 ? 0 : round3(h.getValueAtPercentile(p) / 1000);
}

export function latencyStat(h: Histogram): LatencyStat {
  return { ...percentilesOf(h), histogram: encodeHistogram(h) };
}
