/** Exact numbers of the fleet's pure parts: PRNG, seeded schedule, board assignment, heap, seq sets. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boardOfUser, cardId } from '../protocol/layout.js';
import { COLUMNS } from '../protocol/messages.js';
import { hashString, nextRandom, seed32, userSeed } from '../clients/prng.js';
import { initUserSchedule, drawUpdate, messageId, messageIndex, planUser, timeAtIntensity, type ScheduleConfig } from '../clients/schedule.js';
import { TimeHeap } from '../clients/heap.js';
import { SeqSet } from '../clients/seqset.js';

const r9 = (x: number): number => Math.round(x * 1e9) / 1e9;
const base: ScheduleConfig = { seed: 42, perBoard: 10, cardsPerBoard: 20, updatesPerUserPerMin: 60, arrival: 'poisson', windowMs: 5000 };

test('PRNG: seeded streams are fixed numbers', () => {
  assert.equal(userSeed(42, 7), -1441195750);
  const h = { rng: userSeed(42, 7) };
  assert.deepEqual([nextRandom(h), nextRandom(h), nextRandom(h)].map(r9), [0.908853973, 0.547971506, 0.549473378]);
  assert.equal(hashString(1, 'abc'), 4191131704);
  assert.equal(seed32(2 ** 40 + 5), 2636841375);
  assert.notEqual(userSeed(42, 7), userSeed(42, 8));
  assert.notEqual(userSeed(42, 7), userSeed(43, 7));
});

test('schedule: poisson, seed 42, user 7 (exact)', () => {
  const plan = planUser(base, 7);
  assert.deepEqual(
    plan.map((p) => ({ ...p, offsetMs: r9(p.offsetMs) })),
    [
      { n: 0, offsetMs: 2395.292361512, card: 11, column: 'doing', title: 'u7 #0 to doing' },
      { n: 1, offsetMs: 3671.348558224, card: 5, column: 'backlog', title: 'u7 #1 to backlog' },
      { n: 2, offsetMs: 4718.296817666, card: 12, column: 'doing', title: 'u7 #2 to doing' },
    ],
  );
  // Same seed, same schedule; another seed, another one.
  assert.deepEqual(planUser(base, 7), plan);
  assert.notDeepEqual(planUser({ ...base, seed: 43 }, 7), plan);
});

test('schedule: fixed interval with a seeded phase (exact)', () => {
  const plan = planUser({ ...base, arrival: 'fixed' }, 7);
  assert.deepEqual(
    plan.map((p) => r9(p.offsetMs)),
    [908.853972564, 1908.853972564, 2908.853972564, 3908.853972564, 4908.853972564],
  );
  assert.deepEqual(
    plan.map((p) => p.card),
    [11, 15, 3, 12, 12],
  );
});

test('schedule: rate steps (piecewise rate via the cumulative intensity)', () => {
  const cfg: ScheduleConfig = {
    ...base,
    arrival: 'fixed',
    steps: [
      { atMs: 2000, updatesPerUserPerMin: 240 },
      { atMs: 3000, updatesPerUserPerMin: 0 },
    ],
  };
  assert.deepEqual(
    planUser(cfg, 7).map((p) => r9(p.offsetMs)),
    [908.853972564, 1908.853972564, 2227.213493141, 2477.213493141, 2727.213493141, 2977.213493141],
  );
  assert.equal(timeAtIntensity(cfg, 2), 2000);
  assert.equal(timeAtIntensity(cfg, 6.5), Infinity);
  // Λ(3000) = 2 + 1000 ms × 240/60000 per ms = 6 exactly, the instant the rate drops to 0: the arrival
  // is at 3000 (it was Infinity, which ended that user's schedule there)
  assert.equal(timeAtIntensity(cfg, 6), 3000);
  assert.equal(timeAtIntensity({ ...base }, 3), 3000);
});

test('schedule: poisson mean rate is the asked rate (many users)', () => {
  let n = 0;
  for (let u = 0; u < 2000; u++) n += planUser({ ...base, windowMs: 600_000 }, u).length;
  assert.equal(n, 1_201_711);
  const perUserPer10Min = n / 2000;
  assert.ok(Math.abs(perUserPer10Min - 600) < 6, `mean ${perUserPer10Min}`);
});

test("schedule: every update is a card of the user's own board, a v1 column, window respected, rate 0 sends nothing", () => {
  const cfg = { ...base, perBoard: 3, cardsPerBoard: 5, updatesPerUserPerMin: 600 };
  for (let u = 0; u < 30; u++) {
    const b = boardOfUser(u, 3);
    for (const p of planUser(cfg, u)) {
      assert.ok(p.card >= cardId(b, 0, 5) && p.card <= cardId(b, 4, 5), `user ${u} card ${p.card} board ${b}`);
      assert.ok((COLUMNS as readonly string[]).includes(p.column));
      assert.ok(p.offsetMs >= 0 && p.offsetMs < cfg.windowMs);
    }
  }
  assert.deepEqual(planUser({ ...base, updatesPerUserPerMin: 0 }, 1), []);
  const s = initUserSchedule(base, 3);
  const first = drawUpdate(base, s);
  assert.equal(first.n, 0);
  assert.equal(s.n, 1);
});

test('board assignment: user u -> floor(u / perBoard) + 1, cards of board b', () => {
  assert.deepEqual(
    [0, 9, 10, 19, 20, 29999].map((u) => boardOfUser(u, 10)),
    [1, 1, 2, 2, 3, 3000],
  );
  assert.deepEqual(
    [0, 1, 2].map((k) => cardId(3, k, 20)),
    [41, 42, 43],
  );
  assert.equal(initUserSchedule({ ...base, perBoard: 25 }, 50).board, 3);
});

test('message ids round-trip and reject foreign ids', () => {
  assert.equal(messageId('ab12', 7), 'ab12-7');
  assert.equal(messageIndex('ab12', 'ab12-7'), 7);
  assert.equal(messageIndex('ab12', 'ab12-'), -1);
  assert.equal(messageIndex('ab12', 'ab13-7'), -1);
  assert.equal(messageIndex('ab12', 'ab12-7x'), -1);
  assert.equal(messageIndex('ab12', 'ab127'), -1);
});

test('TimeHeap pops in time order', () => {
  const h = new TimeHeap(100);
  const times = [5, 3, 9, 1, 7, 3.5, 0, 8, 2, 6];
  times.forEach((t, i) => {
    h.push(t, i);
  });
  assert.equal(h.peekTime(), 0);
  const out: number[] = [];
  while (h.size > 0) out.push(times[h.pop()]!);
  assert.deepEqual(
    out,
    [...times].sort((a, b) => a - b),
  );
  assert.equal(h.pop(), -1);
  assert.equal(h.peekTime(), Infinity);
  const full = new TimeHeap(1);
  full.push(1, 1);
  assert.throws(() => full.push(2, 2), RangeError);
});

test('SeqSet: ranges, duplicates, out-of-order inserts merge', () => {
  const s = new SeqSet();
  for (const x of [1, 2, 3, 5, 6, 9]) assert.equal(s.add(x), true);
  assert.deepEqual(s.ranges(), [
    [1, 3],
    [5, 6],
    [9, 9],
  ]);
  assert.equal(s.add(2), false);
  assert.equal(s.add(4), true); // joins both neighbours
  assert.deepEqual(s.ranges(), [
    [1, 6],
    [9, 9],
  ]);
  assert.equal(s.add(8), true); // joins next
  assert.equal(s.add(11), true);
  assert.equal(s.add(0), true); // joins first
  assert.deepEqual(s.ranges(), [
    [0, 6],
    [8, 9],
    [11, 11],
  ]);
  assert.equal(s.has(7), false);
  assert.equal(s.has(8), true);
  assert.equal(s.size, 10);
  const seen: number[] = [];
  s.forEach((x) => {
    seen.push(x);
  });
  assert.deepEqual(seen, [0, 1, 2, 3, 4, 5, 6, 8, 9, 11]);
});
