import { defineScenario } from './schema.js';

/**
 * Where each design breaks on writes: many writers, few recipients per update (boards of 2), so the
 * fleet spends little on fan-out and can offer its highest update rate. Meant for
 * `wami-bench capacity write-ceiling --axis rate` (its `capacity` block holds the search's
 * defaults: from 500 updates/s, ×1.5 a step, SLO on ack and fan-out p99, 0.1 % write errors at
 * most), which ends by measuring the fleet's own ceiling against a no-op sink. As a plain `run`
 * it is one step at 500 updates/s.
 */
export default defineScenario({
  name: 'write-ceiling',
  description:
    '1,000 users on 500 boards of 2, the offered write rate raised by the capacity search (500 updates/s at the base rate of 30 ' +
    'updates per user per minute): batched against per-request with 2, 4 and 8 workers and the plain Redbean/Fullmoon baseline.',
  variants: [
    { name: 'batched', kind: 'batched' },
    { name: 'per-request-2w', kind: 'per-request', options: { workers: 2 } },
    { name: 'per-request-4w', kind: 'per-request', options: { workers: 4 } },
    { name: 'per-request-8w', kind: 'per-request', options: { workers: 8 } },
    { name: 'baseline-2w', kind: 'per-request', options: { workers: 2, txMode: 'deferred', busyTimeoutMs: 5 } },
  ],
  seed: { boards: 500, cardsPerBoard: 20 },
  users: { perBoard: 2, connectRatePerSec: 2000 },
  load: { updatesPerUserPerMin: 30, arrival: 'poisson', seed: 10 },
  stages: [{ connections: 1000, durationSec: 6 }],
  warmupSec: 2,
  repeats: 1,
  fleet: { drainSec: 2 },
  thresholds: ['audit.lostAcked == 0', 'audit.phantom == 0', 'audit.seqReused == 0', 'updates.unanswered == 0'],
  capacity: {
    axis: 'rate',
    slo: ['ackMs.p99 < 500', 'fanoutMs.p99 < 250'],
    startRate: 500,
    rateFactor: 1.5,
    maxRate: 25_000,
    maxErrorRate: 0.001,
  },
});
