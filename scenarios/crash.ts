import { defineScenario } from './schema.js';

/**
 * What each design loses when things go wrong: the server killed mid-load (SIGKILL of the whole
 * tree, restarted on the same file two seconds later, the fleet reconnecting) and, later, a disk
 * that refuses writes for five seconds. Each run records per fault the acked updates lost (0 for
 * both, or the run fails), the updates broadcast and never stored (batched's window), the updates
 * left unanswered, seq gaps and reuse, the time to the first ack after the restart, the errors and
 * the server's RSS; the report's Faults section shows them side by side.
 */
export default defineScenario({
  name: 'crash',
  description:
    'Both designs at 300 WebSocket users on 15 boards of 20, each user moving or renaming a card about every 2 s (150 updates/s), ' +
    'with the server killed (SIGKILL of its process tree) 8 s into the measured window and restarted on the same file 2 s later, ' +
    'and the disk refusing writes (SQLITE_FULL) for 5 s from 20 s. What each design loses, in words and numbers.',
  variants: [
    { name: 'batched', kind: 'batched' },
    { name: 'per-request', kind: 'per-request' },
  ],
  seed: { boards: 15, cardsPerBoard: 20 },
  users: { perBoard: 20, connectRatePerSec: 2000 },
  load: { updatesPerUserPerMin: 30, arrival: 'poisson', seed: 11 },
  stages: [{ connections: 300, durationSec: 32 }],
  warmupSec: 3,
  repeats: 1,
  faults: [
    { kind: 'kill', atSec: 8, restartAfterSec: 2 },
    { kind: 'disk-full', atSec: 20, durationSec: 5 },
  ],
  // Lost acks and reused seqs fail the run whatever the fault; what a design documents it loses
  // (batched: broadcasts never stored, seq gaps) is reported per fault instead (see README, Faults).
  thresholds: ['audit.lostAcked == 0', 'audit.seqReused == 0', 'audit.finalStateMismatches == 0'],
});
