/**
 * One attempt of the per-request write: its own transaction, `seq` read from the board row and
 * incremented inside it, then the same rows as the batched variant (`UPDATE cards` +
 * `INSERT card_events`). `immediate` takes the write lock at BEGIN (BEGIN IMMEDIATE); `deferred`
 * is the plain Redbean/Fullmoon style (BEGIN, read, then write: SQLITE_BUSY can hit mid-transaction).
 */
import { nowMs } from '../../protocol/clock.js';
import type { DB } from '../common/db.js';
import type { UpdateRow } from '../common/rows.js';

export type TxMode = 'immediate' | 'deferred';

export type { UpdateRow } from '../common/rows.js';

export type AttemptResult = { ok: true; seq: number; startMs: number; endMs: number } | { ok: false; busy: boolean; code: string; message: string };

export function isBusy(e: unknown): boolean {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' && c.startsWith('SQLITE_BUSY');
}

export function createUpdateTx(db: DB, mode: TxMode): (u: UpdateRow) => AttemptResult {
  const begin = mode === 'immediate' ? 'BEGIN IMMEDIATE' : 'BEGIN DEFERRED';
  const readSeq = db.prepare('SELECT seq FROM boards WHERE id = ?').pluck(true);
  const writeSeq = db.prepare('UPDATE boards SET seq = ? WHERE id = ?');
  const updCard = db.prepare('UPDATE cards SET col = ?, title = ?, version = version + 1, updated_at = ? WHERE id = ? AND board_id = ?');
  const insEvent = db.prepare(
    'INSERT INTO card_events (board_id, seq, card_id, user_id, client_msg_id, col, title, at, committed_at, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  return (u) => {
    const startMs = nowMs();
    try {
      db.exec(begin);
      const cur = readSeq.get(u.board) as number | undefined;
      if (cur === undefined) throw Object.assign(new Error(`board ${u.board} not found`), { code: 'WAMI_NO_BOARD' });
      const seq = cur + 1;
      writeSeq.run(seq, u.board);
      const t = nowMs();
      if (updCard.run(u.column, u.title, t, u.card, u.board).changes !== 1) {
        throw Object.assign(new Error(`card ${u.card} not found on board ${u.board}`), { code: 'WAMI_NO_CARD' });
      }
      insEvent.run(u.board, seq, u.card, u.user, u.id, u.column, u.title, u.at, t, u.sentAt);
      db.exec('COMMIT');
      return { ok: true, seq, startMs, endMs: nowMs() };
    } catch (e) {
      if (db.inTransaction) {
        try {
          db.exec('ROLLBACK');
        } catch {
          // already rolled back
        }
      }
      const code = (e as { code?: unknown }).code;
      return { ok: false, busy: isBusy(e), code: typeof code === 'string' ? code : 'ERROR', message: String((e as Error)?.message ?? e) };
    }
  };
}
