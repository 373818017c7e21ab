/** The model layer: the committed JSON Schema of result.json is the one generated from the zod schema. */
import { timePoint } from './helpers/time-point.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resultJsonSchema } from '../model/result.js';
import { RESULT_JSON_SCHEMA_FILE } from '../model/schema-file.js';

test('the committed JSON Schema is the one generated from the zod schema', () => {
  assert.deepEqual(JSON.parse(readFileSync(RESULT_JSON_SCHEMA_FILE, 'utf8')), JSON.parse(JSON.stringify(resultJsonSchema())));
});

test('fleet CPU per received frame over the measured seconds: inclusive bounds, errors counted, no window or no frames = null', async () => {
  const { fleetCpuUsPerFrameMeasured } = await import('../model/fleet-result.js');
  const pt = (t: number, fleetCpuPct: number, delivered: number, acked: number, errors: number) =>
    timePoint(t, { openSockets: 10, acked, errors, delivered, fleetCpuPct });
  // t=0 (connect/warm-up, 90 % CPU) and t=4 (drain) are outside; t=1..3 inside:
  // CPU 0.20 + 0.30 + 0.10 = 0.60 s over frames (900+100+0) + (1400+90+10) + (480+20+0) = 3,000 -> 200 µs
  const timeseries = [pt(0, 90, 10, 1, 0), pt(1, 20, 900, 100, 0), pt(2, 30, 1400, 90, 10), pt(3, 10, 480, 20, 0), pt(4, 50, 5, 0, 0)];
  const window = { warmupSec: 1, durationSec: 3, startedAtIso: '2026-12-01T00:00:00.000Z', wallSec: 5, measuredT: { from: 1, to: 3 } };
  assert.equal(fleetCpuUsPerFrameMeasured({ timeseries, window }), 200);
  const { measuredT: _t, ...noMeasured } = window;
  assert.equal(fleetCpuUsPerFrameMeasured({ timeseries, window: noMeasured }), null);
  assert.equal(fleetCpuUsPerFrameMeasured({ timeseries: [pt(1, 20, 0, 0, 0)], window }), null);
});
