/**
 * The durable seq lease, as a contract every server of the batched design passes (the Free Pascal
 * server, servers/pascal/README.md "Seq lease", and the TypeScript port, servers/batched/lease.ts):
 * a seq once broadcast is never given to another update, not after SIGKILL, while a clean SIGTERM
 * restart leaves no gap; a board that runs out of lease holds its updates (never broadcast early,
 * never lost) until the writer commits more, and refuses with OVERLOADED past the queue bound. Real
 * processes, real files, real SIGKILL. The same flags (`--flush-interval-ms`, `--seq-lease-block`,
 * `--max-queue`, `--writer-busy-timeout-ms`, `--batch-retries`) and the same numbers for both.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { cardId } from '../../protocol/layout.js';
import type { AckMessage, ErrorMessage } from '../../protocol/messages.js';
import { seedTemp } from './pascal.js';
import { metric, waitUntil, WsClient } from './server-ws.js';

/** A running server under the contract. */
export interface LeaseServer {
  wsUrl: string;
  httpUrl: string;
  output: () => string;
  /** Sends `signal` (default SIGTERM; SIGKILL kills its whole process tree) and resolves with how it exited. */
  stop: (signal?: NodeJS.Signals) => Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** How to start a server of one kind on a seeded file with flags; `stopAll` kills what a failing test left. */
export interface LeaseServerKind {
  skip?: string | undefined;
  start: (db: string, flags: string[]) => Promise<LeaseServer>;
  stopAll: () => Promise<void>;
}

type Row = [board: number, seq: number, id: string];

function events(db: string): Row[] {
  const ro = new Database(db, { readonly: true });
  try {
    return ro.prepare('SELECT board_id, seq, client_msg_id FROM card_events ORDER BY board_id, seq').raw().all() as Row[];
  } finally {
    ro.close();
  }
}

function table(db: string, sql: string): unknown[][] {
  const ro = new Database(db, { readonly: true });
  try {
    return ro.prepare(sql).raw().all() as unknown[][];
  } finally {
    ro.close();
  }
}

export function seqLeaseContract(name: string, kind: LeaseServerKind): void {
  describe(`${name}: seq lease`, { skip: kind.skip }, () => {
    after(kind.stopAll);

    test('SIGTERM releases the lease to the last seq: a restart goes on with the next seq, no gap', async () => {
      const seeded = seedTemp(2, 5);
      try {
        let srv = await kind.start(seeded.db, ['--flush-interval-ms', '20']);
        let s = await WsClient.connect(srv.wsUrl, 1, 1);
        const first = Array.from({ length: 5 }, (_, i) => s.sendUpdate(cardId(1, i, 5)));
        const acks1 = (await Promise.all(first.map((u) => s.answer(u.id)))) as AckMessage[];
        assert.deepEqual(
          acks1.map((a) => a.seq),
          [1, 2, 3, 4, 5],
        );
        // while running, the committed lease is ahead of the broadcasts
        assert.deepEqual(table(seeded.db, 'SELECT board_id, high FROM seq_leases ORDER BY board_id'), [
          [1, 1000],
          [2, 1000],
        ]);
        assert.deepEqual(await srv.stop(), { code: 0, signal: null }, srv.output());
        assert.deepEqual(table(seeded.db, 'SELECT board_id, high FROM seq_leases ORDER BY board_id'), [
          [1, 5],
          [2, 0],
        ]);

        srv = await kind.start(seeded.db, ['--flush-interval-ms', '20']);
        s = await WsClient.connect(srv.wsUrl, 1, 1);
        const u = s.sendUpdate(cardId(1, 0, 5));
        assert.equal(((await s.answer(u.id)) as AckMessage).seq, 6);
        const o = await WsClient.connect(srv.wsUrl, 2, 2);
        const v = o.sendUpdate(cardId(2, 0, 5));
        assert.equal(((await o.answer(v.id)) as AckMessage).seq, 1);
        assert.deepEqual(await srv.stop(), { code: 0, signal: null }, srv.output());
        assert.deepEqual(
          events(seeded.db).map(([b, q]) => [b, q]),
          [
            [1, 1],
            [1, 2],
            [1, 3],
            [1, 4],
            [1, 5],
            [1, 6],
            [2, 1],
          ],
        );
        assert.deepEqual(table(seeded.db, 'SELECT id, seq FROM boards ORDER BY id'), [
          [1, 6],
          [2, 1],
        ]);
      } finally {
        seeded.cleanup();
      }
    });

    test('SIGKILL with broadcast seqs not yet committed: the restart skips past the lease, never giving those seqs to other updates', async () => {
      const seeded = seedTemp(1, 5);
      try {
        // a flush interval of 10 minutes: nothing of these updates is committed before the kill
        let srv = await kind.start(seeded.db, ['--flush-interval-ms', '600000', '--seq-lease-block', '100']);
        const w = await WsClient.connect(srv.wsUrl, 1, 50);
        const s = await WsClient.connect(srv.wsUrl, 1, 51);
        const sent = Array.from({ length: 7 }, (_, i) => s.sendUpdate(cardId(1, i % 5, 5)));
        const seen = await w.waitUpdates(7);
        assert.deepEqual(
          seen.map((b) => [b.seq, b.id]),
          sent.map((u, i) => [i + 1, u.id]),
          'broadcast from RAM with seqs 1..7',
        );
        assert.deepEqual(await srv.stop('SIGKILL'), { code: null, signal: 'SIGKILL' });
        assert.deepEqual(events(seeded.db), [], 'nothing was committed (the design: broadcast before the commit)');
        assert.deepEqual(table(seeded.db, 'SELECT board_id, high FROM seq_leases'), [[1, 100]], 'the lease committed at start');

        srv = await kind.start(seeded.db, ['--flush-interval-ms', '20', '--seq-lease-block', '100']);
        const w2 = await WsClient.connect(srv.wsUrl, 1, 50);
        const s2 = await WsClient.connect(srv.wsUrl, 1, 51);
        const again = Array.from({ length: 3 }, (_, i) => s2.sendUpdate(cardId(1, i, 5)));
        const acks = (await Promise.all(again.map((u) => s2.answer(u.id)))) as AckMessage[];
        assert.deepEqual(
          acks.map((a) => a.seq),
          [101, 102, 103],
          "the next seqs start after the crashed run's lease",
        );
        assert.deepEqual(
          (await w2.waitUpdates(3)).map((b) => b.seq),
          [101, 102, 103],
        );
        assert.deepEqual(await srv.stop(), { code: 0, signal: null }, srv.output());
        assert.deepEqual(
          events(seeded.db),
          again.map((u, i): Row => [1, 101 + i, u.id]),
          'seqs 1..7 stay gaps: never reused',
        );
        assert.deepEqual(table(seeded.db, 'SELECT board_id, high FROM seq_leases'), [[1, 103]]);
      } finally {
        seeded.cleanup();
      }
    });

    test('SIGKILL mid-load and a restart on the same file: no seq a watching socket saw is stored for another update; every ack is stored', async () => {
      const seeded = seedTemp(3, 10);
      const flags = ['--flush-interval-ms', '15', '--seq-lease-block', '8'];
      const boards = [1, 2, 3];
      /** board -> seq -> the id a watcher saw with it (over both runs) */
      const seenBy = new Map<number, Map<number, string>>(boards.map((b) => [b, new Map()]));
      const conflicts: string[] = [];
      const acked: [board: number, seq: number, id: string][] = [];
      const watch = (w: WsClient, board: number): void => {
        w.ws.on('message', (d) => {
          const f = JSON.parse(String(d)) as { type: string; seq: number; id: string };
          if (f.type !== 'update') return;
          const prev = seenBy.get(board)!.get(f.seq);
          if (prev !== undefined && prev !== f.id) conflicts.push(`board ${board} seq ${f.seq}: ${prev} and ${f.id}`);
          seenBy.get(board)!.set(f.seq, f.id);
        });
      };
      /** Sends from each sender (every ~3 ms) until `stop()`; every ack is recorded as it arrives. */
      const load = (senders: WsClient[]): { stop: () => Promise<void> } => {
        let running = true;
        const loops = senders.map(async (c) => {
          c.ws.on('message', (d) => {
            const f = JSON.parse(String(d)) as { type: string; seq: number; id: string };
            if (f.type === 'ack') acked.push([c.board, f.seq, f.id]);
          });
          let k = 0;
          while (running && !c.closed) {
            c.sendUpdate(cardId(c.board, k++ % 10, 10));
            await new Promise((r) => setTimeout(r, 3));
          }
        });
        return {
          stop: async () => {
            running = false;
            await Promise.all(loops);
          },
        };
      };
      try {
        let srv = await kind.start(seeded.db, flags);
        for (const b of boards) watch(await WsClient.connect(srv.wsUrl, b, 100 + b), b);
        let senders: WsClient[] = [];
        for (const b of boards) senders.push(await WsClient.connect(srv.wsUrl, b, 200 + b), await WsClient.connect(srv.wsUrl, b, 300 + b));
        let l = load(senders);
        // kill while updates flow: after some acks (leases extended many times with a block of 8)
        await waitUntil(() => acked.length >= 120, '120 acks before the kill', 60_000);
        assert.deepEqual(await srv.stop('SIGKILL'), { code: null, signal: 'SIGKILL' });
        await l.stop();
        const maxSeenBefore = new Map(boards.map((b) => [b, Math.max(0, ...seenBy.get(b)!.keys())]));
        const ackedBefore = acked.length;

        srv = await kind.start(seeded.db, flags);
        for (const b of boards) watch(await WsClient.connect(srv.wsUrl, b, 100 + b), b);
        senders = [];
        for (const b of boards) senders.push(await WsClient.connect(srv.wsUrl, b, 400 + b), await WsClient.connect(srv.wsUrl, b, 500 + b));
        l = load(senders);
        await waitUntil(() => acked.length >= ackedBefore + 60, '60 acks after the restart', 60_000);
        await l.stop();
        // SIGTERM commits and acks what is queued, then closes with 1001: every ack is in before the close
        assert.deepEqual(await srv.stop(), { code: 0, signal: null }, srv.output());
        await Promise.all(senders.map((c) => c.waitClosed()));

        assert.deepEqual(conflicts, [], 'no seq seen with two ids');
        const rows = events(seeded.db);
        const stored = new Map(rows.map(([b, q, id]) => [`${b}/${q}`, id]));
        const reused = rows.filter(([b, q, id]) => seenBy.get(b)!.has(q) && seenBy.get(b)!.get(q) !== id);
        assert.deepEqual(reused, [], 'a seq seen by a watcher is stored for no other update');
        const lost = acked.filter(([b, q, id]) => stored.get(`${b}/${q}`) !== id);
        assert.deepEqual(lost, [], "every acked update is stored with its ack's seq");
        for (const b of boards) {
          const after = rows.filter(([rb, q]) => rb === b && q > maxSeenBefore.get(b)!);
          const firstAfterRestart = Math.min(
            ...acked
              .slice(ackedBefore)
              .filter(([ab]) => ab === b)
              .map(([, q]) => q),
          );
          assert.ok(
            firstAfterRestart > maxSeenBefore.get(b)!,
            `board ${b}: the restart's first seq ${firstAfterRestart} is past every seq seen before the kill (${maxSeenBefore.get(b)})`,
          );
          assert.ok(after.length > 0, `board ${b} has updates after the restart`);
        }
      } finally {
        seeded.cleanup();
      }
    });

    test('a burst past the lease is held, not broadcast, until the writer commits more; then all go out in order, gap-free, and the holds are counted', async () => {
      const seeded = seedTemp(1, 5);
      const srv = await kind.start(seeded.db, ['--flush-interval-ms', '50', '--seq-lease-block', '2']);
      try {
        const s = await WsClient.connect(srv.wsUrl, 1, 61);
        const m = await WsClient.connect(srv.wsUrl, 1, 62);
        const sent = Array.from({ length: 40 }, (_, i) => s.sendUpdate(cardId(1, i % 5, 5), { title: `b${i}` }));
        const acks = (await Promise.all(sent.map((u) => s.answer(u.id)))) as AckMessage[];
        assert.deepEqual(
          acks.map((a) => a.type),
          sent.map(() => 'ack'),
        );
        assert.deepEqual(
          acks.map((a) => a.seq),
          sent.map((_, i) => i + 1),
        );
        const seen = await m.waitUpdates(40);
        assert.deepEqual(
          seen.map((b) => [b.seq, b.id]),
          sent.map((u, i) => [i + 1, u.id]),
        );
        assert.ok((await metric(srv.httpUrl, 'wami_seq_lease_holds_total')) > 0, 'some updates waited for a lease');
        assert.equal(await metric(srv.httpUrl, 'wami_seq_lease_held'), 0);
        assert.equal(await metric(srv.httpUrl, 'wami_queue_depth'), 0);
        assert.deepEqual(
          events(seeded.db).map(([, q, id]) => [q, id]),
          sent.map((u, i) => [i + 1, u.id]),
        );
        const [[high]] = table(seeded.db, 'SELECT high FROM seq_leases WHERE board_id = 1') as [[number]];
        assert.ok(high >= 40, `lease high ${high} covers every seq handed out`);
      } finally {
        assert.equal((await srv.stop()).code, 0);
        seeded.cleanup();
      }
    });

    test('when the disk refuses writes the lease cannot grow: updates are held (not broadcast), OVERLOADED past --max-queue, and go out once writes work again', async () => {
      const seeded = seedTemp(1, 5);
      const srv = await kind.start(seeded.db, [
        '--flush-interval-ms',
        '30',
        '--seq-lease-block',
        '4',
        '--max-queue',
        '10',
        '--writer-busy-timeout-ms',
        '0',
        '--batch-retries',
        '0',
      ]);
      const lock = new Database(seeded.db);
      try {
        const s = await WsClient.connect(srv.wsUrl, 1, 71);
        const w = await WsClient.connect(srv.wsUrl, 1, 72);
        lock.exec('BEGIN IMMEDIATE'); // another writer holds SQLite's write lock: every commit fails SQLITE_BUSY
        const early = Array.from({ length: 4 }, (_, i) => s.sendUpdate(1 + i));
        for (const u of early) {
          const a = (await s.answer(u.id)) as ErrorMessage;
          assert.equal(a.code, 'WRITE_FAILED', JSON.stringify(a));
          assert.match(a.message, /SQLITE_BUSY/);
        }
        assert.deepEqual(
          (await w.waitUpdates(4)).map((b) => b.seq),
          [1, 2, 3, 4],
          'the lease of 4 was used (and broadcast) before any commit',
        );
        const more = Array.from({ length: 12 }, (_, i) => s.sendUpdate(1 + (i % 5), { title: `m${i}` }));
        for (const u of more.slice(10)) assert.equal(((await s.answer(u.id)) as ErrorMessage).code, 'OVERLOADED');
        assert.equal(await metric(srv.httpUrl, 'wami_seq_lease_held'), 10);
        assert.equal(await metric(srv.httpUrl, 'wami_queue_depth'), 10);
        assert.equal(await metric(srv.httpUrl, 'wami_seq_lease_holds_total'), 10);
        assert.ok((await metric(srv.httpUrl, 'wami_sqlite_busy_total')) > 0);
        assert.equal(w.updates().length, 4, 'held updates are not broadcast');
        lock.exec('ROLLBACK');
        const acks = (await Promise.all(more.slice(0, 10).map((u) => s.answer(u.id)))) as AckMessage[];
        assert.deepEqual(
          acks.map((a) => a.seq),
          [5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
        );
        assert.deepEqual(
          (await w.waitUpdates(14)).slice(4).map((b) => [b.seq, b.id]),
          more.slice(0, 10).map((u, i) => [i + 5, u.id]),
        );
        // 1..4 were broadcast and then failed: phantoms by design, their seqs gaps, never reused
        assert.deepEqual(
          events(seeded.db).map(([, q]) => q),
          [5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
        );
        assert.equal(await metric(srv.httpUrl, 'wami_broadcast_unpersisted_total'), 4);
      } finally {
        if (lock.inTransaction) lock.exec('ROLLBACK');
        lock.close();
        assert.equal((await srv.stop()).code, 0);
        seeded.cleanup();
      }
    });
  });
}
