/**
 * Delivery accounting, joined across workers (senders and receivers of a board may live in
 * different workers, or on different hosts). Pure: the coordinator feeds it what the workers saw.
 *
 * Definitions (per board b, W_b = the fleet's members of b that were connected for the whole
 * window: open before the schedule began and still open at the end of the drain):
 *   expected  = Σ over acked updates u on b of (W_b − 1 if u's sender is one of them, else W_b)
 *   received  = distinct receipts of acked updates by those whole-window members (duplicates
 *               excluded), so missing = expected − received
 *   duplicate / outOfOrder: counted per socket by the workers (seq seen twice / seq below the last)
 *   phantom   = distinct broadcasts whose (from, id) was never acked and never answered with an error
 */
import { boardMembers, boardOfUser } from '../protocol/layout.js';
import type { DeliveryReport } from '../model/fleet-result.js';

/** [board, seq, from, id, receipts by whole-window sockets of the reporting worker, the update's sentAt] */
export type SeenEntry = [number, number, number, string, number, number?];

export interface DeliveryJoinInput {
  firstUser: number;
  connections: number;
  perBoard: number;
  /** Users of the fleet that were not connected for the whole window. */
  notWholeUsers: Iterable<number>;
  /** [user, id, seq, …] of every acked update. */
  acked: Iterable<readonly [number, string, number, ...unknown[]]>;
  /** [user, id, code] of every update answered with an error. */
  errored: Iterable<readonly [number, string, string]>;
  /** What each worker's sockets received. */
  seen: Iterable<Iterable<SeenEntry>>;
  duplicate: number;
  outOfOrder: number;
}

export interface DeliveryJoin {
  report: DeliveryReport;
  /**
   * The ledger's `seen`: [from, id, board, seq, sentAt?] of every distinct broadcast, and of every
   * other update seen under a (board, seq) already taken (a reused seq), so the audit sees both.
   */
  ledgerSeen: Array<[number, string, number, number, number?]>;
  /** Two different updates under one (board, seq), or one update under two seqs: a server bug. */
  seqConflicts: number;
}

export function joinDelivery(input: DeliveryJoinInput): DeliveryJoin {
  const { firstUser, connections, perBoard } = input;
  const notWhole = new Set(input.notWholeUsers);
  const notWholeByBoard = new Map<number, number>();
  for (const u of notWhole) {
    if (u < firstUser || u >= firstUser + connections) continue;
    const b = boardOfUser(u, perBoard);
    notWholeByBoard.set(b, (notWholeByBoard.get(b) ?? 0) + 1);
  }
  const whole = (b: number): number => boardMembers(b, perBoard, firstUser, connections) - (notWholeByBoard.get(b) ?? 0);
  const inFleet = (u: number): boolean => u >= firstUser && u < firstUser + connections;

  let seqConflicts = 0;
  let expected = 0;
  // board -> seq -> [from, id, expected recipients]
  const ackedAt = new Map<number, Map<number, [number, string, number]>>();
  const ackedKeys = new Set<string>();
  for (const [u, id, seq] of input.acked) {
    const b = boardOfUser(u, perBoard);
    let m = ackedAt.get(b);
    if (!m) ackedAt.set(b, (m = new Map()));
    if (m.has(seq)) {
      seqConflicts++;
      continue;
    }
    const exp = Math.max(0, whole(b) - (inFleet(u) && !notWhole.has(u) ? 1 : 0));
    m.set(seq, [u, id, exp]);
    ackedKeys.add(`${u}|${id}`);
    expected += exp;
  }
  const erroredKeys = new Set<string>();
  for (const [u, id] of input.errored) erroredKeys.add(`${u}|${id}`);

  // Merge what the workers saw: (board, seq) -> [from, id, receipts, sentAt]
  const seen = new Map<number, Map<number, [number, string, number, number | undefined]>>();
  const ledgerSeen: Array<[number, string, number, number, number?]> = [];
  const conflicting = new Set<string>();
  for (const part of input.seen) {
    for (const [b, seq, from, id, n, sentAt] of part) {
      let m = seen.get(b);
      if (!m) seen.set(b, (m = new Map()));
      const cur = m.get(seq);
      if (!cur) m.set(seq, [from, id, n, sentAt]);
      else if (cur[0] !== from || cur[1] !== id) {
        // the other update under this seq goes to the ledger too (once), for the audit's seqReused
        const k = `${b}|${seq}|${from}|${id}`;
        if (!conflicting.has(k)) {
          conflicting.add(k);
          seqConflicts++;
          ledgerSeen.push(sentAt === undefined ? [from, id, b, seq] : [from, id, b, seq, sentAt]);
        }
      } else cur[2] += n;
    }
  }

  let received = 0;
  let phantom = 0;
  for (const [b, m] of seen) {
    const acks = ackedAt.get(b);
    for (const [seq, [from, id, n, sentAt]] of m) {
      ledgerSeen.push(sentAt === undefined ? [from, id, b, seq] : [from, id, b, seq, sentAt]);
      const a = acks?.get(seq);
      if (a && a[0] === from && a[1] === id) {
        received += Math.min(n, a[2]);
        continue;
      }
      const key = `${from}|${id}`;
      if (a || ackedKeys.has(key)) {
        seqConflicts++;
        continue;
      }
      if (!erroredKeys.has(key)) phantom++;
    }
  }
  ledgerSeen.sort((x, y) => x[2] - y[2] || x[3] - y[3]);
  return {
    report: { expected, received, missing: expected - received, duplicate: input.duplicate, outOfOrder: input.outOfOrder, phantom },
    ledgerSeen,
    seqConflicts,
  };
}
