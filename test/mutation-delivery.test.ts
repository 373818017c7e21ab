/**
 * The fleet's delivery join (clients/delivery.ts) and the seq ranges each socket keeps (clients/seqset.ts),
 * pinned on hand-built inputs with hand-worked numbers: the tests that kill the mutants `npm run mutation`
 * found surviving (issue 17). Pure, milliseconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type DeliveryJoinInput, joinDelivery, type SeenEntry } from '../clients/delivery.js';
import { SeqSet } from '../clients/seqset.js';

const setOf = (xs: number[]): SeqSet => {
  const s = new SeqSet();
  for (const x of xs) assert.equal(s.add(x), true, `add(${x})`);
  return s;
};

test('SeqSet: inserts that join nothing, at the first range and in the middle; has() at every range; rangeCount', () => {
  // in order: 10 starts a range, 11 extends it, 20, 30, 40 each start one
  const s = setOf([10, 11, 20, 30, 40]);
  assert.deepEqual(s.ranges(), [
    [10, 11],
    [20, 20],
    [30, 30],
    [40, 40],
  ]);
  assert.equal(s.rangeCount, 4);
  // 3 lies before range 0 ([10, 11]) and does not touch it (4 != 10): a new range at index 0
  assert.equal(s.add(3), true);
  // 25: the first range ending at or after 25 is index 3 ([30, 30]); 24 is not range 2's end (20) and
  // 26 is not range 3's start (30): a new range at index 3
  assert.equal(s.add(25), true);
  assert.deepEqual(s.ranges(), [
    [3, 3],
    [10, 11],
    [20, 20],
    [25, 25],
    [30, 30],
    [40, 40],
  ]);
  assert.equal(s.rangeCount, 6);
  assert.equal(s.size, 7); // 10 11 20 30 40 3 25
  // members found in ranges 0..5, holes between them and past both ends are not
  assert.deepEqual(
    [3, 10, 11, 20, 25, 30, 40].map((x) => s.has(x)),
    [true, true, true, true, true, true, true],
  );
  assert.deepEqual(
    [1, 2, 4, 9, 12, 19, 21, 24, 26, 29, 31, 39, 41].map((x) => s.has(x)),
    [false, false, false, false, false, false, false, false, false, false, false, false, false],
  );
  assert.equal(new SeqSet().rangeCount, 0);
  assert.equal(new SeqSet().has(1), false);
});

test('SeqSet: a middle insert that joins only the previous range, then one that joins both at range 2', () => {
  // in order: 1, 2 -> [1, 2]; 10, 12, 30 each start a range
  const s = setOf([1, 2, 10, 12, 30]);
  assert.deepEqual(s.ranges(), [
    [1, 2],
    [10, 10],
    [12, 12],
    [30, 30],
  ]);
  // 3: range 1 ([10, 10]) is the first ending at or after 3; 2 (= 3 - 1) ends range 0, 10 != 4: extends range 0
  assert.equal(s.add(3), true);
  assert.deepEqual(s.ranges(), [
    [1, 3],
    [10, 10],
    [12, 12],
    [30, 30],
  ]);
  // 11: range 2 ([12, 12]) is the first ending at or after 11; range 1 ends at 10 and range 2 starts at 12:
  // ranges 1 and 2 become one, range 3 moves down to index 2
  assert.equal(s.add(11), true);
  assert.deepEqual(s.ranges(), [
    [1, 3],
    [10, 12],
    [30, 30],
  ]);
  // 29: range 2 starts at 30 = 29 + 1, range 1 ends at 12: extends range 2 downwards
  assert.equal(s.add(29), true);
  assert.deepEqual(s.ranges(), [
    [1, 3],
    [10, 12],
    [29, 30],
  ]);
  // already there: inside a range, at the last range's end
  assert.equal(s.add(11), false);
  assert.equal(s.add(30), false);
  assert.equal(s.size, 8); // 1 2 10 12 30 3 11 29
  assert.equal(s.rangeCount, 3);
  const seen: number[] = [];
  s.forEach((x) => {
    seen.push(x);
  });
  assert.deepEqual(seen, [1, 2, 3, 10, 11, 12, 29, 30]);
});

const NO_SEEN: SeenEntry[][] = [];
const join = (x: Partial<DeliveryJoinInput> & Pick<DeliveryJoinInput, 'firstUser' | 'connections' | 'perBoard'>) =>
  joinDelivery({ notWholeUsers: [], acked: [], errored: [], seen: NO_SEEN, duplicate: 0, outOfOrder: 0, ...x });

test('delivery join: only the fleet users [firstUser, firstUser + connections) count, at both edges', () => {
  // perBoard 4, users 2..5 in this fleet: board 1 = users 0..3 holds fleet users 2, 3; board 2 = users 4..7
  // holds 4, 5. Each board has 2 whole-window members unless a fleet user of it closed early.
  const fleet = { firstUser: 2, connections: 4, perBoard: 4 };
  // users 1 (below the fleet) and 6 (= firstUser + connections, above it) closed early: not fleet users, so
  // both boards keep 2 whole members; the fleet sender 2 (board 1) and 4 (board 2) each expect 2 - 1 = 1
  const outside = join({
    ...fleet,
    notWholeUsers: [1, 6],
    acked: [
      [2, 'a-0', 1],
      [4, 'b-0', 1],
    ],
  });
  assert.equal(outside.report.expected, 2);
  // user 2 (= firstUser) closed early: it is a fleet user, board 1 keeps 1 whole member (user 3).
  // 2's own update expects 1 (user 3; 2 is not whole, nothing subtracted), 3's expects 1 - 1 = 0.
  const edge = join({
    ...fleet,
    notWholeUsers: [2],
    acked: [
      [2, 'a-0', 1],
      [3, 'c-0', 2],
    ],
  });
  assert.equal(edge.report.expected, 1);
  // senders outside the fleet (user 1 on board 1, user 6 = firstUser + connections on board 2) are not
  // among the recipients: each update is expected by both whole members of its board, 2 + 2
  const senders = join({
    ...fleet,
    acked: [
      [1, 'z-0', 1],
      [6, 'y-0', 1],
    ],
  });
  assert.deepEqual(senders.report, { expected: 4, received: 0, missing: 4, duplicate: 0, outOfOrder: 0, phantom: 0 });
});

test('delivery join: two acks under one (board, seq), and one update seen under a seq it was not acked with', () => {
  // board 1 = users 0, 1, 2, all whole. Users 0 and 1 both acked under seq 1: the second is a conflict and
  // expects nothing; the first expects 3 - 1 = 2 and got 2 receipts.
  const twoAcks = join({
    firstUser: 0,
    connections: 3,
    perBoard: 3,
    acked: [
      [0, 'a-0', 1],
      [1, 'b-0', 1],
    ],
    seen: [[[1, 1, 0, 'a-0', 2]]],
  });
  assert.deepEqual(twoAcks.report, { expected: 2, received: 2, missing: 0, duplicate: 0, outOfOrder: 0, phantom: 0 });
  assert.equal(twoAcks.seqConflicts, 1);
  // user 0's update acked under seq 1 but broadcast under seq 2: seq 2 has no ack, the update has one
  // elsewhere, so a conflict (not a phantom); seq 1 was never received: 2 expected, 2 missing
  const moved = join({ firstUser: 0, connections: 3, perBoard: 3, acked: [[0, 'a-0', 1]], seen: [[[1, 2, 0, 'a-0', 2]]] });
  assert.deepEqual(moved.report, { expected: 2, received: 0, missing: 2, duplicate: 0, outOfOrder: 0, phantom: 0 });
  assert.equal(moved.seqConflicts, 1);
  assert.deepEqual(moved.ledgerSeen, [[0, 'a-0', 1, 2]]);
});

test('delivery join: a receipt under an acked seq with another sender, or another id, is a conflict, not a receipt', () => {
  // boards 1 (users 0..2) and 2 (users 3..5), all whole: each ack expects 2. Board 1 seq 1 was acked to
  // (0, a-0) but seen from user 1 with the same id; board 2 seq 1 acked to (3, d-0) but seen as (3, d-1).
  const j = join({
    firstUser: 0,
    connections: 6,
    perBoard: 3,
    acked: [
      [0, 'a-0', 1],
      [3, 'd-0', 1],
    ],
    seen: [
      [
        [1, 1, 1, 'a-0', 1],
        [2, 1, 3, 'd-1', 1],
      ],
    ],
  });
  assert.deepEqual(j.report, { expected: 4, received: 0, missing: 4, duplicate: 0, outOfOrder: 0, phantom: 0 });
  assert.equal(j.seqConflicts, 2);
});

test('delivery join: phantoms are the broadcasts never acked and never errored, also on a board with no ack', () => {
  // board 1 = users 0..2, board 2 = users 3..5, all whole. Acked: (0, a-0) seq 1 on board 1 (expects 2).
  // Seen: seq 1 (2 receipts), (1, b-0) which was errored, (2, c-0) nobody answered, and (4, e-0) on
  // board 2 where nothing was acked: phantoms are c-0 and e-0.
  const j = join({
    firstUser: 0,
    connections: 6,
    perBoard: 3,
    acked: [[0, 'a-0', 1]],
    errored: [[1, 'b-0', 'WRITE_FAILED']],
    seen: [
      [
        [1, 1, 0, 'a-0', 2],
        [1, 2, 1, 'b-0', 2],
        [1, 3, 2, 'c-0', 2],
        [2, 1, 4, 'e-0', 1],
      ],
    ],
  });
  assert.deepEqual(j.report, { expected: 2, received: 2, missing: 0, duplicate: 0, outOfOrder: 0, phantom: 2 });
  assert.equal(j.seqConflicts, 0);
  assert.deepEqual(j.ledgerSeen, [
    [0, 'a-0', 1, 1],
    [1, 'b-0', 1, 2],
    [2, 'c-0', 1, 3],
    [4, 'e-0', 2, 1],
  ]);
});

test('delivery join: workers disagreeing on a (board, seq), each other update in the ledger once, sorted by board then seq', () => {
  // boards 1 (users 0..2) and 2 (users 3..5), all whole; acks (0, a-0) seq 5 and (1, b-0) seq 2 on board 1,
  // (3, d-0) seq 1 on board 2: expected 2 + 2 + 2 = 6.
  const workerA: SeenEntry[] = [
    [2, 1, 3, 'd-0', 1, 300],
    [1, 5, 0, 'a-0', 1, 100],
    [1, 2, 1, 'b-0', 2],
  ];
  // B saw board 1 seq 5 as (1, a-0) [other sender] and as (0, a-1) [other id]: two conflicts, each into the
  // ledger with its sentAt if it has one; and as (0, a-0), the same update as A: receipts add, 1 + 1 = 2
  const workerB: SeenEntry[] = [
    [1, 5, 1, 'a-0', 1, 150],
    [1, 5, 0, 'a-1', 1],
    [1, 5, 0, 'a-0', 1, 100],
  ];
  // C saw B's (1, a-0) under seq 5 as well: the same conflict, counted and entered once
  const workerC: SeenEntry[] = [[1, 5, 1, 'a-0', 1, 150]];
  const j = join({
    firstUser: 0,
    connections: 6,
    perBoard: 3,
    acked: [
      [0, 'a-0', 5],
      [1, 'b-0', 2],
      [3, 'd-0', 1],
    ],
    seen: [workerA, workerB, workerC],
  });
  // received: board 2 seq 1 min(1, 2) = 1, board 1 seq 5 min(2, 2) = 2, seq 2 min(2, 2) = 2
  assert.deepEqual(j.report, { expected: 6, received: 5, missing: 1, duplicate: 0, outOfOrder: 0, phantom: 0 });
  assert.equal(j.seqConflicts, 2);
  // entered in the order: the two conflicts, then board 2 seq 1, board 1 seq 5, board 1 seq 2 (first seen);
  // sorted by board, then seq, the three under board 1 seq 5 keeping that order (the sort is stable)
  assert.deepEqual(j.ledgerSeen, [
    [1, 'b-0', 1, 2],
    [1, 'a-0', 1, 5, 150],
    [0, 'a-1', 1, 5],
    [0, 'a-0', 1, 5, 100],
    [3, 'd-0', 2, 1, 300],
  ]);
});
