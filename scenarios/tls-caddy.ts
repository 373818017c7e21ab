import { defineScenario } from './schema.js';

/**
 * The seed's production stack puts Caddy 2 in front as the TLS terminator. The same load runs
 * straight to each server and through Caddy (wss://, Caddy's internal CA), so the report shows the
 * proxy's cost in latency, CPU and RAM (Caddy's process counts as part of the server side).
 * Caddy holds two descriptors per proxied socket, so it stays below ~9.8k sockets here.
 */
export default defineScenario({
  name: 'tls-caddy',
  description: '1,000 users on 50 boards of 20, one update per 10 s each, straight to the server and through Caddy 2 (TLS), for both designs.',
  variants: [
    { name: 'batched-direct', kind: 'batched', via: 'direct' },
    { name: 'batched-caddy', kind: 'batched', via: 'caddy' },
    { name: 'per-request-direct', kind: 'per-request', via: 'direct' },
    { name: 'per-request-caddy', kind: 'per-request', via: 'caddy' },
  ],
  seed: { boards: 50, cardsPerBoard: 20 },
  users: { perBoard: 20, connectRatePerSec: 1000 },
  load: { updatesPerUserPerMin: 6, arrival: 'poisson', seed: 1 },
  stages: [{ connections: 1000, durationSec: 30 }],
  warmupSec: 5,
  repeats: 1,
  thresholds: ['audit.lostAcked == 0', 'audit.seqReused == 0', 'audit.phantom == 0', 'updates.unanswered == 0'],
});
