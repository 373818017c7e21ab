import { defineScenario } from './schema.js';

/** A sudden tenfold step in the update rate, then back: queue growth for batched, retry storms for per-request. */
export default defineScenario({
  name: 'burst',
  description:
    '1,000 users on 50 boards of 20 at one update per 10 s; 15 s into the window every user jumps to one update ' +
    'per second for 10 s (1,000 updates/s, ~19,000 deliveries/s), then drops back.',
  variants: [
    { name: 'batched', kind: 'batched' },
    { name: 'per-request', kind: 'per-request' },
  ],
  seed: { boards: 50, cardsPerBoard: 20 },
  users: { perBoard: 20, connectRatePerSec: 2000 },
  load: {
    updatesPerUserPerMin: 6,
    arrival: 'poisson',
    seed: 3,
    steps: [
      { atSec: 15, updatesPerUserPerMin: 60 },
      { atSec: 25, updatesPerUserPerMin: 6 },
    ],
  },
  stages: [{ connections: 1000, durationSec: 40 }],
  warmupSec: 5,
  repeats: 1,
  thresholds: ['audit.lostAcked == 0', 'audit.seqReused == 0', 'audit.phantom == 0', 'updates.unanswered == 0'],
});
