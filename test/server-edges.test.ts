/**
 * Server edges, on real processes and sockets: a stuck slow consumer is dropped after a bounded wait
 * and counted, while one that still reads gets its 4008; an update arriving while the server stops
 * gets OVERLOADED, never silence (both designs); `serve` stops gracefully when the process that
 * started it dies (a killed wrapper must not leave a server listening).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cardId } from '../protocol/layout.js';
import type { AckMessage, ErrorMessage } from '../protocol/messages.js';
import { seedDatabase } from '../servers/common/db.js';
import { alive, CLI, LISTEN_RE, startOnFile, stopAllOnFile } from './helpers/server.js';
import { metric, waitUntil, WsClient } from './helpers/server-ws.js';

const M = 5;

function tempDb(boards: number): { db: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'wami-edges-'));
  const db = join(dir, 'board.db');
  seedDatabase(db, { boards, cardsPerBoard: M });
  return { db, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('server edges', () => {
  after(stopAllOnFile);

  test('slow consumers: one that never reads is dropped after the grace (counted); one that reads again gets 4008', { timeout: 120_000 }, async () => {
    const t = tempDb(2);
    const srv = await startOnFile('batched', t.db, ['--max-buffered-bytes', '65536', '--flush-interval-ms', '20']);
    try {
      const title = 'x'.repeat(200);
      /** Sends big updates on `board` until the server has closed `closes` slow consumers in all. */
      const flood = async (board: number, closes: number): Promise<void> => {
        const s = await WsClient.connect(srv.wsUrl, board, 100 + board);
        for (let k = 0; k < 400; k++) {
          let last = '';
          for (let i = 0; i < 200; i++) last = s.sendUpdate(cardId(board, i % M, M), { title }).id;
          await s.answer(last); // the sender reads its acks: only the member that does not read falls behind
          if ((await metric(srv.httpUrl, 'wami_slow_consumer_closes_total')) >= closes) return;
        }
        assert.fail('the server never closed the slow consumer');
      };
      // board 1: a member that stops reading for good
      const stuck = await WsClient.connect(srv.wsUrl, 1, 1);
      stuck.ws.pause();
      await flood(1, 1);
      await waitUntil(async () => (await metric(srv.httpUrl, 'wami_slow_consumer_destroyed_total')) === 1, 'the stuck consumer dropped');
      // board 2: a member that is slow, then reads again as soon as the server closed it
      const slow = await WsClient.connect(srv.wsUrl, 2, 2);
      slow.ws.pause();
      await flood(2, 2);
      slow.ws.resume();
      assert.equal((await slow.waitClosed(30_000)).code, 4008, 'behind its backlog, the close frame arrives');
      stuck.ws.resume();
      assert.equal((await stuck.waitClosed(30_000)).code, 1006, 'the dropped one never got a close frame');
      assert.equal(await metric(srv.httpUrl, 'wami_slow_consumer_closes_total'), 2);
      assert.equal(await metric(srv.httpUrl, 'wami_slow_consumer_destroyed_total'), 1);
    } finally {
      assert.equal((await srv.stop()).code, 0, srv.output());
      t.cleanup();
    }
  });

  for (const variant of ['batched', 'per-request'] as const) {
    test(`${variant}: an update arriving while the server stops is answered OVERLOADED; what was in flight is stored and acked`, async () => {
      const t = tempDb(1);
      const flags =
        variant === 'batched'
          ? ['--writer-busy-timeout-ms', '60000', '--flush-interval-ms', '20']
          : ['--workers', '1', '--retry-deadline-ms', '60000', '--retry-max-attempts', '1000000', '--retry-max-ms', '20'];
      const srv = await startOnFile(variant, t.db, flags);
      const lock = new Database(t.db);
      try {
        const s = await WsClient.connect(srv.wsUrl, 1, 1);
        lock.exec('BEGIN IMMEDIATE'); // the write in flight waits for this lock
        const first = s.sendUpdate(cardId(1, 0, M));
        if (variant === 'per-request') await waitUntil(async () => (await metric(srv.httpUrl, 'wami_sqlite_busy_total')) > 0, 'the write waiting');
        else await waitUntil(async () => (await metric(srv.httpUrl, 'wami_queue_depth')) === 0, 'the batch taken by the writer');
        const stopped = srv.stop('SIGTERM');
        // Stopping while the write still waits: a new connection refused, or 503 on a keep-alive one.
        // Only those prove it. A request that gets no answer proves nothing: with cluster workers, a
        // connection the primary handed over just as the worker closed its server hangs until that
        // worker exits; it is abandoned after 1 s and asked again on a fresh connection.
        await waitUntil(
          () =>
            fetch(`${srv.httpUrl}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
              (r) => r.status === 503,
              (e: Error) => e.name !== 'TimeoutError',
            ),
          'the server stopping',
        );
        const late = s.sendUpdate(cardId(1, 1, M));
        const refusal = (await s.answer(late.id)) as ErrorMessage;
        assert.deepEqual([refusal.type, refusal.code, refusal.message], ['error', 'OVERLOADED', 'server is shutting down']);
        lock.exec('ROLLBACK');
        assert.equal(((await s.answer(first.id)) as AckMessage).type, 'ack');
        assert.equal((await s.waitClosed()).code, 1001);
        assert.equal((await stopped).code, 0, srv.output());
        const ro = new Database(t.db, { readonly: true });
        assert.deepEqual(ro.prepare('SELECT client_msg_id FROM card_events').pluck().all(), [first.id]);
        ro.close();
      } finally {
        if (lock.inTransaction) lock.exec('ROLLBACK');
        lock.close();
        await srv.stop('SIGKILL');
        t.cleanup();
      }
    });
  }

  test('serve stops gracefully when the process that started it dies (a killed wrapper leaves no server listening)', async () => {
    const t = tempDb(1);
    // a wrapper like npx: a shell that starts the server and waits; the shell is then SIGKILLed
    const wrapper = spawn('sh', ['-c', `"${process.execPath}" "${CLI}" serve batched --db "${t.db}" --port 0 & echo "server-pid $!"; wait`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    wrapper.stdout.on('data', (d: Buffer) => (out += d.toString()));
    wrapper.stderr.on('data', (d: Buffer) => (out += d.toString()));
    let pid = 0;
    try {
      await waitUntil(() => LISTEN_RE.test(out) && /server-pid (\d+)/.test(out), 'the server listening');
      pid = Number(/server-pid (\d+)/.exec(out)![1]);
      const port = Number(LISTEN_RE.exec(out)![2]);
      const s = await WsClient.connect(`ws://127.0.0.1:${port}/ws`, 1, 1);
      const u = s.sendUpdate(cardId(1, 0, M));
      assert.equal(((await s.answer(u.id)) as AckMessage).seq, 1);
      wrapper.kill('SIGKILL');
      assert.equal((await s.waitClosed()).code, 1001, 'closed as in a graceful stop');
      await waitUntil(() => !alive(pid), 'the orphaned server exits by itself');
      const ro = new Database(t.db, { readonly: true });
      assert.deepEqual(ro.prepare('SELECT board_id, high FROM seq_leases').raw().all(), [[1, 1]], 'the lease released: a graceful stop');
      ro.close();
    } finally {
      if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
      if (wrapper.exitCode === null) wrapper.kill('SIGKILL');
      t.cleanup();
    }
  });
});
