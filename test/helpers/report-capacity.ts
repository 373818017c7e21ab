/**
 * Test data for the report's capacity section, made from real runs: the stages fixture's first
 * repeats, folded through the runner's own capacity stepping (runner/capacity.ts recordStep).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CapacityReport } from '../../model/capacity.js';
import { newVariantState, recordStep, type CapacityConfig } from '../../runner/capacity.js';
import type { ResultFile } from '../../model/result.js';
import { parseThreshold } from '../../scenarios/thresholds.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * A capacity result from the stages fixture's first repeats: the SLO `sockets.reached < top` breaks
 * exactly at the top stage; per-request's top-stage run is marked invalid (its fleet "fell
 * behind"), so its search stops as the fleet's limit, not the server's.
 */
export function capacityFixture(): { result: ResultFile; low: number; top: number } {
  const r = JSON.parse(readFileSync(join(root, 'results/fixtures/result-stages.json'), 'utf8')) as ResultFile;
  const runs = r.runs.filter((x) => x.repeat === 1).map((x) => structuredClone(x));
  const conns = [...new Set(runs.map((x) => x.stage.connections))].sort((a, b) => a - b);
  const low = conns[0]!;
  const top = conns[conns.length - 1]!;
  assert.ok(conns.length >= 2 && low < top, 'the stages fixture has two stage sizes');
  const bad = runs.find((x) => x.variant === 'per-request' && x.stage.connections === top)!;
  bad.status = 'invalid';
  bad.reasons = ['schedule lag p99 80 ms exceeds the bound of 50 ms: the fleet fell behind its own schedule'];
  const slo = [parseThreshold(`fanoutMs.p99 < 100000`), parseThreshold(`sockets.reached < ${top}`)];
  const cfg: CapacityConfig = { slo, startConnections: low, step: top - low, maxConnections: top };
  const variants = [...new Set(runs.map((x) => x.variant))];
  const states = variants.map((v) => newVariantState(v));
  for (const c of conns) {
    for (const st of states) {
      if (st.stoppedBecause) continue;
      const run = runs.find((x) => x.variant === st.variant && x.stage.connections === c)!;
      recordStep(st, c, run, cfg);
    }
  }
  const capacity: CapacityReport = {
    slo: slo.map((s) => s.expr),
    startConnections: low,
    step: top - low,
    maxConnections: top,
    durationSec: runs[0]!.stage.durationSec,
    variants: states,
  };
  return { result: { ...r, runId: `capacity-${r.runId}`, runs, capacity }, low, top };
}
