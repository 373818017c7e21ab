/**
 * The floor's core: the least any design must do for an update. The same intake as the designs
 * (servers/common/intake.ts: the strict parser, BAD_MESSAGE, UNKNOWN_CARD), the board's next seq
 * in RAM, the broadcast from RAM to the board's other sockets and the ack at once, through the
 * same fan-out; nothing is queued, nothing is stored (no SQLite while serving). What a design costs
 * beyond this is the price of its storage; what this costs is the machine's.
 *
 * It serves `wami-bench serve floor` (servers/floor/server.ts, and shards like batched) and the
 * fleet-ceiling sink (servers/sink/sink.ts, which checks no card ownership).
 */
import type { WebSocket } from 'ws';
import { CLOSE_GOING_AWAY, type ErrorCode } from '../../protocol/messages.js';
import { parseClientFrame } from '../../protocol/parse.js';
import { serializeAck, serializeBroadcast, serializeError } from '../../protocol/serialize.js';
import type { CardIndex } from '../common/boards.js';
import { Fanout } from '../common/fanout.js';
import { boardJoiner, closeAll, waitClosed, type Joined } from '../common/sockets.js';
import { takeIn } from '../common/intake.js';
import type { ServerMetrics } from '../common/metrics.js';

interface Board {
  seq: number;
  members: Set<WebSocket>;
}

const OPEN = 1;
/** The ack every floor update gets: nothing waited in a queue or a transaction. */
const NO_WAIT = { queueMs: 0, commitMs: 0, attempts: 1 } as const;

export interface FloorCoreOptions {
  /** Board id -> the seq to continue from (the seeded file's boards.seq; 0 for the sink). */
  boards: Iterable<readonly [number, number]>;
  /** Card id -> board, for UNKNOWN_CARD; null: card ownership is not checked (the sink). */
  cards: CardIndex | null;
  maxBufferedBytes: number;
}

export class FloorCore {
  private readonly boards = new Map<number, Board>();
  private readonly sockets = new Set<WebSocket>();
  /** Adds a socket to its board (shared listeners, servers/common/sockets.ts). */
  private readonly join = boardJoiner<Board>(this.sockets, (ws, j, data, isBinary) => this.onMessage(ws, j, data, isBinary));
  private readonly fanout: Fanout;
  private readonly cards: CardIndex | null;
  private stopping = false;
  /** Never resolves: nothing the floor runs can fail on its own (the shard and CLI wait on it like on the designs'). */
  readonly failed: Promise<string> = new Promise(() => {});

  constructor(
    opts: FloorCoreOptions,
    private readonly metrics: ServerMetrics,
  ) {
    for (const [id, seq] of opts.boards) this.boards.set(id, { seq, members: new Set() });
    this.cards = opts.cards;
    this.fanout = new Fanout(opts.maxBufferedBytes, metrics);
  }

  get connections(): number {
    return this.sockets.size;
  }
  /** Nothing waits to be written. */
  get queueDepth(): number {
    return 0;
  }
  takeQueuePeak(): number {
    return 0;
  }
  get held(): number {
    return 0;
  }
  get boardCount(): number {
    return this.boards.size;
  }
  hasBoard(id: number): boolean {
    return this.boards.has(id);
  }
  /** There is no disk to fill. */
  setDiskFull(_on: boolean): Promise<void> {
    return Promise.resolve();
  }

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

  private onMessage(ws: WebSocket, j: Joined<Board>, data: Buffer, isBinary: boolean): void {
    const { b, board, user } = j;
    if (ws.readyState !== OPEN) return void this.metrics.updatesAfterClose.inc();
    let u: import('../../protocol/messages.js').ClientUpdate;
    if (this.cards) {
      const r = takeIn(data, isBinary, board, this.cards, this.metrics);
      if (!r.ok) return this.error(ws, r.code, r.message, r.id);
      u = r.update;
    } else {
      const p = isBinary ? null : parseClientFrame(data);
      if (!p?.ok) return this.error(ws, 'BAD_MESSAGE', p ? p.message : 'binary frame', p?.id);
      this.metrics.updatesReceived.inc();
      u = p.msg;
    }
    if (this.stopping) return this.error(ws, 'OVERLOADED', 'server is shutting down', u.id);
    const seq = ++b.seq;
    this.fanout.broadcast(b.members, ws, serializeBroadcast(u, user, seq));
    this.fanout.send(ws, serializeAck({ id: u.id, seq, ...NO_WAIT }));
  }

  /** Graceful stop: refuse new updates, close every socket with 1001. Nothing to flush. */
  async shutdown(): Promise<string | null> {
    this.stopping = true;
    closeAll(this.sockets);
    return null;
  }

  /** Resolves once every socket has closed, or after `timeoutMs` (then terminates the rest). */
  waitSocketsClosed(timeoutMs: number): Promise<void> {
    return waitClosed(this.sockets, timeoutMs);
  }
}
