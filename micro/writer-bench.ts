/**
 * The batched writer's throughput at batch sizes 1, 100 and 1000 against a real temp SQLite file
 * (the same SQL and pragmas as the writer thread: per update `UPDATE cards` + `INSERT card_events`,
 * boards.seq raised, one transaction per batch), run in-process and synchronously.
 *
 *   node dist/micro/writer-bench.js [--seconds S] [--sizes 1,100,1000] [--boards N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { COLUMNS } from '../protocol/messages.js';
import { openDb, seedDatabase } from '../servers/common/db.js';
import { createBatchWriter, type WriteRow } from '../servers/batched/writer-core.js';

export interface WriterBenchResult {
  batchSize: number;
  updates: number;
  transactions: number;
  seconds: number;
  updatesPerSec: number;
  txPerSec: number;
  meanCommitMs: number;
}

export function benchWriter(sizes: number[], secondsEach: number, boards = 1000, cardsPerBoard = 20): WriterBenchResult[] {
  const out: WriterBenchResult[] = [];
  // each batch size on a fresh database, so no size inherits a bigger file from the one before
  for (const size of sizes) out.push(benchOne(size, secondsEach, boards, cardsPerBoard));
  return out;
}

function benchOne(size: number, secondsEach: number, boards: number, cardsPerBoard: number): WriterBenchResult {
  const dir = mkdtempSync(join(tmpdir(), 'wami-writer-bench-'));
  try {
    const file = join(dir, 'bench.db');
    seedDatabase(file, { boards, cardsPerBoard });
    const db = openDb(file);
    const writer = createBatchWriter(db);
    const seqs = new Array<number>(boards + 1).fill(0);
    let n = 0;
    const makeRow = (): WriteRow => {
      n++;
      const board = (n % boards) + 1;
      const card = (board - 1) * cardsPerBoard + (n % cardsPerBoard) + 1;
      const t = performance.now();
      return { board, seq: ++seqs[board]!, card, user: n % 30000, id: `w${n}`, column: COLUMNS[n % COLUMNS.length]!, title: `title ${n}`, at: t, sentAt: t, receivedAt: t };
    };
    {
      // warm-up
      writer.write(Array.from({ length: size }, makeRow));
      let updates = 0;
      let tx = 0;
      let commitMs = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < secondsEach * 1000) {
        const r = writer.write(Array.from({ length: size }, makeRow));
        for (const t of r.tx) if (t.ok) commitMs += t.durationMs;
        if (!r.rows.every((x) => x.ok)) throw new Error('a bench row failed');
        updates += size;
        tx++;
      }
      const seconds = (performance.now() - t0) / 1000;
      db.close();
      return { batchSize: size, updates, transactions: tx, seconds, updatesPerSec: updates / seconds, txPerSec: tx / seconds, meanCommitMs: commitMs / tx };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const { values } = parseArgs({ options: { seconds: { type: 'string' }, sizes: { type: 'string' }, boards: { type: 'string' } } });
  const sizes = (values.sizes ?? '1,100,1000').split(',').map(Number);
  const res = benchWriter(sizes, Number(values.seconds ?? 3), Number(values.boards ?? 1000));
  console.log('batch size | updates/s | tx/s | mean commit ms | updates');
  for (const r of res) {
    console.log(`${String(r.batchSize).padStart(10)} | ${Math.round(r.updatesPerSec).toString().padStart(9)} | ${Math.round(r.txPerSec).toString().padStart(6)} | ${r.meanCommitMs.toFixed(3).padStart(14)} | ${r.updates}`);
  }
  console.log(JSON.stringify({ node: process.version, results: res }));
}
