/**
 * A load-generator worker: one Node process holding a contiguous segment of the fleet's users, one
 * WebSocket each. Started by the coordinator (child_process.fork, IPC); the same code can run a
 * segment of a larger fleet on another host (global user ids, `firstUser`).
 *
 * Life: init -> connect at the given rate (handshake timeout, failures classified, nothing retried)
 * -> "connected" -> start(t0) -> open-loop schedule driven by ONE timer over a time-ordered heap
 * -> "drained" once nothing is pending after the last scheduled send -> finish -> final report,
 * graceful close, exit. Every second (aligned on the fleet's origin) a small "tick" with counts and
 * encoded per-second histograms. The worker exits by itself at the hard deadline or when the
 * coordinator goes away.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import WebSocket from 'ws';
import { nowMs, round3 } from '../protocol/clock.js';
import { boardOfUser } from '../protocol/layout.js';
import { parseServerFrame } from '../protocol/parse.js';
import { serializeUpdate } from '../protocol/serialize.js';
import type { ClientUpdate } from '../protocol/messages.js';
import { classifyConnectError, closeKind } from './failures.js';
import { TimeHeap } from './heap.js';
import { encodeHistogram, newHistogram, recordMs } from './histogram.js';
import { driftWindowFor } from './drift.js';
import type { CoordinatorMessage, TickReport, WorkerFinal, WorkerInit, WorkerMessage, WorkerStart } from './ipc.js';
import { connectUrl, sourceAddressFor } from './plan.js';
import { RssReader } from './procstat.js';
import { isSampled, sampleKey } from './sampling.js';
import { drawUpdate, initUserSchedule, messageId, messageIndex, type ScheduleConfig, type UserSchedule } from './schedule.js';
import { SeqSet } from './seqset.js';
import type { SeenEntry } from './delivery.js';

const PENDING = 0;
const OPEN = 1;
const FAILED = 2;
const CLOSED = 3;

/** Key of a pending update: local user index and message number. */
const KEY_STRIDE = 100_000_000;
/** Most sends in one pump before yielding to I/O (receives, IPC) for a turn. */
const SEND_BUDGET = 2_000;
const ELD_RESOLUTION_MS = 10;

class User {
  ws: WebSocket | null = null;
  state = PENDING;
  /** Open when the schedule started (a candidate whole-window member). */
  whole = false;
  seqs: SeqSet | null = null;
  lastBcast = 0;
  connectStart = 0;
  constructor(
    readonly idx: number,
    readonly user: number,
    readonly board: number,
    public sched: UserSchedule | null,
  ) {}
}

interface WsWithUser extends WebSocket {
  wamiUser: User;
}

class Pending {
  constructor(
    readonly at: number,
    readonly sentAt: number,
  ) {}
}

interface SeenRec {
  from: number;
  id: string;
  sampled: boolean;
  ww: number;
}

function send(m: WorkerMessage, cb?: () => void): void {
  if (!process.connected) return;
  try {
    process.send!(m, undefined, {}, cb ? () => cb() : undefined);
  } catch {
    /* channel closed */
  }
}

let init: WorkerInit | null = null;
let users: User[] = [];
let baseUrls: string[] = [];
let finishing = false;

// connect phase
let connectTimer: NodeJS.Timeout | null = null;
let nextToOpen = 0;
let connectDone = 0;
let connectedSent = false;
let reached = 0;
const failuresByKind: Record<string, number> = {};
let closedEarly = 0;

// schedule
let cfg: ScheduleConfig | null = null;
let t0 = 0;
let measureStart = 0;
let measureEnd = 0;
let heap: TimeHeap | null = null;
let pumpTimer: NodeJS.Timeout | NodeJS.Immediate | null = null;
let pumpIsImmediate = false;
let scheduleDone = false;
let drainedSent = false;
const pending = new Map<number, Pending>();

// totals
let sent = 0;
let acked = 0;
let errored = 0;
let receivedFrames = 0;
let duplicate = 0;
let outOfOrder = 0;
const errorsByCode: Record<string, number> = {};
const errorsByKind: Record<string, number> = {};
const examples: string[] = [];
const ledgerAcked: Array<[number, string, number]> = [];
const ledgerErrored: Array<[number, string, string]> = [];
const seenByBoard = new Map<number, Map<number, SeenRec>>();
const samples = new Map<string, number[]>();

// histograms (measured window)
const hConnect = newHistogram();
const hAck = newHistogram();
const hAckU = newHistogram();
const hFan = newHistogram();
const hFanU = newHistogram();
// drift: the first and the last `driftWindowMs` of the measured window (corrected latencies)
const hAckFirst = newHistogram();
const hAckLast = newHistogram();
const hFanFirst = newHistogram();
const hFanLast = newHistogram();
let driftWindowMs = 0;
const hLag = newHistogram();
// per second
const sAck = newHistogram();
const sFan = newHistogram();
const sLag = newHistogram();
let sSent = 0;
let sAcked = 0;
let sErrors = 0;
/** This second's errors by server code or client kind. */
let sErrorsBy: Record<string, number> = {};
let sDelivered = 0;
let openSockets = 0;

// resources
const rss = new RssReader('self');
let rssMax = 0;
const eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
/** Event-loop delay over the measured window only (enabled at its start, disabled at its end). */
const eldWindow = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
let cpuPrev = process.cpuUsage();
let cpuPrevAt = nowMs();
const cpu0 = process.cpuUsage();
let tickTimer: NodeJS.Timeout | null = null;
let nextTickK = 1;

function kind(k: string, example?: string): void {
  errorsByKind[k] = (errorsByKind[k] ?? 0) + 1;
  sErrors++;
  sErrorsBy[k] = (sErrorsBy[k] ?? 0) + 1;
  if (example !== undefined && examples.length < 10) examples.push(`${k}: ${example}`);
}

function fail(u: User, k: string): void {
  u.state = FAILED;
  failuresByKind[k] = (failuresByKind[k] ?? 0) + 1;
  connectDone++;
  maybeConnected();
}

function maybeConnected(): void {
  if (connectedSent || !init || connectDone < users.length) return;
  connectedSent = true;
  send({ type: 'connected', index: init.index, asked: users.length, reached, failuresByKind: { ...failuresByKind } });
}

// ---- socket handlers (shared functions; `this` is the socket) ----

function onOpen(this: WebSocket): void {
  const u = (this as WsWithUser).wamiUser;
  if (u.state !== PENDING) return;
  u.state = OPEN;
  reached++;
  openSockets++;
  recordMs(hConnect, nowMs() - u.connectStart);
  connectDone++;
  maybeConnected();
}

function onError(this: WebSocket, err: Error): void {
  const u = (this as WsWithUser).wamiUser;
  if (u.state === PENDING) fail(u, classifyConnectError(err));
  else if (u.state === OPEN && !finishing) kind('socket-error', err.message);
}

function onClose(this: WebSocket, code: number): void {
  const u = (this as WsWithUser).wamiUser;
  if (u.state === OPEN) {
    openSockets--;
    u.state = CLOSED;
    if (!finishing) {
      closedEarly++;
      kind(closeKind(code));
    }
  } else if (u.state === PENDING) {
    fail(u, 'other');
  }
}

function isMeasured(at: number): boolean {
  return at >= measureStart && at < measureEnd;
}

function onMessage(this: WebSocket, data: WebSocket.RawData): void {
  if (finishing) return;
  const now = nowMs();
  const u = (this as WsWithUser).wamiUser;
  const r = parseServerFrame(data as Buffer);
  if (!r.ok) {
    kind('protocol', r.message);
    return;
  }
  const m = r.msg;
  if (m.type === 'ack') {
    const n = messageIndex(init!.idPrefix, m.id);
    const key = u.idx * KEY_STRIDE + n;
    const p = n >= 0 ? pending.get(key) : undefined;
    if (p === undefined) {
      kind('unknown-ack', `user ${u.user} id ${m.id}`);
      return;
    }
    pending.delete(key);
    acked++;
    sAcked++;
    const lat = now - p.at;
    recordMs(sAck, lat);
    if (isMeasured(p.at)) {
      recordMs(hAck, lat);
      recordMs(hAckU, now - p.sentAt);
      if (p.at < measureStart + driftWindowMs) recordMs(hAckFirst, lat);
      if (p.at >= measureEnd - driftWindowMs) recordMs(hAckLast, lat);
    }
    ledgerAcked.push([u.user, m.id, m.seq]);
    (u.seqs ??= new SeqSet()).add(m.seq);
    if (scheduleDone) maybeDrained();
  } else if (m.type === 'update') {
    if (m.from === u.user) {
      kind('self-echo', `user ${u.user} got its own update ${m.id}`);
      return;
    }
    receivedFrames++;
    sDelivered++;
    const set = (u.seqs ??= new SeqSet());
    if (!set.add(m.seq)) {
      duplicate++;
      return;
    }
    if (m.seq < u.lastBcast) outOfOrder++;
    else u.lastBcast = m.seq;
    let bm = seenByBoard.get(u.board);
    if (bm === undefined) seenByBoard.set(u.board, (bm = new Map()));
    let rec = bm.get(m.seq);
    if (rec === undefined) {
      rec = { from: m.from, id: m.id, sampled: isMeasured(m.at) && isSampled(init!.seed, m.from, m.id, init!.sampleEvery), ww: 0 };
      bm.set(m.seq, rec);
    } else if (rec.from !== m.from || rec.id !== m.id) {
      kind('seq-conflict', `board ${u.board} seq ${m.seq}: ${rec.from}/${rec.id} and ${m.from}/${m.id}`);
    }
    const lat = now - m.at;
    recordMs(sFan, lat);
    if (isMeasured(m.at)) {
      recordMs(hFan, lat);
      recordMs(hFanU, now - m.sentAt);
      if (m.at < measureStart + driftWindowMs) recordMs(hFanFirst, lat);
      if (m.at >= measureEnd - driftWindowMs) recordMs(hFanLast, lat);
      if (rec.sampled) {
        const k = sampleKey(m.from, m.id);
        const arr = samples.get(k);
        if (arr) arr.push(round3(lat));
        else samples.set(k, [round3(lat)]);
      }
    }
  } else {
    errorsByCode[m.code] = (errorsByCode[m.code] ?? 0) + 1;
    sErrors++;
    sErrorsBy[m.code] = (sErrorsBy[m.code] ?? 0) + 1;
    if (m.id !== undefined) {
      const n = messageIndex(init!.idPrefix, m.id);
      const key = u.idx * KEY_STRIDE + n;
      if (n >= 0 && pending.delete(key)) {
        errored++;
        ledgerErrored.push([u.user, m.id, m.code]);
        if (scheduleDone) maybeDrained();
      }
    }
  }
}

// ---- connect ----

function openSocket(u: User): void {
  const i = init!;
  u.connectStart = nowMs();
  const localAddress = sourceAddressFor(u.user, i.fleetFirstUser, i.sourceAddresses);
  const opts: WebSocket.ClientOptions = { perMessageDeflate: false, handshakeTimeout: i.handshakeTimeoutMs, maxPayload: 1 << 20 };
  if (localAddress !== undefined) opts.localAddress = localAddress;
  if (i.ca !== undefined) opts.ca = i.ca;
  let ws: WsWithUser;
  try {
    ws = new WebSocket(connectUrl(baseUrls[(u.board - 1) % baseUrls.length]!, u.board, u.user), opts) as WsWithUser;
  } catch (e) {
    fail(u, classifyConnectError(e));
    return;
  }
  ws.wamiUser = u;
  u.ws = ws;
  ws.on('open', onOpen);
  ws.on('error', onError);
  ws.on('close', onClose);
  ws.on('message', onMessage);
}

function startConnecting(): void {
  const rate = init!.connectRatePerSec;
  const began = nowMs();
  // Never catch up in a burst: a late turn opens at most 20 ms worth of sockets, so a busy worker
  // slows its connect rate instead of stalling its event loop for seconds.
  const burst = Math.max(1, Math.ceil(rate * 0.02));
  const step = (): void => {
    const due = Math.min(users.length, Math.floor(((nowMs() - began) * rate) / 1000) + 1, nextToOpen + burst);
    while (nextToOpen < due) openSocket(users[nextToOpen++]!);
    if (nextToOpen >= users.length && connectTimer) {
      clearInterval(connectTimer);
      connectTimer = null;
    }
  };
  connectTimer = setInterval(step, 10);
  step();
}

function stopConnecting(): void {
  if (connectTimer) {
    clearInterval(connectTimer);
    connectTimer = null;
  }
  for (const u of users) {
    if (u.state !== PENDING) continue;
    if (u.ws) {
      u.ws.removeAllListeners();
      u.ws.on('error', () => {});
      u.ws.terminate();
    }
    fail(u, 'timeout');
  }
  maybeConnected();
}

// ---- schedule ----

function sendUpdate(u: User, n: number, card: number, column: ClientUpdate['column'], title: string, at: number): void {
  const ws = u.ws;
  if (ws === null || ws.readyState !== WebSocket.OPEN || u.state !== OPEN) {
    kind('send-not-open');
    return;
  }
  const sentAt = round3(nowMs());
  const id = messageId(init!.idPrefix, n);
  ws.send(serializeUpdate({ type: 'update', id, card, column, title, at, sentAt }));
  pending.set(u.idx * KEY_STRIDE + n, new Pending(at, sentAt));
  sent++;
  sSent++;
  const lag = sentAt - at;
  recordMs(sLag, lag);
  if (isMeasured(at)) recordMs(hLag, lag);
}

function armPump(): void {
  if (pumpTimer !== null || finishing) return;
  const next = heap!.peekTime();
  if (next === Infinity) {
    scheduleDone = true;
    maybeDrained();
    return;
  }
  const delay = next - nowMs();
  if (delay < 1) {
    pumpIsImmediate = true;
    pumpTimer = setImmediate(pump);
  } else {
    pumpIsImmediate = false;
    pumpTimer = setTimeout(pump, Math.floor(delay));
  }
}

function pump(): void {
  pumpTimer = null;
  if (finishing) return;
  const h = heap!;
  const c = cfg!;
  let now = nowMs();
  let budget = SEND_BUDGET;
  while (h.peekTime() <= now) {
    if (budget-- === 0) break;
    const idx = h.pop();
    const u = users[idx]!;
    const s = u.sched!;
    const p = drawUpdate(c, s);
    sendUpdate(u, p.n, p.card, p.column, p.title, round3(t0 + p.offsetMs));
    if (s.next !== Infinity) h.push(t0 + s.next, idx);
    if ((budget & 63) === 0) now = nowMs();
  }
  armPump();
}

function start(m: WorkerStart): void {
  const i = init!;
  t0 = m.t0;
  measureStart = round3(t0 + m.warmupMs);
  measureEnd = round3(t0 + m.warmupMs + m.measureMs);
  driftWindowMs = driftWindowFor(m.measureMs);
  cfg = {
    seed: i.seed,
    perBoard: i.perBoard,
    cardsPerBoard: i.cardsPerBoard,
    updatesPerUserPerMin: i.updatesPerUserPerMin,
    arrival: i.arrival,
    windowMs: m.warmupMs + m.measureMs,
    steps: i.rateSteps.map((st) => ({ atMs: m.warmupMs + st.atSec * 1000, updatesPerUserPerMin: st.updatesPerUserPerMin })),
  };
  const now = nowMs();
  setTimeout(() => {
    if (finishing) return;
    eldWindow.reset();
    eldWindow.enable();
  }, Math.max(0, measureStart - now));
  setTimeout(() => eldWindow.disable(), Math.max(0, measureEnd - now));
  heap = new TimeHeap(users.length);
  for (const u of users) {
    u.whole = u.state === OPEN;
    u.sched = initUserSchedule(cfg, u.user);
    if (u.sched.next !== Infinity) heap.push(t0 + u.sched.next, u.idx);
  }
  armPump();
}

function maybeDrained(): void {
  if (drainedSent || !scheduleDone || pending.size > 0) return;
  drainedSent = true;
  send({ type: 'drained', index: init!.index });
}

// ---- ticks ----

function cpuPctSinceLastTick(): number {
  const now = nowMs();
  const d = process.cpuUsage(cpuPrev);
  cpuPrev = process.cpuUsage();
  const el = now - cpuPrevAt;
  cpuPrevAt = now;
  return el > 0 ? Math.round(((d.user + d.system) / 1000 / el) * 1000) / 10 : 0;
}

function armTick(): void {
  const delay = init!.originMs + nextTickK * 1000 - nowMs();
  tickTimer = setTimeout(onTick, Math.max(0, delay));
}

function onTick(): void {
  const i = init!;
  const now = nowMs();
  const k = Math.max(nextTickK, Math.floor((now - i.originMs) / 1000));
  const t = k - 1;
  const eldP99 = eld.count > 0 ? Math.max(0, eld.percentile(99) / 1e6 - ELD_RESOLUTION_MS) : 0;
  eld.reset();
  const r = rss.read();
  if (r !== null && r > rssMax) rssMax = r;
  const tick: TickReport = {
    type: 'tick',
    index: i.index,
    t,
    openSockets,
    sent: sSent,
    acked: sAcked,
    errors: sErrors,
    errorsBy: sErrorsBy,
    delivered: sDelivered,
    ackHist: encodeHistogram(sAck),
    fanoutHist: encodeHistogram(sFan),
    lagHist: encodeHistogram(sLag),
    cpuPct: cpuPctSinceLastTick(),
    eventLoopDelayMsP99: Math.round(eldP99 * 1000) / 1000,
    rssBytes: r,
    pendingAcks: pending.size,
  };
  sSent = sAcked = sErrors = sDelivered = 0;
  sErrorsBy = {};
  sAck.reset();
  sFan.reset();
  sLag.reset();
  send(tick);
  nextTickK = k + 1;
  if (!finishing) armTick();
}

// ---- finish ----

function finalReport(): WorkerFinal {
  const i = init!;
  const unanswered: Array<[number, string]> = [];
  const finishedAt = nowMs();
  for (const [key, p] of pending) {
    const u = users[Math.floor(key / KEY_STRIDE)]!;
    unanswered.push([u.user, messageId(i.idPrefix, key % KEY_STRIDE)]);
    // Never answered: its latency is at least the time until now. Record that lower bound, so a
    // server that stops answering cannot look faster by leaving updates out of the histogram.
    if (isMeasured(p.at)) {
      recordMs(hAck, finishedAt - p.at);
      recordMs(hAckU, finishedAt - p.sentAt);
      if (p.at < measureStart + driftWindowMs) recordMs(hAckFirst, finishedAt - p.at);
      if (p.at >= measureEnd - driftWindowMs) recordMs(hAckLast, finishedAt - p.at);
    }
  }
  // Updates scheduled in the window that the fleet never got to send (it fell behind): counted, not dropped.
  let unsent = 0;
  if (heap !== null && cfg !== null) {
    while (heap.size > 0) {
      const s = users[heap.pop()]!.sched!;
      while (s.next !== Infinity) {
        drawUpdate(cfg, s);
        unsent++;
      }
    }
  }
  if (unsent > 0) errorsByKind['unsent-at-finish'] = (errorsByKind['unsent-at-finish'] ?? 0) + unsent;
  const notWholeUsers: number[] = [];
  for (const u of users) {
    const whole = u.whole && u.state === OPEN;
    if (!whole) {
      notWholeUsers.push(u.user);
      continue;
    }
    const bm = seenByBoard.get(u.board);
    if (!bm || !u.seqs) continue;
    u.seqs.forEach((seq) => {
      const rec = bm.get(seq);
      if (rec !== undefined && rec.from !== u.user) rec.ww++;
    });
  }
  const seen: SeenEntry[] = [];
  for (const [b, bm] of seenByBoard) for (const [seq, rec] of bm) seen.push([b, seq, rec.from, rec.id, rec.ww]);
  const cpu = process.cpuUsage(cpu0);
  const r = rss.read();
  if (r !== null && r > rssMax) rssMax = r;
  const eldP99 = eldWindow.count > 0 ? Math.max(0, eldWindow.percentile(99) / 1e6 - ELD_RESOLUTION_MS) : 0;
  return {
    type: 'final',
    index: i.index,
    sockets: { asked: users.length, reached, failuresByKind: { ...failuresByKind }, closedEarly },
    notWholeUsers,
    hist: {
      connect: encodeHistogram(hConnect),
      ack: encodeHistogram(hAck),
      ackUncorrected: encodeHistogram(hAckU),
      fanout: encodeHistogram(hFan),
      fanoutUncorrected: encodeHistogram(hFanU),
      lag: encodeHistogram(hLag),
      ackFirst: encodeHistogram(hAckFirst),
      ackLast: encodeHistogram(hAckLast),
      fanoutFirst: encodeHistogram(hFanFirst),
      fanoutLast: encodeHistogram(hFanLast),
    },
    updates: { sent, acked, errored, unanswered: unanswered.length },
    errorsByCode: { ...errorsByCode },
    errorsByKind: { ...errorsByKind },
    duplicate,
    outOfOrder,
    receivedFrames,
    seen,
    acked: ledgerAcked,
    errored: ledgerErrored,
    unanswered,
    samples: [...samples.entries()],
    cpuSec: Math.round((cpu.user + cpu.system) / 1000) / 1000,
    eventLoopDelayMsP99: Math.round(eldP99 * 1000) / 1000,
    rssBytesMax: rssMax,
    examples: [...examples],
  };
}

function finish(): void {
  if (finishing) return;
  // One last tick for the partial second, so the time series covers the drain.
  if (tickTimer) {
    clearTimeout(tickTimer);
    tickTimer = null;
    onTick();
  }
  finishing = true;
  if (connectTimer) clearInterval(connectTimer);
  if (pumpTimer) {
    if (pumpIsImmediate) clearImmediate(pumpTimer as NodeJS.Immediate);
    else clearTimeout(pumpTimer as NodeJS.Timeout);
    pumpTimer = null;
  }
  const report = finalReport();
  send(report, () => closeAllAndExit());
}

function closeAllAndExit(): void {
  let open = 0;
  const done = (): void => {
    if (--open <= 0) exit(0);
  };
  for (const u of users) {
    const ws = u.ws;
    if (!ws) continue;
    if (ws.readyState === WebSocket.OPEN) {
      open++;
      ws.once('close', done);
      // A graceful close: the server closes the TCP connection first, so TIME_WAIT lands on its side
      // and this host's ephemeral ports are free again for the next run.
      ws.close(1000, 'fleet done');
    } else if (ws.readyState === WebSocket.CONNECTING) {
      ws.terminate();
    }
  }
  if (open === 0) exit(0);
  setTimeout(() => {
    for (const u of users) if (u.ws && u.ws.readyState !== WebSocket.CLOSED) u.ws.terminate();
    setTimeout(() => exit(0), 200).unref();
  }, 3000).unref();
}

function exit(code: number): void {
  eld.disable();
  eldWindow.disable();
  rss.close();
  process.exitCode = code;
  if (process.connected) process.disconnect();
  setTimeout(() => process.exit(code), 50).unref();
}

// ---- wiring ----

function onInit(m: WorkerInit): void {
  init = m;
  baseUrls = m.urls;
  users = new Array<User>(m.count);
  for (let k = 0; k < m.count; k++) {
    const user = m.firstUser + k;
    users[k] = new User(k, user, boardOfUser(user, m.perBoard), null);
  }
  const left = m.hardDeadlineMs - nowMs();
  setTimeout(() => {
    process.stderr.write(`fleet worker ${m.index}: hard deadline reached, exiting\n`);
    process.exit(4);
  }, Math.max(1000, left)).unref();
  eld.enable();
  armTick();
  if (users.length === 0) maybeConnected();
  else startConnecting();
}

process.on('message', (m: CoordinatorMessage) => {
  try {
    switch (m.type) {
      case 'init':
        onInit(m);
        break;
      case 'stop-connect':
        stopConnecting();
        break;
      case 'start':
        start(m);
        break;
      case 'finish':
        finish();
        break;
    }
  } catch (e) {
    send({ type: 'fatal', index: init?.index ?? -1, message: (e as Error).stack ?? String(e) }, () => process.exit(1));
  }
});
process.on('disconnect', () => {
  if (!finishing) process.exit(5);
});
process.on('uncaughtException', (e) => {
  send({ type: 'fatal', index: init?.index ?? -1, message: e.stack ?? String(e) }, () => process.exit(1));
  setTimeout(() => process.exit(1), 1000).unref();
});
