/** The write paths of both variants against real temp SQLite files (no server): batch split on a real failure, busy detection. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openDb, seedDatabase } from '../servers/common/db.js';
import { createBatchWriter, type WriteRow } from '../servers/batched/writer-core.js';
import { createUpdateTx } from '../servers/per-request/tx.js';

function tempDb(): { file: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'wami-writer-'));
  const file = join(dir, 'w.db');
  seedDatabase(file, { boards: 2, cardsPerBoard: 5 });
  return { file, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const row = (seq: number, over: Partial<WriteRow> = {}): WriteRow => ({
  board: 1,
  seq,
  card: ((seq - 1) % 5) + 1,
  user: 7,
  id: `r${seq}`,
  column: 'done',
  title: `title ${seq}`,
  at: 1000 + seq,
  sentAt: 1001 + seq,
  receivedAt: 1002 + seq,
  ...over,
});

test('batched writer: one row failing in a trigger does not lose the other rows of its batch', () => {
  const { file, done } = tempDb();
  try {
    const setup = new Database(file);
    setup.exec(`CREATE TRIGGER fail_magic BEFORE INSERT ON card_events WHEN NEW.title = 'FAIL-ME' BEGIN SELECT RAISE(ABORT, 'magic title refused'); END;`);
    setup.close();
    const db = openDb(file);
    const w = createBatchWriter(db);
    const rows = [row(1), row(2), row(3, { title: 'FAIL-ME', card: 3 }), row(4), row(5)];
    const r = w.write(rows);
    // default policy: each failing range is tried twice, then halved: [1-5]x2, [1-3]x2, [1,2], [3]x2, [4,5]
    assert.deepEqual(
      r.rows.map((x) => (x.ok ? `ok${x.attempts}` : `${x.code}/${x.attempts}`)),
      ['ok5', 'ok5', 'SQLITE_CONSTRAINT_TRIGGER/6', 'ok3', 'ok3'],
    );
    assert.deepEqual(
      r.tx.map((t) => `${t.size}${t.ok ? '+' : '-'}`),
      ['5-', '5-', '3-', '3-', '2+', '1-', '1-', '2+'],
    );
    assert.equal(r.splits, 2);
    assert.equal(r.busyHits, 0);
    const failed = r.rows[2]!;
    assert.ok(!failed.ok && /magic title refused/.test(failed.message));

    const ro = new Database(file, { readonly: true });
    const events = ro.prepare('SELECT seq, card_id, user_id, client_msg_id, col, title, at, sent_at FROM card_events ORDER BY seq').all();
    assert.deepEqual(
      events,
      [1, 2, 4, 5].map((s) => ({ seq: s, card_id: s, user_id: 7, client_msg_id: `r${s}`, col: 'done', title: `title ${s}`, at: 1000 + s, sent_at: 1001 + s })),
    );
    // the failed row's card is untouched; the others moved and were versioned
    assert.deepEqual(
      ro
        .prepare('SELECT id, col, title, version FROM cards WHERE board_id = 1 ORDER BY id')
        .all()
        .map((c) => (c as { version: number }).version),
      [1, 1, 0, 1, 1],
    );
    // boards.seq stays past the failed seq (it was handed out and broadcast): never reused
    assert.equal(ro.prepare('SELECT seq FROM boards WHERE id = 1').pluck().get(), 5);
    ro.close();
    db.close();
  } finally {
    done();
  }
});

test('batched writer: a duplicate client message id in one batch fails alone (UNIQUE(user_id, client_msg_id))', () => {
  const { file, done } = tempDb();
  try {
    const db = openDb(file);
    const w = createBatchWriter(db, { retries: 0, splittable: () => true });
    const r = w.write([row(1, { id: 'dup' }), row(2), row(3, { id: 'dup' }), row(4, { board: 2, card: 6, seq: 1 })]);
    assert.deepEqual(
      r.rows.map((x) => (x.ok ? 'ok' : x.code)),
      ['ok', 'ok', 'SQLITE_CONSTRAINT_UNIQUE', 'ok'],
    );
    assert.equal(db.prepare('SELECT count(*) FROM card_events').pluck().get(), 3);
    assert.deepEqual(db.prepare('SELECT id, seq FROM boards ORDER BY id').raw().all(), [
      [1, 3],
      [2, 1],
    ]);
    // a second batch re-using an id already stored fails too, and the batch's other row commits
    const r2 = w.write([row(5, { id: 'dup' }), row(6)]);
    assert.deepEqual(
      r2.rows.map((x) => (x.ok ? 'ok' : x.code)),
      ['SQLITE_CONSTRAINT_UNIQUE', 'ok'],
    );
    db.close();
  } finally {
    done();
  }
});

test('per-request attempt: SQLITE_BUSY while another connection holds the write lock, in both tx modes', () => {
  const { file, done } = tempDb();
  try {
    const holder = new Database(file);
    holder.pragma('journal_mode = WAL');
    const db = openDb(file);
    const u = { board: 1, card: 2, user: 3, id: 'x1', column: 'todo', title: 'busy', at: 1, sentAt: 2 };
    for (const mode of ['immediate', 'deferred'] as const) {
      const tx = createUpdateTx(db, mode);
      holder.exec('BEGIN IMMEDIATE');
      const r = tx({ ...u, id: `x-${mode}` });
      assert.equal(r.ok, false, mode);
      assert.ok(!r.ok && r.busy && r.code.startsWith('SQLITE_BUSY'), `${mode}: ${JSON.stringify(r)}`);
      assert.equal(db.inTransaction, false, `${mode}: rolled back`);
      holder.exec('ROLLBACK');
      const ok = tx({ ...u, id: `y-${mode}` });
      assert.ok(ok.ok, JSON.stringify(ok));
    }
    assert.deepEqual(db.prepare('SELECT seq, client_msg_id FROM card_events ORDER BY seq').raw().all(), [
      [1, 'y-immediate'],
      [2, 'y-deferred'],
    ]);
    assert.equal(db.prepare('SELECT seq FROM boards WHERE id = 1').pluck().get(), 2);
    // a non-busy failure (duplicate id) is reported as not busy
    const dup = createUpdateTx(db, 'immediate')({ ...u, id: 'y-deferred' });
    assert.ok(!dup.ok && !dup.busy && dup.code === 'SQLITE_CONSTRAINT_UNIQUE');
    holder.close();
    db.close();
  } finally {
    done();
  }
});
