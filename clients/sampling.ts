/**
 * Recipient sampling: a seeded 1-in-N sample of updates, decided by a hash of (from, id) so every
 * worker (on any host) agrees on which updates are sampled without talking to each other. Each
 * worker reports, for a sampled update, the latency (from `at`) of every arrival it saw; the
 * coordinator joins them and takes the first, median and last recipient.
 */
import { hashString } from './prng.js';
import { latencyStat, newHistogram, recordMs } from './histogram.js';
import type { RecipientsReport } from '../model/fleet-result.js';

export function sampleKey(from: number, id: string): string {
  return `${from}|${id}`;
}

export function isSampled(seed: number, from: number, id: string, every: number): boolean {
  if (every <= 1) return true;
  return hashString(seed ^ 0x5bd1e995, sampleKey(from, id)) % every === 0;
}

/** The first, median (lower middle) and last of a list of arrival latencies (ms). */
export function firstMedianLast(latencies: readonly number[]): { first: number; median: number; last: number } {
  const a = [...latencies].sort((x, y) => x - y);
  return { first: a[0]!, median: a[Math.floor((a.length - 1) / 2)]!, last: a[a.length - 1]! };
}

/** Joins the workers' sampled arrivals (key -> latencies) into the recipients report. */
export function recipientsReport(parts: Iterable<Array<[string, number[]]>>): RecipientsReport {
  const joined = new Map<string, number[]>();
  for (const part of parts) {
    for (const [k, lat] of part) {
      const cur = joined.get(k);
      if (cur) cur.push(...lat);
      else joined.set(k, [...lat]);
    }
  }
  const first = newHistogram(64);
  const median = newHistogram(64);
  const last = newHistogram(64);
  let sampled = 0;
  for (const lat of joined.values()) {
    if (lat.length === 0) continue;
    sampled++;
    const f = firstMedianLast(lat);
    recordMs(first, f.first);
    recordMs(median, f.median);
    recordMs(last, f.last);
  }
  // with the histograms, so results of several segments merge losslessly (each update's recipients are in one segment)
  return { sampled, first: latencyStat(first), median: latencyStat(median), last: latencyStat(last) };
}
