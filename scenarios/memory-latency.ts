import { defineScenario } from './schema.js';

/**
 * Server memory at 20k and 30k sockets as a measured trade-off (issue 14): V8's young generation
 * (`--max-semi-space-size`) buys shorter and rarer GC pauses with RSS. Both designs with a
 * semi-space of 8, 16 and 64 MB (64 is the runner's default for every server today); each setting
 * is the same for both designs. Read each variant's server RSS per socket against its fan-out p99
 * at each stage (report: Side by side, Memory). The default stays 64 MB until this scenario has
 * been run on a quiet machine: choose the smallest setting whose fan-out p99 is within 1.2× of
 * 64 MB's at 30k, and say so here.
 */
const SEMI_SPACE_MB = [8, 16, 64] as const;
const flags = (mb: number): string[] => [`--max-semi-space-size=${mb}`, '--max-old-space-size=4096'];

export default defineScenario({
  name: 'memory-latency',
  description:
    "Both designs at 20,000 and 30,000 sockets with V8's semi-space at 8, 16 and 64 MB (the same for both designs at each setting): " +
    "server RSS per socket against fan-out p99, to choose the servers' default (today 64 MB). The runner estimates about 14 minutes.",
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
