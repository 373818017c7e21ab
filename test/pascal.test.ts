/**
 * The Free Pascal server (servers/pascal/) through its real binary, real sockets and a real seeded
 * SQLite file: its pure parts against JavaScript's own answers, `wami-bench conformance` in full,
 * the transport (1009, 1007, fragments, ping, close), the HTTP routes, the queue bound, a failing
 * row, a slow consumer, and a graceful stop. Skips, saying why, only where fpc is not installed.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { connect as netConnect, createServer } from 'node:net';
import Database from 'better-sqlite3';
import { WebSocket } from 'ws';
import { cardId } from '../protocol/layout.js';
import type { AckMessage, ClientUpdate, ErrorMessage } from '../protocol/messages.js';
import { parseClientFrame } from '../protocol/parse.js';
import { mulberry32 } from '../report/stats.js';
import { PASCAL_BINARY, PASCAL_UNIT_TESTS } from '../servers/pascal/index.js';
import { pascalSkipReason, seedTemp, startPascal, stopAllPascal } from './helpers/pascal.js';
import { CLI } from './helpers/server.js';
import { metric, msgId, waitUntil, WsClient } from './helpers/server-ws.js';

const skip = pascalSkipReason();
if (skip) process.stderr.write(`pascal tests skipped: ${skip}\n`);

function runTool(args: string[], input: string): string {
  const r = spawnSync(PASCAL_UNIT_TESTS, args, { input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, `${PASCAL_UNIT_TESTS} ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

function runCli(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

/** A raw ws client for the transport checks (close codes, fragments, pings). */
/** A wait on the server that fails, naming what it waited for, instead of hanging the suite (30 s). */
function bounded<T>(what: string, start: (res: (v: T) => void, rej: (e: Error) => void) => void, ms = 30_000): Promise<T> {
  return new Promise<T>((res, rej) => {
    const t = setTimeout(() => rej(new Error(`no ${what} within ${ms / 1000} s`)), ms);
    start(
      (v) => {
        clearTimeout(t);
        res(v);
      },
      (e) => {
        clearTimeout(t);
        rej(e);
      },
    );
  });
}

function rawWs(url: string): Promise<WebSocket> {
  return bounded('WebSocket open', (res, rej) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.once('open', () => res(ws));
    ws.once('error', rej);
  });
}

function closeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return bounded('close from the server', (res) => ws.once('close', (code, reason) => res({ code, reason: reason.toString() })));
}

function nextText(ws: WebSocket): Promise<Record<string, unknown>> {
  return bounded('text frame from the server', (res) => ws.once('message', (d) => res(JSON.parse(String(d)) as Record<string, unknown>)));
}

function update(card: number, over: Partial<ClientUpdate> = {}): ClientUpdate {
  const t = performance.now();
  return { type: 'update', id: msgId('p'), card, column: 'doing', title: 'x', at: t, sentAt: t, ...over };
}

describe('pascal: pure parts', { skip }, () => {
  test('the unit-test program passes (JSON, numbers, UTF-8, framing, HTTP heads, commit policy; exact values)', () => {
    const out = runTool([], '');
    assert.match(out, /^ok \d+ checks$/m);
  });

  test('numbers are written exactly as JavaScript writes them, and rounded as the TypeScript servers round queueMs', () => {
    const rnd = mulberry32(16);
    const xs: number[] = [0, 1, 0.1, 0.5, 1.5, 2.5, 1e21, 1e-7, 123e-20, 5e-324, Number.MAX_VALUE, 2 ** 53, 2 ** 53 + 2, 0.0005, 12.3455, 1234.5675];
    const buf = new DataView(new ArrayBuffer(8));
    for (let i = 0; i < 3000; i++) {
      // clock-like values (what at/sentAt are), small durations (queueMs), then any bit pattern
      xs.push(rnd() * 1e7, rnd() * 50, Math.round(rnd() * 1e6) / 1000);
      buf.setUint32(0, (rnd() * 2 ** 32) >>> 0);
      buf.setUint32(4, (rnd() * 2 ** 32) >>> 0);
      const x = buf.getFloat64(0);
      if (Number.isFinite(x)) xs.push(x);
    }
    const hex = xs.map((x) => {
      buf.setFloat64(0, x);
      return buf.getBigUint64(0).toString(16).padStart(16, '0');
    });
    const lines = runTool(['--numbers'], hex.join('\n') + '\n')
      .trimEnd()
      .split('\n');
    assert.equal(lines.length, xs.length);
    const bad: string[] = [];
    xs.forEach((x, i) => {
      const [num, r3] = lines[i]!.split('\t');
      if (num !== String(x)) bad.push(`${x}: "${num}"`);
      if (Math.abs(x) < 1e300) {
        const want = String(Math.round(Math.max(0, x) * 1000) / 1000);
        if (r3 !== want) bad.push(`round3(${x}): "${r3}", JS "${want}"`);
      }
    });
    assert.deepEqual(bad.slice(0, 10), [], `${bad.length} of ${xs.length} differ`);
  });

  test('the client-frame parser agrees with protocol/parse.ts on every frame of a mutation corpus (verdict, message, id, fields)', () => {
    const rnd = mulberry32(6455);
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
    const values = [
      '1',
      '0',
      '-3',
      '1.5',
      '1e2',
      '1E400',
      '-0',
      '9007199254740991',
      '9007199254740992',
      '0.1',
      '"7"',
      '""',
      '"doing"',
      '"done"',
      '"x"',
      'null',
      'true',
      'false',
      '[]',
      '[1,{"a":[2]}]',
      '{}',
      '{"type":"update"}',
      '"\\u0074odo"',
      '"a\\"b\\\\c\\n\\u00e9\\ud83d\\ude00"',
      '"\\ud800"',
      '"é😀"',
      `"${'t'.repeat(200)}"`,
      `"${'t'.repeat(201)}"`,
      `"${'😀'.repeat(100)}"`,
      `"${'😀'.repeat(100)}x"`,
      `"${'i'.repeat(64)}"`,
      `"${'i'.repeat(65)}"`,
      '01',
      '1.',
      '.5',
      '+1',
      '1e',
      '"\\x"',
      '"\u0001"',
      'NaN',
      'Infinity',
    ];
    const base = (): [string, string][] => [
      ['type', '"update"'],
      ['id', `"${pick(['a1', 'z', 'u-17-42', 'é', '😀x'])}"`],
      ['card', pick(['7', '1', '42', '123456'])],
      ['column', pick(['"todo"', '"doing"', '"backlog"', '"review"', '"done"'])],
      ['title', pick(['"Fix login"', '""', '"t"', '"a\\tb"'])],
      ['at', pick(['81234.5', '0', '1e3', '12.25'])],
      ['sentAt', pick(['81234.9', '0', '3'])],
    ];
    const render = (kv: [string, string][], ws: () => string): string =>
      `${ws()}{${kv.map(([k, v]) => `${ws()}"${k}"${ws()}:${ws()}${v}${ws()}`).join(',')}}${ws()}`;
    const frames: string[] = ['', ' ', '{', '}', '[]', '"update"', '{"type":"update",', '{}', 'null', '{"type":"update"}{}', '\t{"type":"hello","id":"q"}\n'];
    for (let i = 0; i < 2500; i++) {
      const kv = base();
      const ws = (): string => (rnd() < 0.1 ? pick([' ', '\n', '\t', '\r\n', '  ']) : '');
      const op = Math.floor(rnd() * 9);
      if (op === 0) kv[Math.floor(rnd() * kv.length)]![1] = pick(values);
      else if (op === 1) kv.splice(Math.floor(rnd() * kv.length), 1);
      else if (op === 2) kv.push([pick(['extra', 'from', 'seq', 'Type', 'ids']), pick(values)]);
      else if (op === 3)
        kv.push([pick(['type', 'id', 'card', 'title', 'at']), pick(values)]); // duplicate key: last wins
      else if (op === 4) kv.sort(() => rnd() - 0.5);
      else if (op === 5) kv[0]![1] = pick(['"hello"', '"ack"', '1', 'null', '"updatE"']);
      let f = render(kv, ws);
      if (op === 6) {
        const at = Math.floor(rnd() * f.length);
        f = f.slice(0, at) + f.slice(at + 1);
      } else if (op === 7) {
        const at = Math.floor(rnd() * f.length);
        f = f.slice(0, at) + pick(['"', ',', '}', '{', ':', '\\', ']', '0', ' ']) + f.slice(at);
      } else if (op === 8 && rnd() < 0.3) {
        f = f.replace('"title":', `"title":"${'y'.repeat(4096)}",  "title":`);
      }
      frames.push(f);
    }
    const input = frames.map((f) => Buffer.from(f, 'utf8').toString('base64')).join('\n') + '\n';
    const lines = runTool(['--frames'], input).trimEnd().split('\n');
    assert.equal(lines.length, frames.length);
    const diffs: string[] = [];
    let oks = 0;
    frames.forEach((f, i) => {
      const ts = parseClientFrame(Buffer.from(f, 'utf8'));
      const pas = JSON.parse(lines[i]!) as { ok: boolean; message?: string; id?: string } & Partial<ClientUpdate>;
      const want = ts.ok
        ? { ok: true, id: ts.msg.id, card: ts.msg.card, column: ts.msg.column, title: ts.msg.title, at: ts.msg.at, sentAt: ts.msg.sentAt }
        : { ok: false, message: ts.message, ...(ts.id === undefined ? {} : { id: ts.id }) };
      if (ts.ok) oks++;
      try {
        // through JSON as a frame would go: -0 is written 0 by both servers
        assert.deepEqual(pas, JSON.parse(JSON.stringify(want)));
      } catch {
        diffs.push(`${JSON.stringify(f.slice(0, 120))}: pascal ${JSON.stringify(pas).slice(0, 200)} ts ${JSON.stringify(want).slice(0, 200)}`);
      }
    });
    assert.deepEqual(diffs.slice(0, 5), [], `${diffs.length} of ${frames.length} frames differ`);
    assert.ok(oks > 200 && oks < frames.length - 200, `the corpus has both valid (${oks}) and invalid frames`);
  });
});

// bounded: a server that never exits fails its test instead of hanging the suite
describe('pascal: the server', { skip, timeout: 180_000 }, () => {
  after(stopAllPascal);

  test('wami-bench conformance passes in full against it (port 0, a seeded temp database); SIGTERM exits 0', async () => {
    const seeded = seedTemp(3, 10);
    const srv = await startPascal(seeded.db);
    try {
      const r = await runCli(['conformance', `ws://127.0.0.1:${srv.port}`, '--cards-per-board', '10', '--quiet-ms', '200']);
      assert.equal(r.code, 0, r.out);
      assert.doesNotMatch(r.out, /^FAIL/m);
      const passed = /^(\d+) passed, 0 failed$/m.exec(r.out);
      assert.ok(passed && Number(passed[1]) >= 18, r.out);
    } finally {
      const x = await srv.stop();
      seeded.cleanup();
      assert.deepEqual(x, { code: 0, signal: null }, srv.output());
    }
  });

  test('transport: 1009 above the ceiling, BAD_MESSAGE between 4096 and it, 1007 for invalid UTF-8, fragments, ping, close echo', async () => {
    const seeded = seedTemp(1, 5);
    const srv = await startPascal(seeded.db, ['--max-payload-bytes', '8192', '--flush-interval-ms', '20']);
    const url = `${srv.wsUrl}?board=1&user=5`;
    try {
      // between the frame limit and the ceiling: BAD_MESSAGE, the socket stays usable
      const a = await rawWs(url);
      a.send(JSON.stringify(update(1, { title: 'y'.repeat(6000) })));
      const e = await nextText(a);
      assert.equal(e.code, 'BAD_MESSAGE');
      assert.match(String(e.message), /exceeds the limit of 4096/);
      // a fragmented message (three frames, a ping between them) is one update
      const u = update(2);
      const text = JSON.stringify(u);
      const pong = bounded<string>('pong', (res) => a.once('pong', (d) => res(d.toString())));
      a.send(text.slice(0, 10), { fin: false });
      a.ping('are you there');
      a.send(text.slice(10, 30), { fin: false });
      a.send(text.slice(30), { fin: true });
      assert.equal(await pong, 'are you there');
      const ack = await nextText(a);
      assert.equal(ack.type, 'ack', JSON.stringify(ack));
      assert.equal(ack.id, u.id);
      // a binary frame: BAD_MESSAGE
      a.send(Buffer.from(JSON.stringify(update(1))), { binary: true });
      assert.equal((await nextText(a)).code, 'BAD_MESSAGE');
      // the client closes: the server echoes the code
      const closedA = closeOf(a);
      a.close(4000, 'bye');
      assert.equal((await closedA).code, 4000);

      // one byte over the ceiling: closed with 1009 from the header, nothing buffered
      const b = await rawWs(url);
      const closedB = closeOf(b);
      b.send('z'.repeat(8193));
      assert.equal((await closedB).code, 1009);

      // invalid UTF-8 in a text frame: 1007
      const c = await rawWs(url);
      const closedC = closeOf(c);
      c.send(Buffer.from([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x7d]), { binary: false });
      assert.equal((await closedC).code, 1007);

      await waitUntil(async () => (await metric(srv.httpUrl, 'wami_connections')) === 0, 'all sockets gone');
      assert.equal(await metric(srv.httpUrl, 'wami_updates_persisted_total'), 1);
    } finally {
      const x = await srv.stop();
      seeded.cleanup();
      assert.equal(x.code, 0, srv.output());
    }
  });

  test('HTTP: /healthz, /boards/:id (200, HEAD, 400, 404, percent-encoded), 405, 426, 404, keep-alive with pipelined requests', async () => {
    const seeded = seedTemp(2, 4);
    const srv = await startPascal(seeded.db);
    try {
      const h = (await (await fetch(`${srv.httpUrl}/healthz`)).json()) as Record<string, unknown>;
      assert.equal(h.status, 'ok');
      assert.equal(h.variant, 'pascal');
      assert.equal(h.protocol, 1);
      assert.equal(h.pid, srv.pid);
      assert.equal(h.connections, 0);
      assert.equal(h.queueDepth, 0);
      assert.equal(h.boards, 2);
      const b = await fetch(`${srv.httpUrl}/boards/2`);
      assert.equal(b.status, 200);
      assert.deepEqual(await b.json(), {
        id: 2,
        cards: [5, 6, 7, 8].map((id, k) => ({ id, column: ['backlog', 'todo', 'doing', 'review'][k], title: `card ${k + 1} of board 2`, version: 0 })),
      });
      const head = await fetch(`${srv.httpUrl}/boards/2`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(await head.text(), '');
      assert.equal((await fetch(`${srv.httpUrl}/boards/%31`)).status, 200);
      assert.equal((await fetch(`${srv.httpUrl}/boards/abc`)).status, 400);
      assert.equal((await fetch(`${srv.httpUrl}/boards/-1`)).status, 400);
      assert.equal((await fetch(`${srv.httpUrl}/boards/3`)).status, 404);
      const post = await fetch(`${srv.httpUrl}/healthz`, { method: 'POST', body: 'x' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get('allow'), 'GET, HEAD');
      assert.equal((await fetch(`${srv.httpUrl}/ws`)).status, 426);
      assert.equal((await fetch(`${srv.httpUrl}/nowhere`)).status, 404);
      const m = await fetch(`${srv.httpUrl}/metrics`);
      assert.match(m.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      assert.match(await m.text(), /^# TYPE wami_seq_lease_holds_total counter$/m);
      // two requests in one write on one connection: two answers, in order, connection kept
      const raw = await new Promise<string>((res, rej) => {
        const s = netConnect(srv.port, '127.0.0.1', () =>
          s.write('GET /boards/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
        );
        let got = '';
        s.on('data', (d) => (got += d.toString()));
        s.on('end', () => res(got));
        s.on('error', rej);
      });
      const statuses = [...raw.matchAll(/HTTP\/1\.1 (\d+) /g)].map((x) => x[1]);
      assert.deepEqual(statuses, ['200', '200']);
      assert.ok(raw.indexOf('"cards"') < raw.indexOf('"variant":"pascal"'), 'answers in request order');
    } finally {
      await srv.stop();
      seeded.cleanup();
    }
  });

  test('a tiny --max-queue answers OVERLOADED and broadcasts nothing for the refused; SIGTERM commits and acks the queued, closes with 1001, exits 0', async () => {
    const seeded = seedTemp(2, 5);
    const srv = await startPascal(seeded.db, ['--max-queue', '3', '--flush-interval-ms', '600000']);
    try {
      const s = await WsClient.connect(srv.wsUrl, 1, 1);
      const m = await WsClient.connect(srv.wsUrl, 1, 2);
      const sent = Array.from({ length: 6 }, (_, i) => s.sendUpdate(cardId(1, i % 5, 5)));
      const refused = await Promise.all(sent.slice(3).map((u) => s.answer(u.id)));
      for (const e of refused) assert.ok(e.type === 'error' && e.code === 'OVERLOADED', JSON.stringify(e));
      await m.waitUpdates(3);
      assert.deepEqual(
        m.updates().map((x) => [x.id, x.seq]),
        sent.slice(0, 3).map((u, i) => [u.id, i + 1]),
      );
      assert.equal(await metric(srv.httpUrl, 'wami_queue_depth'), 3);
      assert.equal(await metric(srv.httpUrl, 'wami_errors_total', 'code="OVERLOADED"'), 3);
      assert.equal(s.frames.filter((f) => f.type === 'ack').length, 0, 'nothing acked before a commit');
      const closed = s.waitClosed();
      assert.deepEqual(await srv.stop(), { code: 0, signal: null }, srv.output());
      assert.equal((await closed).code, 1001);
      assert.deepEqual(
        s.frames.filter((f) => f.type === 'ack').map((f) => (f as AckMessage).seq),
        [1, 2, 3],
      );
      const ro = new Database(seeded.db, { readonly: true });
      assert.deepEqual(
        ro.prepare('SELECT seq, client_msg_id FROM card_events ORDER BY seq').raw().all(),
        sent.slice(0, 3).map((u, i) => [i + 1, u.id]),
      );
      // the lease is released to the last seq: a clean restart has no gap
      assert.deepEqual(ro.prepare('SELECT board_id, high FROM seq_leases ORDER BY board_id').raw().all(), [
        [1, 3],
        [2, 0],
      ]);
      ro.close();
    } finally {
      await srv.stop();
      seeded.cleanup();
    }
  });

  test('while stopping, new updates get OVERLOADED (never silence) and the queued ones are still committed and acked', async () => {
    const seeded = seedTemp(1, 5);
    const srv = await startPascal(seeded.db, ['--flush-interval-ms', '600000', '--writer-busy-timeout-ms', '60000']);
    const lock = new Database(seeded.db);
    try {
      const s = await WsClient.connect(srv.wsUrl, 1, 7);
      const queued = Array.from({ length: 4 }, (_, i) => s.sendUpdate(1 + i));
      await waitUntil(async () => (await metric(srv.httpUrl, 'wami_queue_depth')) === 4, '4 queued');
      // hold SQLite's write lock so the final flush waits, then stop: the loop keeps answering meanwhile
      lock.exec('BEGIN IMMEDIATE');
      srv.child.kill('SIGTERM');
      await waitUntil(() => /SIGTERM: stopping/.test(srv.output()), 'the server to start stopping');
      const late = Array.from({ length: 3 }, (_, i) => s.sendUpdate(1 + i, { title: 'late' }));
      for (const u of late) {
        const a = (await s.answer(u.id)) as ErrorMessage;
        assert.equal(a.type, 'error');
        assert.equal(a.code, 'OVERLOADED');
        assert.equal(a.message, 'server is shutting down');
      }
      lock.exec('COMMIT');
      const x = await srv.exited;
      assert.deepEqual(x, { code: 0, signal: null }, srv.output());
      assert.deepEqual(
        queued.map((u) => s.frames.find((f) => f.type === 'ack' && f.id === u.id) && true),
        [true, true, true, true],
      );
      assert.equal((await s.waitClosed()).code, 1001);
      const ro = new Database(seeded.db, { readonly: true });
      assert.equal(ro.prepare('SELECT count(*) FROM card_events').pluck().get(), 4);
      assert.equal(ro.prepare("SELECT count(*) FROM card_events WHERE title = 'late'").pluck().get(), 0);
      ro.close();
    } finally {
      if (lock.inTransaction) lock.exec('ROLLBACK');
      lock.close();
      await srv.stop();
      seeded.cleanup();
    }
  });

  test('a batch with failing rows (trigger, duplicate id) commits the others; the failures are WRITE_FAILED, broadcast-unpersisted, and their seqs stay gaps', async () => {
    const seeded = seedTemp(1, 5);
    const setup = new Database(seeded.db);
    setup.exec(`CREATE TRIGGER fail_magic BEFORE INSERT ON card_events WHEN NEW.title = 'FAIL-ME' BEGIN SELECT RAISE(ABORT, 'magic title refused'); END;`);
    setup.close();
    const srv = await startPascal(seeded.db, ['--flush-interval-ms', '300']);
    try {
      const s = await WsClient.connect(srv.wsUrl, 1, 21);
      const m = await WsClient.connect(srv.wsUrl, 1, 22);
      const dupId = msgId('dup');
      const sent = [
        s.sendUpdate(1, { title: 'ok-1' }),
        s.sendUpdate(2, { title: 'FAIL-ME' }),
        s.sendUpdate(3, { title: 'ok-3', id: dupId }),
        s.sendUpdate(4, { title: 'dup-again', id: dupId }),
        s.sendUpdate(5, { title: 'ok-5' }),
      ];
      await Promise.all(sent.map((u) => s.answer(u.id)));
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
      await m.waitUpdates(5);
      assert.equal(await metric(srv.httpUrl, 'wami_broadcast_unpersisted_total'), 2);
      assert.equal(await metric(srv.httpUrl, 'wami_errors_total', 'code="WRITE_FAILED"'), 2);
      assert.equal(await metric(srv.httpUrl, 'wami_updates_persisted_total'), 3);
      const ro = new Database(seeded.db, { readonly: true });
      assert.deepEqual(ro.prepare('SELECT seq, title FROM card_events ORDER BY seq').raw().all(), [
        [1, 'ok-1'],
        [3, 'ok-3'],
        [5, 'ok-5'],
      ]);
      assert.equal(ro.prepare('SELECT seq FROM boards WHERE id = 1').pluck().get(), 5);
      ro.close();
      const u = s.sendUpdate(1, { title: 'after' });
      const a = (await s.answer(u.id)) as AckMessage;
      assert.equal(a.type, 'ack');
      assert.equal(a.seq, 6);
    } finally {
      assert.equal((await srv.stop()).code, 0);
      seeded.cleanup();
    }
  });

  test('a socket that stops reading is closed with 4008 once its unsent buffer passes --max-buffered-bytes, and counted; the others go on', async () => {
    const seeded = seedTemp(1, 5);
    const srv = await startPascal(seeded.db, ['--max-buffered-bytes', '65536', '--flush-interval-ms', '10']);
    try {
      const s = await WsClient.connect(srv.wsUrl, 1, 31);
      const m = await WsClient.connect(srv.wsUrl, 1, 32);
      const stuck = await WsClient.connect(srv.wsUrl, 1, 33);
      (stuck.ws as unknown as { _socket: { pause(): void } })._socket.pause(); // never reads again
      const title = 'z'.repeat(200);
      let sent = 0;
      while ((await metric(srv.httpUrl, 'wami_slow_consumer_closes_total')) === 0) {
        assert.ok(sent < 200_000, 'no slow-consumer close after 200k broadcasts');
        const chunk = Array.from({ length: 500 }, (_, i) => s.sendUpdate(1 + (i % 5), { title }));
        await Promise.all(chunk.map((u) => s.answer(u.id)));
        sent += chunk.length;
      }
      assert.equal(await metric(srv.httpUrl, 'wami_slow_consumer_closes_total'), 1);
      // the close cannot be delivered to a peer that never reads: dropped after the bounded wait
      await waitUntil(async () => (await metric(srv.httpUrl, 'wami_connections')) === 2, 'the stuck socket to be gone');
      await m.waitUpdates(sent);
      const u = s.sendUpdate(2, { title: 'still here' });
      await s.answer(u.id);
      await m.until(() => m.updates().find((x) => x.id === u.id), 'an update after the close');
      stuck.ws.terminate();
    } finally {
      assert.equal((await srv.stop()).code, 0);
      seeded.cleanup();
    }
  });

  test('bad input: no --db, a missing file, an unknown flag, a bad number, a port in use: one line each, exit 2; --help exits 0', async () => {
    const seeded = seedTemp(1, 2);
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const busyPort = (busy.address() as { port: number }).port;
    try {
      const run = (args: string[]): { status: number | null; out: string } => {
        const r = spawnSync(PASCAL_BINARY, args, { encoding: 'utf8', timeout: 20_000 });
        return { status: r.status, out: `${r.stdout}${r.stderr}` };
      };
      const cases: [string[], RegExp][] = [
        [[], /--db is required/],
        [['--db', `${seeded.dir}/nope.db`], /no such file \(create it with "wami-bench seed/],
        [['--db', seeded.db, '--shards', '2'], /unknown flag --shards/],
        [['--db', seeded.db, '--port', 'eighty'], /--port must be an integer, got "eighty"/],
        [['--db', seeded.db, '--max-payload-bytes', '100'], /--max-payload-bytes must be between 4096 and/],
        [['--db', seeded.db, '--host', 'example.org'], /--host must be an IPv4 address/],
        [['--db', seeded.db, '--port', String(busyPort)], new RegExp(`port ${busyPort} on 127\\.0\\.0\\.1 is in use`)],
        [['--db', CLI], /not a wami-bench database|cannot open as SQLite/],
      ];
      for (const [args, re] of cases) {
        const r = run(args);
        assert.equal(r.status, 2, `${args.join(' ')}: ${r.out}`);
        assert.match(r.out, re);
        assert.equal(r.out.trim().split('\n').length, 1, `one line: ${r.out}`);
      }
      const help = run(['--help']);
      assert.equal(help.status, 0);
      assert.match(help.out, /--seq-lease-block N/);
    } finally {
      busy.close();
      seeded.cleanup();
    }
  });
});
