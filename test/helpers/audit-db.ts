/** Real SQLite files written as the servers write them, with the ledger a fleet would have kept. */
import type { Ledger } from '../../model/fleet-result.js';
import type { StoredEvent, StoredState } from '../../runner/audit.js';
import { openDb } from '../../servers/common/db.js';

/** Writes updates exactly as a server does: boards.seq + 1, one cards UPDATE, one card_events INSERT. */
export function simulate(file: string, updates: number, boards: number, cardsPerBoard: number, usersPerBoard: number): Ledger {
  const db = openDb(file);
  const ledger: Ledger = { acked: [], errored: [], unanswered: [], seen: [] };
  const nextSeq = db.prepare('UPDATE boards SET seq = seq + 1 WHERE id = ? RETURNING seq').pluck();
  const upd = db.prepare('UPDATE cards SET col = ?, title = ?, version = version + 1, updated_at = ? WHERE id = ? AND board_id = ?');
  const ins = db.prepare(
    'INSERT INTO card_events (board_id, seq, card_id, user_id, client_msg_id, col, title, at, committed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const cols = ['backlog', 'todo', 'doing', 'review', 'done'];
  db.transaction(() => {
    for (let i = 0; i < updates; i++) {
      const board = (i % boards) + 1;
      const user = (board - 1) * usersPerBoard + (i % usersPerBoard);
      const card = (board - 1) * cardsPerBoard + ((i * 7) % cardsPerBoard) + 1;
      const id = `u${user}-m${i}`;
      const col = cols[i % cols.length]!;
      const title = `title ${i}`;
      const seq = nextSeq.get(board) as number;
      upd.run(col, title, i + 0.5, card, board);
      ins.run(board, seq, card, user, id, col, title, i, i + 0.5);
      ledger.acked.push([user, id, seq]);
      ledger.seen.push([user, id, board, seq]);
    }
  })();
  db.close();
  return ledger;
}

/**
 * A clean run on two boards: board 1 (cards 1, 2; seqs 1..3), board 2 (card 3; seqs 1..2). Each card
 * row is its last event's (col, title) and its version is its number of events; every update acked
 * with its seq and seen with its board and seq.
 */
export function fixture(): { stored: StoredState; ledger: Ledger } {
  const stored: StoredState = {
    boards: [
      { id: 1, seq: 3 },
      { id: 2, seq: 2 },
    ],
    cards: [
      { id: 1, board: 1, col: 'doing', title: 'A2', version: 2 },
      { id: 2, board: 1, col: 'done', title: 'B1', version: 1 },
      { id: 3, board: 2, col: 'todo', title: 'C2', version: 2 },
    ],
    events: [
      { board: 1, seq: 1, card: 1, user: 10, clientMsgId: 'a', col: 'todo', title: 'A1' },
      { board: 1, seq: 2, card: 1, user: 11, clientMsgId: 'b', col: 'doing', title: 'A2' },
      { board: 1, seq: 3, card: 2, user: 10, clientMsgId: 'c', col: 'done', title: 'B1' },
      { board: 2, seq: 1, card: 3, user: 20, clientMsgId: 'd', col: 'todo', title: 'C1' },
      { board: 2, seq: 2, card: 3, user: 21, clientMsgId: 'e', col: 'todo', title: 'C2' },
    ],
  };
  const ledger: Ledger = {
    acked: [
      [10, 'a', 1],
      [11, 'b', 2],
      [10, 'c', 3],
      [20, 'd', 1],
      [21, 'e', 2],
    ],
    errored: [],
    unanswered: [],
    seen: [
      [10, 'a', 1, 1],
      [11, 'b', 1, 2],
      [10, 'c', 1, 3],
      [20, 'd', 2, 1],
      [21, 'e', 2, 2],
    ],
  };
  return { stored, ledger };
}

/** A stored event of board `board` at `seq` (card 1, user 1, id "board-seq"), with its commit time if given. */
export const storedEvent = (board: number, seq: number, committedAt?: number): StoredEvent => ({
  board,
  seq,
  card: 1,
  user: 1,
  clientMsgId: `${board}-${seq}`,
  col: 'todo',
  title: '',
  ...(committedAt === undefined ? {} : { committedAt }),
});

/** A run's audit that found nothing wrong, with `eventsStored` events in the file. */
export const cleanAudit = (eventsStored: number) => ({
  lostAcked: 0,
  storedNotAcked: 0,
  phantom: 0,
  notBroadcast: 0,
  finalStateMismatches: 0,
  seqGaps: 0,
  eventsStored,
  ok: true,
  examples: [] as string[],
});
