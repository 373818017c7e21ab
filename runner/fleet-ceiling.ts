/**
 * The fleet's own ceiling, measured: the scenario's fleet (its sockets, boards, schedule, warm-up and
 * window) at one offered rate against the sink (servers/sink: acks and broadcasts from RAM, nothing
 * stored), a fresh sink process per step with the servers' Node flags (pinned like a server with
 * --pin). What the fleet cannot hold here it cannot offer to any server on this machine.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runFleet } from '../clients/coordinator.js';
import type { RunStatus } from '../model/fleet-result.js';
import type { Scenario, Stage } from '../scenarios/schema.js';
import { spawnChild } from './child.js';
import type { SessionContext } from './run.js';
import { listeningPort } from './server-process.js';

const SINK_JS = join(dirname(fileURLToPath(import.meta.url)), '..', 'servers', 'sink', 'main.js');

/** What a step against the sink showed. */
export interface SinkRunSummary {
  status: RunStatus;
  reasons: string[];
  sentRate: number;
  lagMsP99: number;
  eventLoopDelayMsP99: number;
  cpuPctMax: number;
  ackP99Ms: number;
}

/** One step of the fleet against a fresh sink. Never throws: a failure is an `errored` summary. */
export async function runFleetAgainstSink(s: Scenario, stage: Stage, session: SessionContext): Promise<SinkRunSummary> {
  const boards = Math.ceil(stage.connections / s.users.perBoard);
  const child = spawnChild(process.execPath, [...session.serverNodeFlags, SINK_JS, '127.0.0.1', '0', String(boards)], session.pin ? { cpus: '0' } : {});
  try {
    const port = await listeningPort(child, 20_000);
    const f = await runFleet(
      {
        url: `ws://127.0.0.1:${port}/ws`,
        connections: stage.connections,
        perBoard: s.users.perBoard,
        cardsPerBoard: s.seed.cardsPerBoard,
        updatesPerUserPerMin: stage.updatesPerUserPerMin ?? s.load.updatesPerUserPerMin,
        arrival: s.load.arrival,
        seed: s.load.seed,
        warmupSec: s.warmupSec,
        durationSec: stage.durationSec,
        connectRatePerSec: s.users.connectRatePerSec,
        nodeFlags: session.fleetNodeFlags,
        ...(s.fleet.workers !== undefined ? { workers: s.fleet.workers } : {}),
        ...(s.fleet.drainSec !== undefined ? { drainSec: s.fleet.drainSec } : {}),
        ...(s.fleet.guard !== undefined ? { guard: s.fleet.guard } : {}),
        ...(session.pin ? { cpus: session.cpus > 2 ? `1-${session.cpus - 1}` : '1' } : {}),
      },
      { signal: session.signal },
    );
    const sendSec = f.window.warmupSec + f.window.durationSec;
    return {
      status: f.status,
      reasons: f.reasons,
      sentRate: sendSec > 0 ? Math.round((f.updates.sent / sendSec) * 1000) / 1000 : 0,
      lagMsP99: f.fleet.lagMsP99,
      eventLoopDelayMsP99: f.fleet.eventLoopDelayMsP99,
      cpuPctMax: f.fleet.cpuPctMax,
      ackP99Ms: f.latency.ackMs.p99,
    };
  } catch (e) {
    return { status: 'errored', reasons: [(e as Error).message], sentRate: 0, lagMsP99: 0, eventLoopDelayMsP99: 0, cpuPctMax: 0, ackP99Ms: 0 };
  } finally {
    await child.stop(5000);
  }
}
