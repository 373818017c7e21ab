/**
 * The fleet worker's recorder (clients/recorder.ts), the fleet's seconds (clients/seconds.ts) and the
 * server-gone reason (clients/vanished.ts), pinned on hand-built inputs with hand-worked numbers: the
 * tests that kill the mutants `npm run mutation` found surviving (issue 17). Pure, no clock, milliseconds.
 *
 * Latencies are chosen below 2.048 ms where a histogram is read back: an HDR histogram with 3
 * significant digits keeps every integer µs below 2048 exactly, so its percentiles are the values recorded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeHistogram, encodeHistogram, newHistogram, percentilesOf, recordMs } from '../clients/histogram.js';
import { MeasuredWindow, Recorder } from '../clients/recorder.js';
import { isSampled } from '../clients/sampling.js';
import { SecondsAggregator } from '../clients/seconds.js';
import { closedByServerGone, serverGoneReason } from '../clients/vanished.js';
import type { ServerMessage } from '../protocol/messages.js';
import { timePoint } from './helpers/time-point.js';
import { ack, bcast } from './helpers/server-frames.js';
import { tickReport } from './helpers/tick-report.js';

const error = (code: 'OVERLOADED' | 'BAD_MESSAGE', id?: string): ServerMessage => ({ type: 'error', code, message: 'm', ...(id === undefined ? {} : { id }) });
/** count and max (ms) of a histogram. */
const cm = (h: Parameters<typeof percentilesOf>[0]): [number, number] => {
  const p = percentilesOf(h);
  return [p.count, p.max];
};
/** count, p50 and max (ms) of an encoded histogram. */
const decoded = (s: string): [number, number, number] => {
  const p = percentilesOf(decodeHistogram(s));
  return [p.count, p.p50, p.max];
};
/** Users 10, 11, 12 of board 1 (local 0, 1, 2), measured window [1000, 2000), drift windows of 500 ms. */
function recorder(extra: { sampleEvery?: number; users?: number[] } = {}): Recorder {
  const users = (extra.users ?? [10, 11, 12]).map((user) => ({ user, board: 1 }));
  const r = new Recorder({ idPrefix: 'p', seed: 1, sampleEvery: extra.sampleEvery ?? 1, users });
  r.setWindow(1000, 2000, 500);
  return r;
}

// ---- clients/vanished.ts ----

test('server gone: the four codes of a live server are not counted, every other early close is', () => {
  // 1006 ×3 + 1001 ×2 = 5; 4008, 1002, 1007, 1009 say the server was alive
  assert.equal(closedByServerGone({ 1006: 3, 4008: 2, 1002: 1, 1007: 1, 1009: 1, 1001: 2 }), 5);
  assert.equal(closedByServerGone({}), 0);
  assert.equal(serverGoneReason({ reached: 10, closedEarlyByCode: { 1006: 3 }, sendsOnClosed: 1 }, true), null, 'a fault was scheduled');
  assert.equal(serverGoneReason({ reached: 10, closedEarlyByCode: { 4008: 3, 1009: 1 }, sendsOnClosed: 4 }, false), null, 'only live-server codes');
  // gone = 2 + 5 + 1 = 8 of 100; codes by count, most first (Object.entries gives 1001, 1006, 1011, 4008)
  assert.equal(
    serverGoneReason({ reached: 100, closedEarlyByCode: { 4008: 9, 1001: 2, 1006: 5, 1011: 1 }, sendsOnClosed: 3 }, false),
    'the server went away (or dropped sockets) during the run with no fault scheduled: 8 of 100 socket(s) closed early (1006 ×5, 1001 ×2, 1011 ×1); 3 update(s) fell due on closed sockets and were not sent',
  );
  assert.equal(
    serverGoneReason({ reached: 4, closedEarlyByCode: { 1006: 4 }, sendsOnClosed: 0 }, false),
    'the server went away (or dropped sockets) during the run with no fault scheduled: 4 of 4 socket(s) closed early (1006 ×4)',
  );
});

// ---- clients/seconds.ts ----

/** An encoded histogram of these latencies (ms). */
function enc(...ms: number[]): string {
  const h = newHistogram();
  for (const v of ms) recordMs(h, v);
  return encodeHistogram(h);
}

test('seconds: every count summed, errors by code merged, histograms merged, optional fields only when there is something', () => {
  const a = new SecondsAggregator(); // defaults: no callback, no extra RSS, no histograms kept
  const w0 = { openSockets: 10, reconnected: 2, sent: 5, acked: 4, errors: 2, errorsBy: { OVERLOADED: 2 }, delivered: 8 };
  const w1 = { openSockets: 20, reconnected: 3, sent: 7, acked: 6, errors: 2, errorsBy: { OVERLOADED: 1, 'closed-1006': 1 }, delivered: 9 };
  a.tick(tickReport(0, 0, { ...w0, ackHist: enc(0.5), fanoutHist: enc(1, 2), cpuPct: 40, rssBytes: 1000 }), [0, 1]);
  a.tick(tickReport(1, 0, { ...w1, ackHist: enc(1.5), lagHist: enc(0.25), cpuPct: 30.25, rssBytes: 3000 }), [0, 1]);
  a.tick(tickReport(0, 1, { cpuPct: 10 }), [0, 1]);
  a.tick(tickReport(1, 1, { cpuPct: 5 }), [0, 1]);
  assert.deepEqual(a.timeseries, [
    {
      t: 0,
      // 10 + 20, 2 + 3, 5 + 7, 4 + 6, 2 + 2, OVERLOADED 2 + 1, 8 + 9
      openSockets: 30,
      reconnected: 5,
      sent: 12,
      acked: 10,
      errors: 4,
      errorsByCode: { OVERLOADED: 3, 'closed-1006': 1 },
      delivered: 17,
      // acks {0.5, 1.5}: p50 0.5, p99 1.5; fan-out {1, 2}; lag {0.25}
      ackP50Ms: 0.5,
      ackP99Ms: 1.5,
      fanoutP50Ms: 1,
      fanoutP99Ms: 2,
      lagMsP99: 0.25,
      fleetCpuPct: 70.3, // 40 + 30.25 = 70.25, to one decimal
    },
    // a quiet second: no reconnected, no errorsByCode, empty histograms read 0
    timePoint(1, { fleetCpuPct: 15 }),
  ]);
  assert.equal(a.rssBytesMax, 4000, '1000 + 3000, nothing added by default');
  assert.equal(a.cpuPctMax, 40, 'the highest, not the last');
  assert.deepEqual(
    [...(a.cpuByWorker.get(0) ?? [])],
    [
      [0, 40],
      [1, 10],
    ],
  );
  assert.equal(a.deliveredInTicks, 17);
});

test('seconds: a worker first heard late holds nothing back; a tick for a second already emitted is not emitted again', () => {
  const seen: number[] = [];
  const a = new SecondsAggregator((p) => seen.push(p.t));
  a.tick(tickReport(0, 0, { sent: 1 }), [0, 1]);
  a.tick(tickReport(0, 1, { sent: 2 }), [0, 1]);
  assert.deepEqual(seen, [], 'worker 1 has ticked nothing');
  a.tick(tickReport(1, 0, { sent: 4 }), [0, 1]);
  assert.deepEqual(seen, [0], 'worker 1 ticked second 0 only');
  a.tick(tickReport(1, 1, { sent: 8 }), [0, 1]);
  a.tick(tickReport(0, 1, { sent: 16, delivered: 3 }), [0, 1]); // late: second 1 is out
  a.tick(tickReport(0, 0, { sent: 32, delivered: 5 }), [0, 1]); // later still
  a.flush(true);
  assert.deepEqual(seen, [0, 1]);
  assert.deepEqual(
    a.timeseries.map((p) => p.sent),
    [1 + 4, 2 + 8],
  );
  assert.equal(a.deliveredInTicks, 8, 'late ticks stay in the totals');
});

test('seconds: flush emits in time order; forced, it waits for no one; with no live worker, everything is ready', () => {
  const seen: number[] = [];
  const a = new SecondsAggregator((p) => seen.push(p.t));
  a.tick(tickReport(0, 2), [0, 1, 2]);
  a.tick(tickReport(1, 1), [0, 1, 2]);
  assert.deepEqual(seen, [], 'worker 2 has ticked nothing');
  a.flush(true, [0, 1, 2]);
  assert.deepEqual(seen, [1, 2]);
  a.tick(tickReport(0, 5), [0, 1]);
  assert.deepEqual(seen, [1, 2]);
  a.flush(false);
  assert.deepEqual(seen, [1, 2, 5]);
});

test("seconds: kept histograms (a segment's result) and the coordinator's own RSS", () => {
  const a = new SecondsAggregator(undefined, () => 500, true);
  a.tick(tickReport(0, 0, { ackHist: enc(0.5, 1.5), rssBytes: 1000 }), [0]);
  const h = a.timeseries[0]?.histograms;
  assert.deepEqual([h?.fanout, h?.lag], ['', '']);
  assert.deepEqual(decoded(h?.ack ?? ''), [2, 0.5, 1.5]);
  assert.equal(a.rssBytesMax, 1500);
});

// ---- clients/recorder.ts ----

test('recorder: the measured window is [start, end), the first drift window [start, start + drift), the last [end - drift, end)', () => {
  const r = recorder();
  // scheduled at 999 (warm-up), 1000, 1499 (first drift window), 1500 (last: 2000 - 500), 2000 (after); each sent 1.5 ms late
  const ats = [999, 1000, 1499, 1500, 2000];
  for (const [n, at] of ats.entries()) r.sentUpdate(0, n, at, at + 1.5);
  for (const [n, at] of ats.entries()) r.frame(0, ack(`p-${n}`, n + 1), at + 2); // answered 2 ms after `at`, 0.5 ms after the send
  assert.deepEqual([r.sent, r.acked], [5, 5]);
  assert.deepEqual(cm(r.ack.corrected), [3, 2]);
  assert.deepEqual(cm(r.ack.uncorrected), [3, 0.5]);
  assert.deepEqual([r.ack.first.totalCount, r.ack.last.totalCount], [2, 1]);
  assert.deepEqual(cm(r.lag), [3, 1.5], 'send lag of the three measured updates');
  const s = r.second();
  assert.deepEqual([s.sent, s.acked], [5, 5]);
  assert.deepEqual(decoded(s.lagHist), [5, 1.5, 1.5], 'every send this second, measured or not');
  assert.deepEqual(decoded(s.ackHist), [5, 2, 2]);
  // a window never set measures nothing
  const w = new MeasuredWindow();
  assert.deepEqual([w.has(0), w.has(-1e12), w.has(1e12)], [false, false, false]);
});

test('recorder: failed handshakes by kind; the final report carries every histogram and the examples', () => {
  const r = recorder();
  r.connected(1.25);
  r.connected(0.75);
  r.connectFailed('refused');
  r.connectFailed('timeout');
  r.connectFailed('refused');
  r.sentUpdate(1, 0, 1100, 1100.5);
  r.frame(1, ack('p-0', 1), 1101);
  r.frame(2, bcast(11, 'p-0', 1, 1100, 1100.5), 1101.5);
  r.frame(0, bcast(10, 'p-9', 2, 1100), 1101); // its own update
  const fin = r.final(2500, () => true, 0);
  assert.deepEqual(fin.sockets.failuresByKind, { refused: 2, timeout: 1 });
  assert.equal(fin.sockets.reached, 2);
  assert.deepEqual(Object.fromEntries(Object.entries(fin.hist).map(([k, v]) => [k, decoded(v)])), {
    connect: [2, 0.75, 1.25],
    ack: [1, 1, 1], // 1101 - 1100
    ackUncorrected: [1, 0.5, 0.5], // 1101 - 1100.5
    fanout: [1, 1.5, 1.5],
    fanoutUncorrected: [1, 1, 1],
    lag: [1, 0.5, 0.5],
    ackFirst: [1, 1, 1],
    ackLast: [0, 0, 0],
    fanoutFirst: [1, 1.5, 1.5],
    fanoutLast: [0, 0, 0],
  });
  assert.deepEqual(fin.examples, ['self-echo: user 10 got its own update p-9']);
  assert.deepEqual(fin.acked, [[11, 'p-0', 1]], 'no time in the untimed ledger');
  assert.deepEqual(fin.errorsByKind, { 'self-echo': 1 }, 'no unsent-at-finish when nothing was unsent');
});

test("recorder: an early close abandons that user's updates only, including its update 0, not the next user's", () => {
  const r = recorder();
  r.sentUpdate(0, 5, 1100, 1100);
  r.sentUpdate(1, 0, 1100, 1100);
  r.sentUpdate(1, 7, 1100, 1100);
  r.sentUpdate(2, 0, 1100, 1100);
  r.closed(1, 1001, true);
  assert.equal(r.pendingCount, 2);
  r.stall(2);
  const fin = r.final(2500, () => true, 0);
  // still pending first (in the order sent), then the abandoned ones
  assert.deepEqual(fin.unanswered, [
    [10, 'p-5'],
    [12, 'p-0'],
    [11, 'p-0'],
    [11, 'p-7'],
  ]);
  assert.deepEqual([fin.updates.unanswered, fin.updates.unansweredAtClose], [4, 2]);
  // the stalled user's unanswered update is left out of the latency: 3 at 2500 - 1100 = 1400 ms
  assert.equal(r.ack.corrected.totalCount, 3);
  assert.deepEqual(fin.errorsByKind, { 'closed-1001': 1 });
});

test('recorder: a failed reconnect gives one example, the first, and only with a kind; examples stop at ten', () => {
  const a = recorder();
  a.reconnect(false);
  a.reconnect(false, 'timeout');
  a.kind('no-example');
  assert.deepEqual(a.examples, [], 'the first failure had no kind, the second is not the first; a kind without an example adds none');
  const b = recorder();
  b.reconnect(false, 'refused');
  assert.deepEqual(b.examples, ['reconnect failed: refused']);
  const c = recorder();
  for (let i = 0; i <= 10; i++) c.kind(`k${i}`, `e${i}`);
  c.kind('bare');
  c.sendOnClosed();
  c.reconnect(false, 'refused');
  assert.deepEqual(
    c.examples,
    Array.from({ length: 10 }, (_, i) => `k${i}: e${i}`),
  );
  const s = c.second();
  assert.equal(s.errors, 13); // k0..k10, bare, send-not-open
  assert.deepEqual([c.errorsByKind['send-not-open'], c.errorsByKind.bare, c.errorsByKind.k10], [1, 1, 1]);
});

test("recorder: an error answers its own user's update, 0 included; an id that is not ours answers nothing, not even the update its key would alias", () => {
  const r = recorder({ users: [10, 11] });
  // user 1's id -1 would be key 1 * 100,000,000 - 1: user 0's update 99,999,999
  r.sentUpdate(0, 99_999_999, 1100, 1100);
  r.sentUpdate(1, 0, 1100, 1100);
  r.sentUpdate(1, 3, 1100, 1100);
  r.frame(1, error('OVERLOADED', 'p-0'), 1101);
  r.frame(1, error('OVERLOADED', 'p-3'), 1101);
  r.frame(1, error('BAD_MESSAGE', 'x-9'), 1101);
  r.frame(1, ack('x-9', 4), 1101);
  assert.equal(r.pendingCount, 1);
  const s = r.second();
  assert.deepEqual([s.errors, s.errorsBy, s.acked], [4, { OVERLOADED: 2, BAD_MESSAGE: 1, 'unknown-ack': 1 }, 0]);
  const fin = r.final(2500, () => true, 0);
  assert.deepEqual(fin.errored, [
    [11, 'p-0', 'OVERLOADED'],
    [11, 'p-3', 'OVERLOADED'],
  ]);
  assert.deepEqual(fin.unanswered, [[10, 'p-99999999']]);
  assert.deepEqual(fin.errorsByCode, { OVERLOADED: 2, BAD_MESSAGE: 1 });
});

test('recorder: every other update under a used seq is a conflict once, however the sender or the id differs; receipts count for members other than the sender', () => {
  const r = recorder();
  r.frame(1, bcast(13, 'x-1', 78, 1100), 1101);
  r.frame(2, bcast(13, 'x-1', 78, 1100), 1101); // the same update: no conflict
  r.frame(1, bcast(13, 'x-2', 78, 1100), 1101); // same sender, other id
  r.frame(1, bcast(14, 'x-1', 78, 1100), 1101); // other sender, same id
  r.frame(1, bcast(13, 'x-3', 78, 1100), 1101); // the sender of an earlier other, a new id
  r.frame(1, bcast(14, 'x-2', 78, 1100), 1101); // the id of an earlier other, another sender
  r.frame(2, bcast(13, 'x-2', 78, 1100), 1101); // an earlier other again: already in the ledger
  assert.equal(r.errorsByKind['seq-conflict'], 4);
  assert.deepEqual(
    r.examples,
    ['13/x-2', '14/x-1', '13/x-3', '14/x-2'].map((o) => `seq-conflict: board 1 seq 78: 13/x-1 and ${o}`),
  );
  // user 1 took only the first of its five, user 2 the first of its two
  assert.deepEqual([r.receivedFrames, r.duplicate], [7, 5]);
  // user 10 sends p-1, acked with seq 81 (so its own seqs hold 81), broadcast to 11 and 12
  r.sentUpdate(0, 1, 1200, 1200);
  r.frame(0, ack('p-1', 81), 1201);
  r.frame(1, bcast(10, 'p-1', 81, 1200), 1201);
  r.frame(2, bcast(10, 'p-1', 81, 1200), 1201);
  const fin = r.final(2500, () => true, 0);
  assert.deepEqual(fin.seen, [
    [1, 78, 13, 'x-1', 2, 1100],
    [1, 78, 13, 'x-2', 0, 1100],
    [1, 78, 14, 'x-1', 0, 1100],
    [1, 78, 13, 'x-3', 0, 1100],
    [1, 78, 14, 'x-2', 0, 1100],
    [1, 81, 10, 'p-1', 2, 1200], // 11 and 12, not its sender 10
  ]);
});

test('recorder: only sampled updates scheduled in the window give recipient samples', () => {
  // seed 1, 1 in 2: (10, p-0) and (10, p-3) are sampled, (10, p-2) is not (a precondition of the fixture, not a result)
  assert.deepEqual(
    ['p-0', 'p-2', 'p-3'].map((id) => isSampled(1, 10, id, 2)),
    [true, false, true],
  );
  const r = recorder({ sampleEvery: 2, users: [11, 12] });
  r.frame(0, bcast(10, 'p-0', 1, 1100), 1103);
  r.frame(1, bcast(10, 'p-0', 1, 1100), 1104.5);
  r.frame(0, bcast(10, 'p-2', 2, 1100), 1105); // not sampled
  r.frame(0, bcast(10, 'p-3', 3, 900), 1105); // sampled, but scheduled in the warm-up
  assert.deepEqual(r.final(2500, () => true, 0).samples, [['10|p-0', [3, 4.5]]]);
});

test('recorder: under a reused seq, each update is sampled by its own (from, id), not by the first one seen under that seq', () => {
  // seed 1, 1 in 2: (10, p-0) and (10, p-3) are sampled, (10, p-2) is not (as above)
  const r = recorder({ sampleEvery: 2, users: [11, 12] });
  r.frame(0, bcast(10, 'p-0', 5, 1100), 1102); // sampled: 2 ms
  r.frame(1, bcast(10, 'p-2', 5, 1100), 1103); // seq 5 again, for an update that is not sampled
  r.frame(0, bcast(10, 'p-2', 6, 1100), 1104); // not sampled, first under seq 6
  r.frame(1, bcast(10, 'p-3', 6, 1100), 1105); // seq 6 again, for a sampled update: 5 ms
  // the same id from another sender: (13, x-1) is not sampled, (14, x-1) is (a precondition, as above)
  assert.deepEqual([isSampled(1, 13, 'x-1', 2), isSampled(1, 14, 'x-1', 2)], [false, true]);
  r.frame(0, bcast(13, 'x-1', 7, 1100), 1106);
  r.frame(1, bcast(14, 'x-1', 7, 1100), 1107); // 7 ms
  assert.equal(r.errorsByKind['seq-conflict'], 3);
  assert.deepEqual(r.final(2500, () => true, 0).samples, [
    ['10|p-0', [2]],
    ['10|p-3', [5]],
    ['14|x-1', [7]],
  ]);
});
