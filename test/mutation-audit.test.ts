/**
 * The audit (runner/audit.ts), every rule pinned on hand-built inputs with hand-worked results: the
 * tests that kill the mutants `npm run mutation` found surviving (issue 17). Every example string is
 * compared whole, so a class name, a word or a number that changes is seen. Pure except the last two
 * tests, which read a tiny hand-written SQLite file and ledger file in a temp directory; milliseconds.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Ledger } from '../model/fleet-result.js';
import { fixture, storedEvent } from './helpers/audit-db.js';
import { SCHEMA_SQL } from '../servers/common/db.js';
import { compareLedger, readLedger, readStoredState, seqGapsOf, type StoredEvent, type StoredState } from '../runner/audit.js';

type Report = ReturnType<typeof compareLedger>;
const counts = (r: Report) => ({
  lostAcked: r.lostAcked,
  storedNotAcked: r.storedNotAcked,
  phantom: r.phantom,
  notBroadcast: r.notBroadcast,
  finalStateMismatches: r.finalStateMismatches,
  seqGaps: r.seqGaps,
  seqReused: r.seqReused,
  eventsStored: r.eventsStored,
  ok: r.ok,
});
const CLEAN = { lostAcked: 0, storedNotAcked: 0, phantom: 0, notBroadcast: 0, finalStateMismatches: 0, seqGaps: 0, seqReused: 0, eventsStored: 5, ok: true };
/** The examples of one class (room for all of them: maxExamples 100 here). */
const ofClass = (r: Report, cls: string): string[] => r.examples.filter((e) => e.startsWith(`${cls}: `));
const ALL = { maxExamples: 100 };

test('the fixture is clean: every count 0, ok, no example (the baseline every other test changes one thing of)', () => {
  const { stored, ledger } = fixture();
  const r = compareLedger(stored, ledger);
  assert.deepEqual(counts(r), CLEAN);
  assert.deepEqual(r.examples, []);
  assert.deepEqual(r.reusedSeqs, []);
});

test('lostAcked and phantom: exact examples, merged round-robin over the classes and cut at maxExamples', () => {
  const { stored, ledger } = fixture();
  ledger.acked[3] = [20, 'd', 5]; // d is stored as board 2 seq 1
  ledger.seen[1] = [11, 'b', 1, 9]; // b is stored as board 1 seq 2: the seq differs
  ledger.seen[2] = [10, 'c', 2, 3]; // c is stored as board 1 seq 3: the board differs
  ledger.seen.push([30, 'zz', 2, 4]); // never stored
  const r = compareLedger(stored, ledger);
  // 1 acked with the wrong seq; 3 phantoms (seq, board, missing). b and c were still seen (no notBroadcast);
  // board 2 seq 5 (acked d), board 1 seq 9, board 2 seqs 3 and 4 are each named once: no reuse.
  assert.deepEqual(counts(r), { ...CLEAN, lostAcked: 1, phantom: 3, ok: false });
  assert.equal(r.ackedSeqMismatch, 1);
  const lost = 'lostAcked: user 20 msg d acked seq 5, stored as board 2 seq 1';
  const seqDiffers = 'phantom: broadcast from user 11 msg b as board 1 seq 9, stored as board 1 seq 2';
  const boardDiffers = 'phantom: broadcast from user 10 msg c as board 2 seq 3, stored as board 1 seq 3';
  const missing = 'phantom: broadcast from user 30 msg zz board 2 seq 4, not stored';
  // class order is first-seen order (lostAcked, then phantom); round 0 takes the first of each, round 1
  // the second of each that has one (lostAcked has none), and so on.
  assert.deepEqual(r.examples, [lost, seqDiffers, boardDiffers, missing]);
  assert.deepEqual(compareLedger(stored, ledger, { maxExamples: 3 }).examples, [lost, seqDiffers, boardDiffers]);
  assert.deepEqual(compareLedger(stored, ledger, { maxExamples: 1 }).examples, [lost]);
  assert.deepEqual(compareLedger(stored, ledger, { maxExamples: 0 }).examples, []);
});

test('storedNotAcked (errored, unanswered, unknown) and notBroadcast: exact examples in event order', () => {
  const { stored, ledger } = fixture();
  ledger.acked = ledger.acked.filter(([, id]) => id === 'a' || id === 'd');
  ledger.errored.push([11, 'b', 'WRITE_FAILED']);
  ledger.unanswered.push([10, 'c'], [10, 'never-stored']);
  ledger.seen = ledger.seen.filter(([, id]) => id !== 'c' && id !== 'e');
  const r = compareLedger(stored, ledger, { collect: true });
  // b errored, c unanswered, e unknown; c and e seen by nobody. None of these fail the gate.
  assert.deepEqual(counts(r), { ...CLEAN, storedNotAcked: 3, notBroadcast: 2 });
  assert.deepEqual(r.storedNotAckedDetail, { errored: 1, unanswered: 1, unknown: 1 });
  // walked in event order a, b, c, d, e: storedNotAcked first appears at b, notBroadcast at c
  assert.deepEqual(r.examples, [
    'storedNotAcked: user 11 msg b stored (board 1 seq 2) but answered WRITE_FAILED',
    'notBroadcast: user 10 msg c board 1 seq 3 stored, seen by no fleet socket',
    'storedNotAcked: user 10 msg c stored (board 1 seq 3) but never answered',
    'notBroadcast: user 21 msg e board 2 seq 2 stored, seen by no fleet socket',
    'storedNotAcked: user 21 msg e stored (board 2 seq 2), unknown to the fleet',
  ]);
  // only the unanswered update that is stored is an item
  assert.deepEqual(r.items, { lostAcked: [], phantom: [], storedUnanswered: [[10, 'c']] });
});

test('(user, clientMsgId) pairs whose digits run together stay distinct: user 1 msg "23" is not user 12 msg "3"', () => {
  const stored: StoredState = {
    boards: [{ id: 1, seq: 2 }],
    cards: [{ id: 1, board: 1, col: 'doing', title: 'T2', version: 2 }],
    events: [
      { board: 1, seq: 1, card: 1, user: 1, clientMsgId: '23', col: 'todo', title: 'T1' },
      { board: 1, seq: 2, card: 1, user: 12, clientMsgId: '3', col: 'doing', title: 'T2' },
    ],
  };
  const ledger: Ledger = {
    acked: [],
    errored: [[12, '3', 'WRITE_FAILED']],
    unanswered: [],
    seen: [
      [1, '23', 1, 1],
      [12, '3', 1, 2],
    ],
  };
  const r = compareLedger(stored, ledger);
  // only user 12's update was answered with an error; user 1's is unknown to the fleet
  assert.deepEqual(r.storedNotAckedDetail, { errored: 1, unanswered: 0, unknown: 1 });
  assert.deepEqual(r.examples, [
    'storedNotAcked: user 1 msg 23 stored (board 1 seq 1), unknown to the fleet',
    'storedNotAcked: user 12 msg 3 stored (board 1 seq 2) but answered WRITE_FAILED',
  ]);
  // the same for an unanswered entry
  const r2 = compareLedger(stored, { ...ledger, errored: [], unanswered: [[12, '3']] });
  assert.deepEqual(r2.storedNotAckedDetail, { errored: 0, unanswered: 1, unknown: 1 });
});

test('a msg id is shortened past 40 characters: 40 shown whole, 41 cut to 40 and an ellipsis', () => {
  const { stored, ledger } = fixture();
  const id40 = '0123456789'.repeat(4);
  ledger.acked.push([99, id40, 7], [99, `${id40}X`, 8]);
  const r = compareLedger(stored, ledger);
  assert.deepEqual(counts(r), { ...CLEAN, lostAcked: 2, ok: false });
  assert.deepEqual(r.examples, [`lostAcked: user 99 msg ${id40} acked seq 7, not stored`, `lostAcked: user 99 msg ${id40}… acked seq 8, not stored`]);
});

test('final state: the last event is the highest seq, not the last row read', () => {
  const { stored, ledger } = fixture();
  // card 1's events read seq 2 (doing, A2) before seq 1 (todo, A1): the row (doing, A2) is right
  stored.events = [stored.events[1]!, stored.events[0]!, ...stored.events.slice(2)];
  assert.deepEqual(counts(compareLedger(stored, ledger)), CLEAN);
});

test('final state: of two events with one seq (on two boards) the first read stays the last event', () => {
  const { stored, ledger } = fixture();
  // card 2 (board 1) gets a second event on board 2, with seq 3 like its own event c on board 1
  stored.boards[1]!.seq = 3;
  stored.cards[1]!.version = 2;
  stored.events.push({ board: 2, seq: 3, card: 2, user: 22, clientMsgId: 'f', col: 'todo', title: 'B9' });
  ledger.acked.push([22, 'f', 3]);
  ledger.seen.push([22, 'f', 2, 3]);
  const r = compareLedger(stored, ledger);
  // version 2 = 2 events; the row (done, B1) is c's, the first seq-3 event read; only the foreign board is wrong
  assert.deepEqual(counts(r), { ...CLEAN, finalStateMismatches: 1, eventsStored: 6, ok: false });
  assert.deepEqual(r.examples, ['finalState: event board 2 seq 3 for card 2 of board 1']);
});

test('final state: a row differing in col only, in title only, and a card with two problems joined by "; "', () => {
  const { stored, ledger } = fixture();
  stored.cards[1]!.col = 'doing'; // card 2: last event c is (done, B1)
  stored.cards[2]!.title = 'C9'; // card 3: last event e is (todo, C2)
  stored.cards[2]!.version = 3; // and it has 2 events
  const r = compareLedger(stored, ledger);
  assert.deepEqual(counts(r), { ...CLEAN, finalStateMismatches: 2, ok: false });
  assert.deepEqual(r.examples, [
    'finalState: card 2: row (doing, "B1") but last event seq 3 (done, "B1")',
    'finalState: card 3: version 3 but 2 events; row (todo, "C9") but last event seq 2 (todo, "C2")',
  ]);
  // the col alone
  const f = fixture();
  f.stored.cards[0]!.col = 'review';
  assert.deepEqual(compareLedger(f.stored, f.ledger).examples, ['finalState: card 1: row (review, "A2") but last event seq 2 (doing, "A2")']);
});

test('final state: a card with several foreign or unknown events is one mismatch and one example', () => {
  const { stored, ledger } = fixture();
  stored.boards[1]!.seq = 6;
  const add = (seq: number, card: number, id: string): void => {
    stored.events.push({ board: 2, seq, card, user: 22, clientMsgId: id, col: 'todo', title: 'X' });
    ledger.acked.push([22, id, seq]);
    ledger.seen.push([22, id, 2, seq]);
  };
  add(3, 99, 'g'); // card 99 does not exist
  add(4, 99, 'h');
  add(5, 2, 'i'); // card 2 is on board 1
  add(6, 2, 'j');
  const r = compareLedger(stored, ledger);
  // card 2 also has 3 events for version 1 and its last event (seq 6, todo, X) is not its row: one card
  // still, with its row example and the first of its foreign events (seq 5); card 99 once (seq 3, not 4)
  assert.deepEqual(counts(r), { ...CLEAN, finalStateMismatches: 2, eventsStored: 9, ok: false });
  assert.deepEqual(r.examples, [
    'finalState: card 2: version 1 but 3 events; row (done, "B1") but last event seq 6 (todo, "X")',
    'finalState: event board 2 seq 3 for card 99, which does not exist',
    'finalState: event board 2 seq 5 for card 2 of board 1',
  ]);
});

test('seq gaps: min and max of seqs read out of order, max above boards.seq, a seq below 1, an empty board', () => {
  const ev = (board: number, seq: number): StoredEvent => ({ board, seq, card: 1, user: board, clientMsgId: `${board}-${seq}`, col: 'todo', title: '' });
  const stored: StoredState = {
    boards: [
      { id: 1, seq: 5 }, // seqs 3, 1, 2: 3 events, 1..3 (the first read is the max, the last read neither)
      { id: 2, seq: 3 }, // seqs 1, 2, 4: 3 events as boards.seq says, but the max is 4
      { id: 3, seq: 3 }, // seqs 0, 2, 3: 3 events, max 3, but seq 0
      { id: 4, seq: 2 }, // no event
      { id: 5, seq: 2 }, // seqs 1, 2: fine
    ],
    cards: [],
    events: [ev(1, 3), ev(1, 1), ev(1, 2), ev(2, 1), ev(2, 2), ev(2, 4), ev(3, 0), ev(3, 2), ev(3, 3), ev(5, 1), ev(5, 2), ev(7, 1)],
  };
  const r = compareLedger(stored, { acked: [], errored: [], unanswered: [], seen: [] }, ALL);
  assert.equal(r.seqGaps, 5);
  assert.deepEqual(ofClass(r, 'seqGap'), [
    'seqGap: board 1: boards.seq 5 but 3 events stored, seq 1..3',
    'seqGap: board 2: boards.seq 3 but 3 events stored, seq 1..4',
    'seqGap: board 3: boards.seq 3 but 3 events stored, seq 0..3',
    'seqGap: board 4: boards.seq 2 but 0 events stored',
    'seqGap: board 7: 1 events stored but no such board',
  ]);
});

test('a seq gap alone fails the gate (ok false)', () => {
  const { stored, ledger } = fixture();
  stored.boards[0]!.seq = 4; // seq 4 given on board 1, nothing stored with it, nobody told of it
  const r = compareLedger(stored, ledger);
  assert.deepEqual(counts(r), { ...CLEAN, seqGaps: 1, ok: false });
  assert.deepEqual(r.examples, ['seqGap: board 1: boards.seq 4 but 3 events stored, seq 1..3']);
});

test('seq reuse alone fails the gate: one seq stored twice (1, 1, 3 has no gap: 3 events, max 3)', () => {
  const stored: StoredState = {
    boards: [{ id: 1, seq: 3 }],
    cards: [{ id: 1, board: 1, col: 'done', title: 'T3', version: 3 }],
    events: [
      { board: 1, seq: 1, card: 1, user: 10, clientMsgId: 'a', col: 'todo', title: 'T1' },
      { board: 1, seq: 1, card: 1, user: 11, clientMsgId: 'b', col: 'doing', title: 'T2' },
      { board: 1, seq: 3, card: 1, user: 12, clientMsgId: 'c', col: 'done', title: 'T3' },
    ],
  };
  const ledger: Ledger = {
    acked: [
      [10, 'a', 1],
      [11, 'b', 1],
      [12, 'c', 3],
    ],
    errored: [],
    unanswered: [],
    seen: [
      [10, 'a', 1, 1],
      [11, 'b', 1, 1],
      [12, 'c', 1, 3],
    ],
  };
  const r = compareLedger(stored, ledger);
  // board 1 seq 1 is named by a and by b (stored, seen and acked): counted once
  assert.deepEqual(counts(r), { ...CLEAN, seqReused: 1, eventsStored: 3, ok: false });
  assert.deepEqual(r.reusedSeqs, [[1, 1]]);
  assert.deepEqual(r.examples, ['seqReused: board 1 seq 1: user 10 msg a, and stored as user 11 msg b']);
});

test('seq reuse: same user with another msg, another user with the same msg, each a reuse; seen ones say so', () => {
  const { stored, ledger } = fixture();
  ledger.seen.push([10, 'x', 1, 1]); // board 1 seq 1 is user 10 msg a
  ledger.seen.push([12, 'b', 1, 2]); // board 1 seq 2 is user 11 msg b
  const r = compareLedger(stored, ledger);
  // both are also phantoms: (10, x) and (12, b) are not stored
  assert.deepEqual(counts(r), { ...CLEAN, phantom: 2, seqReused: 2, ok: false });
  assert.deepEqual(r.reusedSeqs, [
    [1, 1],
    [1, 2],
  ]);
  assert.deepEqual(ofClass(r, 'seqReused'), [
    'seqReused: board 1 seq 1: user 10 msg a, and seen by a member as user 10 msg x',
    'seqReused: board 1 seq 2: user 11 msg b, and seen by a member as user 12 msg b',
  ]);
});

test('seq reuse by an ack: placed on the stored row board, or on boardOfUser when given; an unplaced ack is no sighting', () => {
  // acked (10, a) with seq 2: a is stored on board 1, whose seq 2 is user 11 msg b
  const f = fixture();
  f.ledger.acked[0] = [10, 'a', 2];
  const r = compareLedger(f.stored, f.ledger);
  assert.deepEqual(counts(r), { ...CLEAN, lostAcked: 1, seqReused: 1, ok: false });
  assert.deepEqual(r.reusedSeqs, [[1, 2]]);
  assert.deepEqual(ofClass(r, 'seqReused'), ['seqReused: board 1 seq 2: user 11 msg b, and acked to user 10 msg a']);

  // boardOfUser wins over the stored row: user 10 acked seq 1 for a, on board 2 by the layout, whose seq 1 is d
  const g = fixture();
  const r2 = compareLedger(g.stored, g.ledger, { boardOfUser: (u) => (u === 10 ? 2 : u < 20 ? 1 : 2) });
  // c (user 10, seq 3) lands on board 2 seq 3, which nothing else names
  assert.deepEqual(counts(r2), { ...CLEAN, seqReused: 1, ok: false });
  assert.deepEqual(r2.examples, ['seqReused: board 2 seq 1: user 20 msg d, and acked to user 10 msg a']);

  // two acks of unstored updates with one seq and no boardOfUser: no board to place them on, no reuse
  const h = fixture();
  h.ledger.acked.push([50, 'p', 9], [51, 'q', 9]);
  const r3 = compareLedger(h.stored, h.ledger);
  assert.deepEqual(counts(r3), { ...CLEAN, lostAcked: 2, ok: false });
  assert.deepEqual(r3.reusedSeqs, []);
});

test('seqGapsOf: missing seqs per board in seq order, with the committed_at of the next stored seq', () => {
  const ev = storedEvent;
  const stored: StoredState = {
    boards: [
      { id: 1, seq: 7 }, // read 5, 2, 4, 1: missing 3 (next stored: 4 at 400) and 6..7 (none after)
      { id: 2, seq: 2 }, // nothing stored: 1..2 missing
      { id: 3, seq: 2 }, // 1, 2: complete
      { id: 4, seq: 3 }, // only 3, without committed_at: 1..2 missing, next has no time
    ],
    cards: [],
    events: [ev(1, 5, 500), ev(1, 2, 200), ev(3, 1, 10), ev(1, 4, 400), ev(1, 1, 100), ev(3, 2, 20), ev(4, 3)],
  };
  assert.deepEqual(seqGapsOf(stored), [
    [1, 3, 1, 400],
    [1, 6, 2, null],
    [2, 1, 2, null],
    [4, 1, 2, null],
  ]);
});

const dir = mkdtempSync(join(tmpdir(), 'wami-mutation-audit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('readLedger: the four arrays as written, a missing one empty, one that is not an array named', () => {
  const full = join(dir, 'full.json');
  const ledger: Ledger = { acked: [[1, 'a', 1]], errored: [[2, 'b', 'WRITE_FAILED']], unanswered: [[3, 'c']], seen: [[1, 'a', 1, 1]] };
  writeFileSync(full, JSON.stringify(ledger));
  assert.deepEqual(readLedger(full), ledger);
  const part = join(dir, 'part.json');
  writeFileSync(part, JSON.stringify({ seen: [[1, 'a', 1, 1]] }));
  assert.deepEqual(readLedger(part), { acked: [], errored: [], unanswered: [], seen: [[1, 'a', 1, 1]] });
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ acked: [], errored: {} }));
  assert.throws(() => readLedger(bad), { name: 'TypeError', message: `ledger ${bad}: "errored" is not an array` });
});

test('readStoredState: reads the rows, opens read-only (a rollback-journal file stays so) and closes the file', () => {
  const file = join(dir, 'rollback.db');
  // a database in SQLite's default rollback-journal mode (header byte 18 = 1; WAL would make it 2)
  const w = new Database(file);
  w.exec(SCHEMA_SQL);
  w.prepare("INSERT INTO boards (id, name, seq) VALUES (1, 'b1', 2)").run();
  w.prepare("INSERT INTO cards (id, board_id, col, title, version) VALUES (1, 1, 'doing', 'T2', 2)").run();
  const ins = w.prepare(
    'INSERT INTO card_events (board_id, seq, card_id, user_id, client_msg_id, col, title, at, committed_at) VALUES (1, ?, 1, ?, ?, ?, ?, 0, ?)',
  );
  ins.run(1, 10, 'm1', 'todo', 'T1', 100.5);
  ins.run(2, 11, 'm2', 'doing', 'T2', 200.5);
  w.close();
  const hash = (): string => createHash('sha256').update(readFileSync(file)).digest('hex');
  const before = hash();
  assert.equal(readFileSync(file)[18], 1);
  const fdsOnFile = (): string[] =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`).startsWith(file);
      } catch {
        return false; // the directory's own descriptor, gone by now
      }
    });

  assert.deepEqual(readStoredState(file), {
    boards: [{ id: 1, seq: 2 }],
    cards: [{ id: 1, board: 1, col: 'doing', title: 'T2', version: 2 }],
    events: [
      { board: 1, seq: 1, card: 1, user: 10, clientMsgId: 'm1', col: 'todo', title: 'T1', committedAt: 100.5 },
      { board: 1, seq: 2, card: 1, user: 11, clientMsgId: 'm2', col: 'doing', title: 'T2', committedAt: 200.5 },
    ],
    integrity: ['ok'],
  });
  // a read-write open would have switched the file to WAL (the shared pragmas), and an unclosed one would hold it
  assert.equal(hash(), before);
  assert.equal(existsSync(`${file}-wal`), false);
  assert.deepEqual(fdsOnFile(), []);
});
