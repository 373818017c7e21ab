/**
 * One shard process of batched or floor `--shards N` (forked by sharded.ts for shards 1…N-1; shard 0
 * lives in the primary): its core (shard-core.ts: batched's boards, queue and writer thread, or the
 * floor's, nothing stored) for its own boards, fed with sockets the primary hands over. It never
 * listens: its http.Server + ws only complete handshakes of sockets it is given, the pattern of
 * `@socket.io/sticky`: `server.emit('connection', socket)`, then the request head the primary
 * already read is replayed with `socket.emit('data', head)`. Its writer shares the SQLite file with
 * the other shards' writers and waits out SQLITE_BUSY from them (counted).
 *
 * Stops (flush, ack, close sockets with 1001, close the db, exit 0) on the primary's `stop`, on
 * SIGTERM, or when the IPC channel goes (the primary died). SIGINT is ignored: Ctrl-C reaches the
 * whole process group and the primary coordinates the stop.
 */
import type { Socket } from 'node:net';
import { PROTOCOL_VERSION } from '../../protocol/messages.js';
import { Front } from '../common/front.js';
import { renderMetrics } from '../common/metrics.js';
import { answerCollect } from '../common/supervisor.js';
import { openShard, type OpenShard } from './shard-core.js';
import { SHARD_CONFIG_ENV, type FromShard, type ShardConfig, type ToShard } from './shard-ipc.js';

const cfg = JSON.parse(process.env[SHARD_CONFIG_ENV] ?? 'null') as ShardConfig | null;
if (!cfg || typeof process.send !== 'function') {
  process.stderr.write(`batched shard: ${SHARD_CONFIG_ENV} or the IPC channel is missing (started outside the primary?)\n`);
  process.exit(2);
}
const { opts, shard } = cfg;
const variant = cfg.kind;
const tell = (m: FromShard): void => {
  if (process.connected) process.send!(m);
};

let opened: OpenShard;
try {
  opened = await openShard(cfg);
} catch (e) {
  const message = `${variant} shard ${shard}: cannot start: ${(e as Error).message}`;
  process.stderr.write(`${message}\n`);
  tell({ wami: 'fatal', message });
  process.exit(1);
}
const { core: c, metrics, health } = opened;
void c.failed.then((msg) => {
  process.stderr.write(`${variant} shard ${shard}: ${msg}\n`);
  process.exit(1);
});

const front = new Front({
  host: opts.host,
  port: 0,
  maxPayloadBytes: opts.maxPayloadBytes,
  hasBoard: (id) => c.hasBoard(id),
  onSocket: (ws, board, user) => c.attach(ws, board, user),
  // a shard serves no HTTP routes (the primary does); these answer only if a request reaches it anyway
  healthz: () => ({ status: 'ok', variant, protocol: PROTOCOL_VERSION, ...health() }),
  metrics: () => renderMetrics(metrics),
  readBoard: () => null,
  upgradeHeaders: [`X-Wami-Pid: ${process.pid}`],
});

let stopping: Promise<void> | null = null;
const stop = (): Promise<void> =>
  (stopping ??= (async () => {
    front.stopAccepting();
    const problem = await c.shutdown();
    if (problem) process.stderr.write(`${variant} shard ${shard}: ${problem}\n`);
    await c.waitSocketsClosed(2000);
    front.destroyAll();
    process.exit(0);
  })());

process.on('message', (m: ToShard, handle?: unknown) => {
  if (m?.wami === 'conn') {
    tell({ wami: 'got' });
    const socket = handle as Socket | undefined;
    if (!socket) return;
    front.server.emit('connection', socket);
    socket.emit('data', Buffer.from(m.head, 'latin1'));
    socket.resume();
  } else if (answerCollect(m, metrics, health, tell, (on) => c.setDiskFull(on))) {
    // answered
  } else if (m?.wami === 'stop') {
    void stop();
  }
});
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => {});
process.on('disconnect', () => void stop());

tell({ wami: 'ready', pid: process.pid, boards: c.boardCount });
