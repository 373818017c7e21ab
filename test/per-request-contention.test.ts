/**
 * The per-request variant's SQLITE_BUSY paths that server-per-request.test.ts does not reach, through
 * real worker processes, sockets and a temp SQLite file:
 * - two workers writing one board at once: every update stored once under its own seq, and the BUSY
 *   they cause each other accounted exactly (hits = retries = the acks' attempts beyond the first);
 * - the give-up after the last attempt (the attempt limit, not the deadline): BUSY_EXHAUSTED to the
 *   client, each attempt counted, nothing stored or broadcast;
 * - `--tx-mode deferred` with app retries, hitting BUSY mid-transaction (BEGIN and the read pass, the
 *   write meets the lock): each failed attempt rolled back, so once the other writer commits, the next
 *   attempt reads the new state and commits (a stale read kept open would fail forever).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { type TestServer, withStartedServer } from './helpers/server.js';
import { metric, waitUntil, WsClient } from './helpers/server-ws.js';
import { cardId } from '../protocol/layout.js';
import type { AckMessage, ErrorMessage } from '../protocol/messages.js';

/** A per-request server on 2 boards of 5 cards with these flags; it must stop with exit 0. */
const withServer = (flags: string[], fn: (srv: TestServer) => Promise<void>): Promise<void> =>
  withStartedServer('per-request', { boards: 2, cardsPerBoard: 5, flags }, fn);

const counters = async (srv: TestServer) => ({
  busy: await metric(srv.httpUrl, 'wami_sqlite_busy_total'),
  retries: await metric(srv.httpUrl, 'wami_tx_retries_total'),
  exhausted: await metric(srv.httpUrl, 'wami_busy_exhausted_total'),
  attemptsSum: await metric(srv.httpUrl, 'wami_tx_attempts_sum'),
  attemptsCount: await metric(srv.httpUrl, 'wami_tx_attempts_count'),
});

describe('per-request: workers contending, giving up, deferred', () => {
  test('two workers writing one board at once: seqs 1..N each once, rows = acks, and BUSY between them = retries = attempts beyond the first', () =>
    withServer(
      ['--workers', '2', '--poll-ms', '10', '--retry-max-attempts', '1000000', '--retry-deadline-ms', '120000', '--retry-max-ms', '5'],
      async (srv) => {
        // round-robin spreads sockets over the workers: connect until both hold three
        const byPid = new Map<number, WsClient[]>();
        const all: WsClient[] = [];
        for (let u = 1; all.length < 24 && !(byPid.size === 2 && [...byPid.values()].every((l) => l.length >= 3)); u++) {
          const c = await WsClient.connect(srv.wsUrl, 1, u);
          all.push(c);
          byPid.set(c.pid, [...(byPid.get(c.pid) ?? []), c]);
        }
        assert.equal(byPid.size, 2, 'sockets on both workers');
        const writers = [...byPid.values()].flatMap((l) => l.slice(0, 3));
        const PER = 40;
        // Every writer sends its whole burst at once: the two workers' transactions meet in the file.
        const sent = writers.map((c, i) => Array.from({ length: PER }, (_, k) => c.sendUpdate(cardId(1, (i + k) % 5, 5), { title: `w${i} #${k}` })));
        const acks = (await Promise.all(writers.map((c, i) => Promise.all(sent[i]!.map((u) => c.answer(u.id)))))).flat() as AckMessage[];
        assert.deepEqual(
          acks.filter((a) => a.type !== 'ack'),
          [],
        );
        const n = writers.length * PER;
        assert.deepEqual(
          acks.map((a) => a.seq).sort((x, y) => x - y),
          Array.from({ length: n }, (_, k) => k + 1),
          'one seq per update, none twice, none skipped',
        );
        const ro = new Database(srv.db, { readonly: true });
        assert.deepEqual(
          (ro.prepare('SELECT client_msg_id FROM card_events ORDER BY seq').pluck().all() as string[]).sort(),
          sent
            .flat()
            .map((u) => u.id)
            .sort(),
          'stored rows = acked updates',
        );
        assert.equal(ro.prepare('SELECT seq FROM boards WHERE id = 1').pluck().get(), n);
        ro.close();
        // However often the workers collided (the machine decides), each collision is one BUSY, one
        // retry and one more attempt of that update, and none gave up.
        const c = await counters(srv);
        const extra = acks.reduce((t, a) => t + a.attempts - 1, 0);
        assert.deepEqual(
          { busy: c.busy, retries: c.retries, exhausted: c.exhausted, attemptsSum: c.attemptsSum, attemptsCount: c.attemptsCount },
          { busy: extra, retries: extra, exhausted: 0, attemptsSum: n + extra, attemptsCount: n },
        );
        await Promise.all(all.map((x) => x.close()));
      },
    ));

  test('the give-up after the last attempt (--retry-max-attempts 3, a far deadline): BUSY_EXHAUSTED names the limit; 3 BUSY, 2 retries; nothing stored or broadcast', () =>
    withServer(['--workers', '1', '--retry-max-attempts', '3', '--retry-deadline-ms', '120000', '--retry-max-ms', '5'], async (srv) => {
      const s = await WsClient.connect(srv.wsUrl, 1, 1);
      const m = await WsClient.connect(srv.wsUrl, 1, 2);
      const before = await counters(srv);
      const holder = new Database(srv.db);
      holder.exec('BEGIN IMMEDIATE');
      try {
        const u = s.sendUpdate(cardId(1, 3, 5));
        const e = (await s.answer(u.id)) as ErrorMessage;
        assert.deepEqual([e.type, e.code, e.id], ['error', 'BUSY_EXHAUSTED', u.id]);
        assert.equal(e.message, 'database busy: gave up after 3 attempt(s) (attempt limit reached; SQLITE_BUSY)');
      } finally {
        holder.exec('ROLLBACK');
        holder.close();
      }
      const after = await counters(srv);
      assert.deepEqual(
        {
          busy: after.busy - before.busy,
          retries: after.retries - before.retries,
          exhausted: after.exhausted - before.exhausted,
          attemptsSum: after.attemptsSum - before.attemptsSum,
          attemptsCount: after.attemptsCount - before.attemptsCount,
        },
        { busy: 3, retries: 2, exhausted: 1, attemptsSum: 3, attemptsCount: 1 },
      );
      // The next update (lock released) takes seq 1: the refused one consumed nothing; the member gets only it.
      const v = s.sendUpdate(cardId(1, 3, 5), { title: 'after' });
      const ack = (await s.answer(v.id)) as AckMessage;
      assert.deepEqual([ack.type, ack.seq, ack.attempts], ['ack', 1, 1]);
      await m.waitUpdates(1);
      assert.deepEqual(
        m.updates().map((x) => x.id),
        [v.id],
      );
      const ro = new Database(srv.db, { readonly: true });
      assert.deepEqual(ro.prepare('SELECT seq, client_msg_id FROM card_events').raw().all(), [[1, v.id]]);
      ro.close();
      await Promise.all([s.close(), m.close()]);
    }));

  test('--tx-mode deferred with retries: BUSY at the write, after BEGIN and the read; each attempt rolled back, so after the other writer commits the next attempt reads anew and commits', () =>
    withServer(
      ['--workers', '1', '--tx-mode', 'deferred', '--retry-max-attempts', '1000000', '--retry-deadline-ms', '120000', '--retry-max-ms', '20'],
      async (srv) => {
        const card = cardId(1, 0, 5);
        const s = await WsClient.connect(srv.wsUrl, 1, 1);
        const holder = new Database(srv.db);
        holder.exec('BEGIN IMMEDIATE');
        holder.prepare('UPDATE cards SET title = ? WHERE id = ?').run('the holder', card);
        let open = true;
        try {
          const u = s.sendUpdate(card, { title: 'the update' });
          await waitUntil(async () => (await metric(srv.httpUrl, 'wami_tx_retries_total')) >= 3, 'three retries');
          assert.equal(s.frames.length, 0, 'no answer while the lock is held');
          // The other writer commits (a deferred reader in the worker never blocks it: WAL).
          holder.exec('COMMIT');
          open = false;
          const ack = (await s.answer(u.id)) as AckMessage;
          assert.equal(ack.type, 'ack', JSON.stringify(ack));
          assert.equal(ack.seq, 1);
          assert.ok(ack.attempts >= 4, `attempts ${ack.attempts}`);
          const c = await counters(srv);
          assert.deepEqual([c.busy, c.retries, c.exhausted, c.attemptsSum, c.attemptsCount], [ack.attempts - 1, ack.attempts - 1, 0, ack.attempts, 1]);
        } finally {
          if (open) holder.exec('ROLLBACK');
          holder.close();
        }
        const ro = new Database(srv.db, { readonly: true });
        assert.deepEqual(ro.prepare('SELECT title, version FROM cards WHERE id = ?').raw().get(card), ['the update', 1], 'written over the holder’s commit');
        assert.deepEqual(ro.prepare('SELECT seq, title FROM card_events').raw().all(), [[1, 'the update']]);
        ro.close();
        await s.close();
      },
    ));
});
