/**
 * The cores' sockets: listeners shared by every socket (socketListeners, every design); a board's
 * sockets as the cores that keep boards in RAM (batched, the floor) hold them: a socket joins its
 * board's members and the process's set, its frames go to the core, and it leaves both when it
 * closes; on stop every socket is closed with 1001 and waited for.
 */
import type WebSocket from 'ws';
import { CLOSE_GOING_AWAY } from '../../protocol/messages.js';

/** Where a socket keeps what its core's listeners need (one small object per socket). */
const STATE = Symbol('wami.socket');
type WithState<T> = WebSocket & { [STATE]: T };

function ignoreError(): void {}

/**
 * Returns `listen(ws, state)`, which hands the socket's frames to `onFrame` and its close to
 * `onClose`, each with `state`; errors are left to the close that follows. The listeners are made
 * once here and shared by every socket (`this` is the socket), and 'close' is not wrapped by `once`,
 * because per-socket closures cost heap: a batched shard's heap snapshot at 15,000 idle sockets went
 * 60.2 -> 53.7 MB with this (about 430 bytes a socket: 91k closures -> 31k, 60k bound functions ->
 * 45k). Every design's core uses it, so none pays more per socket for its listeners than another.
 */
export function socketListeners<T>(
  onFrame: (ws: WebSocket, state: T, data: Buffer, isBinary: boolean) => void,
  onClose: (ws: WebSocket, state: T) => void,
): (ws: WebSocket, state: T) => void {
  const message = function (this: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
    onFrame(this, (this as WithState<T>)[STATE], data as Buffer, isBinary);
  };
  const close = function (this: WebSocket): void {
    onClose(this, (this as WithState<T>)[STATE]);
  };
  return (ws, state) => {
    (ws as WithState<T>)[STATE] = state;
    ws.on('message', message);
    ws.on('error', ignoreError);
    // 'close' is emitted once; `on` rather than `once`, which would wrap the listener per socket
    ws.on('close', close);
  };
}

/** A board as a core that keeps boards in RAM holds it: its sockets. */
export interface Membership {
  readonly members: Set<WebSocket>;
}

/** What a joined socket carries for its core: its board (with the members) and user. */
export interface Joined<B extends Membership> {
  readonly b: B;
  readonly board: number;
  readonly user: number;
}

/**
 * Returns `join(ws, b, board, user)`, which adds `ws` to `b.members` and `sockets`, hands its frames
 * to `onFrame` with what it joined, and removes it from both on close (socketListeners).
 */
export function boardJoiner<B extends Membership>(
  sockets: Set<WebSocket>,
  onFrame: (ws: WebSocket, j: Joined<B>, data: Buffer, isBinary: boolean) => void,
): (ws: WebSocket, b: B, board: number, user: number) => void {
  const listen = socketListeners<Joined<B>>(onFrame, (ws, j) => {
    j.b.members.delete(ws);
    sockets.delete(ws);
  });
  return (ws, b, board, user) => {
    b.members.add(ws);
    sockets.add(ws);
    listen(ws, { b, board, user });
  };
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
