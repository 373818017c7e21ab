import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { BurstTrim } from '../servers/common/burst-trim.js';

const MB = 1 << 20;
const OPTS = { minHandoffs: 3, delayMs: 1000, maxRounds: 4, minGainBytes: MB };

/** A fake heap: each collection takes it to the next size of `steps`. */
function fakeHeap(start: number, steps: number[]) {
  let heap = start;
  const calls: number[] = [];
  return {
    gc: () => {
      heap = steps.shift() ?? heap;
      calls.push(heap);
    },
    heapTotal: () => heap,
    calls,
  };
}

test('burst trim: collects once no socket waits after a burst, until a collection gives back less than minGain', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    // 115 -> 92 -> 24 -> 23.5: the third collection gives back 0.5 MB < 1 MB, so it is the last
    const h = fakeHeap(115 * MB, [92 * MB, 24 * MB, 23.5 * MB, 10 * MB]);
    const t = new BurstTrim(h.gc, h.heapTotal, OPTS);
    for (let i = 0; i < 3; i++) t.handedOff();
    t.idle();
    assert.deepEqual(h.calls, [], 'nothing before the delay');
    mock.timers.tick(999);
    assert.deepEqual(h.calls, []);
    mock.timers.tick(1);
    assert.deepEqual(h.calls, [92 * MB]);
    // each round is scheduled by the one before it: tick a round at a time
    mock.timers.tick(1000);
    mock.timers.tick(1000);
    assert.deepEqual(h.calls, [92 * MB, 24 * MB, 23.5 * MB]);
    for (let i = 0; i < 10; i++) mock.timers.tick(1000);
    assert.equal(t.rounds, 3, 'the 10 MB step is never reached');
  } finally {
    mock.timers.reset();
  }
});

test('burst trim: too few handoffs, no gc, a second idle while rounds run, maxRounds, stop', () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    // 2 handoffs < minHandoffs 3: nothing
    const a = fakeHeap(100 * MB, [50 * MB]);
    const ta = new BurstTrim(a.gc, a.heapTotal, OPTS);
    ta.handedOff();
    ta.handedOff();
    ta.idle();
    mock.timers.tick(5000);
    assert.deepEqual(a.calls, []);
    // no gc exposed: idle is a no-op
    const tn = new BurstTrim(undefined, () => 0, OPTS);
    for (let i = 0; i < 5; i++) tn.handedOff();
    tn.idle();
    mock.timers.tick(5000);
    assert.equal(tn.rounds, 0);
    // the queue empties for a moment mid-ramp (idle), then 3 more sockets come before the delay ends:
    // no collection at 1 s; the round looks again at 2 s and collects, with no other idle (the ramp's last
    // idle came while it was pending). Every collection gives back 10 MB: 4 rounds (maxRounds)
    const b = fakeHeap(100 * MB, [90 * MB, 80 * MB, 70 * MB, 60 * MB, 50 * MB, 40 * MB]);
    const tb = new BurstTrim(b.gc, b.heapTotal, OPTS);
    for (let i = 0; i < 3; i++) tb.handedOff();
    tb.idle();
    mock.timers.tick(500);
    for (let i = 0; i < 3; i++) tb.handedOff();
    tb.idle(); // a round is already scheduled: nothing more
    mock.timers.tick(500);
    assert.deepEqual(b.calls, [], 'sockets came during the delay');
    mock.timers.tick(1000);
    assert.deepEqual(b.calls, [90 * MB]);
    for (let i = 0; i < 20; i++) mock.timers.tick(1000);
    assert.deepEqual(b.calls, [90 * MB, 80 * MB, 70 * MB, 60 * MB]);
    // a new burst of 3; one more socket during the rounds puts the next round off by one delay
    for (let i = 0; i < 3; i++) tb.handedOff();
    tb.idle();
    mock.timers.tick(1000);
    assert.equal(b.calls.length, 5);
    tb.handedOff();
    mock.timers.tick(1000);
    assert.equal(b.calls.length, 5, 'put off');
    mock.timers.tick(1000);
    assert.deepEqual(b.calls.slice(4), [50 * MB, 40 * MB]);
    // stop cancels a scheduled round
    for (let i = 0; i < 20; i++) mock.timers.tick(1000);
    for (let i = 0; i < 3; i++) tb.handedOff();
    tb.idle();
    tb.stop();
    for (let i = 0; i < 20; i++) mock.timers.tick(1000);
    assert.equal(tb.rounds, b.calls.length);
  } finally {
    mock.timers.reset();
  }
});
