/**
 * The zod schema of result.json (schema version 1). `wami-bench run` validates what it writes;
 * `report` and `compare` validate what they read. runner/result.schema.json is the JSON Schema
 * generated from this (`node dist/runner/result-schema.js --write`), kept in sync by a test.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const num = z.number();
const nullableNum = z.number().nullable();
const counts = z.record(z.string(), z.number());

const percentiles = z.object({ p50: num, p90: num, p99: num, p999: num, max: num, count: num, mean: num });
const latencyStat = percentiles.extend({ histogram: z.string() });
const corrected = latencyStat.extend({ uncorrected: latencyStat });

const timePoint = z.object({
  t: num,
  openSockets: num,
  sent: num,
  acked: num,
  errors: num,
  errorsByCode: counts.optional(),
  delivered: num,
  ackP50Ms: num,
  ackP99Ms: num,
  fanoutP50Ms: num,
  fanoutP99Ms: num,
  lagMsP99: num,
  fleetCpuPct: num,
});

const resourceSample = z.object({
  t: num,
  serverRssBytes: num,
  serverPssBytes: nullableNum,
  serverCpuPct: num,
  serverProcesses: num,
  fleetRssBytes: num,
  fleetCpuPct: num,
  serverConnections: nullableNum,
  kernelTcpMemBytes: nullableNum,
});

export const RunRecordSchema = z.object({
  variant: z.string(),
  variantKind: z.enum(['batched', 'per-request']),
  variantFlags: z.array(z.string()),
  via: z.enum(['direct', 'caddy']),
  stage: z.object({ index: z.number().int().nonnegative(), connections: z.number().int().positive(), durationSec: num }),
  repeat: z.number().int().positive(),
  status: z.enum(['ok', 'invalid', 'errored']),
  reasons: z.array(z.string()),
  sockets: z.object({ asked: num, reached: num, failed: num, failuresByKind: counts, closedEarly: num }),
  latency: z.object({
    connectMs: latencyStat,
    ackMs: corrected,
    fanoutMs: corrected,
    recipients: z.object({ sampled: num, first: percentiles, median: percentiles, last: percentiles }),
  }),
  drift: z.object({
    windowSec: num,
    ackMs: z.object({ first: latencyStat, last: latencyStat }),
    fanoutMs: z.object({ first: latencyStat, last: latencyStat }),
  }),
  window: z.object({
    warmupSec: num,
    durationSec: num,
    startedAtIso: z.string(),
    wallSec: num,
    measuredT: z.object({ from: num, to: num }).optional(),
  }),
  updates: z.object({ sent: num, acked: num, errored: num, unanswered: num }),
  delivery: z.object({ expected: num, received: num, missing: num, duplicate: num, outOfOrder: num, phantom: num }),
  errors: z.object({ total: num, byCode: counts, byKind: counts }),
  fleet: z.object({
    workers: num,
    nodeFlags: z.array(z.string()),
    cpuSec: num,
    rssBytesMax: num,
    lagMsP99: num,
    eventLoopDelayMsP99: num,
    cpuPctMax: num,
  }),
  timeseries: z.array(timePoint),
  resources: z.object({
    server: z.object({
      rssBytesMax: num,
      pssBytesMax: nullableNum,
      cpuSec: num,
      rssBytesPerSocket: nullableNum,
      rssBytesIdle: num,
      processes: num,
      samples: z.array(resourceSample),
      fleet: z.object({ rssBytesMax: num, cpuSec: num, cpuPctMax: num, processesMax: num }).optional(),
      kernelTcpMemBytesMax: nullableNum.optional(),
      tickErrors: num.optional(),
    }),
  }),
  server: z.object({
    updatesReceived: num,
    updatesPersisted: num,
    broadcastFrames: num,
    errorsByCode: counts,
    batchSize: z.object({ count: num, mean: num, p50: nullableNum, p99: nullableNum, max: nullableNum }).nullable(),
    commitMs: z.object({ count: num, mean: num, p50: nullableNum, p99: nullableNum }).nullable(),
    busyHits: num,
    retries: num,
    exhausted: num,
    walBytesMax: nullableNum,
    eventLoopDelayMsP99: nullableNum,
    queueDepthMax: nullableNum,
    slowConsumerCloses: num,
    timeseries: z.array(
      z.object({
        t: num,
        queueDepth: nullableNum,
        walBytes: nullableNum,
        busyHits: num,
        retries: num,
        exhausted: num,
        persisted: num,
        commitMsP99: nullableNum,
        eventLoopDelayMsP99: nullableNum,
      }),
    ),
  }),
  audit: z
    .object({
      lostAcked: num,
      storedNotAcked: num,
      phantom: num,
      notBroadcast: num,
      finalStateMismatches: num,
      seqGaps: num,
      eventsStored: num,
      ok: z.boolean(),
      examples: z.array(z.string()),
    })
    .nullable(),
  thresholds: z.array(
    z.object({ expr: z.string(), metric: z.string(), op: z.string(), limit: num, actual: nullableNum, pass: z.boolean() }),
  ),
  http: z.record(z.string(), z.unknown()).optional(),
  wallSec: num,
});

export const ResultFileSchema = z.object({
  schemaVersion: z.literal(1),
  runId: z.string().min(1),
  tool: z.object({ name: z.literal('wami-bench'), version: z.string() }),
  scenario: z.object({
    name: z.string(),
    file: z.string().nullable(),
    hash: z.string(),
    resolved: z.record(z.string(), z.unknown()),
  }),
  environment: z.object({
    cpuModel: z.string(),
    cpuCount: num,
    memTotalBytes: num,
    kernel: z.string(),
    os: z.string(),
    node: z.string(),
    sqlite: z.string(),
    packages: z.record(z.string(), z.string()),
    git: z.object({ commit: z.string().nullable(), dirty: z.boolean().nullable() }),
    fdLimit: z.object({ soft: nullableNum, hard: nullableNum }),
    ephemeralPortRange: z.tuple([num, num]).nullable(),
    serverNodeFlags: z.array(z.string()),
    fleetNodeFlags: z.array(z.string()),
    pinned: z.boolean(),
    hostname: z.string(),
    startedAtIso: z.string(),
  }),
  status: z.enum(['ok', 'invalid', 'errored']),
  reasons: z.array(z.string()),
  runs: z.array(RunRecordSchema),
  startedAtIso: z.string(),
  finishedAtIso: z.string(),
  capacity: z
    .object({
      slo: z.array(z.string()),
      startConnections: num,
      step: num,
      maxConnections: num,
      durationSec: num,
      variants: z.array(
        z.object({
          variant: z.string(),
          steps: z.array(z.object({ connections: num, status: z.enum(['ok', 'invalid', 'errored']), sloPass: z.boolean(), actual: z.record(z.string(), nullableNum) })),
          largestPassing: nullableNum,
          stoppedAt: nullableNum,
          stoppedBecause: z.enum(['slo-broken', 'fleet-invalid', 'errored', 'audit-failed', 'max-reached', 'interrupted']).nullable(),
          detail: z.string(),
        }),
      ),
    })
    .optional(),
});

export function resultJsonSchema(): unknown {
  return z.toJSONSchema(ResultFileSchema, { target: 'draft-2020-12' });
}

export const RESULT_JSON_SCHEMA_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'runner', 'result.schema.json');

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1] && process.argv.includes('--write')) {
  writeFileSync(RESULT_JSON_SCHEMA_FILE, JSON.stringify(resultJsonSchema(), null, 2) + '\n');
  process.stdout.write(`wrote ${RESULT_JSON_SCHEMA_FILE}\n`);
}
