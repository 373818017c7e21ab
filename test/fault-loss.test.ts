/** What each fault cost (runner/fault-loss.ts), pure and exact. The fault runs are in faults.test.ts. */
import { timePoint } from './helpers/time-point.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Fault, FaultRecord } from '../model/faults.js';
import type { Ledger, TimePoint } from '../model/fleet-result.js';
import { compareLedger, type StoredState } from '../runner/audit.js';
import { allBackSec, faultOwning, faultRecords, type FaultTiming } from '../runner/fault-loss.js';

test('a fault owns what happened from 1 s before it to 1 s before the next; no time: the last', () => {
  const starts = [10_000, 20_000];
  assert.deepEqual(
    [0, 9_500, 18_999, 19_000, 25_000, null].map((ms) => faultOwning(starts, ms)),
    [0, 0, 0, 1, 1, 1],
  );
  assert.equal(faultOwning([], 5), -1);
});

test('all sockets back: seconds from the fault until as many are open as before it', () => {
  const ts = (open: number[]): TimePoint[] => open.map((o, t) => timePoint(t, { openSockets: o }));
  assert.equal(allBackSec(ts([300, 300, 300, 0, 0, 120, 299, 300, 300]), 3.5, Infinity), 4.5);
  assert.equal(allBackSec(ts([300, 300, 300, 300]), 1.5, Infinity), 0, 'none closed');
  assert.equal(allBackSec(ts([300, 300, 10, 10]), 1.5, Infinity), null, 'never back');
});

test('fault records: loss attributed by time, exact numbers', () => {
  const kill: Fault = { kind: 'kill', atSec: 8, restartAfterSec: 2 };
  const full: Fault = { kind: 'disk-full', atSec: 20, durationSec: 5 };
  const rss = { before: 100, duringMax: null, after: 90 };
  const faults: FaultTiming[] = [
    { spec: kill, injected: 'SIGKILL of 1 process(es)', startMs: 10_000, endMs: 13_000, readyMs: 13_000, rssBytes: rss },
    { spec: full, injected: 'disk full', startMs: 22_000, endMs: 27_000, rssBytes: { before: 95, duringMax: 97, after: 96 } },
  ];
  // board 1: seqs 1..3 stored, 4..5 broadcast and lost in the crash, the restart skips to 11; seq 12 a failed write
  const ev = (seq: number, user: number, id: string, committedAt: number) => ({
    board: 1,
    seq,
    card: 1,
    user,
    clientMsgId: id,
    col: 'doing',
    title: '',
    committedAt,
  });
  const stored: StoredState = {
    boards: [{ id: 1, seq: 13 }],
    cards: [],
    events: [ev(1, 5, 'a', 5_000), ev(2, 5, 'b', 6_000), ev(3, 6, 'c', 9_900), ev(11, 5, 'd', 13_500), ev(13, 6, 'f', 26_000)],
  };
  const ledger: Ledger = {
    acked: [
      [5, 'a', 1, 5_010],
      [5, 'b', 2, 6_010],
      [6, 'c', 3, 9_910],
      [5, 'd', 11, 13_520],
      [6, 'f', 13, 26_010],
    ],
    errored: [[6, 'e', 'WRITE_FAILED']],
    unanswered: [
      [5, 'x', 9_950],
      [6, 'y', 9_960],
    ],
    seen: [
      [6, 'c', 1, 3, 9_880],
      [5, 'x', 1, 4, 9_950],
      [6, 'y', 1, 5, 9_960],
      [5, 'd', 1, 11, 13_400],
      [6, 'e', 1, 12, 23_000],
    ],
  };
  const audit = compareLedger(stored, ledger, { collect: true, boardOfUser: () => 1 });
  const p = (t: number, open: number, errorsByCode?: Record<string, number>, reconnected?: number): TimePoint =>
    timePoint(t, { openSockets: open, ...(reconnected ? { reconnected } : {}), ...(errorsByCode ? { errorsByCode } : {}) });
  // the fleet's origin at 2 s: the kill is at t = 8, the disk-full at t = 20
  const timeseries = [p(7, 2), p(8, 0, { 'closed-1006': 2, 'send-not-open': 3 }), p(9, 0), p(10, 0), p(11, 2, undefined, 2), p(21, 2, { WRITE_FAILED: 1 })];
  const recs = faultRecords({ faults, originMs: 2_000, ledger, audit, stored, timeseries });
  const [k, d] = recs as [FaultRecord, FaultRecord];
  assert.deepEqual(k.loss, {
    lostAcked: 0,
    broadcastNotStored: 2,
    maxBroadcastToCrashMs: 50,
    unanswered: 2,
    storedUnacked: 0,
    seqGapSeqs: 7,
    boardsWithGaps: 1,
    seqReused: 0,
  });
  assert.deepEqual(k.restart, { readyMs: 3000, firstAckMs: 520 });
  assert.deepEqual([k.atT, k.endT], [8, 11]);
  assert.deepEqual(k.errorsByCode, { 'closed-1006': 2, 'send-not-open': 3 });
  assert.deepEqual(k.sockets, { closed: 2, reconnected: 2, sendsOnClosed: 3, allBackSec: 4 });
  assert.deepEqual(d.loss, {
    lostAcked: 0,
    broadcastNotStored: 1,
    maxBroadcastToCrashMs: null,
    unanswered: 0,
    storedUnacked: 0,
    seqGapSeqs: 1,
    boardsWithGaps: 1,
    seqReused: 0,
  });
  assert.deepEqual(d.errorsByCode, { WRITE_FAILED: 1 });
  assert.equal(d.restart, undefined);
  assert.deepEqual(d.rssBytes, { before: 95, duringMax: 97, after: 96 });
});
