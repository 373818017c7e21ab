/**
 * The audit: after the server has stopped, compare what SQLite holds with what the fleet saw.
 *
 * `compareLedger` is the pure comparison over plain arrays (tested with exact numbers);
 * `readStoredState` is the thin SQLite reader; `auditDatabase` glues them.
 *
 * Classes (see AuditReport in model/result.ts):
 * - lostAcked: the fleet got an ack for (user, clientMsgId) but card_events has no such row, or has
 *   it with a different seq than the ack said. Fails the correctness gate.
 * - storedNotAcked: card_events has the row but the fleet has it errored, unanswered or not at all.
 * - phantom: a fleet socket received a broadcast of (from, clientMsgId) that is not stored, or is
 *   stored on another board/seq than the broadcast said. Fails the gate.
 * - notBroadcast: stored but no fleet socket saw it (only boards in `boardsWithOtherMembers`, when given).
 * - finalStateMismatches: cards whose (col, title) differ from their last event (highest seq), or whose
 *   version differs from the number of events stored for them, or with events stored on another board.
 *   Fails the gate.
 * - seqGaps: boards whose stored seqs are not exactly 1..boards.seq. Fails the gate (in a run with
 *   faults, the runner may excuse what the design documents; see runner/fault-loss.ts).
 * - seqReused: (board, seq) pairs given to more than one update: seen by a member with one id and
 *   stored with another, or seen (or acked) twice with different ids. Protocol v1 never allows it;
 *   fails the gate always.
 * - integrity: SQLite's own `PRAGMA integrity_check` of the file ("ok", or the problems it found:
 *   a corrupt page, an index that disagrees with its table). Anything but "ok" fails the gate always:
 *   rows read from a corrupt file prove nothing.
 */
import { readFileSync } from 'node:fs';
import type { Ledger } from '../model/fleet-result.js';
import { openDb } from '../servers/common/db.js';
import type { AuditReport } from '../model/result.js';

/** One card_events row, as the audit needs it. */
export interface StoredEvent {
  board: number;
  seq: number;
  card: number;
  user: number;
  clientMsgId: string;
  col: string;
  title: string;
  /** committed_at: when its transaction wrote it (the shared clock, ms). */
  committedAt?: number;
}

/** One cards row. */
export interface StoredCard {
  id: number;
  board: number;
  col: string;
  title: string;
  version: number;
}

/** One boards row. */
export interface StoredBoard {
  id: number;
  seq: number;
}

export interface StoredState {
  events: StoredEvent[];
  cards: StoredCard[];
  boards: StoredBoard[];
  /** `PRAGMA integrity_check`'s rows: `['ok']` for a sound file, else its first problems. Absent: not checked. */
  integrity?: string[];
}

/** At most this many problems are read from `PRAGMA integrity_check` (it stops after as many). */
export const INTEGRITY_MAX_ERRORS = 20;

export interface AuditOptions {
  /**
   * Boards that had at least one fleet socket besides the sender connected, so a stored update on
   * them should have been seen by some fleet socket. When given, notBroadcast counts only these
   * boards; when omitted, every board counts.
   */
  boardsWithOtherMembers?: Set<number>;
  /** At most this many example strings in the report. Default 10. */
  maxExamples?: number;
  /** The board of a fleet user (protocol/layout.ts), so an ack's seq is placed on its board even when its row is missing. */
  boardOfUser?: (user: number) => number;
  /** Also return the failing items themselves (`items`), for the fault report. Default false. */
  collect?: boolean;
}

/** The failing items, when asked for (AuditOptions.collect): ledger entries as the fleet wrote them. */
export interface AuditItems {
  lostAcked: Ledger['acked'];
  /** Seen broadcasts not stored (or stored elsewhere). */
  phantom: Ledger['seen'];
  /** Unanswered updates that are stored anyway. */
  storedUnanswered: Ledger['unanswered'];
}

/** Breakdown of storedNotAcked (an optional extra beside AuditReport). */
export interface StoredNotAckedDetail {
  /** Stored although the fleet got an error frame for it (the worse case: the client was told it failed). */
  errored: number;
  /** Stored, never answered (e.g. the ack was lost in a crash or the drain ended first). */
  unanswered: number;
  /** Stored, but the ledger does not know the update at all. */
  unknown: number;
}

/** AuditReport plus optional detail fields (structurally an AuditReport). */
export interface AuditReportDetailed extends AuditReport {
  storedNotAckedDetail: StoredNotAckedDetail;
  /** Acked updates stored with a different seq than acked (already counted in lostAcked). */
  ackedSeqMismatch: number;
  /** Each reused (board, seq): [board, seq]. */
  reusedSeqs: Array<[number, number]>;
  items?: AuditItems;
}

const SEP = '\u0000';
const key = (user: number, id: string): string => `${user}${SEP}${id}`;

/** Collects a few examples per class, then merges them in class order up to the limit. */
class Examples {
  private readonly byClass = new Map<string, string[]>();
  constructor(private readonly perClass: number) {}
  add(cls: string, text: string): void {
    let list = this.byClass.get(cls);
    if (!list) this.byClass.set(cls, (list = []));
    if (list.length < this.perClass) list.push(`${cls}: ${text}`);
  }
  merged(max: number): string[] {
    // Round-robin over classes so every failing class shows at least one example.
    const lists = [...this.byClass.values()];
    const out: string[] = [];
    for (let i = 0; out.length < max; i++) {
      let any = false;
      for (const l of lists) {
        const e = l[i];
        if (e !== undefined && out.length < max) {
          out.push(e);
          any = true;
        }
      }
      if (!any) break;
    }
    return out;
  }
}

const short = (s: string, n = 40): string => (s.length > n ? `${s.slice(0, n)}…` : s);

/**
 * Pure comparison of the stored rows with the fleet's ledger. Linear in the sizes of its inputs
 * (events indexed by user, then clientMsgId; flags per stored event for acked/seen).
 */
export function compareLedger(stored: StoredState, ledger: Ledger, opts: AuditOptions = {}): AuditReportDetailed {
  const maxExamples = opts.maxExamples ?? 10;
  const ex = new Examples(Math.max(1, maxExamples));
  const { events, cards, boards } = stored;

  // Index the stored events by user, then clientMsgId (nested maps: no key strings to build).
  // The UNIQUE(user_id, client_msg_id) constraint makes the pairs distinct.
  const storedIdx = new Map<number, Map<string, number>>();
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    let m = storedIdx.get(e.user);
    if (!m) storedIdx.set(e.user, (m = new Map()));
    m.set(e.clientMsgId, i);
  }
  const find = (user: number, id: string): StoredEvent | undefined => {
    const i = storedIdx.get(user)?.get(id);
    return i === undefined ? undefined : events[i];
  };
  const indexOf = (user: number, id: string): number | undefined => storedIdx.get(user)?.get(id);
  /** Per stored event: bit 1 acked, bit 2 seen by some fleet socket. */
  const flags = new Uint8Array(events.length);

  const items: AuditItems | undefined = opts.collect ? { lostAcked: [], phantom: [], storedUnanswered: [] } : undefined;
  // lostAcked (missing or wrong seq)
  let lostAcked = 0;
  let ackedSeqMismatch = 0;
  for (const a of ledger.acked) {
    const [user, id, seq] = a;
    const i = indexOf(user, id);
    if (i === undefined) {
      items?.lostAcked.push(a);
      lostAcked++;
      ex.add('lostAcked', `user ${user} msg ${short(id)} acked seq ${seq}, not stored`);
      continue;
    }
    flags[i]! |= 1;
    const e = events[i]!;
    if (e.seq !== seq) {
      items?.lostAcked.push(a);
      lostAcked++;
      ackedSeqMismatch++;
      ex.add('lostAcked', `user ${user} msg ${short(id)} acked seq ${seq}, stored as board ${e.board} seq ${e.seq}`);
    }
  }

  // Seen broadcasts, by (from, clientMsgId).
  let phantom = 0;
  for (const entry of ledger.seen) {
    const [from, id, board, seq] = entry;
    const i = indexOf(from, id);
    if (i === undefined) {
      items?.phantom.push(entry);
      phantom++;
      ex.add('phantom', `broadcast from user ${from} msg ${short(id)} board ${board} seq ${seq}, not stored`);
      continue;
    }
    flags[i]! |= 2;
    const e = events[i]!;
    if (e.board !== board || e.seq !== seq) {
      items?.phantom.push(entry);
      phantom++;
      ex.add('phantom', `broadcast from user ${from} msg ${short(id)} as board ${board} seq ${seq}, stored as board ${e.board} seq ${e.seq}`);
    }
  }

  // storedNotAcked, notBroadcast
  // Looked up below by the keys of stored events only, so an errored update that is not stored needs no filter.
  const errored = new Map<string, string>();
  for (const [user, id, code] of ledger.errored) errored.set(key(user, id), code);
  const unanswered = new Set<string>();
  for (const u of ledger.unanswered) {
    if (!find(u[0], u[1])) continue;
    unanswered.add(key(u[0], u[1]));
    items?.storedUnanswered.push(u);
  }
  const detail: StoredNotAckedDetail = { errored: 0, unanswered: 0, unknown: 0 };
  const members = opts.boardsWithOtherMembers;
  let notBroadcast = 0;
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    const f = flags[i]!;
    if ((f & 1) === 0) {
      const k = key(e.user, e.clientMsgId);
      const code = errored.get(k);
      if (code !== undefined) {
        detail.errored++;
        ex.add('storedNotAcked', `user ${e.user} msg ${short(e.clientMsgId)} stored (board ${e.board} seq ${e.seq}) but answered ${code}`);
      } else if (unanswered.has(k)) {
        detail.unanswered++;
        ex.add('storedNotAcked', `user ${e.user} msg ${short(e.clientMsgId)} stored (board ${e.board} seq ${e.seq}) but never answered`);
      } else {
        detail.unknown++;
        ex.add('storedNotAcked', `user ${e.user} msg ${short(e.clientMsgId)} stored (board ${e.board} seq ${e.seq}), unknown to the fleet`);
      }
    }
    if ((f & 2) === 0 && (!members || members.has(e.board))) {
      notBroadcast++;
      ex.add('notBroadcast', `user ${e.user} msg ${short(e.clientMsgId)} board ${e.board} seq ${e.seq} stored, seen by no fleet socket`);
    }
  }
  const storedNotAcked = detail.errored + detail.unanswered + detail.unknown;

  // Final state per card: last event by seq, and version == number of events.
  const lastByCard = new Map<number, StoredEvent>();
  const countByCard = new Map<number, number>();
  for (const e of events) {
    countByCard.set(e.card, (countByCard.get(e.card) ?? 0) + 1);
    const prev = lastByCard.get(e.card);
    if (!prev || e.seq > prev.seq) lastByCard.set(e.card, e);
  }
  const cardIds = new Set<number>();
  const boardOfCard = new Map<number, number>();
  const mismatched = new Set<number>();
  for (const c of cards) {
    cardIds.add(c.id);
    boardOfCard.set(c.id, c.board);
    const n = countByCard.get(c.id) ?? 0;
    const last = lastByCard.get(c.id);
    const problems: string[] = [];
    if (c.version !== n) problems.push(`version ${c.version} but ${n} events`);
    if (last && (last.col !== c.col || last.title !== c.title)) {
      problems.push(`row (${c.col}, "${short(c.title, 24)}") but last event seq ${last.seq} (${last.col}, "${short(last.title, 24)}")`);
    }
    if (problems.length > 0) {
      mismatched.add(c.id);
      ex.add('finalState', `card ${c.id}: ${problems.join('; ')}`);
    }
  }
  // Events of cards that do not exist or that were stored on another board than the card's
  // (each card counted once, however many problems it has).
  const reported = new Set<number>();
  for (const e of events) {
    if (reported.has(e.card)) continue;
    if (!cardIds.has(e.card)) {
      reported.add(e.card);
      mismatched.add(e.card);
      ex.add('finalState', `event board ${e.board} seq ${e.seq} for card ${e.card}, which does not exist`);
    } else if (boardOfCard.get(e.card) !== e.board) {
      reported.add(e.card);
      mismatched.add(e.card);
      ex.add('finalState', `event board ${e.board} seq ${e.seq} for card ${e.card} of board ${boardOfCard.get(e.card)}`);
    }
  }
  const finalStateMismatches = mismatched.size;

  // Seq gaps: per board, seqs must be exactly 1..boards.seq (UNIQUE(board_id, seq) makes them distinct).
  const perBoard = new Map<number, { n: number; min: number; max: number }>();
  for (const e of events) {
    const s = perBoard.get(e.board);
    if (!s) perBoard.set(e.board, { n: 1, min: e.seq, max: e.seq });
    else {
      s.n++;
      if (e.seq < s.min) s.min = e.seq;
      if (e.seq > s.max) s.max = e.seq;
    }
  }
  let seqGaps = 0;
  const boardIds = new Set<number>();
  for (const b of boards) {
    boardIds.add(b.id);
    const s = perBoard.get(b.id) ?? { n: 0, min: 1, max: 0 };
    if (s.n !== b.seq || s.max !== b.seq || s.min < 1) {
      seqGaps++;
      ex.add('seqGap', `board ${b.id}: boards.seq ${b.seq} but ${s.n} events stored${s.n > 0 ? `, seq ${s.min}..${s.max}` : ''}`);
    }
  }
  for (const [board, s] of perBoard) {
    if (!boardIds.has(board)) {
      seqGaps++;
      ex.add('seqGap', `board ${board}: ${s.n} events stored but no such board`);
    }
  }

  // Seq reuse: every sighting of a (board, seq) must name the same update (user, clientMsgId).
  const bySeq = new Map<number, Map<number, [number, string]>>();
  const reusedSeqs: Array<[number, number]> = [];
  const reusedKeys = new Map<number, Set<number>>();
  const sight = (board: number, seq: number, user: number, id: string, how: string): void => {
    let m = bySeq.get(board);
    if (!m) bySeq.set(board, (m = new Map()));
    const cur = m.get(seq);
    if (cur === undefined) {
      m.set(seq, [user, id]);
      return;
    }
    if (cur[0] === user && cur[1] === id) return;
    let r = reusedKeys.get(board);
    if (!r) reusedKeys.set(board, (r = new Set()));
    if (r.has(seq)) return;
    r.add(seq);
    reusedSeqs.push([board, seq]);
    ex.add('seqReused', `board ${board} seq ${seq}: user ${cur[0]} msg ${short(cur[1])}, and ${how} user ${user} msg ${short(id)}`);
  };
  for (const e of events) sight(e.board, e.seq, e.user, e.clientMsgId, 'stored as');
  for (const [from, id, board, seq] of ledger.seen) sight(board, seq, from, id, 'seen by a member as');
  for (const [user, id, seq] of ledger.acked) {
    const board = opts.boardOfUser?.(user) ?? find(user, id)?.board;
    if (board !== undefined) sight(board, seq, user, id, 'acked to');
  }
  const seqReused = reusedSeqs.length;

  const integrity = stored.integrity === undefined ? undefined : integrityVerdict(stored.integrity);
  if (integrity !== undefined && integrity !== 'ok') for (const p of stored.integrity!.slice(0, maxExamples)) ex.add('integrity', p);

  const ok = lostAcked === 0 && phantom === 0 && seqGaps === 0 && finalStateMismatches === 0 && seqReused === 0 && (integrity ?? 'ok') === 'ok';
  return {
    lostAcked,
    storedNotAcked,
    phantom,
    notBroadcast,
    finalStateMismatches,
    seqGaps,
    seqReused,
    eventsStored: events.length,
    ...(integrity !== undefined ? { integrity } : {}),
    ok,
    examples: ex.merged(maxExamples),
    storedNotAckedDetail: detail,
    ackedSeqMismatch,
    reusedSeqs,
    ...(items ? { items } : {}),
  };
}

/** `PRAGMA integrity_check`'s rows as the report's one string: "ok", or the problems joined by "; ". Pure. */
export function integrityVerdict(rows: readonly string[]): string {
  if (rows.length === 1 && rows[0] === 'ok') return 'ok';
  if (rows.length === 0) return 'integrity_check returned nothing';
  return rows.join('; ');
}

/** Reads boards, cards and card_events from a database file, read-only, and checks its integrity (SQLite's own check). */
export function readStoredState(dbFile: string): StoredState {
  const db = openDb(dbFile, { readonly: true });
  try {
    let integrity: string[];
    try {
      integrity = (db.pragma(`integrity_check(${INTEGRITY_MAX_ERRORS})`) as { integrity_check: string }[]).map((r) => String(r.integrity_check));
    } catch (e) {
      // a page too broken for the check to start (SQLITE_CORRUPT): that is its answer
      integrity = [`integrity_check could not run: ${(e as Error).message}`];
    }
    const boards: StoredBoard[] = [];
    for (const r of db.prepare('SELECT id, seq FROM boards').raw().iterate() as Iterable<[number, number]>) {
      boards.push({ id: r[0], seq: r[1] });
    }
    const cards: StoredCard[] = [];
    for (const r of db.prepare('SELECT id, board_id, col, title, version FROM cards').raw().iterate() as Iterable<[number, number, string, string, number]>) {
      cards.push({ id: r[0], board: r[1], col: r[2], title: r[3], version: r[4] });
    }
    const events: StoredEvent[] = [];
    const stmt = db.prepare('SELECT board_id, seq, card_id, user_id, client_msg_id, col, title, committed_at FROM card_events').raw();
    for (const r of stmt.iterate() as Iterable<[number, number, number, number, string, string, string, number]>) {
      events.push({ board: r[0], seq: r[1], card: r[2], user: r[3], clientMsgId: String(r[4]), col: r[5], title: r[6], committedAt: r[7] });
    }
    return { events, cards, boards, integrity };
  } finally {
    db.close();
  }
}

/**
 * Audits a database file (opened read-only; call after the server has stopped) against the fleet's
 * ledger. Throws only when the file cannot be opened or read (no such file, not a wami database).
 */
export function auditDatabase(dbFile: string, ledger: Ledger, opts: AuditOptions = {}): AuditReportDetailed {
  return compareLedger(readStoredState(dbFile), ledger, opts);
}

/** The seqs no update is stored with, per board: [board, first missing seq, how many, committed_at of the next stored seq (null: none after)]. */
export function seqGapsOf(stored: StoredState): Array<[number, number, number, number | null]> {
  const byBoard = new Map<number, StoredEvent[]>();
  for (const e of stored.events) {
    let l = byBoard.get(e.board);
    if (!l) byBoard.set(e.board, (l = []));
    l.push(e);
  }
  const out: Array<[number, number, number, number | null]> = [];
  for (const b of stored.boards) {
    const l = (byBoard.get(b.id) ?? []).sort((x, y) => x.seq - y.seq);
    let prev = 0;
    for (const e of l) {
      if (e.seq > prev + 1) out.push([b.id, prev + 1, e.seq - prev - 1, e.committedAt ?? null]);
      prev = e.seq;
    }
    if (b.seq > prev) out.push([b.id, prev + 1, b.seq - prev, null]);
  }
  return out;
}

/** Loads a ledger file written by the fleet (JSON of `Ledger`), checking its shape loosely. */
export function readLedger(file: string): Ledger {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as Partial<Ledger>;
  const arr = (k: keyof Ledger): never[] => {
    const v = raw[k];
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw new TypeError(`ledger ${file}: "${k}" is not an array`);
    return v as never[];
  };
  return { acked: arr('acked'), errored: arr('errored'), unanswered: arr('unanswered'), seen: arr('seen') };
}
