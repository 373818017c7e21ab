/** The rate axis of a capacity search, pure: the ladder, the stop rules, the signals and the fleet's ceiling, with exact numbers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ceilingNeededUpTo,
  newFleetCeiling,
  nextCeilingRate,
  nextRate,
  perUserRate,
  rateLadder,
  recordCeilingStep,
  recordRateStep,
  stepSignals,
  writeErrorRate,
  type RateConfig,
} from '../runner/capacity-rate.js';
import { capacityOutcome, capacityLines, newVariantState } from '../runner/capacity.js';
import type { SinkRunSummary } from '../runner/fleet-ceiling.js';
import { stopIsFleetLimit, type CapacityReport } from '../model/capacity.js';
import type { RunRecord } from '../model/result.js';
import { parseThreshold } from '../scenarios/thresholds.js';

const cfg: RateConfig = {
  slo: [parseThreshold('ackMs.p99 < 500')],
  connections: 1000,
  startRate: 500,
  factor: 1.5,
  maxRate: 5000,
  maxErrorRate: 0.001,
};

interface RunOpts {
  ackP99?: number;
  status?: RunRecord['status'];
  auditOk?: boolean;
  byCode?: Record<string, number>;
  sent?: number;
  kind?: RunRecord['variantKind'];
  flags?: string[];
}

function run(o: RunOpts = {}): RunRecord {
  const status = o.status ?? 'ok';
  const auditOk = o.auditOk ?? true;
  return {
    variantKind: o.kind ?? 'per-request',
    variantFlags: o.flags ?? ['--workers', '2'],
    stage: { index: 0, connections: 1000, durationSec: 6 },
    status,
    reasons: status === 'ok' ? [] : ['schedule lag p99 80 ms exceeds the bound of 50 ms'],
    window: { warmupSec: 2, durationSec: 6, startedAtIso: '', wallSec: 10 },
    latency: { ackMs: { p50: 4, p99: o.ackP99 ?? 100 }, fanoutMs: { p99: 50 } },
    updates: { sent: o.sent ?? 8000, acked: 8000, errored: 0, unanswered: 0 },
    errors: { total: 0, byCode: o.byCode ?? {}, byKind: {} },
    fleet: { lagMsP99: 3, eventLoopDelayMsP99: 2 },
    server: {
      updatesReceived: 8000,
      busyHits: 400,
      retries: 300,
      exhausted: o.byCode?.BUSY_EXHAUSTED ?? 0,
      txAttempts: { count: 8000, mean: 1.04, p50: 1, p99: 3, max: 7 },
      flushMs: o.kind === 'batched' ? { count: 80, mean: 20, p50: 18, p99: 140, max: 200 } : null,
      queueDepthPeak: 812,
      commitMs: { count: 8000, mean: 0.3, p50: 0.2, p99: 2.0004 },
      walBytesMax: 4_000_000,
      walBytesEnd: 3_900_000,
      walRestarts: 4,
      walBacklogFramesMax: 900,
      eventLoopDelayMsP99: 20,
      eventLoopDelayMsMaxProc: 31.5,
    },
    audit: { ok: auditOk, lostAcked: auditOk ? 0 : 3, phantom: 0 },
  } as unknown as RunRecord;
}

test('the rate ladder: round(start × factor^k), then the maximum', () => {
  assert.deepEqual(rateLadder(cfg), [500, 750, 1125, 1688, 2531, 3797, 5000]);
  assert.deepEqual(rateLadder({ startRate: 500, factor: 1.5, maxRate: 20_000 }), [500, 750, 1125, 1688, 2531, 3797, 5695, 8543, 12814, 19222, 20000]);
  assert.deepEqual(rateLadder({ startRate: 1, factor: 1.1, maxRate: 5 }), [1, 2, 3, 4, 5], 'each step at least one more than the last');
  assert.deepEqual(rateLadder({ startRate: 300, factor: 2, maxRate: 300 }), [300]);
  assert.throws(() => rateLadder({ startRate: 1, factor: 1, maxRate: 5 }), /factor must be above 1/);
  assert.equal(perUserRate(500, 1000), 30, '500 updates/s over 1,000 users is 30 per user per minute');
  assert.equal(perUserRate(12814, 1000), 768.84);
});

test('steps up the ladder until the SLO breaks; the knee is the last passing rate', () => {
  const v = newVariantState('per-request-2w');
  assert.equal(nextRate(v, cfg), 500);
  recordRateStep(v, 500, run({ ackP99: 40 }), cfg);
  assert.equal(nextRate(v, cfg), 750);
  recordRateStep(v, 750, run({ ackP99: 90 }), cfg);
  assert.equal(nextRate(v, cfg), 1125);
  recordRateStep(v, 1125, run({ ackP99: 640 }), cfg);
  assert.equal(nextRate(v, cfg), null);
  assert.equal(v.largestPassing, 750);
  assert.equal(v.stoppedAt, 1125);
  assert.equal(v.stoppedBecause, 'slo-broken');
  assert.equal(v.detail, 'the SLO broke at 1125 updates/s: ackMs.p99 < 500 (actual 640)');
  assert.deepEqual(
    v.steps.map((s) => [s.rate, s.connections, s.sloPass]),
    [
      [500, 1000, true],
      [750, 1000, true],
      [1125, 1000, false],
    ],
  );
});

test('write errors beyond the allowed share stop the search; at or under it they do not', () => {
  assert.equal(writeErrorRate(run({ byCode: { BUSY_EXHAUSTED: 6, OVERLOADED: 2, WRITE_FAILED: 0, BAD_MESSAGE: 50 }, sent: 8000 })), 0.001);
  const at = newVariantState('pr');
  recordRateStep(at, 500, run({ byCode: { BUSY_EXHAUSTED: 8 }, sent: 8000 }), cfg);
  assert.equal(at.stoppedBecause, null, '8 of 8,000 is exactly 0.1 %: not beyond it');
  assert.equal(at.largestPassing, 500);
  recordRateStep(at, 750, run({ byCode: { BUSY_EXHAUSTED: 9 }, sent: 8000 }), cfg);
  assert.equal(at.stoppedBecause, 'errors');
  assert.equal(at.largestPassing, 500);
  assert.equal(at.detail, 'at 750 updates/s, 0.11 % of 8000 updates sent answered with an error (BUSY_EXHAUSTED 9): more than the 0.1 % allowed');
  assert.equal(at.steps[1]!.signals!.errorRate, 0.001125);
});

test('stop order: errored, then the audit, then the fleet (naming the errors too), then errors, then the SLO; the maximum ends a passing search', () => {
  const e = newVariantState('a');
  recordRateStep(e, 500, run({ status: 'errored', auditOk: false }), cfg);
  assert.equal(e.stoppedBecause, 'errored');
  const a = newVariantState('b');
  recordRateStep(a, 500, run({ auditOk: false, byCode: { WRITE_FAILED: 100 } }), cfg);
  assert.equal(a.stoppedBecause, 'audit-failed');
  assert.equal(a.detail, 'the audit failed at 500 updates/s (lostAcked 3, phantom 0)');
  const f = newVariantState('c');
  recordRateStep(f, 500, run(), cfg);
  recordRateStep(f, 750, run({ status: 'invalid', byCode: { BUSY_EXHAUSTED: 560 }, ackP99: 6700 }), cfg);
  assert.equal(f.stoppedBecause, 'fleet-invalid');
  assert.equal(f.largestPassing, 500);
  assert.equal(
    f.detail,
    "at 750 updates/s the fleet could not hold its own schedule (schedule lag p99 80 ms exceeds the bound of 50 ms): this is the measuring machine's limit, not a measured limit of the server; the server also had 7 % of 8000 updates sent answered with an error (BUSY_EXHAUSTED 560); the SLO was also broken: ackMs.p99 < 500 (actual 6700)",
  );
  const err = newVariantState('d');
  recordRateStep(err, 500, run({ byCode: { OVERLOADED: 100 }, ackP99: 900 }), cfg);
  assert.equal(err.stoppedBecause, 'errors', 'errors before the SLO');
  const top = newVariantState('e');
  for (const r of rateLadder(cfg)) recordRateStep(top, r, run(), cfg);
  assert.equal(top.stoppedBecause, 'max-reached');
  assert.equal(top.largestPassing, 5000);
  assert.equal(top.detail, 'the SLO held up to the maximum asked for, 5000 updates/s');
  assert.equal(nextRate(top, cfg), null);
  assert.equal(capacityOutcome({ variants: [top, f] } as unknown as CapacityReport), 'ok');
  assert.equal(capacityOutcome({ variants: [top, a] } as unknown as CapacityReport), 'failed');
  assert.equal(capacityOutcome({ variants: [top, e] } as unknown as CapacityReport), 'errored');
});

test("a step's signals: rates, shares per update and each design's pressure", () => {
  const pr = stepSignals(run({ byCode: { BUSY_EXHAUSTED: 16, UNKNOWN_CARD: 1 } }), 1125);
  assert.deepEqual(pr, {
    offeredRate: 1125,
    sentRate: 1000,
    ackP50Ms: 4,
    ackP99Ms: 100,
    fanoutP99Ms: 50,
    errorRate: 0.002,
    errorsByCode: { BUSY_EXHAUSTED: 16, UNKNOWN_CARD: 1 },
    busyPerUpdate: 0.05,
    retriesPerUpdate: 0.0375,
    exhausted: 16,
    attemptsP99: 3,
    attemptsMax: 7,
    queueDepthPeak: 812,
    flushMsP99: null,
    flushMsMax: null,
    flushIntervalMs: null,
    overloaded: 0,
    commitMsP99: 2,
    walBytesMax: 4_000_000,
    walBytesEnd: 3_900_000,
    walRestarts: 4,
    walBacklogFramesMax: 900,
    eventLoopDelayMsMax: 31.5,
    fleetLagMsP99: 3,
    fleetEventLoopDelayMsP99: 2,
  });
  const b = stepSignals(run({ kind: 'batched', flags: ['--flush-interval-ms', '50'] }), 8000);
  assert.equal(b.flushIntervalMs, 50, 'from the run’s recorded argv');
  assert.equal(b.flushMsP99, 140);
  assert.equal(stepSignals(run({ kind: 'batched', flags: [] }), 8000).flushIntervalMs, 100, 'the default when not set');
});

test("the fleet's own ceiling: top-down from the highest rate run, until one holds", () => {
  const v1 = newVariantState('batched');
  const v2 = newVariantState('pr');
  for (const r of [500, 750, 1125]) recordRateStep(v1, r, run(), cfg);
  recordRateStep(v1, 1688, run({ ackP99: 900 }), cfg);
  for (const r of [500, 750]) recordRateStep(v2, r, run(), cfg);
  recordRateStep(v2, 1125, run({ ackP99: 900 }), cfg);
  const upTo = ceilingNeededUpTo([v1, v2]);
  assert.equal(upTo, 1688);
  const ladder = rateLadder(cfg);
  const ok = (rate: number): SinkRunSummary => ({ status: 'ok', reasons: [], sentRate: rate, lagMsP99: 2, eventLoopDelayMsP99: 1, cpuPctMax: 40, ackP99Ms: 3 });
  const bad = (rate: number): SinkRunSummary => ({ ...ok(rate), status: 'invalid', reasons: ['schedule lag p99 90 ms exceeds the bound of 50 ms'] });

  const held = newFleetCeiling();
  assert.equal(nextCeilingRate(held, ladder, upTo), 1688);
  recordCeilingStep(held, 1688, ok(1688), upTo!);
  assert.equal(nextCeilingRate(held, ladder, upTo), null, 'one step when the fleet holds the top');
  assert.equal(held.largestValid, 1688);
  assert.equal(held.firstInvalid, null);
  assert.equal(
    held.detail,
    "against a no-op sink the fleet held its schedule at 1688 updates/s, the highest rate any variant was run at: no SLO or error knee here is past the fleet's own ceiling (a step where the fleet fell behind beside a server is still the machine's limit: server and fleet share its cores)",
  );
  assert.equal(stopIsFleetLimit(v1, held), false);

  const c = newFleetCeiling();
  recordCeilingStep(c, 1688, bad(1688), upTo!);
  assert.equal(nextCeilingRate(c, ladder, upTo), 1125);
  recordCeilingStep(c, 1125, ok(1125), upTo!);
  assert.equal(nextCeilingRate(c, ladder, upTo), null);
  assert.equal(c.largestValid, 1125);
  assert.equal(c.firstInvalid, 1688);
  assert.equal(
    c.detail,
    "against a no-op sink the fleet could not hold 1688 updates/s; it held 1125: a knee at or above 1688 updates/s is the fleet's (the measuring machine's) limit, not the server's",
  );
  assert.equal(stopIsFleetLimit(v1, c), true, "batched's stop at 1688 is the fleet's limit");
  assert.equal(stopIsFleetLimit(v2, c), false, "per-request's stop at 1125 is its own");
  const report = { axis: 'rate', slo: [], variants: [v1, v2], fleetCeiling: c } as unknown as CapacityReport;
  assert.deepEqual(capacityLines(report), [
    'batched: 1125 updates/s — the SLO broke at 1688 updates/s: ackMs.p99 < 500 (actual 900) (at or past the fleet’s own ceiling)',
    'pr: 750 updates/s — the SLO broke at 1125 updates/s: ackMs.p99 < 500 (actual 900)',
    `fleet ceiling: ${c.detail}`,
  ]);

  const none = newFleetCeiling();
  for (let r = nextCeilingRate(none, ladder, upTo); r !== null; r = nextCeilingRate(none, ladder, upTo)) recordCeilingStep(none, r, bad(r), upTo!);
  assert.deepEqual(
    none.steps.map((s) => s.rate),
    [1688, 1125, 750, 500],
  );
  assert.equal(none.largestValid, null);
  assert.equal(none.firstInvalid, 500);

  const errored = newFleetCeiling();
  recordCeilingStep(errored, 1688, { ...ok(1688), status: 'errored', reasons: ['sink exited'] }, upTo!);
  assert.equal(nextCeilingRate(errored, ladder, upTo), null, 'an errored step ends the measurement');
  assert.match(errored.detail, /^not measured: the fleet's run against the sink at 1688 updates\/s errored \(sink exited\)/);
  assert.equal(nextCeilingRate(newFleetCeiling(), ladder, null), null, 'nothing ran: nothing to measure');
});
