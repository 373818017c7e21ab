/**
 * The one strict parser of wire protocol v1, used by both servers (client frames) and by the fleet
 * and the conformance checker (server frames). Pure: no I/O, no clocks.
 */
import {
  COLUMNS,
  ERROR_CODES,
  MAX_FRAME_BYTES,
  MAX_ID_LENGTH,
  MAX_TITLE_LENGTH,
  type AckMessage,
  type BroadcastMessage,
  type ClientUpdate,
  type Column,
  type ErrorCode,
  type ErrorMessage,
  type ServerMessage,
} from './messages.js';

export type ParseResult<T> = { ok: true; msg: T } | { ok: false; code: 'BAD_MESSAGE'; id?: string; message: string };

const COLUMN_SET: ReadonlySet<string> = new Set(COLUMNS);
const ERROR_CODE_SET: ReadonlySet<string> = new Set(ERROR_CODES);
const UPDATE_KEYS = ['type', 'id', 'card', 'column', 'title', 'at', 'sentAt'] as const;
const UPDATE_KEY_SET: ReadonlySet<string> = new Set(UPDATE_KEYS);

function bad(message: string, id?: string): { ok: false; code: 'BAD_MESSAGE'; id?: string; message: string } {
  return id === undefined ? { ok: false, code: 'BAD_MESSAGE', message } : { ok: false, code: 'BAD_MESSAGE', id, message };
}

function isTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

/** Length in bytes of a frame as it came off the wire. */
function frameBytes(data: string | Buffer): number {
  return typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.length;
}

/**
 * Parses and validates one client frame. Every failure is `BAD_MESSAGE` with a message naming the
 * problem, and `id` when the frame had a usable one (so the sender can match the error).
 * Card existence is not checked here (that is `UNKNOWN_CARD`, the server's job).
 */
export function parseClientFrame(data: string | Buffer): ParseResult<ClientUpdate> {
  const bytes = frameBytes(data);
  if (bytes > MAX_FRAME_BYTES) return bad(`frame of ${bytes} bytes exceeds the limit of ${MAX_FRAME_BYTES}`);
  let v: unknown;
  try {
    v = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch {
    return bad('frame is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('frame is not a JSON object');
  const o = v as Record<string, unknown>;
  const id = typeof o.id === 'string' && o.id.length > 0 && o.id.length <= MAX_ID_LENGTH ? o.id : undefined;
  if (o.type !== 'update') {
    return bad(typeof o.type === 'string' ? `unknown message type "${o.type.slice(0, 32)}"` : 'missing "type"', id);
  }
  for (const k of Object.keys(o)) {
    if (!UPDATE_KEY_SET.has(k)) return bad(`unknown field "${k.slice(0, 32)}"`, id);
  }
  if (typeof o.id !== 'string' || o.id.length === 0) return bad('"id" must be a non-empty string');
  if (o.id.length > MAX_ID_LENGTH) return bad(`"id" is longer than ${MAX_ID_LENGTH} characters`);
  if (typeof o.card !== 'number' || !Number.isSafeInteger(o.card) || o.card <= 0) {
    return bad('"card" must be a positive integer', id);
  }
  if (typeof o.column !== 'string' || !COLUMN_SET.has(o.column)) {
    return bad(`"column" must be one of ${COLUMNS.join('|')}`, id);
  }
  if (typeof o.title !== 'string') return bad('"title" must be a string', id);
  if (o.title.length > MAX_TITLE_LENGTH) return bad(`"title" is longer than ${MAX_TITLE_LENGTH} characters`, id);
  if (!isTime(o.at)) return bad('"at" must be a finite, non-negative number (ms)', id);
  if (!isTime(o.sentAt)) return bad('"sentAt" must be a finite, non-negative number (ms)', id);
  return {
    ok: true,
    msg: {
      type: 'update',
      id: o.id,
      card: o.card,
      column: o.column as Column,
      title: o.title,
      at: o.at,
      sentAt: o.sentAt,
    },
  };
}

function isPosInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}
function isNonNegNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

/**
 * Parses one server frame strictly (for the fleet and the conformance checker). A frame that does
 * not match v1 exactly is reported as `BAD_MESSAGE` with the reason: a protocol error of the server.
 */
export function parseServerFrame(data: string | Buffer): ParseResult<ServerMessage> {
  let v: unknown;
  try {
    v = JSON.parse(typeof data === 'string' ? data : data.toString('utf8'));
  } catch {
    return bad('server frame is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad('server frame is not a JSON object');
  const o = v as Record<string, unknown>;
  const id = typeof o.id === 'string' ? o.id : undefined;
  switch (o.type) {
    case 'ack': {
      if (id === undefined) return bad('ack without string "id"');
      if (!isPosInt(o.seq)) return bad('ack "seq" must be a positive integer', id);
      if (!isNonNegNumber(o.queueMs)) return bad('ack "queueMs" must be a non-negative number', id);
      if (!isNonNegNumber(o.commitMs)) return bad('ack "commitMs" must be a non-negative number', id);
      if (!isPosInt(o.attempts)) return bad('ack "attempts" must be a positive integer', id);
      const msg: AckMessage = { type: 'ack', id, seq: o.seq, queueMs: o.queueMs, commitMs: o.commitMs, attempts: o.attempts };
      return { ok: true, msg };
    }
    case 'update': {
      if (id === undefined) return bad('broadcast without string "id"');
      if (!isPosInt(o.card)) return bad('broadcast "card" must be a positive integer', id);
      if (typeof o.column !== 'string' || !COLUMN_SET.has(o.column)) return bad('broadcast "column" is not a v1 column', id);
      if (typeof o.title !== 'string') return bad('broadcast "title" must be a string', id);
      if (!isTime(o.at) || !isTime(o.sentAt)) return bad('broadcast "at"/"sentAt" must be times in ms', id);
      if (!isPosInt(o.seq)) return bad('broadcast "seq" must be a positive integer', id);
      if (typeof o.from !== 'number' || !Number.isSafeInteger(o.from) || o.from < 0) {
        return bad('broadcast "from" must be a user id', id);
      }
      const msg: BroadcastMessage = {
        type: 'update',
        id,
        card: o.card,
        column: o.column as Column,
        title: o.title,
        at: o.at,
        sentAt: o.sentAt,
        from: o.from,
        seq: o.seq,
      };
      return { ok: true, msg };
    }
    case 'error': {
      if (typeof o.code !== 'string' || !ERROR_CODE_SET.has(o.code)) return bad('error with an unknown "code"', id);
      if (typeof o.message !== 'string') return bad('error without a string "message"', id);
      const msg: ErrorMessage = { type: 'error', code: o.code as ErrorCode, message: o.message };
      if (id !== undefined) msg.id = id;
      return { ok: true, msg };
    }
    default:
      return bad(`unknown server message type ${JSON.stringify(o.type)}`, id);
  }
}

/** Parses `?board=<int>&user=<int>` of the connect URL. Returns null fields where absent, repeated or invalid. */
export function parseConnectQuery(url: string | undefined): { path: string; board: number | null; user: number | null } {
  const u = new URL(url ?? '/', 'http://x');
  // Exactly one value, all digits: a repeated parameter is as invalid as a missing one (which one would count?).
  const int = (name: string): number | null => {
    const all = u.searchParams.getAll(name);
    const s = all.length === 1 ? all[0]! : null;
    if (s === null || !/^\d{1,15}$/.test(s)) return null;
    return Number(s);
  };
  return { path: u.pathname, board: int('board'), user: int('user') };
}
