/**
 * Capacity search: per variant, raise one axis step by step, one full audited run per step, until
 * the SLO breaks, the fleet becomes invalid (reported as the fleet's limit, never as the server's),
 * a run errors, or the maximum is reached.
 * - `sockets` (the default): the sockets grow by `step` at the scenario's per-user rate.
 * - `rate`: the offered updates/s of the whole fleet grow by `rateFactor` at the scenario's sockets;
 *   write errors past `maxErrorRate` stop it too, and after the variants the fleet's own ceiling is
 *   measured against a no-op sink (runner/fleet-ceiling.ts), so a knee above it is the fleet's.
 * The stepping logic is pure (`recordStep`, `nextConnections`; runner/capacity-rate.ts for the rate
 * axis); `capacityDriver` runs it through the same run lifecycle as `run`, so every step is a full,
 * audited run in one result.
 */
import type { Scenario, Stage, Variant } from '../scenarios/schema.js';
import { evaluateThresholds, parseThreshold, type ParsedThreshold } from '../scenarios/thresholds.js';
import { runSession, type RunOptions, type RunOutcome, type SessionDriver } from './run.js';
import { z } from 'zod';
import { UsageError } from '../model/errors.js';
import { flagOf } from '../model/options.js';
import { estimateRunSec } from './plan.js';
import { fmtDuration } from './progress.js';
import { axisOf, stopIsFleetLimit, type CapacityAxis, type CapacityReport, type CapacityStop, type CapacityVariant } from '../model/capacity.js';
import { CAPACITY_SEARCH_OPTIONS } from '../model/capacity-search.js';
import { exitCodeFor, type Outcome } from '../model/exit-codes.js';
import type { RunRecord } from '../model/result.js';
import {
  ceilingNeededUpTo,
  newFleetCeiling,
  nextCeilingRate,
  nextRate,
  perUserRate,
  rateLadder,
  recordCeilingStep,
  recordRateStep,
  type RateConfig,
} from './capacity-rate.js';
import { runFleetAgainstSink } from './fleet-ceiling.js';

export interface CapacityConfig {
  slo: ParsedThreshold[];
  startConnections: number;
  step: number;
  maxConnections: number;
}

export function newVariantState(variant: string): CapacityVariant {
  return { variant, steps: [], largestPassing: null, stoppedAt: null, stoppedBecause: null, detail: '' };
}

/** The next socket count to try for this variant, or null when its search is over. */
export function nextConnections(v: CapacityVariant, cfg: CapacityConfig): number | null {
  if (v.stoppedBecause !== null) return null;
  const last = v.steps[v.steps.length - 1];
  if (!last) return Math.min(cfg.startConnections, cfg.maxConnections);
  return Math.min(last.connections + cfg.step, cfg.maxConnections);
}

/** Folds one step's run into the variant's state (mutates and returns it). */
export function recordStep(v: CapacityVariant, connections: number, run: RunRecord, cfg: CapacityConfig): CapacityVariant {
  const outcomes = evaluateThresholds(run, cfg.slo);
  const sloPass = outcomes.every((o) => o.pass);
  v.steps.push({ connections, status: run.status, sloPass, actual: Object.fromEntries(outcomes.map((o) => [o.metric, o.actual])) });
  const stop = (because: CapacityStop, detail: string): CapacityVariant => {
    v.stoppedAt = connections;
    v.stoppedBecause = because;
    v.detail = detail;
    return v;
  };
  if (run.status === 'errored') return stop('errored', `the run at ${connections} sockets errored: ${run.reasons.join('; ')}`);
  if (run.status === 'invalid') {
    return stop(
      'fleet-invalid',
      `at ${connections} sockets the fleet could not hold its own schedule (${run.reasons.join('; ')}): this is the measuring machine's limit, not a measured limit of the server`,
    );
  }
  if (run.audit && !run.audit.ok)
    return stop('audit-failed', `the audit failed at ${connections} sockets (lostAcked ${run.audit.lostAcked}, phantom ${run.audit.phantom})`);
  if (!sloPass) {
    const failed = outcomes.filter((o) => !o.pass).map((o) => `${o.expr} (actual ${o.actual === null ? 'n/a' : Math.round(o.actual * 100) / 100})`);
    return stop('slo-broken', `the SLO broke at ${connections} sockets: ${failed.join('; ')}`);
  }
  v.largestPassing = connections;
  if (connections >= cfg.maxConnections) return stop('max-reached', `the SLO held up to the maximum asked for, ${cfg.maxConnections} sockets`);
  return v;
}

/** errored when a run errored or was interrupted (the search is incomplete), ok when every variant found a passing count, else failed. */
export function capacityOutcome(r: CapacityReport): Outcome {
  if (r.variants.some((v) => v.stoppedBecause === 'errored' || v.stoppedBecause === 'interrupted')) return 'errored';
  return r.variants.every((v) => v.largestPassing !== null) ? 'ok' : 'failed';
}

/** The CLI's exit code of a search: 1 incomplete, 0 every variant passed somewhere, 3 some variant never met the SLO. */
export function capacityExitCode(r: CapacityReport): number {
  return exitCodeFor(capacityOutcome(r));
}

/** The axis's unit, for lines and messages. */
export function axisUnit(axis: CapacityAxis): string {
  return axis === 'rate' ? 'updates/s' : 'sockets';
}

/** One line per variant for the terminal and the summary (and the fleet's ceiling, when measured). */
export function capacityLines(r: CapacityReport): string[] {
  const unit = axisUnit(axisOf(r));
  const lines = r.variants.map((v) => {
    const fleet = r.fleetCeiling && v.stoppedBecause !== 'fleet-invalid' && stopIsFleetLimit(v, r.fleetCeiling) ? ' (at or past the fleet’s own ceiling)' : '';
    return `${v.variant}: ${v.largestPassing === null ? `no passing ${axisOf(r) === 'rate' ? 'rate' : 'count'}` : `${v.largestPassing} ${unit}`} — ${v.detail || 'not finished'}${fleet}`;
  });
  if (r.fleetCeiling) lines.push(`fleet ceiling: ${r.fleetCeiling.detail || 'not measured'}`);
  return lines;
}

/** The socket counts a search may try: start, start + step, …, capped at the maximum. */
export function capacityLadder(cfg: Pick<CapacityConfig, 'startConnections' | 'step' | 'maxConnections'>): number[] {
  const ladder: number[] = [];
  for (let c = Math.min(cfg.startConnections, cfg.maxConnections); ; c = Math.min(c + cfg.step, cfg.maxConnections)) {
    ladder.push(c);
    if (c >= cfg.maxConnections) break;
  }
  return ladder;
}

/** One axis of the search: its ladder, how to step a variant, the stage of a step. */
export interface AxisPlan {
  axis: CapacityAxis;
  /** Every value a step may take, in order. */
  ladder: number[];
  next: (v: CapacityVariant) => number | null;
  record: (v: CapacityVariant, x: number, run: RunRecord) => void;
  stageOf: (x: number) => Stage;
}

export function socketsPlan(cfg: CapacityConfig, durationSec: number): AxisPlan {
  return {
    axis: 'sockets',
    ladder: capacityLadder(cfg),
    next: (v) => nextConnections(v, cfg),
    record: (v, x, run) => void recordStep(v, x, run, cfg),
    stageOf: (connections) => ({ connections, durationSec }),
  };
}

export function ratePlan(cfg: RateConfig, durationSec: number): AxisPlan {
  return {
    axis: 'rate',
    ladder: rateLadder(cfg),
    next: (v) => nextRate(v, cfg),
    record: (v, x, run) => void recordRateStep(v, x, run, cfg),
    stageOf: (rate) => ({ connections: cfg.connections, durationSec, updatesPerUserPerMin: perUserRate(rate, cfg.connections) }),
  };
}

/**
 * Drives the search; `s.stages` must be the plan's ladder (with the step duration). With `ceiling`
 * (rate axis), the fleet's own ceiling is measured after the variants, top-down from the highest
 * rate any of them ran at.
 */
export function capacityDriver(s: Scenario, plan: AxisPlan, report: CapacityReport, opts: { ceiling?: boolean } = {}): SessionDriver {
  const states = report.variants;
  const { ladder } = plan;
  const unit = axisUnit(plan.axis);
  const estimateLeft = (): number =>
    states.reduce((acc, v) => {
      const next = plan.next(v);
      return next === null ? acc : acc + ladder.filter((x) => x >= next).reduce((a, x) => a + estimateRunSec(s, plan.stageOf(x)), 0);
    }, 0);
  const most = ladder.reduce((a, x) => a + estimateRunSec(s, plan.stageOf(x)), 0) * s.variants.length;
  const range =
    plan.axis === 'rate'
      ? `${ladder[0]} → ${ladder[ladder.length - 1]} updates/s at ${report.maxConnections} sockets, ×${report.rate?.factor} per step`
      : `${ladder[0]} → ${ladder[ladder.length - 1]} sockets in steps of ${report.step}`;
  return {
    idPrefix: `capacity-${s.name}`,
    maxConnections: report.maxConnections,
    describe: `capacity search, SLO ${report.slo.join(' and ')}, ${range} (at most ${ladder.length * s.variants.length} runs, at most ${fmtDuration(most)}${opts.ceiling ? ', then the fleet’s own ceiling' : ''})`,
    estimateLeftSec: () => estimateLeft(),
    drive: async (exec, aborted, session) => {
      // Variants interleave at each step (A B A B …), like `run`.
      for (;;) {
        let any = false;
        for (let i = 0; i < s.variants.length; i++) {
          const v: Variant = s.variants[i]!;
          const st = states[i]!;
          const next = plan.next(st);
          if (next === null) continue;
          if (aborted()) {
            st.stoppedBecause = 'interrupted';
            st.detail = 'interrupted';
            continue;
          }
          any = true;
          const rec = await exec({ variant: v, stage: plan.stageOf(next), stageIndex: Math.max(0, ladder.indexOf(next)), repeat: 1 }, s);
          plan.record(st, next, rec);
        }
        if (!any) break;
      }
      if (!opts.ceiling || !session) return;
      const upTo = ceilingNeededUpTo(states);
      const c = (report.fleetCeiling = newFleetCeiling());
      if (upTo === null) {
        c.detail = 'not measured: no variant ran';
        return;
      }
      for (let rate = nextCeilingRate(c, ladder, upTo); rate !== null && !aborted(); rate = nextCeilingRate(c, ladder, upTo)) {
        session.log(`▶ the fleet's own ceiling: ${rate} ${unit} against a no-op sink`);
        const f = await runFleetAgainstSink(s, plan.stageOf(rate), session);
        recordCeilingStep(c, rate, f, upTo);
        session.log(
          `${f.status === 'ok' ? '✔' : '⚠'} fleet against the sink at ${rate} ${unit}: ${f.status}${f.reasons.length ? ` (${f.reasons.join('; ')})` : ''}`,
        );
      }
      if (aborted() && c.steps.length === 0) c.detail = 'not measured: interrupted';
    },
    extra: () => ({ capacity: report }),
    outcome: () => capacityOutcome(report),
  };
}

/** A capacity search as a caller asks for it: each option with its bounds and default (the CLI's flags read these). */
export const CapacitySearchSchema = z.strictObject(CAPACITY_SEARCH_OPTIONS).superRefine((o, ctx) => {
  if (o.startConnections !== undefined && o.startConnections > o.maxConnections) {
    ctx.addIssue({ code: 'custom', path: ['startConnections'], message: `--start must be between 1 and ${o.maxConnections}, got ${o.startConnections}` });
  }
  if (o.startRate !== undefined && o.startRate > o.maxRate) {
    ctx.addIssue({ code: 'custom', path: ['startRate'], message: `--start-rate (${o.startRate}) must not be above --max-rate (${o.maxRate})` });
  }
});
export type CapacitySearch = z.input<typeof CapacitySearchSchema>;

function parseSlo(exprs: string[]): ParsedThreshold[] {
  if (exprs.length === 0) throw new UsageError("an SLO is required, e.g. --slo 'fanoutMs.p99 < 250' (or a `capacity.slo` in the scenario)");
  return exprs.map((e) => {
    try {
      return parseThreshold(e);
    } catch (err) {
      throw new UsageError(`--slo: ${(err as Error).message}`);
    }
  });
}

/** The search: the scenario's `capacity` block as defaults, what the caller set on top. */
function resolveSearch(s: Scenario, search: CapacitySearch): z.output<typeof CapacitySearchSchema> {
  const set = Object.fromEntries(Object.entries(search).filter(([, v]) => v !== undefined));
  if (Array.isArray(set.slo) && set.slo.length === 0) delete set.slo;
  const parsed = CapacitySearchSchema.safeParse({ slo: [], ...(s.capacity ?? {}), ...set });
  if (!parsed.success)
    throw new UsageError(parsed.error.issues.map((i) => (i.code === 'custom' ? i.message : `${flagOf(String(i.path[0]))}: ${i.message}`)).join('; '));
  return parsed.data;
}

/**
 * The scenario and driver of a capacity search: the scenario's stages replaced by the ladder, its
 * boards grown to the maximum. Throws UsageError for an SLO that does not parse or a start below
 * one board of users.
 */
export function capacitySession(s: Scenario, search: CapacitySearch): { scenario: Scenario; driver: SessionDriver } {
  const q = resolveSearch(s, search);
  const slo = parseSlo(q.slo);
  const durationSec = q.durationSec ?? s.stages[0]!.durationSec;
  if (q.axis === 'rate') {
    const connections = q.connections ?? s.stages[0]!.connections;
    if (connections < s.users.perBoard) throw new UsageError(`--connections ${connections} is fewer than the scenario's users.perBoard (${s.users.perBoard})`);
    const scenarioRate = Math.round((connections * (s.stages[0]!.updatesPerUserPerMin ?? s.load.updatesPerUserPerMin)) / 60);
    // never above the maximum: a start the caller gave is checked by CapacitySearchSchema, the scenario's own is capped here
    const startRate = q.startRate ?? Math.max(1, Math.min(scenarioRate, q.maxRate));
    const cfg: RateConfig = { slo, connections, startRate, factor: q.rateFactor, maxRate: q.maxRate, maxErrorRate: q.maxErrorRate };
    const plan = ratePlan(cfg, durationSec);
    const top = perUserRate(q.maxRate, connections);
    if (top > 60_000)
      throw new UsageError(`--max-rate ${q.maxRate} over ${connections} sockets is ${Math.round(top)} updates per user per minute: more than 60,000`);
    const scenario: Scenario = {
      ...s,
      seed: { ...s.seed, boards: Math.max(s.seed.boards, Math.ceil(connections / s.users.perBoard)) },
      load: { ...s.load, steps: [] },
      stages: plan.ladder.map((r) => plan.stageOf(r)),
    };
    const report: CapacityReport = {
      axis: 'rate',
      slo: slo.map((t) => t.expr),
      startConnections: connections,
      step: 0,
      maxConnections: connections,
      durationSec,
      rate: { startRate, factor: q.rateFactor, maxRate: q.maxRate, maxErrorRate: q.maxErrorRate, connections },
      variants: scenario.variants.map((v) => newVariantState(v.name)),
    };
    return { scenario, driver: capacityDriver(scenario, plan, report, { ceiling: q.fleetCeiling }) };
  }
  const { maxConnections, step } = q;
  const start = q.startConnections ?? Math.min(step, maxConnections);
  if (start < s.users.perBoard) throw new UsageError(`--start ${start} is fewer than the scenario's users.perBoard (${s.users.perBoard})`);
  const cfg: CapacityConfig = { slo, startConnections: start, step, maxConnections };
  const plan = socketsPlan(cfg, durationSec);
  const scenario: Scenario = {
    ...s,
    seed: { ...s.seed, boards: Math.max(s.seed.boards, Math.ceil(maxConnections / s.users.perBoard)) },
    stages: plan.ladder.map((c) => plan.stageOf(c)),
  };
  const report: CapacityReport = {
    axis: 'sockets',
    slo: slo.map((t) => t.expr),
    startConnections: start,
    step,
    maxConnections,
    durationSec,
    variants: scenario.variants.map((v) => newVariantState(v.name)),
  };
  return { scenario, driver: capacityDriver(scenario, plan, report) };
}

/** Runs a capacity search: every step a full, audited run, all in one result (its `capacity` says what was found). */
export function runCapacity(s: Scenario, search: CapacitySearch, opts: RunOptions): Promise<RunOutcome> {
  const { scenario, driver } = capacitySession(s, search);
  return runSession(scenario, opts, driver);
}
