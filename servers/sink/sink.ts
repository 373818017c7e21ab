/**
 * The sink: the cheapest server that still speaks protocol v1 to the fleet, for measuring the fleet's
 * own ceiling (runner/fleet-ceiling.ts). Every valid update gets its board's next seq in RAM, is
 * broadcast to the board's other sockets and acked at once, through the same front and fan-out as
 * the real servers; nothing is stored (no SQLite, no queue, no audit). A rate the fleet cannot hold
 * against it is the measuring machine's limit, whatever server is under test.
 */
import { PROTOCOL_VERSION } from '../../protocol/messages.js';
import { Front } from '../common/front.js';
import { createMetrics, renderMetrics } from '../common/metrics.js';
import { FloorCore } from '../floor/core.js';

export interface SinkOptions {
  host: string;
  port: number;
  /** Boards 1..boards are accepted at the handshake. */
  boards: number;
}

export interface RunningSink {
  host: string;
  port: number;
  stop(): Promise<void>;
}

/** The floor's core (servers/floor/core.ts) on boards 1..N with no seeded file: any card is taken. */
export async function startSink(opts: SinkOptions): Promise<RunningSink> {
  let core: FloorCore | null = null;
  const metrics = createMetrics({ dbFile: '', connections: () => core?.connections ?? 0, queueDepth: () => 0 });
  const boards = Array.from({ length: opts.boards }, (_, i) => [i + 1, 0] as const);
  core = new FloorCore({ boards, cards: null, maxBufferedBytes: 16 * 1024 * 1024 }, metrics);
  const c = core;
  const front = new Front({
    host: opts.host,
    port: opts.port,
    maxPayloadBytes: 64 * 1024,
    hasBoard: (id) => c.hasBoard(id),
    onSocket: (ws, board, user) => c.attach(ws, board, user),
    healthz: () => ({ status: 'ok', variant: 'sink', storage: 'none', protocol: PROTOCOL_VERSION, pid: process.pid, connections: c.connections }),
    metrics: () => renderMetrics(metrics),
  });
  const addr = await front.listen();
  return {
    host: addr.address,
    port: addr.port,
    stop: async () => {
      front.stopAccepting();
      await c.shutdown();
      await c.waitSocketsClosed(2000);
      front.destroyAll();
    },
  };
}
