import { defineScenario } from './schema.js';

/**
 * Readers and writers together: while 1,000 WebSocket users write, autocannon reads whole boards
 * (GET /boards/:id, served from SQLite) at a fixed, open-loop rate, so the report shows how the
 * write path disturbs reads and the reverse.
 */
export default defineScenario({
  name: 'mixed-read-write',
  description: '1,000 users on 50 boards of 20 writing one update per 10 s each, while 20 HTTP connections read random boards at 500 requests/s.',
  variants: [
    { name: 'batched', kind: 'batched' },
    { name: 'per-request', kind: 'per-request' },
  ],
  seed: { boards: 50, cardsPerBoard: 20 },
  users: { perBoard: 20, connectRatePerSec: 2000 },
  load: { updatesPerUserPerMin: 6, arrival: 'poisson', seed: 1 },
  stages: [{ connections: 1000, durationSec: 30 }],
  warmupSec: 5,
  repeats: 1,
  http: { path: '/boards/:id', connections: 20, rate: 500, durationSec: 30 },
  thresholds: ['audit.lostAcked == 0', 'audit.seqReused == 0', 'audit.phantom == 0', 'updates.unanswered == 0'],
});
