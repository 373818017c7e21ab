/**
 * `wami-bench serve batched|per-request --port P --db FILE [variant flags]`: serves a seeded
 * database with one server variant and prints exactly one line
 * `wami-bench serve <variant>: listening on ws://HOST:PORT/ws (http://HOST:PORT) pid N`
 * once it accepts connections. SIGTERM/SIGINT: graceful stop, exit 0. So does the death of the process
 * that started it (an `npx` wrapper killed, a shell gone): a server is never left listening alone.
 */
import { resolve } from 'node:path';
import { UsageError } from '../../model/errors.js';
import { flagOf, parseFlagText } from '../../model/options.js';
import {
  BatchedOptionsSchema,
  kindOwningFlag,
  resolvePerRequestOptions,
  SERVE_KINDS,
  VARIANT_SPECS,
  type VariantKind,
  type VariantSet,
} from '../../model/variants.js';
import { MAX_FRAME_BYTES } from '../../protocol/messages.js';
import { startServer } from '../servers.js';
import { didYouMean, intFlag, parseCommand, strFlag, type CommandSpec } from '../args.js';

const COMMON_FLAGS = ['db', 'host', 'port', 'exit-with-parent'];
/** How often the server checks that the process that started it is still there, ms. */
const PARENT_CHECK_MS = 500;
/** Each kind's flags: its options (model/variants.ts) in kebab case. */
const KIND_FLAGS = Object.fromEntries(SERVE_KINDS.map((k) => [k, Object.keys(VARIANT_SPECS[k].shape).map((o) => flagOf(o).slice(2))])) as Record<
  VariantKind,
  string[]
>;

const D = BatchedOptionsSchema.parse({});
const P = resolvePerRequestOptions({}, 1);

const spec: CommandSpec = {
  usage: 'wami-bench serve batched|per-request|floor --db FILE [--port P] [--host H] [variant flags]',
  summary:
    'Serves a seeded database (see "wami-bench seed") over wire protocol v1 with one server variant, and prints\n' +
    '"wami-bench serve <variant>: listening on ws://HOST:PORT/ws (http://HOST:PORT) pid N" once it accepts\n' +
    'connections. SIGTERM or SIGINT stops it gracefully (exit 0), and so does the death of the process that\n' +
    'started it (e.g. a killed npx wrapper; --exit-with-parent false keeps it running). See protocol/README.md. A scenario sets the\n' +
    "same options in a variant's `options`, in camelCase (--flush-interval-ms is flushIntervalMs).",
  flagHelp: [
    'common:',
    '  --db FILE                     seeded SQLite database (required, must exist)',
    '  --host H                      address to listen on (default 127.0.0.1)',
    '  --port P                      port, 0 = any free port (default 8080)',
    '  --exit-with-parent B          stop gracefully when the process that started it exits (default true)',
    `  --max-payload-bytes N         ws maxPayload: larger frames are closed with 1009 (default ${D.maxPayloadBytes}, >= ${MAX_FRAME_BYTES})`,
    `  --max-buffered-bytes N        unsent bytes per socket before it is closed with 4008 (default ${D.maxBufferedBytes})`,
    '  --fault-injection B           true: serve POST /faults/disk-full/on|off, which make writes that need a new',
    '                                database page fail (SQLITE_FULL) on every writing connection, for the',
    "                                harness's disk-full fault (default false; never on a server anyone relies on)",
    'batched (one event loop + a writer thread committing every flush interval):',
    `  --flush-interval-ms N         writer period in ms (default ${D.flushIntervalMs})`,
    `  --max-queue N                 queued updates before OVERLOADED (default ${D.maxQueue})`,
    `  --batch-retries N             extra tries of a failing batch before it is split (default ${D.batchRetries})`,
    `  --writer-busy-timeout-ms N    busy_timeout of the writer connection (default ${D.writerBusyTimeoutMs}); with --shards N:`,
    '                                how long a writer waits out SQLITE_BUSY from the other shards per try (counted)',
    `  --seq-lease-block N           seqs leased per board ahead of the broadcasts, so a seq is never reused after a`,
    `                                crash (default ${D.seqLeaseBlock}; a crash skips up to N seqs per board: a gap, counted)`,
    `  --shards N                    processes holding sockets (default ${D.shards}: the single-process design). N >= 2: a`,
    '                                primary on the port is shard 0 and hands each other socket to the shard owning',
    '                                its board, shard = (board - 1) mod N, each with its own queue and writer thread on',
    '                                the same file. One process holds up to its descriptor limit less 400 (19,600 under',
    '                                a 20,000-descriptor limit; README.md, "Going to 30,000 sockets").',
    '  --shard-node-flags="F …"      Node flags of the forked shards 1…N-1, space-separated, given with = (default: the',
    "                                primary's own, which shard 0 runs with; `run` leaves it unset)",
    'per-request (W processes, one transaction per update, SQLITE_BUSY retried by the app):',
    '  --workers W                   worker processes (default: os.availableParallelism())',
    `  --tx-mode immediate|deferred  BEGIN IMMEDIATE (default ${P.txMode}) or plain BEGIN (the Redbean/Fullmoon baseline)`,
    `  --busy-timeout-ms N           SQLite's own busy_timeout (default ${P.busyTimeoutMs}: the app retries); SQLite waits`,
    '                                synchronously, so the worker serves nobody else meanwhile',
    `  --retry-max-attempts N        attempts per update, first included (default ${P.retryMaxAttempts}; 1 = no app retry,`,
    '                                the default with --tx-mode deferred)',
    `  --retry-deadline-ms N         no attempt starts later than this after receipt (default ${P.retryDeadlineMs})`,
    `  --retry-base-ms N             first backoff, jittered in [N/2, N] (default ${P.retryBaseMs})`,
    `  --retry-max-ms N              backoff cap (default ${P.retryMaxMs})`,
    `  --poll-ms N                   card_events poll period for broadcasts (default ${P.pollMs})`,
    `  --poll-batch N                rows read per poll query (default ${P.pollBatch})`,
    "floor (the machine's own ceiling: acks at once, broadcasts from RAM, stores nothing; reads --db once for the layout):",
    '  --shards N                    processes holding sockets, as batched (default 1)',
    '  --shard-node-flags="F …"      Node flags of the shards, as batched',
  ],
  options: Object.fromEntries([...new Set([...COMMON_FLAGS, ...SERVE_KINDS.flatMap((k) => KIND_FLAGS[k])])].map((f) => [f, { type: 'string' as const }])),
  allowPositionals: true,
};

export async function main(argv: string[]): Promise<number> {
  const p = parseCommand(spec, argv);
  if (!p) return 0;
  const [variantArg, ...extra] = p.positionals;
  const kinds = SERVE_KINDS.join(' or ');
  if (variantArg === undefined) throw new UsageError(`missing the variant, ${kinds} (usage: ${spec.usage})`);
  if (variantArg === 'external')
    throw new UsageError('an external server brings its own command: start it yourself, or name it in a scenario variant { kind: "external", command: [...] }');
  if (!(SERVE_KINDS as readonly string[]).includes(variantArg)) {
    const near = didYouMean(variantArg, SERVE_KINDS);
    throw new UsageError(`unknown variant "${variantArg}": ${near ? `did you mean ${near}?` : kinds}`);
  }
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const variant = variantArg as VariantKind;
  const v = p.values;
  for (const f of Object.keys(v)) {
    const owner = v[f] === undefined ? undefined : kindOwningFlag(`--${f}`, variant);
    if (owner) throw new UsageError(`--${f} applies to the ${owner} variant, not ${variant}`);
  }
  const shape = VARIANT_SPECS[variant].shape;
  const set: Record<string, unknown> = {};
  for (const key of Object.keys(shape)) {
    const flag = flagOf(key);
    const raw = v[flag.slice(2)];
    if (raw === undefined) continue;
    try {
      set[key] = parseFlagText(flag, String(raw), shape[key] as never);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const dbFile = resolve(strFlag(v, 'db', undefined));
  const host = strFlag(v, 'host', '127.0.0.1');
  const port = intFlag(v, 'port', 8080, 0, 65535);
  const withParent = strFlag(v, 'exit-with-parent', 'true');
  if (withParent !== 'true' && withParent !== 'false') throw new UsageError(`--exit-with-parent must be true or false, got "${withParent}"`);

  const server = await startServer({ kind: variant, options: set } as VariantSet, { dbFile, host, port });
  const config: Record<string, unknown> = {
    dbFile,
    host,
    port,
    ...server.options,
    // each shard's pid by index: shard 0 is this process, the others its children
    ...((variant === 'batched' || variant === 'floor') && server.childPids.length > 0 ? { shardPids: [process.pid, ...server.childPids] } : {}),
  };

  const name = `wami-bench serve ${variant}`;
  process.stdout.write(`${name}: config ${JSON.stringify(config)}\n`);
  process.stdout.write(`${name}: listening on ws://${server.host}:${server.port}/ws (http://${server.host}:${server.port}) pid ${process.pid}\n`);

  const parent = process.ppid;
  let parentWatch: NodeJS.Timeout | undefined;
  const outcome = await new Promise<{ signal: string } | { failed: string }>((res) => {
    process.once('SIGTERM', () => res({ signal: 'SIGTERM' }));
    process.once('SIGINT', () => res({ signal: 'SIGINT' }));
    void server.failed.then((msg) => res({ failed: msg }));
    // Re-parented (to init or a subreaper): whoever started this server is gone, so nobody will stop it.
    if (withParent === 'true' && parent > 1) {
      parentWatch = setInterval(() => {
        if (process.ppid !== parent) res({ signal: `the process that started it (pid ${parent}) exited` });
      }, PARENT_CHECK_MS);
      parentWatch.unref();
    }
  });
  clearInterval(parentWatch);
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
