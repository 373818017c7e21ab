/** The fleet's one-line-per-second progress text (stderr of `wami-bench fleet`). */
import type { FleetProgress } from './coordinator.js';

function rate(n: number): string {
  return n >= 10_000 ? `${(n / 1000).toFixed(0)}k` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : String(n);
}

function ms(x: number): string {
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

export function formatProgress(p: FleetProgress): string {
  return (
    `fleet ${p.phase.padEnd(7)} ${String(p.elapsedSec).padStart(4)}s  open ${p.openSockets}/${p.connections}  ` +
    `sent ${rate(p.sent)}/s  acked ${rate(p.acked)}/s  delivered ${rate(p.delivered)}/s  errors ${p.errors}  ` +
    `ack p99 ${ms(p.ackP99Ms)} ms  fanout p99 ${ms(p.fanoutP99Ms)} ms  lag p99 ${ms(p.lagMsP99)} ms  ` +
    `cpu ${Math.round(p.fleetCpuPct)}%  left ${p.timeLeftSec}s`
  );
}
