import { defineScenario } from './schema.js';

/**
 * What the fleet itself costs (issue 14): the floor (acks at once, stores nothing: the cheapest
 * server) at 10k, 20k and 30k sockets at ramp-30k's load, so nearly all the CPU and memory the run
 * spends beyond the floor's is the fleet's. Read per stage (report: Memory at each stage, the
 * fleet rows): fleet RSS ÷ sockets (coordinator included; the target is ≤ 10 KB) and fleet
 * CPU per received frame (workers and coordinator over the whole run; target ≤ 25 µs). The
 * thresholds `fleet.rssBytesPerSocket` and `fleet.cpuUsPerFrame` read the same figures.
 */
export default defineScenario({
  name: 'fleet-cost',
  description:
    "The fleet's own cost: the floor at 10,000, 20,000 and 30,000 sockets at one update per user per minute on boards of 20; " +
    'fleet RSS per socket (coordinator included) and fleet CPU per received frame. The runner estimates about 3.5 minutes.',
  variants: [{ name: 'floor', kind: 'floor' }],
  seed: { boards: 1500, cardsPerBoard: 20 },
  users: { perBoard: 20, connectRatePerSec: 2500 },
  load: { updatesPerUserPerMin: 1, arrival: 'poisson', seed: 1 },
  stages: [
    { connections: 10000, durationSec: 40 },
    { connections: 20000, durationSec: 40 },
    { connections: 30000, durationSec: 40 },
  ],
  warmupSec: 5,
  repeats: 1,
  // the audit.* gates apply to any design added here; for the floor they are skipped (it stores nothing)
  thresholds: ['audit.lostAcked == 0', 'audit.seqReused == 0', 'audit.phantom == 0', 'updates.unanswered == 0', 'delivery.missing == 0'],
});
