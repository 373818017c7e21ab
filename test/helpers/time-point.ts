/** A fleet time-series second with every count and latency 0, the fields given in `over` set. */
import type { TimePoint } from '../../model/fleet-result.js';

export function timePoint(t: number, over: Partial<TimePoint> = {}): TimePoint {
  return {
    t,
    openSockets: 0,
    sent: 0,
    acked: 0,
    errors: 0,
    delivered: 0,
    ackP50Ms: 0,
    ackP99Ms: 0,
    fanoutP50Ms: 0,
    fanoutP99Ms: 0,
    lagMsP99: 0,
    fleetCpuPct: 0,
    ...over,
  };
}
