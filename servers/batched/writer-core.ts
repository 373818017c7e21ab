/**
 * The batched writer's SQL, in-process and synchronous: one transaction per (sub-)batch with, per
 * update, `UPDATE cards` + `INSERT INTO card_events`, and `boards.seq` raised to the batch's
 * highest seq in the same transaction. Driven by `commitWithSplit` (retry, then bisect).
 * Runs on the writer thread (writer-thread.ts); tests call it directly on a real file.
 */
import { nowMs } from '../../protocol/clock.js';
import type { DB } from '../common/db.js';
import type { UpdateRow } from '../common/rows.js';
import { BUSY_BACKOFF_FIRST_MS, BUSY_BACKOFF_MAX_MS, commitWithSplit, DEFAULT_SPLIT_POLICY, isBusyError, sqliteCode, type SplitPolicy } from './batching.js';

/** One queued update, as it travels to the writer thread (structured-clone friendly). */
export interface WriteRow extends UpdateRow {
  /** The board's sequence number, assigned in RAM before the broadcast. */
  seq: number;
  /** When the server received it (ms, shared clock). */
  receivedAt: number;
}

export type RowResult = { ok: true; attempts: number; startMs: number; commitMs: number } | { ok: false; attempts: number; code: string; message: string };

export interface BatchWriteResult {
  rows: RowResult[];
  /** Every transaction tried: size, committed or not, duration of committed ones (ms). */
  tx: { size: number; ok: boolean; durationMs: number }[];
  splits: number;
  retries: number;
  /** Transactions that failed with SQLITE_BUSY / SQLITE_LOCKED. */
  busyHits: number;
}

export interface BatchWriter {
  write(rows: readonly WriteRow[]): BatchWriteResult;
}

export function createBatchWriter(db: DB, policy: SplitPolicy = DEFAULT_SPLIT_POLICY): BatchWriter {
  const updCard = db.prepare('UPDATE cards SET col = ?, title = ?, version = version + 1, updated_at = ? WHERE id = ?');
  const insEvent = db.prepare(
    'INSERT INTO card_events (board_id, seq, card_id, user_id, client_msg_id, col, title, at, committed_at, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const raiseSeq = db.prepare('UPDATE boards SET seq = ? WHERE id = ? AND seq < ?');

  const raiseBoardSeqs = (rows: readonly WriteRow[]): void => {
    const max = new Map<number, number>();
    for (const r of rows) if ((max.get(r.board) ?? 0) < r.seq) max.set(r.board, r.seq);
    for (const [b, s] of max) raiseSeq.run(s, b, s);
  };

  const tryCommit = (rows: readonly WriteRow[]) => {
    const startMs = nowMs();
    try {
      db.exec('BEGIN IMMEDIATE');
      const t = nowMs();
      for (const r of rows) {
        const c = updCard.run(r.column, r.title, t, r.card);
        if (c.changes !== 1) throw Object.assign(new Error(`card ${r.card} not found`), { code: 'WAMI_NO_CARD' });
        insEvent.run(r.board, r.seq, r.card, r.user, r.id, r.column, r.title, r.at, t, r.sentAt);
      }
      raiseBoardSeqs(rows);
      db.exec('COMMIT');
      return { ok: true as const, startMs, endMs: nowMs() };
    } catch (error) {
      if (db.inTransaction) {
        try {
          db.exec('ROLLBACK');
        } catch {
          // the transaction may already be rolled back by SQLite
        }
      }
      return { ok: false as const, error };
    }
  };

  return {
    write(rows) {
      const r = commitWithSplit(rows, tryCommit, policy);
      const failed = r.outcomes.some((o) => !o.ok);
      if (failed) {
        // seqs of rows that finally failed were already handed out (and broadcast): keep boards.seq
        // past them so a restart never reuses a seq.
        // (with several writers on the file, a BUSY here is waited out like in commitWithSplit)
        const bw = policy.busyWait;
        const since = bw?.now() ?? 0;
        for (let k = 0; ; k++) {
          try {
            db.exec('BEGIN IMMEDIATE');
            raiseBoardSeqs(rows);
            db.exec('COMMIT');
            break;
          } catch (e) {
            if (db.inTransaction) db.exec('ROLLBACK');
            if (!bw || !isBusyError(e) || bw.now() - since >= bw.maxMs) break;
            bw.sleep(Math.min(BUSY_BACKOFF_MAX_MS, BUSY_BACKOFF_FIRST_MS * 2 ** Math.min(k, 16)));
          }
        }
      }
      return {
        rows: r.outcomes.map(
          (o): RowResult =>
            o.ok
              ? { ok: true, attempts: o.attempts, startMs: o.startMs, commitMs: o.endMs - o.startMs }
              : {
                  ok: false,
                  attempts: o.attempts,
                  code: sqliteCode(o.error) || 'ERROR',
                  message: String((o.error as Error)?.message ?? o.error),
                },
        ),
        tx: r.tx.map((t) => ({ size: t.size, ok: t.ok, durationMs: t.durationMs })),
        splits: r.splits,
        retries: r.retries,
        busyHits: r.tx.filter((t) => !t.ok && isBusyError(t.error)).length,
      };
    },
  };
}
