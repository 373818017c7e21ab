import { defineScenario } from './schema.js';

/**
 * What the per-socket memory knobs do (issue: "Reduce the WebSocket read and write buffers"): the
 * batched server at 5,000 sockets with ws maxPayload 4 KiB, 64 KiB (the default) and 1 MiB, and a
 * 16 KiB slow-consumer bound instead of 1 MiB. Compression stays off everywhere (with it a socket
 * costs 80–90 KB instead of ~6 KB). Compare RSS per socket and kernel TCP memory per variant.
 */
export default defineScenario({
  name: 'memory-knobs',
  description:
    'The batched server at 5,000 sockets with ws maxPayload 4 KiB, 64 KiB (default) and 1 MiB, and a 16 KiB slow-consumer bound: ' +
    'what each does to server RSS per socket.',
  variants: [
    { name: 'payload-4k', kind: 'batched', options: { maxPayloadBytes: 4096 } },
    { name: 'payload-64k', kind: 'batched' },
    { name: 'payload-1m', kind: 'batched', options: { maxPayloadBytes: 1048576 } },
    { name: 'buffered-16k', kind: 'batched', options: { maxBufferedBytes: 16384 } },
  ],
  seed: { boards: 250, cardsPerBoard: 20 },
  users: { perBoard: 20, connectRatePerSec: 2500 },
  load: { updatesPerUserPerMin: 2, arrival: 'poisson', seed: 1 },
  stages: [{ connections: 5000, durationSec: 15 }],
  warmupSec: 3,
  repeats: 1,
  thresholds: ['audit.lostAcked == 0', 'audit.seqReused == 0', 'audit.phantom == 0', 'updates.unanswered == 0'],
});
