/** The servers' pure logic with exact numbers: the bounded queue, the split policy, the retry policy, delivery order, the card index. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BoundedQueue, commitWithSplit, DEFAULT_SPLIT_POLICY, type TryCommit } from '../servers/batched/batching.js';
import { resolvePerRequestOptions } from '../model/variants.js';
import { retryPolicyOf } from '../servers/per-request/config.js';
import { backoffMs, decideRetry, validateRetryPolicy, type RetryPolicy } from '../servers/per-request/retry-policy.js';

import { BoardFeeds } from '../servers/per-request/delivery.js';
import { CardIndex } from '../servers/common/boards.js';

test('BoundedQueue: push up to the bound, then refuse; takeAll empties in order', () => {
  const q = new BoundedQueue<number>(3);
  assert.deepEqual([q.push(1), q.push(2), q.push(3), q.push(4)], [true, true, true, false]);
  assert.equal(q.length, 3);
  assert.equal(q.hasRoom(), false);
  assert.deepEqual(q.takeAll(), [1, 2, 3]);
  assert.equal(q.length, 0);
  assert.equal(q.hasRoom(3), true);
  assert.equal(q.hasRoom(4), false);
  assert.deepEqual(q.takeAll(), []);
  assert.throws(() => new BoundedQueue(0), RangeError);
});

/** A fake transaction over numbers: fails if the range contains a bad item. */
function fakeTx(bad: Set<number>, log: number[][], transient = 0): TryCommit<number> {
  let clock = 0;
  let transientLeft = transient;
  return (items) => {
    log.push([...items]);
    const start = clock;
    clock += items.length;
    if (transientLeft > 0) {
      transientLeft--;
      return { ok: false, error: Object.assign(new Error('busy'), { code: 'SQLITE_BUSY' }) };
    }
    const b = items.find((i) => bad.has(i));
    if (b !== undefined) return { ok: false, error: Object.assign(new Error(`bad ${b}`), { code: 'SQLITE_CONSTRAINT_UNIQUE' }) };
    return { ok: true, startMs: start, endMs: clock };
  };
}

test('commitWithSplit: a clean batch is one transaction', () => {
  const log: number[][] = [];
  const r = commitWithSplit([1, 2, 3, 4], fakeTx(new Set(), log));
  assert.deepEqual(log, [[1, 2, 3, 4]]);
  assert.deepEqual(
    r.outcomes,
    [1, 2, 3, 4].map(() => ({ ok: true, attempts: 1, startMs: 0, endMs: 4, size: 4 })),
  );
  assert.deepEqual(r.tx, [{ size: 4, ok: true, durationMs: 4 }]);
  assert.equal(r.splits, 0);
  assert.equal(r.retries, 0);
});

test('commitWithSplit: one bad row among 8 is isolated by bisection with retries 0 (exact transactions)', () => {
  const log: number[][] = [];
  const r = commitWithSplit([0, 1, 2, 3, 4, 5, 6, 7], fakeTx(new Set([5]), log), { ...DEFAULT_SPLIT_POLICY, retries: 0 });
  assert.deepEqual(log, [[0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3], [4, 5, 6, 7], [4, 5], [4], [5], [6, 7]]);
  assert.deepEqual(
    r.outcomes.map((o) => (o.ok ? `ok${o.attempts}/${o.size}` : `fail${o.attempts}`)),
    ['ok2/4', 'ok2/4', 'ok2/4', 'ok2/4', 'ok4/1', 'fail4', 'ok3/2', 'ok3/2'],
  );
  assert.equal(r.splits, 3);
  assert.equal(r.retries, 0);
  assert.deepEqual(
    r.tx.map((t) => `${t.size}${t.ok ? '+' : '-'}`),
    ['8-', '4+', '4-', '2-', '1+', '1-', '2+'],
  );
  const failed = r.outcomes[5]!;
  assert.ok(!failed.ok && /bad 5/.test(String((failed.error as Error).message)));
});

test('commitWithSplit: default policy retries each failing range once before splitting', () => {
  const log: number[][] = [];
  const r = commitWithSplit([0, 1, 2], fakeTx(new Set([2]), log));
  // [0,1,2] x2 -> split [0,1] ok, [2] x2 fail
  assert.deepEqual(log, [[0, 1, 2], [0, 1, 2], [0, 1], [2], [2]]);
  assert.deepEqual(
    r.outcomes.map((o) => (o.ok ? `ok${o.attempts}` : `fail${o.attempts}`)),
    ['ok3', 'ok3', 'fail4'],
  );
  assert.equal(r.retries, 2);
  assert.equal(r.splits, 1);
});

test('commitWithSplit: a transient busy error is retried, and not split when it persists', () => {
  let log: number[][] = [];
  let r = commitWithSplit([1, 2, 3, 4], fakeTx(new Set(), log, 1));
  assert.deepEqual(log, [
    [1, 2, 3, 4],
    [1, 2, 3, 4],
  ]);
  assert.ok(r.outcomes.every((o) => o.ok && o.attempts === 2));
  assert.equal(r.retries, 1);

  log = [];
  r = commitWithSplit([1, 2, 3, 4], fakeTx(new Set(), log, 99), { ...DEFAULT_SPLIT_POLICY, retries: 2 });
  assert.equal(log.length, 3, 'three tries of the whole range, no split');
  assert.equal(r.splits, 0);
  assert.ok(r.outcomes.every((o) => !o.ok && o.attempts === 3));
});

test('commitWithSplit: every row bad -> each fails alone, nothing lost silently; empty batch does nothing', () => {
  const log: number[][] = [];
  const r = commitWithSplit([1, 2, 3], fakeTx(new Set([1, 2, 3]), log), { ...DEFAULT_SPLIT_POLICY, retries: 0 });
  assert.equal(r.outcomes.filter((o) => !o.ok).length, 3);
  assert.deepEqual(log, [[1, 2, 3], [1, 2], [1], [2], [3]]);
  const none = commitWithSplit([], fakeTx(new Set(), []));
  assert.deepEqual(none.outcomes, []);
  assert.deepEqual(none.tx, []);
});

/** The policy a per-request server runs with when no option is set. */
const DEFAULT_RETRY_POLICY = retryPolicyOf(resolvePerRequestOptions({}, 1));
const P: RetryPolicy = { maxAttempts: 5, deadlineMs: 100, baseMs: 2, maxMs: 10 };

test('backoff: equal jitter over a capped exponential (exact)', () => {
  // cap = min(10, 2 * 2^(n-1)): 2, 4, 8, 10, 10
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((n) => backoffMs(n, P, () => 0)),
    [1, 2, 4, 5, 5],
  );
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((n) => backoffMs(n, P, () => 0.5)),
    [1.5, 3, 6, 7.5, 7.5],
  );
  assert.deepEqual(
    [1, 2, 3, 4].map((n) => backoffMs(n, P, () => 0.75)),
    [1.75, 3.5, 7, 8.75],
  );
  // defaults: 1 ms base, 50 ms cap
  assert.deepEqual(
    [1, 2, 6, 7, 20].map((n) => backoffMs(n, DEFAULT_RETRY_POLICY, () => 0)),
    [0.5, 1, 16, 25, 25],
  );
});

test('decideRetry: attempts, deadline, and the last delay shortened to the deadline', () => {
  assert.deepEqual(
    decideRetry(1, 0, P, () => 0),
    { retry: true, delayMs: 1 },
  );
  assert.deepEqual(
    decideRetry(4, 10, P, () => 1),
    { retry: true, delayMs: 10 },
  );
  assert.deepEqual(
    decideRetry(5, 10, P, () => 0),
    { retry: false, reason: 'attempts' },
  );
  assert.deepEqual(
    decideRetry(2, 100, P, () => 0),
    { retry: false, reason: 'deadline' },
  );
  assert.deepEqual(
    decideRetry(3, 97, P, () => 0),
    { retry: true, delayMs: 3 },
  );
  assert.deepEqual(
    decideRetry(1, 0, { ...P, maxAttempts: 1 }, () => 0),
    { retry: false, reason: 'attempts' },
  );
  // simulate one update against a lock held forever: total attempts and waited time are exact
  let elapsed = 0;
  let attempts = 0;
  for (;;) {
    attempts++;
    const d = decideRetry(attempts, elapsed, { ...P, maxAttempts: 100 }, () => 0.5);
    if (!d.retry) {
      assert.equal(d.reason, 'deadline');
      break;
    }
    elapsed += d.delayMs;
  }
  // attempts 1..14 fail and wait 1.5, 3, 6, then 7.5 x 11 (= 93 ms); attempt 15 waits 7 (shortened
  // to the deadline); attempt 16 starts at exactly 100 ms and is the last
  assert.equal(attempts, 16);
  assert.equal(elapsed, 100);
  assert.equal(validateRetryPolicy(DEFAULT_RETRY_POLICY), null);
  assert.match(String(validateRetryPolicy({ ...P, maxMs: 1 })), /maxMs/);
  assert.match(String(validateRetryPolicy({ ...P, maxAttempts: 0 })), /maxAttempts/);
});

test('validateRetryPolicy: each bound at its edge, and the exact problem named', () => {
  // P = { maxAttempts: 5, deadlineMs: 100, baseMs: 2, maxMs: 10 }
  // the smallest valid values: one attempt, a zero deadline, a zero base, a cap equal to the base
  assert.equal(validateRetryPolicy({ ...P, maxAttempts: 1 }), null);
  assert.equal(validateRetryPolicy({ ...P, deadlineMs: 0 }), null);
  assert.equal(validateRetryPolicy({ maxAttempts: 5, deadlineMs: 100, baseMs: 0, maxMs: 0 }), null);
  assert.equal(validateRetryPolicy({ ...P, maxMs: 2 }), null);
  // just past each edge, and NaN (which fails every comparison)
  assert.equal(validateRetryPolicy({ ...P, maxAttempts: 1.5 }), 'maxAttempts must be an integer >= 1, got 1.5');
  assert.equal(validateRetryPolicy({ ...P, deadlineMs: -1 }), 'deadlineMs must be >= 0, got -1');
  assert.equal(validateRetryPolicy({ ...P, deadlineMs: Number.NaN }), 'deadlineMs must be >= 0, got NaN');
  assert.equal(validateRetryPolicy({ ...P, baseMs: -1 }), 'baseMs must be >= 0, got -1');
  assert.equal(validateRetryPolicy({ ...P, baseMs: Number.NaN }), 'baseMs must be >= 0, got NaN');
  assert.equal(validateRetryPolicy({ ...P, maxMs: 1.5 }), 'maxMs (1.5) must be >= baseMs (2)');
});

test('BoardFeeds: seq order, each once, no echo, across own commits and polled rows', () => {
  const got: string[] = [];
  const feeds = new BoardFeeds<string>((members, except, frame) => {
    for (const m of members) if (m !== except) got.push(`${m}:${frame}`);
  });
  let seq = 10;
  feeds.join(1, 'a', () => seq);
  feeds.join(1, 'b', () => 999); // board already has a feed: its start seq is not read again
  feeds.join(2, 'c', () => 0);
  assert.equal(feeds.lastSeq(1), 10);
  // own commit, next seq: delivered at once to the others
  feeds.committed(1, 11, 'a', () => 's11');
  assert.deepEqual(got.splice(0), ['b:s11']);
  // another process committed 12; we commit 13 before polling it: 13 must wait
  feeds.committed(1, 13, 'b', () => 's13');
  assert.deepEqual(got, []);
  // the poll brings 11 (already delivered), 12 (foreign), 13 (own, skipping b), and board 2's row
  feeds.polled([
    { board: 1, seq: 11, frame: () => 'x' },
    { board: 2, seq: 1, frame: () => 'q1' },
    { board: 1, seq: 12, frame: () => 's12' },
    { board: 1, seq: 13, frame: () => 's13' },
    { board: 3, seq: 5, frame: () => 'nobody' },
  ]);
  assert.deepEqual(got.splice(0), ['c:q1', 'a:s12', 'b:s12', 'a:s13']);
  // a gap in stored seqs (e.g. a seq never stored) is crossed, counted, and order kept
  feeds.polled([{ board: 1, seq: 15, frame: () => 's15' }]);
  assert.deepEqual(got.splice(0), ['a:s15', 'b:s15']);
  assert.equal(feeds.gaps, 1);
  // last member leaves: the feed is dropped and restarts from the board's seq on the next join
  feeds.leave(2, 'c');
  assert.equal(feeds.lastSeq(2), undefined);
  seq = 7;
  feeds.join(2, 'c', () => seq);
  feeds.polled([
    { board: 2, seq: 7, frame: () => 'old' },
    { board: 2, seq: 8, frame: () => 'new' },
  ]);
  assert.deepEqual(got.splice(0), ['c:new']);
  assert.equal(feeds.activeBoards, 2);
});

test('CardIndex: dense and sparse ids give the same answers', () => {
  const dense = CardIndex.fromPairs([
    [1, 1],
    [2, 1],
    [3, 2],
  ]);
  const sparse = CardIndex.fromPairs([
    [1, 1],
    [2, 1],
    [3, 2],
    [10_000_000, 9],
  ]);
  for (const ix of [dense, sparse]) {
    assert.equal(ix.boardOf(1), 1);
    assert.equal(ix.boardOf(3), 2);
    assert.equal(ix.boardOf(0), undefined);
    assert.equal(ix.boardOf(4), undefined);
    assert.equal(ix.boardOf(-1), undefined);
  }
  assert.equal(sparse.boardOf(10_000_000), 9);
  assert.equal(dense.boardOf(10_000_000), undefined);
});

test("metrics: a scrape survives collectors that throw (EMFILE near the file limit), and the runner's names are all there", async () => {
  const { createMetrics, renderMetrics } = await import('../servers/common/metrics.js');
  const { METRIC_NAMES } = await import('../protocol/messages.js');
  const m = createMetrics({
    dbFile: '/nonexistent/wami.db',
    connections: () => {
      throw Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' });
    },
    queueDepth: () => 7,
  });
  const orig = process.memoryUsage;
  const origCpu = process.cpuUsage;
  // prom-client guards memoryUsage itself but not cpuUsage: our guard must keep the scrape whole
  process.cpuUsage = () => {
    throw Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' });
  };
  process.memoryUsage = Object.assign(
    () => {
      throw Object.assign(new Error('EMFILE: too many open files, uv_resident_set_memory'), { code: 'EMFILE' });
    },
    { rss: () => 0 },
  ) as typeof process.memoryUsage;
  try {
    const text = await renderMetrics(m);
    for (const n of METRIC_NAMES) assert.match(text, new RegExp(`^# TYPE ${n} `, 'm'), n);
    // a collector that throws leaves its sample out (unknown), never 0; the family is still declared
    assert.doesNotMatch(text, /^wami_connections /m, 'no sample from a failed collector');
    assert.match(text, /^wami_queue_depth 7$/m);
    assert.match(text, /^wami_wal_bytes 0$/m, 'no -wal file is 0 bytes, a known value');
    assert.match(text, /^# TYPE nodejs_eventloop_lag_p99_seconds gauge$/m);
    assert.match(text, /^# TYPE process_resident_memory_bytes gauge$/m);
  } finally {
    process.memoryUsage = orig;
    process.cpuUsage = origCpu;
  }
});

test('metrics: a collector that returns NaN or fails a stat leaves the sample out; a partial gauge is left out of the aggregate', async () => {
  const { aggregateMetrics, createMetrics, metricsJson, renderMetrics } = await import('../servers/common/metrics.js');
  const dir = mkdtempSync(join(tmpdir(), 'wami-metrics-'));
  try {
    // the -wal path is a directory's child under a file: stat fails with ENOTDIR, not ENOENT
    writeFileSync(join(dir, 'file'), '');
    const failing = createMetrics({ dbFile: join(dir, 'file', 'x.db'), connections: () => Number.NaN, queueDepth: () => 3, seqLeaseHeld: () => 2 });
    const text = await renderMetrics(failing);
    assert.doesNotMatch(text, /^wami_connections /m);
    assert.doesNotMatch(text, /^wami_wal_bytes /m, 'a stat that fails for another reason than ENOENT is unknown');
    assert.match(text, /^wami_queue_depth 3$/m);
    assert.match(text, /^wami_seq_lease_held 2$/m);
    writeFileSync(join(dir, 'ok.db-wal'), Buffer.alloc(4096));
    const ok = createMetrics({ dbFile: join(dir, 'ok.db'), connections: () => 5, queueDepth: () => 4 });
    assert.match(await renderMetrics(ok), /^wami_wal_bytes 4096$/m);
    // two processes: one knows its connections, the other does not -> the sum is unknown, not 5
    const agg = await aggregateMetrics([await metricsJson(failing), await metricsJson(ok)]);
    assert.doesNotMatch(agg, /^wami_connections /m, 'a sum over the processes that answered would be wrong');
    assert.match(agg, /^wami_queue_depth 7$/m, 'a gauge every process reported is summed');
    const both = await aggregateMetrics([await metricsJson(ok), await metricsJson(ok)]);
    assert.match(both, /^wami_connections 10$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
