/**
 * The writer thread (worker_threads): the port of the seed's TDatabaseWriterThread. It owns the
 * only writing SQLite connection of the batched variant and commits each batch it is handed.
 */
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { openDb } from '../common/db.js';
import { DEFAULT_SPLIT_POLICY } from './batching.js';
import { createBatchWriter, type WriteRow } from './writer-core.js';

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
}

export type ToWriter = { type: 'batch'; id: number; rows: WriteRow[] } | { type: 'close' };

const data = workerData as WriterThreadData;
const port = parentPort!;
const db = openDb(data.dbFile, { busyTimeoutMs: data.busyTimeoutMs });
const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const busyWait =
  data.busyWaitMs && data.busyWaitMs > 0
    ? { maxMs: data.busyWaitMs, sleep: (ms: number) => void Atomics.wait(sleepCell, 0, 0, ms), now: () => performance.now() }
    : undefined;
if (busyWait) db.pragma('busy_timeout = 0');
const writer = createBatchWriter(db, { ...DEFAULT_SPLIT_POLICY, retries: data.batchRetries, ...(busyWait ? { busyWait } : {}) });

port.on('message', (m: ToWriter) => {
  if (m.type === 'batch') {
    port.postMessage({ type: 'result', id: m.id, result: writer.write(m.rows) });
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
port.postMessage({ type: 'ready' });
