import { defineScenario } from './schema.js';

/**
 * SQLITE_BUSY contention as a curve over the worker count: one fixed write rate that bites
 * (about 70 % of per-request's 2-worker ceiling measured by `capacity write-ceiling --axis rate` on
 * the 2-core machine, see README), the same sockets and boards as write-ceiling, per-request with
 * 1, 2, 4, 8 and 16 worker processes, batched, and the plain Redbean/Fullmoon baseline. The
 * report's SQLite section draws BUSY hits, retries, exhausted, attempts p99 and ack p99.9 over the
 * worker count.
 */
export default defineScenario({
  name: 'contention',
  description:
    '1,000 users on 500 boards of 2 writing 2,000 updates/s in all (120 per user per minute): per-request with 1, 2, 4, 8 and 16 ' +
    'worker processes fighting over SQLite’s one write lock, against batched and the no-retry baseline.',
  variants: [
    { name: 'per-request-1w', kind: 'per-request', options: { workers: 1 } },
    { name: 'per-request-2w', kind: 'per-request', options: { workers: 2 } },
    { name: 'per-request-4w', kind: 'per-request', options: { workers: 4 } },
    { name: 'per-request-8w', kind: 'per-request', options: { workers: 8 } },
    { name: 'per-request-16w', kind: 'per-request', options: { workers: 16 } },
    { name: 'batched', kind: 'batched' },
    { name: 'baseline-2w', kind: 'per-request', options: { workers: 2, txMode: 'deferred', busyTimeoutMs: 5 } },
  ],
  seed: { boards: 500, cardsPerBoard: 20 },
  users: { perBoard: 2, connectRatePerSec: 2000 },
  load: { updatesPerUserPerMin: 120, arrival: 'poisson', seed: 11 },
  stages: [{ connections: 1000, durationSec: 10 }],
  warmupSec: 3,
  repeats: 1,
  fleet: { drainSec: 3 },
  thresholds: ['audit.lostAcked == 0', 'audit.phantom == 0', 'audit.seqReused == 0', 'updates.unanswered == 0'],
});
