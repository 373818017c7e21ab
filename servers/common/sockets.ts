/**
 * A board's sockets, as the cores that keep boards in RAM (batched, the floor) hold them: a socket
 * joins its board's members and the process's set, its frames go to the core, and it leaves both
 * when it closes; on stop every socket is closed with 1001 and waited for.
 */
import type { WebSocket } from 'ws';
import { CLOSE_GOING_AWAY } from '../../protocol/messages.js';

/** Adds `ws` to `members` and `sockets`, hands its frames to `onMessage`, removes it from both on close. */
export function joinBoard(ws: WebSocket, members: Set<WebSocket>, sockets: Set<WebSocket>, onMessage: (data: Buffer, isBinary: boolean) => void): void {
  members.add(ws);
  sockets.add(ws);
  ws.on('message', (data, isBinary) => onMessage(data as Buffer, isBinary));
  ws.on('error', () => {});
  ws.once('close', () => {
    members.delete(ws);
    sockets.delete(ws);
  });
}

/** Closes every socket with 1001 (terminates one that cannot be closed). */
export function closeAll(sockets: Iterable<WebSocket>): void {
  for (const ws of sockets) {
    try {
      ws.close(CLOSE_GOING_AWAY, 'server shutting down');
    } catch {
      ws.terminate();
    }
  }
}

/** Resolves once `sockets` is empty, or after `timeoutMs` (then terminates the rest). */
export async function waitClosed(sockets: Set<WebSocket>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (sockets.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  for (const ws of sockets) ws.terminate();
}
