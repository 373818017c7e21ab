/**
 * Serving a database with a server variant, as a library: `startServer({ kind, options }, { dbFile })`
 * checks the database, fills in the variant's defaults (model/variants.ts) and starts it in this
 * process (per-request and batched shards fork their own processes). `wami-bench serve` is this
 * plus flags, the listening line and the signals; the runner starts servers as child processes
 * running that command instead, so that a server's resources are its own.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { availableParallelism } from 'node:os';
import Database from 'better-sqlite3';
import { errnoCode, firstLine, fsProblem, UsageError } from '../model/errors.js';
import {
  resolveBatchedOptions,
  resolveFloorOptions,
  resolvePerRequestOptions,
  type BatchedOptions,
  type FloorOptions,
  type PerRequestOptions,
  type VariantSet,
} from '../model/variants.js';
import { startBatchedServer } from '../servers/batched/server.js';
import { startShardedBatchedServer, startShardedServer } from '../servers/batched/sharded.js';
import { startFloorServer } from '../servers/floor/server.js';
import { startPerRequestServer } from '../servers/per-request/primary.js';

export interface ServeWhere {
  /** A seeded database (see seedDatabase / `wami-bench seed`). */
  dbFile: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 = any free port (default). */
  port?: number;
}

export interface RunningVariantServer {
  host: string;
  port: number;
  /** The options it runs with, every default filled in. */
  options: BatchedOptions | PerRequestOptions | FloorOptions;
  /** The processes holding its sockets besides this one (batched shards, per-request workers); empty for one process. */
  childPids: number[];
  /** Graceful stop; resolves with the problems met (a process that did not stop cleanly), empty when clean. */
  stop(): Promise<string[]>;
  /** Resolves with a message when the server can no longer serve (a writer thread, a shard or a worker died). */
  failed: Promise<string>;
}

/**
 * Checks that `file` is a wami-bench database this version can serve, and that the server may write
 * it (the file, and its directory for the `-wal` and `-shm` files); throws a one-line UsageError
 * saying what to do.
 */
export function checkDatabase(file: string): void {
  if (!existsSync(file)) throw new UsageError(`--db ${file}: no such file (create it with "wami-bench seed --db ${file}")`);
  try {
    if (statSync(file).isDirectory()) throw new UsageError(`--db ${file} is a directory: give the database file`);
    accessSync(file, constants.R_OK | constants.W_OK);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const code = errnoCode(e);
    if (code === 'EACCES' || code === 'EPERM')
      throw new UsageError(`--db ${file}: permission denied (the server reads and writes it: make it readable and writable)`);
    throw new UsageError(`--db ${fsProblem(e, file, 'read')}`);
  }
  try {
    accessSync(dirname(file), constants.W_OK | constants.X_OK);
  } catch {
    throw new UsageError(
      `--db ${file}: its directory ${dirname(file)} is not writable, and SQLite writes its -wal and -shm files there (move the file, or fix the permissions)`,
    );
  }
  let db: Database.Database | null = null;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const tables = new Set(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck(true).all() as string[]);
    const missing = ['boards', 'cards', 'card_events'].filter((t) => !tables.has(t));
    if (missing.length)
      throw new UsageError(`--db ${file}: not a wami-bench database (missing tables: ${missing.join(', ')}); create one with "wami-bench seed --db FILE"`);
    const cols = new Set(db.prepare('SELECT name FROM pragma_table_info(?)').pluck(true).all('card_events') as string[]);
    if (!cols.has('sent_at')) throw new UsageError(`--db ${file}: card_events has no sent_at column (made by an older seed); re-seed it`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const code = (e as { code?: string }).code;
    if (code === 'SQLITE_NOTADB')
      throw new UsageError(`--db ${file}: not an SQLite database, so not a wami-bench database; create one with "wami-bench seed --db FILE"`);
    throw new UsageError(`--db ${file}: cannot open as SQLite: ${firstLine(e)}`);
  } finally {
    db?.close();
  }
}

/** Starts a variant on a seeded database. Bad options or database: UsageError naming the problem. */
export async function startServer(v: VariantSet, where: ServeWhere): Promise<RunningVariantServer> {
  const base = { dbFile: where.dbFile, host: where.host ?? '127.0.0.1', port: where.port ?? 0 };
  if (v.kind === 'external')
    throw new UsageError('startServer serves the batched and per-request designs and the floor; an external server is started by its own command');
  if (v.kind === 'floor') {
    const o = { ...base, ...resolveFloorOptions(v.options) };
    checkDatabase(o.dbFile);
    const { dbFile: _d, host: _h, port: _p, ...options } = o;
    if (o.shards === 1) {
      const s = await startFloorServer(o);
      return { host: s.host, port: s.port, options, childPids: [], stop: s.stop, failed: s.failed };
    }
    const s = await startShardedServer({ kind: 'floor', opts: o });
    return { host: s.host, port: s.port, options, childPids: s.shardPids, stop: s.stop, failed: s.failed };
  }
  if (v.kind === 'batched') {
    const o = { ...base, ...resolveBatchedOptions(v.options) };
    checkDatabase(o.dbFile);
    const { dbFile: _d, host: _h, port: _p, ...options } = o;
    if (o.shards === 1) {
      const s = await startBatchedServer(o);
      return { host: s.host, port: s.port, options, childPids: [], stop: s.stop, failed: s.failed };
    }
    const s = await startShardedBatchedServer(o);
    return { host: s.host, port: s.port, options, childPids: s.shardPids, stop: s.stop, failed: s.failed };
  }
  const o = { ...base, ...resolvePerRequestOptions(v.options, availableParallelism()) };
  checkDatabase(o.dbFile);
  const { dbFile: _d, host: _h, port: _p, ...options } = o;
  const s = await startPerRequestServer(o);
  return { host: s.host, port: s.port, options, childPids: s.workerPids, stop: s.stop, failed: s.failed };
}
