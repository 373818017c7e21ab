/**
 * SQLite access shared by both variants: opening with the seed's pragmas, the schema, and seeding.
 * Both variants persist exactly the same rows per update (one `cards` UPDATE + one `card_events` INSERT).
 */
import Database from 'better-sqlite3';
import { accessSync, constants, existsSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { fsProblem, UsageError } from '../../model/errors.js';
import { COLUMNS } from '../../protocol/messages.js';
import { cardId } from '../../protocol/layout.js';

export type DB = Database.Database;

/** The pragmas of the design note, applied identically by every connection of every variant. */
export const PRAGMAS = {
  journal_mode: 'WAL',
  synchronous: 'NORMAL',
  cache_size: -64000,
} as const;

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS boards (
  id    INTEGER PRIMARY KEY,
  name  TEXT NOT NULL,
  seq   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS cards (
  id         INTEGER PRIMARY KEY,
  board_id   INTEGER NOT NULL REFERENCES boards(id),
  col        TEXT NOT NULL,
  title      TEXT NOT NULL,
  version    INTEGER NOT NULL DEFAULT 0,
  updated_at REAL
);
CREATE INDEX IF NOT EXISTS cards_board ON cards(board_id);
CREATE TABLE IF NOT EXISTS card_events (
  id            INTEGER PRIMARY KEY,
  board_id      INTEGER NOT NULL,
  seq           INTEGER NOT NULL,
  card_id       INTEGER NOT NULL,
  user_id       INTEGER NOT NULL,
  client_msg_id TEXT NOT NULL,
  col           TEXT NOT NULL,
  title         TEXT NOT NULL,
  at            REAL NOT NULL,
  committed_at  REAL NOT NULL,
  -- the update's sentAt: per-request workers rebuild broadcast frames from these rows
  sent_at       REAL NOT NULL DEFAULT 0,
  UNIQUE(board_id, seq),
  UNIQUE(user_id, client_msg_id)
);
-- batched: the seq lease per board (servers/batched/lease.ts): no seq above high was ever broadcast
CREATE TABLE IF NOT EXISTS seq_leases (
  board_id INTEGER PRIMARY KEY,
  high     INTEGER NOT NULL
);
`;

export interface OpenOptions {
  /** Open read-only (the audit, `/boards/:id` readers). Default false. */
  readonly?: boolean;
  /** SQLite busy_timeout in ms. Default 0 (the app handles SQLITE_BUSY itself). */
  busyTimeoutMs?: number;
}

/** Opens an existing database file with the shared pragmas. Throws if the file does not exist. */
export function openDb(file: string, opts: OpenOptions = {}): DB {
  if (!existsSync(file)) throw new Error(`database file not found: ${file} (create it with "wami-bench seed")`);
  const db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: true });
  if (!opts.readonly) db.pragma(`journal_mode = ${PRAGMAS.journal_mode}`);
  db.pragma(`synchronous = ${PRAGMAS.synchronous}`);
  db.pragma(`cache_size = ${PRAGMAS.cache_size}`);
  db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 0}`);
  return db;
}

const normalMaxPages = new WeakMap<DB, number>();

/**
 * Fault injection (`--fault-injection`, a `disk-full` fault): while on, the connection's
 * max_page_count is capped at the database's current size, so every write that needs a new page
 * fails with SQLITE_FULL ("database or disk is full"), as on a full disk; writes that fit in the
 * pages already there still succeed. Off restores the limit the connection had.
 */
export function setDiskFull(db: DB, on: boolean): void {
  if (on) {
    if (!normalMaxPages.has(db)) normalMaxPages.set(db, db.pragma('max_page_count', { simple: true }) as number);
    db.pragma('max_page_count = 1'); // SQLite raises it to the current page count
  } else {
    const normal = normalMaxPages.get(db);
    if (normal !== undefined) db.pragma(`max_page_count = ${normal}`);
    normalMaxPages.delete(db);
  }
}

export interface SeedOptions {
  boards: number;
  cardsPerBoard: number;
}

/**
 * Throws a UsageError in one line when a database cannot be created at `file`: its directory is
 * missing or not writable (SQLite writes `-wal` and `-shm` beside it), or the path is a directory.
 */
export function checkWritablePlace(file: string): void {
  const dir = dirname(file);
  try {
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw new UsageError(fsProblem(e, file, 'create'));
  }
  if (existsSync(file) && statSync(file).isDirectory()) throw new UsageError(`${file} is a directory: give a file name for the database`);
}

/** Creates a fresh database at `file` (removing any old one and its -wal/-shm) and seeds it. */
export function seedDatabase(file: string, { boards, cardsPerBoard }: SeedOptions): { boards: number; cards: number } {
  if (!Number.isSafeInteger(boards) || boards < 1) throw new RangeError(`boards must be a positive integer, got ${boards}`);
  if (!Number.isSafeInteger(cardsPerBoard) || cardsPerBoard < 1) {
    throw new RangeError(`cardsPerBoard must be a positive integer, got ${cardsPerBoard}`);
  }
  checkWritablePlace(file);
  for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
  const db = new Database(file);
  try {
    db.pragma(`journal_mode = ${PRAGMAS.journal_mode}`);
    db.pragma(`synchronous = ${PRAGMAS.synchronous}`);
    db.exec(SCHEMA_SQL);
    const insBoard = db.prepare('INSERT INTO boards (id, name, seq) VALUES (?, ?, 0)');
    const insCard = db.prepare('INSERT INTO cards (id, board_id, col, title, version, updated_at) VALUES (?, ?, ?, ?, 0, NULL)');
    db.transaction(() => {
      for (let b = 1; b <= boards; b++) {
        insBoard.run(b, `board ${b}`);
        for (let k = 0; k < cardsPerBoard; k++) {
          insCard.run(cardId(b, k, cardsPerBoard), b, COLUMNS[k % COLUMNS.length], `card ${k + 1} of board ${b}`);
        }
      }
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
  return { boards, cards: boards * cardsPerBoard };
}
