/**
 * `wami-bench fleet`: runs the client fleet against any server that speaks protocol v1 and writes
 * its FleetResult JSON. Calls the same runFleet() the runner uses.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { z } from 'zod';
import { runFleet } from '../../clients/coordinator.js';
import type { FleetResult } from '../../model/fleet-result.js';
import { UsageError } from '../../model/errors.js';
import { FLEET_FLAGS, FLEET_OPTIONS, GUARD_FLAGS, GUARD_OPTIONS, type FleetOptions } from '../../model/fleet-options.js';
import { defaultOf, parseFlagText } from '../../model/options.js';
import { parseCommand, strFlag, type CommandSpec } from '../args.js';
import { fleetProgressFields, Progress } from '../progress.js';
import { EXIT } from '../../model/exit-codes.js';
import { checkWritablePlace } from '../../servers/common/db.js';
import { DEFAULT_FLEET_THRESHOLDS, evaluateFleetThresholds, fleetThresholds, thresholdReason, type ParsedThreshold } from '../../scenarios/thresholds.js';

/** "(default 5)", from the option's one declaration. */
const dflt = (k: keyof typeof FLEET_OPTIONS): string => `(default ${String(defaultOf(FLEET_OPTIONS[k]))})`;
const G = GUARD_OPTIONS;

const spec: CommandSpec = {
  usage:
    'wami-bench fleet --url ws://127.0.0.1:PORT[/ws] --connections N --per-board K --updates-per-user-per-min R --duration-sec S ' +
    '[--warmup-sec W] [--seed X] [--workers K] [--cards-per-board M] [--arrival poisson|fixed] [--connect-rate R] [--first-user U] ' +
    "[--threshold 'EXPR' …] [--ledger FILE] [--out FILE.json]",
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
    '1 status errored (the fleet could not run: server unreachable, worker crashed) or a harness error; 2 bad flags, or cards that do not match the server; 130 interrupted.',
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

/** The flag's value, or undefined; a required option that is missing is a UsageError. */
function flagText(v: Record<string, unknown>, flag: string, field: z.ZodType): string | undefined {
  const raw = v[flag.slice(2)];
  if (raw === undefined) {
    if (!field.safeParse(undefined).success) throw new UsageError(`${flag} is required`);
    return undefined;
  }
  return String(raw);
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
export function fleetOptionsFromArgv(argv: string[]): { opts: FleetOptions; out: string | null; quiet: boolean; thresholds: ParsedThreshold[] } | null {
  const p = parseCommand(spec, argv);
  if (!p) return null;
  const v = p.values;
  const list = (s: string, sep: RegExp): string[] =>
    s
      .split(sep)
      .map((x) => x.trim())
      .filter((x) => x !== '');
  const urls = flagText(v, FLEET_FLAGS.url, FLEET_OPTIONS.url);
  const opts: Record<string, unknown> = { url: list(urls ?? '', /,/) };
  for (const k of SCALAR_OPTIONS) {
    const raw = flagText(v, FLEET_FLAGS[k], FLEET_OPTIONS[k]);
    if (raw !== undefined) opts[k] = parse(FLEET_FLAGS[k], raw, FLEET_OPTIONS[k]);
  }
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
  const out = v.out !== undefined ? writableFile('--out', strFlag(v, 'out', undefined)) : null;
  let thresholds: ParsedThreshold[];
  try {
    thresholds = fleetThresholds((v.threshold as string[] | undefined) ?? []);
  } catch (e) {
    throw new UsageError(`--threshold: ${(e as Error).message}`);
  }
  return { opts: opts as FleetOptions, out, quiet: v.quiet === true, thresholds };
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
  const { opts, out, quiet, thresholds } = parsed;
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
  if (result.status !== 'errored') {
    result.thresholds = evaluateFleetThresholds(result, thresholds);
    result.reasons.push(...result.thresholds.filter((t) => !t.pass).map(thresholdReason));
  }
  const json = `${JSON.stringify(result, null, 2)}\n`;
  if (out) writeFileSync(out, json);
  else process.stdout.write(json);
  const r = result;
  const lat = r.latency;
  const failed = (r.thresholds ?? []).filter((t) => !t.pass);
  const verdict = failed.length ? ` (measured honestly), FAILED ${failed.length} threshold${failed.length === 1 ? '' : 's'}` : '';
  process.stderr.write(
    `fleet ${r.status}${verdict}: ${r.sockets.reached}/${r.sockets.asked} sockets; ${r.updates.sent} sent, ${r.updates.acked} acked, ` +
      `${r.updates.errored} errored, ${r.updates.unanswered} unanswered; delivery ${r.delivery.received}/${r.delivery.expected} ` +
      `(missing ${r.delivery.missing}, duplicate ${r.delivery.duplicate}, out-of-order ${r.delivery.outOfOrder}, phantom ${r.delivery.phantom}); ` +
      `ack p99 ${lat.ackMs.p99} ms, fanout p99 ${lat.fanoutMs.p99} ms${out ? `; wrote ${out}` : ''}\n`,
  );
  for (const reason of r.reasons) process.stderr.write(`  - ${reason}\n`);
  if (r.status === 'errored') return EXIT.error;
  if (r.status === 'invalid' || failed.length > 0) return EXIT.failed;
  return EXIT.ok;
}
