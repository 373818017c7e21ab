/**
 * Text helpers shared by the HTML page, the markdown summary and the comparison: number formatting
 * with units, HTML escaping, and JSON that is safe to embed in a <script> element.
 */

/** Rounds to `digits` significant digits (keeps integers >= 10^digits whole). */
export function sig(x: number, digits = 3): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const mag = Math.floor(Math.log10(Math.abs(x)));
  if (mag >= digits - 1) return Math.round(x);
  const f = 10 ** (digits - 1 - mag);
  return Math.round(x * f) / f;
}

const NF = new Intl.NumberFormat('en-US', { maximumFractionDigits: 3 });

/** A number with thousands separators and 3 significant digits below 1000. */
export function fmtNum(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '-∞';
  return NF.format(Math.abs(x) >= 1000 ? Math.round(x) : sig(x, digits));
}

/**
 * A duration in ms: "12.3 ms", "1,234 ms"; below 10 µs in µs or ns ("5.2 µs", "310 ns"), as the
 * micro-benchmarks need. The one ms formatter of the report, the progress lines and micro.
 */
export function fmtMs(x: number | null | undefined): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '—';
  const a = Math.abs(x);
  if (a > 0 && a < 0.001) return `${fmtNum(x * 1e6)} ns`;
  if (a > 0 && a < 0.01) return `${fmtNum(x * 1000)} µs`;
  return `${fmtNum(x)} ms`;
}

/** A count or rate in short form: 950, 1.2k, 12.3k, 1.23M. */
export function fmtCompact(x: number): string {
  const a = Math.abs(x);
  if (a >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (a >= 1e3) return `${(x / 1e3).toFixed(1)}k`;
  return x.toFixed(a >= 100 || Number.isInteger(x) ? 0 : 1);
}

export function fmtBytes(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  const a = Math.abs(x);
  if (a >= 1024 ** 3) return `${fmtNum(x / 1024 ** 3)} GiB`;
  if (a >= 1024 ** 2) return `${fmtNum(x / 1024 ** 2)} MiB`;
  if (a >= 1024) return `${fmtNum(x / 1024)} KiB`;
  return `${fmtNum(x)} B`;
}

export type Unit = 'ms' | 'bytes' | 'sec' | 'count' | 'perSec' | 'pct';

/** Formats a value in its unit: 12.3 ms, 4.5 MiB, 3.2 s, 1,234, 567/s, 12 %. */
export function fmtUnit(x: number | null | undefined, unit: Unit): string {
  if (x === null || x === undefined) return '—';
  switch (unit) {
    case 'ms':
      return fmtMs(x);
    case 'bytes':
      return fmtBytes(x);
    case 'sec':
      return `${fmtNum(x)} s`;
    case 'perSec':
      return `${fmtNum(x)}/s`;
    case 'pct':
      return `${fmtNum(x)} %`;
    case 'count':
      return fmtNum(x);
  }
}

/** ×1.23 (∞ when the denominator was 0). */
export function fmtRatio(r: number | null | undefined): string {
  if (r === null || r === undefined || Number.isNaN(r)) return '—';
  if (!Number.isFinite(r)) return '×∞';
  return `×${fmtNum(r, 3)}`;
}

/** [0.91–1.12] */
export function fmtInterval(i: { lo: number; hi: number } | null | undefined): string {
  if (!i || (!Number.isFinite(i.lo) && !Number.isFinite(i.hi))) return '';
  const f = (x: number) => (Number.isFinite(x) ? fmtNum(x, 3) : '∞');
  return `[${f(i.lo)}–${f(i.hi)}]`;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/**
 * JSON for a <script> element: `<`, `>`, `&` and U+2028/U+2029 become \u escapes, so no string in
 * the data can close the element, open a comment or break a JS parser. JSON.parse reads it back
 * unchanged.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Escapes a markdown table cell (pipes and newlines). */
export function mdCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** JSON indented by 2, with any value whose one-line form fits in `width` kept on one line. */
export function compactJson(value: unknown, width = 96, indent = ''): string {
  const flat = JSON.stringify(value);
  if (flat === undefined) return 'null';
  if (flat.length + indent.length <= width || value === null || typeof value !== 'object') return flat;
  const inner = `${indent}  `;
  if (Array.isArray(value)) return `[\n${value.map((v) => inner + compactJson(v, width, inner)).join(',\n')}\n${indent}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${compactJson(v, width, inner)}`).join(',\n')}\n${indent}}`;
}
