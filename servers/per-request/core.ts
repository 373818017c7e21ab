/**
 * The per-request server's core, beside the batched one (servers/batched/core.ts): what one worker
 * process does with the sockets it is given. Its own SQLite connection, no shared memory. Each
 * update is its own transaction with explicit SQLITE_BUSY retry (async backoff, so the worker keeps
 * serving other sockets while one update waits). Members learn of other processes' updates by
 * polling card_events every pollMs (delivery.ts keeps each board's feed in seq order).
 * The process around it (servers/per-request/worker.ts) owns the front, the IPC and the signals.
 */
import type { WebSocket } from 'ws';
import { nowMs, round3 } from '../../protocol/clock.js';
import { CLOSE_GOING_AWAY, type Column, type ErrorCode } from '../../protocol/messages.js';
import { serializeAck, serializeBroadcast, serializeError } from '../../protocol/serialize.js';
import { boardReader, CardIndex, loadBoardSeqs, type BoardView } from '../common/boards.js';
import { openDb, setDiskFull, type DB } from '../common/db.js';
import { Fanout } from '../common/fanout.js';
import { socketListeners } from '../common/sockets.js';
import { admitFrame } from '../common/intake.js';
import type { ServerMetrics } from '../common/metrics.js';
import type { UpdateRow } from '../common/rows.js';
import { retryPolicyOf, type PerRequestServerOptions, type WorkerHealth } from './config.js';
import { BoardFeeds, type FeedRow } from './delivery.js';
import { decideRetry, type RetryPolicy } from './retry-policy.js';
import { createUpdateTx, type AttemptResult } from './tx.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The broadcast of a stored update, whether this worker committed it or the poll found it. */
function broadcastFrame(u: UpdateRow, seq: number): string {
  return serializeBroadcast({ type: 'update', id: u.id, card: u.card, column: u.column as Column, title: u.title, at: u.at, sentAt: u.sentAt }, u.user, seq);
}

export class PerRequestCore {
  private readonly sockets = new Set<WebSocket>();
  private inflightCount = 0;
  private inflightPeak = 0;
  private stopping = false;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly fanout: Fanout;
  private readonly feeds: BoardFeeds<WebSocket>;
  private readonly tx: (u: UpdateRow) => AttemptResult;
  private readonly retry: RetryPolicy;
  private readonly readSeq: { get(board: number): unknown };
  private readonly poll: { all(afterId: number, limit: number): unknown[] };
  private cursor: number;
  private pollTimer: NodeJS.Timeout | null = null;
  /** `GET /boards/:id` from this worker's connection. */
  readonly readBoard: (id: number) => BoardView | null;

  private constructor(
    readonly opts: PerRequestServerOptions,
    private readonly metrics: ServerMetrics,
    private readonly db: DB,
    private readonly cards: CardIndex,
    private readonly boardIds: ReadonlySet<number>,
  ) {
    this.fanout = new Fanout(opts.maxBufferedBytes, metrics);
    this.feeds = new BoardFeeds<WebSocket>((members, except, frame) => this.fanout.broadcast(members, except, frame));
    this.tx = createUpdateTx(db, opts.txMode);
    this.retry = retryPolicyOf(opts);
    this.readSeq = db.prepare('SELECT seq FROM boards WHERE id = ?').pluck(true);
    this.poll = db
      .prepare('SELECT id, board_id, seq, card_id, user_id, client_msg_id, col, title, at, sent_at FROM card_events WHERE id > ? ORDER BY id LIMIT ?')
      .raw(true);
    this.cursor = (db.prepare('SELECT coalesce(max(id), 0) FROM card_events').pluck(true).get() as number) ?? 0;
    this.readBoard = boardReader(db);
  }

  /** Opens the database with the variant's busy_timeout, loads boards and cards, and starts the card_events poll. */
  static open(opts: PerRequestServerOptions, metrics: ServerMetrics): PerRequestCore {
    const db = openDb(opts.dbFile, { busyTimeoutMs: opts.busyTimeoutMs });
    const core = new PerRequestCore(opts, metrics, db, CardIndex.load(db), new Set(loadBoardSeqs(db).keys()));
    core.pollTimer = setInterval(() => core.pollOnce(), opts.pollMs);
    return core;
  }

  get connections(): number {
    return this.sockets.size;
  }
  /** Updates received and not yet answered (in a transaction or waiting out a backoff). */
  get inflight(): number {
    return this.inflightCount;
  }
  /** The highest number in flight since the previous call (for `wami_queue_depth_peak`). */
  takeInflightPeak(): number {
    const p = Math.max(this.inflightPeak, this.inflightCount);
    this.inflightPeak = this.inflightCount;
    return p;
  }
  hasBoard(id: number): boolean {
    return this.boardIds.has(id);
  }
  /** Fault injection: this worker's connection refuses to grow the file (SQLITE_FULL) while on. */
  setDiskFull(on: boolean): void {
    setDiskFull(this.db, on);
  }
  health(): WorkerHealth {
    return { pid: process.pid, connections: this.sockets.size, inflight: this.inflightCount, activeBoards: this.feeds.activeBoards };
  }

  /** Reads what other processes committed since the last poll and delivers it to the boards with members here. */
  pollOnce(): void {
    for (;;) {
      let rows: unknown[][];
      try {
        rows = this.poll.all(this.cursor, this.opts.pollBatch) as unknown[][];
      } catch {
        return; // a busy read is not possible in WAL; anything else: try again next tick
      }
      if (rows.length === 0) return;
      this.cursor = rows[rows.length - 1]![0] as number;
      if (this.feeds.activeBoards > 0) {
        const mine: FeedRow[] = [];
        for (const r of rows) {
          if (this.feeds.lastSeq(r[1] as number) === undefined) continue; // no member of that board here
          const row: UpdateRow = {
            board: r[1] as number,
            card: r[3] as number,
            user: r[4] as number,
            id: r[5] as string,
            column: r[6] as string,
            title: r[7] as string,
            at: r[8] as number,
            sentAt: r[9] as number,
          };
          mine.push({ board: row.board, seq: r[2] as number, frame: () => broadcastFrame(row, r[2] as number) });
        }
        this.feeds.polled(mine);
      }
      if (rows.length < this.opts.pollBatch) return;
    }
  }

  private sendError(ws: WebSocket, code: ErrorCode, message: string, id?: string): void {
    this.metrics.errors.inc({ code });
    this.fanout.send(ws, serializeError(code, message, id));
  }
  private readonly refuse = (ws: WebSocket, code: ErrorCode, message: string, id?: string): void => this.sendError(ws, code, message, id);

  /** One update: its own transaction, retried on SQLITE_BUSY by the policy; then the ack and the broadcast here. */
  private async persist(ws: WebSocket, u: UpdateRow, receivedAt: number): Promise<void> {
    const m = this.metrics;
    if (++this.inflightCount > this.inflightPeak) this.inflightPeak = this.inflightCount;
    try {
      for (let attempts = 1; ; attempts++) {
        const r = this.tx(u);
        if (r.ok) {
          m.updatesPersisted.inc();
          m.batchSize.observe(1);
          m.commitDuration.observe((r.endMs - r.startMs) / 1000);
          m.queueWait.observe(Math.max(0, r.startMs - receivedAt) / 1000);
          m.txAttempts.observe(attempts);
          this.fanout.send(
            ws,
            serializeAck({
              id: u.id,
              seq: r.seq,
              queueMs: round3(Math.max(0, r.startMs - receivedAt)),
              commitMs: round3(Math.max(0, r.endMs - r.startMs)),
              attempts,
            }),
          );
          this.feeds.committed(u.board, r.seq, ws, () => broadcastFrame(u, r.seq));
          return;
        }
        if (!r.busy) {
          m.txAttempts.observe(attempts);
          const dup = r.code.startsWith('SQLITE_CONSTRAINT') && /client_msg_id/.test(r.message);
          this.sendError(ws, 'WRITE_FAILED', dup ? `duplicate id "${u.id}" for user ${u.user}: already stored` : `${r.code}: ${r.message}`, u.id);
          return;
        }
        m.sqliteBusy.inc();
        const d = decideRetry(attempts, nowMs() - receivedAt, this.retry, Math.random);
        if (!d.retry) {
          m.txAttempts.observe(attempts);
          m.busyExhausted.inc();
          this.sendError(
            ws,
            'BUSY_EXHAUSTED',
            `database busy: gave up after ${attempts} attempt(s) (${d.reason === 'attempts' ? 'attempt limit' : 'deadline'} reached; ${r.code})`,
            u.id,
          );
          return;
        }
        m.txRetries.inc();
        await sleep(d.delayMs);
      }
    } catch (e) {
      this.sendError(ws, 'WRITE_FAILED', `internal error: ${(e as Error).message}`, u.id);
    } finally {
      this.inflightCount--;
      if (this.inflightCount === 0) for (const f of this.idleWaiters.splice(0)) f();
    }
  }

  /** A socket's frames and close, with its board and user (listeners shared by every socket). */
  private readonly listen = socketListeners<{ board: number; user: number }>(
    (ws, s, data, isBinary) => this.onFrame(ws, s.board, s.user, data, isBinary),
    (ws, s) => {
      this.sockets.delete(ws);
      this.feeds.leave(s.board, ws);
    },
  );

  /** Takes over an open WebSocket of `user` on `board` (the board must exist). */
  attach(ws: WebSocket, board: number, user: number): void {
    if (this.stopping) {
      ws.close(CLOSE_GOING_AWAY, 'server shutting down');
      return;
    }
    this.sockets.add(ws);
    this.feeds.join(board, ws, () => this.readSeq.get(board) as number);
    this.listen(ws, { board, user });
  }

  private onFrame(ws: WebSocket, board: number, user: number, data: Buffer, isBinary: boolean): void {
    const receivedAt = nowMs();
    const u = admitFrame(ws, data, isBinary, board, this.cards, this.metrics, this.stopping, this.refuse);
    if (u === null) return;
    void this.persist(ws, { board, card: u.card, user, id: u.id, column: u.column, title: u.title, at: u.at, sentAt: u.sentAt }, receivedAt);
  }

  /**
   * Graceful stop: refuse new updates, finish the ones in flight, deliver what the last poll finds,
   * close every socket with 1001 (waiting up to 2 s for them), close the database.
   */
  async shutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.inflightCount > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollOnce();
    for (const ws of this.sockets) ws.close(CLOSE_GOING_AWAY, 'server shutting down');
    const deadline = Date.now() + 2000;
    while (this.sockets.size > 0 && Date.now() < deadline) await sleep(20);
  }

  /** Closes the database (after shutdown). */
  close(): void {
    this.db.close();
  }
}
