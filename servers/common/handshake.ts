/**
 * The WebSocket handshake of protocol v1: `GET /ws?board=<int>&user=<int>`. A missing or invalid
 * board or user is refused with HTTP 400, an unknown board (or a path other than /ws) with 404,
 * before any WebSocket is created.
 */
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { parseConnectQuery } from '../../protocol/parse.js';

export type HandshakeResult = { ok: true; board: number; user: number } | { ok: false; status: 400 | 404; reason: string };

export function checkHandshake(url: string | undefined, boardExists: (id: number) => boolean): HandshakeResult {
  let q: ReturnType<typeof parseConnectQuery>;
  try {
    q = parseConnectQuery(url);
  } catch {
    return { ok: false, status: 400, reason: 'malformed URL' };
  }
  if (q.path !== '/ws') return { ok: false, status: 404, reason: `no WebSocket endpoint at ${q.path.slice(0, 64)}; use /ws` };
  if (q.board === null) return { ok: false, status: 400, reason: 'missing, repeated or invalid "board" (one integer)' };
  if (q.user === null) return { ok: false, status: 400, reason: 'missing, repeated or invalid "user" (one integer)' };
  if (!boardExists(q.board)) return { ok: false, status: 404, reason: `unknown board ${q.board}` };
  return { ok: true, board: q.board, user: q.user };
}

/** Answers a refused upgrade with a plain HTTP response and closes the socket. */
export function rejectUpgrade(socket: Duplex, status: number, reason: string): void {
  const body = `${reason}\n`;
  try {
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
        'Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  } catch {
    socket.destroy();
  }
}
