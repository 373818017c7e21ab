/**
 * The run lifecycle: for every repeat, stage and variant (variants interleaved A B A B), a fresh
 * seeded database and fresh server processes; the fleet through the stage; resources and /metrics
 * sampled once a second; a graceful stop; the audit; thresholds. Ctrl-C or a crashed server ends the
 * run cleanly with status `errored` and the reason, children stopped by PID.
 */
import { mkdirSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { runFleet, type FleetOptions, type FleetProgress } from '../clients/coordinator.js';
import type { FleetResult, Ledger, RunStatus } from '../model/fleet-result.js';
import { boardsWithOtherMembers } from '../protocol/layout.js';
import { seedDatabase } from '../servers/common/db.js';
import type { Scenario, Variant } from '../scenarios/schema.js';
import { estimateRunSec, type PlannedRun } from './plan.js';
import { evaluateThresholds, parseThreshold } from '../scenarios/thresholds.js';
import { auditDatabase } from './audit.js';
import { MetricsScraper, METRIC } from './metrics-scrape.js';
import { fmtDuration, type ProgressState } from './progress.js';
import { ResourceSampler } from './resources.js';
import type { AuditReport, RunRecord, ServerMetricsSummary, ServerResources } from '../model/result.js';
import { startCaddy, type RunningCaddy } from './caddy.js';
import { effectiveOptions } from './preflight.js';
import { variantArgv } from '../model/variants.js';
import { startHttpLoad, type HttpLoadResult, type RunningHttpLoad } from './http-load.js';
import { descendantPids, startServerProcess, waitHealthy, type RunningServer } from './server-process.js';

export interface LifecycleOptions {
  /** Open-file limit of a process here (soft), for --shards auto-sizing; null if unknown. */
  fdLimit: number | null;
  outDir: string;
  serverNodeFlags: string[];
  fleetNodeFlags: string[];
  /** Pin server and fleet to separate CPUs with taskset. */
  pin: boolean;
  cpus: number;
  keepDb: boolean;
  /** Where the run's lines and its once-a-second status go (the CLI renders them). */
  events: (e: RunEvent) => void;
  signal: AbortSignal;
  /** Per-run hooks (fault injection, restarts): see RunHooks. */
  hooks?: RunHooks;
}

/** What the lifecycle tells the caller: a line to show, or the status of the run in progress. */
export type RunEvent = { type: 'log'; message: string } | { type: 'status'; state: ProgressState };

/** What a hook can see and do of the run in progress. */
export interface RunHandle {
  /** "batched stage 1/1 (1000 sockets) repeat 1/1" */
  readonly label: string;
  readonly variant: Variant;
  /** The server under test, once started. */
  readonly server: RunningServer | null;
  /** Marks the run errored with this reason and stops its fleet. */
  fail(reason: string): void;
}

/**
 * Per-run hooks, called at fixed points of every run: where fault injection (kill or pause the
 * server at second N, drop a shard) and restarts belong. All optional; a hook that throws fails the run.
 */
export interface RunHooks {
  /** After the server answered /healthz, before sampling and the fleet start. */
  serverStarted?: (run: RunHandle) => void | Promise<void>;
  /** Once a second while the fleet runs, with its progress. */
  second?: (run: RunHandle, p: FleetProgress) => void;
  /** After the fleet finished, before the server is stopped. */
  beforeStop?: (run: RunHandle) => void | Promise<void>;
}

function emptyServerMetrics(): ServerMetricsSummary {
  return {
    updatesReceived: 0,
    updatesPersisted: 0,
    broadcastFrames: 0,
    errorsByCode: {},
    batchSize: null,
    commitMs: null,
    queueDepthMax: null,
    busyHits: 0,
    retries: 0,
    exhausted: 0,
    walBytesMax: null,
    eventLoopDelayMsP99: null,
    slowConsumerCloses: 0,
    timeseries: [],
  };
}

function emptyResources(): ServerResources {
  return { rssBytesMax: 0, pssBytesMax: null, cpuSec: 0, rssBytesPerSocket: null, rssBytesIdle: 0, processes: 0, samples: [] };
}

/** A FleetResult-shaped placeholder for runs where the fleet never produced one. */
function emptyFleetPart(): Pick<FleetResult, 'sockets' | 'latency' | 'drift' | 'window' | 'updates' | 'delivery' | 'errors' | 'fleet' | 'timeseries'> {
  const p = { p50: 0, p90: 0, p99: 0, p999: 0, max: 0, count: 0, mean: 0, histogram: '' };
  return {
    drift: { windowSec: 0, ackMs: { first: { ...p }, last: { ...p } }, fanoutMs: { first: { ...p }, last: { ...p } } },
    window: { warmupSec: 0, durationSec: 0, startedAtIso: new Date().toISOString(), wallSec: 0 },
    sockets: { asked: 0, reached: 0, failed: 0, failuresByKind: {}, closedEarly: 0 },
    latency: {
      connectMs: { ...p },
      ackMs: { ...p, uncorrected: { ...p } },
      fanoutMs: { ...p, uncorrected: { ...p } },
      recipients: { sampled: 0, first: { ...p }, median: { ...p }, last: { ...p } },
    },
    updates: { sent: 0, acked: 0, errored: 0, unanswered: 0 },
    delivery: { expected: 0, received: 0, missing: 0, duplicate: 0, outOfOrder: 0, phantom: 0 },
    errors: { total: 0, byCode: {}, byKind: {} },
    fleet: { workers: 0, nodeFlags: [], cpuSec: 0, rssBytesMax: 0, lagMsP99: 0, eventLoopDelayMsP99: 0, cpuPctMax: 0 },
    timeseries: [],
  };
}

export interface RunContext {
  scenario: Scenario;
  opts: LifecycleOptions;
  /** Seconds of the plan not yet run, for progress. */
  totalLeftSec: () => number;
}

/**
 * One (variant, stage, repeat), end to end, as phases: seed a fresh database; start the server
 * (and Caddy in front when the variant goes through it); sample resources and scrape /metrics once
 * a second; run the fleet (and the HTTP read load); stop everything gracefully; audit the database
 * against the fleet's ledger; evaluate thresholds. `execute()` never throws: a failed run is a
 * record with status `errored` and its reasons.
 */
export class RunLifecycle implements RunHandle {
  readonly label: string;
  readonly variant: Variant;
  private readonly s: Scenario;
  private readonly opts: LifecycleOptions;
  private readonly t0 = Date.now();
  private readonly reasons: string[] = [];
  private status: RunStatus = 'ok';
  private readonly workDir: string;
  private readonly db: string;
  private readonly ledgerFile: string;
  /** The variant as it runs at this stage (shards or workers written out, see effectiveOptions). */
  private readonly runVariant: Variant;
  private readonly via: 'direct' | 'caddy';
  server: RunningServer | null = null;
  private caddy: RunningCaddy | null = null;
  private sampler: ResourceSampler | null = null;
  private scraper: MetricsScraper | null = null;
  private httpLoad: RunningHttpLoad | null = null;
  private httpResult: HttpLoadResult | null = null;
  private fleet: FleetResult | null = null;
  private resources = emptyResources();
  private serverMetrics = emptyServerMetrics();
  private audit: AuditReport | null = null;
  private stopping = false;
  private readonly fleetAbort = new AbortController();

  constructor(
    private readonly ctx: RunContext,
    private readonly pr: PlannedRun,
  ) {
    const { scenario: s, opts } = ctx;
    const { variant, stage, stageIndex, repeat } = pr;
    this.s = s;
    this.opts = opts;
    this.variant = variant;
    this.label = `${variant.name} stage ${stageIndex + 1}/${s.stages.length} (${stage.connections} sockets) repeat ${repeat}/${s.repeats}`;
    this.workDir = join(opts.outDir, 'work');
    const base = join(this.workDir, `${variant.name}-s${stageIndex + 1}-r${repeat}`);
    this.db = `${base}.db`;
    this.ledgerFile = `${base}.ledger.json`;
    this.via = variant.via ?? s.via;
    this.runVariant = effectiveOptions(variant, stage.connections, opts.fdLimit, opts.cpus);
  }

  private log(message: string): void {
    this.opts.events({ type: 'log', message });
  }

  fail(why: string): void {
    this.status = 'errored';
    this.reasons.push(why);
    this.fleetAbort.abort();
  }

  /** Runs every phase; returns the run's record. Never throws for a failed run. */
  async execute(): Promise<RunRecord> {
    const { variant, stage } = this.pr;
    const rv = this.runVariant;
    if (rv.kind === 'batched' && variant.kind === 'batched' && rv.options.shards !== variant.options.shards)
      this.log(`  ${variant.name}: ${stage.connections} sockets exceed one process's file limit: running with --shards ${rv.options.shards}`);
    mkdirSync(this.workDir, { recursive: true });
    this.log(`▶ ${this.label}: seeding ${this.s.seed.boards} boards × ${this.s.seed.cardsPerBoard} cards`);
    seedDatabase(this.db, { boards: this.s.seed.boards, cardsPerBoard: this.s.seed.cardsPerBoard });
    const onOuterAbort = (): void => this.fleetAbort.abort();
    this.opts.signal.addEventListener('abort', onOuterAbort);
    try {
      const fleetUrl = await this.startServer();
      await this.opts.hooks?.serverStarted?.(this);
      await this.startSampling();
      await this.runLoad(fleetUrl);
      await this.opts.hooks?.beforeStop?.(this);
    } catch (e) {
      const why = this.opts.signal.aborted ? 'interrupted (Ctrl-C)' : `run failed: ${(e as Error).message}`;
      this.status = 'errored';
      this.reasons.push(why);
    } finally {
      this.opts.signal.removeEventListener('abort', onOuterAbort);
      await this.stop();
    }
    this.auditDatabase();
    if (!this.opts.keepDb) for (const f of [this.db, `${this.db}-wal`, `${this.db}-shm`, this.ledgerFile]) rmSync(f, { force: true });
    return this.record();
  }

  /** The server (and Caddy in front, for via caddy), each watched: exiting during the run fails it. Returns the fleet's URL. */
  private async startServer(): Promise<string> {
    const opts = this.opts;
    const srv = await startServerProcess({ variant: this.runVariant, db: this.db, nodeFlags: opts.serverNodeFlags, ...(opts.pin ? { cpus: '0' } : {}) });
    this.server = srv;
    await waitHealthy(srv.httpUrl);
    void srv.exited.then((x) => {
      if (!this.stopping) this.fail(`server exited during the run (code ${x.code}, signal ${x.signal}); last output: ${srv.output().slice(-500).trim()}`);
    });
    if (this.via !== 'caddy') return srv.wsUrl;
    const { name } = this.variant;
    const { stageIndex, repeat } = this.pr;
    const cd = await startCaddy({
      upstream: `${srv.host}:${srv.port}`,
      storageDir: join(this.workDir, `caddy-${name}-s${stageIndex + 1}-r${repeat}`),
      ...(opts.pin ? { cpus: '0' } : {}),
    });
    this.caddy = cd;
    void cd.exited.then((x) => {
      if (!this.stopping) this.fail(`caddy exited during the run (code ${x.code}, signal ${x.signal}); last output: ${cd.output().slice(-500).trim()}`);
    });
    return cd.wssUrl;
  }

  /** Resources of the server tree (and the fleet's) and /metrics, once a second; the idle RSS after a second. */
  private async startSampling(): Promise<void> {
    const srv = this.server!;
    // The server side is the server's process tree plus Caddy when it is in front.
    const serverRoots = this.caddy ? [srv.pid, this.caddy.pid] : [srv.pid];
    const serverPids = (): number[] => serverRoots.flatMap((p) => [p, ...descendantPids(p)]);
    // prom-client's event-loop monitor has a 10 ms resolution (servers/common/metrics.ts): subtract it, as the fleet does.
    // Per-request and sharded servers gather /metrics from every process (up to 2 s): wait that long.
    const scr = new MetricsScraper({ url: `${srv.httpUrl}/metrics`, intervalMs: 1000, eventLoopResolutionMs: 10, timeoutMs: 2500 });
    this.scraper = scr;
    this.sampler = new ResourceSampler({
      // One /metrics fetch a second only: each scrape resets prom-client's event-loop histogram.
      connectionsProbe: async () => scr.lastValue(METRIC.connections),
      serverRootPids: serverRoots,
      fleetRootPids: () => {
        const serverSet = new Set(serverPids());
        return [process.pid, ...descendantPids(process.pid).filter((p) => !serverSet.has(p))];
      },
      intervalMs: 1000,
    });
    this.sampler.start();
    scr.start();
    await new Promise((r) => setTimeout(r, 1100));
    this.sampler.markIdle();
  }

  /** The fleet's options for this stage, from the scenario. */
  private fleetOptions(url: string): FleetOptions {
    const { s, opts } = this;
    const stage = this.pr.stage;
    return {
      url,
      ...(this.caddy ? { ca: this.caddy.ca } : {}),
      connections: stage.connections,
      perBoard: s.users.perBoard,
      cardsPerBoard: s.seed.cardsPerBoard,
      updatesPerUserPerMin: stage.updatesPerUserPerMin ?? s.load.updatesPerUserPerMin,
      rateSteps: s.load.steps,
      arrival: s.load.arrival,
      seed: s.load.seed,
      warmupSec: s.warmupSec,
      durationSec: stage.durationSec,
      connectRatePerSec: s.users.connectRatePerSec,
      nodeFlags: opts.fleetNodeFlags,
      ledgerFile: this.ledgerFile,
      ...(s.fleet.workers !== undefined ? { workers: s.fleet.workers } : {}),
      ...(s.fleet.drainSec !== undefined ? { drainSec: s.fleet.drainSec } : {}),
      ...(s.fleet.guard !== undefined ? { guard: s.fleet.guard } : {}),
      ...(opts.pin ? { cpus: opts.cpus > 2 ? `1-${opts.cpus - 1}` : '1' } : {}),
    };
  }

  /** The fleet through the stage; the HTTP read load starts with its measured window. */
  private async runLoad(url: string): Promise<void> {
    const { s, opts } = this;
    const { variant, stage, stageIndex, repeat } = this.pr;
    const srv = this.server!;
    const runEst = estimateRunSec(s, stage);
    const runStart = Date.now();
    const fleet = await runFleet(this.fleetOptions(url), {
      signal: this.fleetAbort.signal,
      // The server's window figures (event-loop delay, queue-depth peak) cover the measured window only.
      onSchedule: (w) => this.scraper?.setWindow(w.measureStartMs, w.measureEndMs),
      onSecond: (p) => {
        if (s.http && !this.httpLoad && p.phase === 'measure') {
          // The read path starts with the measured window, against the same front (direct or Caddy).
          this.httpLoad = startHttpLoad({
            baseUrl: this.caddy ? this.caddy.httpsUrl : srv.httpUrl,
            path: s.http.path,
            connections: s.http.connections,
            ...(s.http.rate !== undefined ? { rate: s.http.rate } : {}),
            durationSec: s.http.durationSec,
            boards: Math.min(s.seed.boards, Math.ceil(stage.connections / s.users.perBoard)),
            seed: s.load.seed,
            ...(this.caddy ? { ca: this.caddy.ca } : {}),
          });
        }
        this.opts.hooks?.second?.(this, p);
        const elapsed = (Date.now() - runStart) / 1000;
        opts.events({
          type: 'status',
          state: {
            label: `${variant.name} s${stageIndex + 1} r${repeat}`,
            phase: p.phase,
            point: p,
            runLeftSec: Math.max(0, runEst - elapsed),
            totalLeftSec: this.ctx.totalLeftSec() + Math.max(0, runEst - elapsed),
          },
        });
      },
    });
    this.fleet = fleet;
    if (this.httpLoad) {
      const hl = this.httpLoad;
      const timer = setTimeout(() => hl.stop(), 5000);
      this.httpResult = await hl.done;
      clearTimeout(timer);
    } else if (s.http) {
      this.reasons.push('the http read load never started (the fleet did not reach its measured window)');
    }
    if (fleet.status === 'errored') this.fail(`fleet errored: ${fleet.reasons.join('; ')}`);
    else if (fleet.status === 'invalid' && this.status === 'ok') {
      this.status = 'invalid';
      this.reasons.push(...fleet.reasons);
    }
  }

  /** Everything stopped, whatever happened: the read load, the samplers, Caddy, then the server (SIGTERM, graceful). */
  private async stop(): Promise<void> {
    const { opts } = this;
    this.stopping = true;
    // autocannon runs in this process: never let it outlive its run (a crash or Ctrl-C skips the await above).
    if (this.httpLoad && !this.httpResult) this.httpLoad.stop();
    if (this.sampler) this.resources = this.sampler.stop(this.fleet?.sockets.reached ?? 0);
    if (this.scraper) {
      const m = await this.scraper.finish();
      this.serverMetrics = m;
      // Server counters read 0 when nothing could be scraped: say so, rather than let 0 pass for a fact.
      const tries = m.scrapes + m.scrapeFailures;
      if (m.scrapes === 0)
        this.reasons.push('no /metrics scrape succeeded: the server metrics of this run (BUSY hits, retries, batches, WAL) are unknown, not zero');
      else if (tries > 0 && m.scrapeFailures / tries > 0.1)
        this.reasons.push(`${m.scrapeFailures} of ${tries} /metrics scrapes failed: the server metrics of this run are incomplete`);
    }
    const failStopping = (why: string): void => {
      this.status = 'errored';
      this.reasons.push(why);
    };
    if (this.caddy) {
      const r = await this.caddy.stop(opts.signal.aborted ? 3000 : 10000);
      if (r.forced) failStopping('caddy did not stop within its grace period and was killed');
    }
    if (this.server) {
      const r = await this.server.stop(opts.signal.aborted ? 5000 : 30000);
      if (r.forced) failStopping('server did not stop within its grace period after SIGTERM and was killed');
      else if (r.code !== 0 && this.status !== 'errored')
        failStopping(`server exited with code ${r.code}${r.signal ? ` (signal ${r.signal})` : ''} on SIGTERM`);
    }
  }

  /** The database against the fleet's ledger (only when the run did not error). */
  private auditDatabase(): void {
    if (!this.fleet || this.status === 'errored') return;
    if (!existsSync(this.ledgerFile)) {
      this.status = 'errored';
      this.reasons.push('the fleet wrote no ledger, so the audit could not run');
      return;
    }
    try {
      const ledger = JSON.parse(readFileSync(this.ledgerFile, 'utf8')) as Ledger;
      const a = auditDatabase(this.db, ledger, { boardsWithOtherMembers: boardsWithOtherMembers(this.pr.stage.connections, this.s.users.perBoard) });
      this.audit = a;
      if (!a.ok)
        this.reasons.push(`audit failed: lostAcked ${a.lostAcked}, phantom ${a.phantom}, seqGaps ${a.seqGaps}, finalStateMismatches ${a.finalStateMismatches}`);
    } catch (e) {
      this.status = 'errored';
      this.reasons.push(`audit failed to run: ${(e as Error).message}`);
    }
  }

  /** The run's record, its thresholds, and one line saying how it went. */
  private record(): RunRecord {
    const { variant, stage, stageIndex, repeat } = this.pr;
    const fleet = this.fleet;
    const f = fleet ?? emptyFleetPart();
    const record: RunRecord = {
      variant: variant.name,
      variantKind: variant.kind,
      variantFlags: variantArgv(this.runVariant),
      via: this.via,
      stage: { index: stageIndex, connections: stage.connections, durationSec: stage.durationSec },
      repeat,
      status: this.status,
      reasons: this.reasons,
      sockets: f.sockets,
      latency: f.latency,
      drift: f.drift,
      window: f.window,
      updates: f.updates,
      delivery: f.delivery,
      errors: f.errors,
      fleet: f.fleet,
      timeseries: f.timeseries,
      resources: { server: this.resources },
      server: this.serverMetrics,
      audit: this.audit,
      thresholds: [],
      wallSec: (Date.now() - this.t0) / 1000,
    };
    if (this.httpResult) record.http = this.httpResult as unknown as Record<string, unknown>;
    if (this.status !== 'errored') record.thresholds = evaluateThresholds(record, this.s.thresholds.map(parseThreshold));
    const failed = record.thresholds.filter((t) => !t.pass);
    const audit = this.audit;
    this.log(
      `${this.status === 'ok' ? '✔' : this.status === 'invalid' ? '⚠' : '✖'} ${this.label}: ${this.status}` +
        (fleet
          ? ` — fanout p99 ${f.latency.fanoutMs.p99.toFixed(1)} ms, ack p99 ${f.latency.ackMs.p99.toFixed(1)} ms, ${f.sockets.reached}/${f.sockets.asked} sockets`
          : '') +
        (audit ? `, audit ${audit.ok ? 'clean' : 'FAILED'}` : '') +
        (failed.length ? `, thresholds failed: ${failed.map((t) => `${t.expr} (actual ${t.actual})`).join('; ')}` : '') +
        (this.reasons.length ? `\n    reasons: ${this.reasons.join('; ')}` : '') +
        ` [${fmtDuration(record.wallSec)}]`,
    );
    return record;
  }
}

/** Runs one (variant, stage, repeat) end to end and returns its record. Never throws for a failed run. */
export function executeRun(ctx: RunContext, pr: PlannedRun): Promise<RunRecord> {
  return new RunLifecycle(ctx, pr).execute();
}
