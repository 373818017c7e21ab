/**
 * The verdict: which variant wins on fan-out p99, ack p99, RAM per socket and errors (per stage,
 * and at the largest stage that can be compared), and every reason to doubt the numbers: invalid
 * or errored runs, audit failures, failed thresholds, lost deliveries, runs with errors, latency
 * that drifted over the measured window (steady.ts). Only valid runs compete.
 *
 * The rule an architect relies on: a variant that refused or lost any update at a stage (an error,
 * a missing, duplicate, reordered or phantom broadcast, an unanswered update, an audit finding)
 * never wins a latency or memory criterion there, whatever its figures: being fast by not doing the
 * work is not a win. Its figures are shown, with the reason, and it can still lose on errors.
 */
import type { ResultFile, RunRecord } from '../model/result.js';
import { fmtInterval, fmtNum, fmtRatio, fmtUnit } from './format.js';
import { M, type MetricDef } from './metrics.js';
import { groupByStage, isValid, stageLabel, valuesOf, type StageGroup } from './runs.js';
import { bootstrapRatio, median, type RatioEstimate } from './stats.js';
import { driftWarnings } from './steady.js';
import { designCells, isReferenceKind } from './floor.js';

export interface VerdictOptions {
  /** Single-run noise band: a runner-up within this fraction of the best is a tie; default 0.05. */
  noiseBand?: number;
  /** Bootstrap seed (see stats.bootstrapRatio); default 0x5eed. */
  seed?: number;
}

export interface Candidate {
  variant: string;
  /** Median over the valid runs; null when it has none. */
  value: number | null;
  /** Valid runs / all runs. */
  valid: number;
  total: number;
  /** Why it cannot win this criterion (it refused or lost updates), or undefined. */
  excluded?: string;
}

/** What a variant refused or lost at a stage, summed over its runs there. */
export interface Integrity {
  /** Updates sent. */
  sent: number;
  /** Updates answered with an error frame (OVERLOADED, BUSY_EXHAUSTED, …). */
  refused: number;
  /** Refusals by server error code. */
  refusedByCode: Record<string, number>;
  /** Updates neither acked nor refused by the end of the drain. */
  unanswered: number;
  /** Client-side errors (connect failures, closes, protocol errors), by kind. */
  otherErrors: Record<string, number>;
  missing: number;
  duplicate: number;
  outOfOrder: number;
  phantom: number;
  /** The audit's findings: acked but not stored, broadcast but not stored, stored but never acked or broadcast, final-state mismatches, boards with seq gaps. */
  audit: number;
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/** The integrity of a set of runs (one variant at one stage). */
export function integrityOf(runs: readonly RunRecord[]): Integrity {
  const refusedByCode: Record<string, number> = {};
  const otherErrors: Record<string, number> = {};
  for (const r of runs) {
    for (const [k, n] of Object.entries(r.errors.byCode)) if (n > 0) refusedByCode[k] = (refusedByCode[k] ?? 0) + n;
    for (const [k, n] of Object.entries(r.errors.byKind)) if (n > 0) otherErrors[k] = (otherErrors[k] ?? 0) + n;
  }
  const a = (r: RunRecord): number =>
    r.audit ? r.audit.lostAcked + r.audit.phantom + r.audit.storedNotAcked + r.audit.notBroadcast + r.audit.finalStateMismatches + r.audit.seqGaps : 0;
  return {
    sent: sum(runs.map((r) => r.updates.sent)),
    refused: sum(runs.map((r) => r.updates.errored)),
    refusedByCode,
    unanswered: sum(runs.map((r) => r.updates.unanswered)),
    otherErrors,
    missing: sum(runs.map((r) => r.delivery.missing)),
    duplicate: sum(runs.map((r) => r.delivery.duplicate)),
    outOfOrder: sum(runs.map((r) => r.delivery.outOfOrder)),
    phantom: sum(runs.map((r) => r.delivery.phantom)),
    audit: sum(runs.map(a)),
  };
}

/** "1 %", "0.17 %", "97 %": a share in percent, two significant digits. */
export function fmtPct(part: number, whole: number): string {
  if (whole <= 0) return '— %';
  return `${fmtNum((100 * part) / whole, 2)} %`;
}

const plural = (n: number, one: string, many = `${one}s`): string => `${fmtNum(n)} ${n === 1 ? one : many}`;
const byCount = (m: Record<string, number>): string =>
  Object.entries(m)
    .sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]))
    .map(([k, n]) => `${k} ${fmtNum(n)}`)
    .join(', ');

/**
 * What a variant refused or lost, in one line, refusals first ("refused 6 updates (1 %): BUSY_EXHAUSTED 6"),
 * or null when it refused and lost nothing.
 */
export function integrityProblem(i: Integrity): string | null {
  const parts: string[] = [];
  if (i.refused > 0) parts.push(`refused ${plural(i.refused, 'update')} (${fmtPct(i.refused, i.sent)}): ${byCount(i.refusedByCode)}`);
  if (i.unanswered > 0) parts.push(`left ${plural(i.unanswered, 'update')} unanswered (${fmtPct(i.unanswered, i.sent)})`);
  if (i.missing > 0) parts.push(`lost ${plural(i.missing, 'broadcast')}`);
  if (i.duplicate > 0) parts.push(`${plural(i.duplicate, 'duplicate broadcast')}`);
  if (i.outOfOrder > 0) parts.push(`${plural(i.outOfOrder, 'broadcast')} out of order`);
  if (i.phantom > 0) parts.push(`${plural(i.phantom, 'phantom broadcast')}`);
  if (i.audit > 0) parts.push(`${plural(i.audit, 'audit finding')}`);
  const other = sum(Object.values(i.otherErrors));
  if (other > 0) parts.push(`${plural(other, 'other error')} (${byCount(i.otherErrors)})`);
  return parts.length ? parts.join('; ') : null;
}

/** The criteria a variant that refused or lost updates can never win. */
export const INTEGRITY_GATED: ReadonlySet<string> = new Set(['fanoutP99', 'ackP99', 'ramPerSocket']);

export interface CriterionResult {
  id: 'fanoutP99' | 'ackP99' | 'ramPerSocket' | 'errors';
  label: string;
  metric: MetricDef;
  stage: { index: number; connections: number };
  /** The clear winner; null on a tie or when fewer than two variants have valid runs. */
  winner: string | null;
  /** Variants tied for the best value (within noise), when there is no clear winner. */
  tied: string[];
  runnerUp: string | null;
  /** runner-up / best, with its bootstrap interval when there are repeats. */
  ratio: RatioEstimate | null;
  candidates: Candidate[];
  /** One line for the banner, e.g. "batched: 6.2 ms vs 51.6 ms (per-request ×8.3)". */
  text: string;
}

export type WarningKind = 'result' | 'run' | 'audit' | 'threshold' | 'delivery' | 'errors' | 'sockets' | 'comparison' | 'drift';

export interface Warning {
  severity: 'error' | 'warn';
  kind: WarningKind;
  message: string;
}

export interface Verdict {
  /** The largest stage where at least two variants have valid runs; null when none. */
  headline: { index: number; connections: number } | null;
  /** The criteria at the headline stage. */
  criteria: CriterionResult[];
  /** The criteria at every stage, in stage order. */
  byStage: Array<{ index: number; connections: number; criteria: CriterionResult[] }>;
  warnings: Warning[];
  /** Plain statement of what limits absolute figures (server and fleet on one machine). */
  caveat: string;
}

const CRITERIA: Array<{ id: CriterionResult['id']; label: string; metric: MetricDef }> = [
  { id: 'fanoutP99', label: 'Fan-out p99', metric: M.fanoutP99 },
  { id: 'ackP99', label: 'Ack p99', metric: M.ackP99 },
  { id: 'ramPerSocket', label: 'RAM per socket', metric: M.ramPerSocket },
  { id: 'errors', label: 'Errors', metric: M.errors },
];

/**
 * Judges one criterion at one stage (lower is better for all four). For latency and memory, a
 * variant whose valid runs at this stage refused or lost updates is excluded: it is listed with its
 * figure and the reason, and the best of the others wins. (Invalid and errored runs count for
 * nothing anyway, and each is a warning of its own.)
 */
export function judgeCriterion(stage: StageGroup, c: (typeof CRITERIA)[number], opts: VerdictOptions = {}): CriterionResult {
  const band = opts.noiseBand ?? 0.05;
  const gated = INTEGRITY_GATED.has(c.id);
  const cand = stage.cells.map((cell) => {
    const values = valuesOf(cell.valid, c.metric);
    // The runs whose figures would count: a refusal in them disqualifies those figures (no valid runs: nothing refused).
    const problem = gated ? integrityProblem(integrityOf(cell.valid)) : null;
    return {
      variant: cell.variant,
      values,
      value: values.length ? median(values) : null,
      valid: cell.valid.length,
      total: cell.runs.length,
      ...(problem ? { excluded: problem } : {}),
    };
  });
  const candidates: Candidate[] = cand.map(({ values: _v, ...rest }) => rest);
  const base = { id: c.id, label: c.label, metric: c.metric, stage: { index: stage.index, connections: stage.connections }, candidates };
  const f = (v: number | null) => fmtUnit(v, c.metric.unit);
  const withValue = cand.filter((x) => x.value !== null);
  const excluded = withValue.filter((x) => x.excluded !== undefined);
  const exclText = excluded.map((x) => `${x.variant}'s ${f(x.value)} does not count: it ${x.excluded}`).join('; ');
  const ranked = withValue.filter((x) => x.excluded === undefined).sort((a, b) => (a.value as number) - (b.value as number));
  const best = ranked[0];
  const second = ranked[1];
  if (!best || (!second && excluded.length === 0)) {
    const why =
      withValue.length < 2
        ? withValue.length === 1
          ? `only ${withValue[0]!.variant} has valid runs`
          : 'no valid runs'
        : 'every variant refused or lost updates';
    return { ...base, winner: null, tied: [], runnerUp: null, ratio: null, text: `no comparison (${why})${exclText && !best ? `: ${exclText}` : ''}` };
  }
  if (!second) {
    // The only variant that did all its work wins: the others' figures are shown, but do not count.
    return { ...base, winner: best.variant, tied: [], runnerUp: null, ratio: null, text: `${best.variant}: ${f(best.value)} (${exclText})` };
  }
  const ratio = bootstrapRatio(best.values, second.values, { seed: opts.seed });
  const est = ratio as RatioEstimate;
  const tie = est.interval ? est.interval.lo <= 1 : est.ratio < 1 + band;
  const others = ranked
    .slice(1)
    .map((x) => `${x.variant} ${f(x.value)}`)
    .join(', ');
  const tail = exclText ? `; ${exclText}` : '';
  if (tie) {
    const tied = ranked.filter((x) => {
      const r = bootstrapRatio(best.values, x.values, { seed: opts.seed }) as RatioEstimate;
      return r.interval ? r.interval.lo <= 1 : r.ratio < 1 + band;
    });
    const names = tied.map((x) => x.variant);
    const rest = ranked.filter((x) => !names.includes(x.variant)).map((x) => `${x.variant} ${f(x.value)}`);
    const text =
      best.value === 0 && second.value === 0
        ? `tie: none at all (${names.join(', ')})${rest.length ? `; ${rest.join(', ')}` : ''}`
        : `tie within noise: ${best.variant} ${f(best.value)} vs ${others} (${fmtRatio(est.ratio)}${est.interval ? ` ${fmtInterval(est.interval)}` : ''})`;
    return { ...base, winner: null, tied: names, runnerUp: second.variant, ratio, text: text + tail };
  }
  const ratioText = Number.isFinite(est.ratio) ? ` (${second.variant} ${fmtRatio(est.ratio)}${est.interval ? ` ${fmtInterval(est.interval)}` : ''})` : '';
  const text = `${best.variant}: ${f(best.value)} vs ${others}${ratioText}${tail}`;
  return { ...base, winner: best.variant, tied: [], runnerUp: second.variant, ratio, text };
}

function runLabel(r: RunRecord): string {
  return `${r.variant} · ${stageLabel(r.stage)} · repeat ${r.repeat}`;
}

/** Every warning a reader must see before trusting the numbers. */
export function collectWarnings(result: ResultFile): Warning[] {
  const w: Warning[] = [];
  if (result.status !== 'ok')
    w.push({
      severity: result.status === 'errored' ? 'error' : 'warn',
      kind: 'result',
      message: `The run as a whole is ${result.status}${result.reasons.length ? `: ${result.reasons.join('; ')}` : ''}.`,
    });
  if (result.runs.length === 0) w.push({ severity: 'error', kind: 'result', message: 'The result holds no runs.' });
  for (const r of result.runs) {
    if (r.status !== 'ok') {
      w.push({
        severity: r.status === 'errored' ? 'error' : 'warn',
        kind: 'run',
        message: `${runLabel(r)} is ${r.status}${r.reasons.length ? `: ${r.reasons.join('; ')}` : ''}. Excluded from medians, ratios and winners.`,
      });
    } else if (!isValid(r)) {
      w.push({ severity: 'error', kind: 'run', message: `${runLabel(r)} failed its audit. Excluded from medians, ratios and winners.` });
    }
    if (r.audit === null) {
      // The floor stores nothing by design: no audit is expected of it.
      if (isValid(r) && !isReferenceKind(r.variantKind)) w.push({ severity: 'warn', kind: 'audit', message: `${runLabel(r)}: no audit of the database.` });
    } else if (!r.audit.ok) {
      const a = r.audit;
      const parts = [
        a.lostAcked && `${a.lostAcked} acked but not stored`,
        a.phantom && `${a.phantom} broadcast but not stored`,
        a.storedNotAcked && `${a.storedNotAcked} stored but never acked`,
        a.notBroadcast && `${a.notBroadcast} stored but never broadcast`,
        a.finalStateMismatches && `${a.finalStateMismatches} card(s) whose final state disagrees with the last event`,
        a.seqGaps && `${a.seqGaps} boards with seq gaps`,
      ].filter(Boolean);
      w.push({
        severity: 'error',
        kind: 'audit',
        message: `${runLabel(r)}: audit FAILED: ${parts.join(', ') || 'see examples'}.${a.examples.length ? ` e.g. ${a.examples.slice(0, 2).join('; ')}` : ''}`,
      });
    }
    for (const t of r.thresholds) {
      if (!t.pass)
        w.push({
          severity: 'warn',
          kind: 'threshold',
          message: `${runLabel(r)}: threshold failed: ${t.expr} (actual ${t.actual === null ? 'none' : fmtNum(t.actual)}).`,
        });
    }
    const d = r.delivery;
    if (d.missing || d.duplicate || d.outOfOrder || d.phantom) {
      const parts = [
        d.missing && `${d.missing} missing`,
        d.duplicate && `${d.duplicate} duplicate`,
        d.outOfOrder && `${d.outOfOrder} out of order`,
        d.phantom && `${d.phantom} phantom`,
      ].filter(Boolean);
      w.push({
        severity: d.phantom ? 'error' : 'warn',
        kind: 'delivery',
        message: `${runLabel(r)}: broadcasts ${parts.join(', ')} (of ${d.expected} expected).`,
      });
    }
    if (r.errors.total > 0) {
      // Every run with errors is named, valid or not: a refused update is a user's change the design did not keep.
      const i = integrityOf([r]);
      const what = integrityProblem({ ...i, unanswered: 0, missing: 0, duplicate: 0, outOfOrder: 0, phantom: 0, audit: 0 });
      w.push({ severity: 'error', kind: 'errors', message: `${runLabel(r)}: ${plural(r.errors.total, 'error')}: ${what ?? 'see the errors table'}.` });
    }
    if (r.updates.unanswered > 0) {
      w.push({
        severity: 'error',
        kind: 'delivery',
        message: `${runLabel(r)}: ${r.updates.unanswered} update(s) were never answered (no ack, no error) by the end of the drain.`,
      });
    }
    if (r.sockets.closedEarly > 0) {
      w.push({ severity: 'warn', kind: 'sockets', message: `${runLabel(r)}: ${r.sockets.closedEarly} socket(s) were closed before the end of the run.` });
    }
    if (r.sockets.failed > 0 || r.sockets.reached < r.sockets.asked) {
      w.push({
        severity: 'warn',
        kind: 'sockets',
        message: `${runLabel(r)}: ${r.sockets.reached} of ${r.sockets.asked} sockets connected (${r.sockets.failed} failed).`,
      });
    }
  }
  const stages = groupByStage(result);
  for (const message of driftWarnings(stages)) w.push({ severity: 'warn', kind: 'drift', message });
  for (const g of stages) {
    const comparable = g.cells.filter((c) => c.valid.length > 0);
    if (g.cells.length > 1 && comparable.length < 2) {
      const notRun = g.cells.filter((c) => c.runs.length === 0).map((c) => c.variant);
      const why =
        result.capacity && notRun.length ? ` (${notRun.join(', ')} not run here: ${notRun.length === 1 ? 'its' : 'their'} capacity search had stopped)` : '';
      w.push({
        severity: 'warn',
        kind: 'comparison',
        message: `${stageLabel(g)}: fewer than two variants have valid runs${why}, so there is no winner at this stage.`,
      });
    }
  }
  return w;
}

/** What the machine allows one to conclude. */
export function caveatOf(result: ResultFile): string {
  const e = result.environment;
  const pin = e.pinned ? 'pinned to separate CPUs' : 'not pinned to separate CPUs, so they compete for the same cores';
  return `Server and fleet share one machine (${e.cpuCount} × ${e.cpuModel}; ${pin}). Absolute figures are limited by that machine; the ratios between variants, measured under the same fleet, are the figures to rely on.`;
}

/** The verdict of a result: winners per criterion and stage, warnings and the caveat. */
export function computeVerdict(result: ResultFile, opts: VerdictOptions = {}): Verdict {
  // The designs only: a reference that stores nothing (the floor) is read as their ratio (report/floor.ts), never a winner.
  const stages = groupByStage(result).map(designCells);
  const byStage = stages.map((g) => ({ index: g.index, connections: g.connections, criteria: CRITERIA.map((c) => judgeCriterion(g, c, opts)) }));
  // byStage[i] judges stages[i]: the headline's criteria are the top comparable stage's own, no lookup by index needed.
  const comparable = byStage.filter((_, i) => (stages[i] as StageGroup).cells.filter((c) => c.valid.length > 0).length >= 2);
  const top = comparable.sort((a, b) => b.connections - a.connections || b.index - a.index)[0];
  const headline = top ? { index: top.index, connections: top.connections } : null;
  return { headline, criteria: top?.criteria ?? [], byStage, warnings: collectWarnings(result), caveat: caveatOf(result) };
}

/** "batched at 2 of 2 stages" / "tie" — a criterion's winners across stages. */
export function acrossStages(v: Verdict, id: CriterionResult['id']): string {
  const rows = v.byStage.map((s) => s.criteria.find((c) => c.id === id)).filter((c): c is CriterionResult => !!c && (c.winner !== null || c.tied.length > 0));
  if (rows.length === 0) return 'no comparable stage';
  const wins = new Map<string, number>();
  for (const c of rows) {
    const k = c.winner ?? 'tie';
    wins.set(k, (wins.get(k) ?? 0) + 1);
  }
  return [...wins.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} at ${n} of ${v.byStage.length} stages`)
    .join(', ');
}
