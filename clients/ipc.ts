/**
 * Messages between the coordinator and its workers (node IPC, 'advanced' serialization). Per-second
 * messages are aggregate numbers and small encoded histograms, never per-update records; the large
 * parts (ledger, broadcasts seen, sampled arrivals) travel once, in the final report.
 */
import type { SeenEntry } from './delivery.js';
import type { Arrival } from './schedule.js';

export interface WorkerInit {
  type: 'init';
  index: number;
  firstUser: number;
  count: number;
  /** The whole fleet's first user (for the source-address spread). */
  fleetFirstUser: number;
  /** Server URLs; board b's users connect to urls[(b - 1) % urls.length]. */
  urls: string[];
  perBoard: number;
  /** Cards per board of the seeded layout (used for boards not in `boardCards`). */
  cardsPerBoard: number;
  /** The card ids of this worker's boards, when the server's boards do not follow one layout. */
  boardCards?: Array<[board: number, cards: number[]]>;
  updatesPerUserPerMin: number;
  /** Rate steps, seconds after the measured window starts. */
  rateSteps: Array<{ atSec: number; updatesPerUserPerMin: number }>;
  arrival: Arrival;
  seed: number;
  sampleEvery: number;
  idPrefix: string;
  sourceAddresses: string[];
  /** This worker's share of the connect rate, attempts per second. */
  connectRatePerSec: number;
  handshakeTimeoutMs: number;
  ca?: string;
  /** t = 0 of the time series, shared clock ms. */
  originMs: number;
  /** The worker exits by itself at this shared-clock time whatever happens (no orphans). */
  hardDeadlineMs: number;
  /** Reconnect sockets the server closed, with jittered backoff. */
  reconnect: boolean;
  /** Slow-consumer windows: from `atMs` after the measured window starts, `fraction` of the users stop reading for `durationMs`. */
  stalls: Array<{ atMs: number; durationMs: number; fraction: number }>;
  /** Record ack and send times in the ledger (runs with faults). */
  timedLedger: boolean;
}

export interface WorkerStart {
  type: 'start';
  /** Schedule origin, shared clock ms. */
  t0: number;
  warmupMs: number;
  measureMs: number;
}

export type CoordinatorMessage = WorkerInit | WorkerStart | { type: 'stop-connect' } | { type: 'finish' };

export interface ConnectedReport {
  type: 'connected';
  index: number;
  asked: number;
  reached: number;
  failuresByKind: Record<string, number>;
}

export interface TickReport {
  type: 'tick';
  index: number;
  /** Bucket: the second [t, t+1) since originMs. */
  t: number;
  openSockets: number;
  /** Sockets reconnected this second. */
  reconnected: number;
  sent: number;
  acked: number;
  errors: number;
  /** This second's errors by server code (OVERLOADED, …) or client kind (refused, timeout, …). */
  errorsBy: Record<string, number>;
  delivered: number;
  /** Encoded per-second histograms (µs): acks and broadcasts arriving in this second, sends' lag. */
  ackHist: string;
  fanoutHist: string;
  lagHist: string;
  cpuPct: number;
  eventLoopDelayMsP99: number;
  rssBytes: number | null;
  pendingAcks: number;
}

/** What a worker saw of its sockets, beyond reached and failed (see SocketsReport). */
export interface SocketEvents {
  closedEarly: number;
  closedEarlyByCode: Record<string, number>;
  sendsOnClosed: number;
  reconnects: { attempted: number; succeeded: number; failed: number };
  stalled: number;
}

export interface WorkerFinal {
  type: 'final';
  index: number;
  sockets: { asked: number; reached: number; failuresByKind: Record<string, number> } & SocketEvents;
  /** Users of this worker not connected for the whole window. */
  notWholeUsers: number[];
  /** Measured-window histograms, encoded (µs). */
  hist: {
    connect: string;
    ack: string;
    ackUncorrected: string;
    fanout: string;
    fanoutUncorrected: string;
    lag: string;
    ackFirst: string;
    ackLast: string;
    fanoutFirst: string;
    fanoutLast: string;
  };
  updates: { sent: number; acked: number; errored: number; unanswered: number; unansweredAtClose: number };
  errorsByCode: Record<string, number>;
  errorsByKind: Record<string, number>;
  duplicate: number;
  outOfOrder: number;
  /** Broadcast frames received (all sockets, duplicates included). */
  receivedFrames: number;
  seen: SeenEntry[];
  /** [user, id, seq, ackAt?]; ackAt with `timedLedger`. */
  acked: Array<[number, string, number, number?]>;
  errored: Array<[number, string, string]>;
  /** [user, id, sentAt?]; sentAt with `timedLedger`. */
  unanswered: Array<[number, string, number?]>;
  /** Sampled updates: [sampleKey, latencies from `at` of every arrival here, ms]. */
  samples: Array<[string, number[]]>;
  cpuSec: number;
  /** Event-loop delay p99 over the measured window, ms. */
  eventLoopDelayMsP99: number;
  rssBytesMax: number;
  /** A few examples of protocol errors seen, for the reader. */
  examples: string[];
}

export type WorkerMessage = ConnectedReport | TickReport | WorkerFinal | { type: 'drained'; index: number } | { type: 'fatal'; index: number; message: string };
