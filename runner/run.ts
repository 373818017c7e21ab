/**
 * `wami-bench run` and `wami-bench capacity` as a library: preflight, the planned (or adaptive) runs,
 * result.json (validated against its schema, rewritten after every run), then the report. It never
 * exits the process and installs no signal handler: the caller passes an AbortSignal (the CLI wires
 * Ctrl-C to it), hears progress through `onEvent`, and gets the outcome back (the CLI turns it into
 * an exit code).
 */
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { loopbackPortUsage, type FleetPlan } from '../clients/plan.js';
import { fsProblem, UsageError } from '../model/errors.js';
import type { Outcome } from '../model/exit-codes.js';
import { DEFAULT_FLEET_NODE_FLAGS } from '../model/fleet-options.js';
import type { RunStatus } from '../model/fleet-result.js';
import { RESULT_SCHEMA_VERSION, ResultFileSchema, type ResultFile, type RunRecord } from '../model/result.js';
import { scenarioBaseDir, scenarioHash } from '../scenarios/load.js';
import type { Scenario } from '../scenarios/schema.js';
import { captureEnvironment } from './environment.js';
import { executeRun, type LifecycleOptions, type RunEvent, type RunHooks } from './lifecycle.js';
import { estimateRunSec, planRuns, type PlannedRun } from './plan.js';
import { externalProblems } from './external.js';
import type { ExternalFleet } from './external-fleet.js';
import { checkPlan, fleetHostLimits, fleetSizing, fleetSizingText, gatherFacts, optionalStagesToSkip, scenarioFleetPlan } from './preflight.js';
import { fmtDuration } from './progress.js';
import { toolVersion } from './version.js';

export type { RunEvent, RunHooks } from './lifecycle.js';

/**
 * Node flags every server process runs with, whatever the variant (so neither design wins by tuning).
 * A 16 MB semi-space, chosen from the memory-latency scenario (scenarios/memory-latency.ts has the
 * figures): the smallest young generation whose fan-out p99 at 30,000 sockets stayed within 1.2× of
 * 64 MB's for both designs, at 100-280 MB less RSS. A sharded server's primary, which hosts shard 0,
 * gets them too, and its forked shards inherit them.
 */
export const DEFAULT_SERVER_NODE_FLAGS = ['--max-semi-space-size=16', '--max-old-space-size=4096'];

export interface RunOptions {
  /** Directory for result.json and report.html; default results/<runId>. */
  outDir?: string;
  /** Pin the server to CPU 0 and the fleet to the other CPUs (taskset). */
  pin?: boolean;
  /** Keep each run's SQLite file and ledger under <outDir>/work/. */
  keepDb?: boolean;
  /** Skip writing report.html/summary.md. */
  noReport?: boolean;
  /** The scenario's file, for the record (null for a scenario given as an object). */
  scenarioFile: string | null;
  /** Aborting stops the current run cleanly and ends the session (the result says it was interrupted). */
  signal?: AbortSignal;
  /** Progress: lines (preflight notes, each run's outcome, where the files went) and a status a second. */
  onEvent?: (e: RunEvent) => void;
  /** Per-run hooks (fault injection, restarts). */
  hooks?: RunHooks;
  /** What an external variant's relative `cwd` is resolved against. Default: scenarioBaseDir(scenarioFile). */
  baseDir?: string;
  /** The fleet runs on other hosts as N segments (`run --fleet external`); the runner starts, audits and reports as usual. */
  externalFleet?: ExternalFleet;
}

export interface RunOutcome {
  result: ResultFile;
  resultPath: string;
  outDir: string;
  /** ok; failed (a threshold, the audit or an SLO failed); errored (a run errored, or interrupted). */
  outcome: Outcome;
  interrupted: boolean;
}

export function makeRunId(name: string, d = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${name}-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** Overall status and outcome of the runs: errored if any errored, failed if a threshold or the audit failed, else ok. */
export function summarize(runs: RunRecord[]): { status: RunStatus; reasons: string[]; outcome: Outcome } {
  const reasons: string[] = [];
  let status: RunStatus = 'ok';
  for (const r of runs) {
    const tag = `${r.variant} stage ${r.stage.index + 1} (${r.stage.connections}) repeat ${r.repeat}`;
    if (r.status === 'errored') status = 'errored';
    else if (r.status === 'invalid' && status === 'ok') status = 'invalid';
    if (r.status !== 'ok') reasons.push(`${tag}: ${r.status}: ${r.reasons.join('; ')}`);
  }
  const thresholdFailed = runs.some((r) => r.thresholds.some((t) => !t.pass));
  const auditFailed = runs.some((r) => r.audit !== null && !r.audit.ok);
  if (auditFailed) reasons.push('the audit found lost or phantom updates (correctness gate failed)');
  if (thresholdFailed) reasons.push('thresholds failed');
  const outcome: Outcome = status === 'errored' ? 'errored' : thresholdFailed || auditFailed ? 'failed' : 'ok';
  return { status, reasons, outcome };
}

/** What a driver may use beside `exec`: the session's flags, its log and its abort signal (e.g. for a fleet run outside the lifecycle). */
export interface SessionContext {
  serverNodeFlags: string[];
  fleetNodeFlags: string[];
  pin: boolean;
  cpus: number;
  outDir: string;
  signal: AbortSignal;
  log: (message: string) => void;
}

/**
 * What a session runs: a fixed plan (`run`) or an adaptive one (`capacity`). `drive` calls `exec`
 * for each run it wants, in order, and stops early when `aborted()` says so.
 */
export interface SessionDriver {
  /** Largest socket count any run may ask for (the preflight checks it). */
  maxConnections: number;
  /** One line for the start of the run. */
  describe: string;
  /** Expected seconds still to run after `done` runs, for progress. */
  estimateLeftSec: (done: number) => number;
  drive: (exec: (pr: PlannedRun, scenario: Scenario) => Promise<RunRecord>, aborted: () => boolean, session?: SessionContext) => Promise<void>;
  /** Extra top-level fields of the result (e.g. `capacity`). */
  extra?: () => Partial<ResultFile>;
  /** The outcome from the runs; default summarize(). */
  outcome?: (runs: RunRecord[]) => Outcome;
  /** runId prefix; default the scenario name. */
  idPrefix?: string;
  /** The same driver without these stages (the `optional` stages the preflight skips); absent: the driver has no fixed stages. */
  withoutStages?: (indices: ReadonlySet<number>) => SessionDriver;
}

export function planDriver(s: Scenario, skip: ReadonlySet<number> = new Set()): SessionDriver {
  const plan = planRuns(s).filter((p) => !skip.has(p.stageIndex));
  const estimates = plan.map((p) => estimateRunSec(s, p.stage));
  const kept = s.stages.filter((_, i) => !skip.has(i));
  return {
    withoutStages: (indices) => planDriver(s, new Set([...skip, ...indices])),
    maxConnections: Math.max(0, ...kept.map((st) => st.connections)),
    describe: `${plan.length} run(s), about ${fmtDuration(estimates.reduce((a, b) => a + b, 0))}`,
    estimateLeftSec: (done) => estimates.slice(done + 1).reduce((a, b) => a + b, 0),
    drive: async (exec, aborted) => {
      for (const pr of plan) {
        if (aborted()) break;
        await exec(pr, s);
      }
    },
  };
}

/** What an external fleet cannot do with this scenario: UsageError naming it (before anything starts). */
function externalFleetProblems(s: Scenario, x: ExternalFleet, _d: SessionDriver): void {
  if (s.faults.length > 0)
    throw new UsageError(`--fleet external: scenario "${s.name}" injects faults, which need the runner's own fleet (its schedule and reconnects)`);
  const caddy = s.variants.filter((v) => (v.via ?? s.via) === 'caddy').map((v) => v.name);
  if (caddy.length > 0)
    throw new UsageError(`--fleet external: variant(s) ${caddy.join(', ')} go through Caddy, which listens on this host's loopback only; use via: 'direct'`);
  if (x.files && x.files.length !== x.segments)
    throw new UsageError(`--segment-files names ${x.files.length} file(s) but --segments is ${x.segments}: give one file per segment`);
  const fewest = s.stages.reduce<{ boards: number; no: number } | null>((m, st, i) => {
    const boards = Math.ceil(st.connections / s.users.perBoard);
    return m === null || boards < m.boards ? { boards, no: i + 1 } : m;
  }, null);
  if (fewest && x.segments > fewest.boards)
    throw new UsageError(
      `--segments ${x.segments} but stage ${fewest.no} has only ${fewest.boards} board${fewest.boards === 1 ? '' : 's'} (${s.users.perBoard} users each): a segment holds whole boards, so give at most ${fewest.boards}`,
    );
  const runs = planRuns(s).length;
  if (x.files && runs > 1)
    throw new UsageError(
      `--segment-files names the files of one run, but this scenario has ${runs} runs (variants × stages × repeats): use --segment-dir DIR, where each run's segments write in turn`,
    );
}

/** Runs a scenario on its variants (its stages and repeats, variants interleaved) and writes the result. */
export async function runScenario(s: Scenario, opts: RunOptions): Promise<RunOutcome> {
  return runSession(s, opts, planDriver(s));
}

/**
 * What `run --plan-only` shows: the preflight's notes and warnings (among them how many fleet hosts
 * the scenario needs) and the runs it would make, as lines through `onEvent`. Starts and writes
 * nothing; throws UsageError where the run would be refused.
 */
export async function planScenario(s: Scenario, opts: RunOptions): Promise<void> {
  const log = (message: string): void => opts.onEvent?.({ type: 'log', message });
  const driver0 = planDriver(s);
  const ext = opts.externalFleet;
  if (ext) externalFleetProblems(s, ext, driver0);
  const outDir = resolve(opts.outDir ?? join('results', makeRunId(s.name)));
  const { driver } = await preflight(s, outDir, driver0, log, opts.pin ?? false, opts.baseDir ?? scenarioBaseDir(opts.scenarioFile), ext);
  log(
    `wami-bench run ${s.name}: ${driver.describe}${ext ? `, the fleet as ${ext.segments} external segment${ext.segments === 1 ? '' : 's'}` : ''}; plan only: nothing was started`,
  );
}

/**
 * The machine against the largest run: throws UsageError with every problem, each with what to do.
 * Stages marked `optional` that a variant's processes cannot hold here are dropped from the driver
 * (returned, for the record); an external variant's program and working directory must exist.
 */
async function preflight(s: Scenario, outDir: string, driver0: SessionDriver, log: (m: string) => void, pin: boolean, baseDir: string, ext?: ExternalFleet) {
  const fleetHere = ext === undefined;
  // The fleet's plan at the largest stage: the addresses it will bind are the ones tried here.
  let plan: FleetPlan | undefined;
  try {
    plan = scenarioFleetPlan(s, Math.max(1, driver0.maxConnections), availableParallelism(), loopbackPortUsage());
  } catch {
    plan = undefined; // checkPlan reports why
  }
  const facts = await gatherFacts(outDir, plan?.sourceAddresses ?? []);
  const skipped = driver0.withoutStages ? optionalStagesToSkip(s, facts.fdSoft ?? facts.fdHard, facts.cpus, facts.fdHard) : [];
  const driver = skipped.length && driver0.withoutStages ? driver0.withoutStages(new Set(skipped.map((x) => x.index))) : driver0;
  for (const x of skipped) log(`preflight: skipping optional stage ${x.index + 1} (${x.connections} sockets) for every variant: ${x.why}`);
  const stages = s.stages.filter((_, i) => !skipped.some((x) => x.index === i));
  if (driver.maxConnections < 1 || (driver0.withoutStages && stages.length === 0))
    throw new UsageError('preflight refused the run: every stage is optional and none fits this machine (see the notes above)');
  const maxConn = driver.maxConnections;
  const check = checkPlan({ ...s, stages: [...stages, { connections: maxConn, durationSec: 1 }] }, facts, undefined, plan, fleetHere);
  const errors = [...check.errors, ...externalProblems(s.variants, baseDir)];
  // How many fleet hosts like this one the largest stage needs (a local run too: it says when to spread the fleet).
  const hostLimits = fleetHostLimits(facts);
  const sizing = fleetSizingText(
    fleetSizing(
      s,
      hostLimits,
      s.stages.map((_, i) => i).filter((i) => !skipped.some((x) => x.index === i)),
    ),
    hostLimits,
    ext ? ext.segments : null,
  );
  for (const n of [...check.notes, sizing.note]) log(`preflight: ${n}`);
  for (const w of [...check.warnings, ...(sizing.warning ? [sizing.warning] : [])]) log(`preflight warning: ${w}`);
  if (errors.length) throw new UsageError(`preflight refused the run:\n${errors.map((e) => `  - ${e}`).join('\n')}`);
  if (pin && !facts.tasksetPath) throw new UsageError('--pin needs taskset (Debian: apt-get install -y util-linux)');
  if (pin && facts.cpus < 2) throw new UsageError('--pin needs at least 2 CPUs (server on CPU 0, fleet on the rest)');
  return { facts, driver, skipped, hostLimits };
}

export async function runSession(s: Scenario, opts: RunOptions, plannedDriver: SessionDriver): Promise<RunOutcome> {
  const started = new Date();
  const runId = makeRunId(plannedDriver.idPrefix ?? s.name, started);
  const outDir = resolve(opts.outDir ?? join('results', runId));
  const events = (e: RunEvent): void => opts.onEvent?.(e);
  const log = (message: string): void => events({ type: 'log', message });
  const pin = opts.pin ?? false;
  const baseDir = opts.baseDir ?? scenarioBaseDir(opts.scenarioFile);
  const ext = opts.externalFleet;
  if (ext) externalFleetProblems(s, ext, plannedDriver);
  const { facts, driver, skipped, hostLimits } = await preflight(s, outDir, plannedDriver, log, pin, baseDir, ext);

  try {
    mkdirSync(outDir, { recursive: true });
    accessSync(outDir, constants.W_OK);
  } catch (e) {
    throw new UsageError(`--out ${fsProblem(e, outDir, 'create')}`);
  }
  const serverNodeFlags = s.server.nodeFlags ?? DEFAULT_SERVER_NODE_FLAGS;
  const fleetNodeFlags = s.fleet.nodeFlags ?? DEFAULT_FLEET_NODE_FLAGS;
  const environment = captureEnvironment({ serverNodeFlags, fleetNodeFlags, pinned: pin });
  log(`wami-bench ${driver.idPrefix ?? 'run'} ${s.name}: ${driver.describe}; results in ${outDir}`);

  const abort = new AbortController();
  const onAbort = (): void => abort.abort();
  if (opts.signal?.aborted) abort.abort();
  opts.signal?.addEventListener('abort', onAbort);

  const runs: RunRecord[] = [];
  const resolved = JSON.parse(JSON.stringify(s)) as Record<string, unknown>;
  const build = (): ResultFile => {
    const sum = summarize(runs);
    const interrupted = abort.signal.aborted;
    return {
      schemaVersion: RESULT_SCHEMA_VERSION,
      runId,
      tool: { name: 'wami-bench', version: toolVersion() },
      scenario: { name: s.name, file: opts.scenarioFile, hash: scenarioHash(s), resolved },
      environment,
      status: interrupted ? 'errored' : sum.status,
      reasons: interrupted ? ['interrupted before all runs finished', ...sum.reasons] : sum.reasons,
      runs,
      startedAtIso: started.toISOString(),
      finishedAtIso: new Date().toISOString(),
      ...(skipped.length ? { skippedStages: skipped.map((x) => ({ index: x.index, connections: x.connections, reason: x.why })) } : {}),
      ...(driver.extra ? driver.extra() : {}),
    };
  };
  const resultPath = join(outDir, 'result.json');
  const write = (r: ResultFile): void => {
    const v = ResultFileSchema.safeParse(r);
    if (!v.success) throw new Error(`internal error: result.json does not match its schema: ${v.error.message.slice(0, 2000)}`);
    writeFileSync(resultPath, `${JSON.stringify(r, null, 1)}\n`);
  };
  const lifecycle: LifecycleOptions = {
    fdLimit: facts.fdSoft ?? facts.fdHard,
    outDir,
    serverNodeFlags,
    fleetNodeFlags,
    pin,
    cpus: facts.cpus,
    keepDb: opts.keepDb ?? false,
    events,
    signal: abort.signal,
    ...(opts.hooks ? { hooks: opts.hooks } : {}),
    baseDir,
    ...(ext ? { externalFleet: { ...ext, hostLimits } } : {}),
  };
  try {
    await driver.drive(
      async (pr, scenario) => {
        const done = runs.length;
        const rec = await executeRun({ scenario, opts: lifecycle, totalLeftSec: () => driver.estimateLeftSec(done) }, pr);
        runs.push(rec);
        write(build()); // partial result after every run, so a crash or Ctrl-C keeps what was measured
        return rec;
      },
      () => abort.signal.aborted,
      { serverNodeFlags, fleetNodeFlags, pin, cpus: facts.cpus, outDir, signal: abort.signal, log },
    );
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
  const result = build();
  write(result);
  if (!opts.noReport) {
    try {
      const { writeReport } = await import('../report/index.js');
      const r = await writeReport(resultPath);
      log(`report: ${r.html}\nsummary: ${r.md}`);
    } catch (e) {
      log(`report could not be written: ${(e as Error).message}`);
    }
  }
  const interrupted = abort.signal.aborted;
  const outcome: Outcome = interrupted ? 'errored' : (driver.outcome ?? ((r: RunRecord[]) => summarize(r).outcome))(runs);
  log(`result: ${resultPath} — status ${result.status}${result.reasons.length ? `\n  ${result.reasons.join('\n  ')}` : ''}`);
  return { result, resultPath, outDir, outcome, interrupted };
}
