/**
 * Capacity search: per variant, raise the sockets by `step` until the SLO breaks, the fleet becomes
 * invalid (reported as the fleet's limit, never as the server's), a run errors, or the maximum is
 * reached. The stepping logic is pure (`recordStep`, `nextConnections`); `capacityDriver` runs it
 * through the same run lifecycle as `run`, so every step is a full, audited run in one result.
 */
import type { Scenario, Variant } from '../scenarios/schema.js';
import { evaluateThresholds, parseThreshold, type ParsedThreshold } from '../scenarios/thresholds.js';
import { runSession, type RunOptions, type RunOutcome, type SessionDriver } from './run.js';
import { z } from 'zod';
import { UsageError } from '../model/errors.js';
import { FLEET_OPTIONS } from '../model/fleet-options.js';
import { flagOf } from '../model/options.js';
import { estimateRunSec } from './plan.js';
import { fmtDuration } from './progress.js';
import type { CapacityReport, CapacityStop, CapacityVariant } from '../model/capacity.js';
import { exitCodeFor, type Outcome } from '../model/exit-codes.js';
import type { RunRecord } from '../model/result.js';

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

/** One line per variant for the terminal and the summary. */
export function capacityLines(r: CapacityReport): string[] {
  return r.variants.map(
    (v) => `${v.variant}: ${v.largestPassing === null ? 'no passing count' : `${v.largestPassing} sockets`} — ${v.detail || 'not finished'}`,
  );
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

/** Drives the search; `s.stages` must be the ladder (capacityLadder) with the step duration. */
export function capacityDriver(s: Scenario, cfg: CapacityConfig, durationSec: number): SessionDriver {
  const states = s.variants.map((v) => newVariantState(v.name));
  const report: CapacityReport = {
    slo: cfg.slo.map((t) => t.expr),
    startConnections: cfg.startConnections,
    step: cfg.step,
    maxConnections: cfg.maxConnections,
    durationSec,
    variants: states,
  };
  const ladder = capacityLadder(cfg);
  const stageOf = (connections: number): Scenario['stages'][number] => ({ connections, durationSec });
  const estimateLeft = (): number =>
    states.reduce((acc, v) => {
      const next = nextConnections(v, cfg);
      return next === null ? acc : acc + ladder.filter((c) => c >= next).reduce((a, c) => a + estimateRunSec(s, stageOf(c)), 0);
    }, 0);
  return {
    idPrefix: `capacity-${s.name}`,
    maxConnections: cfg.maxConnections,
    describe: `capacity search, SLO ${report.slo.join(' and ')}, ${cfg.startConnections} → ${cfg.maxConnections} sockets in steps of ${cfg.step} (at most ${ladder.length * s.variants.length} runs, at most ${fmtDuration(ladder.reduce((a, c) => a + estimateRunSec(s, stageOf(c)), 0) * s.variants.length)})`,
    estimateLeftSec: () => estimateLeft(),
    drive: async (exec, aborted) => {
      // Variants interleave at each step (A B A B …), like `run`.
      for (;;) {
        let any = false;
        for (let i = 0; i < s.variants.length; i++) {
          const v: Variant = s.variants[i]!;
          const st = states[i]!;
          const next = nextConnections(st, cfg);
          if (next === null) continue;
          if (aborted()) {
            st.stoppedBecause = 'interrupted';
            st.detail = 'interrupted';
            continue;
          }
          any = true;
          const stage = stageOf(next);
          const rec = await exec({ variant: v, stage, stageIndex: Math.max(0, ladder.indexOf(next)), repeat: 1 }, s);
          recordStep(st, next, rec, cfg);
        }
        if (!any) break;
      }
    },
    extra: () => ({ capacity: report }),
    outcome: () => capacityOutcome(report),
  };
}

const sockets = z.number().int().min(1).max(200_000);

/** A capacity search as a caller asks for it: each option with its bounds and default (the CLI's flags read these). */
export const CapacitySearchSchema = z
  .strictObject({
    /** The SLO, thresholds like 'fanoutMs.p99 < 250' (all must hold). */
    slo: z.array(z.string()),
    /** Upper end of the search, sockets (default 30000). */
    maxConnections: sockets.default(30_000),
    /** Sockets added per step (default 2500). */
    step: sockets.default(2500),
    /** First step (default: the step, or the maximum when smaller). */
    startConnections: sockets.optional(),
    /** Measured seconds per step (default: the scenario's first stage). */
    durationSec: FLEET_OPTIONS.durationSec.optional(),
  })
  .superRefine((o, ctx) => {
    if (o.startConnections !== undefined && o.startConnections > o.maxConnections) {
      ctx.addIssue({ code: 'custom', path: ['startConnections'], message: `--start must be between 1 and ${o.maxConnections}, got ${o.startConnections}` });
    }
  });
export type CapacitySearch = z.input<typeof CapacitySearchSchema>;

/**
 * The scenario and driver of a capacity search: the scenario's stages replaced by the ladder, its
 * boards grown to the maximum. Throws UsageError for an SLO that does not parse or a start below
 * one board of users.
 */
export function capacitySession(s: Scenario, search: CapacitySearch): { scenario: Scenario; driver: SessionDriver } {
  const parsed = CapacitySearchSchema.safeParse(search);
  if (!parsed.success)
    throw new UsageError(parsed.error.issues.map((i) => (i.code === 'custom' ? i.message : `${flagOf(String(i.path[0]))}: ${i.message}`)).join('; '));
  const q = parsed.data;
  if (q.slo.length === 0) throw new UsageError("an SLO is required, e.g. 'fanoutMs.p99 < 250'");
  const slo = q.slo.map((e) => {
    try {
      return parseThreshold(e);
    } catch (err) {
      throw new UsageError(`--slo: ${(err as Error).message}`);
    }
  });
  const { maxConnections, step } = q;
  const start = q.startConnections ?? Math.min(step, maxConnections);
  if (start < s.users.perBoard) throw new UsageError(`--start ${start} is fewer than the scenario's users.perBoard (${s.users.perBoard})`);
  const durationSec = q.durationSec ?? s.stages[0]!.durationSec;
  const ladder = capacityLadder({ startConnections: start, step, maxConnections });
  const scenario: Scenario = {
    ...s,
    seed: { ...s.seed, boards: Math.max(s.seed.boards, Math.ceil(maxConnections / s.users.perBoard)) },
    stages: ladder.map((connections) => ({ connections, durationSec })),
  };
  return { scenario, driver: capacityDriver(scenario, { slo, startConnections: start, step, maxConnections }, durationSec) };
}

/** Runs a capacity search: every step a full, audited run, all in one result (its `capacity` says what was found). */
export function runCapacity(s: Scenario, search: CapacitySearch, opts: RunOptions): Promise<RunOutcome> {
  const { scenario, driver } = capacitySession(s, search);
  return runSession(scenario, opts, driver);
}
