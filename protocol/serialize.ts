/**
 * Serializers for server frames. Fixed key order, so frames are byte-identical across variants.
 * A broadcast is serialized once and the same string is sent to every socket on the board.
 */
import type { AckMessage, ClientUpdate, ErrorCode, ErrorMessage } from './messages.js';

export function serializeBroadcast(u: ClientUpdate, from: number, seq: number): string {
  return JSON.stringify({
    type: 'update',
    id: u.id,
    card: u.card,
    column: u.column,
    title: u.title,
    at: u.at,
    sentAt: u.sentAt,
    from,
    seq,
  });
}

export function serializeAck(a: Omit<AckMessage, 'type'>): string {
  return JSON.stringify({ type: 'ack', id: a.id, seq: a.seq, queueMs: a.queueMs, commitMs: a.commitMs, attempts: a.attempts });
}

export function serializeError(code: ErrorCode, message: string, id?: string): string {
  const e: ErrorMessage = id === undefined ? { type: 'error', code, message } : { type: 'error', id, code, message };
  return JSON.stringify(e);
}

export function serializeUpdate(u: ClientUpdate): string {
  return JSON.stringify({ type: 'update', id: u.id, card: u.card, column: u.column, title: u.title, at: u.at, sentAt: u.sentAt });
}
