/**
 * What each fault cost (runner/fault-loss.ts), every rule pinned on hand-built inputs with hand-worked
 * numbers: the tests that kill the mutants `npm run mutation` found surviving (issue 17). Pure, milliseconds.
 */
import { timePoint } from './helpers/time-point.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Fault, FaultRecord } from '../model/faults.js';
import type { Ledger, TimePoint } from '../model/fleet-result.js';
import type { AuditReportDetailed, StoredState } from '../runner/audit.js';
import { allBackSec, FAULT_LEAD_MS, faultOwning, faultRecords, type FaultTiming } from '../runner/fault-loss.js';
import { storedEvent } from './helpers/audit-db.js';

const point = (t: number, open: number, extra: Partial<TimePoint> = {}): TimePoint => timePoint(t, { openSockets: open, ...extra });
const opens = (open: number[]): TimePoint[] => open.map((o, t) => point(t, o));
const ev = storedEvent;

test('ownership: the lead, the boundaries of a middle fault, and times that are no time', () => {
  assert.equal(FAULT_LEAD_MS, 1000);
  const starts = [10_000, 20_000, 30_000];
  assert.deepEqual(
    [-5, 18_999, 19_000, 28_999, 29_000, 1e9].map((ms) => faultOwning(starts, ms)),
    [0, 0, 1, 1, 2, 2],
  );
  // undefined, NaN and -Infinity belong to the last fault (a loop over the starts would give 0)
  assert.deepEqual(
    [undefined, null, Number.NaN, Number.NEGATIVE_INFINITY].map((ms) => faultOwning(starts, ms)),
    [2, 2, 2, 2],
  );
  assert.equal(faultOwning([10_000], -1), 0);
  assert.equal(faultOwning([], null), -1);
  assert.equal(faultOwning([], 15_000), -1);
});

test('all back: the second before the fault is the reference, the span stops at the next fault, seconds rounded to 0.1', () => {
  // the reference is the last second ending by atT (t = 2: 80 open), not an earlier one (t = 0, 1: 100)
  assert.equal(allBackSec(opens([100, 100, 80, 60, 80]), 3, Infinity), 2);
  // atT 3.25: reference t = 2; t = 3 dips, t = 4 is back: 5 - 3.25 = 1.75 -> 1.8
  assert.equal(allBackSec(opens([100, 100, 80, 60, 80]), 3.25, Infinity), 1.8);
  // back only at t = 2, which is the next fault's: never back in this fault's span
  assert.equal(allBackSec(opens([100, 50, 100]), 1, 2), null);
  assert.equal(allBackSec(opens([100, 50, 100]), 1, 2.5), 2);
  // as many open as before is back; more is back too
  assert.equal(allBackSec(opens([100, 50, 100, 100]), 1, Infinity), 2);
  assert.equal(allBackSec(opens([100, 50, 101]), 1, Infinity), 2);
  // no second before the fault: unknown
  assert.equal(allBackSec(opens([100, 100]), 0, Infinity), null);
  assert.equal(allBackSec([], 5, Infinity), null);
  // none closed
  assert.equal(allBackSec(opens([100, 100, 100]), 1, Infinity), 0);
});

/**
 * Three faults on a clock whose origin is 1000 ms: a kill at 11 s (t 10), a disk-full at 21 s (t 20),
 * a kill at 31 s (t 30). Ownership by ms: the first < 20000, the second 20000..29999, the third
 * >= 30000 and anything with no time.
 */
test('fault records: three faults, every count and window worked out by hand', () => {
  const kill: Fault = { kind: 'kill', atSec: 10, restartAfterSec: 1 };
  const full: Fault = { kind: 'disk-full', atSec: 20, durationSec: 2 };
  const kill2: Fault = { kind: 'kill', atSec: 30, restartAfterSec: 0.5 };
  const faults: FaultTiming[] = [
    {
      spec: kill,
      injected: 'SIGKILL of 2 process(es)',
      startMs: 11_000,
      endMs: 12_000,
      readyMs: 13_250.25,
      rssBytes: { before: 100, duringMax: null, after: 90 },
      problem: 'restart slow',
    },
    { spec: full, injected: 'disk full', startMs: 21_000, endMs: 23_000.4, rssBytes: { before: 95, duringMax: 97, after: 96 } },
    {
      spec: kill2,
      injected: 'SIGKILL of 1 process(es)',
      startMs: 31_000,
      endMs: 31_500,
      readyMs: 32_000,
      rssBytes: { before: null, duringMax: null, after: null },
    },
  ];
  const items = {
    // [user, id, seq, ackAt?]: 19_999 and 5_000 -> first; 20_000 -> second; none -> third
    lostAcked: [
      [1, 'a', 1, 19_999],
      [1, 'b', 2, 20_000],
      [1, 'c', 3],
      [1, 'd', 4, 5_000],
    ] as Ledger['acked'],
    // [user, id, board, seq, sentAt?]
    phantom: [
      [2, 'p1', 1, 100, 10_749.75], // first (kill): 250.25 ms before the kill
      [2, 'p2', 1, 101, 10_900], // first: 100 ms before
      [2, 'p3', 1, 102, 11_500], // first: after the kill started, no gap
      [2, 'p4', 1, 103, 20_500], // second (disk-full): no gap for a disk-full
      [2, 'p5', 1, 104, 31_400], // third (kill): after it started, no gap
      [2, 'p6', 1, 105], // third: no time
    ] as Ledger['seen'],
    // [user, id, sentAt?]
    storedUnanswered: [
      [4, 's1', 25_000],
      [4, 's2', 2_000],
      [4, 's3', 21_000],
    ] as Ledger['unanswered'],
  };
  const audit = {
    items,
    reusedSeqs: [
      [1, 5],
      [1, 9],
      [2, 4],
      [2, 3],
      [1, 40],
    ],
  } as unknown as AuditReportDetailed;
  // board 1 (seq 30): 1, 2, 5 (committed 15000), 9 (25000): gaps 3-4 -> first, 6-8 -> second, 10-30 -> third
  // board 2 (seq 4): 2 (26000), 4 (no time): gaps 1 -> second, 3 -> third
  const stored: StoredState = {
    boards: [
      { id: 1, seq: 30 },
      { id: 2, seq: 4 },
    ],
    cards: [],
    events: [ev(1, 1, 5_000), ev(1, 2, 6_000), ev(1, 5, 15_000), ev(1, 9, 25_000), ev(2, 2, 26_000), ev(2, 4)],
  };
  const ledger: Ledger = {
    acked: [
      [1, 'k1', 1, 13_249], // before the restart answered
      [1, 'k2', 2], // no time
      [1, 'k3', 3, 13_400.5],
      [1, 'k4', 4, 13_250.25], // the first ack at or after the restart: 0 ms
    ],
    errored: [],
    unanswered: [
      [3, 'u1', 19_000],
      [3, 'u2', 29_999],
      [3, 'u3'],
      [3, 'u4', 30_000],
    ],
    // seq 2/3 was first seen at 12000 (first fault), later at 31000; 2/4 (stored without a time) seen at 14000
    seen: [
      [5, 'r1', 2, 3, 12_000],
      [6, 'r2', 2, 3, 31_000],
      [5, 'r3', 2, 4, 14_000],
    ],
  };
  const timeseries: TimePoint[] = [
    point(9, 100, { acked: 5, ackP99Ms: 900, delivered: 5, fanoutP99Ms: 950, errorsByCode: { 'closed-1006': 100 }, reconnected: 1000 }),
    point(10, 98, { acked: 3, ackP99Ms: 40, delivered: 0, fanoutP99Ms: 999, errorsByCode: { 'closed-1006': 2, 'send-not-open': 1 } }),
    point(11, 90, { acked: 0, ackP99Ms: 777, delivered: 4, fanoutP99Ms: 60, errorsByCode: { 'closed-1001': 3, OVERLOADED: 4 }, reconnected: 2 }),
    point(12, 99, { acked: 2, ackP99Ms: 55, delivered: 1, fanoutP99Ms: 30, errorsByCode: { 'send-not-open': 5, OVERLOADED: 1 }, reconnected: 1 }),
    point(13, 100, { acked: 1, ackP99Ms: 50, delivered: 1, fanoutP99Ms: 20, errorsByCode: { 'closed-1006': 50 }, reconnected: 4 }),
    point(14, 100, { acked: 1, ackP99Ms: 500, delivered: 1, fanoutP99Ms: 500, reconnected: 8 }),
    point(19, 100, { reconnected: 16 }),
    point(20, 100, { acked: 1, ackP99Ms: 10, delivered: 1, fanoutP99Ms: 11, errorsByCode: { WRITE_FAILED: 2 }, reconnected: 32 }),
    point(21, 100),
    point(24, 100, { acked: 1, ackP99Ms: 12, errorsByCode: { WRITE_FAILED: 7 } }),
    point(25, 100, { acked: 1, ackP99Ms: 999, delivered: 1, fanoutP99Ms: 999 }),
    point(29, 100),
    point(30, 50, { errorsByCode: { 'closed-1006': 1 } }),
    point(31, 60, { errorsByCode: { 'closed-1006': 2 } }),
  ];
  const recs = faultRecords({ faults, originMs: 1_000, ledger, audit, stored, timeseries });
  const [a, b, c] = recs as [FaultRecord, FaultRecord, FaultRecord];
  assert.equal(recs.length, 3);
  assert.deepEqual(a, {
    kind: 'kill',
    spec: kill,
    injected: 'SIGKILL of 2 process(es)',
    atT: 10,
    endT: 11,
    loss: {
      lostAcked: 2,
      broadcastNotStored: 3,
      maxBroadcastToCrashMs: 250.3,
      unanswered: 1,
      storedUnacked: 1,
      seqGapSeqs: 2,
      boardsWithGaps: 1,
      // 1/5 (committed 15000), 2/4 (no commit time, seen 14000), 2/3 (first seen 12000)
      seqReused: 3,
    },
    // t 10..13 (to endT + 2): acks 40, 55, 50 (777 had no ack); broadcasts 60, 30, 20 (999 had none)
    latencyMax: { ackP99Ms: 55, fanoutP99Ms: 60 },
    // t 10..12 (to endT + 1)
    errorsByCode: { 'closed-1006': 2, 'send-not-open': 6, 'closed-1001': 3, OVERLOADED: 5 },
    // reconnected t 10..19: 2 + 1 + 4 + 8 + 16; all back at t 13: 13 + 1 - 10
    sockets: { closed: 5, reconnected: 31, sendsOnClosed: 6, allBackSec: 4 },
    rssBytes: { before: 100, duringMax: null, after: 90 },
    // ready 13250.25 - 11000 = 2250.25 -> 2250.3; the first ack at or after it is 13250.25
    restart: { readyMs: 2250.3, firstAckMs: 0 },
    problem: 'restart slow',
  });
  assert.deepEqual(b, {
    kind: 'disk-full',
    spec: full,
    injected: 'disk full',
    atT: 20,
    endT: 22, // 22.0004 rounded to the ms
    loss: {
      lostAcked: 1,
      broadcastNotStored: 1,
      maxBroadcastToCrashMs: null,
      unanswered: 1,
      storedUnacked: 2,
      seqGapSeqs: 4,
      boardsWithGaps: 2,
      seqReused: 1,
    },
    // t 20..24: acks 10, 12; broadcasts 11
    latencyMax: { ackP99Ms: 12, fanoutP99Ms: 11 },
    // t 20..23
    errorsByCode: { WRITE_FAILED: 2 },
    sockets: { closed: 0, reconnected: 32, sendsOnClosed: 0, allBackSec: 0 },
    rssBytes: { before: 95, duringMax: 97, after: 96 },
  });
  assert.deepEqual(c, {
    kind: 'kill',
    spec: kill2,
    injected: 'SIGKILL of 1 process(es)',
    atT: 30,
    endT: 30.5,
    loss: {
      lostAcked: 1,
      broadcastNotStored: 2,
      maxBroadcastToCrashMs: null,
      unanswered: 2,
      storedUnacked: 0,
      seqGapSeqs: 22,
      boardsWithGaps: 2,
      seqReused: 1,
    },
    latencyMax: { ackP99Ms: null, fanoutP99Ms: null },
    errorsByCode: { 'closed-1006': 3 },
    sockets: { closed: 3, reconnected: 0, sendsOnClosed: 0, allBackSec: null },
    rssBytes: { before: null, duringMax: null, after: null },
    restart: { readyMs: 1000, firstAckMs: null },
  });
});

test('fault records: a broadcast sent exactly at the kill is a 0 ms gap; a 0.25 ms gap rounds to 0.3; no items: no loss', () => {
  const kill: Fault = { kind: 'kill', atSec: 5, restartAfterSec: 1 };
  const base = {
    faults: [{ spec: kill, injected: 'SIGKILL', startMs: 5_000, endMs: 6_000, rssBytes: { before: null, duringMax: null, after: null } }],
    originMs: 0,
    ledger: { acked: [], errored: [], unanswered: [], seen: [] } as Ledger,
    stored: { boards: [], cards: [], events: [] } as StoredState,
    timeseries: [] as TimePoint[],
  };
  const gapOf = (sentAt: number): number | null =>
    faultRecords({
      ...base,
      audit: { items: { lostAcked: [], phantom: [[1, 'x', 1, 1, sentAt]], storedUnanswered: [] }, reusedSeqs: [] } as unknown as AuditReportDetailed,
    })[0]!.loss.maxBroadcastToCrashMs;
  assert.equal(gapOf(5_000), 0);
  assert.equal(gapOf(4_999.75), 0.3);
  assert.equal(gapOf(5_000.5), null);
  const [r] = faultRecords({ ...base, audit: { reusedSeqs: [] } as unknown as AuditReportDetailed });
  assert.deepEqual(r!.loss, {
    lostAcked: 0,
    broadcastNotStored: 0,
    maxBroadcastToCrashMs: null,
    unanswered: 0,
    storedUnacked: 0,
    seqGapSeqs: 0,
    boardsWithGaps: 0,
    seqReused: 0,
  });
  assert.deepEqual(r!.latencyMax, { ackP99Ms: null, fanoutP99Ms: null });
  assert.deepEqual(r!.sockets, { closed: 0, reconnected: 0, sendsOnClosed: 0, allBackSec: null });
  assert.deepEqual(faultRecords({ ...base, faults: [], audit: { reusedSeqs: [] } as unknown as AuditReportDetailed }), []);
});
