/**
 * The side-by-side table of one stage, as plain cells that the HTML page and the markdown summary
 * both render: one column per variant (median of its valid runs), one ratio column per variant
 * against the first (baseline), with the 95% bootstrap interval when there are repeats. Invalid or
 * errored runs never enter a median; a variant with no valid run shows its values marked invalid.
 */
import { fmtInterval, fmtRatio, fmtUnit } from './format.js';
import { errorCodeMetric, TABLE_ROWS, type MetricDef, type TableRow } from './metrics.js';
import { cellStatus, isValid, runStanding, serverShape, shapeLabel, valuesOf, type StageGroup, type VariantCell } from './runs.js';
import { bootstrapRatio, median } from './stats.js';

export interface Cell {
  text: string;
  /** Hover text: the values of each repeat. */
  title?: string;
  /** good | bad (beyond noise, relative to the baseline) | invalid | muted */
  cls?: 'good' | 'bad' | 'invalid' | 'muted';
}

export type Row = { heading: string } | { label: string; metricId: string; cells: Cell[] };

export interface StageTable {
  /** metric, variants…, ratio columns… */
  header: string[];
  rows: Row[];
  /** Whether any variant has more than one valid run (ratio columns then carry intervals). */
  repeats: boolean;
}

export interface TableOptions {
  /** Single-run band within which a ratio is not coloured; default 0.05. */
  noiseBand?: number;
  seed?: number;
  /** The machine's CPU count (environment.cpuCount): per-request's default worker count. Without it, no shape row. */
  cpuCount?: number;
}

/** The server's shape per variant ("1 shard", "2 workers · 3 processes"); several shapes joined. */
function shapeCell(cell: VariantCell, cpuCount: number): Cell {
  const shapes = cell.runs.map((r) => serverShape(r, cpuCount));
  const labels = [...new Set(shapes.map((s) => shapeLabel(s, false).replace(/ \(default.*\)$/, '')))];
  const full = [...new Set(shapes.map((s) => shapeLabel(s)))].join('; ');
  return labels.length
    ? {
        text: labels.join(' / '),
        title: `${full}. batched: --shards N (default 1); per-request: --workers W (default: the CPU count); external: options.processes (default 1)`,
      }
    : { text: '—', cls: 'muted' };
}

function valueCell(cell: VariantCell, m: MetricDef): Cell {
  const valid = valuesOf(cell.valid, m);
  const fmt = (v: number | null) => fmtUnit(v, m.unit);
  if (valid.length > 0) {
    const title = cell.runs.map((r) => `repeat ${r.repeat}${isValid(r) ? '' : ` (${runStanding(r)}, excluded)`}: ${fmt(m.get(r))}`).join('\n');
    return { text: fmt(median(valid)), title };
  }
  const all = valuesOf(cell.runs, m);
  if (all.length === 0) return { text: '—', cls: cell.runs.length ? 'invalid' : 'muted' };
  return {
    text: `${fmt(median(all))} ⚠ ${cell.runs[0] ? runStanding(cell.runs[0]) : 'invalid'}`,
    title: 'from runs that are not valid: not used in ratios or winners',
    cls: 'invalid',
  };
}

function ratioCell(base: VariantCell, other: VariantCell, m: MetricDef, opts: TableOptions): Cell {
  const b = valuesOf(base.valid, m);
  const o = valuesOf(other.valid, m);
  const est = bootstrapRatio(b, o, { seed: opts.seed });
  if (!est) return { text: b.length && o.length ? '—' : 'n/a (no valid runs)', cls: 'muted' };
  const band = opts.noiseBand ?? 0.05;
  const beyond = est.interval ? est.interval.lo > 1 || est.interval.hi < 1 : Math.abs(est.ratio - 1) > band;
  let cls: Cell['cls'];
  if (beyond && m.better) {
    const otherBetter = m.better === 'lower' ? est.ratio < 1 : est.ratio > 1;
    cls = otherBetter ? 'good' : 'bad';
  }
  const interval = fmtInterval(est.interval);
  const text = `${fmtRatio(est.ratio)}${interval ? ` ${interval}` : ''}`;
  const title = !Number.isFinite(est.ratio)
    ? `${base.variant} is 0 here`
    : est.interval
      ? `median ratio of ${o.length} vs ${b.length} valid runs; 95% bootstrap interval ${fmtInterval(est.interval)}`
      : 'single run per side: no interval';
  return cls ? { text, title, cls } : { text, title };
}

/** Error rows for every code and kind seen at this stage. */
function errorRows(stage: StageGroup): MetricDef[] {
  const codes = new Set<string>();
  const kinds = new Set<string>();
  for (const c of stage.cells)
    for (const r of c.runs) {
      for (const [k, n] of Object.entries(r.errors.byCode)) if (n > 0) codes.add(k);
      for (const [k, n] of Object.entries(r.errors.byKind)) if (n > 0) kinds.add(k);
    }
  return [...[...codes].sort().map((k) => errorCodeMetric(k, 'code')), ...[...kinds].sort().map((k) => errorCodeMetric(k, 'kind'))];
}

/**
 * The side-by-side table of one stage: `rows` (default: the side-by-side metrics, with a row per
 * error code seen), a ratio column per variant against the first.
 */
export function stageTable(stage: StageGroup, opts: TableOptions = {}, rowSpec: TableRow[] = TABLE_ROWS): StageTable {
  const [base, ...others] = stage.cells;
  const header = ['metric', ...stage.cells.map((c) => c.variant), ...others.map((c) => `${c.variant} / ${base?.variant ?? ''}`)];
  const repeats = stage.cells.some((c) => c.valid.length > 1);
  const statusCells: Cell[] = stage.cells.map((c) => (c.valid.length === c.runs.length ? { text: cellStatus(c) } : { text: cellStatus(c), cls: 'invalid' }));
  const ratioHeads: Cell[] = others.map(() => ({ text: repeats ? 'median [95% CI]' : 'single run', cls: 'muted' }));
  const rows: Row[] = [{ label: 'runs', metricId: 'runs', cells: [...statusCells, ...ratioHeads] }];
  if (opts.cpuCount !== undefined) {
    const cpus = opts.cpuCount;
    rows.push({
      label: 'server shape',
      metricId: 'server.shape',
      cells: [...stage.cells.map((c) => shapeCell(c, cpus)), ...others.map((): Cell => ({ text: '', cls: 'muted' }))],
    });
  }
  const spec: TableRow[] = [];
  for (const r of rowSpec) {
    spec.push(r);
    if ('metric' in r && r.metric.id === 'errors.total') for (const m of errorRows(stage)) spec.push({ metric: m });
  }
  for (const r of spec) {
    if ('heading' in r) {
      rows.push({ heading: r.heading });
      continue;
    }
    const m = r.metric;
    const cells = stage.cells.map((c) => valueCell(c, m));
    if (base) for (const o of others) cells.push(m.ratio === false ? { text: '', cls: 'muted' } : ratioCell(base, o, m, opts));
    rows.push({ label: m.label, metricId: m.id, cells });
  }
  return { header, rows, repeats };
}
