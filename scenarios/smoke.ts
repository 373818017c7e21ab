import { defineScenario } from './schema.js';

/** The default: both designs at about 1,000 sockets; finishes in about two minutes on a 2-core machine. */
export default defineScenario({
  name: 'smoke',
  description:
    "Both designs side by side, with the floor (the machine's own ceiling: acks at once, stores nothing), at 1,000 WebSocket users on 50 boards of 20, each user moving or renaming a card " +
    'about every 10 s (100 updates/s, ~1,900 deliveries/s). Quick enough for every pull request.',
  variants: [
    { name: 'batched', kind: 'batched' },
    { name: 'per-request', kind: 'per-request' },
    // the machine's own ceiling beside them (acks at once, stores nothing): the report reads each design as a ratio to it
    { name: 'floor', kind: 'floor' },
  ],
  seed: { boards: 50, cardsPerBoard: 20 },
  users: { perBoard: 20, connectRatePerSec: 2000 },
  load: { updatesPerUserPerMin: 6, arrival: 'poisson', seed: 1 },
  stages: [{ connections: 1000, durationSec: 30 }],
  warmupSec: 5,
  repeats: 1,
  thresholds: ['audit.lostAcked == 0', 'audit.seqReused == 0', 'audit.phantom == 0', 'updates.unanswered == 0', 'delivery.missing == 0'],
});
