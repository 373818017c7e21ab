/**
 * What one fleet worker records, apart from its sockets: latency (HDR histograms, corrected from the
 * scheduled time `at` with the `sentAt` twin, drift windows, per-second histograms) and accounting
 * (sockets reached and failed, pending updates, acks and errors, broadcasts seen per board and seq,
 * duplicates and reordering, the ledger, sampled recipients, errors by code and kind).
 *
 * Pure: no sockets, no clocks, no process. Every time is passed in (ms on the fleet's shared
 * clock), so it is tested with exact numbers. The socket side (load-worker.ts) calls it.
 */
import type { ServerMessage } from '../protocol/messages.js';
import { round3 } from '../protocol/clock.js';
import type { SeenEntry } from './delivery.js';
import { closeKind } from './failures.js';
import { encodeHistogram, newHistogram, recordMs, type Histogram } from './histogram.js';
import type { TickReport, WorkerFinal } from './ipc.js';
import { isSampled, sampleKey } from './sampling.js';
import { messageId, messageIndex } from './schedule.js';
import { SeqSet } from './seqset.js';

/** Key of a pending update: local user index and message number. */
const KEY_STRIDE = 100_000_000;
/** Examples of client-side errors kept for the reader. */
const MAX_EXAMPLES = 10;

/**
 * One latency measured four ways: from `at` (corrected), from `sentAt` (uncorrected), and, from
 * `at`, for updates scheduled in the first and in the last drift window of the measured window.
 */
export class LatencyGroup {
  readonly corrected = newHistogram();
  readonly uncorrected = newHistogram();
  readonly first = newHistogram();
  readonly last = newHistogram();

  /** Records an answer at `now` to an update scheduled at `at` and sent at `sentAt`, when `at` is measured. */
  record(w: MeasuredWindow, at: number, sentAt: number, now: number): void {
    if (!w.has(at)) return;
    const lat = now - at;
    recordMs(this.corrected, lat);
    recordMs(this.uncorrected, now - sentAt);
    if (at < w.start + w.driftMs) recordMs(this.first, lat);
    if (at >= w.end - w.driftMs) recordMs(this.last, lat);
  }
}

/** The measured window on the shared clock: [start, end), and the drift window length. */
export class MeasuredWindow {
  start = Infinity;
  end = -Infinity;
  driftMs = 0;
  has(at: number): boolean {
    return at >= this.start && at < this.end;
  }
}

interface SeenRec {
  from: number;
  id: string;
  /** The update's sentAt (the fleet's clock): about when the server broadcast it. */
  sentAt: number;
  sampled: boolean;
  /** Receipts by whole-window members of this worker (filled at finish). */
  ww: number;
  /** Other updates seen under the same (board, seq): a reused seq. */
  others?: Array<[from: number, id: string, sentAt: number]>;
}

interface Pending {
  at: number;
  sentAt: number;
}

/** A user as the recorder knows it: its global id and its board. */
export interface RecordedUser {
  user: number;
  board: number;
}

export interface RecorderConfig {
  /** Prefix of this run's client message ids. */
  idPrefix: string;
  /** The schedule seed (recipient sampling is a hash of it). */
  seed: number;
  /** Sample 1 in N updates for first/median/last recipient. */
  sampleEvery: number;
  /** This worker's users, by local index. */
  users: readonly RecordedUser[];
  /** Record ack and send times in the ledger (runs with faults). Default false. */
  timedLedger?: boolean;
}

/** The per-second part of a TickReport. */
export type SecondCounts = Pick<
  TickReport,
  'openSockets' | 'reconnected' | 'sent' | 'acked' | 'errors' | 'errorsBy' | 'delivered' | 'ackHist' | 'fanoutHist' | 'lagHist' | 'pendingAcks'
>;

/** The recorded part of a WorkerFinal. */
export type RecordedFinal = Pick<
  WorkerFinal,
  | 'sockets'
  | 'notWholeUsers'
  | 'hist'
  | 'updates'
  | 'errorsByCode'
  | 'errorsByKind'
  | 'duplicate'
  | 'outOfOrder'
  | 'receivedFrames'
  | 'seen'
  | 'acked'
  | 'errored'
  | 'unanswered'
  | 'samples'
  | 'examples'
>;

export class Recorder {
  readonly window = new MeasuredWindow();
  // sockets
  reached = 0;
  openSockets = 0;
  closedEarly = 0;
  readonly closedEarlyByCode: Record<string, number> = {};
  sendsOnClosed = 0;
  readonly reconnects = { attempted: 0, succeeded: 0, failed: 0 };
  stalled = 0;
  readonly failuresByKind: Record<string, number> = {};
  // updates
  sent = 0;
  acked = 0;
  errored = 0;
  receivedFrames = 0;
  duplicate = 0;
  outOfOrder = 0;
  readonly errorsByCode: Record<string, number> = {};
  readonly errorsByKind: Record<string, number> = {};
  readonly examples: string[] = [];
  private readonly pending = new Map<number, Pending>();
  /** Updates in flight when their socket closed: they can no longer be answered (acks go to the socket that sent). */
  private readonly abandoned = new Map<number, Pending>();
  private readonly ledgerAcked: Array<[number, string, number, number?]> = [];
  private readonly ledgerErrored: Array<[number, string, string]> = [];
  /** Per local user: the seqs it has seen of its board (acks and broadcasts), and its last broadcast seq. */
  private readonly seqs: Array<SeqSet | null>;
  private readonly lastBcast: number[];
  private readonly seenByBoard = new Map<number, Map<number, SeenRec>>();
  private readonly samples = new Map<string, number[]>();
  /**
   * Local users the fleet stalled on purpose (slow consumers): what they receive, and their acks,
   * arrive as late as the stall made them. That is the stall's delay, not the server's, so their
   * latency is left out of every histogram (their accounting and ledger are kept).
   */
  private readonly stalledUsers = new Set<number>();
  // measured-window histograms
  readonly connect = newHistogram();
  readonly ack = new LatencyGroup();
  readonly fanout = new LatencyGroup();
  readonly lag = newHistogram();
  // this second
  private readonly sAck = newHistogram();
  private readonly sFan = newHistogram();
  private readonly sLag = newHistogram();
  private sSent = 0;
  private sAcked = 0;
  private sErrors = 0;
  private sErrorsBy: Record<string, number> = {};
  private sDelivered = 0;
  private sReconnected = 0;

  constructor(private readonly cfg: RecorderConfig) {
    this.seqs = new Array<SeqSet | null>(cfg.users.length).fill(null);
    this.lastBcast = new Array<number>(cfg.users.length).fill(0);
  }

  /** Sets the measured window [startMs, endMs) and the drift window length. */
  setWindow(startMs: number, endMs: number, driftMs: number): void {
    this.window.start = startMs;
    this.window.end = endMs;
    this.window.driftMs = driftMs;
  }

  /** Updates sent and not yet answered. */
  get pendingCount(): number {
    return this.pending.size;
  }

  // ---- sockets ----

  /** A handshake that succeeded after `ms`. */
  connected(ms: number): void {
    this.reached++;
    this.openSockets++;
    recordMs(this.connect, ms);
  }

  /** A handshake that failed (refused, reset, timeout, …). */
  connectFailed(kind: string): void {
    this.failuresByKind[kind] = (this.failuresByKind[kind] ?? 0) + 1;
  }

  /**
   * User `u`'s open socket closed with `code`; `early` when the run was not finishing (counted, and
   * an error of kind closed-<code>). Its updates in flight can no longer be answered: they leave
   * `pending` (so the drain does not wait for them) and are reported unanswered at the end.
   */
  closed(u: number, code: number, early: boolean): void {
    this.openSockets--;
    if (!early) return;
    this.closedEarly++;
    this.closedEarlyByCode[String(code)] = (this.closedEarlyByCode[String(code)] ?? 0) + 1;
    this.kind(closeKind(code));
    const lo = u * KEY_STRIDE;
    for (const [key, p] of this.pending) {
      if (key < lo || key >= lo + KEY_STRIDE) continue;
      this.pending.delete(key);
      this.abandoned.set(key, p);
    }
  }

  /** A reconnect of a closed socket was tried: `ok`, it opened; else it failed with `kind` (refused, timeout, …). */
  reconnect(ok: boolean, kind?: string): void {
    this.reconnects.attempted++;
    if (ok) {
      this.reconnects.succeeded++;
      this.sReconnected++;
      this.openSockets++;
    } else {
      this.reconnects.failed++;
      if (kind !== undefined && this.examples.length < MAX_EXAMPLES && this.reconnects.failed === 1) this.examples.push(`reconnect failed: ${kind}`);
    }
  }

  /** Local user `u` stopped reading on purpose (the slow-consumers fault): its latency is no longer recorded. */
  stall(u: number): void {
    if (this.stalledUsers.has(u)) return;
    this.stalledUsers.add(u);
    this.stalled++;
  }

  /** An update was due on a socket that was not open (closed, or reconnecting): not sent. */
  sendOnClosed(): void {
    this.sendsOnClosed++;
    this.kind('send-not-open');
  }

  /** A client-side error of kind `k` (protocol, send-not-open, unknown-ack, …), with an example for the reader. */
  kind(k: string, example?: string): void {
    this.errorsByKind[k] = (this.errorsByKind[k] ?? 0) + 1;
    this.sErrors++;
    this.sErrorsBy[k] = (this.sErrorsBy[k] ?? 0) + 1;
    if (example !== undefined && this.examples.length < MAX_EXAMPLES) this.examples.push(`${k}: ${example}`);
  }

  // ---- updates ----

  /** User `u` (local index) sent its update `n`, scheduled at `at`, at `sentAt`. */
  sentUpdate(u: number, n: number, at: number, sentAt: number): void {
    this.pending.set(u * KEY_STRIDE + n, { at, sentAt });
    this.sent++;
    this.sSent++;
    const lag = sentAt - at;
    recordMs(this.sLag, lag);
    if (this.window.has(at)) recordMs(this.lag, lag);
  }

  /** A server frame that user `u` (local index) received at `now`, parsed. */
  frame(u: number, m: ServerMessage, now: number): void {
    if (m.type === 'ack') this.onAck(u, m.id, m.seq, now);
    else if (m.type === 'update') this.onBroadcast(u, m.from, m.id, m.seq, m.at, m.sentAt, now);
    else this.onError(u, m.code, m.id);
  }

  private user(u: number): RecordedUser {
    return this.cfg.users[u]!;
  }

  private seqsOf(u: number): SeqSet {
    let s = this.seqs[u];
    if (!s) this.seqs[u] = s = new SeqSet();
    return s;
  }

  private onAck(u: number, id: string, seq: number, now: number): void {
    const n = messageIndex(this.cfg.idPrefix, id);
    const key = u * KEY_STRIDE + n;
    const p = n >= 0 ? this.pending.get(key) : undefined;
    if (p === undefined) {
      this.kind('unknown-ack', `user ${this.user(u).user} id ${id}`);
      return;
    }
    this.pending.delete(key);
    this.acked++;
    this.sAcked++;
    if (!this.stalledUsers.has(u)) {
      recordMs(this.sAck, now - p.at);
      this.ack.record(this.window, p.at, p.sentAt, now);
    }
    this.ledgerAcked.push(this.cfg.timedLedger ? [this.user(u).user, id, seq, round3(now)] : [this.user(u).user, id, seq]);
    this.seqsOf(u).add(seq);
  }

  private onBroadcast(u: number, from: number, id: string, seq: number, at: number, sentAt: number, now: number): void {
    const me = this.user(u);
    if (from === me.user) {
      this.kind('self-echo', `user ${me.user} got its own update ${id}`);
      return;
    }
    this.receivedFrames++;
    this.sDelivered++;
    let bm = this.seenByBoard.get(me.board);
    if (bm === undefined) this.seenByBoard.set(me.board, (bm = new Map()));
    let rec = bm.get(seq);
    // A seq already seen for another update is a reused seq, whether this member saw the first one
    // (it would drop this one as a duplicate) or another member did: both updates go to the ledger.
    if (rec !== undefined && (rec.from !== from || rec.id !== id) && !rec.others?.some((o) => o[0] === from && o[1] === id)) {
      (rec.others ??= []).push([from, id, sentAt]);
      this.kind('seq-conflict', `board ${me.board} seq ${seq}: ${rec.from}/${rec.id} and ${from}/${id}`);
    }
    if (!this.seqsOf(u).add(seq)) {
      this.duplicate++;
      return;
    }
    if (seq < this.lastBcast[u]!) this.outOfOrder++;
    else this.lastBcast[u] = seq;
    if (rec === undefined) {
      rec = { from, id, sentAt, sampled: this.sampled(from, id, at), ww: 0 };
      bm.set(seq, rec);
    }
    if (this.stalledUsers.has(u)) return;
    const lat = now - at;
    recordMs(this.sFan, lat);
    this.fanout.record(this.window, at, sentAt, now);
    // rec.sampled is the flag of the update first seen under this seq; another update under it (a reused
    // seq) is sampled by its own (from, id), as every other worker decides it
    if (rec.from === from && rec.id === id ? rec.sampled : this.sampled(from, id, at)) {
      const k = sampleKey(from, id);
      const arr = this.samples.get(k);
      if (arr) arr.push(round3(lat));
      else this.samples.set(k, [round3(lat)]);
    }
  }

  /** Whether update (from, id), scheduled at `at`, is a sampled one: measured, and picked by the seeded hash. */
  private sampled(from: number, id: string, at: number): boolean {
    return this.window.has(at) && isSampled(this.cfg.seed, from, id, this.cfg.sampleEvery);
  }

  private onError(u: number, code: string, id: string | undefined): void {
    this.errorsByCode[code] = (this.errorsByCode[code] ?? 0) + 1;
    this.sErrors++;
    this.sErrorsBy[code] = (this.sErrorsBy[code] ?? 0) + 1;
    if (id === undefined) return;
    const n = messageIndex(this.cfg.idPrefix, id);
    if (n >= 0 && this.pending.delete(u * KEY_STRIDE + n)) {
      this.errored++;
      this.ledgerErrored.push([this.user(u).user, id, code]);
    }
  }

  // ---- reports ----

  /** This second's counts and histograms, then resets them. */
  second(): SecondCounts {
    const s: SecondCounts = {
      openSockets: this.openSockets,
      reconnected: this.sReconnected,
      sent: this.sSent,
      acked: this.sAcked,
      errors: this.sErrors,
      errorsBy: this.sErrorsBy,
      delivered: this.sDelivered,
      ackHist: encodeHistogram(this.sAck),
      fanoutHist: encodeHistogram(this.sFan),
      lagHist: encodeHistogram(this.sLag),
      pendingAcks: this.pending.size,
    };
    this.sSent = this.sAcked = this.sErrors = this.sDelivered = this.sReconnected = 0;
    this.sErrorsBy = {};
    this.sAck.reset();
    this.sFan.reset();
    this.sLag.reset();
    return s;
  }

  /**
   * The final report at `now`. `whole(u)`: whether local user u was connected for the whole window
   * (open when the schedule began and still open); `unsent`: updates scheduled in the window that
   * were never sent (the fleet fell behind). Unanswered updates count with the lower bound of their
   * latency (until now), so a server that stops answering cannot look faster by leaving them out.
   */
  final(now: number, whole: (u: number) => boolean, unsent: number): RecordedFinal {
    const unanswered: Array<[number, string, number?]> = [];
    for (const list of [this.pending, this.abandoned]) {
      for (const [key, p] of list) {
        const u = Math.floor(key / KEY_STRIDE);
        const id = messageId(this.cfg.idPrefix, key % KEY_STRIDE);
        unanswered.push(this.cfg.timedLedger ? [this.user(u).user, id, p.sentAt] : [this.user(u).user, id]);
        if (!this.stalledUsers.has(u)) this.ack.record(this.window, p.at, p.sentAt, now);
      }
    }
    if (unsent > 0) this.errorsByKind['unsent-at-finish'] = (this.errorsByKind['unsent-at-finish'] ?? 0) + unsent;
    const notWholeUsers: number[] = [];
    this.cfg.users.forEach((me, u) => {
      if (!whole(u)) {
        notWholeUsers.push(me.user);
        return;
      }
      const bm = this.seenByBoard.get(me.board);
      const set = this.seqs[u];
      if (!bm || !set) return;
      set.forEach((seq) => {
        const rec = bm.get(seq);
        if (rec !== undefined && rec.from !== me.user) rec.ww++;
      });
    });
    const seen: SeenEntry[] = [];
    for (const [b, bm] of this.seenByBoard) {
      for (const [seq, rec] of bm) {
        seen.push([b, seq, rec.from, rec.id, rec.ww, rec.sentAt]);
        if (rec.others) for (const [from, id, sentAt] of rec.others) seen.push([b, seq, from, id, 0, sentAt]);
      }
    }
    const enc = (h: Histogram): string => encodeHistogram(h);
    return {
      sockets: {
        asked: this.cfg.users.length,
        reached: this.reached,
        failuresByKind: { ...this.failuresByKind },
        closedEarly: this.closedEarly,
        closedEarlyByCode: { ...this.closedEarlyByCode },
        sendsOnClosed: this.sendsOnClosed,
        reconnects: { ...this.reconnects },
        stalled: this.stalled,
      },
      notWholeUsers,
      hist: {
        connect: enc(this.connect),
        ack: enc(this.ack.corrected),
        ackUncorrected: enc(this.ack.uncorrected),
        fanout: enc(this.fanout.corrected),
        fanoutUncorrected: enc(this.fanout.uncorrected),
        lag: enc(this.lag),
        ackFirst: enc(this.ack.first),
        ackLast: enc(this.ack.last),
        fanoutFirst: enc(this.fanout.first),
        fanoutLast: enc(this.fanout.last),
      },
      updates: { sent: this.sent, acked: this.acked, errored: this.errored, unanswered: unanswered.length, unansweredAtClose: this.abandoned.size },
      errorsByCode: { ...this.errorsByCode },
      errorsByKind: { ...this.errorsByKind },
      duplicate: this.duplicate,
      outOfOrder: this.outOfOrder,
      receivedFrames: this.receivedFrames,
      seen,
      acked: this.ledgerAcked,
      errored: this.ledgerErrored,
      unanswered,
      samples: [...this.samples.entries()],
      examples: [...this.examples],
    };
  }
}
