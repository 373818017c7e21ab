/**
 * The run lifecycle end to end through the real CLI: real servers, the real fleet, real SQLite files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ResultFileSchema, type ResultFile } from '../model/result.js';
import { floorStages } from '../report/floor.js';
import { auditDatabase, readLedger } from '../runner/audit.js';
import { descendantPids } from '../runner/server-process.js';
import { alive, CLI } from './helpers/server.js';

const base = {
  name: 'e2e',
  description: 'end-to-end test scenario',
  variants: [
    { name: 'batched', kind: 'batched' },
    { name: 'per-request', kind: 'per-request', flags: ['--workers', '2'] },
    { name: 'floor', kind: 'floor' },
  ],
  seed: { boards: 10, cardsPerBoard: 10 },
  users: { perBoard: 10, connectRatePerSec: 1000 },
  load: { updatesPerUserPerMin: 30, arrival: 'poisson', seed: 5 },
  stages: [{ connections: 100, durationSec: 3 }],
  warmupSec: 1,
  repeats: 1,
  // A guard for a loaded machine: these tests check what the run does, not how fast this machine is.
  fleet: { drainSec: 3, guard: { lagMsP99: 10_000, cpuPct: 1000, eventLoopDelayMsP99: 10_000 } },
  thresholds: ['audit.lostAcked == 0', 'audit.phantom == 0'],
};

interface CliRun {
  code: number | null;
  stderr: string;
  pid: number;
  /** Every descendant pid seen while it ran. */
  seenPids: Set<number>;
}

function runCli(args: string[], opts: { onStderr?: (chunk: string, pid: number) => void; timeoutMs?: number } = {}): Promise<CliRun> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const seen = new Set<number>();
    const poll = setInterval(() => {
      for (const p of descendantPids(child.pid!)) seen.add(p);
    }, 200);
    child.stdout.resume();
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      opts.onStderr?.(d.toString(), child.pid!);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rej(new Error(`CLI timed out:\n${stderr}`));
    }, opts.timeoutMs ?? 120_000);
    child.on('exit', (code) => {
      clearInterval(poll);
      clearTimeout(timer);
      res({ code, stderr, pid: child.pid!, seenPids: seen });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'wami-e2e-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('both designs and the floor end to end: result.json validates, runs ok, audit clean (the floor: skipped, read as the ratio); deleting stored events makes the audit find loss', async () => {
  const scn = join(dir, 'e2e.json');
  writeFileSync(scn, JSON.stringify(base));
  const out = join(dir, 'out-ok');
  const r = await runCli(['run', scn, '--out', out, '--keep-db', '--no-report', '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as ResultFile;
  const v = ResultFileSchema.safeParse(result);
  assert.ok(v.success, v.success ? '' : v.error.message);
  assert.equal(result.status, 'ok', result.reasons.join('\n'));
  assert.deepEqual(
    result.runs.map((x) => x.variant),
    ['batched', 'per-request', 'floor'],
  );
  // The floor: measured like the designs, stores nothing, so no audit and no audit.* threshold (skipped, not passed).
  const floor = result.runs[2]!;
  assert.equal(floor.variantKind, 'floor');
  assert.equal(floor.status, 'ok', floor.reasons.join('; '));
  assert.equal(floor.sockets.reached, 100);
  assert.ok(floor.updates.acked > 0, 'the floor acks');
  assert.equal(floor.updates.unanswered, 0);
  assert.equal(floor.delivery.missing, 0);
  assert.equal(floor.audit, null);
  // the divisor of the fleet's CPU per received frame: every broadcast, ack and error frame its sockets got
  assert.equal(floor.fleet.framesReceived, floor.delivery.received + floor.updates.acked + floor.updates.errored);
  assert.deepEqual(floor.thresholds, []);
  assert.equal(existsSync(join(out, 'work', 'floor-s1-r1.db')), true);
  const fdb = new Database(join(out, 'work', 'floor-s1-r1.db'), { readonly: true });
  assert.equal((fdb.prepare('SELECT count(*) AS n FROM card_events').get() as { n: number }).n, 0, 'the floor wrote nothing');
  fdb.close();
  assert.deepEqual(
    floorStages(result).map((s) => [s.floor, s.floorValid, s.rows.map((r) => r.variant)]),
    [['floor', true, ['batched', 'per-request']]],
  );
  for (const run of result.runs.slice(0, 2)) {
    assert.equal(run.status, 'ok', `${run.variant}: ${run.reasons.join('; ')}`);
    assert.equal(run.sockets.reached, 100);
    assert.ok(run.updates.acked > 0, 'updates were acked');
    assert.ok(run.audit, 'audit ran');
    assert.equal(run.audit.ok, true, run.audit.examples.join('\n'));
    assert.equal(run.audit.lostAcked, 0);
    assert.equal(run.audit.phantom, 0);
    assert.equal(run.audit.eventsStored, run.updates.acked);
    assert.equal(typeof run.resources.server.rssBytesPerSocket, 'number');
    assert.ok(run.resources.server.rssBytesMax > 0);
    assert.ok(run.resources.server.samples.length > 0);
    assert.ok(run.thresholds.length === 2 && run.thresholds.every((t) => t.pass));
  }
  // the measured window's RSS max (the runner gives the sampler the fleet's window): never above the
  // whole run's; 1 s readings over two 3 s windows, so at least one run has a reading inside
  for (const run of result.runs) {
    const m = run.resources.server.rssBytesMaxMeasured;
    assert.ok(m === null || (typeof m === 'number' && m > 0 && m <= run.resources.server.rssBytesMax), `rssBytesMaxMeasured ${m}`);
  }
  assert.ok(
    result.runs.some((run) => typeof run.resources.server.rssBytesMaxMeasured === 'number'),
    'a reading inside the measured window',
  );
  assert.equal(result.runs[1]!.resources.server.processes >= 3, true, 'per-request tree counts primary and workers');
  assert.deepEqual(result.environment.serverNodeFlags, ['--max-semi-space-size=16', '--max-old-space-size=4096']);

  // Loss: delete stored events of acked updates, audit again.
  const db = join(out, 'work', 'batched-s1-r1.db');
  const ledger = readLedger(join(out, 'work', 'batched-s1-r1.ledger.json'));
  const w = new Database(db);
  const deleted = w.prepare('DELETE FROM card_events WHERE id IN (SELECT id FROM card_events ORDER BY id DESC LIMIT 3)').run().changes;
  w.close();
  assert.equal(deleted, 3);
  const audit = auditDatabase(db, ledger);
  assert.equal(audit.lostAcked, 3);
  assert.equal(audit.ok, false);
});

test('a failing threshold exits 3 and says which', async () => {
  const scn = join(dir, 'threshold.json');
  writeFileSync(scn, JSON.stringify({ ...base, variants: [base.variants[0]], thresholds: ['ackMs.p99 < 0.001'] }));
  const out = join(dir, 'out-threshold');
  const r = await runCli(['run', scn, '--out', out, '--no-report']);
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /thresholds failed: ackMs\.p99 < 0\.001 \(actual /);
  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as ResultFile;
  assert.equal(result.runs[0]!.thresholds[0]!.pass, false);
});

test('killing the server mid-run: status errored with the reason, exit 1, no orphan processes', async () => {
  const scn = join(dir, 'kill.json');
  writeFileSync(scn, JSON.stringify({ ...base, variants: [base.variants[1]], stages: [{ connections: 100, durationSec: 30 }] }));
  const out = join(dir, 'out-kill');
  let killed = false;
  const r = await runCli(['run', scn, '--out', out, '--no-report'], {
    onStderr: (chunk, pid) => {
      if (!killed && /\] measure /.test(chunk)) {
        // The server is the CLI's child running `serve`; kill its whole tree by PID.
        for (const p of descendantPids(pid)) {
          let cmd = '';
          try {
            cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
          } catch {
            continue;
          }
          if (cmd.includes('\0serve\0')) {
            killed = true;
            process.kill(p, 'SIGKILL');
          }
        }
      }
    },
  });
  assert.ok(killed, `the server was found and killed:\n${r.stderr}`);
  assert.equal(r.code, 1, r.stderr);
  const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as ResultFile;
  assert.equal(result.status, 'errored');
  assert.equal(result.runs[0]!.status, 'errored');
  assert.match(result.runs[0]!.reasons.join('\n'), /server exited during the run/);
  // The CLI waits for its children before it exits; a child killed on its way out may still be
  // dying: wait (bounded) for the condition, not for a fixed time.
  const ours = (p: number): boolean => {
    try {
      return alive(p) && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('dist/');
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 100 && [...r.seenPids].some(ours); i++) await new Promise((res) => setTimeout(res, 50));
  assert.deepEqual([...r.seenPids].filter(ours), [], 'no process of the run is left');
  assert.equal(existsSync(join(out, 'work')) ? readdirSync(join(out, 'work')).filter((f) => f.endsWith('.db')).length : 0, 0, 'databases removed');
});
