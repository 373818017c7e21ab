/**
 * The seq lease of the batched design: a seq once broadcast is never given to another update, not
 * after a crash, a failed write or a restart (protocol/README.md section 4). Broadcast comes before
 * commit, so `boards.seq` alone cannot say which seqs members have already seen; the writer keeps a
 * durable high-water mark per board, committed ahead of the seqs handed out:
 *
 * - table `seq_leases(board_id INTEGER PRIMARY KEY, high INTEGER NOT NULL)`; `boards.seq` keeps its
 *   meaning (the highest seq of a committed batch, failed rows included);
 * - invariant: a board's seq is handed out (broadcast) only if it is <= the board's committed `high`;
 * - start, before any socket: last = max(boards.seq, high), next seq last + 1, and `high` committed
 *   as last + block;
 * - extend: in the same transaction as a batch, every board whose headroom (high − highest seq
 *   handed out) fell below block / 2 gets high = that seq + block;
 * - hold: a board at its high holds its new updates (no seq, no broadcast) until a lease commits;
 * - release, on a graceful stop: high = max(boards.seq, highest seq handed out), so a clean restart
 *   leaves no gap; after a crash the restart skips to above `high` (a gap, never reuse).
 *
 * The same scheme, with the same numbers, as the Free Pascal server (servers/pascal/README.md,
 * "Seq lease"). Pure: the arithmetic only; the SQL is in writer-core.ts.
 */

/** Seqs leased per board ahead of the broadcasts (`--seq-lease-block`). */
export const DEFAULT_SEQ_LEASE_BLOCK = 1000;

export const SEQ_LEASES_SQL = 'CREATE TABLE IF NOT EXISTS seq_leases (board_id INTEGER PRIMARY KEY, high INTEGER NOT NULL)';
/** Raises a board's lease (never lowers it). */
export const LEASE_UPSERT_SQL = 'INSERT INTO seq_leases (board_id, high) VALUES (?, ?) ON CONFLICT(board_id) DO UPDATE SET high = MAX(high, excluded.high)';
/** Sets a board's lease to max(the given seq, boards.seq): the release on a graceful stop. Parameters: board, seq, board. */
export const LEASE_RELEASE_SQL =
  'INSERT INTO seq_leases (board_id, high) VALUES (?, MAX(?, (SELECT seq FROM boards WHERE id = ?))) ON CONFLICT(board_id) DO UPDATE SET high = excluded.high';

export interface LeaseStart {
  /** The highest seq counted as handed out: the board's next seq is last + 1. */
  last: number;
  /** The lease committed at start. */
  high: number;
}

/** A board at start: from its boards.seq and its lease (0 when it has no row yet). */
export function leaseAtStart(boardSeq: number, leaseHigh: number, block: number): LeaseStart {
  const last = Math.max(boardSeq, leaseHigh);
  return { last, high: last + block };
}

/** Whether the seq after `last` may be handed out under the committed lease `high`. */
export function canHandOut(last: number, high: number): boolean {
  return last + 1 <= high;
}

/**
 * The lease a batch commits for a board whose highest seq handed out is `maxHanded` and whose
 * committed lease is `high`: maxHanded + block when the headroom fell below block / 2, else null.
 */
export function leaseGrant(high: number, maxHanded: number, block: number): number | null {
  return (high - maxHanded) * 2 < block ? maxHanded + block : null;
}

/** The lease after a graceful stop: the highest seq handed out or stored, so a clean restart has no gap. */
export function leaseRelease(boardSeq: number, lastHanded: number): number {
  return Math.max(boardSeq, lastHanded);
}
