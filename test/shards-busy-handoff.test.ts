/**
 * batched --shards 2 under load and contention, through real processes, sockets and a temp SQLite
 * file (the routing, the contract and the graceful stop are in server-shards.test.ts):
 * - SQLITE_BUSY made certain: a write lock held by another connection for as long as it takes, so
 *   every transaction of the shard's writer meets it; each BUSY counted once, the update given up
 *   (WRITE_FAILED) only after the last try, the counters equal to the attempts the update took;
 * - the handoff under load: 200 sockets at once, each in its board's shard, none lost, the primary
 *   keeping only its own shard's (shard 0 runs in it); a burst of one update per socket, every seq once;
 * - a shard that dies with sockets waiting in the primary for it: the waiting ones are answered 503,
 *   the one being handed over is closed, none hangs; the primary goes down (non-zero).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { seedDatabase } from '../servers/common/db.js';
import { alive, CLI, spawnListening, startServer } from './helpers/server.js';
import { getJson, metric, waitUntil, WsClient } from './helpers/server-ws.js';
import { cardId } from '../protocol/layout.js';
import type { AckMessage, BroadcastMessage, ErrorMessage } from '../protocol/messages.js';

interface Health {
  connections: number;
  perShard: { shard: number; pid: number; connections: number }[];
}
const healthOf = async (httpUrl: string): Promise<Health> => (await getJson(`${httpUrl}/healthz`)).body as Health;

test("a write lock held by another connection: every BUSY counted once (= the update's attempts), WRITE_FAILED only after the last try, nothing stored; released, the next update commits at its first attempt", async () => {
  // 100 ms of BUSY waited out per try, 1 + 1 tries: the lock, held until the answer comes, meets them all.
  const srv = await startServer('batched', {
    boards: 2,
    cardsPerBoard: 5,
    flags: ['--shards', '2', '--flush-interval-ms', '10', '--writer-busy-timeout-ms', '100', '--batch-retries', '1'],
  });
  try {
    const s = await WsClient.connect(srv.wsUrl, 1, 11);
    const m = await WsClient.connect(srv.wsUrl, 1, 12);
    const scrape = async () => ({
      busy: await metric(srv.httpUrl, 'wami_sqlite_busy_total'),
      retries: await metric(srv.httpUrl, 'wami_tx_retries_total'),
      attemptsSum: await metric(srv.httpUrl, 'wami_tx_attempts_sum'),
      attemptsCount: await metric(srv.httpUrl, 'wami_tx_attempts_count'),
      unpersisted: await metric(srv.httpUrl, 'wami_broadcast_unpersisted_total'),
      writeFailed: await metric(srv.httpUrl, 'wami_errors_total', 'code="WRITE_FAILED"'),
    });
    const before = await scrape();
    const holder = new Database(srv.db);
    holder.exec('BEGIN IMMEDIATE');
    let u: ReturnType<WsClient['sendUpdate']>;
    try {
      u = s.sendUpdate(cardId(1, 0, 5), { title: 'refused' });
      const e = (await s.answer(u.id)) as ErrorMessage;
      assert.equal(e.type, 'error', JSON.stringify(e));
      assert.equal(e.code, 'WRITE_FAILED');
      assert.match(e.message, /could not be stored: SQLITE_BUSY/);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    const after = await scrape();
    const busy = after.busy - before.busy;
    assert.equal(after.attemptsCount - before.attemptsCount, 1, 'one update observed');
    assert.ok(busy >= 2, `a BUSY in each of the 2 tries at least (${busy})`);
    assert.equal(busy, after.attemptsSum - before.attemptsSum, "each failed transaction counted once: BUSY hits = the update's attempts");
    assert.equal(after.retries - before.retries, busy - 1, 'every attempt after the first is a retry');
    assert.equal(after.unpersisted - before.unpersisted, 1);
    assert.equal(after.writeFailed - before.writeFailed, 1);
    // The design broadcasts before it commits: the member has it, with a seq that stays a gap.
    const [b] = (await m.waitUpdates(1)) as [BroadcastMessage];
    assert.equal(b.id, u.id);
    const v = s.sendUpdate(cardId(1, 1, 5), { title: 'stored' });
    const ack = (await s.answer(v.id)) as AckMessage;
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    assert.equal(ack.attempts, 1, 'no other writer: no BUSY');
    assert.equal(ack.seq, b.seq + 1, "the failed update's seq is not handed out again");
    assert.equal(await metric(srv.httpUrl, 'wami_sqlite_busy_total'), after.busy);
    const ro = new Database(srv.db, { readonly: true });
    assert.deepEqual(ro.prepare('SELECT seq, client_msg_id FROM card_events WHERE board_id = 1').raw().all(), [[ack.seq, v.id]]);
    ro.close();
    await Promise.all([s.close(), m.close()]);
  } finally {
    assert.equal(await srv.stop(), 0, srv.output());
    srv.cleanup();
  }
});

/** The sockets among a process's descriptors. */
function socketFds(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

test('200 sockets at once through the primary of --shards 2: each in its board’s shard, counted there, the primary keeps only its own shard’s; one update each, every seq once, every other member gets it', async () => {
  const BOARDS = 20;
  const srv = await startServer('batched', { boards: BOARDS, cardsPerBoard: 5, flags: ['--shards', '2', '--flush-interval-ms', '10'] });
  const clients: WsClient[] = [];
  try {
    const shardPids = (await healthOf(srv.httpUrl)).perShard.map((x) => x.pid);
    const users = Array.from({ length: 200 }, (_, i) => ({ board: 1 + (i % BOARDS), user: 1000 + i }));
    clients.push(...(await Promise.all(users.map((x) => WsClient.connect(srv.wsUrl, x.board, x.user)))));
    assert.deepEqual(
      clients.filter((c) => c.pid !== shardPids[(c.board - 1) % 2]).map((c) => `board ${c.board} in pid ${c.pid}`),
      [],
      'board b lives in shard (b - 1) mod 2',
    );
    const h = await healthOf(srv.httpUrl);
    assert.deepEqual(
      h.perShard.map((x) => x.connections),
      [100, 100],
    );
    assert.equal(h.connections, 200);
    // Each handed socket's descriptor is closed in the primary once its shard has it: the primary
    // keeps shard 0's 100 and its few own (listener, IPC, HTTP).
    await waitUntil(() => socketFds(srv.child.pid!) < 100 + 20, 'the primary to hold no handed socket');
    assert.ok(socketFds(srv.child.pid!) >= 100, "shard 0's sockets are the primary's");

    const sent = clients.map((c, i) => c.sendUpdate(cardId(c.board, i % 5, 5), { title: `burst ${i}` }));
    const acks = (await Promise.all(clients.map((c, i) => c.answer(sent[i]!.id)))) as AckMessage[];
    assert.deepEqual(
      acks.filter((a) => a.type !== 'ack'),
      [],
    );
    for (let b = 1; b <= BOARDS; b++) {
      const members = clients.map((_, i) => i).filter((i) => clients[i]!.board === b);
      assert.deepEqual(
        members.map((i) => acks[i]!.seq).sort((x, y) => x - y),
        Array.from({ length: members.length }, (_, k) => k + 1),
        `board ${b}: seqs 1..${members.length}, each once`,
      );
      for (const i of members) {
        const got = await clients[i]!.waitUpdates(members.length - 1);
        assert.deepEqual(
          got.map((x) => x.id).sort(),
          members
            .filter((j) => j !== i)
            .map((j) => sent[j]!.id)
            .sort(),
          `board ${b} member ${i}: every other member's update`,
        );
      }
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    assert.equal(await srv.stop(), 0, srv.output());
    srv.cleanup();
  }
});

/** A raw WebSocket upgrade request: what comes back before the connection closes. */
function rawUpgrade(port: number, board: number, user: number): Promise<{ sock: Socket; answer: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const sock = netConnect(port, '127.0.0.1', () => {
      sock.write(
        `GET /ws?board=${board}&user=${user} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
      );
      let buf = '';
      sock.on('error', () => {}); // a reset ends it like a close: what came before is the answer
      sock.on('data', (d) => (buf += d.toString('latin1')));
      const answer = new Promise<string>((r) => sock.once('close', () => r(buf)));
      resolve({ sock, answer });
    });
    sock.once('error', reject);
  });
}

/** The receive queue (bytes not yet read by the process) of the server side of each connection from `clientPorts` to `serverPort`. */
function serverRxQueues(serverPort: number, clientPorts: number[]): Map<number, number> {
  const hex = (p: number) => p.toString(16).toUpperCase().padStart(4, '0');
  const out = new Map<number, number>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5) continue;
    const [, local, remote, , queues] = f as [string, string, string, string, string];
    if (!local.endsWith(`:${hex(serverPort)}`)) continue;
    const cp = clientPorts.find((p) => remote.endsWith(`:${hex(p)}`));
    if (cp !== undefined) out.set(cp, Number.parseInt(queues.split(':')[1]!, 16));
  }
  return out;
}

test('a shard that dies with sockets waiting in the primary for it: the waiting ones are answered 503, the one being handed over is closed, none hangs; the primary exits non-zero', async () => {
  const srv = await startServer('batched', { boards: 2, cardsPerBoard: 5, flags: ['--shards', '2'] });
  const socks: Socket[] = [];
  let victim = 0;
  try {
    const [shard0, shard1] = (await healthOf(srv.httpUrl)).perShard.map((x) => x.pid) as [number, number];
    assert.equal(shard0, srv.child.pid, 'shard 0 is the primary: shard 1 is the forked one');
    victim = shard1;
    // Stopped, shard 1 never takes the socket handed to it: the next ones wait in the primary's queue.
    process.kill(shard1, 'SIGSTOP');
    await waitUntil(() => readFileSync(`/proc/${shard1}/stat`, 'utf8').split(') ')[1]!.startsWith('T'), 'shard 1 stopped');
    const K = 4;
    const reqs = await Promise.all(Array.from({ length: K }, (_, i) => rawUpgrade(srv.port, 2, 100 + i)));
    socks.push(...reqs.map((r) => r.sock));
    const ports = socks.map((x) => x.localPort!);
    // Every request read by the primary (nothing left in its receive queues): each was handed over or queued.
    await waitUntil(() => {
      const q = serverRxQueues(srv.port, ports);
      return q.size === K && [...q.values()].every((n) => n === 0);
    }, 'the primary to read every request');
    const exited = new Promise<number | null>((r) => (srv.child.exitCode !== null ? r(srv.child.exitCode) : srv.child.once('exit', (c) => r(c))));
    process.kill(shard1, 'SIGKILL');
    const answers = await Promise.all(reqs.map((r) => r.answer));
    assert.deepEqual(
      answers.map((a) => (a === '' ? 'closed' : /^HTTP\/1\.1 503 [^\r]*\r\n[\s\S]*\r\n\r\nshard unavailable\n$/.test(a) ? '503' : a)).sort(),
      ['503', '503', '503', 'closed'],
      'K - 1 waiting: 503; the one in flight to the dead shard: closed',
    );
    assert.notEqual(await exited, 0, srv.output());
  } finally {
    for (const s of socks) s.destroy();
    if (victim && alive(victim)) process.kill(victim, 'SIGKILL');
    await srv.stop();
    srv.cleanup();
  }
});

/** Opens a WebSocket upgrade and resolves with the status code of the first answer; the socket stays open. */
function upgradeStatus(port: number, board: number, user: number, keep: Socket[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = netConnect(port, '127.0.0.1', () => {
      sock.write(
        `GET /ws?board=${board}&user=${user} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
      );
    });
    keep.push(sock);
    sock.on('error', () => {});
    sock.once('data', (d) => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(d.toString('latin1'))?.[1] ?? 0)));
    sock.once('close', () => reject(new Error(`closed before an answer (board ${board}, user ${user})`)));
  });
}

test("the primary holds shard 0's sockets within its descriptor limit: past it, upgrades for any shard are answered 503, not lost to EMFILE", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wami-shard-budget-'));
  const db = join(dir, 'b.db');
  seedDatabase(db, { boards: 2, cardsPerBoard: 5 });
  // 460 descriptors, 400 kept: the primary may hold 60 sockets, its own shard's and those waiting together
  const srv = await spawnListening(
    'bash',
    ['-c', `ulimit -n 460 && exec "${process.execPath}" "${CLI}" serve batched --db "${db}" --port 0 --shards 2`],
    'a primary under ulimit -n 460',
  );
  const port = srv.port;
  const socks: Socket[] = [];
  try {
    const got: number[] = [];
    // one at a time: each answer is known before the next socket comes
    for (let u = 0; u < 62; u++) got.push(await upgradeStatus(port, 1, 100 + u, socks));
    assert.deepEqual(got, [...Array<number>(60).fill(101), 503, 503], 'board 1 (shard 0): 60 accepted, then 503');
    assert.equal(await upgradeStatus(port, 2, 999, socks), 503, 'board 2 (shard 1): no descriptor left to wait in either');
    const h = (await getJson(`http://127.0.0.1:${port}/healthz`)).body as Health;
    assert.deepEqual(
      h.perShard.map((x) => x.connections),
      [60, 0],
    );
    for (const s of socks.splice(0)) s.destroy();
    await waitUntil(async () => ((await getJson(`http://127.0.0.1:${port}/healthz`)).body as Health).connections === 0, 'the sockets to close');
    assert.equal(await upgradeStatus(port, 2, 1000, socks), 101, 'with room again, board 2 is handed to shard 1');
  } finally {
    for (const s of socks) s.destroy();
    assert.deepEqual(await srv.stop(), { code: 0, signal: null }, srv.output());
    rmSync(dir, { recursive: true, force: true });
  }
});
