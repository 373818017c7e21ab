/**
 * A small, strict-enough parser of the Prometheus text exposition format (version 0.0.4, what
 * prom-client writes), plus histogram helpers. Pure; no I/O.
 *
 * Accepted: `# HELP name text` (escapes \\ and \n), `# TYPE name counter|gauge|histogram|summary|untyped`,
 * other `#` comments, blank lines, and samples `name{label="value",…} value [timestampMs]` where label
 * values escape \\, \" and \n, and values may be NaN, +Inf, -Inf. Anything else throws PromParseError
 * naming the line.
 */

export type PromType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface PromSample {
  /** The sample's own name (e.g. `wami_batch_size_bucket`). */
  name: string;
  labels: Record<string, string>;
  value: number;
  timestampMs?: number;
}

export interface PromFamily {
  name: string;
  type: PromType;
  help?: string;
  samples: PromSample[];
}

export interface ParsedMetrics {
  /** Families by name (the TYPE name; untyped samples get a family of their own name). */
  families: Map<string, PromFamily>;
  /** Samples by their own name. */
  byName: Map<string, PromSample[]>;
}

export class PromParseError extends Error {
  readonly code = 'PROM_PARSE';
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`metrics text line ${line}: ${message}`);
    this.name = 'PromParseError';
  }
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES = new Set<PromType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** Parses a Prometheus float: decimal/exponent numbers, NaN, ±Inf (case-insensitive like Go). Null when invalid. */
export function parsePromValue(s: string): number | null {
  const l = s.toLowerCase();
  if (l === 'nan') return NaN;
  if (l === '+inf' || l === 'inf') return Infinity;
  if (l === '-inf') return -Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return null;
  return Number(s);
}

function unescapeHelp(s: string): string {
  return s.replace(/\\(\\|n)/g, (_m, c: string) => (c === 'n' ? '\n' : '\\'));
}

/** Parses exposition text. Throws PromParseError on a malformed line. */
export function parsePromText(text: string): ParsedMetrics {
  const families = new Map<string, PromFamily>();
  const byName = new Map<string, PromSample[]>();
  const family = (name: string): PromFamily => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, type: 'untyped', samples: [] }));
    return f;
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i]!;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const trimmed = line.trim();
    if (trimmed === '') continue;
    if (trimmed.startsWith('#')) {
      const m = /^#\s*(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(trimmed);
      if (!m) continue; // plain comment
      const [, kw, name, rest = ''] = m as unknown as [string, string, string, string | undefined];
      if (!NAME_RE.test(name) || NAME_RE.exec(name)![0] !== name) throw new PromParseError(lineNo, `bad metric name "${name}" in ${kw}`);
      if (kw === 'HELP') family(name).help = unescapeHelp(rest.trim());
      else {
        const t = rest.trim() as PromType;
        if (!TYPES.has(t)) throw new PromParseError(lineNo, `unknown type "${rest.trim()}" for ${name}`);
        const f = family(name);
        if (f.samples.length > 0 && f.type !== t) throw new PromParseError(lineNo, `TYPE for ${name} after its samples`);
        f.type = t;
      }
      continue;
    }
    const sample = parseSampleLine(trimmed, lineNo);
    let list = byName.get(sample.name);
    if (!list) byName.set(sample.name, (list = []));
    list.push(sample);
    family(familyOf(sample.name, families)).samples.push(sample);
  }
  return { families, byName };
}

/** The family a sample name belongs to: itself, or its histogram/summary base for _bucket/_sum/_count. */
function familyOf(name: string, families: Map<string, PromFamily>): string {
  if (families.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count', '_created']) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const f = families.get(base);
      if (f && (f.type === 'histogram' || f.type === 'summary' || (suffix === '_created' && f.type === 'counter'))) return base;
    }
  }
  return name;
}

function parseSampleLine(line: string, lineNo: number): PromSample {
  const nm = NAME_RE.exec(line);
  if (!nm) throw new PromParseError(lineNo, `expected a metric name: ${line.slice(0, 60)}`);
  const name = nm[0];
  let pos = name.length;
  const labels: Record<string, string> = {};
  const skipWs = (): void => {
    while (pos < line.length && (line[pos] === ' ' || line[pos] === '\t')) pos++;
  };
  skipWs();
  if (line[pos] === '{') {
    pos++;
    for (;;) {
      skipWs();
      if (line[pos] === '}') {
        pos++;
        break;
      }
      const lm = LABEL_RE.exec(line.slice(pos));
      if (!lm) throw new PromParseError(lineNo, `expected a label name at column ${pos + 1}`);
      const lname = lm[0];
      pos += lname.length;
      skipWs();
      if (line[pos] !== '=') throw new PromParseError(lineNo, `expected "=" after label ${lname}`);
      pos++;
      skipWs();
      if (line[pos] !== '"') throw new PromParseError(lineNo, `expected '"' to open the value of label ${lname}`);
      pos++;
      let value = '';
      let closed = false;
      while (pos < line.length) {
        const c = line[pos]!;
        if (c === '\\') {
          const n = line[pos + 1];
          if (n === '\\') value += '\\';
          else if (n === '"') value += '"';
          else if (n === 'n') value += '\n';
          else throw new PromParseError(lineNo, `bad escape "\\${n ?? ''}" in label ${lname}`);
          pos += 2;
        } else if (c === '"') {
          pos++;
          closed = true;
          break;
        } else {
          value += c;
          pos++;
        }
      }
      if (!closed) throw new PromParseError(lineNo, `unterminated value of label ${lname}`);
      if (Object.hasOwn(labels, lname)) throw new PromParseError(lineNo, `duplicate label ${lname}`);
      labels[lname] = value;
      skipWs();
      if (line[pos] === ',') {
        pos++;
        continue;
      }
      if (line[pos] === '}') {
        pos++;
        break;
      }
      throw new PromParseError(lineNo, `expected "," or "}" after label ${lname}`);
    }
  }
  const rest = line
    .slice(pos)
    .trim()
    .split(/[ \t]+/);
  if (rest.length < 1 || rest.length > 2 || rest[0] === '') throw new PromParseError(lineNo, `expected "value [timestamp]" after ${name}`);
  const value = parsePromValue(rest[0]!);
  if (value === null) throw new PromParseError(lineNo, `bad value "${rest[0]}" for ${name}`);
  const sample: PromSample = { name, labels, value };
  if (rest.length === 2) {
    const ts = Number(rest[1]);
    if (!/^-?\d+$/.test(rest[1]!) || !Number.isSafeInteger(ts)) throw new PromParseError(lineNo, `bad timestamp "${rest[1]}" for ${name}`);
    sample.timestampMs = ts;
  }
  return sample;
}

/** Whether a sample's labels include every label of `match` with the same value. */
function matches(s: PromSample, match?: Record<string, string>): boolean {
  if (!match) return true;
  for (const k in match) if (s.labels[k] !== match[k]) return false;
  return true;
}

/** Samples of exactly this name (and labels matching `match`). */
export function samplesOf(m: ParsedMetrics, name: string, match?: Record<string, string>): PromSample[] {
  const l = m.byName.get(name) ?? [];
  return match ? l.filter((s) => matches(s, match)) : l;
}

/** Sum over every series of this name (labels ignored unless `match`); null when the metric is absent. */
export function sumOf(m: ParsedMetrics, name: string, match?: Record<string, string>): number | null {
  const l = samplesOf(m, name, match);
  if (l.length === 0) return null;
  let s = 0;
  for (const x of l) s += x.value;
  return s;
}

/** Max over every series of this name; null when absent. */
export function maxOf(m: ParsedMetrics, name: string): number | null {
  const l = samplesOf(m, name);
  if (l.length === 0) return null;
  let v = -Infinity;
  for (const x of l) if (x.value > v) v = x.value;
  return v;
}

/** Sums of this metric grouped by one label (series without the label are grouped under ""). */
export function sumByLabel(m: ParsedMetrics, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samplesOf(m, name)) {
    const k = s.labels[label] ?? '';
    out[k] = (out[k] ?? 0) + s.value;
  }
  return out;
}

/** A histogram: cumulative bucket counts sorted by upper bound (`le`, the last one +Inf), sum, count. */
export interface HistogramData {
  buckets: Array<{ le: number; count: number }>;
  sum: number;
  count: number;
}

/**
 * The histogram `name` (base name, without _bucket), merged over all its series (every label but `le`;
 * e.g. per-worker series are summed, as prom-client's cluster aggregation does). Null when absent.
 */
export function histogramOf(m: ParsedMetrics, name: string, match?: Record<string, string>): HistogramData | null {
  const buckets = samplesOf(m, `${name}_bucket`, match);
  if (buckets.length === 0) return null;
  const byLe = new Map<number, number>();
  for (const b of buckets) {
    const leStr = b.labels.le;
    if (leStr === undefined) continue;
    const le = parsePromValue(leStr);
    if (le === null || Number.isNaN(le)) continue;
    byLe.set(le, (byLe.get(le) ?? 0) + b.value);
  }
  const sorted = [...byLe.entries()].sort((a, b) => a[0] - b[0]).map(([le, count]) => ({ le, count }));
  const inf = sorted.length > 0 && sorted[sorted.length - 1]!.le === Infinity ? sorted[sorted.length - 1]!.count : null;
  return {
    buckets: sorted,
    sum: sumOf(m, `${name}_sum`, match) ?? 0,
    count: sumOf(m, `${name}_count`, match) ?? inf ?? 0,
  };
}

/**
 * Quantile q (0..1) from cumulative buckets, as Prometheus's histogram_quantile: find the first bucket
 * whose cumulative count reaches q × total and interpolate linearly inside it (the lowest bucket starts
 * at 0 unless its bound is ≤ 0). A rank in the +Inf bucket returns the highest finite bound.
 * Null when there are no observations, fewer than two buckets, or no +Inf bucket.
 *
 * `positiveIntegers`: the observations are integers ≥ 1 (batch sizes, attempts), so a bucket (a, b]
 * holds the values a+1..b and the lowest bucket starts at 1: interpolation runs over [a+1, b] instead
 * of [a, b] (a batch-size p50 of 1 rather than 0.5 when every batch held one update).
 */
export function histogramQuantile(q: number, buckets: ReadonlyArray<{ le: number; count: number }>, opts: { positiveIntegers?: boolean } = {}): number | null {
  if (Number.isNaN(q)) return null;
  if (buckets.length < 2) return null;
  const last = buckets[buckets.length - 1]!;
  if (last.le !== Infinity) return null;
  // Counts must be monotonic; clamp like Prometheus does for small inconsistencies.
  const counts: number[] = [];
  let run = 0;
  for (const b of buckets) {
    run = Math.max(run, b.count);
    counts.push(run);
  }
  const total = counts[counts.length - 1]!;
  if (!(total > 0)) return null;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  const rank = q * total;
  let b = 0;
  while (b < buckets.length - 1 && counts[b]! < rank) b++;
  if (b === buckets.length - 1) return buckets[buckets.length - 2]!.le;
  const upper = buckets[b]!.le;
  if (b === 0 && upper <= 0) return upper;
  let lower = b === 0 ? 0 : buckets[b - 1]!.le;
  if (opts.positiveIntegers) lower = Math.min(upper, b === 0 ? 1 : Math.floor(lower) + 1);
  const below = b === 0 ? 0 : counts[b - 1]!;
  const inBucket = counts[b]! - below;
  if (inBucket <= 0) return lower;
  return lower + (upper - lower) * ((rank - below) / inBucket);
}

/** Bucket-wise difference cur - prev (same bounds); null when the bounds differ or counts went down (a reset). */
export function histogramDelta(cur: HistogramData, prev: HistogramData | null): HistogramData | null {
  if (!prev) return cur;
  if (cur.buckets.length !== prev.buckets.length) return null;
  const buckets: Array<{ le: number; count: number }> = [];
  for (let i = 0; i < cur.buckets.length; i++) {
    const c = cur.buckets[i]!;
    const p = prev.buckets[i]!;
    if (c.le !== p.le || c.count < p.count) return null;
    buckets.push({ le: c.le, count: c.count - p.count });
  }
  if (cur.count < prev.count) return null;
  return { buckets, sum: cur.sum - prev.sum, count: cur.count - prev.count };
}

/** Upper bound of the highest non-empty bucket (the largest finite bound when that is +Inf); null when empty. */
export function histogramMaxBound(h: HistogramData): number | null {
  let prev = 0;
  let top: number | null = null;
  for (let i = 0; i < h.buckets.length; i++) {
    const b = h.buckets[i]!;
    if (b.count > prev) top = i;
    prev = Math.max(prev, b.count);
  }
  if (top === null) return null;
  const le = h.buckets[top]!.le;
  if (le !== Infinity) return le;
  return top > 0 ? h.buckets[top - 1]!.le : null;
}
