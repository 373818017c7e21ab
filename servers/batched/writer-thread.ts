/**
 * The writer thread (worker_threads): the port of the seed's TDatabaseWriterThread. It owns the
 * only writing SQLite connection of the batched variant and commits each batch it is handed.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openDb } from '../common/db.js';
import { DEFAULT_SPLIT_POLICY } from './batching.js';
import { createBatchWriter, type WriteRow } from './writer-core.js';

export interface WriterThreadData {
  dbFile: string;
  busyTimeoutMs: number;
  batchRetries: number;
}

export type ToWriter = { type: 'batch'; id: number; rows: WriteRow[] } | { type: 'close' };

const data = workerData as WriterThreadData;
const port = parentPort!;
const db = openDb(data.dbFile, { busyTimeoutMs: data.busyTimeoutMs });
const writer = createBatchWriter(db, { ...DEFAULT_SPLIT_POLICY, retries: data.batchRetries });

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
