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
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Clock, FleetResult, Ledger, RunStatus, SegmentInfo, TimePoint } from '../model/fleet-result.js';
import { nowMs } from '../protocol/clock.js';
import { joinDelivery } from './delivery.js';
import { driftWindowFor } from './drift.js';
import { evaluateGuard } from './guard.js';
import { decodeHistogram, latencyStat, mergeEncoded, percentileMs, type Histogram } from './histogram.js';
import { addSockets, addUpdates, appendLedger, emptySocketTotals, emptyUpdateTotals, mergeCounts } from './join.js';
import type { WorkerFinal, WorkerInit } from './ipc.js';
import { resolveFleetOptions, type FleetOptions, type ResolvedFleetOptions } from './options.js';
import { RssReader } from './procstat.js';
import { recipientsReport } from './sampling.js';
import { SecondsAggregator } from './seconds.js';
import { serverGoneReason } from './vanished.js';
import { FleetWorker } from './worker-handle.js';
import { boardsOf, DEFAULT_CARDS_PER_BOARD, readBoardCards, type CardPlan, type CardSource } from './board-cards.js';

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
  /**
   * Called as the run enters each phase, in order: connect (workers spawned), warmup (the schedule
   * starts, even with no warm-up), measure, drain (the last scheduled send is past). Not called for
   * phases a failed run never reaches. Unlike `onSecond`'s `phase` (the phase at the middle of a
   * second), these are the coordinator's own transitions: a hook can act on them exactly.
   */
  onPhase?: (phase: FleetPhase) => void;
  /** Aborting kills every worker; runFleet then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called once when the schedule starts, with its times on the shared clock (ms): where a fault's `atSec` lands. */
  onSchedule?: (w: ScheduleTimes) => void;
  /**
   * Holds the schedule's start until other fleets (segments on other hosts) are ready too: called
   * once every worker has connected; resolves to the wall time (ms since the epoch) at which the
   * schedule starts, or null for at once. It must settle within `maxWaitMs` (the workers' own hard
   * deadline allows for it); a rejection ends the run `errored` with its message.
   */
  startGate?: { maxWaitMs: number; wait: (signal?: AbortSignal) => Promise<number | null> };
}

/** The fleet's times on the shared clock (protocol/clock.ts nowMs), ms. */
export interface ScheduleTimes {
  /** t = 0 of the time series. */
  originMs: number;
  /** The schedule's origin (warm-up starts). */
  t0Ms: number;
  /** The measured window: [measureStartMs, scheduleEndMs). */
  measureStartMs: number;
  scheduleEndMs: number;
}

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

function abortError(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r;
  const e = new Error('the fleet run was aborted');
  e.name = 'AbortError';
  return e;
}

/** The clock every latency of this fleet is measured on (protocol/clock.ts), and the kernel boot it belongs to. */
export function fleetClock(bootIdFile = '/proc/sys/kernel/random/boot_id'): Clock {
  let bootId: string | null = null;
  try {
    bootId = readFileSync(bootIdFile, 'utf8').trim() || null;
  } catch {
    bootId = null;
  }
  return { source: 'CLOCK_MONOTONIC (process.hrtime.bigint)', bootId };
}

function tasksetPid(cpus: string, pid: number): Promise<void> {
  return new Promise((res, rej) => {
    execFile('taskset', ['-pc', cpus, String(pid)], { timeout: 5000 }, (err, _out, stderr) => {
      if (err) rej(new Error(`taskset -pc ${cpus} ${pid} failed: ${stderr.trim() || err.message}`));
      else res();
    });
  });
}

/**
 * One run of the fleet: the deadlines, the workers, the per-second series, and the phases
 * (connect, schedule, drain, finish), each a bounded wait on what the workers report.
 */
class FleetRun {
  readonly startedAtIso = new Date().toISOString();
  readonly origin = nowMs();
  /** Wall time of `origin`, ms since the epoch: only to align segments' seconds and starts across hosts, never a latency. */
  readonly originEpochMs = Date.now();
  /** Wall time the schedule started (ms since the epoch), and whether a start gate set it. */
  startEpochMs: number | null = null;
  startedBy: 'barrier' | 'now' = 'now';
  readonly cpuStart = process.cpuUsage();
  private readonly selfRss = new RssReader('self');
  readonly errors: string[] = [];
  readonly workers: FleetWorker[] = [];
  readonly seconds: SecondsAggregator;
  private aborted = false;
  private t0: number | null = null;
  measureStart = Infinity;
  scheduleEnd = Infinity;
  private readonly expectedConnectMs: number;
  private readonly connectDeadline: number;
  private readonly windowMs: number;
  private readonly drainMs: number;
  private wake: (() => void) | null = null;

  constructor(
    readonly cfg: ResolvedFleetOptions,
    private readonly hooks: FleetHooks,
    readonly cards: { plan: CardPlan; source: CardSource },
  ) {
    const perWorkerRate = cfg.connectRatePerSec / cfg.workers;
    const biggest = cfg.plan.segments.reduce((m, s) => Math.max(m, s.count), 0);
    this.expectedConnectMs = (biggest / perWorkerRate) * 1000;
    this.connectDeadline = this.origin + SPAWN_MS + this.expectedConnectMs + cfg.handshakeTimeoutMs + 2_000;
    this.windowMs = (cfg.warmupSec + cfg.durationSec) * 1000;
    this.drainMs = cfg.drainSec * 1000;
    this.seconds = new SecondsAggregator(
      (p) => this.onPoint(p),
      () => this.selfRss.read() ?? 0,
      cfg.segment !== undefined,
    );
  }

  /** The worker exits by itself at this time whatever happens (no orphans). */
  private get hardDeadline(): number {
    const gate = this.hooks.startGate?.maxWaitMs ?? 0;
    return this.connectDeadline + STOP_CONNECT_MS + gate + START_LEAD_MS + this.windowMs + this.drainMs + FINAL_MS + 10_000;
  }

  private phaseAt(ms: number): FleetPhase {
    return this.t0 === null || ms < this.t0 ? 'connect' : ms < this.measureStart ? 'warmup' : ms < this.scheduleEnd ? 'measure' : 'drain';
  }

  private onPoint(p: TimePoint): void {
    if (!this.hooks.onSecond) return;
    const now = nowMs();
    const timeLeftMs =
      this.t0 === null
        ? Math.max(0, this.origin + this.expectedConnectMs - now) + this.windowMs + this.drainMs
        : Math.max(0, this.scheduleEnd + this.drainMs - now);
    try {
      this.hooks.onSecond({
        ...p,
        elapsedSec: p.t + 1,
        phase: this.phaseAt(this.origin + (p.t + 0.5) * 1000),
        timeLeftSec: Math.round(timeLeftMs / 1000),
        connections: this.cfg.connections,
      });
    } catch {
      /* a failing hook must not break the run */
    }
  }

  private liveIndexes(): number[] {
    return this.workers.filter((w) => w.live).map((w) => w.index);
  }

  /** Wakes the sequential flow (something changed) and emits the seconds every live worker has ticked. */
  private poke = (): void => {
    this.seconds.flush(false, this.liveIndexes());
    const w = this.wake;
    this.wake = null;
    w?.();
  };

  /** Waits until `pred` holds (true) or the deadline passes (false); throws when aborted. */
  private async until(pred: () => boolean, deadline: number): Promise<boolean> {
    for (;;) {
      if (this.aborted) throw abortError(this.hooks.signal!);
      if (pred()) return true;
      const left = deadline - nowMs();
      if (left <= 0) return false;
      await new Promise<void>((res) => {
        const t = setTimeout(res, Math.min(left, 1000));
        this.wake = () => {
          clearTimeout(t);
          res();
        };
      });
    }
  }

  private broken = (): boolean => this.workers.some((w) => w.broken);

  /** Tells the hook the run entered `phase`; a failing hook must not break the run. */
  private enter(phase: FleetPhase): void {
    try {
      this.hooks.onPhase?.(phase);
    } catch {
      /* a failing hook must not break the run */
    }
  }

  abort(): void {
    this.aborted = true;
    this.killAll();
    this.poke();
  }

  killAll(): void {
    for (const w of this.workers) w.kill();
  }

  /** A worker's part of the card plan: the layout, or the lists of its own boards. */
  private cardsOf(firstUser: number, count: number): Pick<WorkerInit, 'cardsPerBoard' | 'boardCards'> {
    const p = this.cards.plan;
    if (p.kind === 'layout') return { cardsPerBoard: p.cardsPerBoard };
    const boardCards: Array<[number, number[]]> = [];
    for (const b of boardsOf(firstUser, count, this.cfg.perBoard)) {
      const cards = p.byBoard.get(b);
      if (cards) boardCards.push([b, cards]);
    }
    return { cardsPerBoard: DEFAULT_CARDS_PER_BOARD, boardCards };
  }

  /** Forks the workers and gives each its segment; pins them when asked. */
  async spawn(): Promise<void> {
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    delete env.NODE_OPTIONS;
    const cfg = this.cfg;
    for (const seg of cfg.plan.segments) {
      const w = new FleetWorker(seg, cfg.nodeFlags, env, (_w, m) => this.seconds.tick(m, this.liveIndexes()), this.poke);
      this.workers.push(w);
      const init: WorkerInit = {
        type: 'init',
        index: seg.index,
        firstUser: seg.firstUser,
        count: seg.count,
        fleetFirstUser: cfg.firstUser,
        urls: cfg.urls,
        perBoard: cfg.perBoard,
        ...this.cardsOf(seg.firstUser, seg.count),
        updatesPerUserPerMin: cfg.updatesPerUserPerMin,
        rateSteps: cfg.rateSteps,
        arrival: cfg.arrival,
        seed: cfg.seed,
        sampleEvery: cfg.sampleEvery,
        idPrefix: cfg.idPrefix,
        sourceAddresses: cfg.sourceAddresses,
        connectRatePerSec: cfg.connectRatePerSec / cfg.workers,
        handshakeTimeoutMs: cfg.handshakeTimeoutMs,
        originMs: this.origin,
        hardDeadlineMs: this.hardDeadline,
        reconnect: cfg.reconnect,
        stalls: cfg.stalls.map((st) => ({ atMs: st.atSec * 1000, durationMs: st.durationSec * 1000, fraction: st.fraction })),
        timedLedger: cfg.faultsScheduled,
      };
      if (cfg.ca !== undefined) init.ca = cfg.ca;
      w.tell(init);
    }
    this.hooks.onWorkers?.(this.workers.map((w) => w.child.pid ?? -1).filter((p) => p > 0));
    this.enter('connect');
    if (cfg.cpus !== undefined) {
      try {
        for (const w of this.workers) if (w.child.pid) await tasksetPid(cfg.cpus, w.child.pid);
      } catch (e) {
        this.errors.push((e as Error).message);
      }
    }
  }

  /** Every worker connects its users by the deadline (then pending handshakes are abandoned). True when the schedule can start. */
  async connect(): Promise<boolean> {
    const allConnected = (): boolean => this.workers.every((w) => w.connected !== null);
    let ok = this.errors.length === 0 && (await this.until(() => allConnected() || this.broken(), this.connectDeadline));
    if (!ok && this.errors.length === 0) {
      for (const w of this.workers) if (!w.connected) w.tell({ type: 'stop-connect' });
      ok = await this.until(() => allConnected() || this.broken(), nowMs() + STOP_CONNECT_MS);
      if (!ok)
        this.errors.push(
          `the workers did not finish connecting by the deadline (${Math.round((this.connectDeadline - this.origin) / 1000)} s + ${STOP_CONNECT_MS / 1000} s)`,
        );
    }
    const reachedNow = this.workers.reduce((n, w) => n + (w.connected?.reached ?? 0), 0);
    if (ok && !this.broken() && reachedNow === 0) {
      const kinds: Record<string, number> = {};
      for (const w of this.workers) if (w.connected) mergeCounts(kinds, w.connected.failuresByKind);
      this.errors.push(
        `no socket reached the server at ${this.cfg.urls.join(', ')} (${
          Object.entries(kinds)
            .map(([k, n]) => `${k}=${n}`)
            .join(', ') || 'no answer'
        })`,
      );
    }
    return ok && !this.broken() && this.errors.length === 0;
  }

  /** The open-loop schedule: starts every worker at one t0 and waits out the window. */
  async schedule(): Promise<void> {
    let lead = START_LEAD_MS;
    const gate = this.hooks.startGate;
    if (gate) {
      let at: number | null;
      try {
        at = await gate.wait(this.hooks.signal);
      } catch (e) {
        if (this.aborted) throw abortError(this.hooks.signal!);
        this.errors.push((e as Error).message);
        return;
      }
      if (this.aborted) throw abortError(this.hooks.signal!);
      if (this.broken()) return;
      if (at !== null) {
        lead = Math.max(START_LEAD_MS, at - Date.now());
        this.startedBy = 'barrier';
      }
    }
    const t0 = nowMs() + lead;
    this.startEpochMs = Math.round(Date.now() + lead);
    this.t0 = t0;
    this.measureStart = t0 + this.cfg.warmupSec * 1000;
    this.scheduleEnd = t0 + this.windowMs;
    for (const w of this.workers) w.tell({ type: 'start', t0, warmupMs: this.cfg.warmupSec * 1000, measureMs: this.cfg.durationSec * 1000 });
    try {
      this.hooks.onSchedule?.({ originMs: this.origin, t0Ms: t0, measureStartMs: this.measureStart, scheduleEndMs: this.scheduleEnd });
    } catch {
      /* a failing hook must not break the run */
    }
    this.enter('warmup');
    if (await this.until(this.broken, this.measureStart)) return;
    this.enter('measure');
    if (await this.until(this.broken, this.scheduleEnd)) return;
    this.enter('drain');
  }

  /** Until every answer is in (plus a grace for the last broadcasts), at most drainSec. */
  async drain(): Promise<void> {
    if (this.broken() || this.t0 === null) return;
    const drainDeadline = this.scheduleEnd + this.drainMs;
    if (await this.until(() => this.broken() || this.workers.every((w) => w.drained), drainDeadline)) {
      // Broadcasts can trail the last ack (deep send buffers, per-request's polling): keep waiting
      // while the workers' per-second ticks still report deliveries, within the drain deadline,
      // so slow is not reported as missing.
      let last = -1;
      while (!this.broken() && nowMs() < drainDeadline && this.seconds.deliveredInTicks !== last) {
        last = this.seconds.deliveredInTicks;
        await this.until(this.broken, Math.min(drainDeadline, nowMs() + DRAIN_GRACE_MS + 100));
      }
    }
  }

  /** Asks for the final reports and waits for them and for the workers to exit. */
  async finish(): Promise<void> {
    for (const w of this.workers) w.tell({ type: 'finish' });
    const gotFinals = await this.until(() => this.workers.every((w) => w.final !== null || w.exited), nowMs() + FINAL_MS);
    if (!gotFinals) this.errors.push(`worker final reports did not arrive within ${FINAL_MS / 1000} s`);
    await this.until(() => this.workers.every((w) => w.exited), nowMs() + 5_000);
  }

  /** Kills what is left, waits (bounded) for every worker to exit, releases the /proc reader. */
  async cleanUp(): Promise<void> {
    this.killAll();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.workers.map((w) => w.exitedPromise)), new Promise((r) => (timer = setTimeout(r, 5_000)))]);
    clearTimeout(timer);
    this.selfRss.close();
  }
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
  const cards = await planCards(cfg);
  if (signal?.aborted) throw abortError(signal);
  const run = new FleetRun(cfg, hooks, cards);
  const onAbort = (): void => run.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await run.spawn();
    if (await run.connect()) {
      await run.schedule();
      await run.drain();
    }
    await run.finish();
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await run.cleanUp();
  }
  run.seconds.flush(true);
  for (const w of run.workers) {
    const why = w.failure();
    if (why) run.errors.push(why);
  }
  return aggregate(cfg, run);
}

/**
 * The cards the fleet will update: read from the server (GET /boards/:id) when any update is
 * scheduled; --cards-per-board is checked against them, or used alone for a server without the
 * route. Throws FleetConfigError before any socket opens when they cannot be used.
 */
async function planCards(cfg: ResolvedFleetOptions): Promise<{ plan: CardPlan; source: CardSource }> {
  const sends = cfg.updatesPerUserPerMin > 0 || cfg.rateSteps.some((s) => s.updatesPerUserPerMin > 0);
  if (!sends) {
    const m = cfg.cardsPerBoard ?? DEFAULT_CARDS_PER_BOARD;
    return {
      plan: { kind: 'layout', cardsPerBoard: m },
      source: { source: cfg.cardsPerBoard ? 'flag' : 'default', cardsPerBoard: m, boards: 0, note: 'no update is scheduled' },
    };
  }
  return readBoardCards({
    urls: cfg.urls,
    boards: boardsOf(cfg.firstUser, cfg.connections, cfg.perBoard),
    ...(cfg.cardsPerBoard !== undefined ? { cardsPerBoard: cfg.cardsPerBoard } : {}),
    timeoutMs: cfg.handshakeTimeoutMs,
    ...(cfg.ca !== undefined ? { ca: cfg.ca } : {}),
  });
}

/** The workers' final reports summed: sockets, updates, errors, the ledger and the delivery join. */
function joinFinals(cfg: ResolvedFleetOptions, workers: readonly FleetWorker[]) {
  const finals = workers.map((w) => w.final).filter((f): f is WorkerFinal => f !== null);
  const sockets = emptySocketTotals();
  const notWhole: number[] = [];
  for (const w of workers) {
    const f = w.final;
    if (f) {
      addSockets(sockets, f.sockets);
      notWhole.push(...f.notWholeUsers);
    } else {
      // A worker that failed: what it reached (if it said), and none of its users were whole.
      if (w.connected) addSockets(sockets, w.connected);
      else addSockets(sockets, { reached: 0, failuresByKind: { 'worker-failed': w.seg.count } });
      for (let u = w.seg.firstUser; u < w.seg.firstUser + w.seg.count; u++) notWhole.push(u);
    }
  }
  const { reached, failuresByKind, closedEarly, closedEarlyByCode, sendsOnClosed, stalled, reconnects } = sockets;
  const updates = emptyUpdateTotals();
  const byCode: Record<string, number> = {};
  const byKind: Record<string, number> = {};
  let duplicate = 0;
  let outOfOrder = 0;
  let cpuSec = 0;
  let framesReceived = 0;
  let eld = 0;
  const ledger: Omit<Ledger, 'seen'> = { acked: [], errored: [], unanswered: [] };
  for (const f of finals) {
    addUpdates(updates, f.updates);
    mergeCounts(byCode, f.errorsByCode);
    mergeCounts(byKind, f.errorsByKind);
    duplicate += f.duplicate;
    outOfOrder += f.outOfOrder;
    cpuSec += f.cpuSec;
    // every server frame: broadcasts, acks and error frames
    framesReceived += f.receivedFrames + f.updates.acked + f.updates.errored;
    eld = Math.max(eld, f.eventLoopDelayMsP99);
    appendLedger(ledger, f);
  }
  const join = joinDelivery({
    firstUser: cfg.firstUser,
    connections: cfg.connections,
    perBoard: cfg.perBoard,
    notWholeUsers: notWhole,
    acked: ledger.acked,
    errored: ledger.errored,
    seen: finals.map((f) => f.seen),
    duplicate,
    outOfOrder,
  });
  if (join.seqConflicts > 0) byKind['seq-conflict'] = (byKind['seq-conflict'] ?? 0) + join.seqConflicts;
  const hist = (pick: (f: WorkerFinal) => string): Histogram => mergeEncoded(finals.map(pick));
  const events = { closedEarlyByCode, sendsOnClosed, reconnects, stalled };
  return { finals, failuresByKind, reached, closedEarly, events, updates, byCode, byKind, cpuSec, framesReceived, eld, ledger, join, hist };
}

/** The FleetResult of a finished run: the joined finals, the guard's verdict, the series, the ledger file. */
function aggregate(cfg: ResolvedFleetOptions, x: FleetRun): FleetResult {
  const j = joinFinals(cfg, x.workers);
  const { finals, hist } = j;
  const total = Object.values(j.byCode).reduce((a, b) => a + b, 0) + Object.values(j.byKind).reduce((a, b) => a + b, 0);
  const own = process.cpuUsage(x.cpuStart);
  const cpuSec = j.cpuSec + (own.user + own.system) / 1e6;
  const rssFallback = finals.reduce((n, f) => n + f.rssBytesMax, 0);
  const lagMsP99 = percentileMs(
    hist((f) => f.hist.lag),
    99,
  );

  // The guard looks at the seconds wholly inside the measured window.
  const measuredSeconds: number[] = [];
  if (Number.isFinite(x.measureStart)) {
    for (let t = Math.ceil((x.measureStart - x.origin) / 1000); (t + 1) * 1000 + x.origin <= x.scheduleEnd; t++) measuredSeconds.push(t);
  }
  const guardReasons = evaluateGuard(
    {
      asked: cfg.connections,
      reached: j.reached,
      failuresByKind: j.failuresByKind,
      lagMsP99,
      unsent: j.byKind['unsent-at-finish'] ?? 0,
      workers: x.workers.map((w) => ({
        index: w.index,
        cpuPctBySecond: measuredSeconds.map((t) => x.seconds.cpuByWorker.get(w.index)?.get(t)).filter((v): v is number => v !== undefined),
        eventLoopDelayMsP99: w.final?.eventLoopDelayMsP99 ?? 0,
      })),
    },
    cfg.guard,
  );
  // A server that went away with no fault scheduled: not a measurement of the server under load.
  const gone = serverGoneReason(
    { reached: j.reached, closedEarlyByCode: j.events.closedEarlyByCode, sendsOnClosed: j.events.sendsOnClosed },
    cfg.faultsScheduled,
  );
  if (gone) x.errors.push(gone);
  const status: RunStatus = x.errors.length > 0 ? 'errored' : guardReasons.length > 0 ? 'invalid' : 'ok';
  const reasons = [...x.errors, ...guardReasons];
  const examples = finals.flatMap((f) => f.examples).slice(0, 10);

  const { ca, plan, ...rest } = cfg;
  const config: Record<string, unknown> = {
    ...rest,
    cardsPerBoard: x.cards.source.cardsPerBoard,
    cards: x.cards.source,
    ca: ca !== undefined ? 'provided' : null,
    sourceAddressSpread: plan.addressSpread,
    segments: plan.segments.map((s) => ({ worker: s.index, firstUser: s.firstUser, count: s.count })),
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
    sockets: {
      asked: cfg.connections,
      reached: j.reached,
      failed: cfg.connections - j.reached,
      failuresByKind: j.failuresByKind,
      closedEarly: j.closedEarly,
      closedEarlyByCode: j.events.closedEarlyByCode,
      sendsOnClosed: j.events.sendsOnClosed,
      ...(cfg.reconnect ? { reconnects: j.events.reconnects } : {}),
      ...(j.events.stalled > 0 || cfg.stalls.length > 0 ? { stalled: j.events.stalled } : {}),
    },
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
    updates: j.updates,
    delivery: j.join.report,
    errors: { total, byCode: j.byCode, byKind: j.byKind },
    fleet: {
      workers: cfg.workers,
      nodeFlags: cfg.nodeFlags,
      cpuSec: Math.round(cpuSec * 1000) / 1000,
      framesReceived: j.framesReceived,
      rssBytesMax: x.seconds.rssBytesMax > 0 ? x.seconds.rssBytesMax : rssFallback,
      lagMsP99,
      eventLoopDelayMsP99: j.eld,
      cpuPctMax: x.seconds.cpuPctMax,
    },
    timeseries: x.seconds.timeseries,
  };
  const ledger: Ledger = { ...j.ledger, seen: j.join.ledgerSeen };
  if (cfg.ledgerFile !== undefined) {
    writeFileSync(cfg.ledgerFile, JSON.stringify(ledger));
    result.ledgerFile = cfg.ledgerFile;
  }
  if (cfg.segment !== undefined) {
    result.segment = segmentInfo(cfg, x);
    result.ledger = ledger;
  }
  return result;
}

/** What a segment's result says of itself (see SegmentInfo). */
function segmentInfo(cfg: ResolvedFleetOptions, x: FleetRun): SegmentInfo {
  const g = cfg.segment!;
  return {
    index: g.index,
    of: g.of,
    boards: { first: g.firstBoard, last: g.lastBoard, count: g.boards },
    users: { first: g.firstUser, count: g.users },
    fleet: { connections: g.fleetConnections, perBoard: cfg.perBoard },
    host: hostname(),
    clock: fleetClock(),
    originEpochMs: x.originEpochMs,
    startEpochMs: x.startEpochMs,
    start: x.startedBy,
    scenario: cfg.scenario ?? null,
  };
}

/** Decodes a LatencyStat's histogram (µs), e.g. to merge results of several runs. */
export function histogramOf(stat: { histogram: string }): Histogram {
  return decodeHistogram(stat.histogram);
}
