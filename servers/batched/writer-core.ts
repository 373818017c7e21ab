/**
 * The batched writer's SQL, in-process and synchronous: one transaction per (sub-)batch with, per
 * update, `UPDATE cards` + `INSERT INTO card_events`, and `boards.seq` raised to the batch's
 * highest seq in the same transaction, and the seq leases the batch extends (lease.ts) in the first
 * transaction that commits. Driven by `commitWithSplit` (retry, then bisect). Also the lease at
 * start and its release on a graceful stop. Runs on the writer thread (writer-thread.ts); tests call
 * it directly on a real file.
 */
import { nowMs } from '../../protocol/clock.js';
import type { DB } from '../common/db.js';
import type { UpdateRow } from '../common/rows.js';
import { BUSY_BACKOFF_FIRST_MS, BUSY_BACKOFF_MAX_MS, commitWithSplit, DEFAULT_SPLIT_POLICY, isBusyError, sqliteCode, type SplitPolicy } from './batching.js';
import { LEASE_RELEASE_SQL, LEASE_UPSERT_SQL, leaseAtStart, SEQ_LEASES_SQL } from './lease.js';

/** [board, high]: a lease to commit with a batch. */
export type LeaseGrant = [board: number, high: number];
/** [board, last seq handed out, committed lease]: a board as the writer opened it. */
export type BoardLease = [board: number, last: number, high: number];

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
  /** Whether the grants passed with the batch were committed (false also when none were passed). */
  leasesCommitted: boolean;
}

export interface BatchWriter {
  /** Commits `rows` and the lease `grants` (in the first transaction that commits). */
  write(rows: readonly WriteRow[], grants?: readonly LeaseGrant[]): BatchWriteResult;
  /**
   * The lease at start, in one write transaction (creates seq_leases if missing): every board (or
   * those `owns` keeps) with last = max(boards.seq, high) and high committed as last + block.
   */
  openLeases(block: number, owns?: (board: number) => boolean): BoardLease[];
  /** The release on a graceful stop: high = max(boards.seq, last) per [board, last]. Throws if it cannot commit. */
  releaseLeases(finals: readonly (readonly [board: number, last: number])[]): void;
}

export function createBatchWriter(db: DB, policy: SplitPolicy = DEFAULT_SPLIT_POLICY): BatchWriter {
  const updCard = db.prepare('UPDATE cards SET col = ?, title = ?, version = version + 1, updated_at = ? WHERE id = ?');
  const insEvent = db.prepare(
    'INSERT INTO card_events (board_id, seq, card_id, user_id, client_msg_id, col, title, at, committed_at, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const raiseSeq = db.prepare('UPDATE boards SET seq = ? WHERE id = ? AND seq < ?');
  db.exec(SEQ_LEASES_SQL);
  const leaseUpsert = db.prepare(LEASE_UPSERT_SQL);
  const leaseRelease = db.prepare(LEASE_RELEASE_SQL);
  /** The grants of the batch being written, until a transaction carrying them commits. */
  let pendingGrants: readonly LeaseGrant[] = [];
  const writeGrants = (): void => {
    for (const [b, high] of pendingGrants) leaseUpsert.run(b, high);
  };

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
      const withGrants = pendingGrants.length > 0;
      if (withGrants) writeGrants();
      db.exec('COMMIT');
      if (withGrants) pendingGrants = [];
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

  /** One small write transaction, with SQLITE_BUSY from another writer waited out as in commitWithSplit. */
  const smallTx = (body: () => void): boolean => {
    const bw = policy.busyWait;
    const since = bw?.now() ?? 0;
    for (let k = 0; ; k++) {
      try {
        db.exec('BEGIN IMMEDIATE');
        body();
        db.exec('COMMIT');
        return true;
      } catch (e) {
        if (db.inTransaction) db.exec('ROLLBACK');
        if (!bw || !isBusyError(e) || bw.now() - since >= bw.maxMs) return false;
        bw.sleep(Math.min(BUSY_BACKOFF_MAX_MS, BUSY_BACKOFF_FIRST_MS * 2 ** Math.min(k, 16)));
      }
    }
  };

  return {
    openLeases(block, owns) {
      const out: BoardLease[] = [];
      const read = db.prepare('SELECT b.id, b.seq, COALESCE(l.high, 0) FROM boards b LEFT JOIN seq_leases l ON l.board_id = b.id ORDER BY b.id').raw(true);
      db.exec('BEGIN IMMEDIATE');
      try {
        for (const [id, seq, high] of read.all() as [number, number, number][]) {
          if (owns && !owns(id)) continue;
          const l = leaseAtStart(seq, high, block);
          leaseUpsert.run(id, l.high);
          out.push([id, l.last, l.high]);
        }
        db.exec('COMMIT');
      } catch (e) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw e;
      }
      return out;
    },
    releaseLeases(finals) {
      let error: unknown = null;
      const ok = smallTx(() => {
        try {
          for (const [b, last] of finals) leaseRelease.run(b, last, b);
        } catch (e) {
          error = e;
          throw e;
        }
      });
      if (!ok) throw error ?? new Error('the seq leases could not be released (database busy)');
    },
    write(rows, grants = []) {
      pendingGrants = grants;
      const r = commitWithSplit(rows, tryCommit, policy);
      const failed = r.outcomes.some((o) => !o.ok);
      if (failed || rows.length === 0) {
        // seqs of rows that finally failed were already handed out (and broadcast): keep boards.seq
        // past them so that they stay gaps, and commit the leases if no sub-batch carried them
        // (a flush with no rows only extends leases; it is tried 1 + retries times).
        for (let t = 0; t <= (rows.length === 0 ? policy.retries : 0); t++) {
          if (rows.length === 0 && pendingGrants.length === 0) break;
          const withGrants = pendingGrants.length > 0;
          if (
            smallTx(() => {
              raiseBoardSeqs(rows);
              if (withGrants) writeGrants();
            })
          ) {
            if (withGrants) pendingGrants = [];
            break;
          }
        }
      }
      const leasesCommitted = grants.length > 0 && pendingGrants.length === 0;
      pendingGrants = [];
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
        leasesCommitted,
      };
    },
  };
}
