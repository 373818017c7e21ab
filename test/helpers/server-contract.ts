/**
 * Protocol v1 behaviour both server variants must show, through real sockets against a real
 * server and a real temp database. Registered by test/server-batched.test.ts and
 * test/server-per-request.test.ts with their variant's flags.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { startServer, type TestServer } from './server.js';
import { fetchNamed, getJson, metric, msgId, WsClient } from './server-ws.js';
import { cardId } from '../../protocol/layout.js';
import type { AckMessage, BroadcastMessage } from '../../protocol/messages.js';

const M = 10; // cards per board

export function defineVariantContract(variant: 'batched' | 'per-request', flags: string[]): void {
  let srv: TestServer;
  const clients: WsClient[] = [];
  const connect = async (board: number, user: number): Promise<WsClient> => {
    const c = await WsClient.connect(srv.wsUrl, board, user);
    clients.push(c);
    return c;
  };

  before(async () => {
    srv = await startServer(variant, { boards: 4, cardsPerBoard: M, flags });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    const code = await srv.stop();
    srv.cleanup();
    assert.equal(code, 0, `server exit code; output:\n${srv.output()}`);
  });

  test(`${variant}: a member gets the update with from and the ack's seq; no echo; other boards get nothing`, async () => {
    const s = await connect(1, 101);
    const m = await connect(1, 102);
    const o = await connect(2, 201);
    const o2 = await connect(2, 202);
    const u = s.sendUpdate(cardId(1, 3, M), { column: 'review', title: 'hello board' });
    const ack = (await s.answer(u.id)) as AckMessage;
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assert.ok(Number.isInteger(ack.seq) && ack.seq >= 1);
    assert.ok(ack.queueMs >= 0 && ack.commitMs >= 0 && ack.attempts >= 1);
    const [b] = await m.waitUpdates(1);
    assert.deepEqual(b, {
      type: 'update',
      id: u.id,
      card: u.card,
      column: 'review',
      title: 'hello board',
      at: u.at,
      sentAt: u.sentAt,
      from: 101,
      seq: ack.seq,
    });
    // sentinels: the member answers on board 1, a second user on board 2 sends; once those arrive,
    // anything the server would have wrongly sent for `u` came before them
    const v = m.sendUpdate(cardId(1, 4, M));
    const w = o2.sendUpdate(cardId(2, 0, M));
    await s.until(() => s.updates().find((x) => x.id === v.id), 'sentinel on board 1');
    await o.until(() => o.updates().find((x) => x.id === w.id), 'sentinel on board 2');
    assert.deepEqual(
      s.updates().map((x) => x.id),
      [v.id],
      "the sender got exactly the other member's update, never its own",
    );
    assert.deepEqual(
      o.updates().map((x) => x.id),
      [w.id],
      'board 2 got only board 2',
    );
    assert.equal(s.updates()[0]!.seq, ack.seq + 1);
    assert.equal(o.updates()[0]!.seq, 1, "board 2's own seq starts at 1");
  });

  test(`${variant}: the ack comes only when the row can be read from the file by another connection`, async () => {
    const s = await connect(2, 301);
    const ro = new Database(srv.db, { readonly: true });
    const find = ro.prepare('SELECT seq FROM card_events WHERE user_id = ? AND client_msg_id = ?').pluck();
    const seenAtAck = new Map<string, unknown>();
    // read synchronously the moment each ack arrives, before anything else can run
    s.ws.on('message', (data) => {
      const f = JSON.parse(String(data)) as { type: string; id: string };
      if (f.type === 'ack') seenAtAck.set(f.id, find.get(301, f.id));
    });
    const sent = Array.from({ length: 8 }, (_, i) => s.sendUpdate(cardId(2, i, M), { title: `durable ${i}` }));
    const answers = await Promise.all(sent.map((u) => s.answer(u.id)));
    ro.close();
    for (const [i, a] of answers.entries()) {
      assert.equal(a.type, 'ack');
      assert.equal(seenAtAck.get(sent[i]!.id), (a as AckMessage).seq, `row of ${sent[i]!.id} readable at ack time with the ack's seq`);
    }
  });

  test(`${variant}: bad frames get BAD_MESSAGE / UNKNOWN_CARD, the socket stays usable, nothing is broadcast`, async () => {
    const s = await connect(4, 401);
    const m = await connect(4, 402);
    const good = { type: 'update', id: 'x', card: cardId(4, 0, M), column: 'todo', title: 't', at: 1, sentAt: 1 };
    const bad: [string | Buffer, string, string | undefined, boolean?][] = [
      ['not json', 'BAD_MESSAGE', undefined],
      [JSON.stringify({ ...good, id: 'b1', type: 'move' }), 'BAD_MESSAGE', 'b1'],
      [JSON.stringify({ ...good, id: 'b2', card: 'one' }), 'BAD_MESSAGE', 'b2'],
      [JSON.stringify({ ...good, id: 'b3', column: 'later' }), 'BAD_MESSAGE', 'b3'],
      [JSON.stringify({ ...good, id: 'b4', title: 'x'.repeat(201) }), 'BAD_MESSAGE', 'b4'],
      [JSON.stringify({ ...good, id: 'b5', title: 'x'.repeat(5000) }), 'BAD_MESSAGE', undefined],
      [JSON.stringify({ ...good, id: 'b6', sentAt: undefined }), 'BAD_MESSAGE', 'b6'],
      [Buffer.from(JSON.stringify({ ...good, id: 'b7' })), 'BAD_MESSAGE', undefined, true],
      [JSON.stringify({ ...good, id: 'b8', card: cardId(3, 0, M) }), 'UNKNOWN_CARD', 'b8'],
      [JSON.stringify({ ...good, id: 'b9', card: 999_999 }), 'UNKNOWN_CARD', 'b9'],
    ];
    for (const [data, code, id, binary] of bad) {
      const n = s.frames.length;
      s.sendRaw(data, binary);
      const e = await s.until(() => s.frames[n], `answer to ${String(data).slice(0, 40)}`);
      assert.equal(e.type, 'error', String(data).slice(0, 60));
      assert.equal(e.type === 'error' && e.code, code, String(data).slice(0, 60));
      assert.equal(e.id, id, String(data).slice(0, 60));
    }
    assert.equal(s.closed, null, 'socket still open');
    const u = s.sendUpdate(cardId(4, 1, M));
    const ack = await s.answer(u.id);
    assert.equal(ack.type, 'ack');
    await m.until(() => m.updates().find((x) => x.id === u.id), 'the valid update');
    assert.deepEqual(
      m.updates().map((x) => x.id),
      [u.id],
      'nothing was broadcast for the bad frames',
    );
    assert.equal((ack as AckMessage).seq, 1, 'bad frames consumed no seq on board 4');
    assert.equal(await metric(srv.httpUrl, 'wami_errors_total', 'code="UNKNOWN_CARD"'), 2);
    assert.ok((await metric(srv.httpUrl, 'wami_errors_total', 'code="BAD_MESSAGE"')) >= 8);
  });

  test(`${variant}: a burst from 10 users on one board: every member sees a gap-free increasing seq, rows = acks`, async () => {
    const board = 3;
    const users = await Promise.all(Array.from({ length: 10 }, (_, i) => connect(board, 500 + i)));
    const per = 15;
    const sent = users.map((c, i) => Array.from({ length: per }, (_, k) => c.sendUpdate(cardId(board, (i + k) % M, M), { id: msgId(`burst${i}`) })));
    const acks = await Promise.all(users.map((c, i) => Promise.all(sent[i]!.map((u) => c.answer(u.id)))));
    const total = users.length * per;
    for (const a of acks.flat()) assert.equal(a.type, 'ack', JSON.stringify(a));
    const allSeqs = acks
      .flat()
      .map((a) => (a as AckMessage).seq)
      .sort((x, y) => x - y);
    assert.deepEqual(
      allSeqs,
      Array.from({ length: total }, (_, i) => i + 1),
      'acks carry seqs 1..N, each once',
    );
    for (const [i, c] of users.entries()) {
      const got: BroadcastMessage[] = await c.waitUpdates(total - per);
      const seqs = got.map((x) => x.seq);
      for (let k = 1; k < seqs.length; k++) assert.ok(seqs[k]! > seqs[k - 1]!, `member ${i}: seq ${seqs[k]} after ${seqs[k - 1]}`);
      const own = new Set(acks[i]!.map((a) => (a as AckMessage).seq));
      assert.ok(
        seqs.every((x) => !own.has(x)),
        `member ${i} got its own update back`,
      );
      const union = [...seqs, ...own].sort((x, y) => x - y);
      assert.deepEqual(union, allSeqs, `member ${i}: received + own = every seq, no gap, no duplicate`);
      assert.ok(got.every((x) => x.from !== 500 + i));
    }
    const ro = new Database(srv.db, { readonly: true });
    assert.equal(ro.prepare('SELECT count(*) FROM card_events WHERE board_id = ?').pluck().get(board), total);
    assert.equal(ro.prepare('SELECT seq FROM boards WHERE id = ?').pluck().get(board), total);
    ro.close();
  });

  test(`${variant}: HTTP routes: /healthz, /boards/:id, /metrics`, async () => {
    const h = await getJson(`${srv.httpUrl}/healthz`);
    assert.equal(h.status, 200);
    const hb = h.body as Record<string, unknown>;
    assert.equal(hb.variant, variant);
    assert.equal(hb.protocol, 1);
    assert.equal(typeof hb.pid, 'number');
    assert.equal(typeof hb.connections, 'number');
    const b = await getJson(`${srv.httpUrl}/boards/1`);
    assert.equal(b.status, 200);
    const body = b.body as { id: number; cards: { id: number; column: string; title: string; version: number }[] };
    assert.equal(body.id, 1);
    assert.equal(body.cards.length, M);
    assert.deepEqual(Object.keys(body.cards[0]!), ['id', 'column', 'title', 'version']);
    const moved = body.cards.find((c) => c.id === cardId(1, 3, M))!;
    assert.deepEqual({ column: moved.column, title: moved.title, version: moved.version }, { column: 'review', title: 'hello board', version: 1 });
    assert.equal((await getJson(`${srv.httpUrl}/boards/77`)).status, 404);
    assert.equal((await getJson(`${srv.httpUrl}/boards/x1`)).status, 400);
    assert.equal((await getJson(`${srv.httpUrl}/nope`)).status, 404);
    const r = await fetchNamed(`${srv.httpUrl}/metrics`);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await r.text();
    for (const n of [
      'wami_connections',
      'wami_queue_depth',
      'wami_batch_size_bucket',
      'wami_wal_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'process_resident_memory_bytes',
    ]) {
      assert.match(text, new RegExp(`^${n}[ {]`, 'm'), n);
    }
    const ro = new Database(srv.db, { readonly: true });
    const rows = ro.prepare('SELECT count(*) FROM card_events').pluck().get() as number;
    ro.close();
    assert.equal(await metric(srv.httpUrl, 'wami_updates_persisted_total'), rows);
    assert.ok((await metric(srv.httpUrl, 'wami_connections')) >= 1);
  });
}
