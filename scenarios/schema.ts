/**
 * The scenario type and its schema (zod). A scenario is data: it is validated on load, unknown keys
 * are errors, units are in the names (`durationSec`, `connectRatePerSec`), and cross-field rules
 * (stages that fit the seeded boards, per-board users vs connections) are checked here too.
 * The fields that are fleet options (users, load, warm-up, fleet) and a variant's server options
 * are the model's own declarations (model/fleet-options.ts, model/variants.ts): one set of bounds and
 * defaults for the scenario, the CLI and the library.
 */
import { z } from 'zod';
import { CAPACITY_SEARCH_OPTIONS } from '../model/capacity-search.js';
import { FaultSchema, faultListProblems } from '../model/faults.js';
import { FLEET_OPTIONS, GUARD_OPTIONS } from '../model/fleet-options.js';
import { EXTERNAL_SERVER_SHAPE, ExternalServerSchema, type ExternalServer } from '../model/external.js';
import { setSchema } from '../model/options.js';
import { checkVariantOptions, VARIANT_KINDS, VARIANT_SET_SCHEMAS, VARIANT_SPECS, variantSetFromArgv, type VariantSet } from '../model/variants.js';
import { parseThreshold } from './thresholds.js';

const posInt = z.number().int().positive();
const F = FLEET_OPTIONS;

/** The fields only an external variant has (model/external.ts). */
const X = EXTERNAL_SERVER_SHAPE;
const EXTERNAL_KEYS = Object.keys(X) as Array<keyof typeof X>;

/**
 * A variant: a name, a server kind and the server options it sets (typed, by kind; the rest take the
 * server's defaults). `flags` (argv for `wami-bench serve <kind>`, e.g. ['--workers', '8']) is still
 * read, for scenario files written before `options`; it is turned into options on load.
 * An `external` variant brings its own server: `command` (with `{db}`, `{port}`, `{host}`), `cwd`,
 * `env`, `ready`, `readyTimeoutSec`, `stopTimeoutSec`, `setup` (model/external.ts), and `options`
 * only says how many processes hold its sockets (`{ processes: 1 }` by default).
 */
export const VariantSchema = z
  .strictObject({
    /** Name shown in results and reports, e.g. "per-request-8w". Letters, digits, - and _. */
    name: z.string().regex(/^[A-Za-z0-9][\w-]{0,40}$/, 'a name of letters, digits, "-" or "_" (at most 41 characters)'),
    /** Which server design. */
    kind: z.enum(VARIANT_KINDS),
    /** The server options this variant sets, e.g. { workers: 8 } or { flushIntervalMs: 50 } (see `wami-bench serve --help`). */
    options: z.record(z.string(), z.unknown()).default({}),
    /** The same as argv, e.g. ['--flush-interval-ms', '50'] (older scenario files). */
    flags: z.array(z.string().min(1)).optional(),
    /** Route this variant's sockets through Caddy (TLS) or straight to the server. Default: the scenario's `via`. */
    via: z.enum(['direct', 'caddy']).optional(),
    /**
     * Seconds between the runner's /metrics scrapes of this variant's server (default 1; 0: not
     * scraped, so every server metric is unknown). To measure the scrape's own cost (`scrape-cost`).
     */
    scrapeIntervalSec: z.number().min(0).max(60).optional(),
    /** The server's Node flags for this variant, in place of the scenario's `server.nodeFlags` (e.g. another semi-space size: `memory-latency`). */
    serverNodeFlags: z.array(z.string().regex(/^--[\w-]+(=.*)?$/, 'a Node flag like --max-semi-space-size=64')).optional(),
    // external only (model/external.ts; defaults and cross-field rules applied in the transform, so a
    // built-in kind that names one of these gets a clear error)
    /** external: the server's argv, no shell, with {db} (required), {port}, {host}. */
    command: X.command.optional(),
    /** external: its working directory (relative: against the scenario file's directory). */
    cwd: X.cwd,
    /** external: extra environment variables; values may hold placeholders. */
    env: X.env,
    /** external: the path polled until 2xx (default /healthz). */
    ready: X.ready.unwrap().optional(),
    /** external: longest wait for the port and ready path, seconds (default 30). */
    readyTimeoutSec: X.readyTimeoutSec.unwrap().optional(),
    /** external: SIGTERM to SIGKILL, seconds (default 10). */
    stopTimeoutSec: X.stopTimeoutSec.unwrap().optional(),
    /** external: what to run when the program is missing (shown in the error), e.g. "npm run build:pascal". */
    setup: X.setup,
  })
  .transform((v, ctx) => {
    let external: ExternalServer | null = null;
    if (v.kind === 'external') {
      if (v.flags) {
        ctx.addIssue({ code: 'custom', path: ['flags'], message: 'an external variant has no serve flags: its arguments go in command' });
        return z.NEVER;
      }
      if (v.command === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['command'],
          message:
            'an external variant needs command: the server\'s argv with {db} and usually {port}, e.g. ["./my-server", "--db", "{db}", "--port", "{port}"]',
        });
        return z.NEVER;
      }
      const given = Object.fromEntries(EXTERNAL_KEYS.filter((k) => v[k] !== undefined).map((k) => [k, v[k]]));
      const x = ExternalServerSchema.safeParse(given);
      if (!x.success) {
        for (const i of x.error.issues) ctx.addIssue({ code: 'custom', path: i.path as PropertyKey[], message: i.message });
        return z.NEVER;
      }
      external = x.data;
    } else {
      const stray = EXTERNAL_KEYS.filter((k) => v[k] !== undefined);
      if (stray.length) {
        for (const k of stray)
          ctx.addIssue({ code: 'custom', path: [k], message: `${k} is for kind "external" only (a ${v.kind} variant is started by wami-bench serve)` });
        return z.NEVER;
      }
    }
    let fromFlags: Record<string, unknown> = {};
    if (v.flags) {
      try {
        fromFlags = variantSetFromArgv(v.kind, v.flags);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: ['flags'], message: (e as Error).message });
        return z.NEVER;
      }
    }
    const set = VARIANT_SET_SCHEMAS[v.kind].safeParse({ ...fromFlags, ...v.options });
    if (!set.success) {
      for (const i of set.error.issues) {
        const message =
          i.code === 'unrecognized_keys'
            ? `unknown option(s) ${i.keys.map((k) => `"${k}"`).join(', ')} for the ${v.kind} variant (it takes ${Object.keys(VARIANT_SPECS[v.kind].shape).join(', ')})`
            : i.message;
        ctx.addIssue({ code: 'custom', path: ['options', ...i.path], message });
      }
      return z.NEVER;
    }
    const problem = checkVariantOptions(v.kind, set.data);
    if (problem) {
      ctx.addIssue({ code: 'custom', path: ['options'], message: problem });
      return z.NEVER;
    }
    return {
      name: v.name,
      kind: v.kind,
      options: set.data,
      ...(external ?? {}),
      ...(v.via ? { via: v.via } : {}),
      ...(v.scrapeIntervalSec !== undefined ? { scrapeIntervalSec: v.scrapeIntervalSec } : {}),
      ...(v.serverNodeFlags ? { serverNodeFlags: v.serverNodeFlags } : {}),
    } as Variant;
  });

/** A variant as loaded: its name, its kind with the options it set (typed by kind), and how its sockets reach it. */
export type Variant = VariantSet & { name: string; via?: 'direct' | 'caddy'; scrapeIntervalSec?: number; serverNodeFlags?: string[] };

export const StageSchema = z.strictObject({
  /** WebSocket users connected in this stage. */
  connections: F.connections,
  /** Measured time, after warm-up, seconds. */
  durationSec: F.durationSec,
  /** Override of load.updatesPerUserPerMin for this stage. */
  updatesPerUserPerMin: F.updatesPerUserPerMin.optional(),
  /**
   * true: run this stage only where every variant's processes can hold its sockets under the
   * machine's file limit (e.g. 20k sockets for a one-process external server); elsewhere the preflight
   * skips the whole stage, for every variant, and the result says so. Default: a stage that does not
   * fit refuses the run.
   */
  optional: z.boolean().optional(),
});

export const HttpLoadSchema = z.strictObject({
  /** Route to load; `:id` is replaced by a random seeded board id per request. */
  path: z
    .string()
    .regex(/^\/[\w/:.-]*$/, 'a path starting with "/"')
    .default('/boards/:id'),
  /** autocannon connections. */
  connections: posInt.max(1000),
  /** Requests per second over all connections (open-loop pacing). Omit for closed-loop max throughput. */
  rate: z.number().positive().optional(),
  /** How long autocannon runs, seconds (it starts with the measured window). */
  durationSec: z.number().positive().max(3600),
});

export const ScenarioSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,60}$/, 'lowercase letters, digits and "-"'),
    description: z.string().min(1),
    variants: z.array(VariantSchema).min(1),
    seed: z.strictObject({
      boards: posInt.max(1_000_000),
      cardsPerBoard: F.cardsPerBoard.unwrap(),
    }),
    users: z.strictObject({
      /** Users per board: user u is on board floor(u / perBoard) + 1. */
      perBoard: F.perBoard,
      /** New sockets per second during the connect phase, over the whole fleet. */
      connectRatePerSec: F.connectRatePerSec,
    }),
    load: z.strictObject({
      /** Updates per user per minute (each user's mean rate). */
      updatesPerUserPerMin: F.updatesPerUserPerMin,
      arrival: F.arrival,
      /** PRNG seed of the schedule: same seed, same schedule. */
      seed: F.seed,
      /** A step in the rate inside each stage's measured window (the `burst` scenario). */
      steps: F.rateSteps,
    }),
    stages: z.array(StageSchema).min(1),
    /** Warm-up before each measured window, seconds (load runs, nothing is recorded). */
    warmupSec: F.warmupSec,
    /** Repeats of every (variant, stage); variants are interleaved A B A B. */
    repeats: posInt.max(50).default(1),
    via: z.enum(['direct', 'caddy']).default('direct'),
    http: HttpLoadSchema.optional(),
    thresholds: z.array(z.string()).default([]),
    /**
     * Defaults of `wami-bench capacity` on this scenario (its flags win): any option of a capacity
     * search, e.g. { axis: 'rate', slo: ['ackMs.p99 < 500'], rateFactor: 1.5, durationSec: 6 }.
     */
    capacity: setSchema(CAPACITY_SEARCH_OPTIONS).optional(),
    /**
     * Faults injected into every run, inside its measured window (model/faults.ts): kill (restart on
     * the same file), freeze, disk-full, slow-consumers. Each run records what each one cost.
     */
    faults: z.array(FaultSchema).default([]),
    server: z
      .strictObject({
        /** Node flags for every server process of every variant (the same for all, so neither design wins by tuning). */
        nodeFlags: z.array(z.string().regex(/^--[\w-]+(=.*)?$/, 'a Node flag like --max-semi-space-size=64')).optional(),
      })
      .default({}),
    fleet: z
      .strictObject({
        /** Load-generator processes. Default: from CPUs and sockets. */
        workers: F.workers,
        /** Seconds to wait after the last scheduled send for acks and broadcasts (default 5). */
        drainSec: F.drainSec.unwrap().optional(),
        /** Node flags of the fleet's workers (default --max-semi-space-size=16). */
        nodeFlags: F.nodeFlags.unwrap().optional(),
        /** Bounds of the fleet's saturation guard; a run past one is `invalid`. Defaults: 50 ms, 90 %, 3 s, 50 ms. */
        guard: setSchema(GUARD_OPTIONS).optional(),
      })
      .default({}),
  })
  .superRefine((s, ctx) => {
    const names = new Set<string>();
    s.variants.forEach((v, i) => {
      if (names.has(v.name)) ctx.addIssue({ code: 'custom', path: ['variants', i, 'name'], message: `duplicate variant name "${v.name}"` });
      names.add(v.name);
    });
    s.stages.forEach((st, i) => {
      if (s.users.perBoard > st.connections) {
        ctx.addIssue({
          code: 'custom',
          path: ['stages', i, 'connections'],
          message: `${st.connections} connections is fewer than users.perBoard (${s.users.perBoard}): not even one full board`,
        });
      }
      const boardsNeeded = Math.ceil(st.connections / s.users.perBoard);
      if (boardsNeeded > s.seed.boards) {
        ctx.addIssue({
          code: 'custom',
          path: ['stages', i, 'connections'],
          message: `${st.connections} connections at ${s.users.perBoard} per board need ${boardsNeeded} boards, but seed.boards is ${s.seed.boards}`,
        });
      }
    });
    const faultIssues = new Set<string>();
    for (const st of s.stages) {
      for (const p of faultListProblems(s.faults, st.durationSec)) {
        if (faultIssues.has(`${p.index}:${p.message}`)) continue;
        faultIssues.add(`${p.index}:${p.message}`);
        ctx.addIssue({ code: 'custom', path: ['faults', p.index], message: p.message });
      }
    }
    s.faults.forEach((f, i) => {
      if (f.kind !== 'disk-full') return;
      for (const v of s.variants) {
        if (!VARIANT_SPECS[v.kind].faults?.diskFull)
          ctx.addIssue({ code: 'custom', path: ['faults', i], message: `variant "${v.name}" (${v.kind}) cannot inject disk-full (no fault injection)` });
      }
    });
    s.thresholds.forEach((t, i) => {
      try {
        parseThreshold(t);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: ['thresholds', i], message: (e as Error).message });
      }
    });
    (s.capacity?.slo ?? []).forEach((t, i) => {
      try {
        parseThreshold(t);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: ['capacity', 'slo', i], message: (e as Error).message });
      }
    });
    if (s.http && s.http.path.includes(':id') === false && !/^\/(healthz|metrics|boards\/\d+)$/.test(s.http.path)) {
      ctx.addIssue({ code: 'custom', path: ['http', 'path'], message: 'path must be /boards/:id, /boards/<n>, /healthz or /metrics' });
    }
  });

/** A scenario as written in a file (defaults optional). */
export type ScenarioInput = z.input<typeof ScenarioSchema>;
/** A scenario with every default filled in. */
export type Scenario = z.output<typeof ScenarioSchema>;
export type Stage = Scenario['stages'][number];

/** Identity helper for scenario files: gives them the type, validation happens on load. */
export function defineScenario(s: ScenarioInput): ScenarioInput {
  return s;
}
