/**
 * Comparison of two results (BASE and HEAD) for CI: per variant, stage and gate metric the ratio
 * HEAD/BASE of the medians of valid runs, its bootstrap interval when there are repeats, and a
 * verdict. Pure: the CLI (runner/commands/compare.ts) reads the files and decides the exit code.
 *
 * Noise rule (see stats.ratioVerdict), with bound b = --max-regression:
 * - repeats on either side: regressed when HEAD/BASE > 1 + b and the 95% bootstrap interval of the
 *   ratio lies wholly above 1; improved when the ratio < 1/(1 + b) and the interval lies below 1;
 * - one run per side: there is no interval, so the bound is the noise band: regressed when
 *   HEAD/BASE > 1 + b, improved when < 1/(1 + b);
 * - either way a change smaller than the metric's absolute floor (1 ms, 512 B per socket, 0.5 s of
 *   CPU, 5 errors) is within noise, so tiny values cannot fail a build by ratio alone;
 * - inconclusive when a side has no run, no valid run (invalid or errored) or no value.
 */
import type { Environment, ResultFile, RunRecord } from '../model/result.js';
import type { Unit } from './format.js';
import { GATE_METRICS, type MetricDef } from './metrics.js';
import { isValid, valuesOf, variantsOf } from './runs.js';
import { bootstrapRatio, median, ratioVerdict } from './stats.js';

export type CompareVerdict = 'improved' | 'regressed' | 'within noise' | 'inconclusive';

export interface CompareOptions {
  /** Largest tolerated slowdown as a fraction (0.1 = 10%); default 0.1. */
  maxRegression?: number;
  /** Bootstrap seed; default 0x5eed. */
  seed?: number;
  /** Bootstrap resamples; default 2000. */
  iterations?: number;
}

export interface Side {
  /** Median of the valid runs' values; null when none. */
  median: number | null;
  values: number[];
  valid: number;
  total: number;
}

export interface CompareRow {
  variant: string;
  stage: { index: number; connections: number };
  metric: { id: string; label: string; unit: Unit };
  base: Side | null;
  head: Side | null;
  /** HEAD / BASE of the medians; null when inconclusive. */
  ratio: number | null;
  interval: { lo: number; hi: number; level: number } | null;
  verdict: CompareVerdict;
  note: string;
}

export interface Comparison {
  base: { runId: string; scenario: string; commit: string | null };
  head: { runId: string; scenario: string; commit: string | null };
  maxRegression: number;
  /** CPU model, core count or Node major that differ ([] when comparable). */
  envDifferences: string[];
  /** Things a reader should know that do not stop the comparison. */
  notes: string[];
  rows: CompareRow[];
  regressions: CompareRow[];
  counts: Record<CompareVerdict, number>;
}

/** Absolute change below which a metric never counts as changed, by unit. */
export const ABSOLUTE_FLOOR: Record<Unit, number> = { ms: 1, bytes: 512, sec: 0.5, count: 5, perSec: 1, pct: 1 };

export function nodeMajor(version: string): number | null {
  const m = /^v?(\d+)/.exec(version.trim());
  return m ? Number(m[1]) : null;
}

/** Differences that make two results incomparable: CPU model, core count, Node major. */
export function environmentDifferences(base: Environment, head: Environment): string[] {
  const out: string[] = [];
  if (base.cpuModel !== head.cpuModel) out.push(`CPU model: BASE "${base.cpuModel}", HEAD "${head.cpuModel}"`);
  if (base.cpuCount !== head.cpuCount) out.push(`core count: BASE ${base.cpuCount}, HEAD ${head.cpuCount}`);
  const a = nodeMajor(base.node);
  const b = nodeMajor(head.node);
  if (a !== b) out.push(`Node major: BASE ${base.node}, HEAD ${head.node}`);
  return out;
}

function side(runs: RunRecord[] | undefined, m: MetricDef): Side | null {
  if (!runs || runs.length === 0) return null;
  const valid = runs.filter(isValid);
  const values = valuesOf(valid, m);
  return { median: values.length ? median(values) : null, values, valid: valid.length, total: runs.length };
}

function describe(s: Side, name: string): string {
  return s.valid === s.total ? '' : `${name}: ${s.valid} of ${s.total} runs valid`;
}

/** Compares one metric of one variant and stage. */
export function compareCell(
  base: Side | null,
  head: Side | null,
  m: MetricDef,
  opts: CompareOptions = {},
): Pick<CompareRow, 'ratio' | 'interval' | 'verdict' | 'note'> {
  const bound = opts.maxRegression ?? 0.1;
  const none = (note: string) => ({ ratio: null, interval: null, verdict: 'inconclusive' as const, note });
  if (!base) return none('no such run in BASE');
  if (!head) return none('no such run in HEAD');
  if (base.valid === 0) return none(`BASE has no valid run (${base.total} invalid or errored)`);
  if (head.valid === 0) return none(`HEAD has no valid run (${head.total} invalid or errored)`);
  if (base.values.length === 0 || head.values.length === 0) return none(`no ${m.label} value in ${base.values.length === 0 ? 'BASE' : 'HEAD'}`);
  const est = bootstrapRatio(base.values, head.values, { seed: opts.seed, iterations: opts.iterations });
  if (!est) return none('no values');
  let verdict: CompareVerdict = ratioVerdict(est, bound);
  const notes = [describe(base, 'BASE'), describe(head, 'HEAD')].filter(Boolean);
  const delta = Math.abs((head.median as number) - (base.median as number));
  const floor = ABSOLUTE_FLOOR[m.unit];
  if (verdict !== 'within noise' && delta <= floor) {
    notes.push(`change under the absolute floor (${floor} ${m.unit})`);
    verdict = 'within noise';
  } else if (verdict === 'within noise' && est.interval && (est.interval.lo > 1 || est.interval.hi < 1)) {
    notes.push(`a real change, but within the ${Math.round(bound * 100)}% bound`);
  }
  if (!est.interval) notes.push('single run per side: the bound is the noise band');
  return { ratio: est.ratio, interval: est.interval, verdict, note: notes.join('; ') };
}

/** Compares HEAD against BASE. Environments are not checked here (see environmentDifferences). */
export function compareResults(base: ResultFile, head: ResultFile, opts: CompareOptions = {}): Comparison {
  const maxRegression = opts.maxRegression ?? 0.1;
  const key = (r: RunRecord) => `${r.variant}\u0000${r.stage.index}`;
  const group = (res: ResultFile) => {
    const m = new Map<string, RunRecord[]>();
    for (const r of res.runs) m.set(key(r), [...(m.get(key(r)) ?? []), r]);
    return m;
  };
  const b = group(base);
  const h = group(head);
  const variants = [...variantsOf(head), ...variantsOf(base).filter((v) => !variantsOf(head).includes(v))];
  const stages = [...new Set([...base.runs, ...head.runs].map((r) => r.stage.index))].sort((x, y) => x - y);
  const notes: string[] = [];
  if (base.scenario.hash !== head.scenario.hash)
    notes.push(
      `The scenarios differ (BASE ${base.scenario.name} ${base.scenario.hash.slice(0, 15)}…, HEAD ${head.scenario.name} ${head.scenario.hash.slice(0, 15)}…): the comparison assumes the same load.`,
    );
  if (base.environment.pinned !== head.environment.pinned)
    notes.push(`CPU pinning differs: BASE ${base.environment.pinned ? 'pinned' : 'not pinned'}, HEAD ${head.environment.pinned ? 'pinned' : 'not pinned'}.`);

  const rows: CompareRow[] = [];
  for (const s of stages) {
    for (const v of variants) {
      const br = b.get(`${v}\u0000${s}`);
      const hr = h.get(`${v}\u0000${s}`);
      if (!br && !hr) continue;
      const bc = br?.[0]?.stage.connections;
      const hc = hr?.[0]?.stage.connections;
      for (const m of GATE_METRICS) {
        const bs = side(br, m);
        const hs = side(hr, m);
        const cell =
          bc !== undefined && hc !== undefined && bc !== hc
            ? { ratio: null, interval: null, verdict: 'inconclusive' as const, note: `stage ${s + 1} differs: ${bc} sockets in BASE, ${hc} in HEAD` }
            : compareCell(bs, hs, m, opts);
        rows.push({
          variant: v,
          stage: { index: s, connections: (hc ?? bc) as number },
          metric: { id: m.id, label: m.label, unit: m.unit },
          base: bs,
          head: hs,
          ...cell,
        });
      }
    }
  }
  const counts: Record<CompareVerdict, number> = { improved: 0, regressed: 0, 'within noise': 0, inconclusive: 0 };
  for (const r of rows) counts[r.verdict]++;
  return {
    base: { runId: base.runId, scenario: base.scenario.name, commit: base.environment.git.commit },
    head: { runId: head.runId, scenario: head.scenario.name, commit: head.environment.git.commit },
    maxRegression,
    envDifferences: environmentDifferences(base.environment, head.environment),
    notes,
    rows,
    regressions: rows.filter((r) => r.verdict === 'regressed'),
    counts,
  };
}
