import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capacityExitCode, newVariantState, nextConnections, recordStep, type CapacityConfig } from '../runner/capacity.js';
import { parseThreshold } from '../scenarios/thresholds.js';
import type { RunRecord } from '../model/result.js';

const cfg: CapacityConfig = { slo: [parseThreshold('fanoutMs.p99 < 250')], startConnections: 2500, step: 2500, maxConnections: 10000 };

function run(p99: number, status: RunRecord['status'] = 'ok', auditOk = true): RunRecord {
  return {
    status,
    reasons: status === 'ok' ? [] : ['schedule lag p99 80 ms exceeds 50 ms'],
    latency: { fanoutMs: { p99 } },
    audit: { ok: auditOk, lostAcked: auditOk ? 0 : 2, phantom: 0 },
  } as unknown as RunRecord;
}

test('steps up until the SLO breaks; the largest passing count is the last good step', () => {
  const v = newVariantState('batched');
  assert.equal(nextConnections(v, cfg), 2500);
  recordStep(v, 2500, run(20), cfg);
  assert.equal(nextConnections(v, cfg), 5000);
  recordStep(v, 5000, run(120), cfg);
  recordStep(v, 7500, run(300), cfg);
  assert.equal(nextConnections(v, cfg), null);
  assert.equal(v.largestPassing, 5000);
  assert.equal(v.stoppedAt, 7500);
  assert.equal(v.stoppedBecause, 'slo-broken');
  assert.equal(v.detail, 'the SLO broke at 7500 sockets: fanoutMs.p99 < 250 (actual 300)');
  assert.deepEqual(
    v.steps.map((s) => [s.connections, s.sloPass]),
    [
      [2500, true],
      [5000, true],
      [7500, false],
    ],
  );
});

test("an invalid fleet stops the search as the fleet's limit, not the server's", () => {
  const v = newVariantState('per-request');
  recordStep(v, 2500, run(20), cfg);
  recordStep(v, 5000, run(20, 'invalid'), cfg);
  assert.equal(v.largestPassing, 2500);
  assert.equal(v.stoppedBecause, 'fleet-invalid');
  assert.match(v.detail, /the measuring machine's limit, not a measured limit of the server/);
});

test('reaching the maximum, audit failures, errors, and exit codes', () => {
  const top = newVariantState('a');
  for (const c of [2500, 5000, 7500, 10000]) recordStep(top, c, run(10), cfg);
  assert.equal(top.stoppedBecause, 'max-reached');
  assert.equal(top.largestPassing, 10000);
  const audit = newVariantState('b');
  recordStep(audit, 2500, run(10, 'ok', false), cfg);
  assert.equal(audit.stoppedBecause, 'audit-failed');
  assert.equal(audit.largestPassing, null);
  const base = { slo: [], startConnections: 1, step: 1, maxConnections: 1, durationSec: 1 };
  assert.equal(capacityExitCode({ ...base, variants: [top] }), 0);
  assert.equal(capacityExitCode({ ...base, variants: [top, audit] }), 3);
  const err = newVariantState('c');
  recordStep(err, 2500, run(10, 'errored'), cfg);
  assert.equal(capacityExitCode({ ...base, variants: [top, err] }), 1);
  const errLate = newVariantState('e');
  recordStep(errLate, 2500, run(10), cfg);
  recordStep(errLate, 5000, run(10, 'errored'), cfg);
  assert.equal(errLate.largestPassing, 2500);
  assert.equal(capacityExitCode({ ...base, variants: [top, errLate] }), 1, 'a crash after a passing step still makes the search incomplete');
  assert.equal(nextConnections(newVariantState('d'), { ...cfg, startConnections: 20000 }), 10000, 'never beyond the maximum');
});
