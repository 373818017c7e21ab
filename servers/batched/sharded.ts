/**
 * batched `--shards N` (N >= 2): the primary. One process can hold only its descriptor limit less
 * what it keeps for itself (19,600 sockets under the hard RLIMIT_NOFILE of 20,000; see
 * runner/preflight.ts), so the batched design scales out by board: N shards, each the batched core
 * (shard-core.ts) for the boards b with (b - 1) mod N = its index, with its own board/socket map,
 * queue and writer thread, all committing to the same SQLite file. Shard 0 runs in the primary
 * itself; shards 1…N-1 are processes (shard.ts, child_process.fork with the primary's execArgv). A
 * primary of its own, which only routed handshakes, cost a whole Node process: about 75 MiB of a
 * 30k tree's 413-421 MiB (ramp-30k, 2026-12-01).
 *
 * The primary listens on the one port with the shared front (servers/common/front.ts): it answers
 * `/healthz` (its shard's health and the others', gathered), `/metrics` (every shard's metrics
 * aggregated with prom-client's AggregatorRegistry, as per-request does), and `/boards/:id` (its
 * own read-only connection). A WebSocket upgrade is checked here (400/404/503 at the handshake).
 * For a board of shard 0 the handshake completes here; for another shard's board the raw socket and
 * the request head are handed to that shard (the `@socket.io/sticky` pattern:
 * `child.send(msg, socket, { keepOpen: false })`): the primary keeps no descriptor of it, and the
 * shard's own http server + ws complete the handshake (its `X-Wami-Pid` names the shard). So a
 * board's members all live in one process: broadcast stays in RAM, and seq order and exactly-once
 * per board are those of the single-process design.
 *
 * Startup: resolves only once every shard is ready and the port listens. A shard that exits on its
 * own, or shard 0's writer thread dying, resolves `failed` (the CLI then stops the others and exits
 * 1: no silent half-service). `stop()`: stop accepting, tell every shard to stop (each flushes its
 * queue, acks, closes its sockets with 1001 and its database; shard 0 here), wait for them, close.
 */
import { fork } from 'node:child_process';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { listenProblem } from '../../model/errors.js';
import { FD_RESERVE } from '../../model/variants.js';
import { PROTOCOL_VERSION } from '../../protocol/messages.js';
import { boardReader, loadBoardSeqs } from '../common/boards.js';
import { openDb } from '../common/db.js';
import { Front } from '../common/front.js';
import { rejectUpgrade } from '../common/handshake.js';
import { readFdLimits } from '../common/fd-limits.js';
import { aggregateMetrics, metricsJson } from '../common/metrics.js';
import { Supervisor, type GatherWhat, type Supervised } from '../common/supervisor.js';
import { openShard, type OpenShard } from './shard-core.js';
import type { BatchedServerOptions, RunningServer } from './server.js';
import { SHARD_CONFIG_ENV, shardOf, type FromShard, type ShardConfig, type ShardedKind, type ShardHealth, type ToShard } from './shard-ipc.js';

/** `shards` >= 2 (1 is the single-process server.ts). */
export type ShardedBatchedOptions = BatchedServerOptions;

/** `failed` resolves with a message if a shard exits on its own (the caller should stop and exit non-zero). */
export interface RunningShardedServer extends RunningServer {
  /** The forked shards' pids, shards 1…N-1 (shard 0 is the primary's own process). */
  shardPids: number[];
}

const SHARD_MAIN = fileURLToPath(new URL('./shard.js', import.meta.url));
/** Longest wait for the shards' answers to a /metrics or /healthz gather. */
const GATHER_TIMEOUT_MS = 2000;
/** Longest wait for a shard to flush and exit on stop before it is killed. */
const STOP_TIMEOUT_MS = 30_000;
/**
 * Sockets waiting in the primary for their shard, all shards together (one budget), past which upgrades are
 * answered 503 at once: each holds a descriptor of the primary, which must stay under its own
 * limit (an accept() failing with EMFILE would refuse connections blindly). Shard 0's own sockets
 * count against the same limit (see `socketBudget`).
 */
const MAX_WAITING_HANDOFFS = 16_000;

/** Sockets the primary may hold at once, its shard's and those waiting together: its open-file limit less FD_RESERVE. */
function socketBudget(): number {
  const { soft } = readFdLimits();
  // not readable (not Linux): the limit of the machines this runs on
  return Math.max(0, (soft ?? 20_000) - FD_RESERVE);
}

interface Shard {
  sup: Supervised;
  /** Sockets waiting for their turn to be handed over (see `pump`). */
  queue: Pending[];
  /** Index of the first waiting entry of `queue`. */
  qHead: number;
  /** A handle is on its way and the shard has not yet said `got`. */
  inFlight: boolean;
}

interface Pending {
  sock: Socket;
  head: string;
}

/** The request head as the client sent it (request line + raw headers), for the shard's parser. */
function requestHead(req: IncomingMessage): string {
  let s = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) s += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return `${s}\r\n`;
}

type Handle = { readStop?: () => number };

export function startShardedBatchedServer(opts: ShardedBatchedOptions): Promise<RunningShardedServer> {
  return startShardedServer({ kind: 'batched', opts });
}

/**
 * The primary of a sharded server: batched's shards (queue and writer thread each), or the floor's
 * (nothing stored; its /healthz says `storage: "none"`). Everything else is the same.
 */
export async function startShardedServer(k: ShardedKind): Promise<RunningShardedServer> {
  const opts = k.opts;
  const faultInjection = k.kind === 'batched' && k.opts.faultInjection;
  const n = opts.shards;
  if (!Number.isSafeInteger(n) || n < 2) throw new RangeError(`shards must be an integer >= 2, got ${n}`);
  const reader = openDb(opts.dbFile, { readonly: true });
  const boardIds = new Set(loadBoardSeqs(reader).keys());
  // The floor stores nothing, so it serves no board state (the front answers 501 for a board that exists).
  const readBoard = k.kind === 'floor' ? undefined : boardReader(reader);
  if (!readBoard) reader.close();
  const startedAt = Date.now();

  const sup = new Supervisor({ describe: (c) => `shard ${c.index} (pid ${c.pid})`, gatherTimeoutMs: GATHER_TIMEOUT_MS, stopTimeoutMs: STOP_TIMEOUT_MS });
  /** The forked shards by index; index 0 is the primary's own (`local`). */
  const shards: (Shard | undefined)[] = [undefined];
  const ready: Promise<void>[] = [];
  /** Sockets waiting in the primary for their shard, all shards together. */
  const waiting = (): number => shards.reduce((t, x) => t + (x ? x.queue.length - x.qHead + (x.inFlight ? 1 : 0) : 0), 0);
  for (let i = 1; i < n; i++) {
    const config = { ...k, opts: { ...opts }, shard: i, shards: n } as ShardConfig;
    const child = fork(SHARD_MAIN, [], {
      execArgv: opts.shardNodeFlags !== undefined ? opts.shardNodeFlags.trim().split(/\s+/) : process.execArgv,
      env: { ...process.env, [SHARD_CONFIG_ENV]: JSON.stringify(config) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let fatal = '';
    let notReady: (e: Error) => void = () => {};
    const s: Shard = {
      sup: sup.add(child, i, (c, { code, signal }, stopping) => {
        s.inFlight = false;
        pump(s); // refuses (503) whatever still waits for this shard
        if (!stopping) notReady(new Error(`shard ${i} (pid ${c.pid}) exited (code ${code}, signal ${signal})${fatal ? `: ${fatal}` : ''} before it was ready`));
      }),
      queue: [],
      qHead: 0,
      inFlight: false,
    };
    shards.push(s);
    ready.push(
      new Promise<void>((resolve, reject) => {
        notReady = reject;
        child.once('error', (e) => reject(new Error(`shard ${i} could not run: ${e.message}`)));
        child.on('message', (m: FromShard) => {
          if (m?.wami === 'got') {
            s.inFlight = false;
            pump(s);
          } else if (m?.wami === 'ready') resolve();
          else if (m?.wami === 'fatal') fatal = m.message;
        });
      }),
    );
  }
  // Shard 0, here, while the others start.
  let local: OpenShard | null = null;
  const opening = openShard({ ...k, opts: { ...opts }, shard: 0, shards: n } as ShardConfig).then(
    (o) => {
      local = o;
    },
    (e: Error) => {
      throw new Error(`shard 0 (in the primary, pid ${process.pid}) cannot start: ${e.message}`);
    },
  );
  ready.push(opening);
  const budget = socketBudget();

  /**
   * Hands the shard its next waiting socket, one at a time. Node's IPC carries one handle at a time
   * per child anyway (it waits for the child's internal ACK and re-queues everything sent meanwhile,
   * at a cost that grows with the queue), so the primary keeps its own FIFO and sends the next
   * socket when the shard says `got` (written right after Node's ACK). A socket whose client gave
   * up while it waited (EOF or error seen here) is dropped instead of handed over.
   */
  const pump = (s: Shard): void => {
    while (!s.inFlight && s.qHead < s.queue.length) {
      const p = s.queue[s.qHead]!;
      s.queue[s.qHead++] = undefined as unknown as Pending;
      if (s.qHead > 1024 && s.qHead * 2 > s.queue.length) {
        s.queue = s.queue.slice(s.qHead);
        s.qHead = 0;
      }
      const sock = p.sock;
      if (sock.destroyed || (sock as unknown as { _readableState?: { ended?: boolean } })._readableState?.ended) {
        sock.destroy();
        continue;
      }
      if (s.sup.dead || !s.sup.child.connected) {
        rejectUpgrade(sock, 503, sup.isStopping ? 'server is shutting down' : 'shard unavailable');
        continue;
      }
      // From here nothing more may be read in the primary: bytes read now would be lost with the
      // handle. (WebSocket clients send nothing before the 101; the kernel keeps what comes.)
      let head = p.head;
      if (sock.readableLength > 0) {
        const more = sock.read(sock.readableLength) as Buffer | null;
        if (more) head += more.toString('latin1');
      }
      (sock as unknown as { _handle?: Handle })._handle?.readStop?.();
      s.inFlight = true;
      // keepOpen false: once the shard has the handle, the primary's descriptor is closed
      s.sup.child.send({ wami: 'conn', head } satisfies ToShard, sock, { keepOpen: false }, (e) => {
        if (!e) return;
        sock.destroy();
        s.inFlight = false;
        pump(s);
      });
    }
  };

  /** Takes the socket of another shard's board (true); leaves shard 0's to the front's own handshake (false). */
  const handOff = (req: IncomingMessage, socket: Duplex, head: Buffer, board: number): boolean => {
    const i = shardOf(board, n);
    const w = waiting();
    const own = local?.core.connections ?? 0;
    if (i === 0 && !sup.isStopping) {
      // shard 0's sockets are the primary's: past its budget, accept() would fail blindly (EMFILE)
      if (w + own < budget) return false;
      rejectUpgrade(socket, 503, 'server busy: no descriptor left for another socket');
      return true;
    }
    const s = shards[i];
    if (sup.isStopping || !s || s.sup.dead || !s.sup.child.connected) {
      rejectUpgrade(socket, 503, sup.isStopping ? 'server is shutting down' : 'shard unavailable');
      return true;
    }
    // One budget for all shards (the primary's descriptors are one pool): a shard that falls behind
    // for a while may use what the others do not, instead of refusing at its 1/n share. Shard 0's
    // sockets are the primary's too.
    if (w >= MAX_WAITING_HANDOFFS || w + own >= budget) {
      rejectUpgrade(socket, 503, 'server busy: too many connections waiting for their shard');
      return true;
    }
    const sock = socket as Socket;
    // Paused: whatever arrives stays in the socket's buffer (sent along with the head), and an
    // EOF from a client that gave up is still seen while it waits.
    sock.pause();
    s.queue.push({ sock, head: requestHead(req) + head.toString('latin1') });
    pump(s);
    return true;
  };

  /** A gather over every shard: shard 0's answer here, the others' over IPC. */
  const gather = async (what: GatherWhat): Promise<unknown[]> => {
    const here = local!;
    const mine: Promise<unknown> =
      what === 'health'
        ? Promise.resolve(here.health())
        : what === 'metrics'
          ? metricsJson(here.metrics)
          : !faultInjection
            ? Promise.resolve(false)
            : here.core.setDiskFull(what === 'disk-full-on').then(
                () => true,
                () => false,
              );
    const [a, rest] = await Promise.all([mine, sup.gather(what)]);
    return [a, ...rest];
  };

  const front = new Front({
    host: opts.host,
    port: opts.port,
    maxPayloadBytes: opts.maxPayloadBytes,
    hasBoard: (id) => boardIds.has(id),
    handOff,
    onSocket: (ws, board, user) => local!.core.attach(ws, board, user),
    healthz: async () => {
      const per = ((await gather('health')) as ShardHealth[]).sort((a, b) => a.shard - b.shard);
      return {
        status: per.length === n ? 'ok' : 'degraded',
        variant: k.kind,
        ...(k.kind === 'floor' ? { storage: 'none' } : {}),
        protocol: PROTOCOL_VERSION,
        pid: process.pid,
        shards: n,
        connections: per.reduce((t, x) => t + x.connections, 0),
        queueDepth: per.reduce((t, x) => t + x.queueDepth, 0),
        boards: boardIds.size,
        uptimeSec: Math.round((Date.now() - startedAt) / 1000),
        perShard: per,
      };
    },
    metrics: async () => aggregateMetrics((await gather('metrics')) as MetricObjectWithValues<MetricValue<string>>[][][]),
    ...(readBoard ? { readBoard } : {}),
    upgradeHeaders: [`X-Wami-Pid: ${process.pid}`],
    ...(faultInjection
      ? {
          faults: {
            diskFull: async (on: boolean) => {
              const got = await gather(on ? 'disk-full-on' : 'disk-full-off');
              return { diskFull: on, processes: got.filter((x) => x === true).length, of: n };
            },
          },
        }
      : {}),
  });

  let stopPromise: Promise<string[]> | null = null;
  const stop = (): Promise<string[]> =>
    (stopPromise ??= (async () => {
      front.stopAccepting();
      // Each shard is asked over IPC (it flushes, acks, closes its sockets and its database); SIGTERM when the channel is gone.
      // Shard 0 does the same here, meanwhile.
      const [problems, here] = await Promise.all([
        sup.stop((c) =>
          c.child.connected ? c.child.send({ wami: 'stop' } satisfies ToShard, (e: Error | null) => e && c.child.kill('SIGTERM')) : c.child.kill('SIGTERM'),
        ),
        opening.then(
          async () => {
            const c = local!.core;
            const problem = await c.shutdown();
            await c.waitSocketsClosed(2000);
            return problem ? [`shard 0 (in the primary): ${problem}`] : [];
          },
          () => [] as string[], // it never started: nothing to stop
        ),
      ]);
      problems.push(...here);
      for (const p of problems) process.stderr.write(`${k.kind}: ${p}\n`);
      front.destroyAll();
      if (readBoard) reader.close();
      return problems;
    })());

  try {
    await Promise.all(ready);
    const addr = await front.listen();
    const here = (local as OpenShard | null)!;
    const failed = Promise.race([sup.failed, here.core.failed.then((msg) => `shard 0 (in the primary, pid ${process.pid}): ${msg}`)]);
    return { host: addr.address, port: addr.port, shardPids: shards.flatMap((s) => (s ? [s.sup.pid] : [])), stop, failed };
  } catch (e) {
    // Every shard is stopped before the error goes up: a failed start leaves no process behind.
    await stop();
    throw listenProblem(e, opts.host, opts.port) ?? e;
  }
}
