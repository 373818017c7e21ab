/**
 * A load-generator worker's sockets and schedule: one WebSocket per user of a contiguous segment of
 * the fleet. Connects at the given rate (handshake timeout, failures classified, nothing retried),
 * then drives the open-loop schedule with ONE timer over a time-ordered heap, and reports through
 * `send` (the IPC channel of worker.ts, the process entry). What it sees is recorded by a Recorder
 * (recorder.ts: latency and accounting, pure); this class owns the sockets, the timers and the clock.
 *
 * Life: start connecting -> "connected" -> start(t0) -> schedule -> "drained" once nothing is
 * pending after the last scheduled send -> finish -> final report, graceful close. Every second,
 * aligned on the fleet's origin, a "tick" with the second's counts and histograms.
 *
 * With `reconnect` (a run with faults), a socket the server closed is opened again after a jittered
 * exponential backoff (full jitter: uniform in [0, min(5 s, 200 ms × 2^attempt)]), until the schedule
 * ends; updates due meanwhile are not sent (counted as sends on closed sockets). With `stalls`, an
 * evenly spread fraction of the users stop reading (ws pause) for a while: slow consumers.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import WebSocket from 'ws';
import { nowMs, round3 } from '../protocol/clock.js';
import { boardOfUser } from '../protocol/layout.js';
import type { Column } from '../protocol/messages.js';
import { serializeUpdate } from '../protocol/serialize.js';
import { parseServerFrame } from '../protocol/parse.js';
import { driftWindowFor } from './drift.js';
import { classifyConnectError } from './failures.js';
import { TimeHeap } from './heap.js';
import type { TickReport, WorkerFinal, WorkerInit, WorkerMessage, WorkerStart } from './ipc.js';
import { connectUrl, sourceAddressFor } from './plan.js';
import { RssReader } from './procstat.js';
import { Recorder } from './recorder.js';
import { drawUpdate, initUserSchedule, messageId, type ScheduleConfig, type UserSchedule } from './schedule.js';

const PENDING = 0;
const OPEN = 1;
const FAILED = 2;
const CLOSED = 3;

/** Reconnect backoff: the first cap and the largest, ms (full jitter below the cap). */
const RECONNECT_FIRST_MS = 200;
const RECONNECT_MAX_MS = 5000;

/** Whether user `user` is among an evenly spread `fraction` of the users (0.1: every tenth). */
export function stallsUser(user: number, fraction: number): boolean {
  return Math.floor((user + 1) * fraction) > Math.floor(user * fraction);
}

/** The reconnect delay before attempt `attempt` (0-based), ms: uniform in [0, min(max, first × 2^attempt)). */
export function reconnectDelayMs(attempt: number, random: number): number {
  return random * Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** Math.min(attempt, 16));
}

/** Most sends in one pump before yielding to I/O (receives, IPC) for a turn. */
const SEND_BUDGET = 2_000;
const ELD_RESOLUTION_MS = 10;

class User {
  ws: WebSocket | null = null;
  state = PENDING;
  /** Open when the schedule started (a candidate whole-window member). */
  whole = false;
  /** A socket of this user was reopened after the server closed it (never a whole-window member then). */
  reopened = false;
  /** A reconnect is pending or in progress. */
  reconnecting = false;
  /** Reconnect attempts since the socket was last open. */
  attempts = 0;
  /** Its socket does not read now (a slow consumer). */
  stalled = false;
  connectStart = 0;
  sched: UserSchedule | null = null;
  constructor(
    readonly idx: number,
    readonly user: number,
    readonly board: number,
  ) {}
}

interface WsWithUser extends WebSocket {
  wamiUser: User;
}

/** Event-loop delay p99 in ms, less the monitor's resolution (0 when empty). */
function eldP99(h: IntervalHistogram): number {
  const v = h.count > 0 ? Math.max(0, h.percentile(99) / 1e6 - ELD_RESOLUTION_MS) : 0;
  return Math.round(v * 1000) / 1000;
}

export class LoadWorker {
  private readonly users: User[];
  private readonly rec: Recorder;
  private finishing = false;
  // connect
  private connectTimer: NodeJS.Timeout | null = null;
  private nextToOpen = 0;
  private connectDone = 0;
  private connectedSent = false;
  // schedule
  private cfg: ScheduleConfig | null = null;
  private t0 = 0;
  private heap: TimeHeap | null = null;
  private pumpTimer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  private pumpIsImmediate = false;
  private scheduleDone = false;
  private drainedSent = false;
  // resources
  private readonly rss = new RssReader('self');
  private rssMax = 0;
  private readonly eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
  /** Event-loop delay over the measured window only (enabled at its start, disabled at its end). */
  private readonly eldWindow = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
  private cpuPrev = process.cpuUsage();
  private cpuPrevAt = nowMs();
  private readonly cpu0 = process.cpuUsage();
  private tickTimer: NodeJS.Timeout | null = null;
  private nextTickK = 1;
  // socket handlers, shared by every socket (`this` of ws is the socket)
  private readonly onOpen: (this: WebSocket) => void;
  private readonly onError: (this: WebSocket, err: Error) => void;
  private readonly onClose: (this: WebSocket, code: number) => void;
  private readonly onMessage: (this: WebSocket, data: WebSocket.RawData) => void;

  constructor(
    private readonly init: WorkerInit,
    /** Sends a message to the coordinator; `cb` when it is handed to the channel. */
    private readonly send: (m: WorkerMessage, cb?: () => void) => void,
  ) {
    this.users = Array.from({ length: init.count }, (_, k) => new User(k, init.firstUser + k, boardOfUser(init.firstUser + k, init.perBoard)));
    this.rec = new Recorder({ idPrefix: init.idPrefix, seed: init.seed, sampleEvery: init.sampleEvery, users: this.users, timedLedger: init.timedLedger });
    const self = this;
    this.onOpen = function (this: WebSocket) {
      const u = (this as WsWithUser).wamiUser;
      if (u.ws !== this || u.state !== PENDING) return;
      u.state = OPEN;
      if (u.reconnecting) {
        u.reconnecting = false;
        u.attempts = 0;
        self.rec.reconnect(true);
        return;
      }
      self.rec.connected(nowMs() - u.connectStart);
      self.connectDone++;
      self.maybeConnected();
    };
    this.onError = function (this: WebSocket, err: Error) {
      const u = (this as WsWithUser).wamiUser;
      if (u.ws !== this) return;
      if (u.state === PENDING && u.reconnecting) self.reconnectFailed(u, classifyConnectError(err));
      else if (u.state === PENDING) self.fail(u, classifyConnectError(err));
      else if (u.state === OPEN && !self.finishing) self.rec.kind('socket-error', err.message);
    };
    this.onClose = function (this: WebSocket, code: number) {
      const u = (this as WsWithUser).wamiUser;
      if (u.ws !== this) return;
      if (u.state === OPEN) {
        u.state = CLOSED;
        self.rec.closed(u.idx, code, !self.finishing);
        if (self.init.reconnect && !self.finishing && !self.scheduleDone) self.reconnectLater(u);
        else if (self.scheduleDone) self.maybeDrained();
      } else if (u.state === PENDING && u.reconnecting) {
        self.reconnectFailed(u, 'other');
      } else if (u.state === PENDING) {
        self.fail(u, 'other');
      }
    };
    this.onMessage = function (this: WebSocket, data: WebSocket.RawData) {
      if (self.finishing) return;
      const now = nowMs();
      const u = (this as WsWithUser).wamiUser;
      const r = parseServerFrame(data as Buffer);
      if (!r.ok) {
        self.rec.kind('protocol', r.message);
        return;
      }
      self.rec.frame(u.idx, r.msg, now);
      if (r.msg.type !== 'update' && self.scheduleDone) self.maybeDrained();
    };
  }

  // ---- reconnect ----

  /** Opens the user's socket again after a jittered backoff, unless the run is ending. */
  private reconnectLater(u: User): void {
    u.state = PENDING;
    u.reconnecting = true;
    u.reopened = true;
    u.ws = null;
    const delay = reconnectDelayMs(u.attempts++, Math.random());
    setTimeout(() => {
      if (this.finishing || this.scheduleDone) {
        u.state = CLOSED;
        u.reconnecting = false;
        return;
      }
      this.openSocket(u);
    }, delay).unref();
  }

  private reconnectFailed(u: User, kind: string): void {
    const ws = u.ws;
    if (ws) {
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.terminate();
    }
    this.rec.reconnect(false, kind);
    if (this.finishing || this.scheduleDone) {
      u.state = CLOSED;
      u.reconnecting = false;
      u.ws = null;
      return;
    }
    this.reconnectLater(u);
  }

  /** Starts the ticks and the connect phase. */
  begin(): void {
    this.eld.enable();
    this.armTick();
    if (this.users.length === 0) this.maybeConnected();
    else this.startConnecting();
  }

  // ---- connect ----

  private fail(u: User, kind: string): void {
    u.state = FAILED;
    this.rec.connectFailed(kind);
    this.connectDone++;
    this.maybeConnected();
  }

  private maybeConnected(): void {
    if (this.connectedSent || this.connectDone < this.users.length) return;
    this.connectedSent = true;
    this.send({
      type: 'connected',
      index: this.init.index,
      asked: this.users.length,
      reached: this.rec.reached,
      failuresByKind: { ...this.rec.failuresByKind },
    });
  }

  private openSocket(u: User): void {
    const i = this.init;
    u.connectStart = nowMs();
    const localAddress = sourceAddressFor(u.user, i.fleetFirstUser, i.sourceAddresses);
    const opts: WebSocket.ClientOptions = { perMessageDeflate: false, handshakeTimeout: i.handshakeTimeoutMs, maxPayload: 1 << 20 };
    if (localAddress !== undefined) opts.localAddress = localAddress;
    if (i.ca !== undefined) opts.ca = i.ca;
    let ws: WsWithUser;
    try {
      ws = new WebSocket(connectUrl(i.urls[(u.board - 1) % i.urls.length]!, u.board, u.user), opts) as WsWithUser;
    } catch (e) {
      this.fail(u, classifyConnectError(e));
      return;
    }
    ws.wamiUser = u;
    u.ws = ws;
    ws.on('open', this.onOpen);
    ws.on('error', this.onError);
    ws.on('close', this.onClose);
    ws.on('message', this.onMessage);
  }

  private startConnecting(): void {
    const rate = this.init.connectRatePerSec;
    const began = nowMs();
    // Never catch up in a burst: a late turn opens at most 20 ms worth of sockets, so a busy worker
    // slows its connect rate instead of stalling its event loop for seconds.
    const burst = Math.max(1, Math.ceil(rate * 0.02));
    const step = (): void => {
      const due = Math.min(this.users.length, Math.floor(((nowMs() - began) * rate) / 1000) + 1, this.nextToOpen + burst);
      while (this.nextToOpen < due) this.openSocket(this.users[this.nextToOpen++]!);
      if (this.nextToOpen >= this.users.length && this.connectTimer) {
        clearInterval(this.connectTimer);
        this.connectTimer = null;
      }
    };
    this.connectTimer = setInterval(step, 10);
    step();
  }

  /** The coordinator's connect deadline passed: every pending handshake is abandoned (a timeout). */
  stopConnecting(): void {
    if (this.connectTimer) {
      clearInterval(this.connectTimer);
      this.connectTimer = null;
    }
    for (const u of this.users) {
      if (u.state !== PENDING) continue;
      if (u.ws) {
        u.ws.removeAllListeners();
        u.ws.on('error', () => {});
        u.ws.terminate();
      }
      this.fail(u, 'timeout');
    }
    this.maybeConnected();
  }

  // ---- schedule ----

  private sendUpdate(u: User, n: number, card: number, column: Column, title: string, at: number): void {
    const ws = u.ws;
    if (ws === null || ws.readyState !== WebSocket.OPEN || u.state !== OPEN) {
      this.rec.sendOnClosed();
      return;
    }
    const sentAt = round3(nowMs());
    ws.send(serializeUpdate({ type: 'update', id: messageId(this.init.idPrefix, n), card, column, title, at, sentAt }));
    this.rec.sentUpdate(u.idx, n, at, sentAt);
  }

  private armPump(): void {
    if (this.pumpTimer !== null || this.finishing) return;
    const next = this.heap!.peekTime();
    if (next === Infinity) {
      this.scheduleDone = true;
      this.maybeDrained();
      return;
    }
    // Wake at or just after the next send is due, never before: a timer's 1 ms granularity costs
    // up to ~1 ms of schedule lag (measured, and far under the guard's bound), where spinning on
    // setImmediate through sub-millisecond gaps would burn CPU the server under test needs.
    const delay = next - nowMs();
    if (delay <= 0) {
      this.pumpIsImmediate = true;
      this.pumpTimer = setImmediate(this.pump);
    } else {
      this.pumpIsImmediate = false;
      this.pumpTimer = setTimeout(this.pump, Math.ceil(delay));
    }
  }

  private readonly pump = (): void => {
    this.pumpTimer = null;
    if (this.finishing) return;
    const h = this.heap!;
    const c = this.cfg!;
    let now = nowMs();
    let budget = SEND_BUDGET;
    while (h.peekTime() <= now) {
      if (budget-- === 0) break;
      const idx = h.pop();
      const u = this.users[idx]!;
      const s = u.sched!;
      const p = drawUpdate(c, s);
      this.sendUpdate(u, p.n, p.card, p.column, p.title, round3(this.t0 + p.offsetMs));
      if (s.next !== Infinity) h.push(this.t0 + s.next, idx);
      if ((budget & 63) === 0) now = nowMs();
    }
    this.armPump();
  };

  /** The coordinator's start: the schedule's origin t0, warm-up and measured window. */
  start(m: WorkerStart): void {
    const i = this.init;
    this.t0 = m.t0;
    const measureStart = round3(m.t0 + m.warmupMs);
    const measureEnd = round3(m.t0 + m.warmupMs + m.measureMs);
    this.rec.setWindow(measureStart, measureEnd, driftWindowFor(m.measureMs));
    const cfg: ScheduleConfig = {
      seed: i.seed,
      perBoard: i.perBoard,
      cardsPerBoard: i.cardsPerBoard,
      ...(i.boardCards ? { boardCards: new Map(i.boardCards) } : {}),
      updatesPerUserPerMin: i.updatesPerUserPerMin,
      arrival: i.arrival,
      windowMs: m.warmupMs + m.measureMs,
      steps: i.rateSteps.map((st) => ({ atMs: m.warmupMs + st.atSec * 1000, updatesPerUserPerMin: st.updatesPerUserPerMin })),
    };
    this.cfg = cfg;
    const now = nowMs();
    setTimeout(
      () => {
        if (this.finishing) return;
        this.eldWindow.reset();
        this.eldWindow.enable();
      },
      Math.max(0, measureStart - now),
    );
    setTimeout(() => this.eldWindow.disable(), Math.max(0, measureEnd - now));
    for (const st of i.stalls) {
      setTimeout(() => this.stall(st.fraction, st.durationMs), Math.max(0, measureStart + st.atMs - now)).unref();
    }
    const heap = new TimeHeap(this.users.length);
    for (const u of this.users) {
      u.whole = u.state === OPEN;
      u.sched = initUserSchedule(cfg, u.user);
      if (u.sched.next !== Infinity) heap.push(m.t0 + u.sched.next, u.idx);
    }
    this.heap = heap;
    this.armPump();
  }

  /** An evenly spread fraction of the open sockets stop reading for `durationMs` (slow consumers). */
  private stall(fraction: number, durationMs: number): void {
    if (this.finishing) return;
    const paused: Array<{ u: User; ws: WebSocket }> = [];
    for (const u of this.users) {
      if (u.state !== OPEN || !u.ws || !stallsUser(u.user, fraction)) continue;
      u.ws.pause();
      this.rec.stall(u.idx);
      u.stalled = true;
      paused.push({ u, ws: u.ws });
    }
    setTimeout(() => this.unstall(paused), durationMs).unref();
  }

  private unstall(paused: ReadonlyArray<{ u: User; ws: WebSocket }>): void {
    for (const { u, ws } of paused) {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CLOSING) ws.resume();
      if (u.ws === ws) u.stalled = false;
    }
  }

  private maybeDrained(): void {
    if (this.drainedSent || !this.scheduleDone || this.rec.pendingCount > 0) return;
    this.drainedSent = true;
    this.send({ type: 'drained', index: this.init.index });
  }

  // ---- ticks ----

  private cpuPctSinceLastTick(): number {
    const now = nowMs();
    const d = process.cpuUsage(this.cpuPrev);
    this.cpuPrev = process.cpuUsage();
    const el = now - this.cpuPrevAt;
    this.cpuPrevAt = now;
    return el > 0 ? Math.round(((d.user + d.system) / 1000 / el) * 1000) / 10 : 0;
  }

  private armTick(): void {
    const delay = this.init.originMs + this.nextTickK * 1000 - nowMs();
    this.tickTimer = setTimeout(this.onTick, Math.max(0, delay));
  }

  private readonly onTick = (): void => {
    const k = Math.max(this.nextTickK, Math.floor((nowMs() - this.init.originMs) / 1000));
    const eld = eldP99(this.eld);
    this.eld.reset();
    const r = this.rss.read();
    if (r !== null && r > this.rssMax) this.rssMax = r;
    const tick: TickReport = {
      type: 'tick',
      index: this.init.index,
      t: k - 1,
      ...this.rec.second(),
      cpuPct: this.cpuPctSinceLastTick(),
      eventLoopDelayMsP99: eld,
      rssBytes: r,
    };
    this.send(tick);
    this.nextTickK = k + 1;
    if (!this.finishing) this.armTick();
  };

  // ---- finish ----

  private finalReport(): WorkerFinal {
    // Updates scheduled in the window that the fleet never got to send (it fell behind): counted, not dropped.
    let unsent = 0;
    if (this.heap !== null && this.cfg !== null) {
      while (this.heap.size > 0) {
        const s = this.users[this.heap.pop()]!.sched!;
        while (s.next !== Infinity) {
          drawUpdate(this.cfg, s);
          unsent++;
        }
      }
    }
    const recorded = this.rec.final(
      nowMs(),
      (u) => {
        const x = this.users[u]!;
        return x.whole && x.state === OPEN && !x.reopened;
      },
      unsent,
    );
    const cpu = process.cpuUsage(this.cpu0);
    const r = this.rss.read();
    if (r !== null && r > this.rssMax) this.rssMax = r;
    return {
      type: 'final',
      index: this.init.index,
      ...recorded,
      cpuSec: Math.round((cpu.user + cpu.system) / 1000) / 1000,
      eventLoopDelayMsP99: eldP99(this.eldWindow),
      rssBytesMax: this.rssMax,
    };
  }

  /** The coordinator's finish: one last tick for the partial second, the final report, then a graceful close; `exit` when done. */
  finish(exit: (code: number) => void): void {
    if (this.finishing) return;
    // One last tick for the partial second, so the time series covers the drain.
    if (this.tickTimer) {
      clearTimeout(this.tickTimer);
      this.tickTimer = null;
      this.onTick();
    }
    this.finishing = true;
    // A stalled socket must read again to complete its close handshake.
    for (const u of this.users) if (u.stalled && u.ws) u.ws.resume();
    if (this.connectTimer) clearInterval(this.connectTimer);
    if (this.pumpTimer) {
      if (this.pumpIsImmediate) clearImmediate(this.pumpTimer as NodeJS.Immediate);
      else clearTimeout(this.pumpTimer as NodeJS.Timeout);
      this.pumpTimer = null;
    }
    const report = this.finalReport();
    this.send(report, () => this.closeAll(() => exit(0)));
  }

  get isFinishing(): boolean {
    return this.finishing;
  }

  private closeAll(done: () => void): void {
    let open = 0;
    const closed = (): void => {
      if (--open <= 0) done();
    };
    for (const u of this.users) {
      const ws = u.ws;
      if (!ws) continue;
      if (ws.readyState === WebSocket.OPEN) {
        open++;
        ws.once('close', closed);
        // A graceful close: the server closes the TCP connection first, so TIME_WAIT lands on its side
        // and this host's ephemeral ports are free again for the next run.
        ws.close(1000, 'fleet done');
      } else if (ws.readyState === WebSocket.CONNECTING) {
        ws.terminate();
      }
    }
    if (open === 0) done();
    setTimeout(() => {
      for (const u of this.users) if (u.ws && u.ws.readyState !== WebSocket.CLOSED) u.ws.terminate();
      setTimeout(done, 200).unref();
    }, 3000).unref();
  }

  /** Releases the monitors and the /proc descriptor (before the process exits). */
  release(): void {
    this.eld.disable();
    this.eldWindow.disable();
    this.rss.close();
  }
}
