/**
 * The fleet's time series: the workers' per-second ticks summed (and their per-second histograms
 * merged) into one TimePoint per second. A second is emitted once every live worker has ticked it
 * (or at the end, `flush(true)`); a tick that arrives after its second was emitted (a worker stalled
 * more than a second) is left out of the series, its counts stay in the totals. Pure: the caller
 * says which workers still tick; `extraRssBytes` adds the coordinator's own RSS to each second.
 */
import type { TimePoint } from '../model/fleet-result.js';
import { encodeHistogram, mergeEncoded, percentileMs } from './histogram.js';
import type { TickReport } from './ipc.js';

interface SecondSum {
  openSockets: number;
  reconnected: number;
  sent: number;
  acked: number;
  errors: number;
  errorsBy: Record<string, number>;
  delivered: number;
  ack: string[];
  fanout: string[];
  lag: string[];
  cpuPct: number;
  rssBytes: number;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

export class SecondsAggregator {
  readonly timeseries: TimePoint[] = [];
  /** Highest RSS of the fleet (workers + coordinator) in any second, bytes. */
  rssBytesMax = 0;
  /** Highest CPU of any one worker in any second, percent of one core. */
  cpuPctMax = 0;
  /** Broadcasts delivered, over every tick received (late ones included). */
  deliveredInTicks = 0;
  /** Per worker: its CPU in each second (for the saturation guard). */
  readonly cpuByWorker = new Map<number, Map<number, number>>();
  /** Per worker: the last second it ticked. */
  private readonly lastT = new Map<number, number>();
  private readonly buckets = new Map<number, SecondSum>();
  private lastEmitted = -1;

  constructor(
    /** Called with each second as it is emitted, in order. */
    private readonly onPoint: (p: TimePoint) => void = () => {},
    /** RSS to add to every second (the coordinator's own), read when the second is emitted. */
    private readonly extraRssBytes: () => number = () => 0,
    /** Keep each second's merged histograms in its TimePoint (a segment's result, for `merge`). */
    private readonly keepHistograms = false,
  ) {}

  /** A worker's tick. `live`: the workers still ticking (not finished, not exited). */
  tick(m: TickReport, live: Iterable<number>): void {
    this.deliveredInTicks += m.delivered;
    this.lastT.set(m.index, Math.max(this.lastT.get(m.index) ?? -1, m.t));
    let cpu = this.cpuByWorker.get(m.index);
    if (!cpu) this.cpuByWorker.set(m.index, (cpu = new Map()));
    cpu.set(m.t, m.cpuPct);
    if (m.cpuPct > this.cpuPctMax) this.cpuPctMax = m.cpuPct;
    if (m.t <= this.lastEmitted) return; // too late for its second: counts stay in the totals
    let a = this.buckets.get(m.t);
    if (!a)
      this.buckets.set(
        m.t,
        (a = {
          openSockets: 0,
          reconnected: 0,
          sent: 0,
          acked: 0,
          errors: 0,
          errorsBy: {},
          delivered: 0,
          ack: [],
          fanout: [],
          lag: [],
          cpuPct: 0,
          rssBytes: 0,
        }),
      );
    a.openSockets += m.openSockets;
    a.reconnected += m.reconnected ?? 0;
    a.sent += m.sent;
    a.acked += m.acked;
    a.errors += m.errors;
    for (const [k, n] of Object.entries(m.errorsBy ?? {})) a.errorsBy[k] = (a.errorsBy[k] ?? 0) + n;
    a.delivered += m.delivered;
    if (m.ackHist) a.ack.push(m.ackHist);
    if (m.fanoutHist) a.fanout.push(m.fanoutHist);
    if (m.lagHist) a.lag.push(m.lagHist);
    a.cpuPct += m.cpuPct;
    a.rssBytes += m.rssBytes ?? 0;
    this.flush(false, live);
  }

  /** Emits every second that all `live` workers have ticked (every second when `force`). */
  flush(force: boolean, live: Iterable<number> = []): void {
    let upTo = Infinity;
    if (!force) for (const w of live) upTo = Math.min(upTo, this.lastT.get(w) ?? -1);
    const ready = [...this.buckets.keys()].filter((t) => t <= upTo).sort((a, b) => a - b);
    // tick() opens a bucket only for a second after lastEmitted, and every ready second is emitted here
    // in order, so no bucket is ever at or below lastEmitted
    for (const t of ready) {
      const a = this.buckets.get(t)!;
      this.buckets.delete(t);
      this.lastEmitted = t;
      this.emit(t, a);
    }
  }

  private emit(t: number, a: SecondSum): void {
    const ack = mergeEncoded(a.ack);
    const fan = mergeEncoded(a.fanout);
    const lag = mergeEncoded(a.lag);
    const fleetRss = a.rssBytes + this.extraRssBytes();
    if (fleetRss > this.rssBytesMax) this.rssBytesMax = fleetRss;
    const p: TimePoint = {
      t,
      openSockets: a.openSockets,
      ...(a.reconnected > 0 ? { reconnected: a.reconnected } : {}),
      sent: a.sent,
      acked: a.acked,
      errors: a.errors,
      ...(Object.keys(a.errorsBy).length > 0 ? { errorsByCode: a.errorsBy } : {}),
      delivered: a.delivered,
      ackP50Ms: percentileMs(ack, 50),
      ackP99Ms: percentileMs(ack, 99),
      fanoutP50Ms: percentileMs(fan, 50),
      fanoutP99Ms: percentileMs(fan, 99),
      lagMsP99: percentileMs(lag, 99),
      fleetCpuPct: round1(a.cpuPct),
    };
    if (this.keepHistograms) p.histograms = { ack: encodeHistogram(ack), fanout: encodeHistogram(fan), lag: encodeHistogram(lag) };
    this.timeseries.push(p);
    this.onPoint(p);
  }
}
