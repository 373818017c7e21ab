/**
 * What the fleet records, at the worker and the coordinator level, against a scripted protocol v1
 * server in this process that answers by rule (clients-recorder.test.ts has the Recorder's own
 * exact-number tests; here are the real sockets, the worker processes and the join):
 * - update n of a user is acked (and broadcast to the board's other member) when n mod 3 = 0,
 *   refused with OVERLOADED when n mod 3 = 1, and never answered when n mod 3 = 2;
 * - the fleet's counts and ledger equal what the server saw, update by update; refused updates are
 *   left out of the ack latency, unanswered ones are in it with the lower bound of their latency
 *   (at least the drain), and the two workers' histograms are merged whole; one worker stopped
 *   (SIGSTOP) mid-run: the per-second series waits for it and still sums to the totals;
 * - a worker finished before its schedule ends counts every scheduled update it never sent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { runFleet } from '../clients/coordinator.js';
import { decodeHistogram } from '../clients/histogram.js';
import type { WorkerFinal, WorkerInit, WorkerMessage } from '../clients/ipc.js';
import { LoadWorker } from '../clients/load-worker.js';
import { planUser } from '../clients/schedule.js';
import type { Ledger } from '../model/fleet-result.js';
import { nowMs } from '../protocol/clock.js';
import { cardId } from '../protocol/layout.js';
import { parseClientFrame, parseConnectQuery } from '../protocol/parse.js';
import { serializeAck, serializeBroadcast, serializeError } from '../protocol/serialize.js';

const M = 5;
const LOOSE = { lagMsP99: 5000, eventLoopDelayMsP99: 5000, cpuPct: 1000 };

type Kind = 'acked' | 'errored' | 'ignored';
interface Seen {
  user: number;
  id: string;
  at: number;
  kind: Kind;
  seq?: number;
}

/** A protocol v1 server that answers by rule (see the file's comment) and remembers every update. */
class ScriptedServer {
  readonly seen: Seen[] = [];
  private readonly http: Server;
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  private readonly members = new Map<number, Set<WebSocket>>();
  private readonly seqs = new Map<number, number>();
  private readonly waiters: Array<() => void> = [];
  port = 0;

  constructor(private readonly boards: number) {
    this.http = createServer((req, res) => {
      const m = /^\/boards\/(\d+)$/.exec(req.url ?? '');
      const b = m ? Number(m[1]) : 0;
      if (b < 1 || b > this.boards) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: b, cards: Array.from({ length: M }, (_, k) => ({ id: cardId(b, k, M) })) }));
    });
    this.http.on('upgrade', (req, socket, head) => {
      const q = parseConnectQuery(req.url);
      if (q.path !== '/ws' || q.board === null || q.user === null || q.board > this.boards) return void socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
      const board = q.board;
      const user = q.user;
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        const set = this.members.get(board) ?? new Set<WebSocket>();
        this.members.set(board, set);
        set.add(ws);
        ws.on('close', () => set.delete(ws));
        ws.on('message', (data: Buffer) => {
          const p = parseClientFrame(data);
          if (!p.ok) return void ws.send(serializeError('BAD_MESSAGE', p.message, p.id));
          const u = p.msg;
          const n = Number(/-(\d+)$/.exec(u.id)?.[1]);
          const kind: Kind = n % 3 === 0 ? 'acked' : n % 3 === 1 ? 'errored' : 'ignored';
          const s: Seen = { user, id: u.id, at: u.at, kind };
          if (kind === 'acked') {
            const seq = (this.seqs.get(board) ?? 0) + 1;
            this.seqs.set(board, seq);
            s.seq = seq;
            ws.send(serializeAck({ id: u.id, seq, queueMs: 0, commitMs: 0, attempts: 1 }));
            const frame = serializeBroadcast(u, user, seq);
            for (const o of set) if (o !== ws && o.readyState === o.OPEN) o.send(frame);
          } else if (kind === 'errored') {
            ws.send(serializeError('OVERLOADED', 'refused by rule', u.id));
          }
          this.seen.push(s);
          for (const w of this.waiters.splice(0)) w();
        });
      });
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.http.listen(0, '127.0.0.1', r));
    this.port = (this.http.address() as AddressInfo).port;
  }

  /** Resolves once `pred` holds, checked on every update received (bounded by the test's timeout). */
  async until(pred: () => boolean): Promise<void> {
    while (!pred()) await new Promise<void>((r) => this.waiters.push(r));
  }

  count(kind: Kind): number {
    return this.seen.filter((s) => s.kind === kind).length;
  }

  async close(): Promise<void> {
    for (const set of this.members.values()) for (const ws of set) ws.terminate();
    this.wss.close();
    this.http.closeAllConnections();
    await new Promise((r) => this.http.close(r));
  }
}

const ids = (xs: ReadonlyArray<readonly [number, string, ...unknown[]]>): string[] => xs.map(([u, id]) => `${u}|${id}`).sort();
const seenIds = (srv: ScriptedServer, kind: Kind): string[] =>
  srv.seen
    .filter((s) => s.kind === kind)
    .map((s) => `${s.user}|${s.id}`)
    .sort();

test('two workers (one stopped 1.5 s mid-run) against a server that acks, refuses and ignores by rule: counts and ledger = what the server saw; refused left out of the ack latency, unanswered in it at no less than the drain; both workers merged; the series waits for the stopped one and sums to the totals', {
  timeout: 60_000,
}, async () => {
  const srv = new ScriptedServer(4);
  await srv.listen();
  const dir = mkdtempSync(join(tmpdir(), 'wami-fleet-rec-'));
  try {
    const DRAIN_SEC = 2;
    // Worker 1 is stopped for 1.5 s from the start of the measured window: worker 0 ticks at least once
    // meanwhile, and the seconds must wait for worker 1 (a tick that came after its second was emitted
    // would be lost to the series, which then would not sum to the totals).
    let pids: number[] = [];
    let resumed: Promise<void> = Promise.resolve();
    const signal = (pid: number, sig: NodeJS.Signals) => {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    };
    const hooks = {
      onWorkers: (p: number[]) => (pids = p),
      onPhase: (phase: string) => {
        if (phase !== 'measure' || pids.length !== 2) return;
        signal(pids[1]!, 'SIGSTOP');
        resumed = new Promise((res) => setTimeout(() => res(signal(pids[1]!, 'SIGCONT')), 1500));
      },
    };
    const r = await runFleet(
      {
        url: `ws://127.0.0.1:${srv.port}/ws`,
        connections: 8,
        perBoard: 2,
        updatesPerUserPerMin: 600,
        warmupSec: 0,
        durationSec: 2,
        drainSec: DRAIN_SEC,
        workers: 2,
        seed: 11,
        idPrefix: 'rec',
        guard: LOOSE,
        ledgerFile: join(dir, 'ledger.json'),
      },
      hooks,
    );
    await resumed;
    const [A, E, U] = [srv.count('acked'), srv.count('errored'), srv.count('ignored')];
    assert.ok(A > 0 && E > 0 && U > 0, `the rule produced each kind: ${A} ${E} ${U}`);
    assert.equal(r.status, 'ok', r.reasons.join('; '));
    assert.deepEqual(
      (r.config.segments as Array<{ count: number }>).map((s) => s.count),
      [4, 4],
      'two workers, four users each',
    );
    assert.deepEqual(r.updates, { sent: srv.seen.length, acked: A, errored: E, unanswered: U, unansweredAtClose: 0 });
    assert.deepEqual(r.errors.byCode, { OVERLOADED: E });
    const ledger = JSON.parse(readFileSync(join(dir, 'ledger.json'), 'utf8')) as Ledger;
    assert.deepEqual(ids(ledger.acked), seenIds(srv, 'acked'));
    assert.deepEqual(
      ledger.acked.map(([u, id, seq]) => [u, id, seq]).sort(),
      srv.seen
        .filter((s) => s.kind === 'acked')
        .map((s) => [s.user, s.id, s.seq])
        .sort(),
      'each ack recorded with its seq',
    );
    assert.deepEqual(ids(ledger.errored), seenIds(srv, 'errored'));
    assert.ok(ledger.errored.every((e) => e[2] === 'OVERLOADED'));
    assert.deepEqual(ids(ledger.unanswered), seenIds(srv, 'ignored'));
    // No warm-up: every update is in the measured window. Acked and unanswered are in the ack latency
    // (both workers' histograms, merged), refused ones are not; the same in the uncorrected one.
    const ack = r.latency.ackMs;
    assert.equal(ack.count, A + U);
    assert.equal(ack.uncorrected.count, A + U);
    assert.equal(decodeHistogram(ack.histogram).totalCount, A + U);
    // An unanswered update counts until the fleet finished, after the whole drain: at least U values
    // at or above the drain. The (A+1)-th smallest value is one of them or above them.
    const h = decodeHistogram(ack.histogram);
    const atRank = h.getValueAtPercentile((100 * (A + 0.5)) / (A + U)) / 1000;
    assert.ok(atRank >= DRAIN_SEC * 1000, `value ${atRank} ms at rank ${A + 1} of ${A + U} is below the ${DRAIN_SEC} s drain`);
    assert.ok(ack.max >= DRAIN_SEC * 1000);
    // Broadcasts: each acked update reaches the other member of its board; nothing else is expected.
    assert.deepEqual([r.delivery.expected, r.delivery.received, r.delivery.missing, r.delivery.phantom, r.delivery.duplicate], [A, A, 0, 0, 0]);
    assert.equal(r.latency.fanoutMs.count, A);
    // The per-second series sums to the totals (every worker's every tick is in it).
    const sum = (k: 'sent' | 'acked' | 'delivered' | 'errors') => r.timeseries.reduce((t, p) => t + p[k], 0);
    assert.deepEqual([sum('sent'), sum('acked'), sum('delivered'), sum('errors')], [srv.seen.length, A, A, E]);
    assert.ok(
      r.timeseries.every((p, i) => i === 0 || p.t > r.timeseries[i - 1]!.t),
      `seconds in order, each once: ${r.timeseries.map((p) => p.t).join(',')}`,
    );
  } finally {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a worker finished before its schedule ends: every update it never sent counted as unsent-at-finish, exactly the schedule’s rest; the sent ones accounted as at the server', {
  timeout: 30_000,
}, async () => {
  const srv = new ScriptedServer(2);
  await srv.listen();
  const msgs: WorkerMessage[] = [];
  const arrived: Array<() => void> = [];
  const next = async (type: WorkerMessage['type']): Promise<WorkerMessage> => {
    for (;;) {
      const m = msgs.find((x) => x.type === type);
      if (m) return m;
      await new Promise<void>((r) => arrived.push(r));
    }
  };
  const init: WorkerInit = {
    type: 'init',
    index: 0,
    firstUser: 0,
    count: 4,
    fleetFirstUser: 0,
    urls: [`ws://127.0.0.1:${srv.port}/ws`],
    perBoard: 2,
    cardsPerBoard: M,
    updatesPerUserPerMin: 600,
    rateSteps: [],
    arrival: 'poisson',
    seed: 5,
    sampleEvery: 1,
    idPrefix: 'lw',
    sourceAddresses: [],
    connectRatePerSec: 1000,
    handshakeTimeoutMs: 5000,
    originMs: nowMs(),
    hardDeadlineMs: nowMs() + 60_000,
    reconnect: false,
    stalls: [],
    timedLedger: false,
  };
  const worker = new LoadWorker(init, (m, cb) => {
    msgs.push(m);
    for (const w of arrived.splice(0)) w();
    cb?.();
  });
  try {
    worker.begin();
    const connected = await next('connected');
    assert.deepEqual(connected, { type: 'connected', index: 0, asked: 4, reached: 4, failuresByKind: {} });
    const WINDOW_MS = 2000;
    worker.start({ type: 'start', t0: nowMs() + 20, warmupMs: 0, measureMs: WINDOW_MS });
    // A few sends, then the finish: the rest of the schedule is never sent.
    await srv.until(() => srv.seen.length >= 6);
    const exited = new Promise<number>((r) => worker.finish(r));
    const fin = (await next('final')) as WorkerFinal;
    assert.equal(await exited, 0);
    const scheduled = [0, 1, 2, 3]
      .map(
        (user) =>
          planUser({ seed: 5, perBoard: 2, cardsPerBoard: M, updatesPerUserPerMin: 600, arrival: 'poisson', windowMs: WINDOW_MS, steps: [] }, user).length,
      )
      .reduce((a, b) => a + b, 0);
    // The worker closed its sockets gracefully before it exited: the server has read every update sent.
    const sent = srv.seen.length;
    assert.ok(sent >= 6 && sent < scheduled, `sent ${sent} of ${scheduled}`);
    assert.equal(fin.updates.sent, sent);
    assert.equal(fin.errorsByKind['unsent-at-finish'], scheduled - sent, 'the rest of the schedule, counted');
    // An answer still on its way at the finish is not seen: that update is unanswered, never lost.
    const u = fin.updates;
    assert.equal(u.acked + u.errored + u.unanswered, sent);
    const serverSays = new Map(srv.seen.map((x) => [`${x.user}|${x.id}`, x.kind]));
    assert.ok(
      fin.acked.every(([user, id]) => serverSays.get(`${user}|${id}`) === 'acked'),
      'acked: only what the server acked',
    );
    assert.ok(
      fin.errored.every(([user, id, code]) => serverSays.get(`${user}|${id}`) === 'errored' && code === 'OVERLOADED'),
      'errored: only what the server refused',
    );
    const unanswered = new Set(fin.unanswered.map(([user, id]) => `${user}|${id}`));
    assert.ok(
      srv.seen.filter((x) => x.kind === 'ignored').every((x) => unanswered.has(`${x.user}|${x.id}`)),
      'every update the server ignored is unanswered',
    );
    assert.equal(decodeHistogram(fin.hist.ack).totalCount, u.acked + u.unanswered, 'refused left out of the ack latency, unanswered in');
  } finally {
    worker.release();
    await srv.close();
  }
});
