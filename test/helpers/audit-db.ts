/** Real SQLite files written as the servers write them, with the ledger a fleet would have kept. */
import type { Ledger } from '../../model/fleet-result.js';
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
