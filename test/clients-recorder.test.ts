/** The fleet worker's recorder: latency and accounting with exact numbers, no sockets, no clock. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newHistogram, percentilesOf, recordMs } from '../clients/histogram.js';
import type { TickReport } from '../clients/ipc.js';
import { Recorder } from '../clients/recorder.js';
import { SecondsAggregator } from '../clients/seconds.js';
import { ack, bcast } from './helpers/server-frames.js';
import { tickReport } from './helpers/tick-report.js';

/** What an HDR histogram (3 significant digits) reports for one recorded value: the top of its bucket. */
function hdr(ms: number): number {
  const h = newHistogram();
  recordMs(h, ms);
  return percentilesOf(h).max;
}

/** Three users of board 1 (users 10, 11, 12), measured window [1000, 2000), drift windows of 500 ms. */
function recorder(): Recorder {
  const r = new Recorder({ idPrefix: 'p', seed: 1, sampleEvery: 1, users: [10, 11, 12].map((user) => ({ user, board: 1 })) });
  r.setWindow(1000, 2000, 500);
  return r;
}

test('acks: latency from the scheduled time and from the send, drift windows, warm-up not measured, unknown acks counted', () => {
  const r = recorder();
  r.sentUpdate(0, 0, 1100, 1105);
  r.sentUpdate(0, 1, 900, 900); // warm-up: answered, but not measured
  r.frame(0, ack('p-0', 1), 1150);
  r.frame(0, ack('p-1', 2), 960);
  r.frame(0, ack('x-5', 3), 1200);
  assert.equal(r.pendingCount, 0);
  assert.deepEqual([r.sent, r.acked], [2, 2]);
  const c = percentilesOf(r.ack.corrected);
  assert.deepEqual([c.count, c.max], [1, hdr(50)]);
  assert.equal(percentilesOf(r.ack.uncorrected).max, hdr(45));
  assert.deepEqual([r.ack.first.totalCount, r.ack.last.totalCount], [1, 0]);
  assert.deepEqual(r.errorsByKind, { 'unknown-ack': 1 });
  assert.deepEqual(r.examples, ['unknown-ack: user 10 id x-5']);
});

test('broadcasts: fan-out per recipient, duplicates, reordering, self-echo, sampled recipients', () => {
  const r = recorder();
  r.frame(1, bcast(10, 'p-0', 1, 1100, 1105), 1160);
  r.frame(2, bcast(10, 'p-0', 1, 1100, 1105), 1170);
  r.frame(2, bcast(10, 'p-0', 1, 1100, 1105), 1180); // the same seq again: a duplicate
  r.frame(1, bcast(99, 'q-3', 3, 1200), 1210);
  r.frame(1, bcast(99, 'q-2', 2, 1200), 1220); // below the last seq this socket saw
  r.frame(0, bcast(10, 'p-9', 4, 1200), 1230); // its own update
  const f = percentilesOf(r.fanout.corrected);
  assert.deepEqual([f.count, f.p50, f.max], [4, hdr(20), hdr(70)]);
  assert.equal(percentilesOf(r.fanout.uncorrected).max, hdr(65));
  assert.deepEqual([r.receivedFrames, r.duplicate, r.outOfOrder], [5, 1, 1]);
  assert.deepEqual(r.errorsByKind, { 'self-echo': 1 });
  const s = r.second();
  assert.deepEqual([s.delivered, s.errors, s.errorsBy], [5, 1, { 'self-echo': 1 }]);
  assert.equal(r.second().delivered, 0, 'a second starts from zero');
  const fin = r.final(2500, () => true, 0);
  assert.deepEqual(
    fin.samples.find(([k]) => k === '10|p-0'),
    ['10|p-0', [60, 70]],
  );
  // receipts by whole-window members: seq 1 by users 11 and 12 (not its sender 10)
  assert.deepEqual(
    fin.seen.sort((a, b) => a[1] - b[1]),
    [
      [1, 1, 10, 'p-0', 2, 1105],
      [1, 2, 99, 'q-2', 1, 1200],
      [1, 3, 99, 'q-3', 1, 1200],
    ],
  );
});

test('errors answer their update; what is never answered counts with the lower bound of its latency; unsent and early closes are counted', () => {
  const r = recorder();
  for (let i = 0; i < 3; i++) r.connected(5);
  r.sentUpdate(0, 2, 1800, 1810);
  r.sentUpdate(1, 3, 1900, 1900);
  r.frame(0, { type: 'error', id: 'p-2', code: 'OVERLOADED', message: 'full' }, 1820);
  r.frame(1, { type: 'error', code: 'BAD_MESSAGE', message: 'no id' }, 1830);
  r.closed(1, 1006, true); // user 1's update p-3 was in flight: it can no longer be answered
  r.closed(2, 1000, false);
  assert.equal(r.pendingCount, 0);
  const fin = r.final(2500, (u) => u !== 2, 7);
  assert.deepEqual(fin.updates, { sent: 2, acked: 0, errored: 1, unanswered: 1, unansweredAtClose: 1 });
  assert.deepEqual(fin.errored, [[10, 'p-2', 'OVERLOADED']]);
  assert.deepEqual(fin.unanswered, [[11, 'p-3']]);
  assert.deepEqual(fin.errorsByCode, { OVERLOADED: 1, BAD_MESSAGE: 1 });
  assert.deepEqual(fin.errorsByKind, { 'closed-1006': 1, 'unsent-at-finish': 7 });
  assert.deepEqual(fin.sockets, {
    asked: 3,
    reached: 3,
    failuresByKind: {},
    closedEarly: 1,
    closedEarlyByCode: { 1006: 1 },
    sendsOnClosed: 0,
    reconnects: { attempted: 0, succeeded: 0, failed: 0 },
    stalled: 0,
  });
  assert.deepEqual(fin.notWholeUsers, [12]);
  // the unanswered update, scheduled at 1900 in the last drift window: at least 600 ms
  assert.deepEqual([percentilesOf(r.ack.corrected).max, r.ack.last.totalCount, r.ack.first.totalCount], [hdr(600), 1, 0]);
  assert.equal(r.openSockets, 1);
});

test('a reused seq: the other update goes to the ledger even when the member drops it as a duplicate; reconnects, sends on closed sockets, timed ledger', () => {
  const r = new Recorder({ idPrefix: 'p', seed: 1, sampleEvery: 1, users: [10, 11, 12].map((user) => ({ user, board: 1 })), timedLedger: true });
  r.setWindow(1000, 2000, 500);
  for (let i = 0; i < 3; i++) r.connected(5);
  r.frame(1, bcast(13, 'x-1', 78, 1100, 1101), 1110);
  // after a restart, seq 78 again for another update: user 11 drops it as a duplicate, user 12 takes it
  r.frame(1, bcast(16, 'y-1', 78, 1300, 1302), 1310);
  r.frame(2, bcast(16, 'y-1', 78, 1300, 1302), 1311);
  assert.deepEqual([r.duplicate, r.errorsByKind['seq-conflict']], [1, 1]);
  r.sentUpdate(0, 4, 1400, 1401);
  r.frame(0, ack('p-4', 80), 1420);
  r.sentUpdate(0, 5, 1500, 1502);
  r.closed(0, 1006, true);
  r.sendOnClosed();
  r.reconnect(false, 'refused');
  r.reconnect(true);
  const s = r.second();
  assert.deepEqual([s.openSockets, s.reconnected], [3, 1]);
  const fin = r.final(2500, () => true, 0);
  assert.deepEqual(
    fin.seen.map((e) => e.slice(0, 4).concat(e[5] ?? [])),
    [
      [1, 78, 13, 'x-1', 1101],
      [1, 78, 16, 'y-1', 1302],
    ],
  );
  assert.deepEqual(fin.acked, [[10, 'p-4', 80, 1420]]);
  assert.deepEqual(fin.unanswered, [[10, 'p-5', 1502]]);
  assert.deepEqual(
    [fin.sockets.sendsOnClosed, fin.sockets.reconnects, fin.sockets.closedEarlyByCode],
    [1, { attempted: 2, succeeded: 1, failed: 1 }, { 1006: 1 }],
  );
});

test('a socket stalled on purpose (slow consumer): its receipts and acks count in the accounting, not in the latency', () => {
  const r = recorder();
  r.stall(1);
  r.stall(1);
  r.frame(1, bcast(10, 'p-0', 1, 1100), 9000); // the stalled member reads its backlog 7.9 s late
  r.frame(2, bcast(10, 'p-0', 1, 1100), 1110);
  r.sentUpdate(1, 3, 1200, 1200);
  r.frame(1, ack('p-3', 2), 9000);
  assert.deepEqual([r.receivedFrames, r.acked, r.stalled], [2, 1, 1]);
  assert.deepEqual([percentilesOf(r.fanout.corrected).count, percentilesOf(r.fanout.corrected).max], [1, hdr(10)]);
  assert.equal(percentilesOf(r.ack.corrected).count, 0);
  assert.equal(r.final(9500, () => true, 0).acked.length, 1);
});

test("the fleet's seconds: summed over workers, emitted once every live worker ticked, late ticks kept out of the series", () => {
  const tick = (index: number, t: number, sent: number, cpuPct: number): TickReport =>
    tickReport(index, t, { openSockets: 10, sent, acked: sent, delivered: 2 * sent, cpuPct, rssBytes: 1000 });
  const seen: number[] = [];
  const a = new SecondsAggregator(
    (p) => seen.push(p.t),
    () => 500,
  );
  a.tick(tick(0, 0, 5, 40), [0, 1]);
  assert.deepEqual(seen, [], 'worker 1 has not ticked second 0 yet');
  a.tick(tick(1, 0, 7, 55.55), [0, 1]);
  assert.deepEqual(seen, [0]);
  assert.deepEqual((({ t, openSockets, sent, delivered, fleetCpuPct }) => ({ t, openSockets, sent, delivered, fleetCpuPct }))(a.timeseries[0]!), {
    t: 0,
    openSockets: 20,
    sent: 12,
    delivered: 24,
    fleetCpuPct: 95.6,
  });
  a.tick(tick(0, 1, 1, 10), [0]); // worker 1 finished: only worker 0 is waited for
  a.tick(tick(1, 0, 9, 99), [0]); // late for second 0: out of the series, in the totals
  assert.deepEqual(seen, [0, 1]);
  assert.equal(a.deliveredInTicks, 2 * (5 + 7 + 1 + 9));
  assert.equal(a.cpuPctMax, 99);
  assert.equal(a.rssBytesMax, 2 * 1000 + 500);
  assert.equal(a.cpuByWorker.get(1)?.get(0), 99);
});
