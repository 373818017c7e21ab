/** A worker's per-second tick as the coordinator receives it: every count 0, histograms empty, `over` set. */
import type { TickReport } from '../../clients/ipc.js';

export function tickReport(index: number, t: number, over: Partial<TickReport> = {}): TickReport {
  return {
    type: 'tick',
    index,
    t,
    openSockets: 0,
    reconnected: 0,
    sent: 0,
    acked: 0,
    errors: 0,
    errorsBy: {},
    delivered: 0,
    ackHist: '',
    fanoutHist: '',
    lagHist: '',
    cpuPct: 0,
    eventLoopDelayMsP99: 0,
    rssBytes: 0,
    pendingAcks: 0,
    ...over,
  };
}
