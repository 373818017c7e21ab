/**
 * How both variants take in a client frame, before their write paths part: a binary or malformed
 * frame is BAD_MESSAGE, a card that does not exist or is on another board is UNKNOWN_CARD; a valid
 * update is counted (wami_updates_received_total) and returned. Shutdown refusals stay with each core.
 */
import type { WebSocket } from 'ws';
import type { ClientUpdate, ErrorCode } from '../../protocol/messages.js';
import { parseClientFrame } from '../../protocol/parse.js';
import type { CardIndex } from './boards.js';
import type { ServerMetrics } from './metrics.js';

export type Intake = { ok: true; update: ClientUpdate } | { ok: false; code: ErrorCode; message: string; id?: string };

export function takeIn(data: Buffer, isBinary: boolean, board: number, cards: CardIndex, metrics: ServerMetrics): Intake {
  if (isBinary) return { ok: false, code: 'BAD_MESSAGE', message: 'binary frames are not accepted: send JSON in text frames' };
  const p = parseClientFrame(data);
  if (!p.ok)
    return p.id === undefined ? { ok: false, code: 'BAD_MESSAGE', message: p.message } : { ok: false, code: 'BAD_MESSAGE', message: p.message, id: p.id };
  const u = p.msg;
  metrics.updatesReceived.inc();
  const owner = cards.boardOf(u.card);
  if (owner !== board)
    return {
      ok: false,
      code: 'UNKNOWN_CARD',
      message: owner === undefined ? `card ${u.card} does not exist` : `card ${u.card} is not on board ${board}`,
      id: u.id,
    };
  return { ok: true, update: u };
}

/** ws's readyState of an open socket. */
const OPEN = 1;

/**
 * What a storing core does with a socket's frame before its own write path: a frame that arrives
 * after the server's Close frame (shutdown, slow consumer) is counted and not processed, since
 * nothing may be sent back (RFC 6455); a frame takeIn refuses is answered with its error; and while
 * the server stops a valid update is answered OVERLOADED. Returns the update to process, or null
 * when it was answered or dropped.
 */
export function admitFrame(
  ws: WebSocket,
  data: Buffer,
  isBinary: boolean,
  board: number,
  cards: CardIndex,
  metrics: ServerMetrics,
  stopping: boolean,
  refuse: (ws: WebSocket, code: ErrorCode, message: string, id?: string) => void,
): ClientUpdate | null {
  if (ws.readyState !== OPEN) {
    metrics.updatesAfterClose.inc();
    return null;
  }
  const r = takeIn(data, isBinary, board, cards, metrics);
  if (!r.ok) {
    refuse(ws, r.code, r.message, r.id);
    return null;
  }
  if (stopping) {
    refuse(ws, 'OVERLOADED', 'server is shutting down', r.update.id);
    return null;
  }
  return r.update;
}
