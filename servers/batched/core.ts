/**
 * The batched server's core: the port of the seed's design, given sockets. It owns the boards
 * (board id -> sockets, seq in RAM), the bounded queue and the writer thread. Each valid update
 * gets the board's next seq, is broadcast at once from RAM to the board's other sockets (no SQL),
 * and is queued; every `flushIntervalMs` the writer commits everything queued as one transaction
 * and the senders get their acks. The HTTP/upgrade front is elsewhere (servers/common/front.ts),
 * so a shard process of `--shards N` (shard.ts) is this core fed with sockets handed over by a primary.
 *
 * Seqs are handed out only under the board's committed seq lease (lease.ts): the writer commits
 * leases with the batches; a board at the end of its lease holds its new updates (no seq, no
 * broadcast, counted against --max-queue) until the next lease commits. So a seq once broadcast is
 * never reused, whatever happens to the process or the disk.
 */
import type { WebSocket } from 'ws';
import { nowMs, round3 } from '../../protocol/clock.js';
import { CLOSE_GOING_AWAY, type ClientUpdate, type ErrorCode } from '../../protocol/messages.js';
import { serializeAck, serializeBroadcast, serializeError } from '../../protocol/serialize.js';
import { CardIndex } from '../common/boards.js';
import { openDb } from '../common/db.js';
import { Fanout } from '../common/fanout.js';
import { boardJoiner, closeAll, waitClosed, type Joined } from '../common/sockets.js';
import { admitFrame } from '../common/intake.js';
import type { ServerMetrics } from '../common/metrics.js';
import type { BatchedOptions } from '../../model/variants.js';
import { BoundedQueue } from './batching.js';
import { canHandOut, leaseGrant } from './lease.js';
import type { BatchWriteResult, LeaseGrant, WriteRow } from './writer-core.js';
import { WriterThread } from './writer.js';

/**
 * Options of the batched core: the batched options (model/variants.ts, with their bounds and
 * defaults) it uses, and the SQLite file (must exist, seeded).
 */
export interface BatchedCoreOptions
  extends Pick<BatchedOptions, 'flushIntervalMs' | 'maxQueue' | 'maxBufferedBytes' | 'batchRetries' | 'writerBusyTimeoutMs' | 'seqLeaseBlock'> {
  dbFile: string;
  /**
   * Set by a shard of `--shards N` (other writers share the file): the writer waits out SQLITE_BUSY
   * in the app, up to writerBusyTimeoutMs per try, counting every hit. Absent: the single-process design.
   */
  writerSharedFile?: boolean;
}

interface Board {
  id: number;
  /** The highest seq handed out (broadcast). */
  seq: number;
  /** The committed seq lease: no seq above it is handed out. */
  high: number;
  /** Updates waiting for a lease, in arrival order: no seq yet, not broadcast. */
  held: Held[];
  members: Set<WebSocket>;
}

interface Queued {
  row: WriteRow;
  ws: WebSocket;
}

interface Held {
  ws: WebSocket;
  u: ClientUpdate;
  user: number;
  receivedAt: number;
}

export class BatchedCore {
  private readonly queue: BoundedQueue<Queued>;
  private readonly fanout: Fanout;
  private readonly timer: NodeJS.Timeout;
  private inflight: Promise<void> | null = null;
  private flushDue = false;
  private stopping = false;
  private readonly sockets = new Set<WebSocket>();
  /** Adds a socket to its board (shared listeners, servers/common/sockets.ts). */
  private readonly join = boardJoiner<Board>(this.sockets, (ws, j, data, isBinary) => this.onMessage(ws, j, data, isBinary));
  /** Boards that asked the writer for a lease (they hold updates). */
  private readonly wanted = new Set<Board>();
  private heldTotal = 0;
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
   * Loads the cards, starts the writer thread, which commits every board's first seq lease (its next
   * seq is max(boards.seq, lease) + 1), and takes the boards from it. A shard of `--shards N` passes
   * `shard`: it keeps (and leases) only its boards (others are then unknown to it).
   */
  static async open(opts: BatchedCoreOptions, metrics: ServerMetrics, shard?: { index: number; of: number }): Promise<BatchedCore> {
    const db = openDb(opts.dbFile, { readonly: true });
    let cards: CardIndex;
    try {
      cards = CardIndex.load(db);
    } finally {
      db.close();
    }
    const writer = await WriterThread.start({
      dbFile: opts.dbFile,
      busyTimeoutMs: opts.writerBusyTimeoutMs,
      batchRetries: opts.batchRetries,
      leaseBlock: opts.seqLeaseBlock,
      ...(shard ? { shard } : {}),
      ...(opts.writerSharedFile ? { busyWaitMs: opts.writerBusyTimeoutMs } : {}),
    });
    const boards = new Map<number, Board>();
    for (const [id, last, high] of writer.boards) boards.set(id, { id, seq: last, high, held: [], members: new Set() });
    return new BatchedCore(opts, metrics, boards, cards, writer);
  }

  get connections(): number {
    return this.sockets.size;
  }
  /** Updates accepted and not yet in a transaction: queued for the writer, or held for a seq lease. */
  get queueDepth(): number {
    return this.queue.length + this.heldTotal;
  }
  /** Updates held for a seq lease now. */
  get held(): number {
    return this.heldTotal;
  }
  /** Fault injection: the writer's connection refuses to grow the file (SQLITE_FULL) while on. */
  setDiskFull(on: boolean): Promise<void> {
    return this.writer.setDiskFull(on);
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
    this.join(ws, b, board, user);
  }

  private error(ws: WebSocket, code: ErrorCode, message: string, id?: string): void {
    this.metrics.errors.inc({ code });
    this.fanout.send(ws, serializeError(code, message, id));
  }
  private readonly refuse = (ws: WebSocket, code: ErrorCode, message: string, id?: string): void => this.error(ws, code, message, id);

  private onMessage(ws: WebSocket, j: Joined<Board>, data: Buffer, isBinary: boolean): void {
    const { b, board, user } = j;
    const receivedAt = nowMs();
    const u = admitFrame(ws, data, isBinary, board, this.cards, this.metrics, this.stopping, this.refuse);
    if (u === null) return;
    if (this.queue.length + this.heldTotal >= this.queue.max) return this.error(ws, 'OVERLOADED', `write queue is full (${this.queue.max} updates)`, u.id);
    if (b.held.length > 0 || !canHandOut(b.seq, b.high)) {
      // The board used up its committed lease: hold (no seq, no broadcast) until the writer commits more.
      b.held.push({ ws, u, user, receivedAt });
      this.heldTotal++;
      this.metrics.seqLeaseHolds?.inc();
      this.wanted.add(b);
      return;
    }
    this.admit(b, ws, u, user, receivedAt);
  }

  /** The board's next seq, the broadcast from RAM, and the queue. */
  private admit(b: Board, ws: WebSocket, u: ClientUpdate, user: number, receivedAt: number): void {
    const seq = ++b.seq;
    this.fanout.broadcast(b.members, ws, serializeBroadcast(u, user, seq));
    this.queue.push({
      ws,
      row: { board: b.id, seq, card: u.card, user, id: u.id, column: u.column, title: u.title, at: u.at, sentAt: u.sentAt, receivedAt },
    });
  }

  /** Admits a board's held updates while its committed lease allows; asks for more if some still wait. */
  private releaseHeld(b: Board): void {
    let i = 0;
    while (i < b.held.length && canHandOut(b.seq, b.high)) {
      const h = b.held[i++]!;
      this.admit(b, h.ws, h.u, h.user, h.receivedAt);
    }
    if (i > 0) {
      b.held.splice(0, i);
      this.heldTotal -= i;
    }
    if (b.held.length > 0 && !this.stopping) this.wanted.add(b);
  }

  private get hasWork(): boolean {
    return this.queue.length > 0 || this.wanted.size > 0;
  }

  private tick(): void {
    if (this.inflight) this.flushDue = true;
    else if (this.hasWork) this.inflight = this.flush();
  }

  /** The leases this flush commits: every board in it (or asking for one) whose headroom fell below half a block. */
  private grantsFor(batch: readonly Queued[]): LeaseGrant[] {
    const touched = new Set<Board>(this.wanted);
    this.wanted.clear();
    for (const q of batch) touched.add(this.boards.get(q.row.board)!);
    const grants: LeaseGrant[] = [];
    for (const b of touched) {
      const high = leaseGrant(b.high, b.seq, this.opts.seqLeaseBlock);
      if (high !== null) grants.push([b.id, high]);
    }
    return grants;
  }

  private async flush(): Promise<void> {
    const flushStart = nowMs();
    const batch = this.queue.takeAll();
    const grants = this.grantsFor(batch);
    const m = this.metrics;
    try {
      let result: BatchWriteResult;
      try {
        result = await this.writer.write(
          batch.map((q) => q.row),
          grants,
        );
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
      if (result.leasesCommitted) {
        for (const [id, high] of grants) {
          const b = this.boards.get(id)!;
          if (high > b.high) b.high = high;
        }
        if (batch.length === 0) m.seqLeaseOnlyCommits?.inc();
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
      // Held updates get their seqs under the leases just committed (or ask again).
      if (this.heldTotal > 0) for (const b of this.boards.values()) if (b.held.length > 0) this.releaseHeld(b);
      this.inflight = null;
      if ((this.flushDue || this.stopping) && this.hasWork) {
        this.flushDue = false;
        this.inflight = this.flush();
      }
    }
  }

  /** Held updates were never broadcast: on stop they are refused like any update arriving now. */
  private refuseHeld(): void {
    for (const b of this.boards.values()) {
      for (const h of b.held) this.error(h.ws, 'OVERLOADED', 'server is shutting down', h.u.id);
      b.held = [];
    }
    this.heldTotal = 0;
    this.wanted.clear();
  }

  /**
   * Graceful stop: refuse new and held updates (OVERLOADED), commit and ack everything queued,
   * release the seq leases (so a clean restart continues without a gap), close every socket with
   * 1001, close the database and end the writer thread. Resolves with a problem worth saying (the
   * leases could not be released: the next start skips ahead), or null.
   */
  async shutdown(): Promise<string | null> {
    this.stopping = true;
    clearInterval(this.timer);
    this.refuseHeld();
    while (this.inflight || this.queue.length > 0) {
      if (!this.inflight) this.inflight = this.flush();
      await this.inflight;
    }
    let problem: string | null = null;
    try {
      const err = await this.writer.release([...this.boards.values()].map((b) => [b.id, b.seq]));
      if (err) problem = `the seq leases could not be released (${err}): the next start skips up to ${this.opts.seqLeaseBlock} seqs per board`;
    } catch (e) {
      problem = `the seq leases could not be released (${(e as Error).message})`;
    }
    closeAll(this.sockets);
    await this.writer.close();
    return problem;
  }

  /** Resolves once every socket has closed, or after `timeoutMs` (then terminates the rest). */
  waitSocketsClosed(timeoutMs: number): Promise<void> {
    return waitClosed(this.sockets, timeoutMs);
  }
}
