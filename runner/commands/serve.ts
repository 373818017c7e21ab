/**
 * `wami-bench serve batched|per-request --port P --db FILE [variant flags]`: serves a seeded
 * database with one server variant and prints exactly one line
 * `wami-bench serve <variant>: listening on ws://HOST:PORT/ws (http://HOST:PORT) pid N`
 * once it accepts connections. SIGTERM/SIGINT: graceful stop, exit 0.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { DEFAULT_MAX_PAYLOAD_BYTES, MAX_FRAME_BYTES } from '../../protocol/messages.js';
import { DEFAULT_BATCHED_OPTIONS } from '../../servers/batched/core.js';
import { startBatchedServer } from '../../servers/batched/server.js';
import { startShardedBatchedServer } from '../../servers/batched/sharded.js';
import type { PerRequestOptions } from '../../servers/per-request/config.js';
import { startPerRequestServer } from '../../servers/per-request/primary.js';
import { DEFAULT_RETRY_POLICY } from '../../servers/per-request/retry-policy.js';
import { intFlag, parseCommand, strFlag, type CommandSpec } from '../args.js';
import { UsageError } from '../../model/errors.js';

const VARIANTS = ['batched', 'per-request'] as const;
type Variant = (typeof VARIANTS)[number];

const COMMON_FLAGS = ['db', 'host', 'port', 'max-payload-bytes', 'max-buffered-bytes'];
const VARIANT_FLAGS: Record<Variant, string[]> = {
  batched: ['flush-interval-ms', 'max-queue', 'batch-retries', 'writer-busy-timeout-ms', 'shards'],
  'per-request': ['workers', 'tx-mode', 'busy-timeout-ms', 'retry-max-attempts', 'retry-deadline-ms', 'retry-base-ms', 'retry-max-ms', 'poll-ms', 'poll-batch'],
};

const DEFAULT_MAX_BUFFERED_BYTES = DEFAULT_BATCHED_OPTIONS.maxBufferedBytes;
const R = DEFAULT_RETRY_POLICY;

const spec: CommandSpec = {
  usage: 'wami-bench serve batched|per-request --db FILE [--port P] [--host H] [variant flags]',
  summary:
    'Serves a seeded database (see "wami-bench seed") over wire protocol v1 with one server variant, and prints\n' +
    '"wami-bench serve <variant>: listening on ws://HOST:PORT/ws (http://HOST:PORT) pid N" once it accepts\n' +
    'connections. SIGTERM or SIGINT stops it gracefully (exit 0). See protocol/README.md.',
  flagHelp: [
    'common:',
    '  --db FILE                     seeded SQLite database (required, must exist)',
    '  --host H                      address to listen on (default 127.0.0.1)',
    '  --port P                      port, 0 = any free port (default 8080)',
    `  --max-payload-bytes N         ws maxPayload: larger frames are closed with 1009 (default ${DEFAULT_MAX_PAYLOAD_BYTES}, >= ${MAX_FRAME_BYTES})`,
    `  --max-buffered-bytes N        unsent bytes per socket before it is closed with 4008 (default ${DEFAULT_MAX_BUFFERED_BYTES})`,
    'batched (one event loop + a writer thread committing every flush interval):',
    `  --flush-interval-ms N         writer period in ms (default ${DEFAULT_BATCHED_OPTIONS.flushIntervalMs})`,
    `  --max-queue N                 queued updates before OVERLOADED (default ${DEFAULT_BATCHED_OPTIONS.maxQueue})`,
    `  --batch-retries N             extra tries of a failing batch before it is split (default ${DEFAULT_BATCHED_OPTIONS.batchRetries})`,
    `  --writer-busy-timeout-ms N    busy_timeout of the writer connection (default ${DEFAULT_BATCHED_OPTIONS.writerBusyTimeoutMs}); with --shards N:`,
    '                                how long a writer waits out SQLITE_BUSY from the other shards per try (counted)',
    '  --shards N                    processes holding sockets (default 1: the single-process design). N >= 2: a',
    '                                primary on the port hands each socket to the shard owning its board,',
    '                                shard = (board - 1) mod N, each with its own queue and writer thread on the',
    '                                same file. One process holds ~19.9k sockets under a 20,000-descriptor limit.',
    'per-request (W processes, one transaction per update, SQLITE_BUSY retried by the app):',
    '  --workers W                   worker processes (default: os.availableParallelism())',
    '  --tx-mode immediate|deferred  BEGIN IMMEDIATE (default) or plain BEGIN (the Redbean/Fullmoon baseline)',
    "  --busy-timeout-ms N           SQLite's own busy_timeout (default 0: the app retries); SQLite waits",
    '                                synchronously, so the worker serves nobody else meanwhile',
    `  --retry-max-attempts N        attempts per update, first included (default ${R.maxAttempts}; 1 = no app retry,`,
    '                                the default with --tx-mode deferred)',
    `  --retry-deadline-ms N         no attempt starts later than this after receipt (default ${R.deadlineMs})`,
    `  --retry-base-ms N             first backoff, jittered in [N/2, N] (default ${R.baseMs})`,
    `  --retry-max-ms N              backoff cap (default ${R.maxMs})`,
    '  --poll-ms N                   card_events poll period for broadcasts (default 20)',
    '  --poll-batch N                rows read per poll query (default 10000)',
  ],
  options: Object.fromEntries(
    [...COMMON_FLAGS, ...VARIANT_FLAGS.batched, ...VARIANT_FLAGS['per-request']].map((f) => [f, { type: 'string' as const }]),
  ),
  allowPositionals: true,
};

function checkDatabase(file: string): void {
  if (!existsSync(file)) throw new UsageError(`--db ${file}: no such file (create it with "wami-bench seed --db ${file}")`);
  let db: Database.Database | null = null;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const tables = new Set(
      (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck(true).all() as string[]),
    );
    const missing = ['boards', 'cards', 'card_events'].filter((t) => !tables.has(t));
    if (missing.length) throw new UsageError(`--db ${file}: not a wami-bench database (missing tables: ${missing.join(', ')}); create it with "wami-bench seed"`);
    const cols = new Set((db.prepare('SELECT name FROM pragma_table_info(?)').pluck(true).all('card_events') as string[]));
    if (!cols.has('sent_at')) throw new UsageError(`--db ${file}: card_events has no sent_at column (made by an older seed); re-seed it`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`--db ${file}: cannot open as SQLite: ${(e as Error).message}`);
  } finally {
    db?.close();
  }
}

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand(spec, argv);
  if (!p) return 0;
  const [variantArg, ...extra] = p.positionals;
  if (variantArg === undefined) throw new UsageError(`missing variant: batched or per-request\n\nUsage: ${spec.usage}`);
  if (!(VARIANTS as readonly string[]).includes(variantArg)) throw new UsageError(`unknown variant "${variantArg}": batched or per-request`);
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const variant = variantArg as Variant;
  const other = VARIANTS.find((v) => v !== variant)!;
  for (const f of VARIANT_FLAGS[other]) {
    if (p.values[f] !== undefined) throw new UsageError(`--${f} applies to the ${other} variant, not ${variant}`);
  }
  const v = p.values;
  const dbFile = resolve(strFlag(v, 'db', undefined));
  const host = strFlag(v, 'host', '127.0.0.1');
  const port = intFlag(v, 'port', 8080, 0, 65535);
  const maxPayloadBytes = intFlag(v, 'max-payload-bytes', DEFAULT_MAX_PAYLOAD_BYTES, MAX_FRAME_BYTES, 256 * 1024 * 1024);
  const maxBufferedBytes = intFlag(v, 'max-buffered-bytes', DEFAULT_MAX_BUFFERED_BYTES, 1024, 2 ** 40);

  let server: { host: string; port: number; stop(): Promise<string[]>; failed?: Promise<string> };
  let config: Record<string, unknown>;
  if (variant === 'batched') {
    const D = DEFAULT_BATCHED_OPTIONS;
    const o = {
      dbFile,
      host,
      port,
      maxPayloadBytes,
      maxBufferedBytes,
      flushIntervalMs: intFlag(v, 'flush-interval-ms', D.flushIntervalMs, 1, 3_600_000),
      maxQueue: intFlag(v, 'max-queue', D.maxQueue, 1, 100_000_000),
      batchRetries: intFlag(v, 'batch-retries', D.batchRetries, 0, 100),
      writerBusyTimeoutMs: intFlag(v, 'writer-busy-timeout-ms', D.writerBusyTimeoutMs, 0, 3_600_000),
    };
    const shards = intFlag(v, 'shards', 1, 1, 64);
    checkDatabase(dbFile);
    config = { ...o, shards };
    if (shards === 1) {
      server = await startBatchedServer(o);
    } else {
      const s = await startShardedBatchedServer({ ...o, shards });
      config.shardPids = s.shardPids;
      server = s;
    }
  } else {
    const txMode = strFlag(v, 'tx-mode', 'immediate', ['immediate', 'deferred']) as 'immediate' | 'deferred';
    const o: PerRequestOptions = {
      dbFile,
      host,
      port,
      maxPayloadBytes,
      maxBufferedBytes,
      workers: intFlag(v, 'workers', availableParallelism(), 1, 256),
      txMode,
      busyTimeoutMs: intFlag(v, 'busy-timeout-ms', 0, 0, 3_600_000),
      retry: {
        maxAttempts: intFlag(v, 'retry-max-attempts', txMode === 'deferred' ? 1 : R.maxAttempts, 1, 1_000_000),
        deadlineMs: intFlag(v, 'retry-deadline-ms', R.deadlineMs, 0, 3_600_000),
        baseMs: intFlag(v, 'retry-base-ms', R.baseMs, 0, 60_000),
        maxMs: intFlag(v, 'retry-max-ms', R.maxMs, 0, 600_000),
      },
      pollMs: intFlag(v, 'poll-ms', 20, 1, 60_000),
      pollBatch: intFlag(v, 'poll-batch', 10_000, 1, 1_000_000),
    };
    if (o.retry.maxMs < o.retry.baseMs) throw new UsageError(`--retry-max-ms (${o.retry.maxMs}) must be >= --retry-base-ms (${o.retry.baseMs})`);
    checkDatabase(dbFile);
    config = { ...o };
    server = await startPerRequestServer(o);
  }

  const name = `wami-bench serve ${variant}`;
  process.stdout.write(`${name}: config ${JSON.stringify(config)}\n`);
  process.stdout.write(`${name}: listening on ws://${server.host}:${server.port}/ws (http://${server.host}:${server.port}) pid ${process.pid}\n`);

  const outcome = await new Promise<{ signal: string } | { failed: string }>((res) => {
    process.once('SIGTERM', () => res({ signal: 'SIGTERM' }));
    process.once('SIGINT', () => res({ signal: 'SIGINT' }));
    void server.failed?.then((msg) => res({ failed: msg }));
  });
  if ('failed' in outcome) {
    process.stderr.write(`${name}: ${outcome.failed}; stopping\n`);
    await server.stop();
    return 1;
  }
  process.stderr.write(`${name}: ${outcome.signal}: stopping gracefully\n`);
  const problems = await server.stop();
  if (problems.length > 0) {
    // A process that did not flush and exit cleanly: the stop was not graceful, and the runner must know.
    process.stderr.write(`${name}: stopped, but not cleanly: ${problems.join('; ')}\n`);
    return 1;
  }
  process.stderr.write(`${name}: stopped\n`);
  // Safety net: anything still holding the loop open must not keep a stopped server alive.
  setTimeout(() => process.exit(process.exitCode ?? 0), 3000).unref();
  return 0;
}
