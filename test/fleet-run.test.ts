/**
 * The fleet against the real servers (port 0, child processes, no mocks): every socket reached and
 * every update accounted for on both variants; a frozen server shows in the corrected latency while
 * the schedule keeps sending; an overloaded fleet calls itself invalid; abort leaves no orphans; the
 * cards come from the server's GET /boards/:id, and a --cards-per-board that disagrees is refused.
 *
 * Nothing here depends on timing or machine load: waits are on events (the coordinator's phases,
 * the processes' exits), and what is asserted cannot race (see each test).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runFleet, FleetConfigError, type FleetPhase, type FleetProgress } from '../clients/coordinator.js';
import type { FleetResult, Ledger } from '../model/fleet-result.js';
import { alive, startServer, type TestServer } from './helpers/server.js';

/** runFleet waits for every worker's exit before it returns: none may be alive afterwards. */
function noneAlive(pids: number[]): void {
  assert.deepEqual(pids.filter(alive), [], 'every worker process has exited');
}

async function withServer<T>(variant: 'batched' | 'per-request', opts: Parameters<typeof startServer>[1], fn: (s: TestServer) => Promise<T>): Promise<T> {
  const s = await startServer(variant, opts);
  try {
    return await fn(s);
  } finally {
    if (s.child.signalCode === null && s.child.exitCode === null) process.kill(s.child.pid!, 'SIGCONT');
    await s.stop();
    s.cleanup();
  }
}

function assertClean(r: FleetResult, asked: number): void {
  assert.equal(r.status, 'ok', r.reasons.join('; '));
  assert.deepEqual(r.sockets, { asked, reached: asked, failed: 0, failuresByKind: {}, closedEarly: 0, closedEarlyByCode: {}, sendsOnClosed: 0 });
  assert.ok(r.updates.sent > 0);
  assert.equal(r.updates.acked, r.updates.sent, 'acks == updates sent');
  assert.equal(r.updates.errored, 0);
  assert.equal(r.updates.unanswered, 0);
  const d = r.delivery;
  assert.equal(d.missing, 0, 'missing');
  assert.equal(d.duplicate, 0, 'duplicate');
  assert.equal(d.outOfOrder, 0, 'outOfOrder');
  assert.equal(d.phantom, 0, 'phantom');
  assert.ok(d.expected > 0);
  assert.equal(d.received, d.expected);
  assert.equal(r.errors.total, 0, JSON.stringify(r.errors));
  assert.ok(r.latency.ackMs.count > 0 && r.latency.ackMs.count < r.updates.sent, 'warm-up excluded from ackMs');
  assert.ok(r.latency.fanoutMs.count > 0);
  assert.ok(r.latency.ackMs.uncorrected.count === r.latency.ackMs.count);
  assert.ok(r.latency.connectMs.count === asked);
  assert.ok(r.latency.ackMs.p50 <= r.latency.ackMs.p99 && r.latency.ackMs.p99 <= r.latency.ackMs.max);
  assert.ok(r.latency.ackMs.histogram.length > 0);
  assert.deepEqual(r.fleet.nodeFlags, ['--max-semi-space-size=16']);
  assert.ok(r.fleet.workers >= 2);
  assert.ok(r.fleet.cpuSec > 0 && r.fleet.rssBytesMax > 0);
  assert.ok(r.timeseries.length >= 4);
  assert.equal(
    r.timeseries.reduce((n, p) => n + p.sent, 0),
    r.updates.sent,
    'the time series accounts for every send',
  );
}

/** The machine is shared with other test runs: these tests check behaviour, not speed, so the guard is loose. */
const LOOSE = { lagMsP99: 1000, eventLoopDelayMsP99: 1000, cpuPct: 1000 };

const dir = mkdtempSync(join(tmpdir(), 'wami-fleet-test-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

for (const variant of ['batched', 'per-request'] as const) {
  test(`${variant}: 200 sockets for a few seconds, everything delivered and acked`, { timeout: 60_000 }, async () => {
    await withServer(variant, { boards: 20, cardsPerBoard: 10 }, async (srv) => {
      const phases: FleetPhase[] = [];
      const secondPhases: string[] = [];
      let pids: number[] = [];
      const ledgerFile = join(dir, `${variant}-ledger.json`);
      const r = await runFleet(
        {
          url: srv.wsUrl,
          connections: 200,
          perBoard: 10,
          cardsPerBoard: 10,
          updatesPerUserPerMin: 60,
          warmupSec: 1,
          durationSec: 3,
          drainSec: 4,
          connectRatePerSec: 2000,
          ledgerFile,
          guard: LOOSE,
        },
        { onSecond: (p: FleetProgress) => secondPhases.push(p.phase), onPhase: (p) => phases.push(p), onWorkers: (w) => (pids = w) },
      );
      assertClean(r, 200);
      assert.equal(pids.length, 2);
      noneAlive(pids);
      // The coordinator's own transitions, exactly; the per-second labels (the phase at the middle of
      // each second, which a fast connect can skip) only in order.
      assert.deepEqual(phases, ['connect', 'warmup', 'measure', 'drain']);
      const order = ['connect', 'warmup', 'measure', 'drain'];
      assert.ok(
        secondPhases.every((p, i) => i === 0 || order.indexOf(p) >= order.indexOf(secondPhases[i - 1]!)),
        `per-second phases in order: ${secondPhases.join(',')}`,
      );
      // The ledger says the same as the counts.
      const ledger = JSON.parse(readFileSync(ledgerFile, 'utf8')) as Ledger;
      assert.equal(r.ledgerFile, ledgerFile);
      assert.equal(ledger.acked.length, r.updates.acked);
      assert.equal(ledger.unanswered.length, 0);
      assert.equal(ledger.errored.length, 0);
      assert.equal(ledger.seen.length, r.updates.acked, 'every acked update was seen by some member');
      // seqs per board are 1..n without gaps
      const byBoard = new Map<number, number[]>();
      for (const [, , b, seq] of ledger.seen) (byBoard.get(b) ?? byBoard.set(b, []).get(b)!).push(seq);
      for (const [b, seqs] of byBoard)
        assert.deepEqual(
          seqs,
          seqs.map((_, i) => i + 1),
          `board ${b} seqs`,
        );
    });
  });
}

test('a frozen server (SIGSTOP 3 s from the start of the measured window): corrected ack latency shows the stall, the schedule kept sending', {
  timeout: 60_000,
}, async () => {
  await withServer('batched', { boards: 20, cardsPerBoard: 10 }, async (srv) => {
    const pid = srv.child.pid!;
    const STALL_MS = 3000;
    let stallDone: Promise<void> | null = null;
    // The stall as it happened: the timer that ends it may fire late on a busy machine.
    let stoppedAt = 0;
    let stallMs = 0;
    const r = await runFleet(
      {
        url: srv.wsUrl,
        connections: 200,
        perBoard: 10,
        cardsPerBoard: 10,
        updatesPerUserPerMin: 60,
        warmupSec: 1,
        durationSec: 6,
        drainSec: 8,
        connectRatePerSec: 2000,
        guard: LOOSE,
      },
      {
        // On the coordinator's own transition into the measured window, not on a per-second callback.
        onPhase: (p) => {
          if (p !== 'measure') return;
          process.kill(pid, 'SIGSTOP');
          stoppedAt = performance.now();
          stallDone = new Promise((res) =>
            setTimeout(() => {
              process.kill(pid, 'SIGCONT');
              stallMs = performance.now() - stoppedAt;
              res();
            }, STALL_MS),
          );
        },
      },
    );
    assert.ok(stallDone, 'the stall happened');
    await stallDone;
    // 200 updates/s and a 100 ms flush: updates scheduled before the stop were still waiting for their
    // ack, which came only after SIGCONT, at least STALL_MS after their scheduled (and actual) send.
    assert.ok(r.latency.ackMs.max >= STALL_MS, `corrected ackMs.max ${r.latency.ackMs.max}`);
    assert.ok(r.latency.ackMs.uncorrected.max >= STALL_MS, `uncorrected ackMs.max ${r.latency.ackMs.uncorrected.max}`);
    // A 3 s stall holds a whole second that starts at least 1 s after the stop: the fleet sent in it
    // (open loop: it does not wait for the server) and nothing was acked. At most the seconds the
    // stall touched, plus the one in which the first acks after it came.
    const frozen = r.timeseries.filter((p) => p.sent > 0 && p.acked === 0);
    assert.ok(
      frozen.length >= 1 && frozen.length <= Math.ceil(stallMs / 1000) + 1,
      `stall ${Math.round(stallMs)} ms; seconds with sends and no ack: ${JSON.stringify(r.timeseries.map((p) => [p.t, p.sent, p.acked]))}`,
    );
    // After SIGCONT everything arrives.
    assert.equal(r.updates.acked, r.updates.sent);
    assert.equal(r.delivery.missing, 0);
    assert.equal(r.delivery.phantom, 0);
  });
});

test('a fleet given too much work for its CPU reports invalid, with the reason', { timeout: 60_000 }, async () => {
  await withServer('batched', { boards: 100, cardsPerBoard: 10 }, async (srv) => {
    let pids: number[] = [];
    const r = await runFleet(
      // One worker asked for 100 users x 1,000 updates/s = 100,000 sends/s: far beyond one core.
      {
        url: srv.wsUrl,
        connections: 100,
        perBoard: 1,
        cardsPerBoard: 10,
        updatesPerUserPerMin: 60_000,
        workers: 1,
        warmupSec: 0.5,
        durationSec: 3,
        drainSec: 2,
      },
      { onWorkers: (w) => (pids = w) },
    );
    assert.equal(r.status, 'invalid', JSON.stringify(r.reasons));
    // Whichever shows first on a loaded machine (the lag of what it sent, what it never sent, its CPU
    // or its event loop), the fleet names itself as the limit.
    assert.ok(
      r.reasons.some((s) => /the fleet fell behind its own schedule|the fleet saturated its CPU|event-loop delay p99 [\d.]+ ms exceeds/.test(s)),
      r.reasons.join('; '),
    );
    noneAlive(pids);
  });
});

test('two servers, one fleet: board b goes to the ((b-1) mod 2)-th URL', { timeout: 60_000 }, async () => {
  await withServer('batched', { boards: 4, cardsPerBoard: 10 }, async (a) => {
    await withServer('batched', { boards: 4, cardsPerBoard: 10 }, async (b) => {
      const r = await runFleet({
        url: [a.wsUrl, b.wsUrl],
        connections: 40,
        perBoard: 10,
        updatesPerUserPerMin: 60,
        warmupSec: 0.5,
        durationSec: 2,
        drainSec: 3,
        guard: LOOSE,
      });
      assertClean(r, 40);
      assert.deepEqual(r.config.urls, [a.wsUrl, b.wsUrl]);
      // Each server stored only its own boards' updates: 1 and 3 on the first, 2 and 4 on the second.
      const boardsOf = (s: TestServer): number[] => {
        const db = new Database(s.db, { readonly: true });
        try {
          return (db.prepare('SELECT DISTINCT board_id FROM card_events ORDER BY board_id').pluck().all() as number[]).map(Number);
        } finally {
          db.close();
        }
      };
      assert.deepEqual(boardsOf(a), [1, 3]);
      assert.deepEqual(boardsOf(b), [2, 4]);
    });
  });
});

test('abort stops every worker and rejects', { timeout: 30_000 }, async () => {
  await withServer('batched', { boards: 10, cardsPerBoard: 10 }, async (srv) => {
    const ac = new AbortController();
    let pids: number[] = [];
    const p = runFleet(
      { url: srv.wsUrl, connections: 50, perBoard: 5, cardsPerBoard: 10, updatesPerUserPerMin: 60, warmupSec: 1, durationSec: 30 },
      { signal: ac.signal, onWorkers: (w) => (pids = w), onPhase: (ph) => ph === 'warmup' && ac.abort() },
    );
    await assert.rejects(p, /aborted|AbortError/);
    assert.equal(pids.length, 2);
    noneAlive(pids);
  });
});

test('the cards come from the server: a database that is not the default layout works without --cards-per-board; a wrong one is refused before any socket opens', {
  timeout: 60_000,
}, async () => {
  // 12 cards per board: the old default of 20 would have sent most updates to cards of other boards (UNKNOWN_CARD).
  await withServer('batched', { boards: 4, cardsPerBoard: 12 }, async (srv) => {
    const base = { url: srv.wsUrl, connections: 40, perBoard: 10, updatesPerUserPerMin: 60, warmupSec: 0.5, durationSec: 2, drainSec: 3, guard: LOOSE };
    const r = await runFleet(base);
    assertClean(r, 40);
    assert.deepEqual(r.config.cards, { source: 'server', cardsPerBoard: 12, boards: 4 });
    let pids: number[] = [];
    await assert.rejects(
      runFleet({ ...base, cardsPerBoard: 20 }, { onWorkers: (w) => (pids = w) }),
      (e: unknown) =>
        e instanceof FleetConfigError &&
        e.flag === '--cards-per-board' &&
        e.message ===
          "--cards-per-board 20 does not match the server: board 1 has 12 cards, ids 1..12, the layout says 20 cards, ids 1..20; drop --cards-per-board to use the server's cards",
    );
    assert.deepEqual(pids, [], 'refused before any worker started');
    // More boards than the database has: refused, naming the board and what to do.
    await assert.rejects(runFleet({ ...base, connections: 50 }), /board 5 does not exist on the server \(GET http:\/\/127\.0\.0\.1:\d+\/boards\/5: 404\)/);
  });
});
