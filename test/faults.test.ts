/**
 * Fault runs: the attribution of loss to faults with exact numbers (runner/fault-loss.ts), the
 * scenario's fault list rules, the Faults section's words (report/faults.ts), and a short `crash`
 * run end to end through the CLI: both designs, a kill recorded, no acked update lost, no seq
 * reused, and the report's Faults section drawn in Chromium.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Fault, FaultRecord } from '../model/faults.js';
import { faultListProblems } from '../model/faults.js';
import { ResultFileSchema, type ResultFile } from '../model/result.js';
import { faultBlocks } from '../report/faults.js';
import { BUILTIN_SCENARIOS, loadScenario, validateScenario } from '../scenarios/load.js';
import { CLI } from './helpers/server.js';

const root = new URL('../../', import.meta.url);

test('a fault list must fit inside the measured window, in order, apart', () => {
  const k: Fault = { kind: 'kill', atSec: 8, restartAfterSec: 2 };
  assert.deepEqual(faultListProblems([k], 30), []);
  assert.match(faultListProblems([k], 9)[0]!.message, /kill at 8 s, restart after 2 s ends at 10 s, not inside the 9 s measured window/);
  const f: Fault = { kind: 'freeze', atSec: 10.5, durationSec: 1 };
  assert.match(faultListProblems([k, f], 30)[0]!.message, /starts before kill at 8 s, restart after 2 s has ended and settled/);
  const withFaults = (faults: unknown[]) => () =>
    validateScenario(
      {
        name: 'x',
        description: 'x',
        variants: [{ name: 'b', kind: 'batched' }],
        seed: { boards: 1, cardsPerBoard: 5 },
        users: { perBoard: 5, connectRatePerSec: 100 },
        load: { updatesPerUserPerMin: 1 },
        stages: [{ connections: 5, durationSec: 5 }],
        faults,
      },
      'f.json',
    );
  assert.throws(withFaults([{ kind: 'kill', atSec: 4 }]), /faults\[0\]: kill at 4 s, restart after 2 s ends at 6 s, not inside the 5 s measured window/);
  assert.throws(withFaults([{ kind: 'meteor', atSec: 1 }]), /faults\[0\]/);
  assert.deepEqual(withFaults([{ kind: 'disk-full', atSec: 1, durationSec: 2 }])().faults, [{ kind: 'disk-full', atSec: 1, durationSec: 2 }]);
});

test('every shipped scenario gates on audit.seqReused == 0; crash and slow-consumers carry their faults', async () => {
  for (const name of BUILTIN_SCENARIOS) {
    const { scenario } = await loadScenario(name);
    assert.ok(scenario.thresholds.includes('audit.seqReused == 0'), `${name} gates on seqReused`);
  }
  assert.deepEqual(
    (await loadScenario('crash')).scenario.faults.map((f) => f.kind),
    ['kill', 'disk-full'],
  );
  assert.deepEqual(
    (await loadScenario('slow-consumers')).scenario.faults.map((f) => f.kind),
    ['slow-consumers'],
  );
});

test('the Faults section in words: "batched broadcast 3 updates it never stored; per-request none"', () => {
  const result = JSON.parse(readFileSync(new URL('results/fixtures/result-smoke.json', root), 'utf8')) as ResultFile;
  const rec = (broadcastNotStored: number, gap: number | null, seqGapSeqs: number): FaultRecord => ({
    kind: 'kill',
    spec: { kind: 'kill', atSec: 2, restartAfterSec: 1 },
    injected: 'SIGKILL',
    atT: 4,
    endT: 6,
    restart: { readyMs: 1500, firstAckMs: 40 },
    loss: {
      lostAcked: 0,
      broadcastNotStored,
      maxBroadcastToCrashMs: gap,
      unanswered: 4,
      storedUnacked: 0,
      seqGapSeqs,
      boardsWithGaps: seqGapSeqs ? 2 : 0,
      seqReused: 0,
    },
    errorsByCode: { 'closed-1006': 200 },
    sockets: { closed: 200, reconnected: 200, sendsOnClosed: 30, allBackSec: 3 },
    rssBytes: { before: 1, duringMax: null, after: 1 },
  });
  result.runs[0]!.faults = [rec(3, 30.4, 1990)];
  result.runs[1]!.faults = [rec(0, null, 0)];
  assert.ok(ResultFileSchema.safeParse(result).success);
  const [b] = faultBlocks(result);
  assert.equal(b!.title, 'kill at 2 s, restart after 1 s');
  assert.deepEqual(b!.words.slice(0, 5), [
    'Broadcast but never stored: batched broadcast 3 updates it never stored (broadcast up to 30.4 ms before the kill); per-request none.',
    'Acked updates lost: none.',
    'Seqs reused: none.',
    'Updates left unanswered (in flight when their socket closed, or never answered): batched 4; per-request 4.',
    'Seqs skipped (gaps, allowed and counted): batched 1,990 on 2 boards; per-request none.',
  ]);
  assert.deepEqual(b!.rows.find((r) => r.label.startsWith('broadcast, never stored'))!.cells, ['3', '0']);
});

function runCli(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((res) => {
    const c = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), 150_000);
    c.on('exit', (code) => {
      clearTimeout(t);
      res({ code, stderr });
    });
  });
}

test('a short crash run end to end: both designs, the kill recorded, no acked update lost, no seq reused, the Faults section drawn', {
  timeout: 180_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wami-crash-'));
  try {
    const scn = join(dir, 'crash.json');
    writeFileSync(
      scn,
      JSON.stringify({
        name: 'crash-e2e',
        description: 'a kill mid-load, both designs',
        variants: [
          { name: 'batched', kind: 'batched' },
          { name: 'per-request', kind: 'per-request', options: { workers: 1 } },
        ],
        seed: { boards: 4, cardsPerBoard: 10 },
        users: { perBoard: 10, connectRatePerSec: 1000 },
        load: { updatesPerUserPerMin: 60, arrival: 'poisson', seed: 5 },
        stages: [{ connections: 40, durationSec: 3 }],
        warmupSec: 0,
        // the machine may be busy beside the test: this run checks what a kill costs, not latency
        fleet: { workers: 1, drainSec: 1, guard: { lagMsP99: 10_000, eventLoopDelayMsP99: 10_000, cpuPct: 10_000 } },
        faults: [{ kind: 'kill', atSec: 0.5, restartAfterSec: 0.3 }],
        thresholds: ['audit.lostAcked == 0', 'audit.seqReused == 0'],
      }),
    );
    const out = join(dir, 'out');
    const r = await runCli(['run', scn, '--out', out, '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as ResultFile;
    assert.ok(ResultFileSchema.safeParse(result).success);
    assert.equal(result.status, 'ok', result.reasons.join('; '));
    for (const run of result.runs) {
      const f = run.faults?.[0];
      assert.ok(f, `${run.variant}: the kill is recorded`);
      assert.equal(f.kind, 'kill');
      assert.match(f.injected, /^SIGKILL of \d+ process\(es\); restarted on the same file and port/);
      assert.equal(f.loss.lostAcked, 0, `${run.variant}: acked updates lost`);
      assert.equal(f.loss.seqReused, 0, `${run.variant}: seqs reused`);
      assert.ok(f.restart && f.restart.readyMs > 300, `${run.variant}: restarted`);
      assert.equal(run.audit?.lostAcked, 0);
      assert.equal(run.audit?.seqReused, 0);
      assert.ok(run.audit?.ok, `${run.variant}: audit ${JSON.stringify(run.audit)}`);
      assert.equal(run.sockets.closedEarly, 40, `${run.variant}: every socket closed by the kill`);
      assert.ok((run.sockets.reconnects?.attempted ?? 0) > 0, `${run.variant}: the fleet tried to reconnect`);
    }
    const per = result.runs.find((x) => x.variant === 'per-request')!;
    assert.equal(per.faults![0]!.loss.broadcastNotStored, 0, 'per-request broadcasts only what it stored');
    assert.equal(per.audit!.phantom, 0);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /<section id="faults"><h2>Faults: what each design loses<\/h2>/);
    assert.match(html, /Broadcast but never stored: /);
    assert.match(readFileSync(join(out, 'summary.md'), 'utf8'), /### Faults: what each design loses/);
    if (process.env.WAMI_SKIP_BROWSER === '1' || !existsSync('/usr/bin/chromium')) return;
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(pathToFileURL(join(out, 'report.html')).href);
      await page.waitForFunction(() => (window as unknown as { wamiReport?: { ready: boolean } }).wamiReport?.ready === true);
      const drawn = await page.evaluate(() =>
        [...document.querySelectorAll('#faults canvas')].map((c) => {
          const cv = c as HTMLCanvasElement;
          const d = (cv.getContext('2d') as CanvasRenderingContext2D).getImageData(0, 0, cv.width, cv.height).data;
          let marked = 0;
          for (let i = 0; i < d.length; i += 4) if ((d[i] as number) > 150 && (d[i + 1] as number) < 120 && (d[i + 3] as number) > 0) marked++;
          return { id: cv.id, marked };
        }),
      );
      assert.equal(drawn.length, 2, 'one timeline per variant');
      for (const c of drawn) assert.ok(c.marked > 100, `${c.id}: the fault is marked (${c.marked} red pixels)`);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
