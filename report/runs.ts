/**
 * Grouping of a result's runs: by stage, then by variant (in the scenario's order), with the valid
 * runs (status ok) apart from the rest. Only valid runs enter medians, ratios and winners; the
 * others are shown, marked, and counted, never averaged in.
 */
import type { ResultFile, RunRecord } from '../model/result.js';
import type { MetricDef } from './metrics.js';
import { serverProcessesOfArgv, setsProcesses } from '../model/variants.js';
import { median } from './stats.js';

export interface VariantCell {
  variant: string;
  /** Every run of this variant at this stage, in repeat order. */
  runs: RunRecord[];
  /** The runs with status ok. */
  valid: RunRecord[];
}

export interface StageGroup {
  index: number;
  connections: number;
  durationSec: number;
  cells: VariantCell[];
}

/**
 * A run counts towards medians, ratios and winners only when its measurement is valid (`ok`) and
 * its audit did not find lost or phantom data: a design that lost acked rows never wins on latency.
 */
export const isValid = (r: RunRecord): boolean => r.status === 'ok' && (r.audit === null || r.audit.ok);

/** Why a run does not count, in a word or two: its status, or "audit failed" for a run measured honestly (ok) whose audit failed; "valid" when it counts. */
export const runStanding = (r: RunRecord): string => (r.status !== 'ok' ? r.status : isValid(r) ? 'valid' : 'audit failed');

/** Variant names in order of first appearance (the runner interleaves them in scenario order). */
export function variantsOf(result: ResultFile): string[] {
  const seen: string[] = [];
  for (const r of result.runs) if (!seen.includes(r.variant)) seen.push(r.variant);
  return seen;
}

/** Runs grouped by stage (ascending index), each stage with one cell per variant. */
export function groupByStage(result: ResultFile): StageGroup[] {
  const variants = variantsOf(result);
  const byStage = new Map<number, StageGroup>();
  for (const r of result.runs) {
    let g = byStage.get(r.stage.index);
    if (!g) {
      g = {
        index: r.stage.index,
        connections: r.stage.connections,
        durationSec: r.stage.durationSec,
        cells: variants.map((v) => ({ variant: v, runs: [], valid: [] })),
      };
      byStage.set(r.stage.index, g);
    }
    const cell = g.cells.find((c) => c.variant === r.variant) as VariantCell;
    cell.runs.push(r);
    if (isValid(r)) cell.valid.push(r);
  }
  const groups = [...byStage.values()].sort((a, b) => a.index - b.index);
  for (const g of groups)
    for (const c of g.cells) {
      c.runs.sort((a, b) => a.repeat - b.repeat);
      c.valid.sort((a, b) => a.repeat - b.repeat);
    }
  return groups;
}

/** The metric's values over the runs, nulls dropped. */
export function valuesOf(runs: readonly RunRecord[], m: MetricDef): number[] {
  const out: number[] = [];
  for (const r of runs) {
    const v = m.get(r);
    if (v !== null && Number.isFinite(v)) out.push(v);
  }
  return out;
}

/** Median of the metric over the valid runs; null when none has a value. */
export function cellMedian(cell: VariantCell, m: MetricDef): number | null {
  const v = valuesOf(cell.valid, m);
  return v.length ? median(v) : null;
}

/**
 * How often the runner scraped each server's /metrics (its own cost on the server: the scrape-cost
 * scenario): "every 1 s", or per variant where they differ ("batched-scrape-1s every 1 s,
 * batched-no-scrape never"). Results older than the field were scraped every second.
 */
export function scrapeText(result: ResultFile): string {
  const by = new Map<string, number>();
  for (const r of result.runs) if (!by.has(r.variant)) by.set(r.variant, r.scrapeIntervalSec ?? 1);
  const every = (s: number): string => (s === 0 ? 'never' : `every ${s} s`);
  const values = new Set(by.values());
  const text = values.size <= 1 ? `each server's /metrics ${every([...values][0] ?? 1)}` : [...by].map(([v, s]) => `${v} ${every(s)}`).join(', ');
  return `The runner scraped ${values.size <= 1 ? text : `/metrics: ${text}`} (server metrics, event-loop delay and the server's series come from these scrapes).`;
}

/** "stage 2 · 5,000 sockets" */
export function stageLabel(g: { index: number; connections: number }): string {
  return `stage ${g.index + 1} · ${g.connections.toLocaleString('en-US')} sockets`;
}

/** "ok 3/3", "ok 2/3 (1 invalid)", "invalid 1/1" */
export function cellStatus(cell: VariantCell): string {
  const n = cell.runs.length;
  if (n === 0) return 'not run';
  const bad = cell.runs.filter((r) => !isValid(r));
  if (bad.length === 0) return n === 1 ? 'ok' : `ok ${n}/${n}`;
  const kinds = [...new Set(bad.map(runStanding))].join('/');
  if (bad.length === n) return `${kinds} ${n}/${n} (excluded)`;
  return `ok ${n - bad.length}/${n} (${bad.length} ${kinds} excluded)`;
}

/**
 * The server's shape in one run: batched `--shards N` (default 1) or per-request `--workers W`
 * (default: the machine's CPU count, environment.cpuCount), and the processes seen in its tree.
 */
export interface ServerShape {
  /** 'shards' for batched, 'workers' for per-request, 'processes' for an external server (options.processes, default 1). */
  unit: 'shards' | 'workers' | 'processes';
  count: number;
  /** Whether the count came from the variant's flags (false: the server's default). */
  fromFlags: boolean;
  /** Most processes seen in the server's tree during the run. */
  processes: number;
}

export function serverShape(run: RunRecord, cpuCount: number): ServerShape {
  const unit = run.variantKind === 'batched' || run.variantKind === 'floor' ? 'shards' : run.variantKind === 'external' ? 'processes' : 'workers';
  const fromFlags = setsProcesses(run.variantKind, run.variantFlags);
  const count = serverProcessesOfArgv(run.variantKind, run.variantFlags, cpuCount);
  return { unit, count, fromFlags, processes: run.resources.server.processes };
}

/** "1 shard", "2 workers (default: CPU count)", with the processes seen: "2 workers · 3 processes". */
export function shapeLabel(s: ServerShape, withProcesses = true): string {
  const noun = s.count === 1 ? { shards: 'shard', workers: 'worker', processes: 'process' }[s.unit] : s.unit;
  const dflt = s.fromFlags ? '' : s.unit === 'workers' ? ' (default: CPU count)' : ' (default)';
  const procs = withProcesses && s.processes > 0 ? ` · ${s.processes} process${s.processes === 1 ? '' : 'es'}` : '';
  return `${s.count} ${noun}${dflt}${procs}`;
}
