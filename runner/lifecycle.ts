/**
 * The run lifecycle: for every repeat, stage and variant (variants interleaved A B A B), a fresh
 * seeded database and fresh server processes; the fleet through the stage; resources and /metrics
 * sampled once a second; a graceful stop; the audit; thresholds. Ctrl-C or a crashed server ends the
 * run cleanly with status `errored` and the reason, children stopped by PID.
 */
import { mkdirSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { runFleet, type FleetOptions } from '../clients/coordinator.js';
import type { FleetResult, Ledger, RunStatus } from '../model/fleet-result.js';
import { boardsWithOtherMembers } from '../protocol/layout.js';
import { seedDatabase } from '../servers/common/db.js';
import type { Scenario } from '../scenarios/schema.js';
import { estimateRunSec, type PlannedRun } from './plan.js';
import { evaluateThresholds, parseThreshold } from '../scenarios/thresholds.js';
import { auditDatabase } from './audit.js';
import { MetricsScraper, METRIC } from './metrics-scrape.js';
import { Progress, fmtDuration } from './progress.js';
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
  progress: Progress;
  signal: AbortSignal;
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

/** Runs one (variant, stage, repeat) end to end and returns its record. Never throws for a failed run. */
export async function executeRun(ctx: RunContext, pr: PlannedRun): Promise<RunRecord> {
  const { scenario: s, opts } = ctx;
  const { variant, stage, stageIndex, repeat } = pr;
  const label = `${variant.name} stage ${stageIndex + 1}/${s.stages.length} (${stage.connections} sockets) repeat ${repeat}/${s.repeats}`;
  const t0 = Date.now();
  const reasons: string[] = [];
  const st: { status: RunStatus } = { status: 'ok' };
  const workDir = join(opts.outDir, 'work');
  mkdirSync(workDir, { recursive: true });
  const db = join(workDir, `${variant.name}-s${stageIndex + 1}-r${repeat}.db`);
  const ledgerFile = join(workDir, `${variant.name}-s${stageIndex + 1}-r${repeat}.ledger.json`);
  let fleet: FleetResult | null = null;
  let resources = emptyResources();
  let serverMetrics = emptyServerMetrics();
  let audit: AuditReport | null = null;
  let server: RunningServer | null = null;
  let caddy: RunningCaddy | null = null;
  let httpLoad: RunningHttpLoad | null = null;
  let httpResult: HttpLoadResult | null = null;
  const via = variant.via ?? s.via;
  let stopping = false;
  // batched without --shards gets the fewest shards the fd limit allows (1 = the seed's design);
  // per-request's worker count is written out (see effectiveOptions).
  const runVariant = effectiveOptions(variant, stage.connections, opts.fdLimit, opts.cpus);
  const runFlags = variantArgv(runVariant);
  if (runVariant.kind === 'batched' && variant.kind === 'batched' && runVariant.options.shards !== variant.options.shards) opts.progress.log(`  ${variant.name}: ${stage.connections} sockets exceed one process's file limit: running with --shards ${runVariant.options.shards}`);
  const fail = (why: string): void => {
    st.status = 'errored';
    reasons.push(why);
  };

  opts.progress.log(`▶ ${label}: seeding ${s.seed.boards} boards × ${s.seed.cardsPerBoard} cards`);
  seedDatabase(db, { boards: s.seed.boards, cardsPerBoard: s.seed.cardsPerBoard });

  const fleetAbort = new AbortController();
  const onOuterAbort = (): void => fleetAbort.abort();
  opts.signal.addEventListener('abort', onOuterAbort);
  let sampler: ResourceSampler | null = null;
  let scraper: MetricsScraper | null = null;
  try {
    server = await startServerProcess({
      variant: runVariant,
      db,
      nodeFlags: opts.serverNodeFlags,
      ...(opts.pin ? { cpus: '0' } : {}),
    });
    await waitHealthy(server.httpUrl);
    const srv = server;
    void srv.exited.then((x) => {
      if (!stopping) {
        fail(`server exited during the run (code ${x.code}, signal ${x.signal}); last output: ${srv.output().slice(-500).trim()}`);
        fleetAbort.abort();
      }
    });
    let fleetUrl = srv.wsUrl;
    if (via === 'caddy') {
      caddy = await startCaddy({ upstream: `${srv.host}:${srv.port}`, storageDir: join(workDir, `caddy-${variant.name}-s${stageIndex + 1}-r${repeat}`), ...(opts.pin ? { cpus: '0' } : {}) });
      fleetUrl = caddy.wssUrl;
      const cd = caddy;
      void cd.exited.then((x) => {
        if (!stopping) {
          fail(`caddy exited during the run (code ${x.code}, signal ${x.signal}); last output: ${cd.output().slice(-500).trim()}`);
          fleetAbort.abort();
        }
      });
    }
    // The server side is the server's process tree plus Caddy when it is in front.
    const serverRoots = caddy ? [srv.pid, caddy.pid] : [srv.pid];
    const serverPids = (): number[] => serverRoots.flatMap((p) => [p, ...descendantPids(p)]);
    // prom-client's event-loop monitor has a 10 ms resolution (servers/common/metrics.ts): subtract it, as the fleet does.
    // Per-request and sharded servers gather /metrics from every process (up to 2 s): wait that long.
    const scr = new MetricsScraper({ url: `${srv.httpUrl}/metrics`, intervalMs: 1000, eventLoopResolutionMs: 10, timeoutMs: 2500 });
    scraper = scr;
    sampler = new ResourceSampler({
      // One /metrics fetch a second only: each scrape resets prom-client's event-loop histogram.
      connectionsProbe: async () => scr.lastValue(METRIC.connections),
      serverRootPids: serverRoots,
      fleetRootPids: () => {
        const serverSet = new Set(serverPids());
        return [process.pid, ...descendantPids(process.pid).filter((p) => !serverSet.has(p))];
      },
      intervalMs: 1000,
    });

    sampler.start();
    scraper.start();
    await new Promise((r) => setTimeout(r, 1100));
    sampler.markIdle();

    const rate = stage.updatesPerUserPerMin ?? s.load.updatesPerUserPerMin;
    const fleetOpts: FleetOptions = {
      url: fleetUrl,
      ...(caddy ? { ca: caddy.ca } : {}),
      connections: stage.connections,
      perBoard: s.users.perBoard,
      cardsPerBoard: s.seed.cardsPerBoard,
      updatesPerUserPerMin: rate,
      rateSteps: s.load.steps,
      arrival: s.load.arrival,
      seed: s.load.seed,
      warmupSec: s.warmupSec,
      durationSec: stage.durationSec,
      connectRatePerSec: s.users.connectRatePerSec,
      nodeFlags: opts.fleetNodeFlags,
      ledgerFile,
      ...(s.fleet.workers !== undefined ? { workers: s.fleet.workers } : {}),
      ...(s.fleet.drainSec !== undefined ? { drainSec: s.fleet.drainSec } : {}),
      ...(s.fleet.guard !== undefined ? { guard: s.fleet.guard } : {}),
      ...(opts.pin ? { cpus: opts.cpus > 2 ? `1-${opts.cpus - 1}` : '1' } : {}),
    };
    const runEst = estimateRunSec(s, stage);
    const runStart = Date.now();
    fleet = await runFleet(fleetOpts, {
      signal: fleetAbort.signal,
      onSecond: (p) => {
        if (s.http && !httpLoad && p.phase === 'measure') {
          // The read path starts with the measured window, against the same front (direct or Caddy).
          httpLoad = startHttpLoad({
            baseUrl: caddy ? caddy.httpsUrl : srv.httpUrl,
            path: s.http.path,
            connections: s.http.connections,
            ...(s.http.rate !== undefined ? { rate: s.http.rate } : {}),
            durationSec: s.http.durationSec,
            boards: Math.min(s.seed.boards, Math.ceil(stage.connections / s.users.perBoard)),
            seed: s.load.seed,
            ...(caddy ? { ca: caddy.ca } : {}),
          });
        }
        const elapsed = (Date.now() - runStart) / 1000;
        opts.progress.status({
          label: `${variant.name} s${stageIndex + 1} r${repeat}`,
          phase: p.phase,
          point: p,
          runLeftSec: Math.max(0, runEst - elapsed),
          totalLeftSec: ctx.totalLeftSec() + Math.max(0, runEst - elapsed),
        });
      },
    });
    if (httpLoad) {
      const hl: RunningHttpLoad = httpLoad;
      const timer = setTimeout(() => hl.stop(), 5000);
      httpResult = await hl.done;
      clearTimeout(timer);
    } else if (s.http) {
      reasons.push('the http read load never started (the fleet did not reach its measured window)');
    }
    if (fleet.status === 'errored') fail(`fleet errored: ${fleet.reasons.join('; ')}`);
    else if (fleet.status === 'invalid' && st.status === 'ok') {
      st.status = 'invalid';
      reasons.push(...fleet.reasons);
    }
  } catch (e) {
    fail(opts.signal.aborted ? 'interrupted (Ctrl-C)' : `run failed: ${(e as Error).message}`);
  } finally {
    opts.signal.removeEventListener('abort', onOuterAbort);
    stopping = true;
    // autocannon runs in this process: never let it outlive its run (a crash or Ctrl-C skips the await above).
    if (httpLoad && !httpResult) (httpLoad as RunningHttpLoad).stop();
    if (sampler) resources = sampler.stop(fleet?.sockets.reached ?? 0);
    if (scraper) {
      const m = await scraper.finish();
      serverMetrics = m;
      // Server counters read 0 when nothing could be scraped: say so, rather than let 0 pass for a fact.
      const tries = m.scrapes + m.scrapeFailures;
      if (m.scrapes === 0) reasons.push('no /metrics scrape succeeded: the server metrics of this run (BUSY hits, retries, batches, WAL) are unknown, not zero');
      else if (tries > 0 && m.scrapeFailures / tries > 0.1) reasons.push(`${m.scrapeFailures} of ${tries} /metrics scrapes failed: the server metrics of this run are incomplete`);
    }
    if (caddy) {
      const r = await caddy.stop(opts.signal.aborted ? 3000 : 10000);
      if (r.forced) fail('caddy did not stop within its grace period and was killed');
    }
    if (server) {
      const r = await server.stop(opts.signal.aborted ? 5000 : 30000);
      if (r.forced) fail('server did not stop within its grace period after SIGTERM and was killed');
      else if (r.code !== 0 && st.status !== 'errored') fail(`server exited with code ${r.code}${r.signal ? ` (signal ${r.signal})` : ''} on SIGTERM`);
    }
  }

  if (fleet && existsSync(ledgerFile) && st.status !== 'errored') {
    try {
      const ledger = JSON.parse(readFileSync(ledgerFile, 'utf8')) as Ledger;
      audit = auditDatabase(db, ledger, { boardsWithOtherMembers: boardsWithOtherMembers(stage.connections, s.users.perBoard) });
      if (!audit.ok) reasons.push(`audit failed: lostAcked ${audit.lostAcked}, phantom ${audit.phantom}, seqGaps ${audit.seqGaps}, finalStateMismatches ${audit.finalStateMismatches}`);
    } catch (e) {
      fail(`audit failed to run: ${(e as Error).message}`);
    }
  } else if (fleet && st.status !== 'errored') {
    fail('the fleet wrote no ledger, so the audit could not run');
  }
  if (!opts.keepDb) {
    for (const f of [db, `${db}-wal`, `${db}-shm`, ledgerFile]) rmSync(f, { force: true });
  }

  const f = fleet ?? emptyFleetPart();
  const record: RunRecord = {
    variant: variant.name,
    variantKind: variant.kind,
    variantFlags: runFlags,
    via,
    stage: { index: stageIndex, connections: stage.connections, durationSec: stage.durationSec },
    repeat,
    status: st.status,
    reasons,
    sockets: f.sockets,
    latency: f.latency,
    drift: f.drift,
    window: f.window,
    updates: f.updates,
    delivery: f.delivery,
    errors: f.errors,
    fleet: f.fleet,
    timeseries: f.timeseries,
    resources: { server: resources },
    server: serverMetrics,
    audit,
    thresholds: [],
    wallSec: (Date.now() - t0) / 1000,
  };
  if (httpResult) record.http = httpResult as unknown as Record<string, unknown>;
  if (st.status !== 'errored') record.thresholds = evaluateThresholds(record, s.thresholds.map(parseThreshold));
  const failed = record.thresholds.filter((t) => !t.pass);
  opts.progress.log(
    `${st.status === 'ok' ? '✔' : st.status === 'invalid' ? '⚠' : '✖'} ${label}: ${st.status}` +
      (fleet ? ` — fanout p99 ${f.latency.fanoutMs.p99.toFixed(1)} ms, ack p99 ${f.latency.ackMs.p99.toFixed(1)} ms, ${f.sockets.reached}/${f.sockets.asked} sockets` : '') +
      (audit ? `, audit ${audit.ok ? 'clean' : 'FAILED'}` : '') +
      (failed.length ? `, thresholds failed: ${failed.map((t) => `${t.expr} (actual ${t.actual})`).join('; ')}` : '') +
      (reasons.length ? `\n    reasons: ${reasons.join('; ')}` : '') +
      ` [${fmtDuration(record.wallSec)}]`,
  );
  return record;
}
