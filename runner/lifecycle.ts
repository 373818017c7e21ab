/**
 * The run lifecycle: for every repeat, stage and variant (variants interleaved A B A B), a fresh
 * seeded database and fresh server processes; the fleet through the stage; resources and /metrics
 * sampled once a second; a graceful stop; the audit; thresholds. Ctrl-C or a crashed server ends the
 * run cleanly with status `errored` and the reason, children stopped by PID.
 */
import { mkdirSync, rmSync, readFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runFleet, type FleetOptions, type ScheduleTimes } from '../clients/coordinator.js';
import type { FleetResult, Ledger, RunStatus } from '../model/fleet-result.js';
import { boardsWithOtherMembers } from '../protocol/layout.js';
import { seedDatabase } from '../servers/common/db.js';
import type { Scenario, Variant } from '../scenarios/schema.js';
import { estimateRunSec, type PlannedRun } from './plan.js';
import { scenarioLoadOptions } from './scenario-fleet.js';
import { clearSegmentDir } from './segments.js';
import { collectExternalFleet, type ExternalFleet } from './external-fleet.js';
import { evaluateThresholds, parseThreshold } from '../scenarios/thresholds.js';
import { compareLedger, readStoredState } from './audit.js';
import { faultRecords } from './fault-loss.js';
import { FaultInjector } from './faults.js';
import type { FaultRecord } from '../model/faults.js';
import { boardOfUser } from '../protocol/layout.js';
import { VARIANT_SPECS } from '../model/variants.js';
import { MetricsScraper, METRIC } from './metrics-scrape.js';
import { fmtDuration, type ProgressState } from './progress.js';
import { ResourceSampler } from './resources.js';
import type { AuditReport, RunRecord, ServerMetricsSummary, ServerResources } from '../model/result.js';
import { startCaddy, type RunningCaddy } from './caddy.js';
import { effectiveOptions } from './preflight.js';
import { commandLine } from '../model/external.js';
import { variantArgv } from '../model/variants.js';
import { startHttpLoad, type HttpLoadResult, type RunningHttpLoad } from './http-load.js';
import { descendantPids, startServerProcess, waitHealthy, type RunningServer } from './server-process.js';
import type { RunHandle, RunHooks } from './run-hooks.js';

export type { RunHandle, RunHooks } from './run-hooks.js';

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
  /** What an external variant's relative `cwd` is resolved against (scenarioBaseDir); default the current directory. */
  baseDir?: string;
  /** The fleet runs on other hosts as segments (`run --fleet external`): the runner waits for and merges them. */
  externalFleet?: ExternalFleet;
}

/** What the lifecycle tells the caller: a line to show, or the status of the run in progress. */
export type RunEvent = { type: 'log'; message: string } | { type: 'status'; state: ProgressState };

/** Nothing scraped: every server metric unknown (null), never 0. */
function emptyServerMetrics(): ServerMetricsSummary {
  return {
    updatesReceived: null,
    updatesPersisted: null,
    broadcastFrames: null,
    errorsByCode: null,
    batchSize: null,
    commitMs: null,
    queueDepthMax: null,
    busyHits: null,
    retries: null,
    exhausted: null,
    walBytesMax: null,
    eventLoopDelayMsP99: null,
    slowConsumerCloses: null,
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
  /** The scenario's faults as hooks of this run (null without faults). */
  private readonly injector: FaultInjector | null;
  /** Per-run hooks: the fault injector's, then the caller's. */
  private readonly hooks: RunHooks[];
  /** Servers whose exit a fault caused. */
  private readonly expectedExits = new Set<RunningServer>();
  private schedule: ScheduleTimes | null = null;
  private faultRecs: FaultRecord[] | null = null;
  /** The segments an external fleet's result was merged from. */
  private fleetSegments: FleetResult['segments'] = undefined;

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
    const rv = effectiveOptions(variant, stage.connections, opts.fdLimit, opts.cpus);
    // a disk-full fault needs the server's fault injection
    this.runVariant = s.faults.some((f) => f.kind === 'disk-full') ? ({ ...rv, options: { ...rv.options, faultInjection: true } } as Variant) : rv;
    this.injector = s.faults.length > 0 ? new FaultInjector(s.faults) : null;
    this.hooks = [...(this.injector ? [this.injector] : []), ...(opts.hooks ? [opts.hooks] : [])];
  }

  get dbFile(): string {
    return this.db;
  }

  serverPids(): number[] {
    const srv = this.server;
    return srv?.isRunning() ? [srv.pid, ...descendantPids(srv.pid)] : [];
  }

  expectServerExit(): void {
    if (this.server) this.expectedExits.add(this.server);
  }

  async restartServer(): Promise<RunningServer> {
    const old = this.server;
    if (!old) throw new Error('no server to restart');
    const srv = await this.launchServer(old.port);
    // an external server without {port} chose its own: the fleet's sockets know only the old one
    if (srv.port !== old.port)
      this.fail(`the restarted server listens on port ${srv.port}, not ${old.port}: an external server needs {port} in its command to be restarted by a fault`);
    if (!srv.external) await waitHealthy(srv.httpUrl);
    return srv;
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
    if ((rv.kind === 'batched' || rv.kind === 'floor') && rv.kind === variant.kind && rv.options.shards !== variant.options.shards)
      this.log(`  ${variant.name}: ${stage.connections} sockets exceed one process's file limit: running with --shards ${rv.options.shards}`);
    mkdirSync(this.workDir, { recursive: true });
    this.log(`▶ ${this.label}: seeding ${this.s.seed.boards} boards × ${this.s.seed.cardsPerBoard} cards`);
    seedDatabase(this.db, { boards: this.s.seed.boards, cardsPerBoard: this.s.seed.cardsPerBoard });
    // an external fleet's segments of an earlier run must not pass for this one's
    if (this.opts.externalFleet?.dir) clearSegmentDir(this.opts.externalFleet.dir);
    const onOuterAbort = (): void => this.fleetAbort.abort();
    this.opts.signal.addEventListener('abort', onOuterAbort);
    try {
      const fleetUrl = await this.startServer();
      for (const h of this.hooks) await h.serverStarted?.(this);
      await this.startSampling();
      await this.runLoad(fleetUrl);
      for (const h of this.hooks) await h.beforeStop?.(this);
    } catch (e) {
      const why = this.opts.signal.aborted ? 'interrupted (Ctrl-C)' : `run failed: ${(e as Error).message}`;
      this.status = 'errored';
      this.reasons.push(why);
    } finally {
      this.opts.signal.removeEventListener('abort', onOuterAbort);
      // a fault under way (a restart) finishes before the server is stopped; faults not begun never will
      await this.injector?.settle();
      await this.stop();
    }
    this.auditDatabase();
    if (!this.opts.keepDb) for (const f of [this.db, `${this.db}-wal`, `${this.db}-shm`, this.ledgerFile]) rmSync(f, { force: true });
    return this.record();
  }

  /** The server (and Caddy in front, for via caddy), each watched: exiting during the run fails it. Returns the fleet's URL. */
  private async startServer(): Promise<string> {
    const opts = this.opts;
    const srv = await this.launchServer(0);
    // An external server was started by its command and has answered its ready path already.
    if (srv.external)
      this.log(
        `  ${this.variant.name}: ${commandLine(srv.external.command)} (port ${srv.port} ${srv.external.portFrom === 'placeholder' ? 'picked for {port}' : 'read from its listening line'})`,
      );
    else await waitHealthy(srv.httpUrl);
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

  /** Starts the variant on the run's file (port 0: any free port), watched: exiting during the run, unless a fault caused it, fails it. */
  private async launchServer(port: number): Promise<RunningServer> {
    const opts = this.opts;
    const ext = opts.externalFleet;
    const srv = await startServerProcess({
      variant: this.runVariant,
      db: this.db,
      nodeFlags: this.variant.serverNodeFlags ?? opts.serverNodeFlags,
      port: port || (ext?.port ?? 0),
      ...(ext ? { host: ext.host } : {}),
      ...(opts.pin ? { cpus: '0' } : {}),
      ...(opts.baseDir ? { baseDir: opts.baseDir } : {}),
    });
    this.server = srv;
    void srv.exited.then((x) => {
      if (!this.stopping && !this.expectedExits.has(srv))
        this.fail(`server exited during the run (code ${x.code}, signal ${x.signal}); last output: ${srv.output().slice(-500).trim()}`);
    });
    return srv;
  }

  /** Resources of the server tree (and the fleet's) and /metrics, once a second; the idle RSS after a second. */
  private async startSampling(): Promise<void> {
    const srv = this.server!;
    // The server side is the server's process tree plus Caddy when it is in front (after a restart, the new server's).
    const serverRoots = (): number[] => (this.caddy ? [this.server!.pid, this.caddy.pid] : [this.server!.pid]);
    const serverPids = (): number[] => serverRoots().flatMap((p) => [p, ...descendantPids(p)]);
    // prom-client's event-loop monitor has a 10 ms resolution (servers/common/metrics.ts): subtract it, as the fleet does.
    // Per-request and sharded servers gather /metrics from every process (up to 2 s): wait that long.
    // A variant may scrape less often, or not at all (0), to measure what the scrape itself costs the server.
    const every = this.variant.scrapeIntervalSec ?? 1;
    const scr = every > 0 ? new MetricsScraper({ url: `${srv.httpUrl}/metrics`, intervalMs: every * 1000, eventLoopResolutionMs: 10, timeoutMs: 2500 }) : null;
    this.scraper = scr;
    this.sampler = new ResourceSampler({
      // One /metrics fetch a second only: each scrape resets prom-client's event-loop histogram.
      connectionsProbe: async () => scr?.lastValue(METRIC.connections) ?? null,
      serverRootPids: serverRoots,
      fleetRootPids: () => {
        const serverSet = new Set(serverPids());
        return [process.pid, ...descendantPids(process.pid).filter((p) => !serverSet.has(p))];
      },
      intervalMs: 1000,
    });
    this.sampler.start();
    scr?.start();
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
      ...scenarioLoadOptions(s, stage),
      nodeFlags: opts.fleetNodeFlags,
      ledgerFile: this.ledgerFile,
      ...(opts.pin ? { cpus: opts.cpus > 2 ? `1-${opts.cpus - 1}` : '1' } : {}),
      ...(s.faults.length > 0
        ? {
            faultsScheduled: true,
            reconnect: true,
            stalls: s.faults.flatMap((f) => (f.kind === 'slow-consumers' ? [{ atSec: f.atSec, durationSec: f.durationSec, fraction: f.fraction }] : [])),
          }
        : {}),
    };
  }

  /** The fleet on other hosts: its N segments, waited for and merged; the ledger written where the audit reads it. */
  private async runExternalFleet(ext: ExternalFleet): Promise<void> {
    const { stage, stageIndex } = this.pr;
    if (this.s.http) this.log("  the http read load is not run with an external fleet (it starts with the fleet's measured window, which happens elsewhere)");
    try {
      const merged = await collectExternalFleet({
        fleet: ext,
        scenario: this.s,
        stage,
        stageNo: stageIndex + 1,
        port: this.server!.port,
        runSec: estimateRunSec(this.s, stage),
        signal: this.fleetAbort.signal,
        log: (m) => this.log(m),
        keepAs: this.opts.keepDb ? this.ledgerFile.replace(/\.ledger\.json$/, '') : null,
      });
      writeFileSync(this.ledgerFile, JSON.stringify(merged.ledger));
      this.fleet = merged.result;
      this.fleetSegments = merged.result.segments;
    } catch (e) {
      this.fail(`external fleet: ${(e as Error).message}`);
      return;
    }
    const fleet = this.fleet;
    if (fleet.status === 'errored') this.fail(`fleet errored: ${fleet.reasons.join('; ')}`);
    else if (fleet.status === 'invalid' && this.status === 'ok') {
      this.status = 'invalid';
      this.reasons.push(...fleet.reasons);
    }
  }

  /** The fleet through the stage; the HTTP read load starts with its measured window. */
  private async runLoad(url: string): Promise<void> {
    const { s, opts } = this;
    if (opts.externalFleet) return this.runExternalFleet(opts.externalFleet);
    const { variant, stage, stageIndex, repeat } = this.pr;
    const srv = this.server!;
    const runEst = estimateRunSec(s, stage);
    const runStart = Date.now();
    const fleet = await runFleet(this.fleetOptions(url), {
      signal: this.fleetAbort.signal,
      onSchedule: (t) => {
        this.schedule = t;
        // The server's window figures (event-loop delay, queue-depth peak) cover the measured window only.
        this.scraper?.setWindow(t.measureStartMs, t.scheduleEndMs);
        this.sampler?.setWindow(t.measureStartMs, t.scheduleEndMs);
        for (const h of this.hooks) h.scheduled?.(this, t);
      },
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
        for (const h of this.hooks) h.second?.(this, p);
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
      // while a kill fault had the server down, its /metrics could not answer: those failures are the fault's, not missing data
      const expected = this.injector ? Math.ceil(this.injector.downSec) + this.injector.timings.length : 0;
      if (m.scrapes === 0 && /HTTP 404/.test(this.scraper.lastError ?? ''))
        this.reasons.push(
          'the server has no /metrics (HTTP 404): its server metrics (updates, batches, commits, BUSY hits, retries, queue, WAL) are unknown, not zero',
        );
      else if (m.scrapes === 0)
        this.reasons.push('no /metrics scrape succeeded: the server metrics of this run (BUSY hits, retries, batches, WAL) are unknown, not zero');
      else if (tries > 0 && Math.max(0, m.scrapeFailures - expected) / tries > 0.1)
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
      const grace = this.server.stopGraceMs ?? 30000;
      const r = await this.server.stop(opts.signal.aborted ? Math.min(5000, grace) : grace);
      if (r.forced && this.server.external)
        failStopping(`server did not exit within ${this.server.external.stopTimeoutSec} s of SIGTERM (stopTimeoutSec) and was killed with SIGKILL`);
      else if (r.forced) failStopping('server did not stop within its grace period after SIGTERM and was killed');
      else if (r.code !== 0 && this.status !== 'errored')
        failStopping(`server exited with code ${r.code}${r.signal ? ` (signal ${r.signal})` : ''} on SIGTERM`);
    }
  }

  /**
   * The database against the fleet's ledger (only when the run did not error). In a run with faults,
   * what each fault cost (runner/fault-loss.ts), and the gate: lost acks, reused seqs and final
   * states always fail it; phantoms and seq gaps fail it unless the design documents them as its
   * loss under a fault (VARIANT_SPECS[kind].faultLoss: batched broadcasts before it stores).
   */
  private auditDatabase(): void {
    if (!this.fleet || this.status === 'errored') return;
    // The floor stores nothing: there is nothing to audit (the record says so: audit null, the audit thresholds skipped).
    if (VARIANT_SPECS[this.variant.kind].noStorage) return;
    if (!existsSync(this.ledgerFile)) {
      this.status = 'errored';
      this.reasons.push('the fleet wrote no ledger, so the audit could not run');
      return;
    }
    try {
      const ledger = JSON.parse(readFileSync(this.ledgerFile, 'utf8')) as Ledger;
      const perBoard = this.s.users.perBoard;
      const stored = readStoredState(this.db);
      const faulted = this.injector !== null;
      const a = compareLedger(stored, ledger, {
        boardsWithOtherMembers: boardsWithOtherMembers(this.pr.stage.connections, perBoard),
        boardOfUser: (u) => boardOfUser(u, perBoard),
        collect: faulted,
      });
      if (faulted && this.injector && this.schedule) {
        this.faultRecs = faultRecords({
          faults: this.injector.timings,
          originMs: this.schedule.originMs,
          ledger,
          audit: a,
          stored,
          timeseries: this.fleet.timeseries,
        });
        const allowed = VARIANT_SPECS[this.variant.kind].faultLoss ?? [];
        const excused = allowed.filter((k) => a[k] > 0);
        if (excused.length > 0) {
          a.excused = excused;
          a.ok =
            a.lostAcked === 0 &&
            a.seqReused === 0 &&
            a.finalStateMismatches === 0 &&
            (a.integrity ?? 'ok') === 'ok' &&
            (a.phantom === 0 || excused.includes('phantom')) &&
            (a.seqGaps === 0 || excused.includes('seqGaps'));
        }
      }
      const { items: _items, reusedSeqs: _reused, ...report } = a;
      this.audit = report;
      if (!a.ok)
        this.reasons.push(
          `audit failed: lostAcked ${a.lostAcked}, seqReused ${a.seqReused}, phantom ${a.phantom}, seqGaps ${a.seqGaps}, finalStateMismatches ${a.finalStateMismatches}` +
            ((a.integrity ?? 'ok') === 'ok' ? '' : `, database integrity: ${a.integrity!.slice(0, 200)}`),
        );
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
    if (this.faultRecs) record.faults = this.faultRecs;
    if (this.server?.external) record.external = this.server.external;
    record.scrapeIntervalSec = this.variant.scrapeIntervalSec ?? 1;
    if (this.variant.serverNodeFlags) record.serverNodeFlags = this.variant.serverNodeFlags;
    if (this.fleetSegments) record.fleetSegments = this.fleetSegments;
    if (this.status !== 'errored')
      record.thresholds = evaluateThresholds(
        record,
        // A variant that stores nothing has no audit: its audit.* thresholds do not apply (not passed: absent).
        this.s.thresholds.map((e) => parseThreshold(e)).filter((t) => !(VARIANT_SPECS[variant.kind].noStorage && t.metric.startsWith('audit.'))),
      );
    const failed = record.thresholds.filter((t) => !t.pass);
    const audit = this.audit;
    this.log(
      `${this.status === 'ok' ? '✔' : this.status === 'invalid' ? '⚠' : '✖'} ${this.label}: ${this.status}` +
        (fleet
          ? ` — fanout p99 ${f.latency.fanoutMs.p99.toFixed(1)} ms, ack p99 ${f.latency.ackMs.p99.toFixed(1)} ms, ${f.sockets.reached}/${f.sockets.asked} sockets`
          : '') +
        (audit ? `, audit ${audit.ok ? 'clean' : 'FAILED'}` : VARIANT_SPECS[variant.kind].noStorage && fleet ? ', audit skipped (stores nothing)' : '') +
        (failed.length ? `, thresholds failed: ${failed.map((t) => `${t.expr} (actual ${t.actual ?? 'unknown'})`).join('; ')}` : '') +
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
