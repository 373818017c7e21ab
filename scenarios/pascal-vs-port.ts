import { defineScenario } from './schema.js';

/**
 * The design note's own system beside its TypeScript port: the Free Pascal server of servers/pascal/
 * (the batched design in compiled Pascal: epoll, TList queue, writer thread) as an `external`
 * variant, the TypeScript batched port and per-request, under the same fleet and load.
 *
 * The command is servers/pascal/index.ts's PASCAL_COMMAND_TEMPLATE, written relative to the package
 * root (a shipped scenario's base directory): scenarios/ may not import servers/, and a test keeps
 * the two equal. Build the binary first with `npm run build:pascal` (the preflight says so when it
 * is missing).
 */
export default defineScenario({
  name: 'pascal-vs-port',
  description:
    'The Free Pascal server of the design note (servers/pascal, one process: epoll, a TList queue, a writer thread committing every 100 ms) ' +
    'beside its TypeScript port (batched) and per-request, at 1,000, 5,000 and 10,000 WebSocket users on boards of 20, one update per user per 30 s. ' +
    'A 20,000-socket stage runs only where one process may hold that many sockets: the Pascal server is one process, so the preflight skips the stage ' +
    '(for every variant) when the per-process file limit is too low (here: 20,000 descriptors). Compare RSS per socket, fan-out and ack p99, and server CPU per delivered message.',
  variants: [
    { name: 'batched', kind: 'batched' },
    {
      name: 'pascal',
      kind: 'external',
      command: ['servers/pascal/bin/wami-pascal', '--db', '{db}', '--port', '{port}'],
      ready: '/healthz',
      setup: 'npm run build:pascal',
    },
    { name: 'per-request', kind: 'per-request' },
  ],
  seed: { boards: 1000, cardsPerBoard: 20 },
  users: { perBoard: 20, connectRatePerSec: 2500 },
  load: { updatesPerUserPerMin: 2, arrival: 'poisson', seed: 1 },
  stages: [
    { connections: 1000, durationSec: 30 },
    { connections: 5000, durationSec: 30 },
    { connections: 10000, durationSec: 30 },
    { connections: 20000, durationSec: 30, optional: true },
  ],
  warmupSec: 5,
  repeats: 1,
  thresholds: ['audit.lostAcked == 0', 'audit.phantom == 0', 'audit.seqReused == 0', 'updates.unanswered == 0'],
});
