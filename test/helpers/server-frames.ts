/** Server frames as a fleet worker receives them, for the recorder's tests. */
import type { ServerMessage } from '../../protocol/messages.js';

export const ack = (id: string, seq: number): ServerMessage => ({ type: 'ack', id, seq, queueMs: 0, commitMs: 0, attempts: 1 });

export const bcast = (from: number, id: string, seq: number, at: number, sentAt = at): ServerMessage => ({
  type: 'update',
  id,
  card: 1,
  column: 'doing',
  title: 't',
  at,
  sentAt,
  from,
  seq,
});
