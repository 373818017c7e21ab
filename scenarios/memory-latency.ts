import { defineScenario } from './schema.js';

/**
 * Server memory at 20k and 30k sockets as a measured trade-off (issue 14): V8's young generation
 * (`--max-semi-space-size`) buys shorter and rarer GC pauses with RSS. Both designs with a
 * semi-space of 8, 16 and 64 MB; each setting is the same for both designs. Read each variant's
 * server RSS per socket against its fan-out p99 at each stage (report: Side by side, Memory).
 *
 * The runner's default is 16 MB, chosen from this scenario's run on a quiet machine (2026-12-01,
 * `npx wami-bench run memory-latency`): the smallest setting whose fan-out p99 at 30,000 sockets
 * stayed within 1.2× of 64 MB's for both designs. At 30k, fan-out p99 and server RSS were:
 *   batched      8 MB 28.1 ms 539 MB | 16 MB 39.7 ms 610 MB | 64 MB 44.6 ms 895 MB
 *   per-request  8 MB 98.8 ms 451 MB | 16 MB 54.6 ms 498 MB | 64 MB 60.1 ms 663 MB
 * 8 MB cost per-request 1.6× its 64 MB fan-out p99 (and 2.5× at 20k), so it is out; 16 MB stayed
 * within 0.9× at 30k (1.26× for per-request at 20k, one run each: within this machine's noise).
 * batched's two 30k runs at 16 and 64 MB lost sockets to 503s at the shard handoff (15 and 1,876 of
 * 30,000), since fixed by one handoff budget for all shards. A sharded server's primary, which only
 * routed handshakes then, was 240-290 MB of the tree at 64 MB; it now hosts shard 0 itself
 * (servers/batched/sharded.ts), so every process of the tree runs the setting under test.
 */
const SEMI_SPACE_MB = [8, 16, 64] as const;
const flags = (mb: number): string[] => [`--max-semi-space-size=${mb}`, '--max-old-space-size=4096'];

export default defineScenario({
  name: 'memory-latency',
  description:
    "Both designs at 20,000 and 30,000 sockets with V8's semi-space at 8, 16 and 64 MB (the same for both designs at each setting): " +
    "server RSS per socket against fan-out p99: the measurement that chose the servers' default (16 MB). The runner estimates about 14 minutes.",
  variants: SEMI_SPACE_MB.flatMap((mb) => [
    { name: `batched-ss${mb}`, kind: 'batched' as const, serverNodeFlags: flags(mb) },
    { name: `per-request-ss${mb}`, kind: 'per-request' as const, serverNodeFlags: flags(mb) },
  ]),
  seed: { boards: 1500, cardsPerBoard: 20 },
  users: { perBoard: 20, connectRatePerSec: 2500 },
  load: { updatesPerUserPerMin: 1, arrival: 'poisson', seed: 1 },
  stages: [
    { connections: 20000, durationSec: 40 },
    { connections: 30000, durationSec: 40 },
  ],
  warmupSec: 5,
  repeats: 1,
  thresholds: ['audit.lostAcked == 0', 'audit.seqReused == 0', 'audit.phantom == 0', 'updates.unanswered == 0'],
});
