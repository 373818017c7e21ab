/**
 * The rate axis end to end, on a tiny scenario: both designs (batched, per-request with 2 workers)
 * through a two-step rate search with real servers, fleets, SQLite files and audits, then the
 * fleet's own ceiling against the sink; the result's capacity block, the stop reasons, and the
 * report's write-scalability panel drawn in Chromium (skipped with WAMI_SKIP_BROWSER=1, as in
 * report-browser.test.ts). Nothing here asserts a speed: the SLO and the fleet's guard are loose.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { runCapacity } from '../runner/capacity.js';
import { validateScenario } from '../scenarios/load.js';
import { defineScenario } from '../scenarios/schema.js';
import { ResultFileSchema, type ResultFile } from '../model/result.js';
import { writeScalability } from '../report/capacity.js';

const CHROMIUM = '/usr/bin/chromium';
const skipBrowser = process.env.WAMI_SKIP_BROWSER === '1';

test('a two-step rate search, both designs: the capacity block, stop reasons, the fleet ceiling and the drawn write-scalability panel', {
  timeout: 180_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wami-rate-'));
  try {
    const scenario = validateScenario(
      defineScenario({
        name: 'rate-tiny',
        description: 'two rate steps on 10 sockets',
        variants: [
          { name: 'batched', kind: 'batched', options: { flushIntervalMs: 20 } },
          { name: 'per-request-2w', kind: 'per-request', options: { workers: 2 } },
        ],
        seed: { boards: 5, cardsPerBoard: 5 },
        users: { perBoard: 2 },
        load: { updatesPerUserPerMin: 60 },
        stages: [{ connections: 10, durationSec: 1 }],
        warmupSec: 0,
        fleet: { drainSec: 1, guard: { lagMsP99: 5000, cpuPct: 1000, eventLoopDelayMsP99: 5000 } },
        capacity: { axis: 'rate', slo: ['ackMs.p99 < 60000'], rateFactor: 2, maxRate: 40 },
      }),
      'inline',
    );
    const logs: string[] = [];
    const out = await runCapacity(
      scenario,
      { slo: [], startRate: 20 },
      { scenarioFile: null, outDir: join(dir, 'out'), onEvent: (e) => void (e.type === 'log' && logs.push(e.message)) },
    );
    const result = JSON.parse(readFileSync(out.resultPath, 'utf8')) as ResultFile;
    assert.ok(ResultFileSchema.safeParse(result).success, 'result.json matches its schema');
    assert.equal(out.outcome, 'ok', `${result.reasons.join('; ')}\n${logs.join('\n')}`);
    const c = result.capacity!;
    assert.equal(c.axis, 'rate');
    assert.deepEqual(c.rate, { startRate: 20, factor: 2, maxRate: 40, maxErrorRate: 0.001, connections: 10 });
    assert.deepEqual(c.slo, ['ackMs.p99 < 60000'], "the scenario's capacity.slo");
    for (const v of c.variants) {
      assert.deepEqual(
        v.steps.map((s) => [s.rate, s.connections, s.status, s.sloPass]),
        [
          [20, 10, 'ok', true],
          [40, 10, 'ok', true],
        ],
        v.variant,
      );
      assert.equal(v.largestPassing, 40, 'in updates/s, the axis’s unit');
      assert.equal(v.stoppedBecause, 'max-reached');
      assert.equal(v.detail, 'the SLO held up to the maximum asked for, 40 updates/s');
      for (const s of v.steps) {
        const g = s.signals!;
        assert.equal(g.errorRate, 0);
        assert.ok(g.sentRate > 0 && g.ackP99Ms > 0, `${v.variant} at ${s.rate}: sent ${g.sentRate}/s`);
        assert.ok(g.eventLoopDelayMsMax !== null, 'the per-process event-loop delay was scraped');
        assert.ok(g.walRestarts !== null && g.walBytesEnd !== null, 'the WAL was read');
      }
    }
    const [b, pr] = c.variants;
    assert.equal(b!.steps[1]!.signals!.flushIntervalMs, 20, "batched's pressure: its flush against its interval");
    assert.ok(b!.steps[1]!.signals!.flushMsP99 !== null && b!.steps[1]!.signals!.queueDepthPeak !== null);
    assert.equal(pr!.steps[1]!.signals!.flushIntervalMs, null);
    assert.ok(pr!.steps[1]!.signals!.retriesPerUpdate !== null, "per-request's pressure: retries per update");
    // runs: the interleaved steps at the scenario's sockets, each user at rate × 60 / sockets per minute
    assert.deepEqual(
      result.runs.map((r) => [r.variant, r.stage.connections, r.audit?.ok]),
      [
        ['batched', 10, true],
        ['per-request-2w', 10, true],
        ['batched', 10, true],
        ['per-request-2w', 10, true],
      ],
    );
    // the fleet's own ceiling: one step against the sink at the highest rate run
    assert.ok(c.fleetCeiling, 'measured');
    assert.deepEqual(
      c.fleetCeiling!.steps.map((s) => [s.rate, s.status]),
      [[40, 'ok']],
    );
    assert.equal(c.fleetCeiling!.largestValid, 40);
    // one sentence per variant
    assert.deepEqual(
      writeScalability(result).map((r) => r.sentence),
      [
        'batched (batched) sustains 40 updates/s up to the maximum asked for: its limit is higher.',
        'per-request-2w (per-request with 2 workers) sustains 40 updates/s up to the maximum asked for: its limit is higher.',
      ],
    );
    const html = readFileSync(join(out.outDir, 'report.html'), 'utf8');
    assert.match(html, /<h3 id="write-scalability">Write scalability<\/h3>/);
    const ids = ['ack', 'fanout', 'errors', 'retries', 'queue'].map((k) => `chart-capacity-ws-${k}`);
    for (const id of ids) assert.ok(html.includes(`id="${id}"`), id);
    if (skipBrowser || !existsSync(CHROMIUM)) return;
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
      await page.goto(pathToFileURL(join(out.outDir, 'report.html')).href, { waitUntil: 'load' });
      await page.waitForFunction(() => (window as unknown as { wamiReport?: { ready: boolean } }).wamiReport?.ready === true, null, { timeout: 10_000 });
      const drawn = await page.evaluate((want) => {
        return want.map((id) => {
          const c = document.getElementById(id) as HTMLCanvasElement | null;
          if (!c) return [id, -1];
          const d = (c.getContext('2d') as CanvasRenderingContext2D).getImageData(0, 0, c.width, c.height).data;
          let coloured = 0;
          for (let i = 0; i < d.length; i += 4) {
            if (
              (d[i + 3] as number) > 0 &&
              Math.max(d[i] as number, d[i + 1] as number, d[i + 2] as number) - Math.min(d[i] as number, d[i + 1] as number, d[i + 2] as number) > 80
            )
              coloured++;
          }
          return [id, coloured];
        });
      }, ids);
      for (const [id, coloured] of drawn) assert.ok((coloured as number) > 20, `${id}: ${coloured} coloured pixels`);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
