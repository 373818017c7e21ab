/**
 * The rest of the stack, for real: Caddy 2 (TLS, internal CA) in front of a real server, the fleet
 * over wss:// trusting Caddy's root through `ca`, autocannon on the read path, and capacity search.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startCaddy } from '../runner/caddy.js';
import type { ResultFile } from '../model/result.js';
import { CLI, startServer } from './helpers/server.js';

const dir = mkdtempSync(join(tmpdir(), 'wami-stack-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Pids of running caddy processes, from /proc (no procps needed). */
function pgrepCaddy(): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        return readFileSync(`/proc/${e}/comm`, 'utf8').trim() === 'caddy';
      } catch {
        return false;
      }
    })
    .map(Number);
}

function connect(url: string, opts: WebSocket.ClientOptions): Promise<'open' | string> {
  return new Promise((res) => {
    const ws = new WebSocket(url, { ...opts, perMessageDeflate: false, handshakeTimeout: 5000 });
    ws.once('open', () => {
      ws.close();
      res('open');
    });
    ws.once('error', (e: NodeJS.ErrnoException) => res(e.code ?? e.message));
  });
}

test('Caddy: wss:// works when the internal root is trusted; no CA or a name that does not match is refused', async () => {
  const server = await startServer('batched', { boards: 2, cardsPerBoard: 5 });
  const caddy = await startCaddy({ upstream: `127.0.0.1:${server.port}`, storageDir: join(dir, 'caddy-direct') });
  try {
    const url = `${caddy.wssUrl}?board=1&user=1`;
    assert.equal(await connect(url, { ca: caddy.ca }), 'open');
    assert.equal(await connect(url, {}), 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
    // A root of another CA (a second Caddy's) does not match the certificate served.
    const other = await startCaddy({ upstream: `127.0.0.1:${server.port}`, storageDir: join(dir, 'caddy-other') });
    const otherCa = other.ca;
    await other.stop();
    assert.notEqual(otherCa, caddy.ca);
    assert.match(await connect(url, { ca: otherCa }), /^(UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)$/);
    // A name the certificate was not issued for is refused too (Caddy has no certificate for it).
    assert.notEqual(await connect(url, { ca: caddy.ca, servername: 'wrong.example' } as WebSocket.ClientOptions), 'open');
    assert.match(await connect(`${caddy.wssUrl}?board=99&user=1`, { ca: caddy.ca }), /404/);
  } finally {
    const r = await caddy.stop();
    assert.equal(r.forced, false);
    await server.stop();
    server.cleanup();
  }
});

test('a short run through Caddy with an http read load: sockets over wss://, status ok, autocannon results, Caddy stopped', async () => {
  const before = new Set(pgrepCaddy());
  const scn = join(dir, 'tls.json');
  writeFileSync(
    scn,
    JSON.stringify({
      name: 'tls-test',
      description: 'Caddy and autocannon end to end',
      variants: [{ name: 'batched-caddy', kind: 'batched', via: 'caddy' }],
      seed: { boards: 10, cardsPerBoard: 10 },
      users: { perBoard: 10, connectRatePerSec: 500 },
      load: { updatesPerUserPerMin: 20, seed: 3 },
      stages: [{ connections: 100, durationSec: 4 }],
      warmupSec: 1,
      http: { path: '/boards/:id', connections: 4, rate: 100, durationSec: 3 },
      fleet: { drainSec: 3, guard: { lagMsP99: 10_000, cpuPct: 1000, eventLoopDelayMsP99: 10_000 } },
      thresholds: ['audit.lostAcked == 0'],
    }),
  );
  const out = join(dir, 'out-tls');
  const r = spawnSync(process.execPath, [CLI, 'run', scn, '--out', out, '--no-report', '--quiet'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as ResultFile;
  const run = result.runs[0]!;
  assert.equal(run.status, 'ok', run.reasons.join('; '));
  assert.equal(run.via, 'caddy');
  assert.equal(run.sockets.reached, 100);
  assert.match(String((result.runs[0]!.fleet as unknown as Record<string, unknown>).workers), /\d/);
  assert.ok(run.updates.acked > 0 && run.audit?.ok);
  assert.ok(run.resources.server.processes >= 2, 'Caddy counts as part of the server side');
  const http = run.http as { requests: { total: number }; errors: number; timeouts: number; non2xx: number; coCorrected: boolean } | undefined;
  assert.ok(http, 'runs[].http is present');
  assert.ok(http.requests.total > 0);
  assert.equal(http.errors, 0);
  assert.equal(http.non2xx, 0);
  assert.equal(http.coCorrected, true);
  const left = pgrepCaddy().filter((p) => !before.has(p));
  assert.deepEqual(left, [], 'Caddy was stopped');
});

test('capacity on a small scenario finds a passing count and exits 0', () => {
  const out = join(dir, 'out-cap');
  // smoke's layout, with a guard for a loaded machine: a step that a busy machine turns invalid would
  // end the search as the machine's limit, which is not what this test is about.
  const scn = join(dir, 'cap.json');
  writeFileSync(
    scn,
    JSON.stringify({
      name: 'smoke',
      description: 'smoke with a loose guard',
      variants: [{ name: 'batched', kind: 'batched' }],
      seed: { boards: 50, cardsPerBoard: 20 },
      users: { perBoard: 20, connectRatePerSec: 2000 },
      load: { updatesPerUserPerMin: 6, arrival: 'poisson', seed: 1 },
      stages: [{ connections: 1000, durationSec: 30 }],
      warmupSec: 5,
      fleet: { guard: { lagMsP99: 10_000, cpuPct: 1000, eventLoopDelayMsP99: 10_000 } },
      thresholds: ['audit.lostAcked == 0'],
    }),
  );
  const r = spawnSync(
    process.execPath,
    [
      CLI,
      'capacity',
      scn,
      '--slo',
      'fanoutMs.p99 < 10000',
      '--variants',
      'batched',
      '--start',
      '100',
      '--step',
      '100',
      '--max-connections',
      '200',
      '--duration-sec',
      '2',
      '--warmup-sec',
      '1',
      '--out',
      out,
      '--no-report',
      '--quiet',
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /batched: 200 sockets — the SLO held up to the maximum asked for, 200 sockets/);
  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as ResultFile;
  assert.equal(result.capacity?.variants[0]?.largestPassing, 200);
  assert.deepEqual(
    result.runs.map((x) => x.stage.connections),
    [100, 200],
  );
});
