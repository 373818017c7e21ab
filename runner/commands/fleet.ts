/**
 * `wami-bench fleet`: runs the client fleet against any server that speaks protocol v1 and writes
 * its FleetResult JSON. Calls the same runFleet() the runner uses.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { z } from 'zod';
import { runFleet, type FleetHooks } from '../../clients/coordinator.js';
import { httpBaseOf } from '../../clients/board-cards.js';
import { normaliseServerUrl, parseSegmentSpec } from '../../clients/plan.js';
import { EXIT } from '../../model/exit-codes.js';
import type { FleetResult } from '../../model/fleet-result.js';
import { UsageError } from '../../model/errors.js';
import { FLEET_FLAGS, FLEET_OPTIONS, GUARD_FLAGS, GUARD_OPTIONS, type FleetOptions } from '../../model/fleet-options.js';
import { defaultOf, parseFlagText } from '../../model/options.js';
import { creatableDir, optionFlag, parseCommand, strFlag, type CommandSpec } from '../args.js';
import { fleetProgressFields, Progress } from '../progress.js';
import { checkWritablePlace } from '../../servers/common/db.js';
import { DEFAULT_FLEET_THRESHOLDS, fleetThresholds, type ParsedThreshold } from '../../scenarios/thresholds.js';
import { applyOverrides, loadScenario, scenarioHash } from '../../scenarios/load.js';
import { StageSchema } from '../../scenarios/schema.js';
import { finishFleetResult } from '../fleet-output.js';
import { scenarioLoadOptions } from '../scenario-fleet.js';
import { barrierGate, segmentFileName } from '../segments.js';

/** "(default 5)", from the option's one declaration. */
const dflt = (k: keyof typeof FLEET_OPTIONS): string => `(default ${String(defaultOf(FLEET_OPTIONS[k]))})`;
const G = GUARD_OPTIONS;

const spec: CommandSpec = {
  usage:
    'wami-bench fleet --url ws://127.0.0.1:PORT[/ws] --connections N --per-board K --updates-per-user-per-min R --duration-sec S ' +
    '[--warmup-sec W] [--seed X] [--workers K] [--cards-per-board M] [--arrival poisson|fixed] [--connect-rate R] [--first-user U] ' +
    "[--threshold 'EXPR' …] [--ledger FILE] [--out FILE.json]\n" +
    '       wami-bench fleet --scenario NAME|PATH [--stage K] --url URL [--segment I/N [--barrier DIR]] [--out FILE.json]',
  summary:
    "Opens N WebSockets (users) from several worker processes, user u on board floor(u/K)+1, and sends each user's updates on a " +
    'seeded open-loop schedule; measures connect, ack and fan-out latency from the scheduled time (and from the actual send time), ' +
    'delivery (expected, missing, duplicate, out-of-order, phantom) and errors; marks the run invalid when the fleet itself could not ' +
    'keep up. Progress goes to stderr once a second; the FleetResult JSON goes to --out (or stdout).\n\n' +
    'Before the load, the fleet reads the cards of every board it will use from GET /boards/:id (--cards-per-board is then only checked against them; ' +
    'a server without that route needs --cards-per-board).\n\n' +
    'Thresholds, as in a scenario, are checked after the run; by default ' +
    `${DEFAULT_FLEET_THRESHOLDS.join(', ')}: a lost, duplicated, reordered or phantom broadcast, a refused update or one never answered fails the run. ` +
    'A --threshold on the same metric replaces its default (e.g. --threshold "errors.total < 10"). A failed threshold is named in the reasons; ' +
    '`status` still says only whether the fleet measured honestly.\n\n' +
    'Exit status: 0 status ok and every threshold met; 3 a threshold failed, or status invalid (the fleet fell behind, saturated, or not every socket was reached); ' +
    '1 status errored (the fleet could not run: server unreachable, worker crashed) or a harness error; 2 bad flags, or cards that do not match the server; 130 interrupted.\n\n' +
    "Many hosts: --segment I/N runs the I-th of N segments (I from 0, as Kubernetes' JOB_COMPLETION_INDEX) of the fleet of --connections users, " +
    "by whole boards, so a board's sender and receivers share this host's clock; the JSON then records the segment, host and clock, and carries " +
    'its ledger and per-second histograms for `wami-bench merge`. --barrier DIR (a directory every segment shares) starts all N schedules at one ' +
    'wall-clock time once every segment is connected, and writes DIR/segment-I-of-N.json unless --out says otherwise. --scenario takes the load ' +
    '(users, boards, rate, seed, window) from a scenario, as `wami-bench run` does; --connections, --duration-sec and --warmup-sec then override it as they do for run.',
  flagHelp: [
    '--url URL[,URL…]               server, ws:// or wss:// (a missing path means /ws) (required); several servers that',
    "                               each serve every board: board b's users go to the ((b-1) mod n)-th",
    '--connections N                sockets (= users) to open, 1..1000000 (required)',
    '--per-board K                  users per board, 1..N (required)',
    "--updates-per-user-per-min R   each user's mean update rate, >= 0 (required; 0 = connect only)",
    '--duration-sec S               measured seconds, >= 1 (required)',
    `--warmup-sec W                 seconds of load before the measured window ${dflt('warmupSec')}`,
    `--drain-sec D                  longest wait for answers after the last send ${dflt('drainSec')}`,
    `--seed X                       schedule seed: same seed, same schedule ${dflt('seed')}`,
    `--arrival poisson|fixed        inter-arrival law per user ${dflt('arrival')}`,
    '--cards-per-board M            cards per board of the seeded layout (board b owns cards (b-1)*M+1 .. b*M): only for a server without',
    "                               GET /boards/:id; otherwise checked against the server's cards (a mismatch is an error)",
    '--workers K                    worker processes (default: from CPUs and sockets, at least 2, <= 19000 sockets each)',
    `--connect-rate R               connection attempts per second, whole fleet ${dflt('connectRatePerSec')}`,
    `--handshake-timeout-ms T       WebSocket handshake timeout ${dflt('handshakeTimeoutMs')}`,
    `--first-user U                 global id of the first user, to run a segment of a fleet ${dflt('firstUser')}`,
    '--segment I/N                  run segment I (0..N-1) of N of the fleet of --connections users, by whole boards (not with --first-user);',
    '                               how many hosts a scenario needs: wami-bench run SCENARIO --fleet external --segments N --plan-only',
    '--barrier DIR                  with --segment: start when all N segments are connected (ready files in DIR, shared by every host)',
    '--barrier-timeout-sec S        longest wait at the barrier for the other segments (default 600)',
    '--scenario NAME|PATH           the load of a scenario (shipped name or file) instead of the load flags',
    '--stage K                      with --scenario: its K-th stage, from 1 (default 1)',
    "--wait-server-sec S            first wait up to S s for the server's GET /healthz (a fleet started beside its server, e.g. a Kubernetes Job)",
    '--source-addresses A,B,…       source addresses to spread sockets over (default for loopback targets: the least used of 127.0.0.2…254, 8000 sockets each)',
    `--sample-every N               sample 1 in N updates for first/median/last recipient ${dflt('sampleEvery')}`,
    `--node-flags="F …"             node flags of the workers, space-separated, given with = (default "${(defaultOf(FLEET_OPTIONS.nodeFlags) as string[]).join(' ')}")`,
    '--ca FILE                      PEM CA to trust for wss://',
    '--cpus LIST                    pin the workers to these CPUs with taskset, e.g. 1-3',
    '--id-prefix P                  prefix of client message ids (default: random per run)',
    `--lag-bound-ms X               invalid when the schedule lag p99 exceeds X ms (default ${String(defaultOf(G.lagMsP99))})`,
    `--cpu-bound-pct X              invalid when a worker stays at >= X% of a core for ${String(defaultOf(G.cpuSustainSec))}+ measured seconds (default ${String(defaultOf(G.cpuPct))})`,
    `--eld-bound-ms X               invalid when a worker's event-loop delay p99 exceeds X ms (default ${String(defaultOf(G.eventLoopDelayMsP99))})`,
    "--threshold 'EXPR'             a threshold like 'fanoutMs.p99 < 250' or 'errors.total < 10', repeatable (defaults above)",
    '--ledger FILE                  also write the ledger (acked, errored, unanswered, seen) for the audit',
    '--out FILE                     write the FleetResult JSON there (default: stdout)',
    '--quiet                        no progress lines',
  ],
  options: {
    url: { type: 'string' },
    connections: { type: 'string' },
    'per-board': { type: 'string' },
    'updates-per-user-per-min': { type: 'string' },
    'duration-sec': { type: 'string' },
    'warmup-sec': { type: 'string' },
    'drain-sec': { type: 'string' },
    seed: { type: 'string' },
    arrival: { type: 'string' },
    'cards-per-board': { type: 'string' },
    workers: { type: 'string' },
    'connect-rate': { type: 'string' },
    'handshake-timeout-ms': { type: 'string' },
    'first-user': { type: 'string' },
    segment: { type: 'string' },
    barrier: { type: 'string' },
    'barrier-timeout-sec': { type: 'string' },
    scenario: { type: 'string' },
    stage: { type: 'string' },
    'wait-server-sec': { type: 'string' },
    'source-addresses': { type: 'string' },
    'sample-every': { type: 'string' },
    'node-flags': { type: 'string' },
    ca: { type: 'string' },
    cpus: { type: 'string' },
    'id-prefix': { type: 'string' },
    'lag-bound-ms': { type: 'string' },
    'cpu-bound-pct': { type: 'string' },
    'eld-bound-ms': { type: 'string' },
    threshold: { type: 'string', multiple: true },
    ledger: { type: 'string' },
    out: { type: 'string' },
    quiet: { type: 'boolean' },
  },
};

/** The options that are one flag with one value, parsed by their field's rule (model/fleet-options.ts). */
const SCALAR_OPTIONS = [
  'connections',
  'perBoard',
  'updatesPerUserPerMin',
  'durationSec',
  'warmupSec',
  'drainSec',
  'seed',
  'arrival',
  'cardsPerBoard',
  'workers',
  'connectRatePerSec',
  'handshakeTimeoutMs',
  'firstUser',
  'sampleEvery',
  'cpus',
  'idPrefix',
] as const;

/** The flag's value, or undefined; a required option that is missing is a UsageError (`required` false: a scenario gives it). */
function flagText(v: Record<string, unknown>, flag: string, field: z.ZodType, required = true): string | undefined {
  const raw = v[flag.slice(2)];
  if (raw === undefined) {
    if (required && !field.safeParse(undefined).success) throw new UsageError(`${flag} is required`);
    return undefined;
  }
  return String(raw);
}

/** With --scenario, the load comes from the scenario: these options' flags are refused (connections, duration and warm-up override it, as they do for run). */
const SCENARIO_LOAD = ['perBoard', 'updatesPerUserPerMin', 'arrival', 'seed', 'cardsPerBoard', 'connectRatePerSec', 'drainSec', 'firstUser'] as const;

/** How a fleet started with `--scenario` is to be built: the scenario, its stage and the overrides (the same as `run`'s). */
export interface ScenarioSource {
  nameOrPath: string;
  /** 1-based. */
  stage: number;
  overrides: { connections?: number; durationSec?: number; warmupSec?: number };
}

/** A segment's start barrier: the shared directory and the longest wait. */
export interface BarrierSpec {
  dir: string;
  timeoutSec: number;
}

function parse(flag: string, raw: string, field: z.ZodType): unknown {
  try {
    return parseFlagText(flag, raw, field);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/**
 * Parses the flags into FleetOptions (exported for tests). Bounds come from the options' schema;
 * defaults are left to it (runFleet fills them in). Throws UsageError naming the bad flag.
 */
export function fleetOptionsFromArgv(argv: string[]): {
  opts: FleetOptions;
  out: string | null;
  quiet: boolean;
  thresholds: ParsedThreshold[];
  scenario: ScenarioSource | null;
  barrier: BarrierSpec | null;
  waitServerSec: number;
} | null {
  const p = parseCommand(spec, argv);
  if (!p) return null;
  const v = p.values;
  let scenario: ScenarioSource | null = null;
  if (v.scenario !== undefined) {
    for (const k of SCENARIO_LOAD)
      if (v[FLEET_FLAGS[k].slice(2)] !== undefined)
        throw new UsageError(`${FLEET_FLAGS[k]} comes from the scenario with --scenario (change the scenario, or leave out --scenario)`);
    const stage = v.stage === undefined ? 1 : Number(v.stage);
    if (!Number.isInteger(stage) || stage < 1) throw new UsageError(`--stage must be a whole number from 1, got "${String(v.stage)}"`);
    scenario = {
      nameOrPath: String(v.scenario),
      stage,
      overrides: {
        ...(v.connections !== undefined ? { connections: optionFlag(v, 'connections', StageSchema.shape.connections) as number } : {}),
        ...(v['duration-sec'] !== undefined ? { durationSec: optionFlag(v, 'duration-sec', StageSchema.shape.durationSec) as number } : {}),
        ...(v['warmup-sec'] !== undefined ? { warmupSec: optionFlag(v, 'warmup-sec', FLEET_OPTIONS.warmupSec) as number } : {}),
      },
    };
  } else if (v.stage !== undefined) throw new UsageError('--stage needs --scenario');
  const list = (s: string, sep: RegExp): string[] =>
    s
      .split(sep)
      .map((x) => x.trim())
      .filter((x) => x !== '');
  const urls = flagText(v, FLEET_FLAGS.url, FLEET_OPTIONS.url);
  const opts: Record<string, unknown> = { url: list(urls ?? '', /,/) };
  for (const k of SCALAR_OPTIONS) {
    if (scenario && (k === 'connections' || k === 'durationSec' || k === 'warmupSec')) continue; // overrides of the scenario, above
    const raw = flagText(v, FLEET_FLAGS[k], FLEET_OPTIONS[k], scenario === null);
    if (raw !== undefined) opts[k] = parse(FLEET_FLAGS[k], raw, FLEET_OPTIONS[k]);
  }
  if (v.segment !== undefined) {
    if (v['first-user'] !== undefined)
      throw new UsageError('--segment is not used with --first-user: a segment sets its own users (whole boards of the fleet of --connections)');
    try {
      opts.segment = parseSegmentSpec(String(v.segment));
    } catch (e) {
      throw new UsageError(`--segment ${(e as Error).message}`);
    }
  }
  let barrier: BarrierSpec | null = null;
  if (v.barrier !== undefined) {
    if (v.segment === undefined) throw new UsageError('--barrier needs --segment I/N (it starts the N segments together)');
    const t = v['barrier-timeout-sec'] === undefined ? 600 : Number(v['barrier-timeout-sec']);
    if (!Number.isFinite(t) || t <= 0 || t > 86_400)
      throw new UsageError(`--barrier-timeout-sec must be a number of seconds in (0, 86400], got "${String(v['barrier-timeout-sec'])}"`);
    barrier = { dir: creatableDir('--barrier', strFlag(v, 'barrier', undefined)), timeoutSec: t };
    mkdirSync(barrier.dir, { recursive: true });
  } else if (v['barrier-timeout-sec'] !== undefined) throw new UsageError('--barrier-timeout-sec needs --barrier DIR');
  const guard: Record<string, unknown> = {};
  for (const [k, flag] of Object.entries(GUARD_FLAGS)) {
    const raw = v[flag.slice(2)];
    if (raw !== undefined) guard[k] = parse(flag, String(raw), G[k as keyof typeof G]);
  }
  if (Object.keys(guard).length > 0) opts.guard = guard;
  if (v['source-addresses'] !== undefined) opts.sourceAddresses = list(strFlag(v, 'source-addresses', undefined), /,/);
  if (v['node-flags'] !== undefined) opts.nodeFlags = list(String(v['node-flags']), /\s+/);
  if (v.ca !== undefined) {
    const f = strFlag(v, 'ca', undefined);
    try {
      opts.ca = readFileSync(f, 'utf8');
    } catch (e) {
      throw new UsageError(`--ca: cannot read ${f}: ${(e as Error).message}`);
    }
  }
  if (v.ledger !== undefined) opts.ledgerFile = writableFile('--ledger', strFlag(v, 'ledger', undefined));
  const seg = opts.segment as { index: number; of: number } | undefined;
  const out =
    v.out !== undefined
      ? writableFile('--out', strFlag(v, 'out', undefined))
      : barrier && seg
        ? writableFile('--barrier', join(barrier.dir, segmentFileName(seg.index, seg.of)))
        : null;
  let thresholds: ParsedThreshold[];
  try {
    thresholds = fleetThresholds((v.threshold as string[] | undefined) ?? []);
  } catch (e) {
    throw new UsageError(`--threshold: ${(e as Error).message}`);
  }
  const waitServerSec = v['wait-server-sec'] === undefined ? 0 : Number(v['wait-server-sec']);
  if (!Number.isFinite(waitServerSec) || waitServerSec < 0 || waitServerSec > 86_400)
    throw new UsageError(`--wait-server-sec must be a number of seconds in [0, 86400], got "${String(v['wait-server-sec'])}"`);
  return { opts: opts as FleetOptions, out, quiet: v.quiet === true, thresholds, scenario, barrier, waitServerSec };
}

/** The fleet options of a scenario's stage, the command line's own options over them (URL, workers, segment, …). */
export async function scenarioFleetOptions(src: ScenarioSource, own: FleetOptions): Promise<FleetOptions> {
  const { scenario, file } = await loadScenario(src.nameOrPath);
  const s = applyOverrides(scenario, src.overrides, file);
  const stage = s.stages[src.stage - 1];
  if (!stage) throw new UsageError(`--stage ${src.stage}: scenario "${s.name}" has ${s.stages.length} stage${s.stages.length === 1 ? '' : 's'}`);
  if (s.faults.length > 0)
    throw new UsageError(`scenario "${s.name}" injects faults, which need the runner's own fleet: run it with wami-bench run, not as fleet segments`);
  const own2 = Object.fromEntries(Object.entries(own).filter(([, x]) => x !== undefined));
  return {
    ...scenarioLoadOptions(s, stage),
    ...(s.fleet.nodeFlags !== undefined ? { nodeFlags: s.fleet.nodeFlags } : {}),
    ...own2,
    scenario: { name: s.name, hash: scenarioHash(s), stage: src.stage },
  } as FleetOptions;
}

/** Polls GET BASE/healthz until it answers 200 (null) or the time is up (why not). */
async function waitForHealthz(base: string, timeoutMs: number, quiet: boolean): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  let said = false;
  for (;;) {
    try {
      const r = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return null;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = ((e as Error).cause as Error | undefined)?.message ?? (e as Error).message;
    }
    if (!said && !quiet) process.stderr.write(`waiting for the server at ${base}/healthz (up to ${Math.round(timeoutMs / 1000)} s)…\n`);
    said = true;
    if (Date.now() >= deadline)
      return `the server at ${base} did not answer GET /healthz within ${Math.round(timeoutMs / 1000)} s (--wait-server-sec; last: ${last})`;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** What the segments of one fleet share (scenario, load, seed, N): the barrier ignores notes of any other. */
export function fleetKey(o: FleetOptions): string {
  const seg = o.segment;
  return JSON.stringify([
    o.scenario?.name ?? null,
    o.scenario?.stage ?? null,
    o.connections,
    o.perBoard,
    o.updatesPerUserPerMin,
    o.seed ?? null,
    o.warmupSec ?? null,
    o.durationSec,
    seg?.of ?? null,
  ]);
}

/** The absolute path of a file the command will write at the end, checked now: a run is not lost to a typo in a path. */
function writableFile(flag: string, path: string): string {
  const file = resolve(path);
  try {
    checkWritablePlace(file);
  } catch (e) {
    throw new UsageError(`${flag} ${(e as Error).message}`);
  }
  return file;
}

export async function main(argv: string[]): Promise<number> {
  const parsed = fleetOptionsFromArgv(argv);
  if (!parsed) return 0;
  const { out, quiet, thresholds, barrier, waitServerSec } = parsed;
  const opts = parsed.scenario ? await scenarioFleetOptions(parsed.scenario, parsed.opts) : parsed.opts;
  const seg = opts.segment;
  if (waitServerSec > 0) {
    const first = Array.isArray(opts.url) ? opts.url[0]! : opts.url;
    const why = await waitForHealthz(httpBaseOf(normaliseServerUrl(first).toString()), waitServerSec * 1000, quiet);
    if (why) {
      process.stderr.write(`wami-bench fleet: ${why}\n`);
      return EXIT.error;
    }
  }
  const gate: Pick<FleetHooks, 'startGate'> =
    barrier && seg ? { startGate: barrierGate(barrier.dir, seg.index, seg.of, fleetKey(opts), barrier.timeoutSec * 1000) } : {};
  const abort = new AbortController();
  const onSig = (): void => abort.abort();
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  let result: FleetResult;
  // On a terminal one line rewritten in place, fitted to its width; elsewhere a plain line a second.
  const progress = new Progress(process.stderr, quiet, 0);
  try {
    result = await runFleet(opts, {
      signal: abort.signal,
      ...gate,
      ...(quiet ? {} : { onSecond: (p) => progress.line(fleetProgressFields(p)) }),
    });
  } catch (e) {
    if (abort.signal.aborted) {
      process.stderr.write('wami-bench fleet: interrupted; every worker was stopped\n');
      return 130;
    }
    throw e;
  } finally {
    progress.clear();
    process.removeListener('SIGINT', onSig);
    process.removeListener('SIGTERM', onSig);
  }
  return finishFleetResult(result, thresholds, out, seg ? `fleet segment ${seg.index}/${seg.of}` : 'fleet');
}
