import { defineScenario } from './schema.js';

/**
 * Slow consumers: a tenth of the sockets stop reading for 15 s while the rest go on. What it costs
 * the server (RSS, the kernel's TCP memory), whether the others' fan-out suffers (the stalled
 * sockets' own latency is the stall's and is left out of the histograms), and whether the slow ones
 * are closed (4008) or catch up afterwards.
 */
export default defineScenario({
  name: 'slow-consumers',
  description:
    'Both designs at 1,000 WebSocket users on 50 boards of 20, each user sending an update about every 2 s (500 updates/s), ' +
    'with 10 % of the sockets (every tenth user) not reading for 15 s from 10 s into the measured window, then reading again. ' +
    'Shows server RSS and kernel TCP memory during the stall, fan-out for everyone else, and which sockets were closed as slow consumers.',
  variants: [
    { name: 'batched', kind: 'batched' },
    { name: 'per-request', kind: 'per-request' },
  ],
  seed: { boards: 50, cardsPerBoard: 20 },
  users: { perBoard: 20, connectRatePerSec: 2000 },
  load: { updatesPerUserPerMin: 30, arrival: 'poisson', seed: 12 },
  stages: [{ connections: 1000, durationSec: 40 }],
  warmupSec: 3,
  repeats: 1,
  faults: [{ kind: 'slow-consumers', atSec: 10, durationSec: 15, fraction: 0.1 }],
  thresholds: ['audit.lostAcked == 0', 'audit.seqReused == 0', 'audit.phantom == 0'],
});
