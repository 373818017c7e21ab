/** The batched variant through real sockets: the shared v1 contract plus OVERLOADED, SIGTERM flush, and a failing row in a batch. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { defineVariantContract } from './helpers/server-contract.js';
import { startServer } from './helpers/server.js';
import { metric, msgId, waitUntil, WsClient } from './helpers/server-ws.js';
import { cardId } from '../protocol/layout.js';
import { seedDatabase } from '../servers/common/db.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AckMessage, ErrorMessage } from '../protocol/messages.js';

describe('batched: protocol v1 contract', () => defineVariantContract('batched', ['--flush-interval-ms', '20']));

describe('batched: queue, shutdown, failures', () => {
  test('a tiny --max-queue answers OVERLOADED and broadcasts nothing for the refused updates', async () => {
    const srv = await startServer('batched', { boards: 2, cardsPerBoard: 5, flags: ['--max-queue', '3', '--flush-interval-ms', '600000'] });
    try {
      const s = await WsClient.connect(srv.wsUrl, 1, 1);
      const m = await WsClient.connect(srv.wsUrl, 1, 2);
      const sent = Array.from({ length: 6 }, (_, i) => s.sendUpdate(cardId(1, i % 5, 5)));
      const refused = await Promise.all(sent.slice(3).map((u) => s.answer(u.id)));
      for (const e of refused) assert.ok(e.type === 'error' && e.code === 'OVERLOADED', JSON.stringify(e));
      // broadcasts happen before the queue push, synchronously; the 3 accepted ones are there
      await m.waitUpdates(3);
      assert.deepEqual(
        m.updates().map((x) => [x.id, x.seq]),
        sent.slice(0, 3).map((u, i) => [u.id, i + 1]),
      );
      assert.equal(await metric(srv.httpUrl, 'wami_queue_depth'), 3);
      assert.equal(await metric(srv.httpUrl, 'wami_errors_total', 'code="OVERLOADED"'), 3);
      // nothing acked yet: the writer has not run
      assert.equal(s.frames.filter((f) => f.type === 'ack').length, 0);
      assert.equal(await srv.stop(), 0);
      // the SIGTERM flush acked the queued three before closing
      assert.deepEqual(
        s.frames.filter((f) => f.type === 'ack').map((f) => (f as AckMessage).seq),
        [1, 2, 3],
      );
      assert.equal(m.updates().length, 3, 'still only the accepted three were broadcast');
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });

  test('SIGTERM with updates queued: all of them are committed, acked, and in the file; exit 0', async () => {
    const srv = await startServer('batched', { boards: 2, cardsPerBoard: 5, flags: ['--flush-interval-ms', '600000'] });
    try {
      const a = await WsClient.connect(srv.wsUrl, 1, 11);
      const b = await WsClient.connect(srv.wsUrl, 2, 12);
      const sentA = Array.from({ length: 30 }, (_, i) => a.sendUpdate(cardId(1, i % 5, 5), { title: `a${i}` }));
      const sentB = Array.from({ length: 20 }, (_, i) => b.sendUpdate(cardId(2, i % 5, 5), { title: `b${i}` }));
      await waitUntil(async () => (await metric(srv.httpUrl, 'wami_queue_depth')) === 50, 'all 50 queued');
      assert.equal(await metric(srv.httpUrl, 'wami_updates_persisted_total'), 0);
      const closedA = a.waitClosed();
      assert.equal(await srv.stop(), 0, srv.output());
      assert.equal((await closedA).code, 1001);
      for (const [c, sent] of [
        [a, sentA],
        [b, sentB],
      ] as const) {
        const acks = sent.map((u) => c.frames.find((f) => f.type === 'ack' && f.id === u.id));
        assert.ok(acks.every(Boolean), 'every queued update was acked before the socket closed');
      }
      const ro = new Database(srv.db, { readonly: true });
      assert.equal(ro.prepare('SELECT count(*) FROM card_events').pluck().get(), 50);
      assert.deepEqual(ro.prepare('SELECT id, seq FROM boards ORDER BY id').raw().all(), [
        [1, 30],
        [2, 20],
      ]);
      assert.equal(
        ro
          .prepare('SELECT title FROM cards WHERE id = ?')
          .pluck()
          .get(cardId(1, 4, 5)),
        'a29',
      );
      ro.close();
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });

  test('a batch with a row failing in SQLite (trigger, duplicate id) still commits the others; the failure is WRITE_FAILED and counted as broadcast-unpersisted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wami-fail-'));
    const db = join(dir, 'f.db');
    seedDatabase(db, { boards: 1, cardsPerBoard: 5 });
    const setup = new Database(db);
    setup.exec(`CREATE TRIGGER fail_magic BEFORE INSERT ON card_events WHEN NEW.title = 'FAIL-ME' BEGIN SELECT RAISE(ABORT, 'magic title refused'); END;`);
    setup.close();
    const srv = await startServer('batched', { db, flags: ['--flush-interval-ms', '300'] });
    try {
      const s = await WsClient.connect(srv.wsUrl, 1, 21);
      const m = await WsClient.connect(srv.wsUrl, 1, 22);
      const dupId = msgId('dup');
      // sent back to back so they normally share one batch; the outcome must hold either way
      const sent = [
        s.sendUpdate(1, { title: 'ok-1' }),
        s.sendUpdate(2, { title: 'FAIL-ME' }),
        s.sendUpdate(3, { title: 'ok-3', id: dupId }),
        s.sendUpdate(4, { title: 'dup-again', id: dupId }),
        s.sendUpdate(5, { title: 'ok-5' }),
      ];
      const answers = await Promise.all(sent.map((u) => s.answer(u.id)));
      // two frames share the dup id: wait for both answers to it
      await s.until(
        () => s.frames.filter((f) => 'id' in f && f.id === dupId && (f.type === 'ack' || f.type === 'error')).length === 2,
        'both answers to the duplicate id',
      );
      const kinds = (id: string): string[] =>
        s.frames.filter((f) => (f.type === 'ack' || f.type === 'error') && f.id === id).map((f) => (f.type === 'ack' ? 'ack' : (f as ErrorMessage).code));
      assert.deepEqual(kinds(sent[0]!.id), ['ack']);
      assert.deepEqual(kinds(sent[1]!.id), ['WRITE_FAILED']);
      assert.deepEqual(kinds(dupId), ['ack', 'WRITE_FAILED']);
      assert.deepEqual(kinds(sent[4]!.id), ['ack']);
      assert.equal(answers.length, 5);
      // all five were broadcast before the commit (the design's trade-off): two are phantoms
      await m.waitUpdates(5);
      assert.equal(await metric(srv.httpUrl, 'wami_broadcast_unpersisted_total'), 2);
      assert.equal(await metric(srv.httpUrl, 'wami_errors_total', 'code="WRITE_FAILED"'), 2);
      assert.equal(await metric(srv.httpUrl, 'wami_updates_persisted_total'), 3);
      const ro = new Database(db, { readonly: true });
      assert.deepEqual(ro.prepare('SELECT seq, title FROM card_events ORDER BY seq').raw().all(), [
        [1, 'ok-1'],
        [3, 'ok-3'],
        [5, 'ok-5'],
      ]);
      assert.equal(ro.prepare('SELECT seq FROM boards WHERE id = 1').pluck().get(), 5);
      ro.close();
      // the server is fine afterwards
      const u = s.sendUpdate(1, { title: 'after' });
      assert.equal((await s.answer(u.id)).type, 'ack');
    } finally {
      assert.equal(await srv.stop(), 0);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a socket that stops reading is closed once its unsent buffer passes --max-buffered-bytes, and counted; the others go on', async () => {
    const srv = await startServer('batched', { boards: 1, cardsPerBoard: 5, flags: ['--max-buffered-bytes', '65536', '--flush-interval-ms', '10'] });
    try {
      const s = await WsClient.connect(srv.wsUrl, 1, 31);
      const m = await WsClient.connect(srv.wsUrl, 1, 32);
      const stuck = await WsClient.connect(srv.wsUrl, 1, 33);
      (stuck.ws as unknown as { _socket: { pause(): void } })._socket.pause(); // never reads again
      const title = 'z'.repeat(200);
      let sent = 0;
      // flood in acked chunks until the kernel buffers toward `stuck` are full and the server's passes the bound
      while ((await metric(srv.httpUrl, 'wami_slow_consumer_closes_total')) === 0) {
        assert.ok(sent < 200_000, 'no slow-consumer close after 200k broadcasts');
        const chunk = Array.from({ length: 500 }, (_, i) => s.sendUpdate(1 + (i % 5), { title }));
        await Promise.all(chunk.map((u) => s.answer(u.id)));
        sent += chunk.length;
      }
      assert.equal(await metric(srv.httpUrl, 'wami_slow_consumer_closes_total'), 1);
      await waitUntil(async () => (await metric(srv.httpUrl, 'wami_connections')) === 2, 'the stuck socket to be gone');
      // the reading member got everything so far and keeps getting updates
      await m.waitUpdates(sent);
      const u = s.sendUpdate(2, { title: 'still here' });
      await s.answer(u.id);
      await m.until(() => m.updates().find((x) => x.id === u.id), 'an update after the close');
      stuck.ws.terminate();
    } finally {
      assert.equal(await srv.stop(), 0);
      srv.cleanup();
    }
  });
});
