/** The write paths of both variants against real temp SQLite files (no server): batch split on a real failure, busy detection. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { openDb, seedDatabase } from '../servers/common/db.js';
import { createBatchWriter, type WriteRow } from '../servers/batched/writer-core.js';
import { createUpdateTx } from '../servers/per-request/tx.js';
import { parseWalHeads, WalHeads } from '../servers/common/wal.js';

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

test('batched writer: the same rows and the same seq per board, across batches with an unknown card and one that hits SQLITE_BUSY', () => {
  const { file, done } = tempDb();
  try {
    const db = openDb(file);
    const w = createBatchWriter(db);
    const holder = new Database(file);
    // seqs are given in RAM before the broadcast, per board: board 1 gets 1..6, board 2 gets 1..4.
    const b1 = (seq: number, over: Partial<WriteRow> = {}): WriteRow => row(seq, { id: `b1-${seq}`, ...over });
    const b2 = (seq: number, over: Partial<WriteRow> = {}): WriteRow => row(seq, { board: 2, card: 5 + seq, user: 8, id: `b2-${seq}`, ...over });
    // batch 1: clean, both boards
    const r1 = w.write([b1(1), b2(1), b1(2)]);
    assert.deepEqual(
      r1.rows.map((x) => x.ok),
      [true, true, true],
    );
    // batch 2: card 999 does not exist: that row alone fails (bisected), its seq stays handed out
    const r2 = w.write([b1(3), b2(2, { card: 999 }), b1(4)]);
    assert.deepEqual(
      r2.rows.map((x) => (x.ok ? 'ok' : x.code)),
      ['ok', 'WAMI_NO_CARD', 'ok'],
    );
    assert.ok(!r2.rows[1]!.ok && /card 999 not found/.test(r2.rows[1]!.message));
    assert.equal(r2.busyHits, 0);
    // batch 3: another connection holds the write lock: the batch fails as a whole with SQLITE_BUSY (never split), nothing stored
    holder.exec('BEGIN IMMEDIATE');
    const r3 = w.write([b1(5), b2(3)]);
    holder.exec('ROLLBACK');
    assert.deepEqual(
      r3.rows.map((x) => (x.ok ? 'ok' : x.code)),
      ['SQLITE_BUSY', 'SQLITE_BUSY'],
    );
    assert.deepEqual(
      r3.rows.map((x) => x.attempts),
      [2, 2],
      'tried twice (one retry), then given up',
    );
    assert.equal(r3.busyHits, 2);
    assert.equal(r3.splits, 0);
    // batch 4: the lock is free again
    const r4 = w.write([b2(4), b1(6)]);
    assert.deepEqual(
      r4.rows.map((x) => x.ok),
      [true, true],
    );
    holder.close();
    db.close();

    const ro = new Database(file, { readonly: true });
    const events = ro.prepare('SELECT board_id, seq, card_id, user_id, client_msg_id, col, title, at, sent_at FROM card_events ORDER BY id').raw().all();
    const stored = (r: WriteRow): unknown[] => [r.board, r.seq, r.card, r.user, r.id, r.column, r.title, r.at, r.sentAt];
    assert.deepEqual(events, [b1(1), b2(1), b1(2), b1(3), b1(4), b2(4), b1(6)].map(stored), 'exactly the rows that were acked, in commit order');
    assert.deepEqual(ro.prepare('SELECT id, seq FROM boards ORDER BY id').raw().all(), [
      [1, 6],
      [2, 4],
    ]);
    // each card's row is its last stored event; cards never written keep version 0
    const cards = ro.prepare('SELECT id, title, version FROM cards WHERE version > 0 ORDER BY id').raw().all();
    assert.deepEqual(cards, [
      [1, 'title 6', 2],
      [2, 'title 2', 1],
      [3, 'title 3', 1],
      [4, 'title 4', 1],
      [6, 'title 1', 1],
      [9, 'title 4', 1],
    ]);
    ro.close();
  } finally {
    done();
  }
});

test('the WAL headers: checkpoint sequence, frames and backfill, read from a real file', () => {
  const { file, done } = tempDb();
  const heads = new WalHeads(file);
  try {
    assert.equal(heads.read(), null, 'a freshly seeded file has an empty WAL');
    const db = openDb(file);
    const w = createBatchWriter(db);
    w.write([row(1)]);
    const s1 = heads.read()!;
    assert.ok(s1.frames > 0, 'frames in the WAL after one commit');
    assert.equal(s1.backfilled, 0);
    const seq0 = s1.checkpointSeq;
    db.pragma('wal_checkpoint(PASSIVE)');
    const s2 = heads.read()!;
    assert.equal(s2.backfilled, s2.frames, 'a complete checkpoint copied every frame');
    w.write([row(2)]);
    const s3 = heads.read()!;
    assert.equal(s3.checkpointSeq, seq0 + 1, 'the next write restarted the WAL from its start');
    assert.equal(s3.backfilled, 0);
    assert.equal(parseWalHeads(Buffer.alloc(32), Buffer.alloc(100)), null, 'no WAL magic: null');
    db.close();
    // the last connection removed -wal and -shm: the held descriptors are replaced, not read stale
    assert.equal(heads.read(), null, 'no WAL after the last connection closed');
    const again = openDb(file);
    createBatchWriter(again).write([row(3)]);
    const s4 = heads.read()!;
    assert.ok(s4.frames > 0 && s4.backfilled === 0, `the new WAL is read: ${JSON.stringify(s4)}`);
    again.close();
  } finally {
    heads.close();
    done();
  }
});

test("reading the WAL heads keeps this process's SQLite locks: another process cannot take the write lock of a transaction in progress", async () => {
  // fcntl locks belong to the process: a close() of any descriptor of -shm used to drop them all.
  const { file, done } = tempDb();
  const walUrl = new URL('../servers/common/wal.js', import.meta.url).href;
  const script = `
    import Database from 'better-sqlite3';
    import { WalHeads } from ${JSON.stringify(walUrl)};
    const db = new Database(process.argv[1]);
    db.exec('BEGIN IMMEDIATE');
    db.prepare("UPDATE cards SET title = 'held' WHERE id = 1").run();
    const heads = new WalHeads(process.argv[1]);
    heads.read();
    heads.read();
    process.stdout.write('ready\\n');
    process.stdin.once('data', () => {
      db.exec('COMMIT');
      db.close();
      heads.close();
      process.stdout.write('committed\\n');
    });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, file], {
    cwd: fileURLToPath(new URL('.', import.meta.url)),
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  let out = '';
  const waiters: (() => void)[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  // 'close', not 'exit': stdout may still hold the last line when the process has exited
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  const saw = async (what: string): Promise<void> => {
    while (!out.includes(what)) {
      const more = new Promise<'more'>((r) => waiters.push(() => r('more')));
      if ((await Promise.race([more, closed.then(() => 'closed' as const)])) === 'closed' && !out.includes(what))
        throw new Error(`child ended before "${what}": ${out}`);
    }
  };
  try {
    await saw('ready');
    const other = new Database(file, { timeout: 0 });
    try {
      assert.throws(() => other.exec('BEGIN IMMEDIATE'), /database is locked/, 'the child still holds the write lock');
    } finally {
      other.close();
    }
    child.stdin!.end('go\n');
    await saw('committed');
    assert.deepEqual(await exited, { code: 0, signal: null });
    const ro = new Database(file, { readonly: true });
    assert.equal(ro.prepare('SELECT title FROM cards WHERE id = 1').pluck().get(), 'held');
    assert.equal(ro.pragma('integrity_check', { simple: true }), 'ok');
    ro.close();
  } finally {
    child.kill('SIGKILL');
    done();
  }
});
