/**
 * The batched server's core: the port of the seed's design, given sockets. It owns the boards
 * (board id -> sockets, seq in RAM), the bounded queue and the writer thread. Each valid update
 * gets the board's next seq, is broadcast at once from RAM to the board's other sockets (no SQL),
 * and is queued; every `flushIntervalMs` the writer commits everything queued as one transaction
 * and the senders get their acks. The HTTP/upgrade front is elsewhere (servers/common/front.ts),
 * so a shard process of `--shards N` (shard.ts) is this core fed with sockets handed over by a primary.
 */
import type { WebSocket } from 'ws';
import { nowMs, round3 } from '../../protocol/clock.js';
import { CLOSE_GOING_AWAY, type ErrorCode } from '../../protocol/messages.js';
import { serializeAck, serializeBroadcast, serializeError } from '../../protocol/serialize.js';
import { CardIndex, loadBoardSeqs } from '../common/boards.js';
import { openDb } from '../common/db.js';
import { Fanout } from '../common/fanout.js';
import { takeIn } from '../common/intake.js';
import type { ServerMetrics } from '../common/metrics.js';
import type { BatchedOptions } from '../../model/variants.js';
import { BoundedQueue } from './batching.js';
import type { BatchWriteResult, WriteRow } from './writer-core.js';
import { WriterThread } from './writer.js';

/**
 * Options of the batched core: the batched options (model/variants.ts, with their bounds and
 * defaults) it uses, and the SQLite file (must exist, seeded).
 */
export interface BatchedCoreOptions extends Pick<BatchedOptions, 'flushIntervalMs' | 'maxQueue' | 'maxBufferedBytes' | 'batchRetries' | 'writerBusyTimeoutMs'> {
  dbFile: string;
  /**
   * Set by a shard of `--shards N` (other writers share the file): the writer waits out SQLITE_BUSY
   * in the app, up to writerBusyTimeoutMs per try, counting every hit. Absent: the single-process design.
   */
  writerSharedFile?: boolean;
}

interface Board {
  seq: number;
  members: Set<WebSocket>;
}

interface Queued {
  row: WriteRow;
  ws: WebSocket;
}

export class BatchedCore {
  private readonly queue: BoundedQueue<Queued>;
  private readonly fanout: Fanout;
  private readonly timer: NodeJS.Timeout;
  private inflight: Promise<void> | null = null;
  private flushDue = false;
  private stopping = false;
  private sockets = new Set<WebSocket>();
  /** Resolves with a message if the writer thread dies: nothing can be stored any more (the process should stop, exit 1). */
  readonly failed: Promise<string>;

  private constructor(
    readonly opts: BatchedCoreOptions,
    private readonly metrics: ServerMetrics,
    private readonly boards: Map<number, Board>,
    private readonly cards: CardIndex,
    private readonly writer: WriterThread,
  ) {
    this.queue = new BoundedQueue(opts.maxQueue);
    this.fanout = new Fanout(opts.maxBufferedBytes, metrics);
    this.timer = setInterval(() => this.tick(), opts.flushIntervalMs);
    this.failed = new Promise<string>((r) => {
      writer.onFatal = (e) => r(`writer thread died: ${e.message}`);
    });
  }

  /**
   * Loads boards (with their seq) and cards from the file and starts the writer thread. A shard
   * passes `ownsBoard`: it keeps only its boards (others are then unknown to it).
   */
  static async open(opts: BatchedCoreOptions, metrics: ServerMetrics, ownsBoard?: (id: number) => boolean): Promise<BatchedCore> {
    const db = openDb(opts.dbFile, { readonly: true });
    let seqs: Map<number, number>;
    let cards: CardIndex;
    try {
      seqs = loadBoardSeqs(db);
      cards = CardIndex.load(db);
    } finally {
      db.close();
    }
    const boards = new Map<number, Board>();
    for (const [id, seq] of seqs) if (!ownsBoard || ownsBoard(id)) boards.set(id, { seq, members: new Set() });
    const writer = await WriterThread.start({
      dbFile: opts.dbFile,
      busyTimeoutMs: opts.writerBusyTimeoutMs,
      batchRetries: opts.batchRetries,
      ...(opts.writerSharedFile ? { busyWaitMs: opts.writerBusyTimeoutMs } : {}),
    });
    return new BatchedCore(opts, metrics, boards, cards, writer);
  }

  get connections(): number {
    return this.sockets.size;
  }
  get queueDepth(): number {
    return this.queue.length;
  }
  /** The highest queue depth since the previous call (for `wami_queue_depth_peak`). */
  takeQueuePeak(): number {
    return this.queue.takePeak();
  }
  get boardCount(): number {
    return this.boards.size;
  }
  hasBoard(id: number): boolean {
    return this.boards.has(id);
  }

  /** Takes over an open WebSocket of `user` on `board` (the board must exist). */
  attach(ws: WebSocket, board: number, user: number): void {
    const b = this.boards.get(board);
    if (!b || this.stopping) {
      ws.close(CLOSE_GOING_AWAY, this.stopping ? 'server shutting down' : 'unknown board');
      return;
    }
    b.members.add(ws);
    this.sockets.add(ws);
    ws.on('message', (data, isBinary) => this.onMessage(ws, b, board, user, data as Buffer, isBinary));
    ws.on('error', () => {});
    ws.once('close', () => {
      b.members.delete(ws);
      this.sockets.delete(ws);
    });
  }

  private error(ws: WebSocket, code: ErrorCode, message: string, id?: string): void {
    this.metrics.errors.inc({ code });
    this.fanout.send(ws, serializeError(code, message, id));
  }

  private onMessage(ws: WebSocket, b: Board, board: number, user: number, data: Buffer, isBinary: boolean): void {
    const receivedAt = nowMs();
    const r = takeIn(data, isBinary, board, this.cards, this.metrics);
    if (!r.ok) return this.error(ws, r.code, r.message, r.id);
    const u = r.update;
    if (this.stopping) return this.error(ws, 'OVERLOADED', 'server is shutting down', u.id);
    if (!this.queue.hasRoom()) return this.error(ws, 'OVERLOADED', `write queue is full (${this.queue.max} updates)`, u.id);
    const seq = ++b.seq;
    this.fanout.broadcast(b.members, ws, serializeBroadcast(u, user, seq));
    this.queue.push({
      ws,
      row: { board, seq, card: u.card, user, id: u.id, column: u.column, title: u.title, at: u.at, sentAt: u.sentAt, receivedAt },
    });
  }

  private tick(): void {
    if (this.inflight) this.flushDue = true;
    else if (this.queue.length > 0) this.inflight = this.flush();
  }

  private async flush(): Promise<void> {
    const flushStart = nowMs();
    const batch = this.queue.takeAll();
    const m = this.metrics;
    try {
      let result: BatchWriteResult;
      try {
        result = await this.writer.write(batch.map((q) => q.row));
      } catch (e) {
        for (const q of batch) {
          m.broadcastUnpersisted.inc();
          m.txAttempts.observe(1);
          this.error(q.ws, 'WRITE_FAILED', `writer failed: ${(e as Error).message}`, q.row.id);
        }
        return;
      }
      for (const t of result.tx) {
        if (!t.ok) continue;
        m.batchSize.observe(t.size);
        m.commitDuration.observe(t.durationMs / 1000);
      }
      if (result.busyHits) m.sqliteBusy.inc(result.busyHits);
      if (result.retries) m.txRetries.inc(result.retries);
      if (result.splits) m.batchSplits.inc(result.splits);
      let persisted = 0;
      for (let i = 0; i < batch.length; i++) {
        const q = batch[i]!;
        const r = result.rows[i]!;
        m.txAttempts.observe(r.attempts);
        if (r.ok) {
          persisted++;
          const queueMs = r.startMs - q.row.receivedAt;
          m.queueWait.observe(Math.max(0, queueMs) / 1000);
          this.fanout.send(
            q.ws,
            serializeAck({
              id: q.row.id,
              seq: q.row.seq,
              queueMs: round3(Math.max(0, queueMs)),
              commitMs: round3(Math.max(0, r.commitMs)),
              attempts: r.attempts,
            }),
          );
        } else {
          m.broadcastUnpersisted.inc();
          this.error(q.ws, 'WRITE_FAILED', `update was broadcast as seq ${q.row.seq} but could not be stored: ${r.code}: ${r.message}`, q.row.id);
        }
      }
      m.updatesPersisted.inc(persisted);
      m.flushDuration.observe((nowMs() - flushStart) / 1000);
    } finally {
      this.inflight = null;
      if ((this.flushDue || this.stopping) && this.queue.length > 0) {
        this.flushDue = false;
        this.inflight = this.flush();
      }
    }
  }

  /**
   * Graceful stop: refuse new updates (OVERLOADED), commit and ack everything queued, close every
   * socket with 1001, close the database and end the writer thread.
   */
  async shutdown(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    while (this.inflight || this.queue.length > 0) {
      if (!this.inflight) this.inflight = this.flush();
      await this.inflight;
    }
    for (const ws of this.sockets) {
      try {
        ws.close(CLOSE_GOING_AWAY, 'server shutting down');
      } catch {
        ws.terminate();
      }
    }
    await this.writer.close();
  }

  /** Resolves once every socket has closed, or after `timeoutMs` (then terminates the rest). */
  async waitSocketsClosed(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const ws of this.sockets) ws.terminate();
  }
}
