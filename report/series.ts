/**
 * Downsampling of per-second series for the page: a run of hours must not embed thousands of
 * points per line. Rows are cut into at most `maxPoints` consecutive buckets; each field is reduced
 * by its own rule, so peaks (p99, queue depth) survive as maxima while rates stay means.
 */
import { sig } from './format.js';

export type Reduce = 'mean' | 'max' | 'min' | 'last' | 'first' | 'sum';

/**
 * Reduces `rows` to at most `maxPoints` rows. `rules` names each numeric field to keep and how its
 * bucket is reduced; nulls are skipped (a bucket of nulls gives null). Values are rounded to 4
 * significant digits. Rows are kept as they are (rounded) when there are few enough.
 */
export function downsample<K extends string>(
  rows: ReadonlyArray<Partial<Record<K, number | null>>>,
  maxPoints: number,
  rules: Record<K, Reduce>,
): Array<Record<K, number | null>> {
  const keys = Object.keys(rules) as K[];
  const n = rows.length;
  const buckets = Math.max(1, Math.min(n, Math.floor(maxPoints)));
  const out: Array<Record<K, number | null>> = [];
  for (let b = 0; b < buckets && n > 0; b++) {
    const from = Math.floor((b * n) / buckets);
    const to = Math.floor(((b + 1) * n) / buckets);
    const row = {} as Record<K, number | null>;
    for (const k of keys) row[k] = reduce(rows, from, to, k, rules[k]);
    out.push(row);
  }
  return out;
}

function reduce<K extends string>(rows: ReadonlyArray<Partial<Record<K, number | null>>>, from: number, to: number, k: K, rule: Reduce): number | null {
  let acc: number | null = null;
  let count = 0;
  for (let i = from; i < to; i++) {
    const v = rows[i]?.[k];
    if (v === null || v === undefined || !Number.isFinite(v)) continue;
    count++;
    if (acc === null) {
      acc = v;
      continue;
    }
    switch (rule) {
      case 'mean':
      case 'sum':
        acc += v;
        break;
      case 'max':
        acc = Math.max(acc, v);
        break;
      case 'min':
        acc = Math.min(acc, v);
        break;
      case 'last':
        acc = v;
        break;
      case 'first':
        break;
    }
  }
  if (acc === null) return null;
  if (rule === 'mean') acc /= count;
  return sig(acc, 4);
}

/** [x, y] pairs from rows, skipping rows where either is null; y scaled by `scale`. */
export function xy<K extends string>(rows: ReadonlyArray<Record<K, number | null>>, xKey: K, yKey: K, scale = 1): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const r of rows) {
    const x = r[xKey];
    const y = r[yKey];
    if (x === null || y === null) continue;
    out.push([x, sig(y * scale, 4)]);
  }
  return out;
}

/** Points per series for `runs` runs, so that the page stays under its size budget: 30..300. */
export function pointsPerRun(runs: number): number {
  return Math.max(30, Math.min(300, Math.floor(3000 / Math.max(1, runs))));
}
