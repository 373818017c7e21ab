/** `wami-bench fleet` as a user runs it: flags, exit codes, progress, the JSON it writes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FleetResult } from '../model/fleet-result.js';
import { CLI, startServer } from './helpers/server.js';

function cli(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const c = spawn(process.execPath, [CLI, 'fleet', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('exit', (code) => {
      clearTimeout(t);
      res({ code, stdout, stderr });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'wami-fleet-cli-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const base = ['--url', 'ws://127.0.0.1:9/ws', '--connections', '10', '--per-board', '5', '--updates-per-user-per-min', '1', '--duration-sec', '2'];

test('--help documents the flags and the exit codes', async () => {
  const r = await cli(['--help']);
  assert.equal(r.code, 0);
  for (const s of [
    '--connections',
    '--per-board',
    '--updates-per-user-per-min',
    '--duration-sec',
    '--warmup-sec',
    '--seed',
    '--workers',
    '--out',
    '--ledger',
    '--connect-rate',
    '--first-user',
  ]) {
    assert.ok(r.stdout.includes(s), `help mentions ${s}`);
  }
  assert.match(r.stdout, /0 status ok and every threshold met; 3 a threshold failed, or status invalid/);
  assert.match(r.stdout, /--threshold 'EXPR'/);
  assert.match(r.stdout, /delivery\.missing == 0, delivery\.duplicate == 0, delivery\.phantom == 0, delivery\.outOfOrder == 0, errors\.total == 0/);
});

test('bad flags exit 2 and name the flag', async () => {
  const cases: Array<[string[], RegExp]> = [
    [
      ['--url', 'ws://127.0.0.1:9', '--connections', '10', '--per-board', '20', '--updates-per-user-per-min', '1', '--duration-sec', '2'],
      /--per-board.*cannot exceed --connections/,
    ],
    [[...base, '--updates-per-user-per-min=-3'], /--updates-per-user-per-min/],
    [[...base, '--arrival', 'uniform'], /--arrival must be one of poisson\|fixed/],
    [[...base, '--workers', '0'], /--workers/],
    [[...base, '--bogus'], /bogus/],
    [['--connections', '10'], /--url is required/],
    [[...base.slice(0, -2)], /--duration-sec is required/],
    [[...base, '--url', 'http://127.0.0.1:9'], /--url: URL must start with ws:\/\/ or wss:\/\//],
  ];
  for (const [args, re] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(' ')} -> ${r.code}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
});

test('an unreachable server: status errored, exit 1, with the failure kinds', async () => {
  const out = join(dir, 'unreachable.json');
  const r = await cli([...base, '--url', 'ws://127.0.0.1:1', '--warmup-sec', '0', '--out', out]);
  assert.equal(r.code, 1, r.stderr);
  const res = JSON.parse(readFileSync(out, 'utf8')) as FleetResult;
  assert.equal(res.status, 'errored');
  assert.deepEqual(res.sockets.failuresByKind, { refused: 10 });
  assert.match(res.reasons[0]!, /no socket reached the server.*refused=10/);
});

test('a short real run through the CLI: progress on stderr, the FleetResult JSON, exit 0', { timeout: 60_000 }, async () => {
  const srv = await startServer('batched', { boards: 10, cardsPerBoard: 20 });
  try {
    const out = join(dir, 'run.json');
    const ledger = join(dir, 'ledger.json');
    const r = await cli([
      '--url',
      `ws://127.0.0.1:${srv.port}`,
      '--connections',
      '40',
      '--per-board',
      '8',
      '--updates-per-user-per-min',
      '120',
      '--warmup-sec',
      '1',
      '--duration-sec',
      '2',
      '--drain-sec',
      '3',
      '--seed',
      '7',
      '--lag-bound-ms',
      '1000',
      '--eld-bound-ms',
      '1000',
      '--cpu-bound-pct',
      '1000',
      '--out',
      out,
      '--ledger',
      ledger,
    ]);
    assert.equal(r.code, 0, r.stderr);
    // Not a terminal: plain lines with every field, most important first.
    assert.match(
      r.stderr,
      /^fleet (connect|warmup|measure) \d+s {2}open \d+\/40 {2}left \d+s {2}p99 fanout .* ack .* {2}errors \d+ {2}lag p99 .* {2}sent .* {2}cpu \d+%$/m,
    );
    assert.match(r.stderr, /^fleet ok: 40\/40 sockets/m);
    const res = JSON.parse(readFileSync(out, 'utf8')) as FleetResult;
    assert.equal(res.schemaVersion, 1);
    assert.equal(res.status, 'ok');
    for (const k of ['status', 'reasons', 'sockets', 'latency', 'delivery', 'errors', 'fleet', 'timeseries', 'updates', 'window', 'config'])
      assert.ok(k in res, k);
    for (const k of ['p50', 'p90', 'p99', 'p999', 'max', 'count', 'mean', 'histogram', 'uncorrected'] as const) assert.ok(k in res.latency.ackMs, k);
    assert.equal(res.config.seed, 7);
    assert.equal(res.ledgerFile, ledger);
    assert.equal(res.delivery.missing + res.delivery.duplicate + res.delivery.outOfOrder + res.delivery.phantom, 0);
  } finally {
    await srv.stop();
    srv.cleanup();
  }
});

/** A batched server whose queue holds one update and flushes once a second: most updates are refused with OVERLOADED. */
async function refusingServer() {
  return startServer('batched', { boards: 10, cardsPerBoard: 20, flags: ['--max-queue', '1', '--flush-interval-ms', '1000'] });
}

const loose = ['--lag-bound-ms', '1000', '--eld-bound-ms', '1000', '--cpu-bound-pct', '1000'];
const refusedRun = (port: number, out: string, extra: string[] = []) => [
  '--url',
  `ws://127.0.0.1:${port}`,
  '--connections',
  '40',
  '--per-board',
  '8',
  '--updates-per-user-per-min',
  '120',
  '--warmup-sec',
  '0',
  '--duration-sec',
  '2',
  '--drain-sec',
  '3',
  ...loose,
  '--out',
  out,
  ...extra,
];

test('refused updates fail the default thresholds: status stays ok (measured honestly), the failed threshold is named, exit 3', {
  timeout: 60_000,
}, async () => {
  const srv = await refusingServer();
  try {
    const out = join(dir, 'refused.json');
    const r = await cli(refusedRun(srv.port, out));
    assert.equal(r.code, 3, r.stderr);
    const res = JSON.parse(readFileSync(out, 'utf8')) as FleetResult;
    assert.equal(res.status, 'ok', res.reasons.join('; '));
    assert.ok(res.errors.byCode.OVERLOADED! > 0, JSON.stringify(res.errors));
    const failed = res.thresholds!.filter((t) => !t.pass);
    assert.deepEqual(
      failed.map((t) => t.expr),
      ['errors.total == 0'],
    );
    assert.deepEqual(res.reasons, [`threshold failed: errors.total == 0 (actual ${res.errors.total})`]);
    assert.deepEqual(
      res.thresholds!.map((t) => t.expr),
      ['delivery.missing == 0', 'delivery.duplicate == 0', 'delivery.phantom == 0', 'delivery.outOfOrder == 0', 'errors.total == 0', 'updates.unanswered == 0'],
    );
    assert.match(r.stderr, /^fleet ok \(measured honestly\), FAILED 1 threshold: 40\/40 sockets/m);
    assert.match(r.stderr, /^ {2}- threshold failed: errors\.total == 0 \(actual \d+\)$/m);
  } finally {
    await srv.stop();
    srv.cleanup();
  }
});

test('a --cards-per-board that does not match the server: exit 2 before the load, one line', { timeout: 60_000 }, async () => {
  const srv = await startServer('batched', { boards: 10, cardsPerBoard: 20 });
  try {
    const r = await cli(refusedRun(srv.port, join(dir, 'never.json'), ['--cards-per-board', '10']));
    assert.equal(r.code, 2, r.stderr);
    assert.equal(
      r.stderr,
      "wami-bench fleet: --cards-per-board 10 does not match the server: board 1 has 20 cards, ids 1..20, the layout says 10 cards, ids 1..10; drop --cards-per-board to use the server's cards\n",
    );
  } finally {
    await srv.stop();
    srv.cleanup();
  }
});

test('the server killed mid-run with no fault scheduled: status errored, exit 1, closes and sends on closed sockets in the JSON', {
  timeout: 90_000,
}, async () => {
  const srv = await startServer('batched', { boards: 4, cardsPerBoard: 10 });
  try {
    const out = join(dir, 'killed.json');
    const c = spawn(
      process.execPath,
      [
        CLI,
        'fleet',
        '--url',
        `ws://127.0.0.1:${srv.port}`,
        '--connections',
        '20',
        '--per-board',
        '5',
        '--updates-per-user-per-min',
        '120',
        '--warmup-sec',
        '0.5',
        '--duration-sec',
        '3',
        '--drain-sec',
        '1',
        '--seed',
        '3',
        '--cards-per-board',
        '10',
        '--out',
        out,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    let killed = false;
    c.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      // once the measured window runs, the server dies (no fault was scheduled)
      if (!killed && /fleet measure/.test(stderr)) {
        killed = true;
        srv.child.kill('SIGKILL');
      }
    });
    const code = await new Promise<number | null>((res) => c.on('exit', res));
    assert.ok(killed, stderr);
    assert.equal(code, 1, stderr);
    const res = JSON.parse(readFileSync(out, 'utf8')) as FleetResult;
    assert.equal(res.status, 'errored');
    assert.match(res.reasons.join('; '), /the server went away .* with no fault scheduled: 20 of 20 socket\(s\) closed early \(1006 ×20\)/);
    assert.equal(res.sockets.closedEarly, 20);
    assert.deepEqual(res.sockets.closedEarlyByCode, { 1006: 20 });
    assert.ok((res.sockets.sendsOnClosed ?? 0) > 0, 'updates fell due on the closed sockets');
    assert.match(stderr, /fleet errored/);
  } finally {
    await srv.stop();
    srv.cleanup();
  }
});
