/**
 * tinybench suites of the parts in isolation, using the servers' own code: the batched queue, the
 * protocol parser, broadcast serialization (once vs once per socket), the SQLite write path at
 * several batch sizes against one transaction per update, and the retry policy's overhead.
 * Each task says how many "units" (updates, frames, pushes) one iteration does, so results read
 * as units per second too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import { COLUMNS } from '../protocol/messages.js';
import { parseClientFrame, parseServerFrame } from '../protocol/parse.js';
import { serializeBroadcast, serializeUpdate } from '../protocol/serialize.js';
import { BoundedQueue } from '../servers/batched/batching.js';
import { createBatchWriter, type WriteRow } from '../servers/batched/writer-core.js';
import { openDb, seedDatabase, type DB } from '../servers/common/db.js';
import { createUpdateTx } from '../servers/per-request/tx.js';
import { decideRetry, DEFAULT_RETRY_POLICY } from '../servers/per-request/retry-policy.js';

export interface MicroTaskResult {
  suite: string;
  task: string;
  /** What one unit is ("update", "frame", "push", "decision"). */
  unit: string;
  unitsPerOp: number;
  opsPerSec: number;
  unitsPerSec: number;
  meanMs: number;
  p99Ms: number;
  /** Relative margin of error of the mean, percent. */
  rmePct: number;
  samples: number;
}

export interface MicroOptions {
  /** Time budget per task, ms. */
  timeMs: number;
  warmupMs: number;
  /** Least iterations per task (tinybench's `iterations`). */
  minIterations: number;
  /** Suites to run (default all). */
  suites?: string[];
}

interface TaskDef {
  name: string;
  unit: string;
  unitsPerOp: number;
  fn: () => void;
}

interface SuiteDef {
  name: string;
  setup?: () => void;
  teardown?: () => void;
  tasks: () => TaskDef[];
}

const sampleUpdate = { type: 'update' as const, id: 'u12-345', card: 137, column: 'doing' as const, title: 'Move the release checklist to review', at: 123456.789, sentAt: 123457.012 };
const sampleFrame = serializeUpdate(sampleUpdate);
const badFrame = JSON.stringify({ ...sampleUpdate, column: 'nowhere' });
const broadcastFrame = serializeBroadcast(sampleUpdate, 12, 345);

function tempDb(boards: number, cardsPerBoard: number): { db: DB; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'wami-micro-'));
  const file = join(dir, 'micro.db');
  seedDatabase(file, { boards, cardsPerBoard });
  return { db: openDb(file), dir };
}

function sqliteSuite(): SuiteDef {
  const boards = 1000;
  const cardsPerBoard = 20;
  let state: { db: DB; dir: string } | null = null;
  let n = 0;
  const seqs = new Array<number>(boards + 1).fill(0);
  const row = (): WriteRow => {
    n++;
    const board = (n % boards) + 1;
    const t = performance.now();
    return {
      board,
      seq: ++seqs[board]!,
      card: (board - 1) * cardsPerBoard + (n % cardsPerBoard) + 1,
      user: n % 30000,
      id: `m${n}`,
      column: COLUMNS[n % COLUMNS.length]!,
      title: `title ${n}`,
      at: t,
      sentAt: t,
      receivedAt: t,
    };
  };
  return {
    name: 'sqlite',
    setup: () => {
      state = tempDb(boards, cardsPerBoard);
    },
    teardown: () => {
      state?.db.close();
      if (state) rmSync(state.dir, { recursive: true, force: true });
      state = null;
    },
    tasks: () => {
      const db = state!.db;
      const writer = createBatchWriter(db);
      const perRequest = createUpdateTx(db, 'immediate');
      const batch = (size: number): TaskDef => ({
        name: `batched: ${size} update${size > 1 ? 's' : ''} per transaction`,
        unit: 'update',
        unitsPerOp: size,
        fn: () => {
          const rows = Array.from({ length: size }, row);
          const r = writer.write(rows);
          if (r.rows.some((x) => !x.ok)) throw new Error('a micro-benchmark row failed');
        },
      });
      return [
        {
          name: 'per-request: BEGIN IMMEDIATE, 1 update, COMMIT',
          unit: 'update',
          unitsPerOp: 1,
          fn: () => {
            const r = row();
            const res = perRequest({ board: r.board, card: r.card, user: r.user, id: r.id, column: r.column, title: r.title, at: r.at, sentAt: r.sentAt });
            if (!res.ok) throw new Error(res.message);
          },
        },
        batch(1),
        batch(10),
        batch(100),
        batch(1000),
        batch(10000),
      ];
    },
  };
}

export const SUITES: SuiteDef[] = [
  {
    name: 'queue',
    tasks: () => {
      const q = new BoundedQueue<number>(1_000_000);
      return [
        {
          name: 'push 1,000 then takeAll',
          unit: 'push',
          unitsPerOp: 1000,
          fn: () => {
            for (let i = 0; i < 1000; i++) q.push(i);
            if (q.takeAll().length !== 1000) throw new Error('queue lost items');
          },
        },
        {
          name: 'push 1 then takeAll',
          unit: 'push',
          unitsPerOp: 1,
          fn: () => {
            q.push(1);
            q.takeAll();
          },
        },
      ];
    },
  },
  {
    name: 'protocol',
    tasks: () => [
      { name: 'parse + validate a client update', unit: 'frame', unitsPerOp: 1, fn: () => void parseClientFrame(sampleFrame) },
      { name: 'parse + reject a bad client update', unit: 'frame', unitsPerOp: 1, fn: () => void parseClientFrame(badFrame) },
      { name: 'parse + validate a server broadcast (fleet side)', unit: 'frame', unitsPerOp: 1, fn: () => void parseServerFrame(broadcastFrame) },
    ],
  },
  {
    name: 'serialize',
    tasks: () => {
      const members = 20;
      const sink: string[] = new Array<string>(members);
      return [
        {
          name: `broadcast to ${members} members: serialize once, reuse`,
          unit: 'frame',
          unitsPerOp: members,
          fn: () => {
            const f = serializeBroadcast(sampleUpdate, 12, 345);
            for (let i = 0; i < members; i++) sink[i] = f;
          },
        },
        {
          name: `broadcast to ${members} members: serialize per socket`,
          unit: 'frame',
          unitsPerOp: members,
          fn: () => {
            for (let i = 0; i < members; i++) sink[i] = serializeBroadcast(sampleUpdate, 12, 345);
          },
        },
      ];
    },
  },
  sqliteSuite(),
  {
    name: 'retry',
    tasks: () => {
      let x = 0.5;
      const random = (): number => (x = (x * 9301 + 49297) % 233280 / 233280);
      return [
        {
          name: 'decideRetry (backoff with jitter, attempts and deadline)',
          unit: 'decision',
          unitsPerOp: 1,
          fn: () => void decideRetry(3, 12.5, DEFAULT_RETRY_POLICY, random),
        },
      ];
    },
  },
];

export const SUITE_NAMES = SUITES.map((s) => s.name);

/** Runs the suites; `onTask` is called as each task finishes (progress). */
export async function runSuites(o: MicroOptions, onTask?: (r: MicroTaskResult) => void): Promise<MicroTaskResult[]> {
  const out: MicroTaskResult[] = [];
  for (const suite of SUITES) {
    if (o.suites && !o.suites.includes(suite.name)) continue;
    suite.setup?.();
    try {
      const defs = suite.tasks();
      const bench = new Bench({ name: suite.name, time: o.timeMs, warmupTime: o.warmupMs, iterations: o.minIterations, warmupIterations: Math.min(16, o.minIterations), throws: true });
      for (const d of defs) bench.add(d.name, d.fn);
      await bench.run();
      for (const d of defs) {
        const t = bench.getTask(d.name);
        const r = t?.result;
        if (!r || r.state !== 'completed') throw new Error(`micro task "${suite.name}/${d.name}" did not complete (${r?.state ?? 'no result'})`);
        const opsPerSec = r.period > 0 ? 1000 / r.period : 0;
        const res: MicroTaskResult = {
          suite: suite.name,
          task: d.name,
          unit: d.unit,
          unitsPerOp: d.unitsPerOp,
          opsPerSec,
          unitsPerSec: opsPerSec * d.unitsPerOp,
          meanMs: r.latency.mean,
          p99Ms: r.latency.p99,
          rmePct: r.latency.rme,
          samples: r.latency.samplesCount,
        };
        out.push(res);
        onTask?.(res);
      }
    } finally {
      suite.teardown?.();
    }
  }
  return out;
}
