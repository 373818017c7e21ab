/** The report's write-ceiling parts, pure: each design's failure mode in words, one sentence per variant (the fleet's limit included), and the contention curve. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failureMode, writeScalability } from '../report/capacity.js';
import { contentionCurve } from '../report/contention.js';
import { logRange } from '../report/charts.js';
import type { StepSignals } from '../model/capacity.js';
import type { ResultFile, RunRecord } from '../model/result.js';

const base: StepSignals = {
  offeredRate: 8543,
  sentRate: 8500,
  ackP50Ms: 60,
  ackP99Ms: 640,
  fanoutP99Ms: 90,
  errorRate: 0,
  errorsByCode: {},
  busyPerUpdate: null,
  retriesPerUpdate: null,
  exhausted: 0,
  attemptsP99: null,
  attemptsMax: null,
  queueDepthPeak: 2400,
  flushMsP99: 180,
  flushMsMax: 200,
  flushIntervalMs: 100,
  overloaded: 0,
  commitMsP99: 95,
  walBytesMax: 8e6,
  walBytesEnd: 8e6,
  walRestarts: 30,
  walBacklogFramesMax: 1000,
  eventLoopDelayMsMax: 20,
  fleetLagMsP99: 3,
  fleetEventLoopDelayMsP99: 2,
};

test("each design's failure mode, from its own pressure signals", () => {
  assert.equal(
    failureMode('batched', base),
    'its writer falling behind: a flush takes 180 ms at p99 against a 100 ms interval (queue peak 2,400), ack p99 640 ms',
  );
  assert.equal(
    failureMode('batched', { ...base, overloaded: 900, errorRate: 0.0105, errorsByCode: { OVERLOADED: 900 } }),
    'OVERLOADED answers (the queue was full: peak 2,400 updates), 1.05 % of updates refused',
  );
  assert.equal(
    failureMode('batched', { ...base, flushMsP99: 40, eventLoopDelayMsMax: 120 }),
    'its event loop saturating (delay p99 120 ms), ack p99 640 ms and fan-out p99 90 ms',
  );
  assert.equal(failureMode('batched', { ...base, flushMsP99: 40 }), 'latency: ack p99 640 ms, fan-out p99 90 ms');
  const pr: StepSignals = { ...base, queueDepthPeak: 40, flushMsP99: null, flushIntervalMs: null, retriesPerUpdate: 0.8, attemptsP99: 9, busyPerUpdate: 0.8 };
  assert.equal(
    failureMode('per-request', { ...pr, errorRate: 0.073, errorsByCode: { BUSY_EXHAUSTED: 6414 }, exhausted: 6414 }),
    'BUSY_EXHAUSTED on 6,414 updates (7.3 % of those sent; 0.8 retries per update, attempts p99 9)',
  );
  assert.equal(failureMode('per-request', pr), 'SQLITE_BUSY contention (0.8 retries per update, attempts p99 9) pushing ack p99 to 640 ms');
  assert.equal(
    failureMode('per-request', { ...pr, retriesPerUpdate: 0.01, eventLoopDelayMsMax: 75 }),
    "its busiest worker's event loop saturating (delay p99 75 ms), ack p99 640 ms",
  );
});

function rateResult(): ResultFile {
  const step = (rate: number, g: Partial<StepSignals> = {}, status: 'ok' | 'invalid' = 'ok', sloPass = true) => ({
    connections: 1000,
    rate,
    status,
    sloPass,
    actual: {},
    signals: { ...base, offeredRate: rate, ...g },
  });
  return {
    environment: { cpuCount: 2 },
    runs: [
      { variant: 'batched', variantKind: 'batched', variantFlags: [] },
      { variant: 'pr-2w', variantKind: 'per-request', variantFlags: ['--workers', '2'] },
      { variant: 'pr-8w', variantKind: 'per-request', variantFlags: ['--workers', '8'] },
      { variant: 'baseline', variantKind: 'per-request', variantFlags: ['--workers', '2', '--tx-mode', 'deferred', '--busy-timeout-ms', '5'] },
    ],
    capacity: {
      axis: 'rate',
      slo: ['ackMs.p99 < 500'],
      startConnections: 1000,
      step: 0,
      maxConnections: 1000,
      durationSec: 6,
      rate: { startRate: 500, factor: 1.5, maxRate: 40000, maxErrorRate: 0.001, connections: 1000 },
      fleetCeiling: { largestValid: 8543, firstInvalid: 12814, steps: [], detail: '' },
      variants: [
        {
          variant: 'batched',
          steps: [step(5695), step(8543), step(12814, {}, 'ok', false)],
          largestPassing: 8543,
          stoppedAt: 12814,
          stoppedBecause: 'slo-broken',
          detail: '',
        },
        {
          variant: 'pr-2w',
          steps: [step(1688), step(2531, { flushIntervalMs: null, retriesPerUpdate: 0.4, attemptsP99: 5 }, 'ok', false)],
          largestPassing: 1688,
          stoppedAt: 2531,
          stoppedBecause: 'slo-broken',
          detail: '',
        },
        {
          variant: 'pr-8w',
          steps: [step(1125), step(1688, { errorRate: 0.02, errorsByCode: { BUSY_EXHAUSTED: 200 } }, 'invalid')],
          largestPassing: 1125,
          stoppedAt: 1688,
          stoppedBecause: 'fleet-invalid',
          detail: '',
        },
        {
          variant: 'baseline',
          steps: [step(500, { flushIntervalMs: null, errorRate: 0.05, errorsByCode: { BUSY_EXHAUSTED: 150 } })],
          largestPassing: null,
          stoppedAt: 500,
          stoppedBecause: 'errors',
          detail: '',
        },
      ],
    },
  } as unknown as ResultFile;
}

test('one sentence per variant: its knee, and what limits it, the fleet named when it was the limit', () => {
  const rows = writeScalability(rateResult());
  assert.deepEqual(
    rows.map((r) => [r.variant, r.label, r.knee, r.fleetLimit]),
    [
      ['batched', 'batched', 8543, true],
      ['pr-2w', 'per-request with 2 workers', 1688, false],
      ['pr-8w', 'per-request with 8 workers', 1125, true],
      ['baseline', 'per-request with 2 workers, the no-retry baseline', null, false],
    ],
  );
  assert.deepEqual(
    rows.map((r) => r.sentence),
    [
      'batched (batched) sustains 8,543 updates/s, limited by the fleet: at 12,814 updates/s it is past what the fleet could offer even to a no-op sink (8,543 updates/s); what the server showed there: its writer falling behind: a flush takes 180 ms at p99 against a 100 ms interval (queue peak 2,400), ack p99 640 ms.',
      'pr-2w (per-request with 2 workers) sustains 1,688 updates/s, then fails at 2,531 updates/s by SQLITE_BUSY contention (0.4 retries per update, attempts p99 5) pushing ack p99 to 640 ms.',
      'pr-8w (per-request with 8 workers) sustains 1,125 updates/s, limited by the fleet: at 1,688 updates/s the fleet could not keep its own schedule (the measuring machine’s limit, not the server’s); the server was also failing: BUSY_EXHAUSTED on 200 updates (2 % of those sent; retries unknown).',
      'baseline (per-request with 2 workers, the no-retry baseline) sustains none of the rates tried, then fails at 500 updates/s by BUSY_EXHAUSTED on 150 updates (5 % of those sent; retries unknown).',
    ],
  );
  assert.deepEqual(writeScalability({ ...rateResult(), capacity: { ...rateResult().capacity!, axis: 'sockets' } }), [], 'no panel on the sockets axis');
});

test('the contention curve: per-request by worker count, the baseline and batched apart', () => {
  const run = (
    variant: string,
    kind: 'batched' | 'per-request',
    flags: string[],
    o: { busy: number; retries: number; received: number; exhausted: number; sent: number; p999: number; p99Attempts: number | null; status?: string },
  ) =>
    ({
      variant,
      variantKind: kind,
      variantFlags: flags,
      status: o.status ?? 'ok',
      audit: { ok: true },
      server: { busyHits: o.busy, retries: o.retries, updatesReceived: o.received, txAttempts: o.p99Attempts === null ? null : { p99: o.p99Attempts } },
      updates: { sent: o.sent },
      errors: { byCode: o.exhausted ? { BUSY_EXHAUSTED: o.exhausted } : {} },
      latency: { ackMs: { p999: o.p999 } },
    }) as unknown as RunRecord;
  const runs = [
    run('pr-4w', 'per-request', ['--workers', '4'], { busy: 4000, retries: 3900, received: 20000, exhausted: 100, sent: 20000, p999: 900, p99Attempts: 8 }),
    run('pr-1w', 'per-request', ['--workers', '1'], { busy: 0, retries: 0, received: 20000, exhausted: 0, sent: 20000, p999: 40, p99Attempts: 1 }),
    run('pr-2w', 'per-request', [], { busy: 1000, retries: 990, received: 20000, exhausted: 10, sent: 20000, p999: 300, p99Attempts: 4 }),
    run('batched', 'batched', [], { busy: 0, retries: 0, received: 20000, exhausted: 0, sent: 20000, p999: 180, p99Attempts: 1 }),
    run('baseline', 'per-request', ['--workers', '2', '--tx-mode', 'deferred'], {
      busy: 900,
      retries: 0,
      received: 20000,
      exhausted: 900,
      sent: 20000,
      p999: 50,
      p99Attempts: 1,
    }),
  ];
  const c = contentionCurve(runs, 2)!;
  assert.deepEqual(
    c.perRequest.map((p) => [p.variant, p.workers, p.busyPerUpdate, p.retriesPerUpdate, p.exhaustedPct, p.attemptsP99, p.ackP999Ms]),
    [
      ['pr-1w', 1, 0, 0, 0, 1, 40],
      ['pr-2w', 2, 0.05, 0.0495, 0.05, 4, 300],
      ['pr-4w', 4, 0.2, 0.195, 0.5, 8, 900],
    ],
    'sorted by workers; pr-2w’s count is the default, one per CPU',
  );
  assert.deepEqual(
    c.baseline.map((p) => [p.variant, p.workers, p.exhaustedPct]),
    [['baseline', 2, 4.5]],
  );
  assert.deepEqual(c.batched, [{ variant: 'batched', ackP999Ms: 180, valid: true }]);
  assert.equal(contentionCurve([runs[0]!, runs[3]!], 2), null, 'one worker count: no curve');
});

test('a log axis widened to the 1-2-5 series', () => {
  assert.deepEqual(logRange(500, 750), { min: 500, max: 1000 });
  assert.deepEqual(logRange(500, 19222), { min: 500, max: 20000 });
  assert.deepEqual(logRange(1125, 1688), { min: 1000, max: 2000 });
  assert.deepEqual(logRange(40, 40), { min: 20, max: 50 }, 'one value: the series around it');
  assert.deepEqual(logRange(1, 16), { min: 1, max: 20 });
});
