/**
 * The fleet against the real servers (port 0, child processes, no mocks): every socket reached and
 * every update accounted for on both variants; a frozen server shows in the corrected latency while
 * the schedule keeps sending; an overloaded fleet calls itself invalid; abort leaves no orphans.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runFleet, type FleetProgress } from '../clients/coordinator.js';
import type { FleetResult, Ledger } from '../model/fleet-result.js';
import { alive, startServer, type TestServer } from './helpers/server.js';

async function noneAlive(pids: number[]): Promise<void> {
  for (let i = 0; i < 50 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
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
  assert.deepEqual(r.fleet.nodeFlags, ['--max-semi-space-size=64']);
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
      const phases = new Set<string>();
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
        { onSecond: (p: FleetProgress) => phases.add(p.phase), onWorkers: (w) => (pids = w) },
      );
      assertClean(r, 200);
      assert.equal(pids.length, 2);
      await noneAlive(pids);
      for (const ph of ['connect', 'warmup', 'measure']) assert.ok(phases.has(ph), `phase ${ph} reported (${[...phases].join(',')})`);
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

test('a frozen server (SIGSTOP 1.5 s): corrected ackMs.max >= 1500 ms and the schedule kept sending', { timeout: 60_000 }, async () => {
  await withServer('batched', { boards: 20, cardsPerBoard: 10 }, async (srv) => {
    const pid = srv.child.pid!;
    let stalledSecond = -1;
    let stallDone: Promise<void> = Promise.resolve();
    const r = await runFleet(
      {
        url: srv.wsUrl,
        connections: 200,
        perBoard: 10,
        cardsPerBoard: 10,
        updatesPerUserPerMin: 60,
        warmupSec: 1,
        durationSec: 5,
        drainSec: 5,
        connectRatePerSec: 2000,
        guard: LOOSE,
      },
      {
        onSecond: (p) => {
          if (p.phase === 'measure' && stalledSecond < 0) {
            stalledSecond = p.t + 1; // the next second is (almost) wholly frozen
            process.kill(pid, 'SIGSTOP');
            stallDone = new Promise((res) =>
              setTimeout(() => {
                process.kill(pid, 'SIGCONT');
                res();
              }, 1500),
            );
          }
        },
      },
    );
    await stallDone;
    assert.ok(stalledSecond > 0, 'the stall happened');
    assert.ok(r.latency.ackMs.max >= 1500, `corrected ackMs.max ${r.latency.ackMs.max}`);
    assert.ok(r.latency.ackMs.uncorrected.max >= 1000, `uncorrected ackMs.max ${r.latency.ackMs.uncorrected.max}`);
    const frozen = r.timeseries.find((p) => p.t === stalledSecond);
    assert.ok(frozen, 'the frozen second is in the time series');
    assert.ok(frozen.sent > 50, `sent ${frozen.sent} in the frozen second`);
    assert.ok(frozen.acked < frozen.sent / 2, `acked ${frozen.acked} of ${frozen.sent} in the frozen second`);
    assert.ok(frozen.lagMsP99 < 500, `the fleet itself kept its schedule (lag p99 ${frozen.lagMsP99} ms)`);
    // After SIGCONT everything arrives.
    assert.equal(r.updates.acked, r.updates.sent);
    assert.equal(r.delivery.missing, 0);
    assert.equal(r.delivery.phantom, 0);
  });
});

test('a fleet given too much work for its CPU reports invalid, with the reason', { timeout: 60_000 }, async () => {
  await withServer('batched', { boards: 100, cardsPerBoard: 10 }, async (srv) => {
    const t = Date.now();
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
    assert.ok(
      r.reasons.some((s) => /schedule lag p99 [\d.]+ ms exceeds the bound of 50 ms/.test(s)),
      r.reasons.join('; '),
    );
    assert.ok(r.fleet.lagMsP99 > 50);
    assert.ok(Date.now() - t < 40_000, 'bounded in time');
    await noneAlive(pids);
  });
});

test('two servers, one fleet: board b goes to the ((b-1) mod 2)-th URL', { timeout: 60_000 }, async () => {
  await withServer('batched', { boards: 4, cardsPerBoard: 10 }, async (a) => {
    await withServer('batched', { boards: 4, cardsPerBoard: 10 }, async (b) => {
      const seen: Array<[number, number]> = [];
      const conns = async (s: TestServer): Promise<number> => ((await (await fetch(`${s.httpUrl}/healthz`)).json()) as { connections: number }).connections;
      let probe: Promise<void> | null = null;
      const r = await runFleet(
        {
          url: [a.wsUrl, b.wsUrl],
          connections: 40,
          perBoard: 10,
          cardsPerBoard: 10,
          updatesPerUserPerMin: 60,
          warmupSec: 0.5,
          durationSec: 2,
          drainSec: 3,
          guard: LOOSE,
        },
        {
          onSecond: (p) => {
            if (p.phase === 'measure' && probe === null) probe = Promise.all([conns(a), conns(b)]).then(([x, y]) => void seen.push([x, y]));
          },
        },
      );
      await probe;
      assertClean(r, 40);
      assert.deepEqual(seen, [[20, 20]], 'boards 1 and 3 on the first server, 2 and 4 on the second');
      assert.deepEqual(r.config.urls, [a.wsUrl, b.wsUrl]);
    });
  });
});

test('abort stops every worker and rejects', { timeout: 30_000 }, async () => {
  await withServer('batched', { boards: 10, cardsPerBoard: 10 }, async (srv) => {
    const ac = new AbortController();
    let pids: number[] = [];
    const p = runFleet(
      { url: srv.wsUrl, connections: 50, perBoard: 5, cardsPerBoard: 10, updatesPerUserPerMin: 60, warmupSec: 1, durationSec: 30 },
      { signal: ac.signal, onWorkers: (w) => (pids = w), onSecond: (s) => s.phase === 'warmup' && ac.abort() },
    );
    await assert.rejects(p, /aborted|AbortError/);
    assert.equal(pids.length, 2);
    await noneAlive(pids);
  });
});
