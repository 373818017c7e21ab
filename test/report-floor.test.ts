/**
 * The report against the floor: each design's figures as a ratio to the floor's at the same stage,
 * the "both at the floor" sentence, and the floor kept out of the verdict's winners. On the
 * committed two-stage fixture with floor runs added (their figures set here), exact numbers and text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { ResultFile, RunRecord } from '../model/result.js';
import { computeDecision } from '../report/decision.js';
import { AT_FLOOR_RATIO, floorStages } from '../report/floor.js';
import { renderHtml } from '../report/html.js';
import { renderMarkdown } from '../report/markdown.js';
import { scrapeText } from '../report/runs.js';
import { computeVerdict } from '../report/verdict.js';

const FIXTURE = new URL('../../results/fixtures/result-stages.json', import.meta.url);

/** Floor fan-out p99 per stage and repeat (ms); ack p99 1 ms and CPU 0.5 s / 0.25 s per stage. */
const FLOOR_FANOUT = [
  [5, 4, 4.5],
  [20, 19, 21],
];

function withFloor(): ResultFile {
  const r = JSON.parse(readFileSync(FIXTURE, 'utf8')) as ResultFile;
  const floors: RunRecord[] = r.runs
    .filter((x) => x.variant === 'batched')
    .map((x) => {
      const f = structuredClone(x);
      f.variant = 'floor';
      f.variantKind = 'floor';
      f.variantFlags = [];
      f.audit = null;
      f.thresholds = [];
      f.latency.fanoutMs.p99 = FLOOR_FANOUT[x.stage.index]![x.repeat - 1]!;
      f.latency.ackMs.p99 = 1;
      f.resources.server.cpuSec = x.stage.index === 0 ? 0.5 : 0.25;
      return f;
    });
  r.runs = [...r.runs, ...floors];
  return r;
}

test('floor ratios per stage on the fixture: exact figures, the at-the-floor rule, the sentences', () => {
  const st = floorStages(withFloor());
  assert.equal(AT_FLOOR_RATIO, 1.2);
  assert.deepEqual(
    st.map((s) => ({
      connections: s.connections,
      floor: s.floor,
      atFloor: s.atFloor,
      rows: s.rows.map((r) => [r.variant, r.fanoutP99.value, r.fanoutP99.floor, r.ackP99.value, r.cpuSec.value, r.cpuSec.floor]),
    })),
    [
      {
        connections: 100,
        floor: 'floor',
        atFloor: false,
        rows: [
          ['batched', 4.951, 4.5, 101.887, 0.33, 0.5],
          ['per-request', 22.015, 4.5, 4.089, 0.66, 0.5],
        ],
      },
      {
        connections: 200,
        floor: 'floor',
        atFloor: true,
        rows: [
          ['batched', 5.383, 20, 100.287, 0.58, 0.25],
          ['per-request', 22.895, 20, 6.119, 0.94, 0.25],
        ],
      },
    ],
  );
  // ratios: value / floor's median
  assert.equal(st[0]!.rows[0]!.fanoutP99.ratio, 4.951 / 4.5);
  assert.equal(st[0]!.rows[1]!.fanoutP99.ratio, 22.015 / 4.5);
  assert.equal(st[1]!.rows[1]!.fanoutP99.ratio, 22.895 / 20);
  assert.equal(st[1]!.rows[0]!.cpuSec.ratio, 0.58 / 0.25);
  assert.equal(
    st[0]!.sentence,
    'At 100 sockets against the floor (fan-out p99 4.5 ms, ack p99 1 ms, server CPU 0.5 s): batched fan-out p99 = 1.1× floor, ack p99 = 102× floor, server CPU = 0.66× floor; ' +
      'per-request fan-out p99 = 4.89× floor, ack p99 = 4.09× floor, server CPU = 1.32× floor. Above the floor on fan-out p99 (more than 1.2×): per-request; there the design costs more than the machine does.',
  );
  assert.equal(
    st[1]!.sentence,
    'At 200 sockets against the floor (fan-out p99 20 ms, ack p99 1 ms, server CPU 0.25 s): batched fan-out p99 = 0.269× floor, ack p99 = 100× floor, server CPU = 2.32× floor; ' +
      'per-request fan-out p99 = 1.14× floor, ack p99 = 6.12× floor, server CPU = 3.76× floor. Both designs sit at the floor on fan-out p99 (within 1.2×): at this stage the machine decides, not the design.',
  );
});

test('the floor is never a winner: the verdict and the decision compare the designs, the decision carries the floor lines', () => {
  const r = withFloor();
  const v = computeVerdict(r);
  for (const s of v.byStage)
    for (const c of s.criteria)
      assert.deepEqual(
        c.candidates.map((x) => x.variant),
        ['batched', 'per-request'],
      );
  assert.equal(v.warnings.filter((w) => w.message.includes('floor')).length, 0, 'no "no audit" warning for the floor');
  const d = computeDecision(r, v);
  assert.deepEqual(
    d.designs.map((x) => x.variant),
    ['batched', 'per-request'],
  );
  assert.deepEqual(
    d.sections.filter((s) => s.section === 'floor').map((s) => s.text),
    floorStages(r).map((s) => s.sentence),
  );
  const md = renderMarkdown(r);
  assert.match(md, /Both designs sit at the floor on fan-out p99/);
  const html = renderHtml(r);
  assert.match(html, /<section[^>]*id="floor"/);
  assert.match(html, /href="#floor"/);
  // A result without a floor has no floor section.
  const plain = JSON.parse(readFileSync(FIXTURE, 'utf8')) as ResultFile;
  assert.deepEqual(floorStages(plain), []);
  assert.doesNotMatch(renderHtml(plain), /id="floor"/);
});

test('the report states the scrape interval: one for all, or per variant where they differ', () => {
  const r = withFloor();
  assert.equal(
    scrapeText(r),
    "The runner scraped each server's /metrics every 1 s (server metrics, event-loop delay and the server's series come from these scrapes).",
  );
  for (const x of r.runs) x.scrapeIntervalSec = x.variant === 'batched' ? 5 : x.variant === 'floor' ? 0 : 1;
  assert.equal(
    scrapeText(r),
    "The runner scraped /metrics: batched every 5 s, per-request every 1 s, floor never (server metrics, event-loop delay and the server's series come from these scrapes).",
  );
  assert.match(renderMarkdown(r), /batched every 5 s, per-request every 1 s, floor never/);
});
