/**
 * Resource sampling of process trees on Linux, from /proc, once a second: the server under test
 * (the root pid and every descendant: per-request workers, batched shards) and the fleet.
 *
 * Per tick, one pass over /proc/[pid]/stat builds the ppid map; the trees are the descendants of the
 * given roots. Per process: RSS = VmRSS (/proc/<pid>/status), PSS = Pss (/proc/<pid>/smaps_rollup,
 * server only), CPU = utime + stime (/proc/<pid>/stat, all threads, ticks / CLK_TCK).
 *
 * CPU accounting: per process (pid + start time, so pid reuse is harmless) the sampler keeps the last
 * tick count it saw and adds positive deltas; a process that appears after start() counts all its ticks.
 * A process that exits loses the CPU it used since the previous tick (at most one interval); its reaped
 * CPU (the parent's cutime/cstime) is not added, since that would count the rest twice.
 *
 * Never throws from a tick: processes come and go (ENOENT/ESRCH are normal), a root that is gone just
 * yields zero processes. Never calls process.memoryUsage() (it throws EMFILE near the fd limit).
 */
import { performance } from 'node:perf_hooks';
import { nowMs } from '../protocol/clock.js';
import { clockTicksPerSec, readAllProcStats, readKernelTcpMemBytes, readPssBytes, readRssBytes, treePids, type ProcStat } from './proc.js';
import type { FleetResources, ResourceSample, ServerResources } from '../model/result.js';

export type PidSource = number[] | (() => number[]);

export interface ResourceSamplerOptions {
  /** Root pid(s) of the server under test; their whole trees are sampled. */
  serverRootPids: PidSource;
  /**
   * Root pid(s) of the fleet (coordinator and/or workers), or a function returning them at each tick
   * (workers spawned later). Pids in the server's tree are never counted as fleet, so passing the
   * runner's own pid works even when the server is its child (the runner's own CPU then counts as fleet).
   */
  fleetRootPids?: PidSource;
  /** Sampling interval, ms. Default 1000. */
  intervalMs?: number;
  /** Sockets open at the server (e.g. wami_connections from the metrics scraper); null when unknown. */
  connectionsProbe?: () => Promise<number | null> | number | null;
  /** How long a tick waits for connectionsProbe, ms. Default min(intervalMs, 1000) * 0.8. */
  probeTimeoutMs?: number;
  /** Origin of `t` in samples, in the performance.now() clock (ms). Default: the time of start(). */
  originMs?: number;
  /** Read PSS (smaps_rollup) of the server tree. Default true. PSS of the fleet is never read. */
  pss?: boolean;
}

/** ServerResources plus optional extras (structurally a ServerResources: `resources.server` of a run). */
export interface ResourceReport extends ServerResources {
  /** The fleet tree over the same window. */
  fleet: FleetResources;
  /** Highest kernel TCP socket memory seen (sockstat), bytes; null when unreadable. */
  kernelTcpMemBytesMax: number | null;
  /** Readings that failed unexpectedly (not a vanished process: those are normal and silent). */
  tickErrors: number;
}

/** Tracks cumulative CPU ticks of a changing set of processes. */
export class CpuTracker {
  private last = new Map<string, number>();
  /** Ticks accumulated since the first update. */
  totalTicks = 0;
  private primed = false;

  /** Feeds the current stats of the set; returns the ticks used since the previous update. */
  update(stats: Iterable<ProcStat>): number {
    const next = new Map<string, number>();
    let delta = 0;
    for (const st of stats) {
      const k = `${st.pid}:${st.startTicks}`;
      const ticks = st.utimeTicks + st.stimeTicks;
      const prev = this.last.get(k);
      if (prev !== undefined) delta += Math.max(0, ticks - prev);
      else if (this.primed) delta += ticks;
      next.set(k, ticks);
    }
    this.last = next;
    if (!this.primed) {
      this.primed = true;
      return 0;
    }
    this.totalTicks += delta;
    return delta;
  }
}

/** (rssBytesMax - rssBytesIdle) / reached, bytes per socket, never below 0; null when reached <= 0. */
export function rssBytesPerSocket(rssBytesMax: number, rssBytesIdle: number, reached: number): number | null {
  if (!(reached > 0)) return null;
  return Math.max(0, Math.round((rssBytesMax - rssBytesIdle) / reached));
}

interface Reading {
  atMs: number;
  serverRssBytes: number;
  serverPssBytes: number | null;
  serverCpuPct: number;
  serverProcesses: number;
  fleetRssBytes: number;
  fleetCpuPct: number;
  fleetProcesses: number;
  kernelTcpMemBytes: number | null;
}

const pids = (src: PidSource | undefined): number[] => {
  if (!src) return [];
  try {
    return typeof src === 'function' ? src() : src;
  } catch {
    return [];
  }
};

const round = (x: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

export class ResourceSampler {
  private readonly opts: Required<Omit<ResourceSamplerOptions, 'connectionsProbe' | 'originMs' | 'fleetRootPids'>> &
    Pick<ResourceSamplerOptions, 'connectionsProbe' | 'fleetRootPids'>;
  private originMs: number | undefined;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private busy = false;
  private readonly serverCpu = new CpuTracker();
  private readonly fleetCpu = new CpuTracker();
  private lastReadMs: number | null = null;
  private lastConnections: number | null = null;
  private readonly samples: ResourceSample[] = [];
  private idleRss: number | null = null;
  private firstRss: number | null = null;
  private rssMax = 0;
  /** The fleet's measured window on the fleet's clock (protocol/clock.ts nowMs), once known. */
  private window: { fromMs: number; toMs: number } | null = null;
  private rssMaxWindow: number | null = null;
  private pssMax: number | null = null;
  private procMax = 0;
  private fleetRssMax = 0;
  private fleetCpuPctMax = 0;
  private fleetProcMax = 0;
  private tcpMemMax: number | null = null;
  private tickErrors = 0;
  private report: ResourceReport | null = null;

  constructor(opts: ResourceSamplerOptions) {
    const intervalMs = opts.intervalMs ?? 1000;
    if (!(intervalMs > 0)) throw new RangeError(`intervalMs must be > 0, got ${intervalMs}`);
    this.opts = {
      serverRootPids: opts.serverRootPids,
      fleetRootPids: opts.fleetRootPids,
      intervalMs,
      connectionsProbe: opts.connectionsProbe,
      probeTimeoutMs: opts.probeTimeoutMs ?? Math.min(intervalMs, 1000) * 0.8,
      pss: opts.pss ?? true,
    };
    this.originMs = opts.originMs;
  }

  /** Starts sampling: takes a baseline reading now (CPU counts from here), then one every intervalMs. */
  start(): void {
    if (this.running || this.report) return;
    this.running = true;
    this.originMs ??= performance.now();
    this.safeRead(); // baseline for CPU deltas; also the default idle RSS
    this.timer = setInterval(() => void this.tick(), this.opts.intervalMs);
    this.timer.unref();
  }

  /**
   * Records the server tree's RSS now as the idle figure (call after the server is up, before the
   * fleet connects). Returns it, bytes. Without a call, the reading at start() is the idle figure.
   */
  markIdle(): number {
    const r = this.safeRead(false);
    this.idleRss = r ? r.serverRssBytes : 0;
    return this.idleRss;
  }

  /** Samples taken so far (live view, for progress output). */
  current(): readonly ResourceSample[] {
    return this.samples;
  }

  /**
   * The fleet's measured window, [fromMs, toMs) on the fleet's clock (protocol/clock.ts nowMs): from
   * then on, readings taken inside it also keep `rssBytesMaxMeasured`, the server tree's RSS max
   * without the connect burst before it and the close of every socket after it.
   */
  setWindow(fromMs: number, toMs: number): void {
    this.window = { fromMs, toMs };
  }

  /**
   * Stops sampling after one last reading and returns the report. `socketsReached` (sockets the
   * fleet reached) fills rssBytesPerSocket; without it, or with 0, that is null (see rssBytesPerSocket()).
   * Calling it again returns the same report.
   */
  stop(socketsReached?: number): ResourceReport {
    if (this.report) return this.report;
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const prevMs = this.lastReadMs;
    const r = this.safeRead();
    if (r && prevMs !== null && r.atMs - prevMs >= 0.25 * this.opts.intervalMs) this.push(r, this.lastConnections);
    const tck = clockTicksPerSec();
    const idle = this.idleRss ?? this.firstRss ?? 0;
    this.report = {
      rssBytesMax: this.rssMax,
      rssBytesMaxMeasured: this.rssMaxWindow,
      pssBytesMax: this.pssMax,
      cpuSec: round(this.serverCpu.totalTicks / tck, 3),
      rssBytesPerSocket: socketsReached === undefined ? null : rssBytesPerSocket(this.rssMax, idle, socketsReached),
      rssBytesIdle: idle,
      processes: this.procMax,
      samples: this.samples,
      fleet: {
        rssBytesMax: this.fleetRssMax,
        cpuSec: round(this.fleetCpu.totalTicks / tck, 3),
        cpuPctMax: this.fleetCpuPctMax,
        processesMax: this.fleetProcMax,
      },
      kernelTcpMemBytesMax: this.tcpMemMax,
      tickErrors: this.tickErrors,
    };
    return this.report;
  }

  private async tick(): Promise<void> {
    if (this.busy || !this.running) return;
    this.busy = true;
    try {
      const r = this.safeRead();
      if (!r) return;
      let conns = this.lastConnections;
      const probe = this.opts.connectionsProbe;
      if (probe) {
        conns = await withTimeout(probe, this.opts.probeTimeoutMs);
        this.lastConnections = conns;
      }
      if (this.running) this.push(r, conns);
    } catch {
      this.tickErrors++;
    } finally {
      this.busy = false;
    }
  }

  private push(r: Reading, connections: number | null): void {
    this.samples.push({
      t: round((r.atMs - (this.originMs ?? r.atMs)) / 1000, 3),
      serverRssBytes: r.serverRssBytes,
      serverPssBytes: r.serverPssBytes,
      serverCpuPct: r.serverCpuPct,
      serverProcesses: r.serverProcesses,
      fleetRssBytes: r.fleetRssBytes,
      fleetCpuPct: r.fleetCpuPct,
      serverConnections: connections,
      kernelTcpMemBytes: r.kernelTcpMemBytes,
    });
  }

  /** One reading of both trees; updates CPU trackers and maxima (when `account`). Never throws. */
  private safeRead(account = true): Reading | null {
    try {
      return this.read(account);
    } catch {
      this.tickErrors++;
      return null;
    }
  }

  private read(account: boolean): Reading {
    const all = readAllProcStats();
    const atMs = performance.now();
    const serverSet = treePids(all, pids(this.opts.serverRootPids));
    const fleetSet = treePids(all, pids(this.opts.fleetRootPids));
    for (const p of serverSet) fleetSet.delete(p);

    let serverRss = 0;
    let pss = 0;
    let pssSeen = false;
    const serverStats: ProcStat[] = [];
    let serverProcs = 0;
    for (const p of serverSet) {
      const st = all.get(p);
      if (!st) continue;
      const rss = readRssBytes(p, st);
      if (rss === null && st.state === 'Z') continue; // zombie: gone but not reaped
      serverProcs++;
      serverStats.push(st);
      serverRss += rss ?? 0;
      if (this.opts.pss) {
        const v = readPssBytes(p);
        if (v !== null) {
          pss += v;
          pssSeen = true;
        }
      }
    }
    let fleetRss = 0;
    let fleetProcs = 0;
    const fleetStats: ProcStat[] = [];
    for (const p of fleetSet) {
      const st = all.get(p);
      if (!st) continue;
      const rss = readRssBytes(p, st);
      if (rss === null && st.state === 'Z') continue;
      fleetProcs++;
      fleetStats.push(st);
      fleetRss += rss ?? 0;
    }
    const tcpMem = readKernelTcpMemBytes();

    let serverCpuPct = 0;
    let fleetCpuPct = 0;
    if (account) {
      const tck = clockTicksPerSec();
      const dsTicks = this.serverCpu.update(serverStats);
      const dfTicks = this.fleetCpu.update(fleetStats);
      const dtSec = this.lastReadMs === null ? 0 : (atMs - this.lastReadMs) / 1000;
      if (dtSec > 0) {
        serverCpuPct = round((dsTicks / tck / dtSec) * 100, 1);
        fleetCpuPct = round((dfTicks / tck / dtSec) * 100, 1);
      }
      this.lastReadMs = atMs;
    }
    // Maxima and the default idle figure: every reading counts.
    this.firstRss ??= serverRss;
    if (serverRss > this.rssMax) this.rssMax = serverRss;
    const w = this.window;
    if (w !== null) {
      const now = nowMs();
      if (now >= w.fromMs && now < w.toMs && (this.rssMaxWindow === null || serverRss > this.rssMaxWindow)) this.rssMaxWindow = serverRss;
    }
    if (pssSeen && (this.pssMax === null || pss > this.pssMax)) this.pssMax = pss;
    if (serverProcs > this.procMax) this.procMax = serverProcs;
    if (fleetRss > this.fleetRssMax) this.fleetRssMax = fleetRss;
    if (fleetCpuPct > this.fleetCpuPctMax) this.fleetCpuPctMax = fleetCpuPct;
    if (fleetProcs > this.fleetProcMax) this.fleetProcMax = fleetProcs;
    if (tcpMem !== null && (this.tcpMemMax === null || tcpMem > this.tcpMemMax)) this.tcpMemMax = tcpMem;

    return {
      atMs,
      serverRssBytes: serverRss,
      serverPssBytes: pssSeen ? pss : null,
      serverCpuPct,
      serverProcesses: serverProcs,
      fleetRssBytes: fleetRss,
      fleetCpuPct,
      fleetProcesses: fleetProcs,
      kernelTcpMemBytes: tcpMem,
    };
  }
}

/** Runs the probe with a timeout; any failure, timeout or non-number yields null. */
async function withTimeout(probe: () => Promise<number | null> | number | null, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const v = await Promise.race([
      Promise.resolve().then(probe),
      new Promise<null>((res) => {
        timer = setTimeout(() => res(null), ms);
      }),
    ]);
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  } catch {
    return null;
  } finally {
    if (timer) clearTimeout(timer);
  }
}
