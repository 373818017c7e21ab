/**
 * How a per-request worker delivers broadcasts, pure (no I/O): other processes' updates arrive only
 * through the poll of `card_events` (in commit order, card_events.id), this process's own commits
 * through `committed`. Per board with members here, it tracks the last seq delivered, so every
 * member gets each of the board's updates once, in seq order, and the sender never gets its own.
 *  - own commit with the next seq: delivered at once (no poll latency);
 *  - own commit ahead of an unseen seq (another process committed in between): remembered, and
 *    delivered by the poll in order, still skipping the sender;
 *  - polled rows at or below the last seq delivered: skipped (already delivered).
 */

export interface FeedRow {
  board: number;
  seq: number;
  /** Builds the broadcast frame (only called when the row is delivered). */
  frame: () => string;
}

interface BoardFeed<M> {
  last: number;
  members: Set<M>;
  /** seq -> sending member, for own commits not yet deliverable. */
  own: Map<number, M>;
}

export type Deliver<M> = (members: ReadonlySet<M>, except: M | null, frame: string) => void;

export class BoardFeeds<M> {
  private readonly boards = new Map<number, BoardFeed<M>>();
  /** Polled rows that skipped over missing seqs (seqs never stored, e.g. a phantom of another writer). */
  gaps = 0;

  constructor(private readonly deliver: Deliver<M>) {}

  /** Adds a member; the first member of a board starts its feed after the board's current seq. */
  join(board: number, member: M, currentSeq: () => number): void {
    let b = this.boards.get(board);
    if (!b) {
      b = { last: currentSeq(), members: new Set(), own: new Map() };
      this.boards.set(board, b);
    }
    b.members.add(member);
  }

  leave(board: number, member: M): void {
    const b = this.boards.get(board);
    if (!b) return;
    b.members.delete(member);
    if (b.members.size === 0) this.boards.delete(board);
  }

  /** The board's last delivered seq here, or undefined without members. */
  lastSeq(board: number): number | undefined {
    return this.boards.get(board)?.last;
  }

  get activeBoards(): number {
    return this.boards.size;
  }

  /** This process committed `seq` on `board` for `sender`. */
  committed(board: number, seq: number, sender: M, frame: () => string): void {
    const b = this.boards.get(board);
    if (!b || seq <= b.last) return;
    if (seq === b.last + 1 && b.own.size === 0) {
      b.last = seq;
      this.deliver(b.members, sender, frame());
    } else {
      b.own.set(seq, sender);
    }
  }

  /** Rows the poll read, in commit order. */
  polled(rows: Iterable<FeedRow>): void {
    for (const r of rows) {
      const b = this.boards.get(r.board);
      if (!b) continue;
      if (r.seq <= b.last) {
        b.own.delete(r.seq);
        continue;
      }
      if (r.seq !== b.last + 1) this.gaps++;
      b.last = r.seq;
      const except = b.own.get(r.seq) ?? null;
      b.own.delete(r.seq);
      this.deliver(b.members, except, r.frame());
    }
  }
}
