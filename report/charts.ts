/**
 * The charts of the page as JSON-only specs (no functions): titles, axes with units, datasets as
 * [x, y] pairs, downsampled. Per-run charts carry one dataset list per selection (stage × repeat)
 * and the page switches between them; the scaling curve is the same for every selection. The
 * page's script turns a spec into a chart.js config (see page.js).
 */
import type { TimePoint } from '../model/fleet-result.js';
import type { ResultFile, RunRecord } from '../model/result.js';
import type { CapacityStep } from '../model/capacity.js';
import { sig } from './format.js';
import { distributionOf } from './hdr.js';
import { M } from './metrics.js';
import { contentionCurve } from './contention.js';
import { signalPoints, sloMetrics, stepPoints, stepX, writeScalability } from './capacity.js';
import { axisOf } from '../model/capacity.js';
import { groupByStage, isValid, stageLabel, valuesOf, variantsOf } from './runs.js';
import { downsample, pointsPerRun, xy, type Reduce } from './series.js';
import { median } from './stats.js';

export type XY = Array<[number, number]>;

export interface DatasetSpec {
  label: string;
  data: XY;
  color: string;
  /** solid | dashed | dotted */
  dash?: 'dashed' | 'dotted';
  /** Plot against the right-hand axis. */
  y2?: boolean;
  /** Draw points only (scatter). */
  pointsOnly?: boolean;
  /** Mark each point on the line (few points, e.g. one per stage). */
  points?: boolean;
  /** Point marker other than a circle (e.g. a cross for runs that do not count). */
  pointStyle?: 'crossRot' | 'triangle';
}

export interface AxisSpec {
  label: string;
  log?: boolean;
  /** x = 1/(1-p): ticks labelled as percentiles. */
  percentile?: boolean;
  min?: number;
  max?: number;
}

export interface ChartSpec {
  id: string;
  title: string;
  x: AxisSpec;
  y: AxisSpec;
  y2?: AxisSpec;
  /** Datasets per selection key; absent for charts that do not depend on the selection. */
  bySel?: Record<string, DatasetSpec[]>;
  datasets?: DatasetSpec[];
  /** A line under the chart (what it shows, what is missing). */
  note?: string;
  /**
   * Per selection, the x range of the measured window ([from, to], fleet clock); the page shades
   * what lies outside it (connect, warm-up, drain).
   */
  measured?: Record<string, [number, number]>;
  /** x ranges to mark (a fault: [from, to] and its name), drawn as red bands. */
  marks?: Array<{ from: number; to: number; label: string }>;
}

export interface Selection {
  key: string;
  label: string;
  stageIndex: number;
  repeat: number;
}

export interface ChartSet {
  selections: Selection[];
  defaultSel: string;
  /** Charts by section id. */
  capacity: ChartSpec[];
  scaling: ChartSpec[];
  distribution: ChartSpec[];
  overTime: ChartSpec[];
  errors: ChartSpec[];
  resources: ChartSpec[];
  sqlite: ChartSpec[];
  /** One timeline per run with faults, each fault marked. */
  faults: ChartSpec[];
}

export const PALETTE = ['#2563eb', '#ea580c', '#16a34a', '#9333ea', '#0891b2', '#be123c', '#a16207', '#4b5563'];

const MiB = 1024 * 1024;

function selKey(stageIndex: number, repeat: number): string {
  return `${stageIndex}:${repeat}`;
}

/** Selections (stage × repeat) in order, and the default: the largest stage, its first repeat. */
export function selectionsOf(result: ResultFile): { selections: Selection[]; defaultSel: string } {
  const seen = new Map<string, Selection & { runs: RunRecord[] }>();
  for (const r of result.runs) {
    const key = selKey(r.stage.index, r.repeat);
    let s = seen.get(key);
    if (!s) {
      s = { key, label: '', stageIndex: r.stage.index, repeat: r.repeat, runs: [] };
      seen.set(key, s);
    }
    s.runs.push(r);
  }
  const list = [...seen.values()].sort((a, b) => a.stageIndex - b.stageIndex || a.repeat - b.repeat);
  const selections = list.map(({ runs, ...s }) => {
    const bad = runs.filter((r) => !isValid(r)).map((r) => `${r.variant} ${r.status}`);
    const stage = runs[0]?.stage ?? { index: s.stageIndex, connections: 0 };
    return { ...s, label: `${stageLabel(stage)} · repeat ${s.repeat}${bad.length ? ` (${bad.join(', ')})` : ''}` };
  });
  const maxStage = Math.max(...list.map((s) => s.stageIndex));
  const def = selections.find((s) => s.stageIndex === maxStage);
  return { selections, defaultSel: def?.key ?? selections[0]?.key ?? '' };
}

type FleetKey = 't' | 'openSockets' | 'sent' | 'acked' | 'delivered' | 'errors' | 'ackP99Ms' | 'fanoutP99Ms' | 'lagMsP99' | 'fleetCpuPct';
const FLEET_RULES: Record<FleetKey, Reduce> = {
  t: 'first',
  openSockets: 'mean',
  sent: 'mean',
  acked: 'mean',
  delivered: 'mean',
  errors: 'mean',
  ackP99Ms: 'max',
  fanoutP99Ms: 'max',
  lagMsP99: 'max',
  fleetCpuPct: 'mean',
};
type ResKey = 't' | 'rss' | 'pss' | 'cpu' | 'fleetCpu' | 'conns' | 'ktcp' | 'fleetRss';
const RES_RULES: Record<ResKey, Reduce> = { t: 'first', rss: 'max', pss: 'max', cpu: 'mean', fleetCpu: 'mean', conns: 'mean', ktcp: 'max', fleetRss: 'max' };
type SrvKey = 't' | 'queueDepth' | 'walBytes' | 'busyHits' | 'retries' | 'exhausted' | 'persisted' | 'commitMsP99' | 'eventLoopDelayMsP99';
const SRV_RULES: Record<SrvKey, Reduce> = {
  t: 'first',
  queueDepth: 'max',
  walBytes: 'max',
  busyHits: 'mean',
  retries: 'mean',
  exhausted: 'mean',
  persisted: 'mean',
  commitMsP99: 'max',
  eventLoopDelayMsP99: 'max',
};

/** Per-second error counts by code, when the fleet's time points carry them (an optional field). */
function errorsByCodeSeries(ts: readonly TimePoint[], maxPoints: number): Map<string, XY> {
  const codes = new Set<string>();
  for (const p of ts) {
    const by = p.errorsByCode;
    if (by) for (const k of Object.keys(by)) codes.add(k);
  }
  const out = new Map<string, XY>();
  for (const code of [...codes].sort()) {
    const rows = ts.map((p) => ({ t: p.t, n: p.errorsByCode?.[code] ?? 0 }));
    out.set(code, xy(downsample(rows, maxPoints, { t: 'first', n: 'mean' }), 't', 'n'));
  }
  return out;
}

/** Open sockets at each resource sample: the server's own count, else the fleet's at the nearest second. */
function socketsAt(run: RunRecord, t: number, conns: number | null): number | null {
  if (conns !== null) return conns;
  let best: TimePoint | null = null;
  for (const p of run.timeseries) if (best === null || Math.abs(p.t - t) < Math.abs(best.t - t)) best = p;
  return best ? best.openSockets : null;
}

/** What every chart builder of one result shares: variants and their colours, selections, the downsampled series. */
interface ChartContext {
  result: ResultFile;
  variants: string[];
  color: (v: string) => string;
  selections: Selection[];
  defaultSel: string;
  maxPoints: number;
  tag: (r: RunRecord) => string;
  /** One dataset list per selection (stage × repeat), from the runs of that selection. */
  per: (fn: (runs: RunRecord[]) => DatasetSpec[]) => Record<string, DatasetSpec[]>;
  /** A run's downsampled series: the fleet's seconds, the resource samples, the server's metrics. */
  F: (r: RunRecord) => Array<Record<FleetKey, number | null>>;
  R: (r: RunRecord) => Array<Record<ResKey, number | null>>;
  S: (r: RunRecord) => Array<Record<SrvKey, number | null>>;
  tFleet: string;
  tRun: string;
  /** Shading of what lies outside the measured window, when the runs say where it was. */
  shade: { measured?: Record<string, [number, number]> };
  shadeNote: string;
}

function chartContext(result: ResultFile): ChartContext {
  const variants = variantsOf(result);
  const color = (v: string) => {
    const i = variants.indexOf(v);
    return PALETTE[(i < 0 ? variants.length : i) % PALETTE.length] as string;
  };
  const { selections, defaultSel } = selectionsOf(result);
  const maxPoints = pointsPerRun(result.runs.length);
  const tag = (r: RunRecord) => (isValid(r) ? r.variant : `${r.variant} (${r.status})`);

  const runsOf = (s: Selection) =>
    variants.map((v) => result.runs.find((r) => r.variant === v && r.stage.index === s.stageIndex && r.repeat === s.repeat)).filter((r): r is RunRecord => !!r);

  const per = (fn: (runs: RunRecord[]) => DatasetSpec[]): Record<string, DatasetSpec[]> => {
    const out: Record<string, DatasetSpec[]> = {};
    for (const s of selections) out[s.key] = fn(runsOf(s));
    return out;
  };

  const fleet = new Map<RunRecord, Array<Record<FleetKey, number | null>>>();
  const res = new Map<RunRecord, Array<Record<ResKey, number | null>>>();
  const srv = new Map<RunRecord, Array<Record<SrvKey, number | null>>>();
  for (const r of result.runs) {
    fleet.set(r, downsample(r.timeseries, maxPoints, FLEET_RULES));
    const samples = r.resources.server.samples.map((s) => ({
      t: s.t,
      rss: s.serverRssBytes,
      pss: s.serverPssBytes,
      cpu: s.serverCpuPct,
      fleetCpu: s.fleetCpuPct,
      conns: socketsAt(r, s.t, s.serverConnections),
      ktcp: s.kernelTcpMemBytes,
      fleetRss: s.fleetRssBytes,
    }));
    res.set(r, downsample(samples, maxPoints, RES_RULES));
    srv.set(r, downsample(r.server.timeseries, maxPoints, SRV_RULES));
  }
  const F = (r: RunRecord) => fleet.get(r) ?? [];
  const R = (r: RunRecord) => res.get(r) ?? [];
  const S = (r: RunRecord) => srv.get(r) ?? [];
  // Two clocks: the fleet's series count from the fleet's start; the server's metrics and the
  // resource samples from the run's start, a second or two earlier. They are never mixed on one axis.
  const tFleet = 'time since the fleet started (s)';
  const tRun = 'time since the run started (s)';
  const measured: Record<string, [number, number]> = {};
  for (const s of selections) {
    const ws = runsOf(s)
      .map((r) => r.window?.measuredT)
      .filter((w): w is { from: number; to: number } => !!w);
    if (ws.length) measured[s.key] = [Math.min(...ws.map((w) => w.from)), Math.max(...ws.map((w) => w.to))];
  }
  const shade = Object.keys(measured).length ? { measured } : {};
  const shadeNote = Object.keys(measured).length ? ' Grey: outside the measured window (connecting, warm-up, drain).' : '';

  return { result, variants, color, selections, defaultSel, maxPoints, tag, per, F, R, S, tFleet, tRun, shade, shadeNote };
}

/** Scaling across stages: medians of valid runs. */
function scalingCharts({ result, variants, color }: ChartContext): ChartSpec[] {
  const stages = groupByStage(result);
  const scaling: ChartSpec[] = [];
  if (stages.length > 1) {
    const curve = (v: string, get: (r: RunRecord) => number | null, scale = 1): XY => {
      const out: XY = [];
      for (const g of stages) {
        const cell = g.cells.find((c) => c.variant === v);
        const vals = cell ? valuesOf(cell.valid, { id: '', label: '', unit: 'count', better: null, get }) : [];
        if (vals.length) out.push([g.connections, sig(median(vals) * scale, 4)]);
      }
      return out;
    };
    scaling.push({
      id: 'scaling-latency',
      title: 'Latency p99 against sockets (median of valid repeats)',
      x: { label: 'open sockets (stage)' },
      y: { label: 'p99 latency (ms)', min: 0 },
      datasets: variants.flatMap((v) => [
        { label: `${v} fan-out p99`, data: curve(v, M.fanoutP99.get), color: color(v), points: true },
        { label: `${v} ack p99`, data: curve(v, M.ackP99.get), color: color(v), dash: 'dashed' as const, points: true },
      ]),
    });
    scaling.push({
      id: 'scaling-ram',
      title: 'Server memory against sockets (median of valid repeats)',
      x: { label: 'open sockets (stage)' },
      y: { label: 'RAM per socket (KiB)', min: 0 },
      y2: { label: 'server RSS max (MiB)', min: 0 },
      datasets: variants.flatMap((v) => [
        { label: `${v} RAM per socket`, data: curve(v, M.ramPerSocket.get, 1 / 1024), color: color(v), points: true },
        { label: `${v} RSS max`, data: curve(v, M.rss.get, 1 / MiB), color: color(v), dash: 'dashed' as const, y2: true, points: true },
      ]),
    });
  }

  return scaling;
}

function distributionCharts({ per, tag, color }: ChartContext): ChartSpec[] {
  const hdrChart = (id: string, title: string, which: 'fanoutMs' | 'ackMs'): ChartSpec => ({
    id,
    title,
    x: { label: 'percentile (x = 1/(1−p), log scale)', log: true, percentile: true, min: 1 },
    y: { label: 'latency (ms)', min: 0 },
    bySel: per((runs) =>
      runs.flatMap((r) => [
        { label: `${tag(r)} corrected (from scheduled time)`, data: distributionOf(r.latency[which].histogram), color: color(r.variant) },
        {
          label: `${tag(r)} uncorrected (from actual send)`,
          data: distributionOf(r.latency[which].uncorrected.histogram),
          color: color(r.variant),
          dash: 'dashed' as const,
        },
      ]),
    ),
    note: 'Corrected latency counts from the scheduled send time, so a stalled server cannot hide its stall (coordinated omission); the uncorrected line counts from the actual send.',
  });
  return [
    hdrChart('hdr-fanout', 'Fan-out latency distribution (each other member)', 'fanoutMs'),
    hdrChart('hdr-ack', 'Ack latency distribution (durable commit)', 'ackMs'),
  ];
}

function overTimeCharts({ per, tag, color, F, tFleet, shade, shadeNote }: ChartContext): ChartSpec[] {
  return [
    {
      id: 'ts-latency',
      title: 'Latency p99 over time, with open sockets',
      x: { label: tFleet },
      ...shade,
      note: `Per-second p99 of corrected latency, as the fleet saw it.${shadeNote}`,
      y: { label: 'p99 latency per second (ms)', min: 0 },
      y2: { label: 'open sockets', min: 0 },
      bySel: per((runs) =>
        runs.flatMap((r) => [
          { label: `${tag(r)} fan-out p99`, data: xy(F(r), 't', 'fanoutP99Ms'), color: color(r.variant) },
          { label: `${tag(r)} ack p99`, data: xy(F(r), 't', 'ackP99Ms'), color: color(r.variant), dash: 'dashed' as const },
          { label: `${tag(r)} open sockets`, data: xy(F(r), 't', 'openSockets'), color: color(r.variant), dash: 'dotted' as const, y2: true },
        ]),
      ),
    },
    {
      id: 'ts-throughput',
      title: 'Throughput over time',
      x: { label: tFleet },
      ...shade,
      y: { label: 'updates per second', min: 0 },
      y2: { label: 'broadcasts delivered per second', min: 0 },
      bySel: per((runs) =>
        runs.flatMap((r) => [
          { label: `${tag(r)} sent/s`, data: xy(F(r), 't', 'sent'), color: color(r.variant) },
          { label: `${tag(r)} acked/s`, data: xy(F(r), 't', 'acked'), color: color(r.variant), dash: 'dashed' as const },
          { label: `${tag(r)} delivered/s`, data: xy(F(r), 't', 'delivered'), color: color(r.variant), dash: 'dotted' as const, y2: true },
        ]),
      ),
    },
  ];
}

function errorCharts({ result, per, tag, color, F, tFleet, shade, shadeNote, maxPoints }: ChartContext): ChartSpec[] {
  const byCodeAvailable = result.runs.some((r) => r.timeseries.some((p) => p.errorsByCode));
  return [
    {
      id: 'ts-errors',
      title: 'Errors over time by code',
      x: { label: tFleet },
      ...shade,
      y: { label: 'errors per second', min: 0 },
      bySel: per((runs) =>
        runs.flatMap((r) => {
          const ds: DatasetSpec[] = [];
          const byCode = errorsByCodeSeries(r.timeseries, maxPoints);
          if (byCode.size > 0) {
            let i = 0;
            for (const [code, data] of byCode) ds.push({ label: `${tag(r)} ${code}`, data, color: color(r.variant), dash: i++ % 2 ? 'dashed' : undefined });
          } else {
            ds.push({ label: `${tag(r)} all codes (fleet)`, data: xy(F(r), 't', 'errors'), color: color(r.variant) });
          }
          return ds;
        }),
      ),
      note: `${byCodeAvailable ? 'Counted by the fleet, per error code.' : 'The fleet’s per-second series has totals only; totals by code are in the side-by-side table.'} The server’s own BUSY_EXHAUSTED count per second is in the SQLite panel.${shadeNote}`,
    },
  ];
}

function resourceCharts({ result, per, tag, color, F, R, S, tFleet, tRun, shade, shadeNote }: ChartContext): ChartSpec[] {
  return [
    {
      id: 'res-memory',
      title: 'Server memory over time (whole process tree)',
      x: { label: tRun },
      y: { label: 'memory (MiB)', min: 0 },
      bySel: per((runs) =>
        runs.flatMap((r) => [
          { label: `${tag(r)} RSS`, data: xy(R(r), 't', 'rss', 1 / MiB), color: color(r.variant) },
          { label: `${tag(r)} PSS`, data: xy(R(r), 't', 'pss', 1 / MiB), color: color(r.variant), dash: 'dashed' as const },
        ]),
      ),
      note: 'PSS shares each page among the processes that map it, so for several worker processes it is the fairer figure.',
    },
    {
      id: 'res-cpu',
      title: 'CPU over time',
      x: { label: tRun },
      y: { label: 'CPU (% of one core)', min: 0 },
      bySel: per((runs) =>
        runs.flatMap((r) => [
          { label: `${tag(r)} server`, data: xy(R(r), 't', 'cpu'), color: color(r.variant) },
          { label: `${tag(r)} fleet`, data: xy(R(r), 't', 'fleetCpu'), color: color(r.variant), dash: 'dashed' as const },
        ]),
      ),
      note: `The whole process trees, sampled from /proc once a second. ${result.environment.cpuCount} cores: ${result.environment.cpuCount * 100} % is the machine.`,
    },
    {
      id: 'res-eventloop',
      title: 'Server event-loop delay over time',
      x: { label: tRun },
      y: { label: 'event-loop delay p99 (ms)', min: 0 },
      bySel: per((runs) =>
        runs.map((r) => ({ label: `${tag(r)} server event-loop delay p99`, data: xy(S(r), 't', 'eventLoopDelayMsP99'), color: color(r.variant) })),
      ),
      note: 'From the server’s /metrics, once a second (the worst process of the tree).',
    },
    {
      id: 'res-fleet',
      title: 'Fleet over time: schedule lag and CPU',
      x: { label: tFleet },
      ...shade,
      y: { label: 'schedule lag p99 (ms)', min: 0 },
      y2: { label: 'fleet CPU (% of one core)', min: 0 },
      bySel: per((runs) =>
        runs.flatMap((r) => [
          { label: `${tag(r)} schedule lag p99`, data: xy(F(r), 't', 'lagMsP99'), color: color(r.variant) },
          { label: `${tag(r)} fleet CPU`, data: xy(F(r), 't', 'fleetCpuPct'), color: color(r.variant), dash: 'dashed' as const, y2: true },
        ]),
      ),
      note: `A fleet that lags its own schedule makes the run invalid: the load would no longer be the one asked for.${shadeNote}`,
    },
    {
      id: 'res-rss-sockets',
      title: 'Server RSS against open sockets',
      x: { label: 'open sockets', min: 0 },
      y: { label: 'server RSS (MiB)', min: 0 },
      bySel: per((runs) => runs.map((r) => ({ label: tag(r), data: xy(R(r), 'conns', 'rss', 1 / MiB), color: color(r.variant), pointsOnly: true }))),
      note: 'One point per second: open sockets as the server counts them (else the fleet, at the nearest second).',
    },
    {
      id: 'res-kernel',
      title: 'Kernel TCP memory and fleet RSS over time',
      x: { label: tRun },
      y: { label: 'kernel TCP memory (MiB)', min: 0 },
      y2: { label: 'fleet RSS (MiB)', min: 0 },
      bySel: per((runs) =>
        runs.flatMap((r) => [
          { label: `${tag(r)} kernel TCP memory`, data: xy(R(r), 't', 'ktcp', 1 / MiB), color: color(r.variant) },
          { label: `${tag(r)} fleet RSS`, data: xy(R(r), 't', 'fleetRss', 1 / MiB), color: color(r.variant), dash: 'dashed' as const, y2: true },
        ]),
      ),
      note: 'Kernel TCP memory is /proc/net/sockstat for the whole machine: the buffers of both ends of every socket, in pages. The fleet’s RSS includes the runner, which hosts its coordinator.',
    },
  ];
}

/**
 * Contention over the worker count (when a selection's runs hold per-request at two or more worker
 * counts, as the `contention` scenario does): BUSY hits, retries and exhausted per update, and ack
 * p99.9 with attempts p99, against the workers; the baseline as its own series, batched as a line.
 */
function contentionCharts({ result, per }: ChartContext): ChartSpec[] {
  const cpus = result.environment.cpuCount;
  const curves = per((runs) => {
    const c = contentionCurve(runs, cpus);
    if (!c) return [];
    const pts = (xs: typeof c.perRequest, f: (p: (typeof xs)[number]) => number | null): XY =>
      xs.filter((p) => p.valid && f(p) !== null).map((p) => [p.workers, sig(f(p)!, 4)] as [number, number]);
    const bad = (xs: typeof c.perRequest, f: (p: (typeof xs)[number]) => number | null): XY =>
      xs.filter((p) => !p.valid && f(p) !== null).map((p) => [p.workers, sig(f(p)!, 4)] as [number, number]);
    const crosses = bad(c.perRequest, (p) => p.busyPerUpdate);
    return [
      ...(crosses.length
        ? [{ label: 'BUSY hits per update, invalid or errored run', data: crosses, color: PALETTE[0]!, pointsOnly: true, pointStyle: 'crossRot' as const }]
        : []),
      { label: 'BUSY hits per update', data: pts(c.perRequest, (p) => p.busyPerUpdate), color: PALETTE[0]!, points: true },
      { label: 'retries per update', data: pts(c.perRequest, (p) => p.retriesPerUpdate), color: PALETTE[1]!, points: true, dash: 'dashed' as const },
      { label: 'BUSY_EXHAUSTED (% of updates)', data: pts(c.perRequest, (p) => p.exhaustedPct), color: PALETTE[5]!, points: true, y2: true },
      ...(c.baseline.length
        ? [
            {
              label: 'baseline (deferred, no retry): exhausted %',
              data: pts(c.baseline, (p) => p.exhaustedPct),
              color: PALETTE[7]!,
              pointsOnly: true,
              pointStyle: 'triangle' as const,
              y2: true,
            },
          ]
        : []),
    ];
  });
  const latency = per((runs) => {
    const c = contentionCurve(runs, cpus);
    if (!c) return [];
    const xs = c.perRequest.filter((p) => p.valid).map((p) => p.workers);
    const pts = (list: typeof c.perRequest, f: (p: (typeof list)[number]) => number | null): XY =>
      list.filter((p) => p.valid && f(p) !== null && f(p)! > 0).map((p) => [p.workers, sig(f(p)!, 4)] as [number, number]);
    const crosses = c.perRequest.filter((p) => !p.valid && p.ackP999Ms > 0).map((p) => [p.workers, sig(p.ackP999Ms, 4)] as [number, number]);
    const out: DatasetSpec[] = [
      { label: 'per-request ack p99.9', data: pts(c.perRequest, (p) => p.ackP999Ms), color: PALETTE[0]!, points: true },
      ...(crosses.length
        ? [{ label: 'ack p99.9, invalid or errored run', data: crosses, color: PALETTE[0]!, pointsOnly: true, pointStyle: 'crossRot' as const }]
        : []),
      { label: 'attempts p99', data: pts(c.perRequest, (p) => p.attemptsP99), color: PALETTE[1]!, points: true, dash: 'dashed', y2: true },
    ];
    if (c.baseline.length)
      out.push({ label: 'baseline ack p99.9', data: pts(c.baseline, (p) => p.ackP999Ms), color: PALETTE[7]!, pointsOnly: true, pointStyle: 'triangle' });
    for (const b of c.batched.filter((x) => x.valid && x.ackP999Ms > 0)) {
      if (xs.length)
        out.push({
          label: `${b.variant} ack p99.9 (one process, for reference)`,
          data: [
            [Math.min(...xs), sig(b.ackP999Ms, 4)],
            [Math.max(...xs), sig(b.ackP999Ms, 4)],
          ],
          color: PALETTE[2]!,
          dash: 'dotted',
        });
    }
    return out;
  });
  if (!Object.values(curves).some((d) => d.length > 0)) return [];
  return [
    {
      id: 'sql-contention',
      title: 'SQLITE_BUSY contention over the worker count',
      x: { label: 'per-request worker processes (log)', log: true },
      y: { label: 'per update received', min: 0 },
      y2: { label: 'BUSY_EXHAUSTED (% of updates sent)', min: 0 },
      bySel: curves,
      note: 'Each point one per-request run at the same offered rate (a cross: the run was invalid or errored, so it says less): how hard the workers fight over SQLite’s one write lock as there are more of them.',
    },
    {
      id: 'sql-contention-latency',
      title: 'Ack p99.9 and attempts p99 over the worker count',
      x: { label: 'per-request worker processes (log)', log: true },
      y: { label: 'ack p99.9 (ms, log)', log: true },
      y2: { label: 'attempts p99', min: 0 },
      bySel: latency,
      note: 'The dotted line is batched’s ack p99.9 in the same selection (one process, one writer): where retries stop paying.',
    },
  ];
}

function sqliteCharts(ctx: ChartContext): ChartSpec[] {
  const { per, tag, color, S, tRun } = ctx;
  return [
    ...contentionCharts(ctx),
    {
      id: 'sql-commit',
      title: 'Commit time over time',
      x: { label: tRun },
      y: { label: 'commit p99 per second (ms)', min: 0 },
      bySel: per((runs) => runs.map((r) => ({ label: `${tag(r)} commit p99`, data: xy(S(r), 't', 'commitMsP99'), color: color(r.variant) }))),
    },
    {
      id: 'sql-busy',
      title: 'SQLITE_BUSY hits, retries and exhausted retries',
      x: { label: tRun },
      y: { label: 'per second', min: 0 },
      bySel: per((runs) =>
        runs.flatMap((r) => [
          { label: `${tag(r)} BUSY hits`, data: xy(S(r), 't', 'busyHits'), color: color(r.variant) },
          { label: `${tag(r)} retries`, data: xy(S(r), 't', 'retries'), color: color(r.variant), dash: 'dashed' as const },
          { label: `${tag(r)} exhausted`, data: xy(S(r), 't', 'exhausted'), color: color(r.variant), dash: 'dotted' as const },
        ]),
      ),
    },
    {
      id: 'sql-queue',
      title: 'Write queue depth and persisted updates',
      x: { label: tRun },
      y: { label: 'queue depth (updates)', min: 0 },
      y2: { label: 'persisted per second', min: 0 },
      bySel: per((runs) =>
        runs.flatMap((r) => [
          { label: `${tag(r)} queue depth`, data: xy(S(r), 't', 'queueDepth'), color: color(r.variant) },
          { label: `${tag(r)} persisted/s`, data: xy(S(r), 't', 'persisted'), color: color(r.variant), dash: 'dashed' as const, y2: true },
        ]),
      ),
    },
    {
      id: 'sql-wal',
      title: 'WAL file size over time',
      x: { label: tRun },
      y: { label: 'WAL size (MiB)', min: 0 },
      bySel: per((runs) => runs.map((r) => ({ label: `${tag(r)} WAL`, data: xy(S(r), 't', 'walBytes', 1 / MiB), color: color(r.variant) }))),
    },
  ];
}

/** The SLO metrics drawn on the rate axis's write-scalability charts (not repeated as SLO charts). */
const SCALABILITY_METRICS = new Set(['ackMs.p99', 'fanoutMs.p99']);

function capacityCharts(ctx: ChartContext): ChartSpec[] {
  const { result, color } = ctx;
  const capacity: ChartSpec[] = [];
  if (result.capacity) {
    const c = result.capacity;
    const rateAxis = axisOf(c) === 'rate';
    if (rateAxis) capacity.push(...writeScalabilityCharts(ctx));
    const xsAll = c.variants.flatMap((v) => v.steps.map(stepX));
    const xs: [number, number] = rateAxis
      ? [Math.min(...xsAll, c.rate?.startRate ?? Infinity), Math.max(...xsAll, 1)]
      : [Math.min(c.startConnections, ...xsAll), Math.max(c.maxConnections, ...xsAll)];
    for (const m of sloMetrics(c)) {
      if (rateAxis && SCALABILITY_METRICS.has(m.metric)) continue;
      const scale = m.unit === 'bytes' ? 1 / MiB : 1;
      const unit = m.unit === 'bytes' ? 'MiB' : m.unit === 'ms' ? 'ms' : m.unit === 'sec' ? 's' : '';
      const ds: DatasetSpec[] = [];
      let crosses = false;
      for (const v of c.variants) {
        const pts = stepPoints(v, m.metric, scale);
        ds.push({ label: `${v.variant} ${m.metric}`, data: pts.ok, color: color(v.variant), points: true });
        if (pts.invalid.length) crosses = true;
        if (pts.invalid.length)
          ds.push({
            label: `${v.variant}: invalid or errored step (does not count)`,
            data: pts.invalid,
            color: color(v.variant),
            pointsOnly: true,
            pointStyle: 'crossRot',
          });
      }
      ds.push({
        label: `SLO: ${m.expr}`,
        data: [
          [xs[0], sig(m.limit * scale, 4)],
          [xs[1], sig(m.limit * scale, 4)],
        ],
        color: '#6b7280',
        dash: 'dashed',
      });
      capacity.push({
        id: `capacity-${m.metric.replace(/[^\w]+/g, '-')}`,
        title: `${m.metric} against ${rateAxis ? 'the offered rate' : 'sockets'}, per step of the search`,
        x: rateAxis ? { label: 'offered updates/s (capacity step)', log: true, ...logRange(xs[0], xs[1]) } : { label: 'sockets (capacity step)' },
        y: { label: `${m.metric}${unit ? ` (${unit})` : ''}`, min: 0 },
        datasets: ds,
        note: `One point per step; the dashed line is the SLO.${crosses ? ' Crosses mark steps whose run was invalid (the fleet fell behind) or errored: those say nothing about the server.' : ''}`,
      });
    }
  }

  return capacity;
}

/**
 * The write-scalability panel (rate axis): ack p99, fan-out p99, the write error rate and each
 * design's own pressure signal (retries per update for per-request, the queue-depth peak for
 * batched) against the offered rate on a log axis; each variant's knee (largest passing rate) marked
 * with a triangle, steps that do not count with a cross, and the fleet's own ceiling as a dotted line.
 */
function writeScalabilityCharts({ result, color }: ChartContext): ChartSpec[] {
  const c = result.capacity!;
  const rows = writeScalability(result);
  const kindOf = new Map(rows.map((r) => [r.variant, r.kind]));
  const ceiling = c.fleetCeiling;
  const ceilingX = ceiling ? (ceiling.firstInvalid ?? null) : null;
  const sloLimit = (metric: string): number | null => {
    for (const e of c.slo) {
      const m = /^\s*([\w.]+)\s*<=?\s*([\d.eE+-]+)\s*$/.exec(e);
      if (m && m[1] === metric) return Number(m[2]);
    }
    return null;
  };
  const xsAll = c.variants.flatMap((v) => v.steps.map(stepX));
  const x0 = Math.min(...xsAll);
  const x1 = Math.max(...xsAll);
  const chart = (
    id: string,
    title: string,
    yLabel: string,
    read: (s: CapacityStep) => number | null | undefined,
    opts: { log?: boolean; slo?: string; only?: (kind: string) => boolean; note: string },
  ): ChartSpec => {
    const ds: DatasetSpec[] = [];
    let ys: number[] = [];
    for (const v of c.variants) {
      if (opts.only && !opts.only(kindOf.get(v.variant) ?? '')) continue;
      const pts = signalPoints(v, (s) => {
        const y = read(s);
        return opts.log && y !== null && y !== undefined && y <= 0 ? null : y;
      });
      ys = ys.concat(
        pts.ok.map((p) => p[1]),
        pts.invalid.map((p) => p[1]),
      );
      ds.push({ label: v.variant, data: pts.ok, color: color(v.variant), points: true });
      if (pts.invalid.length)
        ds.push({ label: `${v.variant}: invalid or errored step`, data: pts.invalid, color: color(v.variant), pointsOnly: true, pointStyle: 'crossRot' });
      const knee = v.largestPassing === null ? undefined : pts.ok.find((p) => p[0] === v.largestPassing);
      if (knee)
        ds.push({
          label: `${v.variant} knee: ${fmtNumShort(knee[0])} updates/s`,
          data: [knee],
          color: color(v.variant),
          pointsOnly: true,
          pointStyle: 'triangle',
        });
    }
    const limit = opts.slo ? sloLimit(opts.slo) : null;
    if (limit !== null) {
      ds.push({
        label: `SLO: ${opts.slo} < ${limit}`,
        data: [
          [x0, limit],
          [x1, limit],
        ],
        color: '#6b7280',
        dash: 'dashed',
      });
      ys.push(limit);
    }
    if (ceilingX !== null && ys.length) {
      const lo = opts.log ? Math.max(Math.min(...ys), 1e-3) : 0;
      ds.push({
        label: `the fleet’s own ceiling: could not offer ${fmtNumShort(ceilingX)} updates/s to a no-op sink`,
        data: [
          [ceilingX, lo],
          [ceilingX, Math.max(...ys)],
        ],
        color: '#111827',
        dash: 'dotted',
      });
    }
    return {
      id,
      title,
      x: { label: 'offered updates/s (log)', log: true, ...logRange(x0, x1) },
      y: opts.log ? { label: yLabel, log: true } : { label: yLabel, min: 0 },
      datasets: ds,
      note: opts.note,
    };
  };
  const kneeNote = 'One point per step; a triangle marks each variant’s knee (its largest passing rate), a cross a step whose run was invalid or errored.';
  return [
    chart('capacity-ws-ack', 'Write scalability: ack p99 against the offered rate', 'ack p99 (ms, log)', (s) => s.signals?.ackP99Ms, {
      log: true,
      slo: 'ackMs.p99',
      note: `${kneeNote} Ack: scheduled send to durable commit, at the sender.`,
    }),
    chart('capacity-ws-fanout', 'Write scalability: fan-out p99 against the offered rate', 'fan-out p99 (ms, log)', (s) => s.signals?.fanoutP99Ms, {
      log: true,
      slo: 'fanoutMs.p99',
      note: `${kneeNote} Fan-out: scheduled send to arrival at the other members of the board.`,
    }),
    chart(
      'capacity-ws-errors',
      'Write scalability: write errors against the offered rate',
      'BUSY_EXHAUSTED + OVERLOADED + WRITE_FAILED (% of updates)',
      (s) => (s.signals ? s.signals.errorRate * 100 : null),
      {
        note: `Share of updates answered with a write error; the search stops past ${fmtNumShort((c.rate?.maxErrorRate ?? 0) * 100)} %.`,
      },
    ),
    chart(
      'capacity-ws-retries',
      'Write scalability: per-request’s pressure, SQLITE_BUSY retries per update',
      'retries per update',
      (s) => s.signals?.retriesPerUpdate,
      {
        only: (k) => k === 'per-request',
        note: 'Transaction attempts beyond the first, per update received: how hard the workers fight over SQLite’s one write lock.',
      },
    ),
    chart('capacity-ws-queue', 'Write scalability: batched’s pressure, queue-depth peak', 'queue-depth peak (updates, log)', (s) => s.signals?.queueDepthPeak, {
      log: true,
      only: (k) => k === 'batched',
      note: 'The highest queue depth in the measured window (the server keeps the peak between scrapes): updates waiting for the writer. It passes the queue bound as OVERLOADED.',
    }),
  ];
}

/** A log axis's range around [lo, hi], widened to the 1-2-5 series so its ticks read cleanly (500 and 750 -> 500..1,000). */
export function logRange(lo: number, hi: number): { min: number; max: number } {
  const steps = [1, 2, 5, 10];
  const down = (x: number): number => {
    const m = 10 ** Math.floor(Math.log10(x));
    return m * [...steps].reverse().find((k) => k * m <= x)!;
  };
  const up = (x: number): number => {
    const m = 10 ** Math.floor(Math.log10(x));
    return m * steps.find((k) => k * m >= x)!;
  };
  const min = down(lo);
  const max = up(hi);
  return { min, max: max > min ? max : up(hi * 1.01) };
}

function fmtNumShort(x: number): string {
  return x >= 1000 ? Math.round(x).toLocaleString('en-US') : String(sig(x, 3));
}

/** One timeline per run with faults: acks, errors and open sockets per second, each fault a red band. */
function faultCharts({ result, color, F, tFleet }: ChartContext): ChartSpec[] {
  return result.runs
    .filter((r) => (r.faults?.length ?? 0) > 0)
    .map((r, i) => ({
      id: `faults-${i}`,
      title: `${r.variant} · stage ${r.stage.index + 1} (${r.stage.connections} sockets) · repeat ${r.repeat}: the run, faults marked`,
      x: { label: tFleet },
      y: { label: 'per second', min: 0 },
      y2: { label: 'open sockets', min: 0 },
      datasets: [
        { label: 'acked/s', data: xy(F(r), 't', 'acked'), color: color(r.variant) },
        { label: 'errors/s (all codes and kinds)', data: xy(F(r), 't', 'errors'), color: '#be123c', dash: 'dashed' as const },
        { label: 'open sockets', data: xy(F(r), 't', 'openSockets'), color: '#4b5563', dash: 'dotted' as const, y2: true },
      ],
      marks: r.faults!.map((f) => ({ from: f.atT, to: Math.max(f.endT, f.atT + 0.2), label: f.kind })),
      note: 'Red bands: each fault, from its start to its end (a kill: until the restarted server answered). Errors include closed sockets and updates due on closed sockets.',
    }));
}

/** Builds every chart of the page. */
export function buildCharts(result: ResultFile): ChartSet {
  const ctx = chartContext(result);
  return {
    selections: ctx.selections,
    defaultSel: ctx.defaultSel,
    capacity: capacityCharts(ctx),
    scaling: scalingCharts(ctx),
    distribution: distributionCharts(ctx),
    overTime: overTimeCharts(ctx),
    errors: errorCharts(ctx),
    resources: resourceCharts(ctx),
    sqlite: sqliteCharts(ctx),
    faults: faultCharts(ctx),
  };
}
