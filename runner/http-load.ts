/**
 * The read path under load: autocannon (as a library) against `GET /boards/:id` with seeded random
 * boards, during the WebSocket load, so readers and writers can be seen interfering.
 *
 * Coordinated omission: with `rate` set, autocannon paces requests open-loop (`overallRate`) and
 * corrects its latency histogram for coordinated omission (we leave `ignoreCoordinatedOmission`
 * false, its default). Without `rate` it runs closed-loop at maximum throughput: its latencies are
 * then service times that a slow server can hide in, and the result says so (`coCorrected: false`).
 */
import autocannon from 'autocannon';
import { nextRandom, seed32 } from '../clients/prng.js';

export interface HttpLoadOptions {
  /** http://host:port or https://host:port */
  baseUrl: string;
  /** e.g. /boards/:id */
  path: string;
  connections: number;
  rate?: number;
  durationSec: number;
  /** Board ids 1..boards are chosen uniformly. */
  boards: number;
  seed: number;
  /** PEM to trust for https (Caddy's root). */
  ca?: string;
}

export interface HttpLoadResult {
  path: string;
  connections: number;
  rate: number | null;
  durationSec: number;
  /** Whether latencies were corrected for coordinated omission (open-loop pacing). */
  coCorrected: boolean;
  requests: { total: number; perSecMean: number; sent: number };
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodes: Record<string, number>;
}

export function resolvePath(template: string, rand: () => number, boards: number): string {
  return template.replace(':id', String(1 + Math.floor(rand() * boards)));
}

export interface RunningHttpLoad {
  done: Promise<HttpLoadResult>;
  stop: () => void;
}

export function startHttpLoad(o: HttpLoadOptions): RunningHttpLoad {
  const state = { rng: seed32(o.seed) | 0 };
  const rand = (): number => nextRandom(state);
  let finished: ((err: Error | null, r: autocannon.Result) => void) | null = null;
  const instance: autocannon.Instance = autocannon(
    {
      url: o.baseUrl,
      connections: o.connections,
      duration: o.durationSec,
      ...(o.rate !== undefined ? { overallRate: o.rate } : {}),
      timeout: 10,
      requests: [
        {
          method: 'GET',
          setupRequest: (req: Record<string, unknown>) => ({ ...req, path: resolvePath(o.path, rand, o.boards) }),
        },
      ],
      ...(o.ca ? { tlsOptions: { ca: o.ca } } : {}),
    } as unknown as autocannon.Options,
    (err, r) => finished?.(err, r),
  );
  const done = new Promise<HttpLoadResult>((res, rej) => {
    finished = (err, r) => {
      if (err) {
        rej(err);
        return;
      }
      const codes: Record<string, number> = {};
      for (const [code, v] of Object.entries((r as unknown as { statusCodeStats?: Record<string, { count: number | string }> }).statusCodeStats ?? {})) {
        codes[code] = Number(v.count);
      }
      const l = r.latency as unknown as Record<string, number>;
      res({
        path: o.path,
        connections: o.connections,
        rate: o.rate ?? null,
        durationSec: r.duration,
        coCorrected: o.rate !== undefined,
        requests: { total: r.requests.total, perSecMean: r.requests.average, sent: r.requests.sent },
        latencyMs: { p50: l.p50 ?? 0, p90: l.p90 ?? 0, p99: l.p99 ?? 0, p999: l.p99_9 ?? 0, max: l.max ?? 0, mean: l.average ?? 0 },
        errors: r.errors,
        timeouts: r.timeouts,
        non2xx: r.non2xx,
        statusCodes: codes,
      });
    };
  });
  return { done, stop: () => instance.stop() };
}
