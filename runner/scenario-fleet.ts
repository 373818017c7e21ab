/**
 * A scenario's stage as fleet options: what the runner's own fleet runs, and what `wami-bench fleet
 * --scenario` runs on another host as one segment of it, said once. Pure.
 */
import type { FleetOptions } from '../model/fleet-options.js';
import type { Scenario, Stage } from '../scenarios/schema.js';

/** The load of one stage: users, boards, rate, schedule, window and the scenario's fleet settings (no URL, no faults). */
export function scenarioLoadOptions(s: Scenario, stage: Stage): Omit<FleetOptions, 'url'> {
  return {
    connections: stage.connections,
    perBoard: s.users.perBoard,
    cardsPerBoard: s.seed.cardsPerBoard,
    updatesPerUserPerMin: stage.updatesPerUserPerMin ?? s.load.updatesPerUserPerMin,
    rateSteps: s.load.steps,
    arrival: s.load.arrival,
    seed: s.load.seed,
    warmupSec: s.warmupSec,
    durationSec: stage.durationSec,
    connectRatePerSec: s.users.connectRatePerSec,
    ...(s.fleet.workers !== undefined ? { workers: s.fleet.workers } : {}),
    ...(s.fleet.drainSec !== undefined ? { drainSec: s.fleet.drainSec } : {}),
    ...(s.fleet.guard !== undefined ? { guard: s.fleet.guard } : {}),
  };
}
