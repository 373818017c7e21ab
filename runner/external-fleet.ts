/**
 * `run --fleet external --segments N`: the runner starts the server and audits it as usual, but the
 * fleet runs elsewhere, as N segments (`wami-bench fleet --segment I/N`, e.g. a Kubernetes Indexed
 * Job): the runner says what to run, waits (bounded) for the N segment files, checks they ran this
 * run's load, and merges them (clients/merge.ts) into the run's fleet result and ledger.
 */
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { type Merged, mergeSegments } from '../clients/merge.js';
import type { FleetResult } from '../model/fleet-result.js';
import type { Scenario, Stage } from '../scenarios/schema.js';
import { planSegments, segmentsNeeded } from '../clients/plan.js';
import type { FleetHostLimits } from './preflight.js';
import { scenarioLoadOptions } from './scenario-fleet.js';
import { expectedSegmentFiles, readSegmentFile, readyFileName, waitForSegmentFiles } from './segments.js';

/** Where the fleet of a run comes from when it is not the runner's own. */
export interface ExternalFleet {
  /** N, the number of segments. */
  segments: number;
  /** The directory the segments write segment-I-of-N.json to (and meet at the barrier in); cleared before each run. */
  dir: string | null;
  /** Or the exact files to wait for (one run only). */
  files: string[] | null;
  /** Longest wait for all segment files, s; null: the run's estimate plus 10 minutes. */
  timeoutSec: number | null;
  /** Address and port the server listens on (reachable from the fleet's hosts). */
  host: string;
  port: number;
  /** The URL the segments connect to; null: ws://HOST:PORT/ws (this host's name when HOST is 0.0.0.0). */
  url: string | null;
  /** `fleet` flags that select this run's load: --scenario NAME plus the overrides `run` was given. */
  fleetArgs: string[];
  /** What a fleet host like the runner's can take (set by the preflight): each run then says what its stage needs. */
  hostLimits?: FleetHostLimits;
}

/** The URL the segments are told to use. */
export function fleetUrlFor(x: ExternalFleet, port: number): string {
  if (x.url) return x.url;
  const h = x.host === '0.0.0.0' || x.host === '::' ? hostname() : x.host;
  return `ws://${h.includes(':') ? `[${h}]` : h}:${port}/ws`;
}

/** The command each fleet host runs for segment I (shown with a literal I). */
export function segmentCommand(x: ExternalFleet, url: string, stageNo: number, index: string): string {
  const dir = x.dir ?? '<dir>';
  const out = x.files ? ` --out ${x.files.length === 1 ? x.files[0] : '<file I>'}` : '';
  return `wami-bench fleet ${x.fleetArgs.join(' ')} --stage ${stageNo} --url ${url} --segment ${index}/${x.segments} --barrier ${dir}${out}`;
}

/**
 * What each of the `segments` fleet hosts takes at this stage (its largest segment's users, boards
 * and deliveries a second, the acks included), and, with the preflight's `limits`, how many hosts
 * like the runner's the stage needs: a warning when that is more than `segments`. Pure.
 */
export function segmentLoadLine(s: Scenario, stage: Stage, segments: number, limits?: FleetHostLimits): string {
  const perBoard = s.users.perBoard;
  const upm = stage.updatesPerUserPerMin ?? s.load.updatesPerUserPerMin;
  const big = planSegments(stage.connections, perBoard, segments)[0]!;
  const rate = Math.round(((big.users * upm) / 60) * Math.min(perBoard, stage.connections));
  const head = `  each segment: up to ${big.users} users on ${big.boards} board${big.boards === 1 ? '' : 's'}, ~${rate} deliveries/s`;
  if (!limits) return head;
  const n = segmentsNeeded({ connections: stage.connections, perBoard, updatesPerUserPerMin: upm }, limits).segments;
  const need = `this stage needs ${n} fleet host${n === 1 ? '' : 's'} like this one (${limits.sockets} sockets, ${limits.deliveriesPerSec} deliveries/s each)`;
  return n > segments
    ? `${head}; WARNING: ${need}, more than the ${segments} segment${segments === 1 ? '' : 's'} asked for: expect failed connects or a run marked invalid`
    : `${head}; ${need}`;
}

/**
 * Why a merged fleet is not this run's load (null when it is): the same users, boards, rate, seed
 * and window as the runner's own fleet would have run, and the same scenario and stage when the
 * segments name one. Pure.
 */
export function segmentMismatch(r: FleetResult, s: Scenario, stage: Stage, stageNo: number): string | null {
  const want = scenarioLoadOptions(s, stage);
  const sc = r.config.scenario as { name?: string; stage?: number } | undefined;
  if (sc && (sc.name !== s.name || sc.stage !== stageNo))
    return `the segments ran scenario "${String(sc.name)}" stage ${String(sc.stage)}, this run is "${s.name}" stage ${stageNo}`;
  const checks: Array<[string, unknown, unknown]> = [
    ['connections', r.config.connections, want.connections],
    ['perBoard', r.config.perBoard, want.perBoard],
    ['updatesPerUserPerMin', r.config.updatesPerUserPerMin, want.updatesPerUserPerMin],
    ['seed', r.config.seed, want.seed],
    ['warmupSec', r.config.warmupSec, want.warmupSec],
    ['durationSec', r.config.durationSec, want.durationSec],
    ['arrival', r.config.arrival, want.arrival],
  ];
  for (const [k, got, exp] of checks)
    if (JSON.stringify(got) !== JSON.stringify(exp)) return `the segments ran ${k} ${JSON.stringify(got)}, this run needs ${JSON.stringify(exp)}`;
  return null;
}

export interface CollectOptions {
  fleet: ExternalFleet;
  scenario: Scenario;
  stage: Stage;
  stageNo: number;
  /** The server's port (for the URL shown). */
  port: number;
  /** Seconds the run itself takes (connect, warm-up, measure, drain), for the default timeout. */
  runSec: number;
  signal: AbortSignal;
  log: (m: string) => void;
  /** Where to keep the segment files after the merge (with --keep-db), as PREFIX.segment-I-of-N.json; null: removed (dir mode). */
  keepAs: string | null;
}

/** Says what to run, waits for the N segment files, merges them, checks them against the run. Rejects with one line. */
export async function collectExternalFleet(o: CollectOptions): Promise<Merged> {
  const x = o.fleet;
  const url = fleetUrlFor(x, o.port);
  const files = x.files ?? expectedSegmentFiles(x.dir!, x.segments);
  const timeoutSec = x.timeoutSec ?? Math.ceil(o.runSec) + 600;
  o.log(
    `  fleet: external, ${x.segments} segment${x.segments === 1 ? '' : 's'}; waiting up to ${timeoutSec} s for ${x.dir ? `${x.dir}/segment-I-of-${x.segments}.json` : files.join(', ')}.\n` +
      `  On each fleet host, for I = 0..${x.segments - 1}: ${segmentCommand(x, url, o.stageNo, 'I')}\n` +
      segmentLoadLine(o.scenario, o.stage, x.segments, x.hostLimits),
  );
  await waitForSegmentFiles({
    files,
    timeoutMs: timeoutSec * 1000,
    signal: o.signal,
    onProgress: (p) =>
      o.log(
        `  fleet: ${p.present.length} of ${files.length} segments in; waiting for ${p.missing.map((f) => f.replace(/^.*\//, '')).join(', ')} (${p.leftSec} s left)`,
      ),
  });
  const merged = mergeSegments(files.map((f) => readSegmentFile(f)));
  const why = segmentMismatch(merged.result, o.scenario, o.stage, o.stageNo);
  if (why) throw new Error(why);
  if (x.dir) {
    // consumed: the next run's segments write the same names
    files.forEach((f, i) => {
      if (o.keepAs && existsSync(f)) copyFileSync(f, `${o.keepAs}.segment-${i}-of-${x.segments}.json`);
      rmSync(f, { force: true });
      rmSync(join(x.dir!, readyFileName(i, x.segments)), { force: true });
    });
  }
  return merged;
}
