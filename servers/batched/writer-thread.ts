/**
 * The writer thread (worker_threads): the port of the seed's TDatabaseWriterThread. It owns the
 * only writing SQLite connection of the batched variant and commits each batch it is handed.
 */
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { openDb, setDiskFull } from '../common/db.js';
import { DEFAULT_SPLIT_POLICY } from './batching.js';
import { shardOf } from './shard-of.js';
import { createBatchWriter, type LeaseGrant, type WriteRow } from './writer-core.js';

export interface WriterThreadData {
  dbFile: string;
  busyTimeoutMs: number;
  batchRetries: number;
  /**
   * Several writers share the file (batched --shards N): > 0 turns SQLite's own busy_timeout off
   * after opening and waits out SQLITE_BUSY in the app instead, up to this many ms per try, so
   * every BUSY is seen and counted (wami_sqlite_busy_total). Absent or 0: SQLite's busy_timeout only.
   */
  busyWaitMs?: number;
  /** Seqs leased per board ahead of the broadcasts (lease.ts). */
  leaseBlock: number;
  /** With `--shards N`: this shard's boards only (each shard leases its own boards). */
  shard?: { index: number; of: number };
}

export type ToWriter =
  | { type: 'batch'; id: number; rows: WriteRow[]; grants: LeaseGrant[] }
  /** Graceful stop: release the leases to [board, last seq handed out]. */
  | { type: 'release'; id: number; finals: Array<[number, number]> }
  /** Fault injection (`--fault-injection`): writes that need a new page fail (SQLITE_FULL) while on. */
  | { type: 'disk-full'; id: number; on: boolean }
  | { type: 'close' };

const data = workerData as WriterThreadData;
const port = parentPort!;
const db = openDb(data.dbFile, { busyTimeoutMs: data.busyTimeoutMs });
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const busyWait =
  data.busyWaitMs && data.busyWaitMs > 0
    ? { maxMs: data.busyWaitMs, sleep: (ms: number) => void Atomics.wait(sleepCell, 0, 0, ms), now: () => performance.now() }
    : undefined;
const writer = createBatchWriter(db, { ...DEFAULT_SPLIT_POLICY, retries: data.batchRetries, ...(busyWait ? { busyWait } : {}) });
// The lease at start, before the core takes any socket (SQLite's busy_timeout waits out other shards starting).
const sh = data.shard;
const boards = writer.openLeases(data.leaseBlock, sh ? (b) => shardOf(b, sh.of) === sh.index : undefined);
if (busyWait) db.pragma('busy_timeout = 0');

port.on('message', (m: ToWriter) => {
  if (m.type === 'batch') {
    port.postMessage({ type: 'result', id: m.id, result: writer.write(m.rows, m.grants) });
  } else if (m.type === 'release') {
    let error: string | null = null;
    try {
      writer.releaseLeases(m.finals);
    } catch (e) {
      error = (e as Error).message;
    }
    port.postMessage({ type: 'released', id: m.id, error });
  } else if (m.type === 'disk-full') {
    setDiskFull(db, m.on);
    port.postMessage({ type: 'disk-full', id: m.id });
  } else if (m.type === 'close') {
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // best effort
    }
    db.close();
    port.postMessage({ type: 'closed' });
    port.close();
  }
});
port.postMessage({ type: 'ready', boards });
