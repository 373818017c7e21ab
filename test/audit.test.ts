import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Ledger } from '../model/fleet-result.js';
import { openDb, seedDatabase } from '../servers/common/db.js';
import { fixture, simulate } from './helpers/audit-db.js';
import { auditDatabase, compareLedger, readStoredState, type StoredState } from '../runner/audit.js';

const counts = (r: ReturnType<typeof compareLedger>) => ({
  lostAcked: r.lostAcked,
  storedNotAcked: r.storedNotAcked,
  phantom: r.phantom,
  notBroadcast: r.notBroadcast,
  finalStateMismatches: r.finalStateMismatches,
  seqGaps: r.seqGaps,
  eventsStored: r.eventsStored,
  ok: r.ok,
});
const ZERO = { lostAcked: 0, storedNotAcked: 0, phantom: 0, notBroadcast: 0, finalStateMismatches: 0, seqGaps: 0, eventsStored: 5, ok: true };

describe('compareLedger (pure)', () => {
  test('a clean run: every count 0, ok, no examples', () => {
    const { stored, ledger } = fixture();
    const r = compareLedger(stored, ledger);
    assert.deepEqual(counts(r), ZERO);
    assert.deepEqual(r.examples, []);
    assert.deepEqual(r.storedNotAckedDetail, { errored: 0, unanswered: 0, unknown: 0 });
  });

  test('lostAcked: acked but not stored, and acked with another seq than stored', () => {
    const { stored, ledger } = fixture();
    ledger.acked.push([10, 'x', 4]); // never stored
    ledger.acked[3] = [20, 'd', 5]; // stored as seq 1
    const r = compareLedger(stored, ledger);
    assert.deepEqual(counts(r), { ...ZERO, lostAcked: 2, ok: false });
    assert.equal(r.ackedSeqMismatch, 1);
    assert.ok(r.examples.some((e) => e.startsWith('lostAcked: user 10 msg x acked seq 4')));
    assert.ok(r.examples.some((e) => e.includes('acked seq 5, stored as board 2 seq 1')));
  });

  test('storedNotAcked: errored, unanswered and unknown to the fleet, each counted', () => {
    const { stored, ledger } = fixture();
    ledger.acked = ledger.acked.filter(([, id]) => id === 'a' || id === 'd');
    ledger.errored.push([11, 'b', 'WRITE_FAILED']);
    ledger.unanswered.push([10, 'c']);
    // 'e' is in neither list: unknown
    const r = compareLedger(stored, ledger);
    assert.deepEqual(counts(r), { ...ZERO, storedNotAcked: 3 });
    assert.deepEqual(r.storedNotAckedDetail, { errored: 1, unanswered: 1, unknown: 1 });
    assert.ok(r.examples.some((e) => e.includes('answered WRITE_FAILED')));
  });

  test('phantom: seen but not stored, or seen with another board/seq than stored', () => {
    const { stored, ledger } = fixture();
    ledger.seen.push([30, 'zz', 2, 3]);
    ledger.seen[1] = [11, 'b', 1, 9];
    const r = compareLedger(stored, ledger);
    assert.deepEqual(counts(r), { ...ZERO, phantom: 2, ok: false });
  });

  test('notBroadcast: stored but seen by nobody; restricted to boardsWithOtherMembers when given', () => {
    const { stored, ledger } = fixture();
    ledger.seen = ledger.seen.filter(([, id]) => id !== 'c' && id !== 'e');
    assert.deepEqual(counts(compareLedger(stored, ledger)), { ...ZERO, notBroadcast: 2 });
    assert.deepEqual(counts(compareLedger(stored, ledger, { boardsWithOtherMembers: new Set([1]) })), { ...ZERO, notBroadcast: 1 });
    assert.deepEqual(counts(compareLedger(stored, ledger, { boardsWithOtherMembers: new Set() })), ZERO);
  });

  test('finalStateMismatches: row vs last event, version vs event count, event on a foreign or unknown card', () => {
    const { stored, ledger } = fixture();
    stored.cards[1] = { ...stored.cards[1]!, title: 'B-old' }; // last event says B1
    stored.cards[2] = { ...stored.cards[2]!, version: 3 }; // 2 events
    let r = compareLedger(stored, ledger);
    assert.deepEqual(counts(r), { ...ZERO, finalStateMismatches: 2, ok: false });
    assert.ok(r.examples.some((e) => e.startsWith('finalState: card 2: row (done, "B-old") but last event seq 3 (done, "B1")')));
    assert.ok(r.examples.some((e) => e === 'finalState: card 3: version 3 but 2 events'));

    // An event of board 2 naming card 1 (of board 1), and one naming a card that does not exist.
    const f2 = fixture();
    f2.stored.boards[1]!.seq = 4;
    f2.stored.events.push({ board: 2, seq: 3, card: 1, user: 22, clientMsgId: 'f', col: 'doing', title: 'A2' });
    f2.stored.events.push({ board: 2, seq: 4, card: 99, user: 22, clientMsgId: 'g', col: 'doing', title: '?' });
    f2.ledger.acked.push([22, 'f', 3], [22, 'g', 4]);
    f2.ledger.seen.push([22, 'f', 2, 3], [22, 'g', 2, 4]);
    r = compareLedger(f2.stored, f2.ledger);
    // card 1: version 2 but 3 events, and an event on board 2 (one card, counted once); card 99: unknown.
    assert.deepEqual(counts(r), { ...ZERO, finalStateMismatches: 2, eventsStored: 7, ok: false });
    assert.ok(r.examples.some((e) => e === 'finalState: event board 2 seq 4 for card 99, which does not exist'));
    assert.ok(r.examples.some((e) => e === 'finalState: event board 2 seq 3 for card 1 of board 1'));
  });

  test('seqGaps: a missing seq, a short board, and events of an unknown board', () => {
    const { stored, ledger } = fixture();
    stored.boards[1]!.seq = 3; // board 2 claims 3 events, has 2
    stored.boards.push({ id: 3, seq: 0 }); // empty board: fine
    stored.events.push({ board: 7, seq: 1, card: 3, user: 40, clientMsgId: 'h', col: 'todo', title: 'C2' });
    ledger.acked.push([40, 'h', 1]);
    ledger.seen.push([40, 'h', 7, 1]);
    const r = compareLedger(stored, ledger);
    // board 2 short (1 gap) + board 7 unknown (1) = 2; card 3 gets a 3rd event on board 7: version and foreign board = 1 card.
    assert.equal(r.seqGaps, 2);
    assert.equal(r.finalStateMismatches, 1);
    assert.equal(r.ok, false);
  });

  test('deleting an event row: lost, phantom, seq gap and final-state mismatch all show it', () => {
    const { stored, ledger } = fixture();
    stored.events.splice(1, 1); // board 1 seq 2, user 11 'b'
    const r = compareLedger(stored, ledger);
    assert.deepEqual(counts(r), { ...ZERO, lostAcked: 1, phantom: 1, seqGaps: 1, finalStateMismatches: 1, eventsStored: 4, ok: false });
    assert.ok(r.examples.length >= 4 && r.examples.length <= 10);
  });

  test('examples stay within 10 (and maxExamples) and cover every failing class', () => {
    const { stored, ledger } = fixture();
    for (let i = 0; i < 50; i++) {
      ledger.acked.push([99, `lost${i}`, i + 1]);
      ledger.seen.push([98, `ph${i}`, 1, i + 10]);
    }
    const r = compareLedger(stored, ledger);
    assert.equal(r.lostAcked, 50);
    assert.equal(r.phantom, 50);
    assert.equal(r.examples.length, 10);
    assert.ok(r.examples.some((e) => e.startsWith('phantom:')));
    assert.equal(compareLedger(stored, ledger, { maxExamples: 3 }).examples.length, 3);
  });

  test("integrity: 'ok' passes; any problem SQLite's check names fails the gate, with examples; not checked: no field", () => {
    const { stored, ledger } = fixture();
    const sound = compareLedger({ ...stored, integrity: ['ok'] }, ledger);
    assert.equal(sound.integrity, 'ok');
    assert.deepEqual(counts(sound), ZERO);
    const problems = ['Tree 5 page 5 cell 0: invalid page number 4294967295', 'row 3 missing from index card_events_u'];
    const bad = compareLedger({ ...stored, integrity: problems }, ledger);
    assert.equal(bad.integrity, problems.join('; '));
    assert.deepEqual(counts(bad), { ...ZERO, ok: false }, 'every other count stays what the rows say');
    assert.deepEqual(
      bad.examples,
      problems.map((p) => `integrity: ${p}`),
    );
    assert.equal(compareLedger({ ...stored, integrity: [] }, ledger).ok, false, 'no answer at all is not ok');
    assert.equal('integrity' in compareLedger(stored, ledger), false);
  });

  test('scale: 30k users, 300k events, compared exactly', () => {
    const users = 30_000;
    const boards = 300;
    const n = 300_000;
    const stored: StoredState = { boards: [], cards: [], events: [] };
    const ledger: Ledger = { acked: [], errored: [], unanswered: [], seen: [] };
    const seq = new Array<number>(boards + 1).fill(0);
    const ver = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const user = i % users;
      const board = (user % boards) + 1;
      const card = (board - 1) * 10 + (i % 10) + 1;
      const s = ++seq[board]!;
      const id = `${user}-${i}`;
      stored.events.push({ board, seq: s, card, user, clientMsgId: id, col: 'todo', title: id });
      ver.set(card, (ver.get(card) ?? 0) + 1);
      ledger.acked.push([user, id, s]);
      ledger.seen.push([user, id, board, s]);
    }
    const last = new Map<number, string>();
    for (const e of stored.events) last.set(e.card, e.title);
    for (let b = 1; b <= boards; b++) {
      stored.boards.push({ id: b, seq: seq[b]! });
      for (let k = 0; k < 10; k++) {
        const id = (b - 1) * 10 + k + 1;
        stored.cards.push({ id, board: b, col: 'todo', title: last.get(id) ?? '', version: ver.get(id) ?? 0 });
      }
    }
    // Speed is measured by benchmarks, not asserted here: this checks the result at that size.
    const r = compareLedger(stored, ledger);
    assert.deepEqual(counts(r), { ...ZERO, eventsStored: n });
  });
});

describe('auditDatabase (real SQLite)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wami-audit-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('clean database: audit ok; deleting events: lostAcked counts exactly the deleted acked rows', () => {
    const file = join(dir, 'a.db');
    seedDatabase(file, { boards: 3, cardsPerBoard: 4 });
    const ledger = simulate(file, 60, 3, 4, 5);
    const clean = auditDatabase(file, ledger);
    assert.deepEqual(counts(clean), { ...ZERO, eventsStored: 60 });

    // Delete 5 events: boards 1 and 2 (not the last seq of either), on 5 distinct cards? Compute expectations from rows.
    const db = openDb(file);
    const victims = db
      .prepare('SELECT board_id, seq, card_id FROM card_events WHERE (board_id = 1 AND seq IN (2, 5, 9)) OR (board_id = 2 AND seq IN (1, 20))')
      .all() as Array<{ board_id: number; seq: number; card_id: number }>;
    assert.equal(victims.length, 5);
    db.prepare('DELETE FROM card_events WHERE (board_id = 1 AND seq IN (2, 5, 9)) OR (board_id = 2 AND seq IN (1, 20))').run();
    db.close();

    const r = auditDatabase(file, ledger);
    assert.equal(r.lostAcked, 5);
    assert.equal(r.phantom, 5);
    assert.equal(r.seqGaps, 2);
    assert.equal(r.finalStateMismatches, new Set(victims.map((v) => v.card_id)).size);
    assert.equal(r.eventsStored, 55);
    assert.equal(r.storedNotAcked, 0);
    assert.equal(r.ok, false);
    assert.ok(r.examples.some((e) => e.startsWith('lostAcked:')));
  });

  test('the read-only reader sees WAL content and leaves the file unchanged', () => {
    const file = join(dir, 'b.db');
    seedDatabase(file, { boards: 2, cardsPerBoard: 3 });
    // a writer still holds the file open, so the 10 events sit in the -wal, not yet checkpointed
    const holder = openDb(file);
    holder.pragma('wal_autocheckpoint = 0');
    simulate(file, 10, 2, 3, 2);
    const bytes = (f: string): string => (existsSync(f) ? createHash('sha256').update(readFileSync(f)).digest('hex') : 'absent');
    const before = [file, `${file}-wal`].map(bytes);
    const mtimes = [file, `${file}-wal`].map((f) => statSync(f).mtimeMs);
    const s = readStoredState(file);
    assert.equal(s.events.length, 10);
    assert.equal(s.boards.length, 2);
    assert.equal(s.cards.length, 6);
    assert.deepEqual(
      s.boards.map((b) => b.seq),
      [5, 5],
    );
    assert.ok(statSync(`${file}-wal`).size > 0, 'the events were read from the -wal');
    assert.deepEqual([file, `${file}-wal`].map(bytes), before, 'the database and its -wal are byte for byte the same');
    assert.deepEqual(
      [file, `${file}-wal`].map((f) => statSync(f).mtimeMs),
      mtimes,
    );
    holder.close();
  });

  test("a corrupt file fails the audit by SQLite's own check, though every row reads back: an index entry that disagrees with its row, and an index page overwritten", () => {
    const prepare = (name: string): { file: string; ledger: Ledger; pageSize: number; page: (table: string) => number } => {
      const file = join(dir, name);
      seedDatabase(file, { boards: 2, cardsPerBoard: 4 });
      const ledger = simulate(file, 40, 2, 4, 4);
      const clean = auditDatabase(file, ledger);
      assert.equal(clean.integrity, 'ok');
      assert.equal(clean.ok, true);
      // the last connection closed, so every page is in the main file
      assert.ok(!existsSync(`${file}-wal`) || statSync(`${file}-wal`).size === 0, 'nothing left in the WAL');
      const db = openDb(file, { readonly: true });
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      const roots = new Map(db.prepare('SELECT name, rootpage FROM sqlite_schema').raw().all() as [string, number][]);
      db.close();
      return { file, ledger, pageSize, page: (t) => roots.get(t)! };
    };
    const failsByIntegrity = (file: string, ledger: Ledger): string => {
      const r = auditDatabase(file, ledger);
      assert.equal(r.eventsStored, 40, 'every row still reads back');
      assert.equal(r.lostAcked + r.phantom + r.seqGaps + r.finalStateMismatches + r.storedNotAcked, 0, 'the rows alone look clean');
      assert.equal(r.ok, false);
      assert.ok(r.examples.some((e) => e.startsWith('integrity: ')));
      return r.integrity ?? '';
    };

    // One byte of one client_msg_id changed in the UNIQUE(user_id, client_msg_id) index's page: the
    // table, which the audit reads, still has the right one.
    const a = prepare('corrupt-row.db');
    const buf = readFileSync(a.file);
    const indexPage = (a.page('sqlite_autoindex_card_events_2') - 1) * a.pageSize;
    const at = buf.indexOf(Buffer.from('u2-m6', 'latin1'), indexPage);
    assert.ok(at >= indexPage && at < indexPage + a.pageSize, 'the id is in the index root page');
    buf[at + 4] = buf[at + 4]! ^ 1;
    writeFileSync(a.file, buf);
    assert.match(failsByIntegrity(a.file, a.ledger), /row \d+ missing from index sqlite_autoindex_card_events_2/);

    // The index's root page zeroed: too broken for the check to start, which is its answer.
    const b = prepare('corrupt-page.db');
    const fd = openSync(b.file, 'r+');
    writeSync(fd, Buffer.alloc(b.pageSize), 0, b.pageSize, (b.page('sqlite_autoindex_card_events_2') - 1) * b.pageSize);
    closeSync(fd);
    assert.equal(failsByIntegrity(b.file, b.ledger), 'integrity_check could not run: database disk image is malformed');
  });

  test('a missing database file throws a clear error', () => {
    assert.throws(() => auditDatabase(join(dir, 'nope.db'), { acked: [], errored: [], unanswered: [], seen: [] }), /not found/);
  });
});
