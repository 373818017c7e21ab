/** Thresholds (scenarios/thresholds.ts): parsing, evaluation and the fleet's defaults, exact. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunRecord } from '../model/result.js';
import { evaluateFleetThresholds, evaluateThresholds, fleetThresholds, parseThreshold, thresholdReason } from '../scenarios/thresholds.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

test('threshold parsing and evaluation, exact', () => {
  const t = parseThreshold(' fanoutMs.p99 <= 250.5 ');
  assert.deepEqual(t, { expr: 'fanoutMs.p99 <= 250.5', metric: 'fanoutMs.p99', op: '<=', limit: 250.5 });
  const run = {
    latency: { fanoutMs: { p99: 250.5, uncorrected: { p99: 10 } }, ackMs: { p99: 300, uncorrected: { p99: 20 } }, connectMs: { p99: 1 } },
    audit: null,
  } as never;
  const out = evaluateThresholds(run, [t, parseThreshold('ackMs.p99 < 300'), parseThreshold('audit.lostAcked == 0')]);
  assert.deepEqual(
    out.map((o) => [o.pass, o.actual]),
    [
      [true, 250.5],
      [false, 300],
      [false, null],
    ],
  );
});

test("fleet thresholds: the defaults, one of the user's on the same metric in its place, only fleet metrics", () => {
  assert.deepEqual(
    fleetThresholds([]).map((t) => t.expr),
    ['delivery.missing == 0', 'delivery.duplicate == 0', 'delivery.phantom == 0', 'delivery.outOfOrder == 0', 'errors.total == 0', 'updates.unanswered == 0'],
  );
  assert.deepEqual(
    fleetThresholds(['errors.total < 10', 'fanoutMs.p99 < 250']).map((t) => t.expr),
    [
      'delivery.missing == 0',
      'delivery.duplicate == 0',
      'delivery.phantom == 0',
      'delivery.outOfOrder == 0',
      'updates.unanswered == 0',
      'errors.total < 10',
      'fanoutMs.p99 < 250',
    ],
  );
  assert.throws(() => fleetThresholds(['server.busyHits == 0']), /names server\.busyHits, which the fleet alone does not measure/);
  assert.throws(() => fleetThresholds(['fanout.p99 < 1']), /unknown metric "fanout\.p99"/);
  const run = structuredClone(JSON.parse(readFileSync(join(root, 'results/fixtures/result-smoke.json'), 'utf8')).runs[0]) as RunRecord;
  run.errors = { total: 7, byCode: { OVERLOADED: 7 }, byKind: {} };
  const out = evaluateFleetThresholds(run, fleetThresholds(['errors.total < 10']));
  assert.deepEqual(
    out.map((t) => [t.expr, t.actual, t.pass]),
    [
      ['delivery.missing == 0', run.delivery.missing, run.delivery.missing === 0],
      ['delivery.duplicate == 0', run.delivery.duplicate, run.delivery.duplicate === 0],
      ['delivery.phantom == 0', run.delivery.phantom, run.delivery.phantom === 0],
      ['delivery.outOfOrder == 0', run.delivery.outOfOrder, run.delivery.outOfOrder === 0],
      ['updates.unanswered == 0', run.updates.unanswered, run.updates.unanswered === 0],
      ['errors.total < 10', 7, true],
    ],
  );
  assert.equal(
    thresholdReason({ expr: 'errors.total == 0', metric: 'errors.total', op: '==', limit: 0, actual: 7, pass: false }),
    'threshold failed: errors.total == 0 (actual 7)',
  );
});
