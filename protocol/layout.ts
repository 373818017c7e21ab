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
