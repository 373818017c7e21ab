/**
 * The board registry both variants load at start: which boards exist (with their current `seq`)
 * and which board owns each card. Cards never move between boards, so ownership (`UNKNOWN_CARD`)
 * is checked from RAM, without SQL on the hot path.
 */
import type { DB } from './db.js';

/** Card id -> board id. Dense ids use a typed array (4 bytes a card); sparse ids fall back to a Map. */
export class CardIndex {
  private constructor(
    private readonly dense: Int32Array | null,
    private readonly sparse: Map<number, number> | null,
    readonly size: number,
  ) {}

  static fromPairs(pairs: Iterable<readonly [card: number, board: number]>): CardIndex {
    const list = [...pairs];
    let max = 0;
    for (const [c] of list) if (c > max) max = c;
    if (max <= 4 * list.length + 1024 && max < 2 ** 31) {
      const a = new Int32Array(max + 1);
      for (const [c, b] of list) a[c] = b;
      return new CardIndex(a, null, list.length);
    }
    return new CardIndex(null, new Map(list.map(([c, b]) => [c, b])), list.length);
  }

  static load(db: DB): CardIndex {
    const rows = db.prepare('SELECT id, board_id FROM cards').raw(true).all() as [number, number][];
    return CardIndex.fromPairs(rows);
  }

  /** The board owning `card`, or undefined for a card that does not exist. */
  boardOf(card: number): number | undefined {
    if (this.dense) {
      const b = card >= 0 && card < this.dense.length ? this.dense[card] : 0;
      return b === undefined || b === 0 ? undefined : b;
    }
    return this.sparse!.get(card);
  }
}

/** Board id -> current seq (boards.seq). */
export function loadBoardSeqs(db: DB): Map<number, number> {
  const rows = db.prepare('SELECT id, seq FROM boards').raw(true).all() as [number, number][];
  return new Map(rows);
}

export interface BoardView {
  id: number;
  cards: { id: number; column: string; title: string; version: number }[];
}

/** Prepared reader for `GET /boards/:id`: the board's cards from SQLite, or null for an unknown board. */
export function boardReader(db: DB): (id: number) => BoardView | null {
  const board = db.prepare('SELECT id FROM boards WHERE id = ?').pluck(true);
  const cards = db.prepare('SELECT id, col AS "column", title, version FROM cards WHERE board_id = ? ORDER BY id');
  return (id) => {
    if (board.get(id) === undefined) return null;
    return { id, cards: cards.all(id) as BoardView['cards'] };
  };
}
