/**
 * Comparison of two results (BASE and HEAD) for CI: per variant, stage and gate metric the ratio
 * HEAD/BASE of the medians of valid runs, its bootstrap interval when there are repeats, and a
 * verdict. Pure: the CLI (runner/commands/compare.ts) reads the files and decides the exit code.
 *
 * The rule, with bound b = --max-regression and the metric's noise band n (report/noise.ts: how far
 * two runs of the same commit drift apart on this project's machine):
 * - repeats on either side: regressed when HEAD/BASE > 1 + b and the 95% bootstrap interval of the
 *   ratio lies wholly above 1; improved when the ratio < 1/(1 + b) and the interval lies below 1;
 *   a ratio past the bound whose interval still holds 1 is inconclusive;
 * - one run per side: there is no interval, so the change must also be beyond the noise band:
 *   regressed when HEAD/BASE > 1 + max(b, n), improved when < 1/(1 + max(b, n)); past the bound
 *   but inside the band is inconclusive, and the note says about how many repeats would decide it;
 * - either way a change smaller than the metric's absolute floor (1 ms, 512 B per socket, 0.5 s of
 *   CPU, 5 errors) is within noise, so tiny values cannot fail a build by ratio alone;
 * - inconclusive when a side has no run, no valid run (invalid or errored) or no value.
 * Results of different scenarios, stages, variants or machines are not comparable: `refusals` lists
 * why, and the CLI refuses them (exit 2) unless --force.
 */
import type { Environment, ResultFile, RunRecord } from '../model/result.js';
import type { Unit } from './format.js';
import { GATE_METRICS, type MetricDef } from './metrics.js';
import { isValid, valuesOf, variantsOf } from './runs.js';
import { bandFor, PROJECT_NOISE_BANDS, repeatsToDecide, type NoiseFractions } from './noise.js';
import { bootstrapRatio, median, ratioVerdict, type RatioEstimate } from './stats.js';

export type CompareVerdict = 'improved' | 'regressed' | 'within noise' | 'inconclusive';

export interface CompareOptions {
  /** Largest tolerated slowdown as a fraction (0.1 = 10%); default 0.1. */
  maxRegression?: number;
  /** Noise bands per metric (and per variant kind), as fractions (report/noise.ts); default PROJECT_NOISE_BANDS. */
  noise?: NoiseFractions;
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
  /** For an inconclusive change: about how many runs per side would decide it (null when unknown or not applicable). */
  repeatsNeeded: number | null;
}

export interface Comparison {
  base: { runId: string; scenario: string; commit: string | null };
  head: { runId: string; scenario: string; commit: string | null };
  maxRegression: number;
  /** CPU model, core count or Node major that differ ([] when comparable). */
  envDifferences: string[];
  /**
   * Why the two results are not comparable at all: a different scenario, stages, variants or
   * machine ([] when they are). The CLI refuses them (exit 2) unless --force.
   */
  refusals: string[];
  /** The noise bands used. */
  noise: NoiseFractions;
  /** The most repeats per side any inconclusive change needs (null when none). */
  repeatsNeeded: number | null;
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

/** Differences that make two results incomparable: the machine (host, CPU model, core count, memory) and the Node major. */
export function environmentDifferences(base: Environment, head: Environment): string[] {
  const out: string[] = [];
  if (base.hostname !== head.hostname) out.push(`machine: BASE ${base.hostname}, HEAD ${head.hostname}`);
  if (base.cpuModel !== head.cpuModel) out.push(`CPU model: BASE "${base.cpuModel}", HEAD "${head.cpuModel}"`);
  if (base.cpuCount !== head.cpuCount) out.push(`core count: BASE ${base.cpuCount}, HEAD ${head.cpuCount}`);
  if (base.memTotalBytes !== head.memTotalBytes) out.push(`memory: BASE ${base.memTotalBytes} B, HEAD ${head.memTotalBytes} B`);
  const a = nodeMajor(base.node);
  const b = nodeMajor(head.node);
  if (a !== b) out.push(`Node major: BASE ${base.node}, HEAD ${head.node}`);
  return out;
}

/** "1,000 × 30 s, 5,000 × 30 s": a result's stages. */
function stagesText(r: ResultFile): string {
  const by = new Map<number, { connections: number; durationSec: number }>();
  for (const x of r.runs) by.set(x.stage.index, { connections: x.stage.connections, durationSec: x.stage.durationSec });
  return (
    [...by.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([, s]) => `${s.connections.toLocaleString('en-US')} × ${s.durationSec} s`)
      .join(', ') || 'none'
  );
}

/** "batched (batched), per-request (per-request)": a result's variants and their kinds. */
function variantsText(r: ResultFile): string {
  const seen = new Map<string, string>();
  for (const x of r.runs) if (!seen.has(x.variant)) seen.set(x.variant, x.variantKind);
  return [...seen.entries()]
    .map(([n, k]) => (n === k ? n : `${n} (${k})`))
    .sort()
    .join(', ');
}

/**
 * Why BASE and HEAD measure different things, so that no ratio between them means anything: the
 * scenario (its name or resolved hash), the stages, the variants, the machine. [] when comparable.
 */
export function refusalsOf(base: ResultFile, head: ResultFile): string[] {
  const out: string[] = [];
  if (base.scenario.name !== head.scenario.name || base.scenario.hash !== head.scenario.hash)
    out.push(
      `different scenarios: BASE ${base.scenario.name} (${base.scenario.hash.slice(0, 15)}…), HEAD ${head.scenario.name} (${head.scenario.hash.slice(0, 15)}…)`,
    );
  const [sb, sh] = [stagesText(base), stagesText(head)];
  if (sb !== sh) out.push(`different stages: BASE ${sb}; HEAD ${sh}`);
  const [vb, vh] = [variantsText(base), variantsText(head)];
  if (vb !== vh) out.push(`different variants: BASE ${vb}; HEAD ${vh}`);
  for (const d of environmentDifferences(base.environment, head.environment)) out.push(`different ${d}`);
  return out;
}

function side(runs: RunRecord[] | undefined, m: MetricDef): Side | null {
  // A group from compareResults is absent or holds one run at least.
  if (!runs) return null;
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
  kind?: string,
): Pick<CompareRow, 'ratio' | 'interval' | 'verdict' | 'note' | 'repeatsNeeded'> {
  const bound = opts.maxRegression ?? 0.1;
  const noise = bandFor(opts.noise ?? PROJECT_NOISE_BANDS, m.id, kind);
  const none = (note: string) => ({ ratio: null, interval: null, verdict: 'inconclusive' as const, note, repeatsNeeded: null });
  if (!base) return none('no such run in BASE');
  if (!head) return none('no such run in HEAD');
  if (base.valid === 0) return none(`BASE has no valid run (${base.total} invalid or errored)`);
  if (head.valid === 0) return none(`HEAD has no valid run (${head.total} invalid or errored)`);
  if (base.values.length === 0 || head.values.length === 0) return none(`no ${m.label} value in ${base.values.length === 0 ? 'BASE' : 'HEAD'}`);
  // Never null: bootstrapRatio returns null only for an empty side, and both have values here.
  const est = bootstrapRatio(base.values, head.values, { seed: opts.seed, iterations: opts.iterations }) as RatioEstimate;
  // One run per side: a change must clear the metric's noise band as well as the bound.
  const single = est.interval === null;
  const gate = single && noise !== null ? Math.max(bound, noise) : bound;
  let verdict: CompareVerdict = ratioVerdict(est, gate);
  const notes = [describe(base, 'BASE'), describe(head, 'HEAD')].filter(Boolean);
  const delta = Math.abs((head.median as number) - (base.median as number));
  const floor = ABSOLUTE_FLOOR[m.unit];
  const pct = (x: number): string => `${Math.round(x * 100)}%`;
  const past = est.ratio > 1 + bound || est.ratio < 1 / (1 + bound);
  let repeatsNeeded: number | null = null;
  if (verdict !== 'within noise' && delta <= floor) {
    notes.push(`change under the absolute floor (${floor} ${m.unit})`);
    verdict = 'within noise';
  } else if (verdict === 'within noise' && past && delta > floor) {
    // Past the bound, but not beyond the noise: neither a regression nor nothing.
    verdict = 'inconclusive';
    repeatsNeeded = repeatsToDecide(est.ratio, single ? noise : bandOfInterval(est));
    const n = repeatsNeeded === null ? '' : `; about ${repeatsNeeded} runs per side would decide it`;
    // A single run here always has a band: with none the gate is the bound itself, and a ratio past the
    // bound is then a regression or an improvement, never within noise.
    notes.push(
      single
        ? `past the ${pct(bound)} bound but inside this metric's noise band (±${pct(noise as number)} between two runs of the same commit)${n}`
        : `past the ${pct(bound)} bound, but the 95% interval still holds 1${n}`,
    );
  } else if (verdict === 'within noise' && est.interval && (est.interval.lo > 1 || est.interval.hi < 1)) {
    notes.push(`a real change, but within the ${pct(bound)} bound`);
  }
  if (single && verdict !== 'inconclusive')
    notes.push(noise === null ? 'single run per side, no noise band' : `single run per side; noise band ±${pct(noise)}`);
  return { ratio: est.ratio, interval: est.interval, verdict, note: notes.join('; '), repeatsNeeded };
}

/** With repeats: the interval's half-width as a band (so repeatsToDecide can scale it), or null. */
function bandOfInterval(est: RatioEstimate): number | null {
  if (!est.interval || !(est.interval.lo > 0) || !Number.isFinite(est.interval.hi)) return null;
  const half = (Math.log(est.interval.hi) - Math.log(est.interval.lo)) / 2;
  // The interval is of medians of n runs; the band of one run is √n times wider.
  const n = Math.min(est.n.base, est.n.head);
  return Math.expm1(half * Math.sqrt(n));
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
            ? {
                ratio: null,
                interval: null,
                verdict: 'inconclusive' as const,
                note: `stage ${s + 1} differs: ${bc} sockets in BASE, ${hc} in HEAD`,
                repeatsNeeded: null,
              }
            : compareCell(bs, hs, m, opts, (hr ?? br)?.[0]?.variantKind);
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
  const needs = rows.map((r) => r.repeatsNeeded).filter((x): x is number => x !== null);
  return {
    base: { runId: base.runId, scenario: base.scenario.name, commit: base.environment.git.commit },
    head: { runId: head.runId, scenario: head.scenario.name, commit: head.environment.git.commit },
    maxRegression,
    envDifferences: environmentDifferences(base.environment, head.environment),
    refusals: refusalsOf(base, head),
    noise: opts.noise ?? PROJECT_NOISE_BANDS,
    repeatsNeeded: needs.length ? Math.max(...needs) : null,
    notes,
    rows,
    regressions: rows.filter((r) => r.verdict === 'regressed'),
    counts,
  };
}
