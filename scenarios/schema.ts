/**
 * The scenario type and its schema (zod). A scenario is data: it is validated on load, unknown keys
 * are errors, units are in the names (`durationSec`, `connectRatePerSec`), and cross-field rules
 * (stages that fit the seeded boards, per-board users vs connections) are checked here too.
 */
import { z } from 'zod';
import { parseThreshold } from './thresholds.js';

const posInt = z.number().int().positive();
const nonNegNum = z.number().nonnegative();

/** A CLI flag list for `wami-bench serve <kind>`, e.g. ['--workers', '8']. */
const flagList = z.array(z.string().min(1)).default([]);

export const VariantSchema = z.strictObject({
  /** Name shown in results and reports, e.g. "per-request-8w". Letters, digits, - and _. */
  name: z.string().regex(/^[A-Za-z0-9][\w-]{0,40}$/, 'a name of letters, digits, "-" or "_" (at most 41 characters)'),
  /** Which server design. */
  kind: z.enum(['batched', 'per-request']),
  /** Extra flags for `wami-bench serve <kind>` (e.g. ['--flush-interval-ms', '50']). */
  flags: flagList,
  /** Route this variant's sockets through Caddy (TLS) or straight to the server. Default: the scenario's `via`. */
  via: z.enum(['direct', 'caddy']).optional(),
});

export const StageSchema = z.strictObject({
  /** WebSocket users connected in this stage. */
  connections: posInt,
  /** Measured time, after warm-up, seconds. */
  durationSec: z.number().positive().max(3600),
  /** Override of load.updatesPerUserPerMin for this stage. */
  updatesPerUserPerMin: nonNegNum.optional(),
});

export const RateStepSchema = z.strictObject({
  /** Seconds after the measured window starts. */
  atSec: nonNegNum,
  /** Per-user rate from then on, updates per minute. */
  updatesPerUserPerMin: nonNegNum,
});

export const HttpLoadSchema = z.strictObject({
  /** Route to load; `:id` is replaced by a random seeded board id per request. */
  path: z.string().regex(/^\/[\w/:.-]*$/, 'a path starting with "/"').default('/boards/:id'),
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
      cardsPerBoard: posInt.max(100_000),
    }),
    users: z.strictObject({
      /** Users per board: user u is on board floor(u / perBoard) + 1. */
      perBoard: posInt,
      /** New sockets per second during the connect phase, over the whole fleet. */
      connectRatePerSec: z.number().positive().max(100_000).default(2000),
    }),
    load: z.strictObject({
      /** Updates per user per minute (each user's mean rate). */
      updatesPerUserPerMin: nonNegNum,
      arrival: z.enum(['poisson', 'fixed']).default('poisson'),
      /** PRNG seed of the schedule: same seed, same schedule. */
      seed: z.number().int().nonnegative().default(1),
      /** A step in the rate inside each stage's measured window (the `burst` scenario). */
      steps: z.array(RateStepSchema).default([]),
    }),
    stages: z.array(StageSchema).min(1),
    /** Warm-up before each measured window, seconds (load runs, nothing is recorded). */
    warmupSec: nonNegNum.max(600).default(5),
    /** Repeats of every (variant, stage); variants are interleaved A B A B. */
    repeats: posInt.max(50).default(1),
    via: z.enum(['direct', 'caddy']).default('direct'),
    http: HttpLoadSchema.optional(),
    thresholds: z.array(z.string()).default([]),
    server: z
      .strictObject({
        /** Node flags for every server process of every variant (the same for all, so neither design wins by tuning). */
        nodeFlags: z.array(z.string().regex(/^--[\w-]+(=.*)?$/, 'a Node flag like --max-semi-space-size=64')).optional(),
      })
      .default({}),
    fleet: z
      .strictObject({
        /** Load-generator processes. Default: from CPUs and sockets. */
        workers: posInt.max(64).optional(),
        /** Seconds to wait after the last scheduled send for acks and broadcasts. */
        drainSec: z.number().positive().max(120).optional(),
        nodeFlags: z.array(z.string().regex(/^--[\w-]+(=.*)?$/)).optional(),
        /** Bounds of the fleet's saturation guard; a run past one is `invalid`. Defaults: 50 ms, 90 %, 3 s, 50 ms. */
        guard: z
          .strictObject({
            lagMsP99: z.number().positive().optional(),
            cpuPct: z.number().positive().max(1000).optional(),
            cpuSustainSec: z.number().int().positive().optional(),
            eventLoopDelayMsP99: z.number().positive().optional(),
          })
          .optional(),
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
    s.thresholds.forEach((t, i) => {
      try {
        parseThreshold(t);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: ['thresholds', i], message: (e as Error).message });
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
export type Variant = Scenario['variants'][number];
export type Stage = Scenario['stages'][number];

/** Identity helper for scenario files: gives them the type, validation happens on load. */
export function defineScenario(s: ScenarioInput): ScenarioInput {
  return s;
}
