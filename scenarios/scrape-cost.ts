import { defineScenario } from './schema.js';

/**
 * The harness's own observer effect (issue 14): what the runner's `GET /metrics` scrape costs each
 * server process at 15,000 sockets. The same server scraped every second (the runner's default),
 * every 5 s (0.2 Hz) and not at all, in one run: compare fan-out and ack p99 (the fleet measures
 * them whatever the scrape) and the servers' event-loop delay (reported only where scraped).
 * `micro --suites scrape` times one scrape in isolation at the same descriptor count.
 */
export default defineScenario({
  name: 'scrape-cost',
  description:
    'Each design at 15,000 sockets scraped for /metrics every 1 s (the default), every 5 s and never, in one run: ' +
    "what the runner's own scrape costs the servers (fan-out p99; event-loop delay where scraped). The runner estimates about 6.5 minutes.",
  variants: [
    { name: 'batched-scrape-1s', kind: 'batched', scrapeIntervalSec: 1 },
    { name: 'batched-scrape-5s', kind: 'batched', scrapeIntervalSec: 5 },
    { name: 'batched-no-scrape', kind: 'batched', scrapeIntervalSec: 0 },
    { name: 'per-request-scrape-1s', kind: 'per-request', scrapeIntervalSec: 1 },
    { name: 'per-request-scrape-5s', kind: 'per-request', scrapeIntervalSec: 5 },
    { name: 'per-request-no-scrape', kind: 'per-request', scrapeIntervalSec: 0 },
  ],
  seed: { boards: 750, cardsPerBoard: 20 },
  users: { perBoard: 20, connectRatePerSec: 2500 },
  load: { updatesPerUserPerMin: 1, arrival: 'poisson', seed: 1 },
  stages: [{ connections: 15000, durationSec: 40 }],
  warmupSec: 5,
  repeats: 1,
  thresholds: ['audit.lostAcked == 0', 'audit.seqReused == 0', 'audit.phantom == 0', 'updates.unanswered == 0'],
});
