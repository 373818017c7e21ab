/**
 * Thresholds: `'fanoutMs.p99 < 250'`, `'audit.lostAcked == 0'`. Pure: parsing, the registry of
 * metric ids (dotted, units in the names) and evaluation against one run record.
 */
import { type FleetResult, fleetCpuUsPerFrame, fleetCpuUsPerFrameMeasured } from '../model/fleet-result.js';
import type { RunRecord, ThresholdOutcome } from '../model/result.js';

export const THRESHOLD_OPS = ['<', '<=', '>', '>=', '==', '!='] as const;
export type ThresholdOp = (typeof THRESHOLD_OPS)[number];

export interface ParsedThreshold {
  expr: string;
  metric: string;
  op: ThresholdOp;
  limit: number;
}

type Getter = (r: RunRecord) => number | null | undefined;

/** What a fleet result holds (and a run record too): the part of a run `wami-bench fleet` measures alone. */
export type FleetView = Pick<FleetResult, 'latency' | 'sockets' | 'delivery' | 'updates' | 'errors' | 'fleet' | 'timeseries' | 'window'>;
type FleetGetter = (r: FleetView) => number | null | undefined;

const LATENCY = ['connectMs', 'ackMs', 'fanoutMs'] as const;
const PCTS = ['p50', 'p90', 'p99', 'p999', 'max', 'mean', 'count'] as const;

/** The metrics a threshold can name that the fleet measures by itself (`wami-bench fleet --threshold`). */
export const FLEET_METRICS: ReadonlyMap<string, FleetGetter> = (() => {
  const m = new Map<string, FleetGetter>();
  for (const l of LATENCY) {
    for (const p of PCTS) {
      m.set(`${l}.${p}`, (r) => r.latency[l][p]);
      if (l !== 'connectMs') m.set(`${l}.uncorrected.${p}`, (r) => r.latency[l].uncorrected[p]);
    }
  }
  for (const k of ['asked', 'reached', 'failed', 'closedEarly'] as const) m.set(`sockets.${k}`, (r) => r.sockets[k]);
  for (const k of ['expected', 'received', 'missing', 'duplicate', 'outOfOrder', 'phantom'] as const) {
    m.set(`delivery.${k}`, (r) => r.delivery[k]);
  }
  for (const k of ['sent', 'acked', 'errored', 'unanswered'] as const) m.set(`updates.${k}`, (r) => r.updates[k]);
  m.set('errors.total', (r) => r.errors.total);
  for (const code of ['BAD_MESSAGE', 'UNKNOWN_CARD', 'OVERLOADED', 'BUSY_EXHAUSTED', 'WRITE_FAILED']) {
    m.set(`errors.byCode.${code}`, (r) => r.errors.byCode[code] ?? 0);
  }
  m.set('fleet.lagMsP99', (r) => r.fleet.lagMsP99);
  m.set('fleet.cpuSec', (r) => r.fleet.cpuSec);
  m.set('fleet.rssBytesMax', (r) => r.fleet.rssBytesMax);
  // the fleet's own cost (the fleet-cost scenario): RSS per socket reached, CPU per received frame (µs)
  m.set('fleet.rssBytesPerSocket', (r) => (r.sockets.reached > 0 ? r.fleet.rssBytesMax / r.sockets.reached : null));
  m.set('fleet.cpuUsPerFrame', (r) => fleetCpuUsPerFrame(r.fleet));
  // the same over the measured seconds only (workers; no connect phase, warm-up, drain or coordinator)
  m.set('fleet.cpuUsPerFrameMeasured', (r) => fleetCpuUsPerFrameMeasured(r));
  return m;
})();

/** Every metric id a threshold (or the capacity SLO) can name, with how to read it from a run. */
export const METRICS: ReadonlyMap<string, Getter> = (() => {
  const m = new Map<string, Getter>(FLEET_METRICS);
  for (const k of ['lostAcked', 'storedNotAcked', 'phantom', 'notBroadcast', 'finalStateMismatches', 'seqGaps'] as const) {
    m.set(`audit.${k}`, (r) => (r.audit ? r.audit[k] : null));
  }
  // null (the threshold fails) for a result from before seq reuse was checked
  m.set('audit.seqReused', (r) => r.audit?.seqReused ?? null);
  m.set('resources.server.rssBytesMax', (r) => r.resources.server.rssBytesMax);
  // null (the threshold fails) for a result from before the measured window's maximum was kept
  m.set('resources.server.rssBytesMaxMeasured', (r) => r.resources.server.rssBytesMaxMeasured ?? null);
  m.set('resources.server.pssBytesMax', (r) => r.resources.server.pssBytesMax);
  m.set('resources.server.rssBytesPerSocket', (r) => r.resources.server.rssBytesPerSocket);
  m.set('resources.server.cpuSec', (r) => r.resources.server.cpuSec);
  for (const k of ['busyHits', 'retries', 'exhausted', 'walBytesMax', 'eventLoopDelayMsP99', 'queueDepthMax', 'slowConsumerCloses'] as const) {
    m.set(`server.${k}`, (r) => r.server[k]);
  }
  return m;
})();

/**
 * What `wami-bench fleet` checks unless told otherwise: a fleet run that lost, duplicated, reordered
 * or invented a broadcast, got an error, or left an update unanswered fails (exit 3).
 */
export const DEFAULT_FLEET_THRESHOLDS = [
  'delivery.missing == 0',
  'delivery.duplicate == 0',
  'delivery.phantom == 0',
  'delivery.outOfOrder == 0',
  'errors.total == 0',
  'updates.unanswered == 0',
] as const;

const EXPR_RE = /^\s*([A-Za-z][\w.]*)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*$/i;

/**
 * Parses one expression; throws an Error naming what is wrong (unknown metric, bad operator, bad
 * number). `scope` 'fleet': only the metrics the fleet measures alone (FLEET_METRICS).
 */
export function parseThreshold(expr: string, scope: 'run' | 'fleet' = 'run'): ParsedThreshold {
  const m = EXPR_RE.exec(expr);
  if (!m) {
    throw new Error(`threshold "${expr}" is not of the form "<metric> <op> <number>" with op one of ${THRESHOLD_OPS.join(' ')}`);
  }
  const metric = m[1]!;
  if (scope === 'fleet' && METRICS.has(metric) && !FLEET_METRICS.has(metric)) {
    throw new Error(`threshold "${expr}" names ${metric}, which the fleet alone does not measure (wami-bench run measures the server and audits the database)`);
  }
  if (!METRICS.has(metric)) {
    const near = [...METRICS.keys()].filter((k) => k.split('.')[0] === metric.split('.')[0]).slice(0, 8);
    throw new Error(`threshold "${expr}" names an unknown metric "${metric}"${near.length ? ` (known: ${near.join(', ')}, …)` : ''}`);
  }
  return { expr: expr.trim(), metric, op: m[2] as ThresholdOp, limit: Number(m[3]) };
}

function compare(a: number, op: ThresholdOp, b: number): boolean {
  switch (op) {
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '==':
      return a === b;
    case '!=':
      return a !== b;
  }
}

/** Evaluates thresholds against a run. A metric that is not available (null) fails the threshold. */
export function evaluateThresholds(run: RunRecord, thresholds: readonly ParsedThreshold[]): ThresholdOutcome[] {
  return evaluateWith(thresholds, (t) => METRICS.get(t.metric)!(run));
}

/** Evaluates fleet-scope thresholds (parsed with scope 'fleet') against a fleet result. */
export function evaluateFleetThresholds(result: FleetView, thresholds: readonly ParsedThreshold[]): ThresholdOutcome[] {
  return evaluateWith(thresholds, (t) => {
    const get = FLEET_METRICS.get(t.metric);
    if (!get) throw new Error(`threshold "${t.expr}": ${t.metric} is not a fleet metric`);
    return get(result);
  });
}

/**
 * The fleet's thresholds: the defaults, with any the user gave on the same metric in their place,
 * then the user's others, in order. Throws an Error naming a bad expression.
 */
export function fleetThresholds(given: readonly string[]): ParsedThreshold[] {
  const mine = given.map((e) => parseThreshold(e, 'fleet'));
  const named = new Set(mine.map((t) => t.metric));
  return [...DEFAULT_FLEET_THRESHOLDS.map((e) => parseThreshold(e, 'fleet')).filter((t) => !named.has(t.metric)), ...mine];
}

/** "threshold failed: delivery.missing == 0 (actual 12)", the line a failed threshold puts in `reasons`. */
export function thresholdReason(t: ThresholdOutcome): string {
  return `threshold failed: ${t.expr} (actual ${t.actual === null ? 'none' : t.actual})`;
}

function evaluateWith(thresholds: readonly ParsedThreshold[], read: (t: ParsedThreshold) => number | null | undefined): ThresholdOutcome[] {
  return thresholds.map((t) => {
    const v = read(t);
    const actual = typeof v === 'number' && Number.isFinite(v) ? v : null;
    return { expr: t.expr, metric: t.metric, op: t.op, limit: t.limit, actual, pass: actual !== null && compare(actual, t.op, t.limit) };
  });
}
