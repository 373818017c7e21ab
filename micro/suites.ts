/**
 * tinybench suites of the parts in isolation, using the servers' own code: the batched queue, the
 * protocol parser, broadcast serialization (once vs once per socket), the fan-out of frames to real
 * loopback WebSockets, the SQLite write path at several batch sizes (each on a fresh database)
 * against one transaction per update, and the retry policy's overhead.
 * Each task says how many "units" (updates, frames, pushes) one iteration does, so results read
 * as units per second too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import { WebSocket, WebSocketServer } from 'ws';
import { COLUMNS } from '../protocol/messages.js';
import { parseClientFrame, parseServerFrame } from '../protocol/parse.js';
import { serializeBroadcast, serializeUpdate } from '../protocol/serialize.js';
import { BoundedQueue } from '../servers/batched/batching.js';
import { createBatchWriter, type WriteRow } from '../servers/batched/writer-core.js';
import { openDb, seedDatabase, type DB } from '../servers/common/db.js';
import { WalHeads } from '../servers/common/wal.js';
import { Fanout } from '../servers/common/fanout.js';
import client, { Registry } from 'prom-client';
import { createServer as createTcpServer, connect, type Socket } from 'node:net';
import { createMetrics, PER_SOCKET_DEFAULT_METRICS, renderMetrics } from '../servers/common/metrics.js';
import { createUpdateTx } from '../servers/per-request/tx.js';
import { resolvePerRequestOptions } from '../model/variants.js';
import { retryPolicyOf } from '../servers/per-request/config.js';
import { decideRetry } from '../servers/per-request/retry-policy.js';

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
  /** Loopback TCP pairs the scrape suite holds open (default SCRAPE_SOCKET_PAIRS; --quick: a few hundred). */
  scrapePairs?: number;
}

interface TaskDef {
  name: string;
  unit: string;
  unitsPerOp: number;
  fn: () => void | Promise<void>;
  /** Runs before each phase (warm-up, run) of this task, e.g. to give it a fresh database. */
  beforeAll?: () => void;
  afterAll?: () => void;
}

interface SuiteDef {
  name: string;
  setup?: () => void | Promise<void>;
  teardown?: () => void | Promise<void>;
  tasks: () => TaskDef[];
}

const sampleUpdate = {
  type: 'update' as const,
  id: 'u12-345',
  card: 137,
  column: 'doing' as const,
  title: 'Move the release checklist to review',
  at: 123456.789,
  sentAt: 123457.012,
};
const sampleFrame = serializeUpdate(sampleUpdate);
const badFrame = JSON.stringify({ ...sampleUpdate, column: 'nowhere' });
const broadcastFrame = serializeBroadcast(sampleUpdate, 12, 345);

function tempDb(boards: number, cardsPerBoard: number): { db: DB; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'wami-micro-'));
  const file = join(dir, 'micro.db');
  seedDatabase(file, { boards, cardsPerBoard });
  return { db: openDb(file), dir };
}

/** Names of the batched writer's tasks and of the plain loop beside them: `<prefix><N> update(s) per transaction`. */
export const WRITER_PREFIX = 'batched: ';
export const PLAIN_PREFIX = 'plain better-sqlite3: ';

/**
 * The batched writer's SQL as a plain loop (servers/batched/writer-core.ts without commitWithSplit,
 * per-row results or timing): BEGIN IMMEDIATE, per row `UPDATE cards` + `INSERT INTO card_events`,
 * `boards.seq` raised to each board's highest seq, COMMIT. What SQLite itself costs.
 */
export function plainLoop(db: DB): (rows: WriteRow[]) => void {
  const updCard = db.prepare('UPDATE cards SET col = ?, title = ?, version = version + 1, updated_at = ? WHERE id = ?');
  const insEvent = db.prepare(
    'INSERT INTO card_events (board_id, seq, card_id, user_id, client_msg_id, col, title, at, committed_at, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const raiseSeq = db.prepare('UPDATE boards SET seq = ? WHERE id = ? AND seq < ?');
  const tx = db.transaction((rows: WriteRow[]) => {
    const t = performance.now();
    const max = new Map<number, number>();
    for (const r of rows) {
      updCard.run(r.column, r.title, t, r.card);
      insEvent.run(r.board, r.seq, r.card, r.user, r.id, r.column, r.title, r.at, t, r.sentAt);
      if ((max.get(r.board) ?? 0) < r.seq) max.set(r.board, r.seq);
    }
    for (const [b, q] of max) raiseSeq.run(q, b, q);
  });
  return (rows) => tx.immediate(rows);
}

function sqliteSuite(): SuiteDef {
  const boards = 1000;
  const cardsPerBoard = 20;
  let state: { db: DB; dir: string } | null = null;
  let n = 0;
  let seqs = new Array<number>(boards + 1).fill(0);
  const close = (): void => {
    state?.db.close();
    if (state) rmSync(state.dir, { recursive: true, force: true });
    state = null;
  };
  // Every task runs on a fresh database, so no batch size inherits a file grown by the one before.
  const fresh = (): void => {
    close();
    state = tempDb(boards, cardsPerBoard);
    seqs = new Array<number>(boards + 1).fill(0);
  };
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
  let writer: ReturnType<typeof createBatchWriter> | null = null;
  let perRequest: ReturnType<typeof createUpdateTx> | null = null;
  let plain: ((rows: WriteRow[]) => void) | null = null;
  const open = (): void => {
    fresh();
    writer = createBatchWriter(state!.db);
    perRequest = createUpdateTx(state!.db, 'immediate');
    plain = plainLoop(state!.db);
  };
  return {
    name: 'sqlite',
    teardown: close,
    tasks: () => {
      const batch = (size: number): TaskDef => ({
        name: `batched: ${size} update${size > 1 ? 's' : ''} per transaction`,
        unit: 'update',
        unitsPerOp: size,
        beforeAll: open,
        fn: () => {
          const rows = Array.from({ length: size }, row);
          const r = writer!.write(rows);
          if (r.rows.some((x) => !x.ok)) throw new Error('a micro-benchmark row failed');
        },
      });
      // The baseline beside the writer path: the same rows, the same statements, on the same fresh
      // file, in a plain better-sqlite3 transaction without the writer's retry/split machinery.
      const plainBatch = (size: number): TaskDef => ({
        name: `${PLAIN_PREFIX}${size} updates per transaction`,
        unit: 'update',
        unitsPerOp: size,
        beforeAll: open,
        fn: () => plain!(Array.from({ length: size }, row)),
      });
      return [
        {
          name: 'per-request: BEGIN IMMEDIATE, 1 update, COMMIT',
          unit: 'update',
          unitsPerOp: 1,
          beforeAll: open,
          fn: () => {
            const r = row();
            const res = perRequest!({ board: r.board, card: r.card, user: r.user, id: r.id, column: r.column, title: r.title, at: r.at, sentAt: r.sentAt });
            if (!res.ok) throw new Error(res.message);
          },
        },
        batch(1),
        batch(10),
        batch(100),
        plainBatch(100),
        batch(1000),
        plainBatch(1000),
        batch(10000),
        plainBatch(10000),
      ];
    },
  };
}

/**
 * The server's fan-out through real sockets: one server-side Fanout (servers/common/fanout.ts)
 * sending to `members` WebSockets on loopback in this process, each task waiting until every
 * member has every frame. What one delivered broadcast frame costs, both ends included.
 */
function fanoutSuite(): SuiteDef {
  const members = 20;
  let http: Server | null = null;
  let wss: WebSocketServer | null = null;
  let serverSide: WebSocket[] = [];
  let clients: WebSocket[] = [];
  let received = 0;
  let want = 0;
  let done: (() => void) | null = null;
  const frame = serializeBroadcast(sampleUpdate, 12, 345);
  const metrics = createMetrics({ dbFile: '/nonexistent', connections: () => serverSide.length, queueDepth: () => 0 });
  const fanout = new Fanout(64 * 1024 * 1024, metrics);
  const deliver = (frames: number): Promise<void> => {
    received = 0;
    want = frames * members;
    const p = new Promise<void>((r) => (done = r));
    for (let i = 0; i < frames; i++) fanout.broadcast(serverSide, null, frame);
    return p;
  };
  return {
    name: 'fanout',
    setup: async () => {
      http = createServer();
      wss = new WebSocketServer({ server: http, perMessageDeflate: false });
      const accepted = new Promise<void>((r) =>
        wss!.on('connection', (ws) => {
          if (serverSide.push(ws) === members) r();
        }),
      );
      await new Promise<void>((r) => http!.listen(0, '127.0.0.1', r));
      const port = (http.address() as AddressInfo).port;
      clients = Array.from({ length: members }, () => new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false }));
      for (const c of clients) {
        c.on('message', () => {
          if (++received === want) done?.();
        });
      }
      await Promise.all([accepted, ...clients.map((c) => new Promise((r, j) => c.once('open', r).once('error', j)))]);
    },
    teardown: async () => {
      for (const c of clients) c.terminate();
      for (const s of serverSide) s.terminate();
      wss?.close();
      await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
      http = null;
      wss = null;
      serverSide = [];
      clients = [];
    },
    tasks: () => [
      {
        name: `broadcast 1 frame to ${members} loopback sockets, until all received`,
        unit: 'frame',
        unitsPerOp: members,
        fn: () => deliver(1),
      },
      {
        name: `broadcast 100 frames in one turn to ${members} loopback sockets (coalesced writes), until all received`,
        unit: 'frame',
        unitsPerOp: 100 * members,
        fn: () => deliver(100),
      },
    ],
  };
}

/** Loopback TCP pairs the scrape suite holds open (2 descriptors and 2 libuv handles each): a process with as many descriptors as a 15k-socket server has. */
export const SCRAPE_SOCKET_PAIRS = Number(process.env.WAMI_MICRO_SCRAPE_PAIRS ?? 7500);
/** The pairs of this runSuites call (MicroOptions.scrapePairs). */
let scrapePairs = SCRAPE_SOCKET_PAIRS;

/**
 * What one /metrics scrape costs the scraped process, in its event loop, while it holds many
 * sockets: the server's whole render (its registries as they are), prom-client's own default
 * metrics on a fresh registry, and each of the per-socket collectors the servers leave out
 * (PER_SOCKET_DEFAULT_METRICS), alone.
 */
function scrapeSuite(): SuiteDef {
  let pairs = SCRAPE_SOCKET_PAIRS;
  let tcp: ReturnType<typeof createTcpServer> | null = null;
  const socks: Socket[] = [];
  const server = createMetrics({ dbFile: '', connections: () => socks.length, queueDepth: () => 0 });
  const full = new Registry();
  return {
    name: 'scrape',
    setup: async () => {
      pairs = scrapePairs;
      client.collectDefaultMetrics({ register: full, eventLoopMonitoringPrecision: 10 });
      tcp = createTcpServer((s) => void socks.push(s));
      await new Promise<void>((r) => tcp!.listen(0, '127.0.0.1', r));
      const port = (tcp.address() as AddressInfo).port;
      for (let i = 0; i < pairs; i += 500) {
        const batch = Array.from({ length: Math.min(500, pairs - i) }, () => connect(port, '127.0.0.1'));
        await Promise.all(batch.map((c) => new Promise((r, j) => c.once('connect', r).once('error', j))));
        socks.push(...batch);
      }
    },
    teardown: async () => {
      for (const s of socks) s.destroy();
      socks.length = 0;
      await new Promise<void>((r) => (tcp ? tcp.close(() => r()) : r()));
      tcp = null;
      full.clear();
    },
    tasks: () => [
      {
        name: `the server's /metrics (wami_* + its defaults), ${pairs * 2} sockets open`,
        unit: 'scrape',
        unitsPerOp: 1,
        fn: async () => void (await renderMetrics(server)),
      },
      {
        name: `prom-client's default metrics, all of them, ${pairs * 2} sockets open`,
        unit: 'scrape',
        unitsPerOp: 1,
        fn: async () => void (await full.metrics()),
      },
      ...PER_SOCKET_DEFAULT_METRICS.filter((n) => !n.endsWith('_total')).map((n) => ({
        name: `${n} alone, ${pairs * 2} sockets open`,
        unit: 'scrape',
        unitsPerOp: 1,
        fn: async () => void (await full.getSingleMetric(n)?.get()),
      })),
    ],
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
  fanoutSuite(),
  sqliteSuite(),
  {
    name: 'retry',
    tasks: () => {
      let x = 0.5;
      const random = (): number => (x = ((x * 9301 + 49297) % 233280) / 233280);
      const policy = retryPolicyOf(resolvePerRequestOptions({}, 1));
      return [
        {
          name: 'decideRetry (backoff with jitter, attempts and deadline)',
          unit: 'decision',
          unitsPerOp: 1,
          fn: () => void decideRetry(3, 12.5, policy, random),
        },
      ];
    },
  },
  scrapeSuite(),
];

export const SUITE_NAMES = SUITES.map((s) => s.name);

/** Where one per-request transaction's time goes (one connection, no contention), µs, and the commits that ran an auto-checkpoint. */
export interface TxSplit {
  transactions: number;
  beginMeanUs: number;
  statementsMeanUs: number;
  commitMeanUs: number;
  commitP50Us: number;
  commitP99Us: number;
  /** Share of the whole time spent in COMMIT. */
  commitShare: number;
  /** Commits over 1 ms (those that ran SQLite's automatic checkpoint, copying the WAL back and syncing the file) and their share of the whole time. */
  slowCommits: number;
  slowCommitShare: number;
}

/**
 * The per-request transaction taken apart: BEGIN IMMEDIATE, its four statements, COMMIT, timed
 * one by one over `n` transactions on a fresh file (the first 1,000 not counted), with SQLite's
 * automatic checkpoints on as in the servers.
 */
export function txSplit(n = 6000): TxSplit {
  const { db, dir } = tempDb(500, 20);
  try {
    const readSeq = db.prepare('SELECT seq FROM boards WHERE id = ?').pluck(true);
    const writeSeq = db.prepare('UPDATE boards SET seq = ? WHERE id = ?');
    const upd = db.prepare('UPDATE cards SET col = ?, title = ?, version = version + 1, updated_at = ? WHERE id = ? AND board_id = ?');
    const ins = db.prepare(
      'INSERT INTO card_events (board_id, seq, card_id, user_id, client_msg_id, col, title, at, committed_at, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const us = (): number => Number(process.hrtime.bigint()) / 1e3;
    const begin: number[] = [];
    const stmts: number[] = [];
    const commit: number[] = [];
    for (let k = 1; k <= n; k++) {
      const board = ((k * 7919) % 500) + 1;
      const card = (board - 1) * 20 + (k % 20) + 1;
      const a = us();
      db.exec('BEGIN IMMEDIATE');
      const b = us();
      const seq = (readSeq.get(board) as number) + 1;
      writeSeq.run(seq, board);
      upd.run('doing', `t${k}`, k, card, board);
      ins.run(board, seq, card, k % 1000, `x${k}`, 'doing', `t${k}`, k, k, k);
      const c = us();
      db.exec('COMMIT');
      const d = us();
      if (k > 1000) {
        begin.push(b - a);
        stmts.push(c - b);
        commit.push(d - c);
      }
    }
    const sum = (xs: number[]): number => xs.reduce((x, y) => x + y, 0);
    const q = (xs: number[], p: number): number => xs.slice().sort((x, y) => x - y)[Math.floor(p * (xs.length - 1))]!;
    const total = sum(begin) + sum(stmts) + sum(commit);
    const slow = commit.filter((x) => x > 1000);
    const r1 = (x: number): number => Math.round(x * 10) / 10;
    return {
      transactions: commit.length,
      beginMeanUs: r1(sum(begin) / begin.length),
      statementsMeanUs: r1(sum(stmts) / stmts.length),
      commitMeanUs: r1(sum(commit) / commit.length),
      commitP50Us: r1(q(commit, 0.5)),
      commitP99Us: r1(q(commit, 0.99)),
      commitShare: Math.round((sum(commit) / total) * 1000) / 1000,
      slowCommits: slow.length,
      slowCommitShare: Math.round((sum(slow) / total) * 1000) / 1000,
    };
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** WAL pages each design writes per update: counted, not timed (the same on any machine for the same schema and rows). */
export interface WalCost {
  /** "per-request: 1 update per transaction", "batched: 1000 updates per transaction". */
  what: string;
  updates: number;
  commits: number;
  /** WAL frames written (one page each), with automatic checkpoints off so none is reused. */
  frames: number;
  pagesPerUpdate: number;
  walBytesPerUpdate: number;
}

/**
 * The write amplification of each design, counted from the WAL's own header (frames since it
 * started): per-request's one transaction per update against the batched writer at 100 and 1,000
 * updates per transaction, on the same fresh file and the same rows (boards of 20 cards, rows
 * spread over 500 boards as the write-ceiling scenario's are).
 */
export function walCost(updates = 2000): WalCost[] {
  const boards = 500;
  const cardsPerBoard = 20;
  const out: WalCost[] = [];
  const run = (what: string, size: number, write: (db: DB, rows: WriteRow[]) => void): void => {
    const { db, dir } = tempDb(boards, cardsPerBoard);
    const heads = new WalHeads(join(dir, 'micro.db'));
    try {
      db.pragma('wal_autocheckpoint = 0');
      const seqs = new Array<number>(boards + 1).fill(0);
      let n = 0;
      const row = (): WriteRow => {
        n++;
        const board = ((n * 7919) % boards) + 1;
        return {
          board,
          seq: ++seqs[board]!,
          card: (board - 1) * cardsPerBoard + (n % cardsPerBoard) + 1,
          user: n % 1000,
          id: `w${n}`,
          column: 'doing',
          title: `u${n} #${n} to doing`,
          at: n,
          sentAt: n,
          receivedAt: n,
        };
      };
      for (let i = 0; i < updates / size; i++) write(db, Array.from({ length: size }, row));
      const w = heads.read();
      const frames = w?.frames ?? 0;
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      out.push({
        what,
        updates,
        commits: updates / size,
        frames,
        pagesPerUpdate: Math.round((frames / updates) * 1000) / 1000,
        walBytesPerUpdate: Math.round((frames * (pageSize + 24)) / updates),
      });
    } finally {
      db.close();
      heads.close(); // after the connection: see WalHeads
      rmSync(dir, { recursive: true, force: true });
    }
  };
  run('per-request: 1 update per transaction', 1, (db, rows) => {
    const tx = createUpdateTx(db, 'immediate');
    for (const r of rows) if (!tx(r).ok) throw new Error('a micro-benchmark row failed');
  });
  for (const size of [100, 1000]) {
    run(`batched: ${size} updates per transaction`, size, (db, rows) => {
      if (
        createBatchWriter(db)
          .write(rows)
          .rows.some((x) => !x.ok)
      )
        throw new Error('a micro-benchmark row failed');
    });
  }
  return out;
}

/** Runs the suites; `onTask` is called as each task finishes (progress). */
export async function runSuites(o: MicroOptions, onTask?: (r: MicroTaskResult) => void): Promise<MicroTaskResult[]> {
  scrapePairs = o.scrapePairs ?? SCRAPE_SOCKET_PAIRS;
  const out: MicroTaskResult[] = [];
  for (const suite of SUITES) {
    if (o.suites && !o.suites.includes(suite.name)) continue;
    await suite.setup?.();
    try {
      const defs = suite.tasks();
      const bench = new Bench({
        name: suite.name,
        time: o.timeMs,
        warmupTime: o.warmupMs,
        iterations: o.minIterations,
        warmupIterations: Math.min(16, o.minIterations),
        throws: true,
      });
      for (const d of defs) bench.add(d.name, d.fn, { ...(d.beforeAll ? { beforeAll: d.beforeAll } : {}), ...(d.afterAll ? { afterAll: d.afterAll } : {}) });
      await bench.run();
      for (const d of defs) {
        const t = bench.getTask(d.name);
        const r = t?.result;
        if (r?.state !== 'completed') throw new Error(`micro task "${suite.name}/${d.name}" did not complete (${r?.state ?? 'no result'})`);
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
      await suite.teardown?.();
    }
  }
  return out;
}
