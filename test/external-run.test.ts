/**
 * The `external` kind end to end through the real CLI: a real server brought by command, the real
 * fleet, real SQLite files, the audit and the report. Three servers: the Free Pascal server through
 * the shipped pascal-vs-port scenario (skipped with the reason where fpc is missing), a small
 * protocol v1 server that has no /metrics (its server metrics must come out unknown, not 0), and the
 * same small server ignoring SIGTERM (the SIGKILL bound, reported). Each run is a few seconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ResultFileSchema, type ResultFile } from '../model/result.js';
import { PACKAGE_ROOT } from '../scenarios/load.js';
import { PASCAL_BINARY } from '../servers/pascal/index.js';
import { pascalSkipReason } from './helpers/pascal.js';
import { CLI } from './helpers/server.js';

const TINY = join(dirname(fileURLToPath(import.meta.url)), 'helpers', 'tiny-v1-server.js');

function runCli(args: string[], timeoutMs = 120_000): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`CLI timed out:\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      res({ code, stderr, stdout });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'wami-ext-run-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const LOADED_MACHINE_GUARD = { lagMsP99: 1000, cpuPct: 1000, eventLoopDelayMsP99: 1000 };

const tinyScenario = (extra: Record<string, unknown>, variant: Record<string, unknown> = {}) => ({
  name: 'ext-tiny',
  description: 'a small protocol v1 server with no /metrics, brought by command',
  variants: [
    {
      name: 'tiny',
      kind: 'external',
      // no {port}: the server picks one and prints "listening on ws://127.0.0.1:PORT"
      command: [process.execPath, 'tiny-v1-server.js', '--db', '{db}', '--port', '0'],
      cwd: dirname(TINY),
      ...variant,
    },
  ],
  seed: { boards: 4, cardsPerBoard: 5 },
  users: { perBoard: 10, connectRatePerSec: 1000 },
  load: { updatesPerUserPerMin: 60, seed: 3 },
  stages: [{ connections: 40, durationSec: 1 }],
  warmupSec: 0,
  // A guard for a loaded machine: these tests check what the runner does with the server, not how
  // fast this machine is (the default 50 ms lag / 90 % CPU turns a run on a busy machine invalid).
  fleet: { drainSec: 2, guard: LOADED_MACHINE_GUARD },
  ...extra,
});

/** Measured (ok, or invalid when a busy machine made the fleet fall behind: that is the fleet's verdict, not the server's). */
const measured = (run: ResultFile['runs'][number]): void => {
  assert.ok(
    run.status === 'ok' || (run.status === 'invalid' && run.reasons.every((x) => /fleet|lag|CPU|event-loop/i.test(x))),
    `${run.status}: ${run.reasons.join('; ')}`,
  );
};

const readResult = (out: string): ResultFile => {
  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as ResultFile;
  const v = ResultFileSchema.safeParse(result);
  assert.ok(v.success, v.success ? '' : v.error.message);
  return result;
};

test('the Pascal server as an external variant (pascal-vs-port): seeded, ready, sampled, scraped, stopped with SIGTERM, audited, the report naming its command', async (t) => {
  const skip = pascalSkipReason();
  if (skip) return t.skip(skip);
  const out = join(dir, 'pascal');
  const r = await runCli(['run', 'pascal-vs-port', '--variants', 'pascal', '--connections', '40', '--duration-sec', '1', '--warmup-sec', '0', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  const result = readResult(out);
  assert.equal(result.runs.length, 1);
  const run = result.runs[0]!;
  measured(run);
  assert.equal(run.variantKind, 'external');
  // started by the command servers/pascal/index.ts names, {db} and {port} filled
  const x = run.external!;
  assert.equal(x.command[0], PASCAL_BINARY);
  assert.deepEqual(x.command.slice(1), ['--db', join(out, 'work', 'pascal-s1-r1.db'), '--port', String(x.port)]);
  assert.equal(x.portFrom, 'placeholder');
  assert.equal(x.cwd, PACKAGE_ROOT);
  assert.ok(x.port >= 1024 && x.port < 65536);
  // sampled: its process tree (one process), RSS, PSS and CPU
  const res = run.resources.server;
  assert.ok(res.samples.length > 0);
  assert.equal(res.processes, 1);
  assert.ok(res.rssBytesMax > 0 && (res.pssBytesMax ?? 0) > 0);
  assert.equal(typeof res.rssBytesPerSocket, 'number');
  // scraped: its /metrics has the wami_* names; Node's event-loop gauges are not there, so unknown
  assert.equal(run.sockets.reached, 40);
  assert.ok(run.updates.acked > 0);
  assert.equal(run.server.updatesPersisted, run.audit!.eventsStored);
  assert.equal(run.server.busyHits, 0);
  assert.equal(run.server.eventLoopDelayMsP99, null);
  // audited like any run, stopped cleanly (SIGTERM, exit 0: no reason)
  assert.equal(run.audit!.ok, true, run.audit!.examples.join('\n'));
  assert.equal(run.audit!.eventsStored, run.updates.acked);
  assert.deepEqual(
    run.reasons.filter((x) => /server|metrics|SIGTERM|SIGKILL/.test(x)),
    [],
  );
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.ok(html.includes(`pascal: ${PASCAL_BINARY} --db {db} --port {port}`), 'the report names the command');
  assert.ok(html.includes(`${PASCAL_BINARY} --db ${join(out, 'work', 'pascal-s1-r1.db')} --port ${x.port}`), 'and each run’s exact command line');
  assert.match(readFileSync(join(out, 'summary.md'), 'utf8'), /External server pascal: `.*wami-pascal --db \{db\} --port \{port\}/);
});

test('a server without /metrics: its server metrics are unknown (null), not 0, and a threshold on one fails as unknown', async () => {
  const scn = join(dir, 'tiny.json');
  writeFileSync(scn, JSON.stringify(tinyScenario({ thresholds: ['audit.lostAcked == 0', 'server.retries == 0'] })));
  const out = join(dir, 'tiny');
  const r = await runCli(['run', scn, '--out', out]);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /thresholds failed: server\.retries == 0 \(actual unknown\)/);
  const result = readResult(out);
  const run = result.runs[0]!;
  measured({ ...run, reasons: run.reasons.filter((x) => !/no \/metrics/.test(x)) });
  assert.equal(run.external!.portFrom, 'listening line');
  assert.equal(run.external!.command[0], process.execPath);
  const s = run.server;
  for (const k of [
    'updatesReceived',
    'updatesPersisted',
    'broadcastFrames',
    'busyHits',
    'retries',
    'exhausted',
    'slowConsumerCloses',
    'errorsByCode',
    'queueDepthMax',
    'walBytesMax',
    'eventLoopDelayMsP99',
    'batchSize',
    'commitMs',
  ] as const)
    assert.equal(s[k], null, `server.${k} is unknown`);
  assert.ok(
    run.reasons.some((x) => /the server has no \/metrics \(HTTP 404\): .* unknown, not zero/.test(x)),
    run.reasons.join('; '),
  );
  assert.deepEqual(
    run.thresholds.map((t) => [t.expr, t.actual, t.pass]),
    [
      ['audit.lostAcked == 0', 0, true],
      ['server.retries == 0', null, false],
    ],
  );
  // the rest is measured as for any server: sockets, updates, resources, the audit
  assert.equal(run.sockets.reached, 40);
  assert.ok(run.updates.acked > 0);
  assert.ok(run.resources.server.samples.length > 0 && run.resources.server.rssBytesMax > 0);
  assert.equal(run.audit!.ok, true, run.audit!.examples.join('\n'));
  assert.equal(run.audit!.eventsStored, run.updates.acked);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /✗ FAIL unknown/);
});

test('a server that ignores SIGTERM is killed after stopTimeoutSec, and the run says so (errored, exit 1, nothing left running)', async () => {
  const scn = join(dir, 'stuck.json');
  writeFileSync(
    scn,
    JSON.stringify(
      tinyScenario(
        { stages: [{ connections: 20, durationSec: 1 }], fleet: { drainSec: 1, guard: LOADED_MACHINE_GUARD } },
        { command: [process.execPath, 'tiny-v1-server.js', '--db', '{db}', '--port', '{port}', '--ignore-sigterm'], stopTimeoutSec: 1 },
      ),
    ),
  );
  const out = join(dir, 'stuck');
  const r = await runCli(['run', scn, '--out', out, '--no-report']);
  assert.equal(r.code, 1, r.stderr);
  const run = readResult(out).runs[0]!;
  assert.equal(run.status, 'errored');
  assert.ok(
    run.reasons.some((x) => x === 'server did not exit within 1 s of SIGTERM (stopTimeoutSec) and was killed with SIGKILL'),
    run.reasons.join('; '),
  );
  assert.equal(run.external!.portFrom, 'placeholder');
  // no process is left serving this run's database
  const left = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(join(out, 'work'));
      } catch {
        return false;
      }
    });
  assert.deepEqual(left, []);
});

test('a program that is not there (an unbuilt Pascal server) is one clear preflight error with what to run, exit 2; `serve external` is refused', async () => {
  const scn = join(dir, 'unbuilt.json');
  writeFileSync(
    scn,
    JSON.stringify(
      tinyScenario(
        {},
        {
          name: 'pascal',
          command: ['servers/pascal/bin/wami-pascal-unbuilt', '--db', '{db}', '--port', '{port}'],
          cwd: PACKAGE_ROOT,
          setup: 'npm run build:pascal',
        },
      ),
    ),
  );
  const out = join(dir, 'unbuilt');
  const r = await runCli(['run', scn, '--out', out]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /preflight refused the run:\n {2}- variant "pascal": the server's program .*servers\/pascal\/bin\/wami-pascal-unbuilt \(command\[0\] .* resolved against the working directory .*\) does not exist: run `npm run build:pascal` first/,
  );
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(existsSync(join(out, 'result.json')), false, 'nothing ran');
  const s = await runCli(['serve', 'external', '--db', 'x.db']);
  assert.equal(s.code, 2);
  assert.match(s.stderr, /an external server brings its own command/);
});
