/** The order and expected duration of a scenario's runs. Pure. */
import type { Scenario, Stage, Variant } from '../scenarios/schema.js';

export interface PlannedRun {
  variant: Variant;
  stage: Stage;
  stageIndex: number;
  repeat: number;
}

/** repeat -> stage -> variant: variants interleave at every stage, A B A B when repeated. */
export function planRuns(s: Scenario): PlannedRun[] {
  const out: PlannedRun[] = [];
  for (let r = 1; r <= s.repeats; r++) {
    s.stages.forEach((stage, stageIndex) => {
      for (const variant of s.variants) out.push({ variant, stage, stageIndex, repeat: r });
    });
  }
  return out;
}

/** Estimated wall time of one run, seconds (connect + warm-up + measure + drain + start/stop/audit). */
export function estimateRunSec(s: Scenario, stage: Stage): number {
  return stage.connections / s.users.connectRatePerSec + s.warmupSec + stage.durationSec + (s.fleet.drainSec ?? 5) + 8;
}
