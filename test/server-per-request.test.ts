/**
 * The per-request variant through real sockets: the shared v1 contract with 2 workers, users on
 * different workers, SQLITE_BUSY retry against a real lock held by another connection, the
 * deadline (BUSY_EXHAUSTED) and the plain deferred baseline.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { defineVariantContract } from './helpers/server-contract.js';
import { type TestServer, withStartedServer } from './helpers/server.js';
import { getJson, metric, waitUntil, WsClient } from './helpers/server-ws.js';
import { cardId } from '../protocol/layout.js';
import type { AckMessage, ErrorMessage } from '../protocol/messages.js';

describe('per-request: protocol v1 contract (2 workers)', () => defineVariantContract('per-request', ['--workers', '2', '--poll-ms', '10']));

/** Holds the SQLite write lock from the test process (a real second connection). */
function holdWriteLock(file: string): { release: () => void } {
  const db = new Database(file);
  db.exec('BEGIN IMMEDIATE');
  return {
    release: () => {
      db.exec('ROLLBACK');
      db.close();
    },
  };
}

/** A per-request server on 2 boards of 5 cards with these flags; it must stop with exit 0. */
const withServer = (flags: string[], fn: (srv: TestServer) => Promise<void>): Promise<void> =>
  withStartedServer('per-request', { boards: 2, cardsPerBoard: 5, flags }, fn);

describe('per-request: workers and SQLITE_BUSY', () => {
  test("users on different workers see each other's updates, in seq order, each once", () =>
    withServer(['--workers', '2', '--poll-ms', '10'], async (srv) => {
      // round-robin spreads sockets over the workers; connect until both have two
      const byPid = new Map<number, WsClient[]>();
      const all: WsClient[] = [];
      const twoOnEach = (): boolean => byPid.size >= 2 && [...byPid.values()].every((l) => l.length >= 2);
      for (let u = 1; all.length < 16 && !twoOnEach(); u++) {
        const c = await WsClient.connect(srv.wsUrl, 1, u);
        all.push(c);
        byPid.set(c.pid, [...(byPid.get(c.pid) ?? []), c]);
      }
      const pids = [...byPid.keys()];
      assert.equal(pids.length, 2, `sockets landed on ${pids.length} worker(s)`);
      const h = (await getJson(`${srv.httpUrl}/healthz`)).body as { perWorker: { pid: number }[] };
      assert.deepEqual(h.perWorker.map((w) => w.pid).sort(), [...pids].sort(), '/healthz lists the same worker pids');
      const [a, b] = [byPid.get(pids[0]!)![0]!, byPid.get(pids[1]!)![0]!];
      const sent: { c: WsClient; id: string }[] = [];
      for (let i = 0; i < 15; i++) {
        sent.push({ c: a, id: a.sendUpdate(cardId(1, i % 5, 5)).id });
        sent.push({ c: b, id: b.sendUpdate(cardId(1, (i + 2) % 5, 5)).id });
      }
      const acks = (await Promise.all(sent.map(({ c, id }) => c.answer(id)))) as AckMessage[];
      assert.ok(acks.every((x) => x.type === 'ack'));
      const seqs = acks.map((x) => x.seq).sort((x, y) => x - y);
      assert.deepEqual(
        seqs,
        Array.from({ length: 30 }, (_, i) => i + 1),
      );
      for (const c of all) {
        const own = acks.filter((_, i) => sent[i]!.c === c).map((x) => x.seq);
        const got = await c.waitUpdates(30 - own.length);
        const gs = got.map((x) => x.seq);
        assert.deepEqual(
          gs,
          seqs.filter((s) => !own.includes(s)),
          `user ${c.user} on pid ${c.pid}: every other update, in seq order, once`,
        );
      }
      await Promise.all(all.map((c) => c.close()));
    }));

  test('a second connection holding BEGIN IMMEDIATE makes retries happen; the update succeeds after release', () =>
    withServer(['--workers', '2', '--retry-deadline-ms', '120000', '--retry-max-attempts', '1000000', '--retry-max-ms', '20'], async (srv) => {
      const s = await WsClient.connect(srv.wsUrl, 1, 1);
      const m = await WsClient.connect(srv.wsUrl, 1, 2);
      const lock = holdWriteLock(srv.db);
      let released = false;
      try {
        const u = s.sendUpdate(cardId(1, 0, 5), { title: 'waited' });
        await waitUntil(async () => (await metric(srv.httpUrl, 'wami_tx_retries_total')) >= 3, 'retries to rise');
        assert.ok((await metric(srv.httpUrl, 'wami_sqlite_busy_total')) >= 3);
        assert.equal(s.frames.length, 0, 'no answer while the lock is held');
        assert.equal(await metric(srv.httpUrl, 'wami_queue_depth'), 1, 'the update is in flight');
        lock.release();
        released = true;
        const ack = (await s.answer(u.id)) as AckMessage;
        assert.equal(ack.type, 'ack', JSON.stringify(ack));
        assert.ok(ack.attempts > 1, `attempts ${ack.attempts}`);
        assert.equal(ack.seq, 1);
        assert.ok(ack.queueMs > 0);
        const [b] = await m.waitUpdates(1);
        assert.equal(b!.id, u.id);
        assert.equal(await metric(srv.httpUrl, 'wami_busy_exhausted_total'), 0);
        await Promise.all([s.close(), m.close()]);
      } finally {
        if (!released) lock.release();
      }
    }));

  test('held past the deadline: BUSY_EXHAUSTED, nothing stored or broadcast; the next update after release works', () =>
    withServer(['--workers', '1', '--retry-deadline-ms', '200', '--retry-max-attempts', '1000000', '--retry-max-ms', '20'], async (srv) => {
      const s = await WsClient.connect(srv.wsUrl, 1, 1);
      const m = await WsClient.connect(srv.wsUrl, 1, 2);
      const lock = holdWriteLock(srv.db);
      let u: ReturnType<WsClient['sendUpdate']> | undefined;
      try {
        u = s.sendUpdate(cardId(1, 1, 5));
        const e = (await s.answer(u.id)) as ErrorMessage;
        assert.equal(e.type, 'error');
        assert.equal(e.code, 'BUSY_EXHAUSTED');
        assert.match(e.message, /deadline/);
      } finally {
        lock.release();
      }
      assert.equal(await metric(srv.httpUrl, 'wami_busy_exhausted_total'), 1);
      assert.ok((await metric(srv.httpUrl, 'wami_tx_retries_total')) >= 1);
      const v = s.sendUpdate(cardId(1, 1, 5));
      const ack = (await s.answer(v.id)) as AckMessage;
      assert.equal(ack.type, 'ack');
      assert.equal(ack.seq, 1, 'the exhausted update consumed no seq');
      await m.waitUpdates(1);
      assert.deepEqual(
        m.updates().map((x) => x.id),
        [v.id],
      );
      const ro = new Database(srv.db, { readonly: true });
      assert.equal(ro.prepare('SELECT count(*) FROM card_events').pluck().get(), 1);
      ro.close();
      await Promise.all([s.close(), m.close()]);
    }));

  test('--tx-mode deferred (the plain baseline, no app retry): a busy database fails at once with attempts 1', () =>
    withServer(['--workers', '1', '--tx-mode', 'deferred'], async (srv) => {
      const s = await WsClient.connect(srv.wsUrl, 1, 1);
      const lock = holdWriteLock(srv.db);
      try {
        const u = s.sendUpdate(cardId(1, 2, 5));
        const e = (await s.answer(u.id)) as ErrorMessage;
        assert.equal(e.code, 'BUSY_EXHAUSTED');
        assert.match(e.message, /after 1 attempt/);
      } finally {
        lock.release();
      }
      assert.equal(await metric(srv.httpUrl, 'wami_tx_retries_total'), 0);
      assert.equal(await metric(srv.httpUrl, 'wami_sqlite_busy_total'), 1);
      const v = s.sendUpdate(cardId(1, 2, 5));
      assert.equal((await s.answer(v.id)).type, 'ack');
      await s.close();
    }));
});
