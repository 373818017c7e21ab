import { defineScenario } from './schema.js';

/**
 * The headline: 1k -> 5k -> 10k -> 20k -> 30k live users on one machine, a kanban-like load
 * (one update per user per minute on boards of 20). Each stage is a fresh server and database.
 */
export default defineScenario({
  name: 'ramp-30k',
  description:
    'Scaling curve from 1,000 to 30,000 WebSocket users on boards of 20, one update per user per minute ' +
    '(500 updates/s and ~9,500 deliveries/s at 30k), with the floor beside both designs at every stage: ' +
    'a design at about 1× the floor is limited by the machine, not by its design.',
  variants: [
    { name: 'batched', kind: 'batched' },
    { name: 'per-request', kind: 'per-request' },
    // the machine's own ceiling at each stage (acks at once, stores nothing; shards like batched past 19,600 sockets)
    { name: 'floor', kind: 'floor' },
  ],
  seed: { boards: 1500, cardsPerBoard: 20 },
  users: { perBoard: 20, connectRatePerSec: 2500 },
  load: { updatesPerUserPerMin: 1, arrival: 'poisson', seed: 1 },
  stages: [
    { connections: 1000, durationSec: 30 },
    { connections: 5000, durationSec: 30 },
    { connections: 10000, durationSec: 40 },
    { connections: 20000, durationSec: 60 },
    { connections: 30000, durationSec: 60 },
  ],
  warmupSec: 5,
  repeats: 1,
  thresholds: ['audit.lostAcked == 0', 'audit.seqReused == 0', 'audit.phantom == 0', 'updates.unanswered == 0'],
});
