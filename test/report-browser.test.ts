/**
 * The report in a real browser: Debian's chromium (never a downloaded one) driven by playwright-core
 * opens report.html from disk. Every chart's canvas must have drawn pixels (and coloured data lines
 * where there is data), the console must stay free of errors, and no request may leave file:/data:.
 * Screenshots go to test-artifacts/ (git-ignored). Needs /usr/bin/chromium (`apt-get install
 * chromium`, as .ci/run does); set WAMI_SKIP_BROWSER=1 to skip on a machine without it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { writeReport } from '../report/index.js';
import type { ResultFile } from '../model/result.js';
import { capacityFixture } from './helpers/report-capacity.js';

const CHROMIUM = '/usr/bin/chromium';
const root = fileURLToPath(new URL('../../', import.meta.url));
const artifacts = join(root, 'test-artifacts');
const skip = process.env.WAMI_SKIP_BROWSER === '1' ? 'WAMI_SKIP_BROWSER=1' : false;

interface CanvasInfo {
  id: string;
  width: number;
  height: number;
  painted: number;
  coloured: number;
}

/** Opens the report of a committed fixture (by file name) or of a result built in the test. */
async function openReport(browser: Browser, fixture: string | { name: string; result: ResultFile }, dir: string) {
  const name = typeof fixture === 'string' ? fixture.replace('.json', '') : fixture.name;
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const f = join(d, 'result.json');
  writeFileSync(f, typeof fixture === 'string' ? readFileSync(join(root, 'results/fixtures', fixture)) : JSON.stringify(fixture.result));
  const { html } = await writeReport(f);
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });
  await page.waitForFunction(() => (window as unknown as { wamiReport?: { ready: boolean } }).wamiReport?.ready === true, null, { timeout: 10_000 });
  return { page, errors, requests, html };
}

/** Pixels drawn on each canvas: any non-transparent, and saturated ones (data lines, not grey axes). */
function canvases(page: Page): Promise<CanvasInfo[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll('canvas')].map((c) => {
      const ctx = c.getContext('2d') as CanvasRenderingContext2D;
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      let painted = 0;
      let coloured = 0;
      for (let i = 0; i < d.length; i += 4) {
        if ((d[i + 3] as number) === 0) continue;
        painted++;
        const r = d[i] as number;
        const g = d[i + 1] as number;
        const b = d[i + 2] as number;
        if (Math.max(r, g, b) - Math.min(r, g, b) > 80) coloured++;
      }
      return { id: c.id, width: c.width, height: c.height, painted, coloured };
    }),
  );
}

describe('report.html in chromium', { skip, timeout: 60_000 }, () => {
  let browser: Browser;
  const tmp = mkdtempSync(join(tmpdir(), 'wami-browser-'));

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium (or set WAMI_SKIP_BROWSER=1)`);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    mkdirSync(artifacts, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('smoke: every chart draws, no console error, no network request; screenshot', async () => {
    const { page, errors, requests } = await openReport(browser, 'result-smoke.json', tmp);
    const info = await canvases(page);
    const n = await page.evaluate(() => (window as unknown as { wamiReport: { charts: number } }).wamiReport.charts);
    assert.equal(info.length, n);
    assert.ok(info.length >= 13, `only ${info.length} charts`);
    for (const c of info) {
      assert.ok(c.width > 200 && c.height > 200, `${c.id} is ${c.width}x${c.height}`);
      assert.ok(c.painted > 0.01 * c.width * c.height, `${c.id}: only ${c.painted} pixels drawn`);
      assert.ok(c.coloured > 50, `${c.id}: no data drawn (${c.coloured} coloured pixels)`);
    }
    assert.deepEqual(errors, []);
    assert.ok(requests.length > 0);
    assert.deepEqual(
      requests.filter((u) => !/^(file|data):/.test(u)),
      [],
    );
    await page.screenshot({ path: join(artifacts, 'report.png'), fullPage: true });
    await page.close();
  });

  it('stages: the scaling curve opens the page, switching stage redraws every chart', async () => {
    const { page, errors, requests } = await openReport(browser, 'result-stages.json', tmp);
    const order = await page.evaluate(() => [...document.querySelectorAll('main > section')].map((s) => s.id).slice(0, 3));
    assert.deepEqual(order, ['decision', 'verdict', 'scaling']);
    const options = await page.$$eval('#wami-sel option', (os) => os.map((o) => (o as HTMLOptionElement).value));
    assert.equal(options.length, 6, 'two stages × three repeats');
    await page.selectOption('#wami-sel', options[0] as string);
    for (const c of await canvases(page)) {
      assert.ok(c.painted > 0.01 * c.width * c.height, `${c.id} after switching: ${c.painted}`);
      assert.ok(c.coloured > 50, `${c.id} after switching: no data drawn`);
    }
    assert.deepEqual(errors, []);
    assert.deepEqual(
      requests.filter((u) => !/^(file|data):/.test(u)),
      [],
    );
    await page.screenshot({ path: join(artifacts, 'report-stages.png'), fullPage: true });
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(artifacts, 'report-stages-top.png') });
    await page.close();
  });

  it('capacity: the section follows the decision and the verdict, then the scaling curve; every chart draws', async () => {
    const { result } = capacityFixture();
    const { page, errors, requests } = await openReport(browser, { name: 'capacity', result }, tmp);
    const order = await page.evaluate(() => [...document.querySelectorAll('main > section')].map((s) => s.id).slice(0, 5));
    assert.deepEqual(order, ['decision', 'verdict', 'capacity', 'scaling', 'tables']);
    // The capacity search speaks in the decision too, linked to its section.
    const line = (await page.textContent('#decision a[href="#capacity"]')) ?? '';
    assert.match(line, /^Capacity \(SLO /);
    const text = (await page.textContent('#capacity')) ?? '';
    assert.match(text, /not the server’s/);
    const info = await canvases(page);
    const cap = info.filter((c) => c.id.startsWith('chart-capacity-'));
    assert.equal(cap.length, result.capacity!.slo.length);
    for (const c of info) {
      assert.ok(c.painted > 0.01 * c.width * c.height, `${c.id}: only ${c.painted} pixels drawn`);
      assert.ok(c.coloured > 50, `${c.id}: no data drawn`);
    }
    assert.deepEqual(errors, []);
    assert.deepEqual(
      requests.filter((u) => !/^(file|data):/.test(u)),
      [],
    );
    await page.screenshot({ path: join(artifacts, 'report-capacity-top.png') });
    await page.close();
  });

  it('invalid: warnings visible, invalid runs marked in the legend, still no errors', async () => {
    const { page, errors } = await openReport(browser, 'result-invalid.json', tmp);
    const fixture = JSON.parse(readFileSync(join(root, 'results/fixtures/result-invalid.json'), 'utf8')) as ResultFile;
    const banner = (await page.textContent('#verdict')) ?? '';
    assert.match(banner, /audit FAILED/);
    const invalid = fixture.runs.filter((r) => r.status !== 'ok');
    assert.ok(invalid.length > 0);
    for (const r of invalid) assert.ok(banner.includes(`is ${r.status}: ${r.reasons[0]}`), `${r.variant}: its reason is in the banner`);
    const legend = await page.evaluate(() => {
      const w = window as unknown as { Chart: { getChart(id: string): { data: { datasets: Array<{ label: string }> } } | undefined } };
      return w.Chart.getChart('chart-ts-latency')?.data.datasets.map((d) => d.label) ?? [];
    });
    for (const r of invalid)
      assert.ok(
        legend.some((l) => l.startsWith(`${r.variant} (${r.status})`)),
        legend.join(', '),
      );
    for (const c of await canvases(page)) assert.ok(c.painted > 0.01 * c.width * c.height, c.id);
    assert.deepEqual(errors, []);
    await page.screenshot({ path: join(artifacts, 'report-invalid.png'), fullPage: true });
    await page.close();
  });
});
