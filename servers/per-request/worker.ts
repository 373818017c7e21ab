/**
 * One per-request worker process (node:cluster): its own SQLite connection, its own sockets, no
 * shared state. Each update is its own transaction with explicit SQLITE_BUSY retry (async
 * backoff, so the worker keeps serving other sockets while one update waits). Members learn of
 * other processes' updates by polling card_events every pollMs.
 */
import type { WebSocket } from 'ws';
import { nowMs, round3 } from '../../protocol/clock.js';
import { CLOSE_GOING_AWAY, PROTOCOL_VERSION, type ErrorCode } from '../../protocol/messages.js';
import { parseClientFrame } from '../../protocol/parse.js';
import { serializeAck, serializeBroadcast, serializeError } from '../../protocol/serialize.js';
import type { Column } from '../../protocol/messages.js';
import { boardReader, CardIndex, loadBoardSeqs } from '../common/boards.js';
import { openDb } from '../common/db.js';
import { Fanout } from '../common/fanout.js';
import { Front } from '../common/front.js';
import { createMetrics, metricsJson } from '../common/metrics.js';
import { retryPolicyOf, WORKER_CONFIG_ENV, type PerRequestServerOptions, type ToPrimary, type ToWorker, type WorkerHealth } from './config.js';
import { BoardFeeds, type FeedRow } from './delivery.js';
import { decideRetry } from './retry-policy.js';
import { createUpdateTx, type UpdateRow } from './tx.js';

const opts = JSON.parse(process.env[WORKER_CONFIG_ENV] ?? 'null') as PerRequestServerOptions | null;
if (!opts) {
  process.stderr.write(`per-request worker: ${WORKER_CONFIG_ENV} is not set (started outside the primary?)\n`);
  process.exit(2);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const retry = retryPolicyOf(opts);

const db = openDb(opts.dbFile, { busyTimeoutMs: opts.busyTimeoutMs });
const cards = CardIndex.load(db);
const boardIds = new Set(loadBoardSeqs(db).keys());
const tx = createUpdateTx(db, opts.txMode);
const readSeq = db.prepare('SELECT seq FROM boards WHERE id = ?').pluck(true);
const poll = db
  .prepare('SELECT id, board_id, seq, card_id, user_id, client_msg_id, col, title, at, sent_at FROM card_events WHERE id > ? ORDER BY id LIMIT ?')
  .raw(true);
let cursor = (db.prepare('SELECT coalesce(max(id), 0) FROM card_events').pluck(true).get() as number) ?? 0;

const sockets = new Set<WebSocket>();
let inflight = 0;
let stopping = false;
const metrics = createMetrics({ dbFile: opts.dbFile, connections: () => sockets.size, queueDepth: () => inflight });
const fanout = new Fanout(opts.maxBufferedBytes, metrics);
const feeds = new BoardFeeds<WebSocket>((members, except, frame) => fanout.broadcast(members, except, frame));

/** The broadcast of a stored update, whether this worker committed it or the poll found it. */
function broadcastFrame(u: UpdateRow, seq: number): string {
  return serializeBroadcast({ type: 'update', id: u.id, card: u.card, column: u.column as Column, title: u.title, at: u.at, sentAt: u.sentAt }, u.user, seq);
}

function pollOnce(): void {
  for (;;) {
    let rows: unknown[][];
    try {
      rows = poll.all(cursor, opts!.pollBatch) as unknown[][];
    } catch {
      return; // a busy read is not possible in WAL; anything else: try again next tick
    }
    if (rows.length === 0) return;
    cursor = rows[rows.length - 1]![0] as number;
    if (feeds.activeBoards > 0) {
      const mine: FeedRow[] = [];
      for (const r of rows) {
        if (feeds.lastSeq(r[1] as number) === undefined) continue; // no member of that board here
        const row: UpdateRow = { board: r[1] as number, card: r[3] as number, user: r[4] as number, id: r[5] as string, column: r[6] as string, title: r[7] as string, at: r[8] as number, sentAt: r[9] as number };
        mine.push({ board: row.board, seq: r[2] as number, frame: () => broadcastFrame(row, r[2] as number) });
      }
      feeds.polled(mine);
    }
    if (rows.length < opts!.pollBatch) return;
  }
}
const pollTimer = setInterval(pollOnce, opts.pollMs);

function sendError(ws: WebSocket, code: ErrorCode, message: string, id?: string): void {
  metrics.errors.inc({ code });
  fanout.send(ws, serializeError(code, message, id));
}

async function persist(ws: WebSocket, u: UpdateRow, receivedAt: number): Promise<void> {
  inflight++;
  try {
    for (let attempts = 1; ; attempts++) {
      const r = tx(u);
      if (r.ok) {
        metrics.updatesPersisted.inc();
        metrics.batchSize.observe(1);
        metrics.commitDuration.observe((r.endMs - r.startMs) / 1000);
        metrics.queueWait.observe(Math.max(0, r.startMs - receivedAt) / 1000);
        metrics.txAttempts.observe(attempts);
        fanout.send(ws, serializeAck({ id: u.id, seq: r.seq, queueMs: round3(Math.max(0, r.startMs - receivedAt)), commitMs: round3(Math.max(0, r.endMs - r.startMs)), attempts }));
        feeds.committed(u.board, r.seq, ws, () => broadcastFrame(u, r.seq));
        return;
      }
      if (!r.busy) {
        metrics.txAttempts.observe(attempts);
        const dup = r.code.startsWith('SQLITE_CONSTRAINT') && /client_msg_id/.test(r.message);
        sendError(ws, 'WRITE_FAILED', dup ? `duplicate id "${u.id}" for user ${u.user}: already stored` : `${r.code}: ${r.message}`, u.id);
        return;
      }
      metrics.sqliteBusy.inc();
      const d = decideRetry(attempts, nowMs() - receivedAt, retry, Math.random);
      if (!d.retry) {
        metrics.txAttempts.observe(attempts);
        metrics.busyExhausted.inc();
        sendError(ws, 'BUSY_EXHAUSTED', `database busy: gave up after ${attempts} attempt(s) (${d.reason === 'attempts' ? 'attempt limit' : 'deadline'} reached; ${r.code})`, u.id);
        return;
      }
      metrics.txRetries.inc();
      await sleep(d.delayMs);
    }
  } catch (e) {
    sendError(ws, 'WRITE_FAILED', `internal error: ${(e as Error).message}`, u.id);
  } finally {
    inflight--;
    if (inflight === 0) idleWaiters.splice(0).forEach((f) => f());
  }
}
const idleWaiters: (() => void)[] = [];

function attach(ws: WebSocket, board: number, user: number): void {
  if (stopping) {
    ws.close(CLOSE_GOING_AWAY, 'server shutting down');
    return;
  }
  sockets.add(ws);
  feeds.join(board, ws, () => readSeq.get(board) as number);
  ws.on('error', () => {});
  ws.once('close', () => {
    sockets.delete(ws);
    feeds.leave(board, ws);
  });
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const receivedAt = nowMs();
    if (isBinary) return sendError(ws, 'BAD_MESSAGE', 'binary frames are not accepted: send JSON in text frames');
    const p = parseClientFrame(data);
    if (!p.ok) return sendError(ws, 'BAD_MESSAGE', p.message, p.id);
    const u = p.msg;
    metrics.updatesReceived.inc();
    const owner = cards.boardOf(u.card);
    if (owner !== board) {
      return sendError(ws, 'UNKNOWN_CARD', owner === undefined ? `card ${u.card} does not exist` : `card ${u.card} is not on board ${board}`, u.id);
    }
    if (stopping) return sendError(ws, 'OVERLOADED', 'server is shutting down', u.id);
    void persist(ws, { board, card: u.card, user, id: u.id, column: u.column, title: u.title, at: u.at, sentAt: u.sentAt }, receivedAt);
  });
}

// --- gathering metrics / health over all workers, through the primary -------------------------
let nextReq = 1;
const gathers = new Map<number, (data: unknown) => void>();
function gather(what: 'metrics' | 'health'): Promise<unknown> {
  const req = nextReq++;
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      gathers.delete(req);
      resolve(null);
    }, 3000);
    gathers.set(req, (d) => {
      clearTimeout(t);
      resolve(d);
    });
    process.send?.({ wami: 'gather', req, what } satisfies ToPrimary);
  });
}
function localHealth(): WorkerHealth {
  return { pid: process.pid, connections: sockets.size, inflight, activeBoards: feeds.activeBoards };
}
process.on('message', (m: ToWorker) => {
  if (m?.wami === 'gathered') {
    gathers.get(m.req)?.(m.data);
    gathers.delete(m.req);
  } else if (m?.wami === 'collect') {
    const reply = (data: unknown): void => void process.send?.({ wami: 'collected', gid: m.gid, data } satisfies ToPrimary);
    if (m.what === 'health') reply(localHealth());
    else void metricsJson(metrics).then(reply, () => reply([]));
  }
});

const readBoard = boardReader(db);
const front = new Front({
  host: opts.host,
  port: opts.port,
  maxPayloadBytes: opts.maxPayloadBytes,
  hasBoard: (id) => boardIds.has(id),
  onSocket: (ws, board, user) => attach(ws, board, user),
  healthz: async () => {
    const all = ((await gather('health')) as WorkerHealth[] | null) ?? [localHealth()];
    return {
      status: 'ok',
      variant: 'per-request',
      protocol: PROTOCOL_VERSION,
      pid: process.pid,
      primaryPid: process.ppid,
      workers: opts.workers,
      connections: all.reduce((s, w) => s + w.connections, 0),
      txMode: opts.txMode,
      perWorker: all,
    };
  },
  metrics: async () => {
    const text = (await gather('metrics')) as string | null;
    return text ?? '# aggregated metrics unavailable (primary did not answer)\n';
  },
  readBoard,
  upgradeHeaders: [`X-Wami-Pid: ${process.pid}`],
});

async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  front.stopAccepting();
  if (inflight > 0) await new Promise<void>((r) => idleWaiters.push(r));
  clearInterval(pollTimer);
  pollOnce();
  for (const ws of sockets) ws.close(CLOSE_GOING_AWAY, 'server shutting down');
  const deadline = Date.now() + 2000;
  while (sockets.size > 0 && Date.now() < deadline) await sleep(20);
  front.destroyAll();
  db.close();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
process.on('disconnect', () => void shutdown()); // the primary is gone

front.listen().catch((e: Error) => {
  process.stderr.write(`per-request worker ${process.pid}: listen failed: ${e.message}\n`);
  process.exit(1);
});
