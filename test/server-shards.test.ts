/**
 * batched --shards 2 through real processes, sockets and a temp SQLite file: the shared v1
 * contract; boards 1 and 2 in different shard processes (X-Wami-Pid), board 3 with board 1, shard
 * 0 in the primary itself;
 * broadcast within the board only, across shards too; a burst on two boards in two shards (two
 * writers on one file) gap-free with rows = acks; 400/404 at the handshake; /metrics and /healthz
 * summed over shards; SIGTERM with queued updates in both shards; a dead shard takes the primary
 * down (non-zero); `wami-bench conformance` passes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { defineVariantContract } from './helpers/server-contract.js';
import { CLI, LISTEN_RE, startServer, type TestServer } from './helpers/server.js';
import { getJson, metric, msgId, waitUntil, WsClient } from './helpers/server-ws.js';
import { cardId } from '../protocol/layout.js';
import { seedDatabase } from '../servers/common/db.js';
import type { AckMessage, BroadcastMessage } from '../protocol/messages.js';

const M = 10;
const SHARDS = ['--shards', '2'];

interface Health {
  pid: number;
  shards: number;
  connections: number;
  queueDepth: number;
  perShard: { shard: number; pid: number; connections: number; queueDepth: number; boards: number }[];
}
const health = async (srv: TestServer): Promise<Health> => (await getJson(`${srv.httpUrl}/healthz`)).body as Health;

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('batched --shards 2: protocol v1 contract', () => defineVariantContract('batched', [...SHARDS, '--flush-interval-ms', '20']));

describe('batched --shards 2: routing, isolation, aggregation', () => {
  let srv: TestServer;
  let open: WsClient[] = [];
  const connect = async (board: number, user: number): Promise<WsClient> => {
    const c = await WsClient.connect(srv.wsUrl, board, user);
    open.push(c);
    return c;
  };
  const closeAll = async (): Promise<void> => {
    await Promise.all(open.map((c) => c.close()));
    open = [];
  };

  before(async () => {
    srv = await startServer('batched', { boards: 6, cardsPerBoard: M, flags: [...SHARDS, '--flush-interval-ms', '10'] });
  });
  after(async () => {
    await closeAll();
    const code = await srv.stop();
    srv.cleanup();
    assert.equal(code, 0, `server exit code; output:\n${srv.output()}`);
  });

  test('boards 1 and 2 land in different shard processes, board 3 with board 1; shard 0 is the primary itself', async () => {
    const h = await health(srv);
    assert.equal(h.shards, 2);
    assert.equal(h.pid, srv.child.pid, 'healthz is answered by the primary');
    const shardPids = h.perShard.map((s) => s.pid);
    assert.equal(new Set(shardPids).size, 2);
    assert.deepEqual(
      h.perShard.map((s) => s.boards),
      [3, 3],
    );
    const [a, b, c] = [await connect(1, 1), await connect(2, 2), await connect(3, 3)];
    assert.ok(a.pid > 0 && b.pid > 0 && c.pid > 0, 'X-Wami-Pid present');
    assert.notEqual(a.pid, b.pid, 'boards 1 and 2 in different shards');
    assert.equal(a.pid, c.pid, 'boards 1 and 3 in the same shard');
    assert.equal(a.pid, shardPids[0], 'board 1 -> shard 0');
    assert.equal(b.pid, shardPids[1], 'board 2 -> shard 1');
    assert.equal(shardPids[0], srv.child.pid, 'shard 0 runs in the primary');
    assert.notEqual(shardPids[1], srv.child.pid, 'shard 1 is a process of its own');
    await closeAll();
  });

  test("a member gets the update with from and the ack seq; the same shard's other board and the other shard get nothing", async () => {
    const s = await connect(1, 101);
    const m = await connect(1, 102);
    const sameShard = await connect(3, 301); // board 3: shard 0, like board 1
    const otherShard = await connect(2, 201); // board 2: shard 1
    const otherShard2 = await connect(2, 202);
    const u = s.sendUpdate(cardId(1, 2, M), { column: 'review', title: 'across shards' });
    const ack = (await s.answer(u.id)) as AckMessage;
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    const [b] = await m.waitUpdates(1);
    assert.deepEqual(b, {
      type: 'update',
      id: u.id,
      card: u.card,
      column: 'review',
      title: 'across shards',
      at: u.at,
      sentAt: u.sentAt,
      from: 101,
      seq: ack.seq,
    });
    // sentinels: once these arrive, anything wrongly sent for `u` would have come before them
    const c3 = connect(3, 302);
    const w = otherShard2.sendUpdate(cardId(2, 0, M));
    const s3 = await c3;
    const v = s3.sendUpdate(cardId(3, 0, M));
    await sameShard.until(() => sameShard.updates().find((x) => x.id === v.id), 'sentinel on board 3');
    await otherShard.until(() => otherShard.updates().find((x) => x.id === w.id), 'sentinel on board 2');
    assert.deepEqual(
      sameShard.updates().map((x) => x.id),
      [v.id],
      'board 3 (same shard) got only board 3',
    );
    assert.deepEqual(
      otherShard.updates().map((x) => x.id),
      [w.id],
      'board 2 (other shard) got only board 2',
    );
    assert.deepEqual(s.updates(), [], 'no echo');
    // Both sentinels acked = committed: the next test reads boards.seq from the file, which the
    // writer raises only at commit (a broadcast alone does not wait for it).
    for (const [c, id] of [
      [s3, v.id],
      [otherShard2, w.id],
    ] as const)
      assert.equal((await c.answer(id)).type, 'ack');
    await closeAll();
  });

  test('a burst on boards 1 and 2 (two shards, two writers on one file): gap-free seqs per board, rows = acks, BUSY between the writers waited out (no update failed) and counted as the acks say', async () => {
    const boards = [1, 2];
    const perBoardUsers = 5;
    const per = 30;
    const busy0 = await metric(srv.httpUrl, 'wami_sqlite_busy_total');
    const retries0 = await metric(srv.httpUrl, 'wami_tx_retries_total');
    const before = new Database(srv.db, { readonly: true });
    const base = new Map(boards.map((b) => [b, before.prepare('SELECT seq FROM boards WHERE id = ?').pluck().get(b) as number]));
    before.close();
    const users = await Promise.all(boards.flatMap((b) => Array.from({ length: perBoardUsers }, (_, i) => connect(b, 1000 * b + i))));
    const sent = users.map((c, i) => Array.from({ length: per }, (_, k) => c.sendUpdate(cardId(c.board, (i + k) % M, M), { id: msgId(`sb${c.board}-${i}`) })));
    const acks = await Promise.all(users.map((c, i) => Promise.all(sent[i]!.map((u) => c.answer(u.id)))));
    for (const a of acks.flat()) assert.equal(a.type, 'ack', JSON.stringify(a));
    const total = perBoardUsers * per;
    for (const b of boards) {
      const idx = users.map((c, i) => (c.board === b ? i : -1)).filter((i) => i >= 0);
      const seqs = idx.flatMap((i) => acks[i]!.map((a) => (a as AckMessage).seq)).sort((x, y) => x - y);
      const b0 = base.get(b)!;
      assert.deepEqual(
        seqs,
        Array.from({ length: total }, (_, k) => b0 + k + 1),
        `board ${b}: acks carry seqs ${b0 + 1}..${b0 + total}, each once`,
      );
      for (const i of idx) {
        const got: BroadcastMessage[] = await users[i]!.waitUpdates(total - per);
        const s = got.map((x) => x.seq);
        for (let k = 1; k < s.length; k++) assert.ok(s[k]! > s[k - 1]!, `board ${b} member ${i}: seq ${s[k]} after ${s[k - 1]}`);
        const union = [...s, ...acks[i]!.map((a) => (a as AckMessage).seq)].sort((x, y) => x - y);
        assert.deepEqual(union, seqs, `board ${b} member ${i}: received + own = every seq`);
        assert.ok(
          got.every((x) => users.findIndex((c) => c.user === x.from && c.board === b) >= 0),
          'only board members as senders',
        );
      }
    }
    const ro = new Database(srv.db, { readonly: true });
    for (const b of boards) {
      const ids = ro.prepare('SELECT client_msg_id FROM card_events WHERE board_id = ? AND seq > ?').pluck().all(b, base.get(b)!) as string[];
      const acked = users.flatMap((c, i) => (c.board === b ? sent[i]!.map((u) => u.id) : []));
      assert.deepEqual(ids.sort(), acked.sort(), `board ${b}: stored rows = acked updates`);
      assert.equal(ro.prepare('SELECT seq FROM boards WHERE id = ?').pluck().get(b), base.get(b)! + total);
    }
    ro.close();
    // Whether the two writers collided is up to the machine; what each collision did is not. A BUSY
    // transaction is one more attempt for every row of its batch (the ack's `attempts`), waited out in
    // the same try (one retry each, no try given up), and counted once (busy <= extra attempts, equal
    // when every colliding batch held one update). See shards-busy-handoff.test.ts for BUSY made certain.
    const busy = (await metric(srv.httpUrl, 'wami_sqlite_busy_total')) - busy0;
    const extraAttempts = acks.flat().reduce((n, a) => n + (a as AckMessage).attempts - 1, 0);
    assert.equal(busy === 0, extraAttempts === 0, `BUSY hits ${busy}, attempts beyond the first ${extraAttempts}`);
    assert.ok(busy <= extraAttempts, `BUSY hits ${busy} > attempts beyond the first ${extraAttempts}`);
    assert.equal((await metric(srv.httpUrl, 'wami_tx_retries_total')) - retries0, busy, 'each BUSY was retried in its try');
    assert.equal(await metric(srv.httpUrl, 'wami_errors_total', 'code="WRITE_FAILED"'), 0, 'no batch failed');
    assert.equal(await metric(srv.httpUrl, 'wami_broadcast_unpersisted_total'), 0);
    await closeAll();
  });

  test('handshake refusals come from the primary: 400 for a bad board/user, 404 for an unknown board or path', async () => {
    await assert.rejects(WsClient.connect(srv.wsUrl, 77, 1), /HTTP 404/);
    for (const [path, want] of [
      ['/ws?user=1', 400],
      ['/ws?board=x&user=1', 400],
      ['/ws?board=1', 400],
      ['/ws?board=1&user=-3', 400],
      ['/ws?board=99&user=1', 404],
      ['/elsewhere?board=1&user=1', 404],
    ] as const) {
      await new Promise<void>((resolve, reject) => {
        // a real upgrade request over a raw connection, so the refusal is seen as the HTTP answer
        const sock = netConnect(srv.port, '127.0.0.1', () => {
          sock.write(
            `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
          );
        });
        let buf = '';
        sock.on('data', (d) => (buf += d.toString()));
        sock.on('close', () => {
          try {
            assert.match(buf, new RegExp(`^HTTP/1.1 ${want} `), `${path}: ${buf.slice(0, 60)}`);
            resolve();
          } catch (e) {
            reject(e as Error);
          }
        });
        sock.on('error', reject);
      });
    }
    assert.equal((await getJson(`${srv.httpUrl}/ws`)).status, 426, 'plain GET /ws without an upgrade: 426 from the primary');
  });

  test('/metrics and /healthz sum connections over the shards', async () => {
    await closeAll();
    await waitUntil(async () => (await health(srv)).connections === 0, 'no sockets left from earlier tests');
    for (let i = 0; i < 3; i++) await connect(1, 50 + i); // shard 0
    for (let i = 0; i < 2; i++) await connect(2, 60 + i); // shard 1
    await connect(4, 70); // shard 1
    const h = await health(srv);
    assert.deepEqual(
      h.perShard.map((s) => s.connections),
      [3, 3],
    );
    assert.equal(h.connections, 6);
    assert.equal(await metric(srv.httpUrl, 'wami_connections'), 6, 'wami_connections is the total over shards');
    const text = await (await fetch(`${srv.httpUrl}/metrics`)).text();
    assert.match(text, /^wami_batch_size_bucket\{le="\+Inf"\} \d+/m, 'histograms merged');
    assert.match(text, /^process_resident_memory_bytes \d+/m);
    await closeAll();
  });
});

describe('batched --shards 2: stop and failure', () => {
  test('SIGTERM with updates queued in both shards: all committed, acked, in the file, sockets closed 1001; exit 0', async () => {
    const srv = await startServer('batched', { boards: 2, cardsPerBoard: 5, flags: [...SHARDS, '--flush-interval-ms', '600000'] });
    try {
      const a = await WsClient.connect(srv.wsUrl, 1, 11);
      const b = await WsClient.connect(srv.wsUrl, 2, 12);
      assert.notEqual(a.pid, b.pid);
      const sentA = Array.from({ length: 30 }, (_, i) => a.sendUpdate(cardId(1, i % 5, 5), { title: `a${i}` }));
      const sentB = Array.from({ length: 20 }, (_, i) => b.sendUpdate(cardId(2, i % 5, 5), { title: `b${i}` }));
      await waitUntil(async () => (await metric(srv.httpUrl, 'wami_queue_depth')) === 50, 'all 50 queued (summed over shards)');
      assert.equal(await metric(srv.httpUrl, 'wami_updates_persisted_total'), 0);
      const closedA = a.waitClosed();
      const closedB = b.waitClosed();
      assert.equal(await srv.stop(), 0, srv.output());
      assert.equal((await closedA).code, 1001);
      assert.equal((await closedB).code, 1001);
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
      assert.equal(
        ro
          .prepare('SELECT title FROM cards WHERE id = ?')
          .pluck()
          .get(cardId(2, 4, 5)),
        'b19',
      );
      ro.close();
      assert.match(srv.output(), /stopped/);
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });

  test('a shard that dies takes the primary down with a non-zero exit (no half service); the other shards stop too', async () => {
    const srv = await startServer('batched', { boards: 3, cardsPerBoard: 5, flags: ['--shards', '3'] });
    try {
      const h = await health(srv);
      const [own, victim, survivor] = h.perShard.map((s) => s.pid) as [number, number, number];
      assert.equal(own, srv.child.pid, 'shard 0 is the primary');
      const exited = new Promise<number | null>((r) => (srv.child.exitCode !== null ? r(srv.child.exitCode) : srv.child.once('exit', (c) => r(c))));
      process.kill(victim, 'SIGKILL');
      const code = await exited;
      assert.notEqual(code, 0, srv.output());
      assert.match(srv.output(), /shard 1 \(pid \d+\) exited \(code null, signal SIGKILL\)/);
      await waitUntil(() => !alive(survivor), 'the surviving forked shard exits too');
    } finally {
      await srv.stop();
      srv.cleanup();
    }
  });

  test("forked shards run with the primary's Node flags (execArgv); the config line and /healthz name their pids", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wami-shards-argv-'));
    const db = join(dir, 'a.db');
    seedDatabase(db, { boards: 2, cardsPerBoard: 5 });
    const child = spawn(process.execPath, ['--max-semi-space-size=8', CLI, 'serve', 'batched', '--port', '0', '--db', db, ...SHARDS], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = LISTEN_RE.exec(out);
          if (m) resolve(Number(m[2]));
        });
        child.once('exit', (c) => reject(new Error(`exited ${c} before listening:\n${out}`)));
      });
      const config = JSON.parse(/config (\{.*\})/.exec(out)![1]!) as { shards: number; shardPids: number[] };
      assert.equal(config.shards, 2);
      assert.equal(config.shardPids.length, 2);
      assert.equal(config.shardPids[0], child.pid, 'shard 0 is the primary');
      for (const pid of config.shardPids) {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        assert.ok(argv.includes('--max-semi-space-size=8'), `shard ${pid}: ${argv.join(' ')}`);
      }
      const h = (await getJson(`http://127.0.0.1:${port}/healthz`)).body as Health;
      assert.deepEqual(
        h.perShard.map((x) => x.pid),
        config.shardPids,
      );
    } finally {
      child.kill('SIGTERM');
      assert.equal(await exited, 0, out);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('wami-bench conformance passes against --shards 2', async () => {
    const srv = await startServer('batched', { boards: 3, cardsPerBoard: 10, flags: SHARDS });
    try {
      const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, [CLI, 'conformance', srv.wsUrl, '--cards-per-board', '10', '--quiet-ms', '200'], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        child.on('exit', (code) => resolve({ code, out }));
      });
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /^(\d+) passed, 0 failed$/m);
    } finally {
      assert.equal(await srv.stop(), 0, srv.output());
      srv.cleanup();
    }
  });
});

test('run-started sharded server: the primary (shard 0) and the forked shards all run with the run flags', async () => {
  const { startServerProcess, descendantPids } = await import('../runner/server-process.js');
  const dir = mkdtempSync(join(tmpdir(), 'wami-shardflags-'));
  const db = join(dir, 'x.db');
  seedDatabase(db, { boards: 3, cardsPerBoard: 5 });
  const run = ['--max-semi-space-size=12', '--max-old-space-size=1024'];
  const srv = await startServerProcess({ variant: { kind: 'batched', options: { shards: 3 } }, db, nodeFlags: run });
  try {
    const argvOf = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const primary = argvOf(srv.pid);
    assert.deepEqual(primary.slice(1, 3), run);
    assert.ok(!primary.some((a) => a.startsWith('--shard-node-flags')), primary.join(' '));
    // the shards are ready once the primary listens: both are its children, forked with its flags
    const shards = descendantPids(srv.pid)
      .map(argvOf)
      .filter((a) => a.some((x) => x.endsWith('shard.js')));
    assert.equal(shards.length, 2);
    for (const a of shards) assert.deepEqual(a.slice(1, 3), run);
  } finally {
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('serve --shard-node-flags: a value that is not Node flags is refused with exit 2 and a message naming the flag', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wami-shardflags-'));
  const db = join(dir, 'x.db');
  seedDatabase(db, { boards: 2, cardsPerBoard: 5 });
  const child = spawn(process.execPath, [CLI, 'serve', 'batched', '--db', db, '--port', '0', '--shards', '2', '--shard-node-flags', 'max-semi-space-size=8'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  rmSync(dir, { recursive: true, force: true });
  assert.equal(code, 2, err);
  assert.match(err, /shard-node-flags|shardNodeFlags/);
  assert.match(err, /Node flags/);
});
