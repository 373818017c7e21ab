/**
 * The seq lease's arithmetic (servers/batched/lease.ts) and the audit's seqReused, pure and exact.
 * The lease on a real file and under kills is in seq-lease.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Ledger } from '../model/fleet-result.js';
import { compareLedger } from '../runner/audit.js';
import Database from 'better-sqlite3';
import { canHandOut, LEASE_RELEASE_SQL, LEASE_UPSERT_SQL, leaseAtStart, leaseGrant, leaseRelease, SEQ_LEASES_SQL } from '../servers/batched/lease.js';

test('lease arithmetic: start, headroom, grant and release with exact numbers', () => {
  // a fresh board: seqs 1..1000 may be broadcast before any commit
  assert.deepEqual(leaseAtStart(0, 0, 1000), { last: 0, high: 1000 });
  // after a crash: boards.seq 78 but a lease of 1000 committed: the restart begins at 1001
  assert.deepEqual(leaseAtStart(78, 1000, 1000), { last: 1000, high: 2000 });
  // after a clean stop the lease was released to boards.seq: no gap
  assert.deepEqual(leaseAtStart(1200, 1200, 8), { last: 1200, high: 1208 });
  assert.deepEqual(leaseAtStart(5, 0, 2), { last: 5, high: 7 }, 'a file from before the lease table: boards.seq counts');
  assert.equal(canHandOut(999, 1000), true);
  assert.equal(canHandOut(1000, 1000), false);
  // extend when the headroom (high - highest handed out) falls below block / 2
  assert.equal(leaseGrant(1000, 499, 1000), null, 'headroom 501');
  assert.equal(leaseGrant(1000, 500, 1000), null, 'headroom 500 is exactly half: not below');
  assert.equal(leaseGrant(1000, 501, 1000), 1501, 'headroom 499');
  assert.equal(leaseGrant(1000, 1000, 1000), 2000, 'at the end of the lease');
  assert.equal(leaseGrant(9, 8, 8), 16);
  assert.equal(leaseGrant(2, 2, 2), 4, 'the smallest block');
  assert.equal(leaseRelease(5, 9), 9, 'seqs handed out past boards.seq (their rows failed or are in flight)');
  assert.equal(leaseRelease(12, 9), 12);
});

test("the audit's seqReused: seen with one id and stored with another, seen twice, acked twice; exact numbers", () => {
  const stored = {
    boards: [
      { id: 1, seq: 80 },
      { id: 2, seq: 2 },
    ],
    cards: [],
    events: [
      { board: 1, seq: 78, card: 1, user: 16, clientMsgId: 'b', col: 'doing', title: '' },
      { board: 1, seq: 79, card: 1, user: 16, clientMsgId: 'c', col: 'doing', title: '' },
      { board: 2, seq: 1, card: 9, user: 30, clientMsgId: 'x', col: 'doing', title: '' },
    ],
  };
  const ledger: Ledger = {
    acked: [
      [16, 'b', 78],
      [16, 'c', 79],
      [31, 'y', 2],
    ],
    errored: [],
    unanswered: [],
    seen: [
      [13, 'a', 1, 78], // seen as user 13's, stored as user 16's: reused (the board 1 seq 78)
      [16, 'c', 1, 79], // the same update: fine
      [20, 'p', 2, 2], // seen with one id …
      [21, 'q', 2, 2], // … and with another
    ],
  };
  const a = compareLedger(stored, ledger, { boardOfUser: (u) => (u < 30 && u !== 20 && u !== 21 ? 1 : 2) });
  assert.equal(a.seqReused, 2);
  assert.deepEqual(a.reusedSeqs, [
    [1, 78],
    [2, 2],
  ]);
  assert.equal(a.ok, false);
  assert.ok(a.examples.some((e) => e.startsWith('seqReused: board 1 seq 78: user 16 msg b, and seen by a member as user 13 msg a')));
  const clean = compareLedger(stored, { ...ledger, seen: [[16, 'c', 1, 79]], acked: [[16, 'b', 78]] });
  assert.equal(clean.seqReused, 0);
});

test('lease SQL on a real (in-memory) SQLite: the table, an upsert that never lowers, the release', () => {
  const db = new Database(':memory:');
  try {
    db.exec('CREATE TABLE boards (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL)');
    db.exec('INSERT INTO boards (id, seq) VALUES (1, 78), (2, 5)');
    db.exec(SEQ_LEASES_SQL);
    db.exec(SEQ_LEASES_SQL); // IF NOT EXISTS: a restart runs it again
    const high = (b: number): number | undefined => (db.prepare('SELECT high FROM seq_leases WHERE board_id = ?').get(b) as { high: number } | undefined)?.high;
    const up = db.prepare(LEASE_UPSERT_SQL);
    up.run(1, 1000);
    assert.equal(high(1), 1000);
    up.run(1, 2000);
    assert.equal(high(1), 2000, 'raised');
    up.run(1, 1500);
    assert.equal(high(1), 2000, 'never lowered');
    const rel = db.prepare(LEASE_RELEASE_SQL);
    // board 1: seqs handed out up to 90, boards.seq 78: the release sets max(90, 78) = 90, lowering the lease
    rel.run(1, 90, 1);
    assert.equal(high(1), 90);
    // board 2, no row yet: handed out up to 3, boards.seq 5: max(3, 5) = 5
    rel.run(2, 3, 2);
    assert.equal(high(2), 5);
    assert.deepEqual(db.prepare('SELECT board_id, high FROM seq_leases ORDER BY board_id').all(), [
      { board_id: 1, high: 90 },
      { board_id: 2, high: 5 },
    ]);
  } finally {
    db.close();
  }
});
