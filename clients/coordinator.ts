/**
 * The fleet's coordinator: spawns the worker processes (never one process for everything), gives
 * each a deterministic segment of the users, walks them through connect -> schedule -> drain ->
 * finish with bounded waits at every step, aggregates their per-second ticks into the time series,
 * and joins their final reports (histograms merged losslessly, delivery accounting across workers,
 * recipients, the ledger) into one FleetResult.
 *
 * Bounded in time whatever the server does: the connect phase has a deadline (then pending
 * handshakes are abandoned and counted as timeouts), the drain has a deadline, the final reports
 * have a deadline, and every worker also exits by itself at a hard deadline or when this process
 * goes away. Every worker started is stopped, on success, crash or abort.
 */
import { driftWindowFor } from './drift.js';
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { nowMs } from '../protocol/clock.js';
import { joinDelivery } from './delivery.js';
import { evaluateGuard } from './guard.js';
import { decodeHistogram, latencyStat, mergeEncoded, percentileMs, type Histogram } from './histogram.js';
import type { ConnectedReport, CoordinatorMessage, TickReport, WorkerFinal, WorkerInit, WorkerMessage } from './ipc.js';
import { resolveFleetOptions, type FleetOptions, type ResolvedFleetOptions } from './options.js';
import type { Segment } from './plan.js';
import { RssReader } from './procstat.js';
import { recipientsReport } from './sampling.js';
import type { FleetResult, Ledger, RunStatus, TimePoint } from '../model/fleet-result.js';

export type { FleetOptions, ResolvedFleetOptions } from './options.js';
export { FleetConfigError, resolveFleetOptions } from './options.js';

export type FleetPhase = 'connect' | 'warmup' | 'measure' | 'drain';

/** What onSecond gets once a second: the second's TimePoint plus where the run stands. */
export interface FleetProgress extends TimePoint {
  /** Seconds since the fleet started (= t + 1 for a complete second). */
  elapsedSec: number;
  phase: FleetPhase;
  /** Estimated seconds left in the run (schedule + drain; an estimate while connecting). */
  timeLeftSec: number;
  /** Sockets asked. */
  connections: number;
}

export interface FleetHooks {
  /** Called once per second of the run, in order, with the whole fleet's numbers for that second. */
  onSecond?: (p: FleetProgress) => void;
  /** Called once the worker processes are spawned, with their pids (for resource sampling). */
  onWorkers?: (pids: number[]) => void;
  /** Aborting kills every worker; runFleet then rejects with the signal's reason. */
  signal?: AbortSignal;
}

const WORKER_JS = fileURLToPath(new URL('./worker.js', import.meta.url));
/** Extra time for the workers to start and report, ms. */
const SPAWN_MS = 15_000;
/** After the connect deadline, time for the workers to abandon pending handshakes and report, ms. */
const STOP_CONNECT_MS = 5_000;
/** Lead between "start" and t0 so every worker has it before the first scheduled send, ms. */
const START_LEAD_MS = 150;
/** Once every worker has all its answers, wait this long (within drainSec) for the last broadcasts, ms. */
const DRAIN_GRACE_MS = 1_000;
/** Time for the final reports after "finish", ms. */
const FINAL_MS = 60_000;

interface WorkerHandle {
  seg: Segment;
  child: ChildProcess;
  exited: boolean;
  exitCode: number | null;
  exitSignal: NodeJS.Signals | null;
  exitedPromise: Promise<void>;
  stderr: string;
  connected: ConnectedReport | null;
  drained: boolean;
  final: WorkerFinal | null;
  fatal: string | null;
  lastT: number;
  cpuByT: Map<number, number>;
}

interface SecondAgg {
  workers: number;
  openSockets: number;
  sent: number;
  acked: number;
  errors: number;
  errorsBy: Record<string, number>;
  delivered: number;
  ack: string[];
  fanout: string[];
  lag: string[];
  cpuPct: number;
  rssBytes: number;
}

function abortError(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r;
  const e = new Error('the fleet run was aborted');
  e.name = 'AbortError';
  return e;
}

function mergeCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

function tasksetPid(cpus: string, pid: number): Promise<void> {
  return new Promise((res, rej) => {
    execFile('taskset', ['-pc', cpus, String(pid)], { timeout: 5000 }, (err, _out, stderr) => {
      if (err) rej(new Error(`taskset -pc ${cpus} ${pid} failed: ${stderr.trim() || err.message}`));
      else res();
    });
  });
}

/**
 * Runs a client fleet against a v1 server and returns its result. Rejects only on invalid options
 * (FleetConfigError) or abort; every other failure (server unreachable, worker crash) resolves
 * with status 'errored' and the reasons.
 */
export async function runFleet(opts: FleetOptions, hooks: FleetHooks = {}): Promise<FleetResult> {
  const cfg = resolveFleetOptions(opts);
  const signal = hooks.signal;
  if (signal?.aborted) throw abortError(signal);

  const startedAtIso = new Date().toISOString();
  const origin = nowMs();
  const cpuStart = process.cpuUsage();
  const selfRss = new RssReader('self');
  const segs = cfg.plan.segments;
  const perWorkerRate = cfg.connectRatePerSec / cfg.workers;
  const biggest = segs.reduce((m, s) => Math.max(m, s.count), 0);
  const expectedConnectMs = (biggest / perWorkerRate) * 1000;
  const connectDeadline = origin + SPAWN_MS + expectedConnectMs + cfg.handshakeTimeoutMs + 2_000;
  const windowMs = (cfg.warmupSec + cfg.durationSec) * 1000;
  const drainMs = cfg.drainSec * 1000;
  const hardDeadline = connectDeadline + STOP_CONNECT_MS + START_LEAD_MS + windowMs + drainMs + FINAL_MS + 10_000;

  const errors: string[] = [];
  let aborted = false;
  let t0: number | null = null;
  let measureStart = Infinity;
  let scheduleEnd = Infinity;

  // -- wake-ups for the sequential flow below
  let wake: (() => void) | null = null;
  const poke = (): void => {
    const w = wake;
    wake = null;
    w?.();
  };
  const until = async (pred: () => boolean, deadline: number): Promise<boolean> => {
    for (;;) {
      if (aborted) throw abortError(signal!);
      if (pred()) return true;
      const left = deadline - nowMs();
      if (left <= 0) return false;
      await new Promise<void>((res) => {
        const t = setTimeout(res, Math.min(left, 1000));
        wake = () => {
          clearTimeout(t);
          res();
        };
      });
    }
  };

  // -- per-second aggregation
  const buckets = new Map<number, SecondAgg>();
  let lastEmitted = -1;
  const timeseries: TimePoint[] = [];
  let rssBytesMax = 0;
  let cpuPctMax = 0;
  const phaseAt = (ms: number): FleetPhase => (t0 === null || ms < t0 ? 'connect' : ms < measureStart ? 'warmup' : ms < scheduleEnd ? 'measure' : 'drain');
  const emit = (t: number, a: SecondAgg): void => {
    const ack = mergeEncoded(a.ack);
    const fan = mergeEncoded(a.fanout);
    const lag = mergeEncoded(a.lag);
    const selfBytes = selfRss.read() ?? 0;
    const fleetRss = a.rssBytes + selfBytes;
    if (fleetRss > rssBytesMax) rssBytesMax = fleetRss;
    const p: TimePoint = {
      t,
      openSockets: a.openSockets,
      sent: a.sent,
      acked: a.acked,
      errors: a.errors,
      ...(Object.keys(a.errorsBy).length > 0 ? { errorsByCode: a.errorsBy } : {}),
      delivered: a.delivered,
      ackP50Ms: percentileMs(ack, 50),
      ackP99Ms: percentileMs(ack, 99),
      fanoutP50Ms: percentileMs(fan, 50),
      fanoutP99Ms: percentileMs(fan, 99),
      lagMsP99: percentileMs(lag, 99),
      fleetCpuPct: round1(a.cpuPct),
    };
    timeseries.push(p);
    if (hooks.onSecond) {
      const now = nowMs();
      const timeLeftMs = t0 === null ? Math.max(0, origin + expectedConnectMs - now) + windowMs + drainMs : Math.max(0, scheduleEnd + drainMs - now);
      try {
        hooks.onSecond({ ...p, elapsedSec: t + 1, phase: phaseAt(origin + (t + 0.5) * 1000), timeLeftSec: Math.round(timeLeftMs / 1000), connections: cfg.connections });
      } catch {
        /* a failing hook must not break the run */
      }
    }
  };
  const flushSeconds = (force: boolean): void => {
    let upTo = Infinity;
    if (!force) for (const w of workers) if (!w.final && !w.exited) upTo = Math.min(upTo, w.lastT);
    const ready = [...buckets.keys()].filter((t) => t <= upTo).sort((a, b) => a - b);
    for (const t of ready) {
      const a = buckets.get(t)!;
      buckets.delete(t);
      if (t <= lastEmitted) continue;
      lastEmitted = t;
      emit(t, a);
    }
  };
  let deliveredInTicks = 0;
  const onTick = (w: WorkerHandle, m: TickReport): void => {
    deliveredInTicks += m.delivered;
    w.lastT = Math.max(w.lastT, m.t);
    w.cpuByT.set(m.t, m.cpuPct);
    if (m.cpuPct > cpuPctMax) cpuPctMax = m.cpuPct;
    if (m.t <= lastEmitted) return; // too late for its second (a worker stalled > 1 s): counts stay in the totals
    let a = buckets.get(m.t);
    if (!a) buckets.set(m.t, (a = { workers: 0, openSockets: 0, sent: 0, acked: 0, errors: 0, errorsBy: {}, delivered: 0, ack: [], fanout: [], lag: [], cpuPct: 0, rssBytes: 0 }));
    a.workers++;
    a.openSockets += m.openSockets;
    a.sent += m.sent;
    a.acked += m.acked;
    a.errors += m.errors;
    for (const [k, n] of Object.entries(m.errorsBy ?? {})) a.errorsBy[k] = (a.errorsBy[k] ?? 0) + n;
    a.delivered += m.delivered;
    if (m.ackHist) a.ack.push(m.ackHist);
    if (m.fanoutHist) a.fanout.push(m.fanoutHist);
    if (m.lagHist) a.lag.push(m.lagHist);
    a.cpuPct += m.cpuPct;
    a.rssBytes += m.rssBytes ?? 0;
    flushSeconds(false);
  };

  // -- spawn
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  delete env.NODE_OPTIONS;
  const workers: WorkerHandle[] = [];
  const spawnWorker = (seg: Segment): WorkerHandle => {
    const child = fork(WORKER_JS, [], { execArgv: cfg.nodeFlags, serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env });
    let onExit!: () => void;
    const w: WorkerHandle = {
      seg,
      child,
      exited: false,
      exitCode: null,
      exitSignal: null,
      exitedPromise: new Promise<void>((r) => (onExit = r)),
      stderr: '',
      connected: null,
      drained: false,
      final: null,
      fatal: null,
      lastT: -1,
      cpuByT: new Map(),
    };
    child.stderr?.on('data', (d: Buffer) => {
      w.stderr = (w.stderr + d.toString()).slice(-4000);
    });
    child.on('error', (e) => {
      if (!w.fatal) w.fatal = `worker ${seg.index} could not run: ${e.message}`;
      poke();
    });
    child.on('exit', (code, sig) => {
      w.exited = true;
      w.exitCode = code;
      w.exitSignal = sig;
      onExit();
      flushSeconds(false);
      poke();
    });
    child.on('message', (m: WorkerMessage) => {
      switch (m.type) {
        case 'connected':
          w.connected = m;
          break;
        case 'tick':
          onTick(w, m);
          break;
        case 'drained':
          w.drained = true;
          break;
        case 'final':
          w.final = m;
          flushSeconds(false);
          break;
        case 'fatal':
          w.fatal = m.message;
          break;
      }
      poke();
    });
    const init: WorkerInit = {
      type: 'init',
      index: seg.index,
      firstUser: seg.firstUser,
      count: seg.count,
      fleetFirstUser: cfg.firstUser,
      urls: cfg.urls,
      perBoard: cfg.perBoard,
      cardsPerBoard: cfg.cardsPerBoard,
      updatesPerUserPerMin: cfg.updatesPerUserPerMin,
      rateSteps: cfg.rateSteps,
      arrival: cfg.arrival,
      seed: cfg.seed,
      sampleEvery: cfg.sampleEvery,
      idPrefix: cfg.idPrefix,
      sourceAddresses: cfg.sourceAddresses,
      connectRatePerSec: perWorkerRate,
      handshakeTimeoutMs: cfg.handshakeTimeoutMs,
      originMs: origin,
      hardDeadlineMs: hardDeadline,
    };
    if (cfg.ca !== undefined) init.ca = cfg.ca;
    tell(w, init);
    return w;
  };
  const tell = (w: WorkerHandle, m: CoordinatorMessage): void => {
    if (w.exited || !w.child.connected) return;
    try {
      w.child.send(m);
    } catch {
      /* exiting */
    }
  };
  const broken = (): boolean => workers.some((w) => w.fatal !== null || (w.exited && w.final === null));
  const killAll = (): void => {
    for (const w of workers) if (!w.exited) w.child.kill('SIGKILL');
  };
  const onAbort = (): void => {
    aborted = true;
    killAll();
    poke();
  };
  signal?.addEventListener('abort', onAbort, { once: true });

  try {
    for (const s of segs) workers.push(spawnWorker(s));
    hooks.onWorkers?.(workers.map((w) => w.child.pid ?? -1).filter((p) => p > 0));
    if (cfg.cpus !== undefined) {
      try {
        for (const w of workers) if (w.child.pid) await tasksetPid(cfg.cpus, w.child.pid);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }

    // -- connect
    const allConnected = (): boolean => workers.every((w) => w.connected !== null);
    let ok = errors.length === 0 && (await until(() => allConnected() || broken(), connectDeadline));
    if (!ok && errors.length === 0) {
      for (const w of workers) if (!w.connected) tell(w, { type: 'stop-connect' });
      ok = await until(() => allConnected() || broken(), nowMs() + STOP_CONNECT_MS);
      if (!ok) errors.push(`the workers did not finish connecting by the deadline (${Math.round((connectDeadline - origin) / 1000)} s + ${STOP_CONNECT_MS / 1000} s)`);
    }
    const reachedNow = workers.reduce((n, w) => n + (w.connected?.reached ?? 0), 0);
    if (ok && !broken() && reachedNow === 0) {
      const kinds: Record<string, number> = {};
      for (const w of workers) if (w.connected) mergeCounts(kinds, w.connected.failuresByKind);
      errors.push(`no socket reached the server at ${cfg.urls.join(', ')} (${Object.entries(kinds).map(([k, n]) => `${k}=${n}`).join(', ') || 'no answer'})`);
    }

    if (ok && !broken() && errors.length === 0) {
      // -- schedule
      t0 = nowMs() + START_LEAD_MS;
      measureStart = t0 + cfg.warmupSec * 1000;
      scheduleEnd = t0 + windowMs;
      for (const w of workers) tell(w, { type: 'start', t0, warmupMs: cfg.warmupSec * 1000, measureMs: cfg.durationSec * 1000 });
      await until(broken, scheduleEnd);
      // -- drain: until every answer is in (plus a grace for the last broadcasts), at most drainSec
      if (!broken()) {
        const drainDeadline = scheduleEnd + drainMs;
        if (await until(() => broken() || workers.every((w) => w.drained), drainDeadline)) {
          // Broadcasts can trail the last ack (deep send buffers, per-request's polling): keep waiting
          // while the workers' per-second ticks still report deliveries, within the drain deadline,
          // so slow is not reported as missing.
          let last = -1;
          while (!broken() && nowMs() < drainDeadline && deliveredInTicks !== last) {
            last = deliveredInTicks;
            await until(broken, Math.min(drainDeadline, nowMs() + DRAIN_GRACE_MS + 100));
          }
        }
      }
    }

    // -- finish
    for (const w of workers) tell(w, { type: 'finish' });
    const gotFinals = await until(() => workers.every((w) => w.final !== null || w.exited), nowMs() + FINAL_MS);
    if (!gotFinals) errors.push(`worker final reports did not arrive within ${FINAL_MS / 1000} s`);
    await until(() => workers.every((w) => w.exited), nowMs() + 5_000);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    killAll();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(workers.map((w) => w.exitedPromise)), new Promise((r) => (timer = setTimeout(r, 5_000)))]);
    clearTimeout(timer);
    selfRss.close();
  }
  flushSeconds(true);

  for (const w of workers) {
    if (w.fatal) errors.push(`worker ${w.seg.index} failed: ${w.fatal.split('\n').slice(0, 3).join(' | ')}`);
    else if (w.final === null) {
      const how = w.exitSignal ? `signal ${w.exitSignal}` : `code ${w.exitCode}`;
      const tail = w.stderr.trim().split('\n').slice(-3).join(' | ');
      errors.push(`worker ${w.seg.index} exited (${how}) without its final report${tail ? `: ${tail}` : ''}`);
    }
  }
  return aggregate(cfg, {
    workers,
    segs,
    errors,
    startedAtIso,
    origin,
    cpuStart,
    timeseries,
    rssBytesMax,
    cpuPctMax,
    measureStart,
    scheduleEnd,
  });
}

interface AggregateInput {
  workers: WorkerHandle[];
  segs: Segment[];
  errors: string[];
  startedAtIso: string;
  origin: number;
  cpuStart: NodeJS.CpuUsage;
  timeseries: TimePoint[];
  rssBytesMax: number;
  cpuPctMax: number;
  measureStart: number;
  scheduleEnd: number;
}

function aggregate(cfg: ResolvedFleetOptions, x: AggregateInput): FleetResult {
  const finals = x.workers.map((w) => w.final).filter((f): f is WorkerFinal => f !== null);
  const failuresByKind: Record<string, number> = {};
  let reached = 0;
  let closedEarly = 0;
  const notWhole: number[] = [];
  for (const w of x.workers) {
    const f = w.final;
    if (f) {
      reached += f.sockets.reached;
      closedEarly += f.sockets.closedEarly;
      mergeCounts(failuresByKind, f.sockets.failuresByKind);
      notWhole.push(...f.notWholeUsers);
    } else {
      if (w.connected) {
        reached += w.connected.reached;
        mergeCounts(failuresByKind, w.connected.failuresByKind);
      } else failuresByKind['worker-failed'] = (failuresByKind['worker-failed'] ?? 0) + w.seg.count;
      for (let u = w.seg.firstUser; u < w.seg.firstUser + w.seg.count; u++) notWhole.push(u);
    }
  }
  const hist = (pick: (f: WorkerFinal) => string): Histogram => mergeEncoded(finals.map(pick));
  const lag = hist((f) => f.hist.lag);
  const updates = { sent: 0, acked: 0, errored: 0, unanswered: 0 };
  const byCode: Record<string, number> = {};
  const byKind: Record<string, number> = {};
  let duplicate = 0;
  let outOfOrder = 0;
  let cpuSec = 0;
  let eld = 0;
  const acked: Ledger['acked'] = [];
  const errored: Ledger['errored'] = [];
  const unanswered: Ledger['unanswered'] = [];
  for (const f of finals) {
    updates.sent += f.updates.sent;
    updates.acked += f.updates.acked;
    updates.errored += f.updates.errored;
    updates.unanswered += f.updates.unanswered;
    mergeCounts(byCode, f.errorsByCode);
    mergeCounts(byKind, f.errorsByKind);
    duplicate += f.duplicate;
    outOfOrder += f.outOfOrder;
    cpuSec += f.cpuSec;
    eld = Math.max(eld, f.eventLoopDelayMsP99);
    for (const a of f.acked) acked.push(a);
    for (const e of f.errored) errored.push(e);
    for (const u of f.unanswered) unanswered.push(u);
  }
  const join = joinDelivery({
    firstUser: cfg.firstUser,
    connections: cfg.connections,
    perBoard: cfg.perBoard,
    notWholeUsers: notWhole,
    acked,
    errored,
    seen: finals.map((f) => f.seen),
    duplicate,
    outOfOrder,
  });
  if (join.seqConflicts > 0) byKind['seq-conflict'] = (byKind['seq-conflict'] ?? 0) + join.seqConflicts;
  const total = Object.values(byCode).reduce((a, b) => a + b, 0) + Object.values(byKind).reduce((a, b) => a + b, 0);
  const own = process.cpuUsage(x.cpuStart);
  cpuSec += (own.user + own.system) / 1e6;
  const rssFallback = finals.reduce((n, f) => n + f.rssBytesMax, 0);
  const lagMsP99 = percentileMs(lag, 99);

  // The guard looks at the seconds wholly inside the measured window.
  const measuredSeconds: number[] = [];
  if (Number.isFinite(x.measureStart)) {
    for (let t = Math.ceil((x.measureStart - x.origin) / 1000); (t + 1) * 1000 + x.origin <= x.scheduleEnd; t++) measuredSeconds.push(t);
  }
  const guardReasons = evaluateGuard(
    {
      asked: cfg.connections,
      reached,
      failuresByKind,
      lagMsP99,
      workers: x.workers.map((w) => ({
        index: w.seg.index,
        cpuPctBySecond: measuredSeconds.map((t) => w.cpuByT.get(t)).filter((v): v is number => v !== undefined),
        eventLoopDelayMsP99: w.final?.eventLoopDelayMsP99 ?? 0,
      })),
    },
    cfg.guard,
  );
  const status: RunStatus = x.errors.length > 0 ? 'errored' : guardReasons.length > 0 ? 'invalid' : 'ok';
  const reasons = [...x.errors, ...guardReasons];
  const examples = finals.flatMap((f) => f.examples).slice(0, 10);

  const { ca, plan, ...rest } = cfg;
  const config: Record<string, unknown> = {
    ...rest,
    ca: ca !== undefined ? 'provided' : null,
    sourceAddressSpread: plan.addressSpread,
    segments: x.segs.map((s) => ({ worker: s.index, firstUser: s.firstUser, count: s.count })),
    node: process.version,
  };
  if (examples.length > 0) config.errorExamples = examples;

  const result: FleetResult = {
    schemaVersion: 1,
    status,
    reasons,
    config,
    window: {
      warmupSec: cfg.warmupSec,
      durationSec: cfg.durationSec,
      startedAtIso: x.startedAtIso,
      wallSec: Math.round(nowMs() - x.origin) / 1000,
      ...(measuredSeconds.length > 0 ? { measuredT: { from: measuredSeconds[0]!, to: measuredSeconds[measuredSeconds.length - 1]! } } : {}),
    },
    sockets: { asked: cfg.connections, reached, failed: cfg.connections - reached, failuresByKind, closedEarly },
    latency: {
      connectMs: latencyStat(hist((f) => f.hist.connect)),
      ackMs: { ...latencyStat(hist((f) => f.hist.ack)), uncorrected: latencyStat(hist((f) => f.hist.ackUncorrected)) },
      fanoutMs: { ...latencyStat(hist((f) => f.hist.fanout)), uncorrected: latencyStat(hist((f) => f.hist.fanoutUncorrected)) },
      recipients: recipientsReport(finals.map((f) => f.samples)),
    },
    drift: {
      windowSec: driftWindowFor(cfg.durationSec * 1000) / 1000,
      ackMs: { first: latencyStat(hist((f) => f.hist.ackFirst)), last: latencyStat(hist((f) => f.hist.ackLast)) },
      fanoutMs: { first: latencyStat(hist((f) => f.hist.fanoutFirst)), last: latencyStat(hist((f) => f.hist.fanoutLast)) },
    },
    updates,
    delivery: join.report,
    errors: { total, byCode, byKind },
    fleet: {
      workers: cfg.workers,
      nodeFlags: cfg.nodeFlags,
      cpuSec: Math.round(cpuSec * 1000) / 1000,
      rssBytesMax: x.rssBytesMax > 0 ? x.rssBytesMax : rssFallback,
      lagMsP99,
      eventLoopDelayMsP99: eld,
      cpuPctMax: x.cpuPctMax,
    },
    timeseries: x.timeseries,
  };
  if (cfg.ledgerFile !== undefined) {
    const ledger: Ledger = { acked, errored, unanswered, seen: join.ledgerSeen };
    writeFileSync(cfg.ledgerFile, JSON.stringify(ledger));
    result.ledgerFile = cfg.ledgerFile;
  }
  return result;
}

/** Decodes a LatencyStat's histogram (µs), e.g. to merge results of several runs. */
export function histogramOf(stat: { histogram: string }): Histogram {
  return decodeHistogram(stat.histogram);
}
