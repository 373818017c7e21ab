/**
 * batched --shards N, the parts without sockets: the board -> shard mapping, the writer's wait on
 * SQLITE_BUSY from another writer (commitWithSplit's busyWait, exact with a fake clock), and two
 * real writers on one file: a writer with the shards' busy wait commits everything while another
 * process holds the write lock; without it (busy_timeout 0) the same batch fails with BUSY.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BUSY_BACKOFF_MAX_MS, commitWithSplit, DEFAULT_SPLIT_POLICY, type TryCommit } from '../servers/batched/batching.js';
import { shardOf } from '../servers/batched/shard-ipc.js';
import { createBatchWriter, type WriteRow } from '../servers/batched/writer-core.js';
import { openDb, seedDatabase } from '../servers/common/db.js';
import { cardId } from '../protocol/layout.js';
import { CLI } from './helpers/server.js';

test('shardOf: (board - 1) mod N, stable, every board in 0..N-1', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((b) => shardOf(b, 2)),
    [0, 1, 0, 1, 0],
  );
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7].map((b) => shardOf(b, 3)),
    [0, 1, 2, 0, 1, 2, 0],
  );
  assert.equal(shardOf(0, 4), 3, 'board 0 still maps into range');
  assert.equal(shardOf(1e15, 7), (1e15 - 1) % 7);
  for (let b = 0; b < 1000; b++) for (const n of [1, 2, 5]) assert.ok(shardOf(b, n) >= 0 && shardOf(b, n) < n);
});

const require_ = createRequire(import.meta.url);
const busyError = (): Error => Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });

test('commitWithSplit busyWait: BUSY is waited out within one try (each hit recorded), then commits; nothing split or lost', () => {
  let clock = 0;
  const sleeps: number[] = [];
  let busyLeft = 5;
  const tryCommit: TryCommit<number> = () => (busyLeft-- > 0 ? { ok: false, error: busyError() } : { ok: true, startMs: clock, endMs: clock + 1 });
  const r = commitWithSplit([1, 2, 3], tryCommit, {
    ...DEFAULT_SPLIT_POLICY,
    busyWait: {
      maxMs: 1000,
      sleep: (ms) => {
        clock += ms;
        sleeps.push(ms);
      },
      now: () => clock,
      random: () => 1,
    },
  });
  assert.deepEqual(
    r.outcomes.map((o) => o.ok),
    [true, true, true],
  );
  assert.deepEqual(
    r.outcomes.map((o) => o.attempts),
    [6, 6, 6],
    'each BUSY try is an attempt',
  );
  assert.equal(r.tx.filter((t) => !t.ok).length, 5, 'five BUSY hits recorded');
  assert.equal(r.retries, 5);
  assert.equal(r.splits, 0);
  assert.deepEqual(sleeps, [0.25, 0.5, 1, 2, 4], 'doubling backoff');
});

test('commitWithSplit busyWait: past maxMs the try fails; the next retry waits again; a persistent BUSY fails the range unsplit', () => {
  let clock = 0;
  const r = commitWithSplit([1, 2, 3, 4], () => ({ ok: false, error: busyError() }), {
    ...DEFAULT_SPLIT_POLICY,
    retries: 1,
    busyWait: { maxMs: 50, sleep: (ms) => void (clock += ms), now: () => clock, random: () => 1 },
  });
  assert.ok(r.outcomes.every((o) => !o.ok));
  assert.equal(r.splits, 0);
  assert.ok(clock >= 100 && clock < 100 + 2 * BUSY_BACKOFF_MAX_MS + 1, `waited about 2 x 50 ms (${clock})`);
  // without busyWait: the default policy, exactly as before (1 + retries tries)
  const plain = commitWithSplit([1, 2], () => ({ ok: false, error: busyError() }));
  assert.equal(plain.tx.length, 2);
});

test('commitWithSplit busyWait: a non-BUSY error is not waited on (split as before)', () => {
  let slept = 0;
  const r = commitWithSplit([1, 2], (xs) => (xs.includes(2) ? { ok: false, error: new Error('constraint') } : { ok: true, startMs: 0, endMs: 0 }), {
    ...DEFAULT_SPLIT_POLICY,
    retries: 0,
    busyWait: { maxMs: 1000, sleep: () => void slept++, now: () => 0 },
  });
  assert.deepEqual(
    r.outcomes.map((o) => o.ok),
    [true, false],
  );
  assert.equal(slept, 0);
});

/**
 * Another process takes the write lock of `db`, prints "locked", and holds it until the file
 * `release` exists (it looks every 5 ms), then commits. Event-driven: the lock is held for as long
 * as the test needs it, however slow the machine, and released when the test says so (from a
 * synchronous callback too: writing a file needs no event loop).
 */
function holdWriteLock(db: string, release: string): Promise<{ released: Promise<number | null> }> {
  const src = `
    const fs = require('node:fs');
    const Database = require(${JSON.stringify(require_.resolve('better-sqlite3'))});
    const db = new Database(${JSON.stringify(db)});
    db.exec('BEGIN IMMEDIATE');
    db.exec("UPDATE boards SET name = name WHERE id = 1");
    process.stdout.write('locked\\n');
    const t = setInterval(() => {
      if (!fs.existsSync(${JSON.stringify(release)})) return;
      clearInterval(t);
      db.exec('COMMIT');
      db.close();
    }, 5);
  `;
  const child = spawn(process.execPath, ['-e', src], { stdio: ['ignore', 'pipe', 'inherit'] });
  const released = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('locked')) resolve({ released });
    });
    child.once('exit', (c) => reject(new Error(`lock holder exited ${c} before locking`)));
  });
}
const rows = (board: number, n: number, tag: string): WriteRow[] =>
  Array.from({ length: n }, (_, i) => ({
    board,
    seq: i + 1,
    card: cardId(board, i % 5, 5),
    user: 7,
    id: `${tag}-${i}`,
    column: 'doing',
    title: `${tag} ${i}`,
    at: 1,
    sentAt: 1,
    receivedAt: performance.now(),
  }));

test("two writers on one file: with the shards' busy wait a batch survives another writer holding the lock (BUSY hits counted); without it, it fails", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wami-shards-busy-'));
  try {
    const file = join(dir, 'b.db');
    seedDatabase(file, { boards: 2, cardsPerBoard: 5 });
    const cell = new Int32Array(new SharedArrayBuffer(4));
    const db = openDb(file, { busyTimeoutMs: 0 });

    // plain writer, busy_timeout 0, no app wait: BUSY fails the batch (the lock is held until we release it)
    const plain = createBatchWriter(db, { ...DEFAULT_SPLIT_POLICY, retries: 0 });
    const release1 = join(dir, 'release-1');
    let lock = await holdWriteLock(file, release1);
    const failed = plain.write(rows(1, 3, 'p'));
    writeFileSync(release1, '');
    assert.ok(
      failed.rows.every((r) => !r.ok && /SQLITE_BUSY/.test(r.code)),
      JSON.stringify(failed.rows[0]),
    );
    assert.equal(await lock.released, 0);

    // the shards' writer: waits the lock out, commits every row. The lock is released from inside
    // the writer's own wait, after its first BUSY: so the wait is certain, and so is its end.
    const release2 = join(dir, 'release-2');
    const shardWriter = createBatchWriter(db, {
      ...DEFAULT_SPLIT_POLICY,
      busyWait: {
        maxMs: 30_000,
        sleep: (ms) => {
          if (!existsSync(release2)) writeFileSync(release2, '');
          Atomics.wait(cell, 0, 0, ms);
        },
        now: () => performance.now(),
      },
    });
    lock = await holdWriteLock(file, release2);
    const ok = shardWriter.write(rows(2, 4, 's'));
    assert.ok(
      ok.rows.every((r) => r.ok),
      JSON.stringify(ok.rows),
    );
    assert.ok(ok.busyHits >= 1, `busy hits counted (${ok.busyHits})`);
    assert.ok(ok.rows.every((r) => r.attempts === ok.busyHits + 1));
    assert.equal(await lock.released, 0);
    assert.equal(db.prepare('SELECT count(*) FROM card_events WHERE board_id = 2').pluck().get(), 4);
    assert.equal(db.prepare('SELECT seq FROM boards WHERE id = 2').pluck().get(), 4);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('serve --shards: documented in --help; bad values and the wrong variant exit 2', () => {
  const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 });
  const help = cli(['serve', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--shards N/);
  const dir = mkdtempSync(join(tmpdir(), 'wami-shards-cli-'));
  try {
    const db = join(dir, 'ok.db');
    seedDatabase(db, { boards: 1, cardsPerBoard: 1 });
    for (const [args, re] of [
      [['serve', 'batched', '--db', db, '--shards', '0'], /--shards must be between 1/],
      [['serve', 'batched', '--db', db, '--shards', 'two'], /--shards must be an integer/],
      [['serve', 'per-request', '--db', db, '--shards', '2'], /--shards applies to the batched variant, not per-request/],
    ] as const) {
      const r = cli([...args]);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
