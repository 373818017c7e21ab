/**
 * The server variants a run compares, and their options: one zod shape per kind with each option's
 * bounds and default. `wami-bench serve` parses its flags with it, a scenario's variant `options`
 * are validated by it, and the runner turns the options a variant set into argv only when it spawns
 * the server (`variantArgv`). A kind also says which option sets how many processes hold its sockets.
 * Pure: no I/O (machine-dependent defaults, e.g. one worker per CPU, take `cpus` as an argument).
 *
 * To add a kind (e.g. `floor`): add it to VARIANT_KINDS, give it a shape and a spec in
 * VARIANT_SPECS, and a server the runner can start with those flags (see CONTRIBUTING.md).
 * `external` is the one kind the runner does not serve itself: a variant of it brings its own command
 * (model/external.ts) and its options only say how many processes hold its sockets.
 */
import { z } from 'zod';
import { DEFAULT_MAX_PAYLOAD_BYTES, MAX_FRAME_BYTES } from '../protocol/messages.js';
import { UsageError } from './errors.js';
import { EXTERNAL_OPTIONS, type ExternalServer } from './external.js';
import { flagOf, fromArgv, setSchema, toArgv, type SetShape } from './options.js';

/** The kinds of server a variant can be. New kinds (e.g. `floor`) join this list. */
export const VARIANT_KINDS = ['batched', 'per-request', 'floor', 'external'] as const;
export type VariantKind = (typeof VARIANT_KINDS)[number];

const int = (min: number, max: number) => z.number().int().min(min).max(max);

/**
 * Node flags of the forked shard processes (shards 1…N-1) with `shards` >= 2, space-separated. Not
 * set (the default, and what the runner does): the primary's own, which are the run's server flags.
 * Shard 0 runs in the primary, with the primary's flags whatever this says.
 */
const SHARD_NODE_FLAGS = z
  .string()
  .regex(/^\s*--[\w-]+(=\S*)?(\s+--[\w-]+(=\S*)?)*\s*$/, 'must be Node flags separated by spaces, like "--max-semi-space-size=16"')
  .optional();

/**
 * Descriptors a server process keeps for itself (stdio, database, WAL, shm, pipes, epoll, …): it
 * holds at most its open-file limit less this many sockets (runner/preflight.ts sizes processes by
 * it; a sharded primary budgets its sockets by it, servers/batched/sharded.ts).
 */
export const FD_RESERVE = 400;

/** Options of the sockets, the same for every kind. */
const SOCKET_OPTIONS = {
  /** ws maxPayload, bytes: larger frames are closed by the transport with 1009 (default 64 KiB, at least MAX_FRAME_BYTES). */
  maxPayloadBytes: int(MAX_FRAME_BYTES, 256 * 1024 * 1024).default(DEFAULT_MAX_PAYLOAD_BYTES),
  /** Unsent bytes per socket before it is closed with 4008 (slow consumer), default 1 MiB. */
  maxBufferedBytes: int(1024, 2 ** 40).default(1024 * 1024),
  /**
   * Fault injection for the harness's `disk-full` fault (default false): enables
   * `POST /faults/disk-full/on|off`, which caps every writing connection's max_page_count so writes
   * that need a new page fail (SQLITE_FULL). Never set it on a server anyone relies on.
   */
  faultInjection: z.boolean().default(false),
};

/** batched: one event loop and a writer thread committing every flush interval (the seed's design). */
export const BATCHED_OPTIONS = {
  /** Period of the writer's flush, ms (default 100). */
  flushIntervalMs: int(1, 3_600_000).default(100),
  /** Updates queued for the writer before OVERLOADED (default 50,000). */
  maxQueue: int(1, 100_000_000).default(50_000),
  /** Extra tries of a failing (sub-)batch before it is split (default 1). */
  batchRetries: int(0, 100).default(1),
  /** busy_timeout of the writer's connection, ms (default 5000); with shards, how long a writer waits out the others' SQLITE_BUSY per try. */
  writerBusyTimeoutMs: int(0, 3_600_000).default(5000),
  /** Processes holding sockets (default 1: the single-process design); N >= 2: a primary hands each socket to its board's shard. */
  shards: int(1, 64).default(1),
  /** Seqs leased per board ahead of the broadcasts, so a seq is never reused after a crash (default 1000; a crash skips up to this many). */
  seqLeaseBlock: int(2, 1_000_000_000).default(1000),
  shardNodeFlags: SHARD_NODE_FLAGS,
  ...SOCKET_OPTIONS,
};
export const BatchedOptionsSchema = z.strictObject(BATCHED_OPTIONS);
/** batched options with every default filled in. */
export type BatchedOptions = z.output<typeof BatchedOptionsSchema>;
/** The batched options a variant set (the rest take their defaults in the server). */
export type BatchedSet = z.output<z.ZodObject<SetShape<typeof BATCHED_OPTIONS>>>;

/** per-request: W worker processes, one transaction per update, SQLITE_BUSY retried by the app. */
export const PER_REQUEST_OPTIONS = {
  /** Worker processes (node:cluster). Not set: one per CPU of the server's machine. */
  workers: int(1, 256).optional(),
  /** `immediate` (BEGIN IMMEDIATE, default) or `deferred` (plain BEGIN: the Redbean/Fullmoon baseline). */
  txMode: z.enum(['immediate', 'deferred']).default('immediate'),
  /** SQLite's own busy_timeout, ms (default 0: the app retries). SQLite waits synchronously. */
  busyTimeoutMs: int(0, 3_600_000).default(0),
  /** Attempts per update, the first included. Not set: 20, or 1 (no app retry) with txMode deferred. */
  retryMaxAttempts: int(1, 1_000_000).optional(),
  /** No attempt starts later than this after receipt, ms (default 2000). */
  retryDeadlineMs: int(0, 3_600_000).default(2000),
  /** First backoff, jittered in [N/2, N], ms (default 1). */
  retryBaseMs: int(0, 60_000).default(1),
  /** Backoff cap, ms (default 50); at least retryBaseMs. */
  retryMaxMs: int(0, 600_000).default(50),
  /** card_events poll period for broadcasts from other workers, ms (default 20). */
  pollMs: int(1, 60_000).default(20),
  /** Rows read per poll query at most (default 10,000). */
  pollBatch: int(1, 1_000_000).default(10_000),
  ...SOCKET_OPTIONS,
};
export const DEFAULT_RETRY_MAX_ATTEMPTS = 20;
export const PerRequestOptionsSchema = z.strictObject(PER_REQUEST_OPTIONS).superRefine((o, ctx) => {
  if (o.retryMaxMs < o.retryBaseMs) {
    ctx.addIssue({
      code: 'custom',
      path: ['retryMaxMs'],
      message: `${flagOf('retryMaxMs')} (${o.retryMaxMs}) must be >= ${flagOf('retryBaseMs')} (${o.retryBaseMs})`,
    });
  }
});
/** per-request options with every default filled in (workers and attempts resolved). */
export type PerRequestOptions = Omit<z.output<typeof PerRequestOptionsSchema>, 'workers' | 'retryMaxAttempts'> & { workers: number; retryMaxAttempts: number };
export type PerRequestSet = z.output<z.ZodObject<SetShape<typeof PER_REQUEST_OPTIONS>>>;

/**
 * floor: the least any design must do (servers/floor/): the same front, handshake, parser and
 * fan-out; every valid update acked at once and broadcast from RAM, nothing stored. The measuring
 * machine's own ceiling, beside which the designs are read as ratios.
 */
export const FLOOR_OPTIONS = {
  /** Processes holding sockets (default 1); N >= 2: a primary hands each socket to its board's shard, as batched does. */
  shards: BATCHED_OPTIONS.shards,
  shardNodeFlags: SHARD_NODE_FLAGS,
  maxPayloadBytes: SOCKET_OPTIONS.maxPayloadBytes,
  maxBufferedBytes: SOCKET_OPTIONS.maxBufferedBytes,
};
export const FloorOptionsSchema = z.strictObject(FLOOR_OPTIONS);
export type FloorOptions = z.output<typeof FloorOptionsSchema>;
export type FloorSet = z.output<z.ZodObject<SetShape<typeof FLOOR_OPTIONS>>>;

/** external: any protocol v1 server, started by the variant's own command (model/external.ts). */
export const ExternalOptionsSchema = z.strictObject(EXTERNAL_OPTIONS);
export type ExternalOptions = z.output<typeof ExternalOptionsSchema>;
export type ExternalSet = z.output<z.ZodObject<SetShape<typeof EXTERNAL_OPTIONS>>>;

/** What the runner and the report need to know of a kind. */
export interface VariantKindSpec {
  /** The kind's options, with bounds and defaults. */
  shape: z.ZodRawShape;
  /** The full schema (cross-field rules included). */
  schema: z.ZodType;
  /** The option that sets how many processes hold the sockets. */
  processOption: string;
  /** Processes when that option is not set. */
  defaultProcesses: (cpus: number) => number;
  /** Whether the processes share sockets round-robin (so a process may get more than its share). */
  roundRobin: boolean;
  /**
   * What the kind can do for the harness's faults beyond `kill`, `freeze` and `slow-consumers` (which
   * work on any server by its process tree and sockets): `diskFull`, the `faultInjection` option.
   */
  faults?: { diskFull: boolean };
  /**
   * What the design documents it loses when a fault strikes (protocol/README.md section 4): the audit
   * reports these per fault instead of failing on them in a run with faults. Absent: nothing.
   * `phantom`: updates broadcast and then never stored (batched broadcasts before commit);
   * `seqGaps`: seqs skipped (the batched seq lease after a crash, failed rows).
   */
  faultLoss?: ReadonlyArray<'phantom' | 'seqGaps'>;
  /** Started by the variant's own command, not by `wami-bench serve` (the `external` kind). */
  byCommand?: true;
  /**
   * Stores nothing (the `floor` kind): no audit of the database, the `audit.*` thresholds do not
   * apply, and conformance skips the checks that need storage (its /healthz says `storage: "none"`).
   */
  noStorage?: true;
  /** Gets shards above one process's file limit when `shards` is not set (runner/preflight.ts), as batched does. */
  autoShards?: true;
}

export const VARIANT_SPECS: Record<VariantKind, VariantKindSpec> = {
  batched: {
    shape: BATCHED_OPTIONS,
    schema: BatchedOptionsSchema,
    processOption: 'shards',
    defaultProcesses: () => 1,
    roundRobin: false,
    faults: { diskFull: true },
    faultLoss: ['phantom', 'seqGaps'],
    autoShards: true,
  },
  'per-request': {
    shape: PER_REQUEST_OPTIONS,
    schema: PerRequestOptionsSchema,
    processOption: 'workers',
    defaultProcesses: (cpus) => Math.max(1, cpus),
    roundRobin: true,
    faults: { diskFull: true },
  },
  floor: {
    shape: FLOOR_OPTIONS,
    schema: FloorOptionsSchema,
    processOption: 'shards',
    defaultProcesses: () => 1,
    roundRobin: false,
    noStorage: true,
    autoShards: true,
  },
  // How an external server spreads sockets over its processes is unknown: allow the same 10% imbalance as round-robin.
  external: {
    shape: EXTERNAL_OPTIONS,
    schema: ExternalOptionsSchema,
    processOption: 'processes',
    defaultProcesses: () => 1,
    roundRobin: true,
    byCommand: true,
  },
};

/** The kinds `wami-bench serve` runs (every kind but those started by their own command). */
export const SERVE_KINDS: readonly VariantKind[] = VARIANT_KINDS.filter((k) => !VARIANT_SPECS[k].byCommand);

/** The strict schema of the options a variant of `kind` may set (no defaults applied). */
export const VARIANT_SET_SCHEMAS = {
  batched: setSchema(BATCHED_OPTIONS),
  'per-request': setSchema(PER_REQUEST_OPTIONS),
  floor: setSchema(FLOOR_OPTIONS),
  external: setSchema(EXTERNAL_OPTIONS),
} as const;

/** A variant's options as it set them, by kind; an external variant also carries its command and the rest of how it is run. */
export type VariantSet =
  | { kind: 'batched'; options: BatchedSet }
  | { kind: 'per-request'; options: PerRequestSet }
  | { kind: 'floor'; options: FloorSet }
  | ({ kind: 'external'; options: ExternalSet } & ExternalServer);

/** The served kind that owns a flag, when another kind does and `kind` does not (for "applies to the X variant"). */
export function kindOwningFlag(flag: string, except: VariantKind): VariantKind | undefined {
  if (Object.keys(VARIANT_SPECS[except].shape).some((k) => flagOf(k) === flag)) return undefined;
  return SERVE_KINDS.find((k) => k !== except && Object.keys(VARIANT_SPECS[k].shape).some((key) => flagOf(key) === flag));
}

/** Problems of a zod parse as lines naming the flag: "--retry-max-ms (5) must be >= --retry-base-ms (10)". */
function problems(error: z.ZodError): string {
  return error.issues.map((i) => (i.code === 'custom' ? i.message : `${flagOf(String(i.path[0] ?? ''))}: ${i.message}`)).join('; ');
}

/** batched options from what was set; throws UsageError naming the flag. */
export function resolveBatchedOptions(set: Record<string, unknown>): BatchedOptions {
  const r = BatchedOptionsSchema.safeParse(set);
  if (!r.success) throw new UsageError(problems(r.error));
  return r.data;
}

/** floor options from what was set; throws UsageError naming the flag. */
export function resolveFloorOptions(set: Record<string, unknown>): FloorOptions {
  const r = FloorOptionsSchema.safeParse(set);
  if (!r.success) throw new UsageError(problems(r.error));
  return r.data;
}

/** per-request options from what was set; `cpus` gives the default worker count. Throws UsageError naming the flag. */
export function resolvePerRequestOptions(set: Record<string, unknown>, cpus: number): PerRequestOptions {
  const r = PerRequestOptionsSchema.safeParse(set);
  if (!r.success) throw new UsageError(problems(r.error));
  const o = r.data;
  return { ...o, workers: o.workers ?? Math.max(1, cpus), retryMaxAttempts: o.retryMaxAttempts ?? (o.txMode === 'deferred' ? 1 : DEFAULT_RETRY_MAX_ATTEMPTS) };
}

/** Checks what a variant set against its kind's full rules (cross-field ones too); the problem, or null. */
export function checkVariantOptions(kind: VariantKind, set: Record<string, unknown>): string | null {
  const r = VARIANT_SPECS[kind].schema.safeParse(set);
  return r.success ? null : problems(r.error);
}

/** The argv of what a variant set, for `wami-bench serve <kind>`, in the kind's option order. */
export function variantArgv(v: VariantSet): string[] {
  return toArgv(VARIANT_SPECS[v.kind].shape, v.options);
}

/** What a variant set, from its argv (a scenario's `flags`, a recorded `variantFlags`). Throws an Error naming a bad flag. */
export function variantSetFromArgv(kind: VariantKind, argv: readonly string[]): Record<string, unknown> {
  return fromArgv(VARIANT_SPECS[kind].shape, argv, `the ${kind} variant`);
}

/** How many server processes hold sockets: batched `shards` (default 1), per-request `workers` (default: CPUs), external `processes` (default 1). */
export function serverProcesses(v: VariantSet, cpus: number): number {
  const spec = VARIANT_SPECS[v.kind];
  const n = (v.options as Record<string, unknown>)[spec.processOption];
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : spec.defaultProcesses(cpus);
}

/** serverProcesses from a recorded argv; flags it cannot read count as not set. */
export function serverProcessesOfArgv(kind: VariantKind, argv: readonly string[], cpus: number): number {
  let options: Record<string, unknown> = {};
  try {
    options = variantSetFromArgv(kind, argv);
  } catch {
    // a result from another version: fall back to the defaults
  }
  return serverProcesses({ kind, options } as VariantSet, cpus);
}

/** Whether the argv sets the kind's process option (so the count is the variant's, not the default). */
export function setsProcesses(kind: VariantKind, argv: readonly string[]): boolean {
  const flag = flagOf(VARIANT_SPECS[kind].processOption);
  return argv.some((f) => f === flag || f.startsWith(`${flag}=`));
}
