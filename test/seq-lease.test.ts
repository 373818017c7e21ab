/**
 * A seq is never reused (protocol/README.md section 4). The batched design's seq lease
 * (servers/batched/lease.ts): its arithmetic with exact numbers, its SQL on a real file, the lease
 * contract the Free Pascal server passes too (test/helpers/lease-contract.ts), and kill and disk-full
 * on a real file for both designs with a restart, a watching socket and the file both checked by the
 * audit's seqReused.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Ledger } from '../model/fleet-result.js';
import { cardId } from '../protocol/layout.js';
import type { AckMessage, ErrorMessage } from '../protocol/messages.js';
import { compareLedger, readStoredState } from '../runner/audit.js';
import { createBatchWriter, type WriteRow } from '../servers/batched/writer-core.js';
import { openDb, seedDatabase } from '../servers/common/db.js';
import { seqLeaseContract } from './helpers/lease-contract.js';
import { startOnFile, stopAllOnFile } from './helpers/server.js';
import { metric, waitUntil, WsClient } from './helpers/server-ws.js';

describe('the writer on a real file: leases at start, with batches, alone, through failed rows, released', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wami-lease-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const row = (seq: number, over: Partial<WriteRow> = {}): WriteRow => ({
    board: 1,
    seq,
    card: cardId(1, seq % 5, 5),
    user: 7,
    id: `w-${seq}`,
    column: 'doing',
    title: `t${seq}`,
    at: 1,
    sentAt: 1,
    receivedAt: 1,
    ...over,
  });
  const leases = (db: Database.Database): unknown[] => db.prepare('SELECT board_id, high FROM seq_leases ORDER BY board_id').raw().all();

  test('exact rows of seq_leases and boards after each step', () => {
    const file = join(dir, 'w.db');
    seedDatabase(file, { boards: 3, cardsPerBoard: 5 });
    const db = openDb(file);
    try {
      db.prepare('UPDATE boards SET seq = 40 WHERE id = 2').run(); // a board with history, no lease row
      db.exec('INSERT INTO seq_leases (board_id, high) VALUES (3, 77)'); // a board whose last run crashed
      const w = createBatchWriter(db);
      assert.deepEqual(
        w.openLeases(10, (b) => b !== 3),
        [
          [1, 0, 10],
          [2, 40, 50],
        ],
      );
      assert.deepEqual(leases(db), [
        [1, 10],
        [2, 50],
        [3, 77],
      ]);
      let r = w.write([row(1), row(2)], [[1, 12]]);
      assert.equal(r.leasesCommitted, true);
      assert.deepEqual(leases(db)[0], [1, 12]);
      // a lease never goes down through the upsert
      r = w.write([], [[1, 11]]);
      assert.equal(r.leasesCommitted, true);
      assert.deepEqual(leases(db)[0], [1, 12]);
      // every row fails (a duplicate id): boards.seq is still raised past them, with the lease
      db.exec(`CREATE TRIGGER nope BEFORE INSERT ON card_events WHEN NEW.client_msg_id LIKE 'bad%' BEGIN SELECT RAISE(ABORT, 'refused'); END`);
      r = w.write([row(3, { id: 'bad-3' }), row(4, { id: 'bad-4' })], [[1, 14]]);
      assert.deepEqual(
        r.rows.map((x) => x.ok),
        [false, false],
      );
      assert.equal(r.leasesCommitted, true);
      assert.deepEqual(leases(db)[0], [1, 14]);
      assert.deepEqual(db.prepare('SELECT seq FROM boards WHERE id = 1').pluck().get(), 4);
      // a failing and a good row: the good row's transaction carries the lease
      r = w.write([row(5, { id: 'bad-5' }), row(6)], [[1, 16]]);
      assert.deepEqual(
        r.rows.map((x) => x.ok),
        [false, true],
      );
      assert.equal(r.leasesCommitted, true);
      assert.deepEqual(leases(db)[0], [1, 16]);
      // release: to the last seq handed out (8: two seqs broadcast, still in flight), or boards.seq when higher
      w.releaseLeases([
        [1, 8],
        [2, 40],
      ]);
      assert.deepEqual(leases(db), [
        [1, 8],
        [2, 40],
        [3, 77],
      ]);
      w.releaseLeases([[1, 2]]);
      assert.deepEqual(leases(db)[0], [1, 6], 'never below boards.seq (6)');
      assert.deepEqual(db.prepare('SELECT seq FROM card_events ORDER BY seq').pluck().all(), [1, 2, 6]);
    } finally {
      db.close();
    }
  });
});

seqLeaseContract('batched', { start: (db, flags) => startOnFile('batched', db, flags), stopAll: stopAllOnFile });

/** What a watching member saw and what the senders were told, as a ledger for the audit. */
class Watch {
  readonly ledger: Ledger = { acked: [], errored: [], unanswered: [], seen: [] };
  watch(c: WsClient): void {
    c.ws.on('message', (d) => {
      const f = JSON.parse(String(d)) as { type: string; seq: number; id: string; from: number; code: string };
      if (f.type === 'update') this.ledger.seen.push([f.from, f.id, c.board, f.seq]);
      else if (f.type === 'ack') this.ledger.acked.push([c.user, f.id, f.seq]);
      else if (f.type === 'error' && f.id) this.ledger.errored.push([c.user, f.id, f.code]);
    });
  }
  audit(db: string) {
    return compareLedger(readStoredState(db), this.ledger, { boardOfUser: () => 1 });
  }
}

/** Sends `n` updates from `s` and waits for every answer; returns the answers. */
async function burst(s: WsClient, n: number, tag: string): Promise<Array<AckMessage | ErrorMessage>> {
  const sent = Array.from({ length: n }, (_, i) => s.sendUpdate(cardId(1, i % 5, 5), { title: `${tag}${i}` }));
  return (await Promise.all(sent.map((u) => s.answer(u.id)))) as Array<AckMessage | ErrorMessage>;
}

const post = async (url: string): Promise<unknown> => {
  const r = await fetch(url, { method: 'POST' });
  assert.equal(r.status, 200, `${url}: HTTP ${r.status}`);
  return r.json();
};

for (const variant of ['batched', 'per-request'] as const) {
  describe(`${variant}: disk full and kill on a real file, restarts, a watching socket: no seq reused`, () => {
    after(stopAllOnFile);
    const flags =
      variant === 'batched'
        ? ['--flush-interval-ms', '20', '--seq-lease-block', '16', '--fault-injection', 'true']
        : ['--workers', '2', '--fault-injection', 'true'];

    test(`disk full (writes fail)${variant === 'batched' ? ', SIGTERM, restart; then disk full' : ''}, SIGKILL, restart`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'wami-reuse-'));
      const db = join(dir, 'board.db');
      seedDatabase(db, { boards: 1, cardsPerBoard: 5 });
      const w = new Watch();
      try {
        // batched: the case (disk full, then a clean stop) and a crash; per-request: a crash
        for (const ending of variant === 'batched' ? (['SIGTERM', 'SIGKILL'] as const) : (['SIGKILL'] as const)) {
          const srv = await startOnFile(variant, db, flags);
          const watcher = await WsClient.connect(srv.wsUrl, 1, 90);
          const s = await WsClient.connect(srv.wsUrl, 1, ending === 'SIGTERM' ? 91 : 92);
          w.watch(watcher);
          w.watch(s);
          assert.ok((await burst(s, 3, 'ok')).every((a) => a.type === 'ack'));
          assert.deepEqual(await post(`${srv.httpUrl}/faults/disk-full/on`), {
            diskFull: true,
            processes: variant === 'batched' ? 1 : 2,
            ...(variant === 'batched' ? {} : { of: 2 }),
          });
          // writes that need a new page fail: keep sending until some do (the last page fills first)
          let failed = 0;
          for (let k = 0; k < 40 && failed < 3; k++) failed += (await burst(s, 10, `full${k}-`)).filter((a) => a.type === 'error').length;
          assert.ok(failed >= 3, `writes failed under disk-full (${failed})`);
          assert.ok((await metric(srv.httpUrl, 'wami_errors_total', 'code="WRITE_FAILED"')) >= 3);
          if (ending === 'SIGTERM') {
            await post(`${srv.httpUrl}/faults/disk-full/off`);
            assert.ok(
              (await burst(s, 2, 'back')).every((a) => a.type === 'ack'),
              'writes work again',
            );
            assert.equal((await srv.stop('SIGTERM')).code, 0, srv.output());
          } else {
            assert.equal((await srv.stop('SIGKILL')).signal, 'SIGKILL');
          }
        }
        const srv = await startOnFile(variant, db, flags);
        const watcher = await WsClient.connect(srv.wsUrl, 1, 90);
        const s = await WsClient.connect(srv.wsUrl, 1, 93);
        w.watch(watcher);
        w.watch(s);
        assert.ok((await burst(s, 5, 'after')).every((a) => a.type === 'ack'));
        await waitUntil(() => watcher.updates().length >= 5, 'the watcher sees the last updates');
        assert.equal((await srv.stop('SIGTERM')).code, 0, srv.output());
        const a = w.audit(db);
        assert.equal(a.seqReused, 0, `no seq reused: ${a.examples.join('; ')}`);
        assert.equal(a.lostAcked, 0, a.examples.join('; '));
        if (variant === 'batched') assert.ok(a.phantom > 0, 'batched broadcast the updates whose writes then failed (phantoms by design)');
        else assert.equal(a.phantom, 0, 'per-request broadcasts only what it stored');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

test('batched --shards 2: each shard leases its own boards; a SIGKILL of the tree and a restart skip past both leases', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wami-shard-lease-'));
  const db = join(dir, 'board.db');
  seedDatabase(db, { boards: 2, cardsPerBoard: 5 });
  const leases = (): unknown[] => {
    const ro = new Database(db, { readonly: true });
    try {
      return ro.prepare('SELECT board_id, high FROM seq_leases ORDER BY board_id').raw().all();
    } finally {
      ro.close();
    }
  };
  try {
    // nothing is committed before the kill (a flush interval of 10 minutes)
    let srv = await startOnFile('batched', db, ['--shards', '2', '--flush-interval-ms', '600000', '--seq-lease-block', '100']);
    for (const b of [1, 2]) {
      const w = await WsClient.connect(srv.wsUrl, b, 50 + b);
      const s = await WsClient.connect(srv.wsUrl, b, 60 + b);
      const sent = [1, 2, 3].map((i) => s.sendUpdate(cardId(b, i, 5)));
      assert.deepEqual(
        (await w.waitUpdates(3)).map((u) => [u.seq, u.id]),
        sent.map((u, i) => [i + 1, u.id]),
      );
    }
    assert.deepEqual(leases(), [
      [1, 100],
      [2, 100],
    ]);
    assert.equal((await srv.stop('SIGKILL')).signal, 'SIGKILL');
    srv = await startOnFile('batched', db, ['--shards', '2', '--flush-interval-ms', '20', '--seq-lease-block', '100']);
    for (const b of [1, 2]) {
      const s = await WsClient.connect(srv.wsUrl, b, 70 + b);
      const u = s.sendUpdate(cardId(b, 0, 5));
      assert.equal(((await s.answer(u.id)) as AckMessage).seq, 101, `board ${b}: past the crashed run's lease`);
    }
    assert.equal((await srv.stop('SIGTERM')).code, 0, srv.output());
    assert.deepEqual(leases(), [
      [1, 101],
      [2, 101],
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
