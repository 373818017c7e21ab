/**
 * How both variants take in a client frame, before their write paths part: a binary or malformed
 * frame is BAD_MESSAGE, a card that does not exist or is on another board is UNKNOWN_CARD; a valid
 * update is counted (wami_updates_received_total) and returned. Shutdown refusals stay with each core.
 */
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
