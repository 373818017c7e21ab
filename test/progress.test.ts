/**
 * The progress line: fitted to the terminal's width with the most important fields kept (phase,
 * sockets, time left, p99s, errors), every field on a plain line when stderr is not a terminal.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FleetProgress } from '../clients/coordinator.js';
import { fitFields, fleetProgressFields, formatFleetProgress, Progress, progressFields, wrapFields, type ProgressState } from '../runner/progress.js';

const point = {
  t: 11,
  openSockets: 1000,
  sent: 98,
  acked: 97,
  errors: 2,
  delivered: 1862,
  ackP50Ms: 55,
  ackP99Ms: 179,
  fanoutP50Ms: 1.3,
  fanoutP99Ms: 29.8,
  lagMsP99: 15,
  fleetCpuPct: 41.4,
};
const state: ProgressState = { label: 'batched s1 r3', phase: 'measure', point, runLeftSec: 30, totalLeftSec: 273 };
const fleet: FleetProgress = { ...point, elapsedSec: 12, phase: 'measure', timeLeftSec: 25, connections: 1000 };

describe('wrapFields', () => {
  it('a field that does not fit starts the next line; past the last line, fields are left out', () => {
    assert.deepEqual(wrapFields(['aaaa', 'bbbbbbbb', 'cc', 'dddddddddd'], 12, 2), ['aaaa', 'bbbbbbbb  cc']);
    assert.deepEqual(wrapFields(['aaaa', 'bbbbbbbb', 'cc', 'dddddddddd'], 12, 3), ['aaaa', 'bbbbbbbb  cc', 'dddddddddd']);
    assert.deepEqual(wrapFields(['aaaa', 'bb'], 80, 2), ['aaaa  bb']);
    assert.deepEqual(wrapFields([], 80, 2), []);
  });
});

describe('fitFields', () => {
  it('keeps fields in order while they fit, leaves out one that does not, and a shorter later one may still fit', () => {
    assert.equal(fitFields(['aaaa', 'bbbbbbbb', 'cc'], 12), 'aaaa  cc');
    assert.equal(fitFields(['aaaa', 'bbbbbbbb', 'cc'], 14), 'aaaa  bbbbbbbb');
    assert.equal(fitFields(['aaaa', 'bbbbbbbb', 'cc'], 18), 'aaaa  bbbbbbbb  cc');
  });
  it('cuts the first field with … when even it does not fit; counts characters, not bytes', () => {
    assert.equal(fitFields(['[batched s1 r3] measure', 'x'], 10), '[batched …');
    assert.equal(fitFields(['µµµµ', 'ééé'], 9), 'µµµµ  ééé');
  });
});

describe('the session line', () => {
  it('every field, most important first', () => {
    assert.deepEqual(progressFields(state), [
      '[batched s1 r3] measure',
      'sockets 1000',
      'left 30s (all 4m33s)',
      'p99 fanout 29.8 ms ack 179 ms',
      'err 2/s',
      'lag 15 ms',
      'sent 98/s acked 97/s delivered 1862/s',
    ]);
  });
  it('on an 80-column terminal, two lines: phase, sockets, time left, p99s, errors and lag; only the throughput goes', () => {
    assert.deepEqual(wrapFields(progressFields(state), 79, 2), [
      '[batched s1 r3] measure  sockets 1000  left 30s (all 4m33s)',
      'p99 fanout 29.8 ms ack 179 ms  err 2/s  lag 15 ms',
    ]);
    assert.deepEqual(wrapFields(progressFields(state), 159, 2), [progressFields(state).join('  ')]);
  });
});

describe('the fleet line', () => {
  it('every field on a plain line', () => {
    assert.equal(
      formatFleetProgress(fleet),
      'fleet measure 12s  open 1000/1000  left 25s  p99 fanout 29.8 ms ack 179 ms  errors 2  lag p99 15 ms  sent 98/s acked 97/s delivered 1.9k/s  cpu 41%',
    );
    assert.deepEqual(wrapFields(fleetProgressFields(fleet), 79, 2), [
      'fleet measure 12s  open 1000/1000  left 25s  p99 fanout 29.8 ms ack 179 ms',
      'errors 2  lag p99 15 ms  sent 98/s acked 97/s delivered 1.9k/s  cpu 41%',
    ]);
  });
});

describe('Progress', () => {
  const sink = (isTTY: boolean, columns?: number) => {
    const out: string[] = [];
    return { out, stream: { isTTY, columns, write: (s: string) => out.push(s) } };
  };

  it('a terminal: the status rewritten in place, wrapped to its width; a log line clears it first', () => {
    const s = sink(true, 40);
    const p = new Progress(s.stream, false, 5000, () => 0);
    p.status(state);
    p.status({ ...state, phase: 'drain' });
    p.log('done');
    const clear = '\r\x1b[2K';
    const up = '\x1b[1A\r\x1b[2K';
    assert.deepEqual(s.out, [
      `${clear}[batched s1 r3] measure  sockets 1000\nleft 30s (all 4m33s)  err 2/s`,
      `${clear}${up}[batched s1 r3] drain  sockets 1000\nleft 30s (all 4m33s)  err 2/s`,
      `${clear}${up}`,
      'done\n',
    ]);
  });

  it('not a terminal: plain lines with every field, at most one per interval', () => {
    const s = sink(false);
    let now = 0;
    const p = new Progress(s.stream, false, 5000, () => now);
    p.status(state);
    now = 4999;
    p.status(state);
    now = 5000;
    p.status(state);
    assert.deepEqual(s.out, [`${progressFields(state).join('  ')}\n`, `${progressFields(state).join('  ')}\n`]);
  });

  it('quiet: nothing', () => {
    const s = sink(true, 80);
    const p = new Progress(s.stream, true);
    p.status(state);
    p.log('x');
    assert.deepEqual(s.out, []);
  });
});
