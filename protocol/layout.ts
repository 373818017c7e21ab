/**
 * The seeded database's layout, shared by the seeder, the fleet and the audit: boards are numbered
 * 1..boards and board b owns the cards (b-1)*cardsPerBoard + 1 .. b*cardsPerBoard.
 * User u belongs to board floor(u / perBoard) + 1.
 */

/** Card id of the k-th card (0-based) of `board`. */
export function cardId(board: number, k: number, cardsPerBoard: number): number {
  return (board - 1) * cardsPerBoard + k + 1;
}

/** The board a card belongs to. */
export function boardOfCard(card: number, cardsPerBoard: number): number {
  return Math.floor((card - 1) / cardsPerBoard) + 1;
}

/** The board user `u` (0-based) belongs to. */
export function boardOfUser(u: number, perBoard: number): number {
  return Math.floor(u / perBoard) + 1;
}

/** Members of board b among the users [firstUser, firstUser + connections). */
export function boardMembers(b: number, perBoard: number, firstUser: number, connections: number): number {
  const lo = Math.max((b - 1) * perBoard, firstUser);
  const hi = Math.min(b * perBoard, firstUser + connections);
  return Math.max(0, hi - lo);
}

/** Boards that hold at least two of users 0..connections-1 (only there can an update be broadcast to someone). */
export function boardsWithOtherMembers(connections: number, perBoard: number): Set<number> {
  const out = new Set<number>();
  if (connections <= 0) return out;
  for (let b = 1; b <= boardOfUser(connections - 1, perBoard); b++) if (boardMembers(b, perBoard, 0, connections) >= 2) out.add(b);
  return out;
}
