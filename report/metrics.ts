/**
 * The metrics the report, the comparison and the exports read from one run, with their units and
 * direction. Ids are dotted like threshold metrics (`fanout.p99Ms`). One place, so the table, the
 * gate and the exported JSON always agree on what a name means.
 */
import { fleetCpuUsPerFrame, fleetCpuUsPerFrameMeasured } from '../model/fleet-result.js';
import type { RunRecord } from '../model/result.js';
import type { Unit } from './format.js';

export interface MetricDef {
  id: string;
  label: string;
  unit: Unit;
  /** Which way is better; null for context rows (sockets reached, counts sent). */
  better: 'lower' | 'higher' | null;
  /** false: no ratio column for this row (a count where a ratio says nothing, e.g. processes). */
  ratio?: false;
  get(run: RunRecord): number | null;
}

/**
 * Totals (sent, acked, delivered) cover every update the fleet sent, warm-up included (the audit
 * needs them all), so their rate is over warm-up plus the measured window.
 */
const perSec = (n: number, run: RunRecord) => {
  const sec = (run.window?.warmupSec ?? 0) + run.stage.durationSec;
  return sec > 0 ? n / sec : null;
};

/** `bytes / sockets reached`; null without a value or a socket. */
function perSocket(bytes: number | null | undefined, run: RunRecord): number | null {
  if (bytes === null || bytes === undefined || !(run.sockets.reached > 0)) return null;
  return bytes / run.sockets.reached;
}

/**
 * Most RSS of the fleet's process tree, sampled from /proc like the server's (the runner process,
 * which hosts the fleet's coordinator, counts as fleet); else the fleet's own figure.
 */
export function fleetRssMax(r: RunRecord): number | null {
  const v = r.resources.server.fleet?.rssBytesMax;
  return typeof v === 'number' && v > 0 ? v : r.fleet.rssBytesMax > 0 ? r.fleet.rssBytesMax : null;
}

/** Most kernel TCP socket memory (/proc/net/sockstat, whole machine) seen during the run. */
export function kernelTcpMax(r: RunRecord): number | null {
  let max: number | null = null;
  for (const s of r.resources.server.samples) if (s.kernelTcpMemBytes !== null && (max === null || s.kernelTcpMemBytes > max)) max = s.kernelTcpMemBytes;
  if (max !== null) return max;
  const v = r.resources.server.kernelTcpMemBytesMax;
  return typeof v === 'number' ? v : null;
}

const lat = (which: 'fanoutMs' | 'ackMs', key: 'p50' | 'p90' | 'p99' | 'p999' | 'max', name: string, label: string): MetricDef => ({
  id: `${name}.${key === 'max' ? 'maxMs' : `${key}Ms`}`,
  label,
  unit: 'ms',
  better: 'lower',
  get: (r) => r.latency[which][key],
});

export const M = {
  fanoutP50: lat('fanoutMs', 'p50', 'fanout', 'fan-out p50'),
  fanoutP90: lat('fanoutMs', 'p90', 'fanout', 'fan-out p90'),
  fanoutP99: lat('fanoutMs', 'p99', 'fanout', 'fan-out p99'),
  fanoutP999: lat('fanoutMs', 'p999', 'fanout', 'fan-out p99.9'),
  fanoutMax: lat('fanoutMs', 'max', 'fanout', 'fan-out max'),
  ackP50: lat('ackMs', 'p50', 'ack', 'ack p50'),
  ackP90: lat('ackMs', 'p90', 'ack', 'ack p90'),
  ackP99: lat('ackMs', 'p99', 'ack', 'ack p99'),
  ackP999: lat('ackMs', 'p999', 'ack', 'ack p99.9'),
  ackMax: lat('ackMs', 'max', 'ack', 'ack max'),
  socketsReached: { id: 'sockets.reached', label: 'sockets reached', unit: 'count', better: 'higher', get: (r) => r.sockets.reached } as MetricDef,
  sentPerSec: { id: 'updates.sentPerSec', label: 'updates sent', unit: 'perSec', better: null, get: (r) => perSec(r.updates.sent, r) } as MetricDef,
  ackedPerSec: { id: 'updates.ackedPerSec', label: 'updates acked', unit: 'perSec', better: 'higher', get: (r) => perSec(r.updates.acked, r) } as MetricDef,
  deliveredPerSec: {
    id: 'delivery.receivedPerSec',
    label: 'broadcasts delivered',
    unit: 'perSec',
    better: 'higher',
    get: (r) => perSec(r.delivery.received, r),
  } as MetricDef,
  missing: { id: 'delivery.missing', label: 'broadcasts missing', unit: 'count', better: 'lower', get: (r) => r.delivery.missing } as MetricDef,
  errors: { id: 'errors.total', label: 'errors', unit: 'count', better: 'lower', get: (r) => r.errors.total } as MetricDef,
  rss: { id: 'server.rssBytesMax', label: 'server RSS max', unit: 'bytes', better: 'lower', get: (r) => r.resources.server.rssBytesMax } as MetricDef,
  /** Over the fleet's measured window only: no connect burst before it, no closing of every socket after it; null in older results. */
  rssMeasured: {
    id: 'server.rssBytesMaxMeasured',
    label: 'server RSS max, measured window',
    unit: 'bytes',
    better: 'lower',
    get: (r) => r.resources.server.rssBytesMaxMeasured ?? null,
  } as MetricDef,
  pss: { id: 'server.pssBytesMax', label: 'server PSS max', unit: 'bytes', better: 'lower', get: (r) => r.resources.server.pssBytesMax } as MetricDef,
  ramPerSocket: {
    id: 'server.rssBytesPerSocket',
    label: 'RAM per socket',
    unit: 'bytes',
    better: 'lower',
    get: (r) => r.resources.server.rssBytesPerSocket,
  } as MetricDef,
  cpuSec: { id: 'server.cpuSec', label: 'server CPU', unit: 'sec', better: 'lower', get: (r) => r.resources.server.cpuSec } as MetricDef,
  /**
   * Server CPU per broadcast delivered, ms (0.025 = 25 µs): the whole run's CPU of the server tree
   * (connect, warm-up, measured window, drain: acks and SQLite writes included) ÷ every broadcast the
   * fleet received; null without a delivery.
   */
  cpuPerDelivery: {
    id: 'server.cpuMsPerDelivery',
    label: 'server CPU per delivered broadcast',
    unit: 'ms',
    better: 'lower',
    get: (r) => (r.delivery.received > 0 ? (r.resources.server.cpuSec * 1000) / r.delivery.received : null),
  } as MetricDef,
  cpuPctMean: {
    id: 'server.cpuPctMean',
    label: 'server CPU mean',
    unit: 'pct',
    better: 'lower',
    get: (r) => {
      const s = r.resources.server.samples;
      return s.length ? s.reduce((a, x) => a + x.serverCpuPct, 0) / s.length : null;
    },
  } as MetricDef,
  rssIdle: {
    id: 'server.rssBytesIdle',
    label: 'server RSS idle (before sockets)',
    unit: 'bytes',
    better: 'lower',
    get: (r) => r.resources.server.rssBytesIdle,
  } as MetricDef,
  rssGrowthPerSocket: {
    id: 'server.rssBytesPerSocket',
    label: 'server RSS growth ÷ sockets (RAM per socket)',
    unit: 'bytes',
    better: 'lower',
    get: (r) => r.resources.server.rssBytesPerSocket,
  } as MetricDef,
  rssPerSocketAllIn: {
    id: 'server.rssBytesMaxPerSocket',
    label: 'server RSS ÷ sockets',
    unit: 'bytes',
    better: 'lower',
    get: (r) => perSocket(r.resources.server.rssBytesMax, r),
  } as MetricDef,
  pssPerSocket: {
    id: 'server.pssBytesMaxPerSocket',
    label: 'server PSS ÷ sockets',
    unit: 'bytes',
    better: 'lower',
    get: (r) => perSocket(r.resources.server.pssBytesMax, r),
  } as MetricDef,
  serverProcesses: { id: 'server.processes', label: 'server processes', unit: 'count', better: null, get: (r) => r.resources.server.processes } as MetricDef,
  fleetRss: { id: 'fleet.rssBytesMax', label: 'fleet RSS max', unit: 'bytes', better: null, get: (r) => fleetRssMax(r) } as MetricDef,
  fleetRssPerSocket: {
    id: 'fleet.rssBytesPerSocket',
    label: 'fleet RSS ÷ sockets',
    unit: 'bytes',
    better: null,
    get: (r) => perSocket(fleetRssMax(r), r),
  } as MetricDef,
  fleetCpuPerFrame: {
    id: 'fleet.cpuMsPerFrame',
    label: 'fleet CPU per received frame',
    unit: 'ms',
    better: null,
    // The whole fleet's CPU (workers and coordinator, the whole run) over every frame its sockets received.
    get: (r) => {
      const us = fleetCpuUsPerFrame(r.fleet);
      return us === null ? null : us / 1000;
    },
  } as MetricDef,
  fleetCpuPerFrameMeasured: {
    id: 'fleet.cpuMsPerFrameMeasured',
    label: 'fleet CPU per received frame, measured seconds',
    unit: 'ms',
    better: null,
    // The workers' CPU over the measured seconds only, over the frames that arrived in them (no connect phase, no coordinator).
    get: (r) => {
      const us = fleetCpuUsPerFrameMeasured(r);
      return us === null ? null : us / 1000;
    },
  } as MetricDef,
  kernelTcp: { id: 'kernel.tcpMemBytesMax', label: 'kernel TCP memory max', unit: 'bytes', better: 'lower', get: (r) => kernelTcpMax(r) } as MetricDef,
  kernelTcpPerSocket: {
    id: 'kernel.tcpMemBytesPerSocket',
    label: 'kernel TCP memory ÷ sockets',
    unit: 'bytes',
    better: 'lower',
    get: (r) => perSocket(kernelTcpMax(r), r),
  } as MetricDef,
  queueDepthMax: { id: 'server.queueDepthMax', label: 'write queue depth max', unit: 'count', better: null, get: (r) => r.server.queueDepthMax } as MetricDef,
  eventLoopP99: {
    id: 'server.eventLoopDelayMsP99',
    label: 'server event-loop delay p99',
    unit: 'ms',
    better: 'lower',
    get: (r) => r.server.eventLoopDelayMsP99,
  } as MetricDef,
  fleetLagP99: { id: 'fleet.lagMsP99', label: 'fleet schedule lag p99', unit: 'ms', better: null, get: (r) => r.fleet.lagMsP99 } as MetricDef,
  fleetCpuMax: { id: 'fleet.cpuPctMax', label: 'fleet worker CPU max', unit: 'pct', better: null, get: (r) => r.fleet.cpuPctMax } as MetricDef,
} satisfies Record<string, MetricDef>;

/** A row of the side-by-side table: a metric, or a heading. */
export type TableRow = { heading: string } | { metric: MetricDef };

/** The side-by-side table, in order. Errors by code are inserted after `errors` per result. */
export const TABLE_ROWS: TableRow[] = [
  { heading: 'Fan-out (scheduled send → each other member)' },
  { metric: M.fanoutP50 },
  { metric: M.fanoutP90 },
  { metric: M.fanoutP99 },
  { metric: M.fanoutP999 },
  { metric: M.fanoutMax },
  { heading: 'Ack (scheduled send → durable ack)' },
  { metric: M.ackP50 },
  { metric: M.ackP90 },
  { metric: M.ackP99 },
  { metric: M.ackP999 },
  { metric: M.ackMax },
  { heading: 'Throughput and errors' },
  { metric: M.socketsReached },
  { metric: M.sentPerSec },
  { metric: M.ackedPerSec },
  { metric: M.deliveredPerSec },
  { metric: M.missing },
  { metric: M.errors },
  { heading: 'Server cost' },
  { metric: M.rss },
  { metric: M.rssMeasured },
  { metric: M.pss },
  { metric: M.ramPerSocket },
  { metric: M.cpuSec },
  { metric: M.cpuPerDelivery },
  { metric: M.cpuPctMean },
  { metric: M.eventLoopP99 },
  { heading: 'Fleet (is the load honest?)' },
  { metric: M.fleetLagP99 },
  { metric: M.fleetCpuMax },
];

/** A metric under another label (shorter, under a heading that says whose it is). */
const as = (m: MetricDef, label: string, extra: Partial<MetricDef> = {}): MetricDef => ({ ...m, label, ...extra });

/** The memory table of a stage (html.ts, "Memory at each stage"). */
export const MEMORY_ROWS: TableRow[] = [
  { heading: 'Server (whole process tree)' },
  { metric: as(M.rss, 'RSS peak (whole run: connect burst and closing included)') },
  { metric: as(M.rssMeasured, 'RSS peak, measured window') },
  { metric: as(M.rssIdle, 'RSS idle (no sockets yet)') },
  { metric: as(M.rssPerSocketAllIn, 'RSS peak ÷ sockets') },
  { metric: as(M.rssGrowthPerSocket, 'RSS growth ÷ sockets') },
  { metric: as(M.pss, 'PSS peak') },
  { metric: as(M.pssPerSocket, 'PSS peak ÷ sockets') },
  { metric: as(M.serverProcesses, 'processes', { ratio: false }) },
  { metric: as(M.queueDepthMax, 'write queue depth peak', { ratio: false }) },
  { heading: 'Fleet (load generator, same machine)' },
  { metric: as(M.fleetRss, 'RSS peak') },
  { metric: as(M.fleetRssPerSocket, 'RSS peak ÷ sockets') },
  { metric: as(M.fleetCpuPerFrame, 'CPU per received frame (whole run, coordinator and connect phase included)', { ratio: false }) },
  { metric: as(M.fleetCpuPerFrameMeasured, 'CPU per received frame (measured seconds, workers)', { ratio: false }) },
  { heading: 'Kernel TCP memory (whole machine)' },
  { metric: as(M.kernelTcp, 'peak') },
  { metric: as(M.kernelTcpPerSocket, 'peak ÷ sockets') },
];

/** Metrics of the comparison gate and the exports. */
export const GATE_METRICS: MetricDef[] = [M.fanoutP99, M.fanoutP50, M.ackP99, M.ackP50, M.ramPerSocket, M.cpuSec, M.errors];

/** Error rows for one code (server error code) or kind (client-side failure). */
export function errorCodeMetric(code: string, source: 'code' | 'kind'): MetricDef {
  return {
    id: `errors.${source === 'code' ? 'byCode' : 'byKind'}.${code}`,
    label: `  ${code}`,
    unit: 'count',
    better: 'lower',
    get: (r) => (source === 'code' ? r.errors.byCode[code] : r.errors.byKind[code]) ?? 0,
  };
}
