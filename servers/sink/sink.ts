/**
 * The sink: the cheapest server that still speaks protocol v1 to the fleet, for measuring the fleet's
 * own ceiling (runner/fleet-ceiling.ts). Every valid update gets its board's next seq in RAM, is
 * broadcast to the board's other sockets and acked at once, through the same front and fan-out as
 * the real servers; nothing is stored (no SQLite, no queue, no audit). A rate the fleet cannot hold
 * against it is the measuring machine's limit, whatever server is under test.
 */
import type { WebSocket } from 'ws';
import { PROTOCOL_VERSION } from '../../protocol/messages.js';
import { parseClientFrame } from '../../protocol/parse.js';
import { serializeAck, serializeBroadcast, serializeError } from '../../protocol/serialize.js';
import { Fanout } from '../common/fanout.js';
import { Front } from '../common/front.js';
import { createMetrics, renderMetrics } from '../common/metrics.js';

export interface SinkOptions {
  host: string;
  port: number;
  /** Boards 1..boards are accepted at the handshake. */
  boards: number;
}

export interface RunningSink {
  host: string;
  port: number;
  stop(): Promise<void>;
}

export async function startSink(opts: SinkOptions): Promise<RunningSink> {
  const boards = new Map<number, { seq: number; members: Set<WebSocket> }>();
  const sockets = new Set<WebSocket>();
  const metrics = createMetrics({ dbFile: '', connections: () => sockets.size, queueDepth: () => 0 });
  const fanout = new Fanout(16 * 1024 * 1024, metrics);
  const attach = (ws: WebSocket, board: number, user: number): void => {
    let b = boards.get(board);
    if (!b) boards.set(board, (b = { seq: 0, members: new Set() }));
    const bb = b;
    bb.members.add(ws);
    sockets.add(ws);
    ws.on('error', () => {});
    ws.once('close', () => {
      bb.members.delete(ws);
      sockets.delete(ws);
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const p = isBinary ? null : parseClientFrame(data);
      if (!p?.ok) {
        fanout.send(ws, serializeError('BAD_MESSAGE', p ? p.message : 'binary frame', p?.id));
        return;
      }
      const u = p.msg;
      const seq = ++bb.seq;
      metrics.updatesReceived.inc();
      fanout.broadcast(bb.members, ws, serializeBroadcast(u, user, seq));
      fanout.send(ws, serializeAck({ id: u.id, seq, queueMs: 0, commitMs: 0, attempts: 1 }));
    });
  };
  const front = new Front({
    host: opts.host,
    port: opts.port,
    maxPayloadBytes: 64 * 1024,
    hasBoard: (id) => id >= 1 && id <= opts.boards,
    onSocket: (ws, board, user) => attach(ws, board, user),
    healthz: () => ({ status: 'ok', variant: 'sink', protocol: PROTOCOL_VERSION, pid: process.pid, connections: sockets.size }),
    metrics: () => renderMetrics(metrics),
    readBoard: () => null,
  });
  const addr = await front.listen();
  return {
    host: addr.address,
    port: addr.port,
    stop: async () => {
      front.stopAccepting();
      for (const ws of sockets) ws.close(1001, 'sink stopping');
      const deadline = Date.now() + 2000;
      while (sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      front.destroyAll();
    },
  };
}
