/**
 * The report with an external variant, on the committed smoke fixture plus an external run made from
 * its batched run (exact numbers): the per-socket claim beside the port's, the command named in the
 * tables, the runs table and summary.md, the server shape, CPU per delivered broadcast, unknown
 * server metrics shown as unknown, and optional stages the preflight skipped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ResultFileSchema, type ResultFile, type RunRecord } from '../model/result.js';
import { externalCommands } from '../report/external.js';
import { renderHtml } from '../report/html.js';
import { renderMarkdown } from '../report/markdown.js';
import { designClaims } from '../report/memory.js';
import { M } from '../report/metrics.js';
import { serverShape, shapeLabel } from '../report/runs.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

function withPascal(): ResultFile {
  const r = JSON.parse(readFileSync(join(root, 'results/fixtures/result-smoke.json'), 'utf8')) as ResultFile;
  const batched = r.runs.find((x) => x.variant === 'batched')!;
  batched.resources.server.rssBytesPerSocket = 16_000;
  r.runs.find((x) => x.variant === 'per-request')!.resources.server.rssBytesPerSocket = 20_000;
  const pascal: RunRecord = structuredClone(batched);
  pascal.variant = 'pascal';
  pascal.variantKind = 'external';
  pascal.variantFlags = [];
  pascal.resources.server.rssBytesPerSocket = 1_000;
  pascal.resources.server.cpuSec = 0.26;
  pascal.delivery.received = 2600;
  pascal.server = { ...pascal.server, busyHits: null, retries: null, exhausted: null, queueDepthMax: null, errorsByCode: null };
  pascal.external = {
    command: ['/opt/wami/servers/pascal/bin/wami-pascal', '--db', '/tmp/run/pascal-s1-r1.db', '--port', '21000'],
    cwd: '/opt/wami',
    env: {},
    port: 21000,
    portFrom: 'placeholder',
    ready: '/healthz',
    stopTimeoutSec: 10,
  };
  r.runs.splice(1, 0, pascal);
  const variants = r.scenario.resolved.variants as unknown[];
  variants.splice(1, 0, { name: 'pascal', kind: 'external', command: ['servers/pascal/bin/wami-pascal', '--db', '{db}', '--port', '{port}'] });
  r.skippedStages = [{ index: 1, connections: 20_000, reason: 'variant "pascal": 20000 sockets on an external server of 1 process is ~20000 per process' }];
  assert.ok(ResultFileSchema.safeParse(r).success);
  return r;
}

test('the memory section puts the external server’s RSS per socket beside the Node.js variants’ and the note’s claim', () => {
  const r = withPascal();
  const claims = designClaims(r);
  assert.deepEqual(
    claims.map((c) => c.id),
    ['perSocket', 'ram30k', 'queue30k', 'buffers'],
  );
  const c = claims[0]!;
  assert.match(c.quote, /^Compiled Pascal memory control is so tight that every WebSocket connection spends only a tiny fraction/);
  assert.deepEqual(c.measured, [
    "200 sockets: pascal 1,000 B · batched 15.6 KiB · per-request 19.5 KiB: pascal spends 6.3% of batched's (16× less); pascal spends 5% of per-request's (20× less).",
  ]);
  assert.match(c.caveat, /pascal is an external server .* batched, per-request are the TypeScript servers \(Node\.js/);
  const queue = claims[2]!.measured.find((l) => l.startsWith('pascal:'));
  assert.match(queue ?? '', /^pascal: the server reports no queue depth \(wami_queue_depth\), so its queue is unknown/);
  // Without an external variant, the claim is not made.
  const plain = JSON.parse(readFileSync(join(root, 'results/fixtures/result-smoke.json'), 'utf8')) as ResultFile;
  assert.deepEqual(
    designClaims(plain).map((x) => x.id),
    ['ram30k', 'queue30k', 'buffers'],
  );
});

test('the command is named: in the tables section, each run’s exact line in the runs table, and in summary.md; the shape and the skipped stage too', () => {
  const r = withPascal();
  assert.deepEqual(externalCommands(r), [
    { variant: 'pascal', command: '/opt/wami/servers/pascal/bin/wami-pascal --db {db} --port {port}', cwd: '/opt/wami', port: 'picked for {port}', env: '' },
  ]);
  const html = renderHtml(r);
  assert.ok(html.includes('<code>pascal: /opt/wami/servers/pascal/bin/wami-pascal --db {db} --port {port} (in /opt/wami; port picked for {port})</code>'));
  assert.ok(html.includes('<td class="command">/opt/wami/servers/pascal/bin/wami-pascal --db /tmp/run/pascal-s1-r1.db --port 21000</td>'));
  assert.ok(html.includes('Skipped by the preflight on this machine (optional stages, for every variant): stage 2 (20,000 sockets)'));
  const md = renderMarkdown(r);
  assert.ok(
    md.includes('External server pascal: `/opt/wami/servers/pascal/bin/wami-pascal --db {db} --port {port} (in /opt/wami; port picked for {port})`'),
    md.slice(0, 800),
  );
  assert.match(md, /⚠ Skipped by the preflight \(optional stage 2, 20,000 sockets, every variant\)/);
  const pascal = r.runs.find((x) => x.variant === 'pascal')!;
  assert.equal(shapeLabel(serverShape(pascal, 2)), '1 process (default) · 1 process');
  assert.equal(shapeLabel(serverShape({ ...pascal, variantFlags: ['--processes', '3'] }, 2), false), '3 processes');
  // CPU per delivered broadcast: 0.26 s ÷ 2,600 = 0.1 ms (100 µs)
  assert.equal(M.cpuPerDelivery.get(pascal), 0.1);
  // unknown server metrics are shown as unknown (—), not as 0, in the SQLite table
  const sqlite = html.slice(html.indexOf('id="sqlite"'), html.indexOf('id="audit"'));
  const row = sqlite.split('\n').find((l) => l.includes('<td>pascal · stage 1 (200) · #1</td>')) ?? '';
  assert.ok(row.includes('<td class="num">—</td><td class="num">—</td><td class="num">—</td><td class="num">—</td>'), row);
});
