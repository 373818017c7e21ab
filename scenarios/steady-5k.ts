import { defineScenario } from './schema.js';

/** 5,000 users at a kanban-like rate for a minute per design. */
export default defineScenario({
  name: 'steady-5k',
  description:
    '5,000 WebSocket users on 250 boards of 20, each user changing a card about every 30 s ' +
    '(~167 updates/s, ~3,200 deliveries/s), 60 s measured per design.',
  variants: [
    { name: 'batched', kind: 'batched' },
    { name: 'per-request', kind: 'per-request' },
  ],
  seed: { boards: 250, cardsPerBoard: 20 },
  users: { perBoard: 20, connectRatePerSec: 2000 },
  load: { updatesPerUserPerMin: 2, arrival: 'poisson', seed: 1 },
  stages: [{ connections: 5000, durationSec: 60 }],
  warmupSec: 10,
  repeats: 1,
  thresholds: ['audit.lostAcked == 0', 'audit.seqReused == 0', 'audit.phantom == 0', 'updates.unanswered == 0'],
});
