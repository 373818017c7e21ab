/**
 * A small protocol v1 server for the `external` kind's tests: what a user might bring, and nothing
 * the runner knows of. One process, one SQLite connection, one transaction per update (seq read and
 * raised inside it, the same rows as every variant), ack after commit, broadcast to the board's other
 * sockets. It has no `/metrics` (404), answers `/healthz` with plain text, and picks its own port when
 * given `--port 0`, printing `tiny-v1: listening on ws://127.0.0.1:PORT` (no `/ws`), so a scenario can
 * leave `{port}` out. SIGTERM: close the sockets, the database, exit 0; with `--ignore-sigterm` it
 * does not stop (a server without a graceful stop, for the runner's SIGKILL bound).
 *
 *   node dist/test/helpers/tiny-v1-server.js --db FILE --port 0 [--ignore-sigterm]
 *
 * Importing this file does nothing (the test runner loads every file under dist/test/): it serves
 * only when run with --db.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { nowMs } from '../../protocol/clock.js';
import { parseClientFrame, parseConnectQuery } from '../../protocol/parse.js';
import { serializeAck, serializeBroadcast, serializeError } from '../../protocol/serialize.js';
import { openDb } from '../../servers/common/db.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function serve(dbFile: string, port: number): void {
  const db = openDb(dbFile, { busyTimeoutMs: 5000 });
  const boards = new Set(db.prepare('SELECT id FROM boards').pluck(true).all() as number[]);
  const cardBoard = new Map((db.prepare('SELECT id, board_id FROM cards').raw(true).all() as Array<[number, number]>).map(([c, b]) => [c, b]));
  const readSeq = db.prepare('SELECT seq FROM boards WHERE id = ?').pluck(true);
  const writeSeq = db.prepare('UPDATE boards SET seq = ? WHERE id = ?');
  const updCard = db.prepare('UPDATE cards SET col = ?, title = ?, version = version + 1, updated_at = ? WHERE id = ?');
  const insEvent = db.prepare(
    'INSERT INTO card_events (board_id, seq, card_id, user_id, client_msg_id, col, title, at, committed_at, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const write = db.transaction((board: number, user: number, u: { id: string; card: number; column: string; title: string; at: number; sentAt: number }) => {
    const seq = (readSeq.get(board) as number) + 1;
    writeSeq.run(seq, board);
    const t = nowMs();
    updCard.run(u.column, u.title, t, u.card);
    insEvent.run(board, seq, u.card, user, u.id, u.column, u.title, u.at, t, u.sentAt);
    return seq;
  });
  const members = new Map<number, Set<WebSocket>>();

  const http = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 });
  http.on('upgrade', (req, socket, head) => {
    const q = parseConnectQuery(req.url);
    const refuse = (status: number): void => {
      socket.end(`HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : 'Bad Request'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (q.path !== '/ws' || q.board === null || q.user === null) return refuse(q.path === '/ws' ? 400 : 404);
    if (!boards.has(q.board)) return refuse(404);
    const board = q.board;
    const user = q.user;
    wss.handleUpgrade(req, socket, head, (ws) => {
      let set = members.get(board);
      if (!set) members.set(board, (set = new Set()));
      set.add(ws);
      ws.on('close', () => set.delete(ws));
      ws.on('message', (data: Buffer, isBinary) => {
        if (isBinary) return ws.send(serializeError('BAD_MESSAGE', 'send JSON in text frames'));
        const p = parseClientFrame(data);
        if (!p.ok) return ws.send(serializeError('BAD_MESSAGE', p.message, p.id));
        const u = p.msg;
        if (cardBoard.get(u.card) !== board) return ws.send(serializeError('UNKNOWN_CARD', `card ${u.card} is not on board ${board}`, u.id));
        const t0 = nowMs();
        let seq: number;
        try {
          seq = write(board, user, u);
        } catch (e) {
          return ws.send(serializeError('WRITE_FAILED', String((e as Error).message), u.id));
        }
        ws.send(serializeAck({ id: u.id, seq, queueMs: 0, commitMs: Math.round((nowMs() - t0) * 1000) / 1000, attempts: 1 }));
        const frame = serializeBroadcast(u, user, seq);
        for (const other of set) if (other !== ws && other.readyState === other.OPEN) other.send(frame);
      });
    });
  });
  http.listen(port, '127.0.0.1', () => {
    const a = http.address() as AddressInfo;
    process.stdout.write(`tiny-v1: listening on ws://127.0.0.1:${a.port} pid ${process.pid}\n`);
  });
  if (process.argv.includes('--ignore-sigterm')) {
    process.on('SIGTERM', () => process.stdout.write('tiny-v1: SIGTERM ignored\n'));
    return;
  }
  process.once('SIGTERM', () => {
    for (const set of members.values()) for (const ws of set) ws.close(1001, 'going away');
    http.close();
    http.closeAllConnections();
    db.close();
    process.exit(0);
  });
}

const dbFile = arg('--db');
if (dbFile !== undefined) serve(dbFile, Number(arg('--port') ?? 0));
