import { defineScenario } from './schema.js';

/**
 * Many writers on a few boards: every per-request worker contends for SQLite's one write lock, and
 * the batched writer gets large batches. Includes the plain Redbean/Fullmoon baseline (deferred
 * transactions, SQLite's own busy_timeout, no app retry) to show what the retry policy buys.
 */
export default defineScenario({
  name: 'hot-board',
  description:
    '300 users on 6 boards of 50, each writing every 3 s (100 updates/s, ~4,900 deliveries/s): SQLITE_BUSY contention ' +
    'for per-request (2 and 4 worker processes, and the no-retry baseline) against batching.',
  variants: [
    { name: 'batched', kind: 'batched' },
    { name: 'per-request', kind: 'per-request', options: { workers: 2 } },
    { name: 'per-request-4w', kind: 'per-request', options: { workers: 4 } },
    { name: 'per-request-baseline', kind: 'per-request', options: { workers: 4, txMode: 'deferred', busyTimeoutMs: 5 } },
  ],
  seed: { boards: 6, cardsPerBoard: 20 },
  users: { perBoard: 50, connectRatePerSec: 1000 },
  load: { updatesPerUserPerMin: 20, arrival: 'poisson', seed: 7 },
  stages: [{ connections: 300, durationSec: 30 }],
  warmupSec: 5,
  repeats: 1,
  thresholds: ['audit.lostAcked == 0', 'audit.seqReused == 0', 'audit.phantom == 0', 'updates.unanswered == 0'],
});
