/**
 * Fault injection as per-run hooks (runner/lifecycle.ts RunHooks): when the fleet's schedule starts,
 * each of the scenario's faults is timed at `atSec` after the measured window starts, and done to the
 * run's server by its process tree and its fault-injection route:
 * - kill: SIGKILL of every process of the tree (workers, shards), then after `restartAfterSec` the same
 *   variant on the same file and port (the fleet reconnects to the same URL);
 * - freeze: SIGSTOP of every process of the tree, SIGCONT after `durationSec`;
 * - disk-full: POST /faults/disk-full/on, …/off after `durationSec` (the server runs with
 *   `faultInjection`; the answer must count every writing process);
 * - slow-consumers: done by the fleet (its `stalls`); here only timed and measured.
 * For each it records when it began and ended, what was done and the tree's RSS before, during and
 * after (runner/fault-loss.ts turns that into the run's `faults`). A fault that cannot be injected
 * fails the run with the reason.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ScheduleTimes } from '../clients/coordinator.js';
import { describeFault, type Fault } from '../model/faults.js';
import { nowMs } from '../protocol/clock.js';
import type { FaultTiming } from './fault-loss.js';
import type { RunHandle, RunHooks } from './run-hooks.js';
import { readRssBytes } from './proc.js';

/** How long after a fault's end its "after" RSS is read (or just before the next fault), ms. */
const AFTER_MS = 2000;
/** RSS is read this often during a fault, ms. */
const RSS_EVERY_MS = 250;

function signalAll(pids: readonly number[], sig: NodeJS.Signals): number {
  let n = 0;
  for (const p of pids) {
    try {
      process.kill(p, sig);
      n++;
    } catch {
      /* gone */
    }
  }
  return n;
}

/** RSS of a process tree, bytes; null when none of it could be read (no server). */
export function treeRssBytes(pids: readonly number[]): number | null {
  let sum = 0;
  let any = false;
  for (const p of pids) {
    const r = readRssBytes(p);
    if (r !== null) {
      sum += r;
      any = true;
    }
  }
  return any ? sum : null;
}

export class FaultInjector implements RunHooks {
  /** What was done, in order, once each fault is over. */
  readonly timings: FaultTiming[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly tasks: Promise<void>[] = [];
  private readonly abort = new AbortController();
  /** When the fleet's schedule started (null until it did). */
  times: ScheduleTimes | null = null;

  constructor(private readonly faults: readonly Fault[]) {}

  scheduled(run: RunHandle, t: ScheduleTimes): void {
    this.times = t;
    // One after another: a fault never begins before the previous one is over (a slow restart delays the next, which then records when it really began).
    let prev: Promise<void> = Promise.resolve();
    this.faults.forEach((f, i) => {
      const at = t.measureStartMs + f.atSec * 1000;
      const next = this.faults[i + 1];
      const nextAt = next ? t.measureStartMs + next.atSec * 1000 : t.scheduleEndMs;
      const task = prev.then(
        () =>
          new Promise<void>((resolve) => {
            if (this.abort.signal.aborted) return resolve();
            const timer = setTimeout(
              () => {
                this.inject(run, f, nextAt).then(resolve, (e: unknown) => {
                  if (!this.abort.signal.aborted) run.fail(`fault ${describeFault(f)} failed: ${(e as Error).message}`);
                  resolve();
                });
              },
              Math.max(0, at - nowMs()),
            );
            this.timers.push(timer);
            this.abort.signal.addEventListener(
              'abort',
              () => {
                clearTimeout(timer);
                resolve();
              },
              { once: true },
            );
          }),
      );
      this.tasks.push(task);
      prev = task;
    });
  }

  /** Seconds the server was down (kills until the restart answered): its /metrics could not be scraped then. */
  get downSec(): number {
    return this.timings.reduce((n, x) => n + (x.readyMs !== undefined ? (x.readyMs - x.startMs) / 1000 : 0), 0);
  }

  /** Every fault is over before the server is stopped (they all end inside the measured window). */
  async beforeStop(): Promise<void> {
    await Promise.all(this.tasks);
  }

  /** The run is ending early: faults not yet begun never will, and the one under way is waited for. */
  async settle(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.abort.abort();
    await Promise.all(this.tasks);
  }

  private async inject(run: RunHandle, f: Fault, nextAtMs: number): Promise<void> {
    const signal = this.abort.signal;
    const before = treeRssBytes(run.serverPids());
    let duringMax: number | null = null;
    const sample = (): void => {
      const r = treeRssBytes(run.serverPids());
      if (r !== null) duringMax = Math.max(duringMax ?? 0, r);
    };
    const sampler = f.kind === 'kill' ? null : setInterval(sample, RSS_EVERY_MS);
    const startMs = nowMs();
    let injected = '';
    let readyMs: number | undefined;
    let problem: string | undefined;
    try {
      switch (f.kind) {
        case 'kill': {
          const srv = run.server;
          if (!srv) throw new Error('no server to kill');
          run.expectServerExit();
          const pids = run.serverPids();
          // the tree at once, children first: nothing gets to flush, as in a crash of the machine's process
          const n = signalAll([...pids].reverse(), 'SIGKILL');
          injected = `SIGKILL of ${n} process(es)`;
          await Promise.race([srv.exited, sleep(10_000, undefined, { signal })]);
          await sleep(f.restartAfterSec * 1000, undefined, { signal });
          await run.restartServer();
          readyMs = nowMs();
          injected += `; restarted on the same file and port after ${f.restartAfterSec} s, answering in ${Math.round(readyMs - startMs)} ms`;
          break;
        }
        case 'freeze': {
          const pids = run.serverPids();
          injected = `SIGSTOP of ${signalAll(pids, 'SIGSTOP')} process(es) for ${f.durationSec} s`;
          try {
            await sleep(f.durationSec * 1000, undefined, { signal });
          } finally {
            signalAll(pids, 'SIGCONT');
          }
          break;
        }
        case 'disk-full': {
          const srv = run.server;
          if (!srv) throw new Error('no server');
          const on = await diskFull(srv.httpUrl, true);
          injected = `disk full (writes needing a new page fail) on ${on.processes} of ${on.of ?? on.processes} writing process(es) for ${f.durationSec} s`;
          if (on.of !== undefined && on.processes !== on.of) problem = `disk-full reached ${on.processes} of ${on.of} processes`;
          try {
            await sleep(f.durationSec * 1000, undefined, { signal });
          } finally {
            await diskFull(srv.httpUrl, false);
          }
          break;
        }
        case 'slow-consumers':
          injected = `${Math.round(f.fraction * 1000) / 10} % of the sockets stopped reading for ${f.durationSec} s (the fleet)`;
          await sleep(f.durationSec * 1000, undefined, { signal });
          break;
      }
    } finally {
      if (sampler) clearInterval(sampler);
    }
    const endMs = nowMs();
    if (f.kind !== 'kill') sample();
    // "after": once things settled, before the next fault
    const wait = Math.min(AFTER_MS, nextAtMs - nowMs() - 100);
    if (wait > 0 && !signal.aborted) await sleep(wait, undefined, { signal }).catch(() => undefined);
    const after = treeRssBytes(run.serverPids());
    this.timings.push({
      spec: f,
      injected,
      startMs,
      endMs,
      ...(readyMs !== undefined ? { readyMs } : {}),
      rssBytes: { before, duringMax, after },
      ...(problem ? { problem } : {}),
    });
    if (problem) run.fail(`fault ${describeFault(f)}: ${problem}`);
  }
}

async function diskFull(httpUrl: string, on: boolean): Promise<{ processes: number; of?: number }> {
  const url = `${httpUrl}/faults/disk-full/${on ? 'on' : 'off'}`;
  const r = await fetch(url, { method: 'POST', signal: AbortSignal.timeout(10_000) });
  if (r.status !== 200) throw new Error(`POST ${url}: HTTP ${r.status} (is the server running with faultInjection?)`);
  const body = (await r.json()) as { processes?: number; of?: number };
  return { processes: body.processes ?? 0, ...(body.of !== undefined ? { of: body.of } : {}) };
}
