/**
 * Golden results: results/fixtures/golden/result.json and fleet.json were written by hand with
 * round numbers (results/fixtures/golden/README.md says what each design got wrong), and every
 * expected value below was worked out by hand from the rules in report/README.md, not computed with
 * the code under test: the verdict, the decision, the warnings, summary.md, report.html, compare,
 * the exports and the fleet's thresholds.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FleetResultSchema, type FleetResult } from '../model/fleet-result.js';
import type { ResultFile } from '../model/result.js';
import { compareResults } from '../report/compare.js';
import { computeDecision } from '../report/decision.js';
import { toBencherBmf, toGithubActionBenchmark } from '../report/exports.js';
import { renderHtml } from '../report/html.js';
import { validateResult } from '../report/load.js';
import { renderMarkdown } from '../report/markdown.js';
import { computeVerdict } from '../report/verdict.js';
import { evaluateFleetThresholds, fleetThresholds, thresholdReason } from '../scenarios/thresholds.js';

const dir = fileURLToPath(new URL('../../results/fixtures/golden/', import.meta.url));
const golden = (): ResultFile => validateResult(JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')));
const fleet = (): FleetResult => FleetResultSchema.parse(JSON.parse(readFileSync(join(dir, 'fleet.json'), 'utf8')));

const REFUSED = 'refused 6 updates (0.83 %): BUSY_EXHAUSTED 6';
const LOST = 'lost 12 broadcasts';

describe('golden result: the verdict', () => {
  const v = computeVerdict(golden());
  const byId = Object.fromEntries(v.criteria.map((c) => [c.id, c]));

  it('is judged at the one stage, 100 sockets', () => {
    assert.deepEqual(v.headline, { index: 0, connections: 100 });
  });

  it('fan-out p99: batched 20 ms wins over pascal 25 ms; the faster per-request (refused) and sharded (lost broadcasts) do not count', () => {
    const c = byId.fanoutP99!;
    assert.equal(c.winner, 'batched');
    assert.equal(c.runnerUp, 'pascal');
    assert.equal(
      c.text,
      `batched: 20 ms vs pascal 25 ms (pascal ×1.25); per-request's 12 ms does not count: it ${REFUSED}; sharded's 15 ms does not count: it ${LOST}`,
    );
    assert.deepEqual(
      c.candidates.map((x) => [x.variant, x.value, x.valid, x.total, x.excluded ?? null]),
      [
        ['batched', 20, 1, 1, null],
        ['per-request', 12, 1, 1, REFUSED],
        ['sharded', 15, 1, 1, LOST],
        // status ok, audit failed: not a valid run, so no figure at all
        ['per-request-4w', null, 0, 1, null],
        ['pascal', 25, 1, 1, null],
      ],
    );
  });

  it('ack p99: pascal 105 ms and batched 110 ms tie (×1.05 is inside the 5 % band); per-request 8 ms and sharded 100 ms do not count', () => {
    const c = byId.ackP99!;
    assert.equal(c.winner, null);
    assert.deepEqual(c.tied, ['pascal', 'batched']);
    assert.equal(
      c.text,
      `tie within noise: pascal 105 ms vs batched 110 ms (×1.05); per-request's 8 ms does not count: it ${REFUSED}; sharded's 100 ms does not count: it ${LOST}`,
    );
  });

  it('RAM per socket: pascal 1 KiB wins, 40 times less than batched', () => {
    const c = byId.ramPerSocket!;
    assert.equal(c.winner, 'pascal');
    assert.equal(
      c.text,
      `pascal: 1 KiB vs batched 40 KiB (batched ×40); per-request's 20 KiB does not count: it ${REFUSED}; sharded's 30 KiB does not count: it ${LOST}`,
    );
  });

  it('errors: the three valid designs with none tie; per-request is named with its 6', () => {
    const c = byId.errors!;
    assert.equal(c.winner, null);
    assert.deepEqual(c.tied, ['batched', 'sharded', 'pascal']);
    assert.equal(c.text, 'tie: none at all (batched, sharded, pascal); per-request 6');
  });

  it('warns, in run order: the refusals (error), the failed threshold, the lost broadcasts, the ok run that failed its audit (error, twice)', () => {
    assert.deepEqual(
      v.warnings.map((w) => [w.severity, w.kind, w.message]),
      [
        ['warn', 'threshold', 'per-request · stage 1 · 100 sockets · repeat 1: threshold failed: errors.total == 0 (actual 6).'],
        ['error', 'errors', `per-request · stage 1 · 100 sockets · repeat 1: 6 errors: ${REFUSED}.`],
        ['warn', 'delivery', 'sharded · stage 1 · 100 sockets · repeat 1: broadcasts 12 missing (of 6480 expected).'],
        ['error', 'run', 'per-request-4w · stage 1 · 100 sockets · repeat 1 failed its audit. Excluded from medians, ratios and winners.'],
        [
          'error',
          'audit',
          'per-request-4w · stage 1 · 100 sockets · repeat 1: audit FAILED: 2 acked but not stored. e.g. lostAcked: user 7 msg g-1 acked seq 3, not stored',
        ],
      ],
    );
  });
});

describe('golden result: the decision', () => {
  const r = golden();
  const d = computeDecision(r, computeVerdict(r));

  it('the headline names every design that refused or lost something, with the count and the share', () => {
    assert.deepEqual(d.headline, [
      `At 100 sockets per-request ${REFUSED}; it wins no latency or memory criterion.`,
      `At 100 sockets sharded ${LOST}; it wins no latency or memory criterion.`,
      'At 100 sockets per-request-4w 2 audit findings; it wins no latency or memory criterion.',
    ]);
  });

  it('errors tie, so fan-out p99 decides: batched; pascal leads on RAM per socket', () => {
    assert.equal(
      d.decidedBy,
      `At 100 sockets: batched, decided by fan-out p99 — batched: 20 ms vs pascal 25 ms (pascal ×1.25); per-request's 12 ms does not count: it ${REFUSED}; sharded's 15 ms does not count: it ${LOST}. pascal leads on RAM per socket.`,
    );
  });

  it('the design with no valid run says why: its audit failed, though its status was ok', () => {
    const p = d.designs.find((x) => x.variant === 'per-request-4w')!;
    assert.equal(
      p.body,
      'no valid run at 100 sockets (audit failed), so its figures count for nothing here. 2 audit findings, so it wins no latency or memory criterion.',
    );
  });

  it('the external server with no scrape: its figures from the fleet and /proc, no server metric invented', () => {
    const p = d.designs.find((x) => x.variant === 'pascal')!;
    assert.equal(
      p.text,
      "pascal [external, 1 process (default)]: Fan-out p99 25 ms, ack p99 105 ms, RAM per socket 1 KiB, server CPU 1 s. Fan-out p99 25 ms, ack p99 105 ms. At this load it is best on RAM per socket; tied on ack p99 and errors; behind on fan-out p99 (×1.25 batched's).",
    );
  });

  it('one stage: straight lines to 30,000 sockets, labelled as such', () => {
    assert.deepEqual(d.otherLoads, [
      'One stage (100 sockets) says nothing measured about other loads. Straight lines to 30,000 sockets, not measurements: server RSS growth batched 1.14 GiB (40 KiB per socket), per-request 586 MiB (20 KiB per socket), sharded 879 MiB (30 KiB per socket), pascal 29.3 MiB (1 KiB per socket); at the same rate per user, 162,000 broadcasts/s instead of 540. Run ramp-30k (stages up to 30,000) or wami-bench capacity to measure how each design scales.',
    ]);
  });
});

describe('golden result: summary.md and report.html', () => {
  const r = golden();
  const md = renderMarkdown(r);
  const html = renderHtml(r);

  it('summary.md: the decision first, then the verdict; warnings counted', () => {
    assert.ok(md.indexOf('### Decision at 100 sockets') < md.indexOf('### Verdict'), 'decision before verdict');
    assert.match(md, /^- ✖ \*\*At 100 sockets per-request refused 6 updates \(0.83 %\): BUSY_EXHAUSTED 6; it wins no latency or memory criterion\.\*\*$/m);
    assert.match(md, /^### Warnings \(5\)$/m);
    assert.match(md, /^- ✖ per-request-4w · stage 1 · 100 sockets · repeat 1 failed its audit\. Excluded from medians, ratios and winners\.$/m);
    assert.match(md, /^- ✖ per-request · stage 1 · 100 sockets · repeat 1: 6 errors: refused 6 updates \(0.83 %\): BUSY_EXHAUSTED 6\.$/m);
  });

  it('summary.md table: the figures as written in the fixture, the audit-failed run marked, unknown server metrics as —', () => {
    const table = md.slice(md.indexOf('### stage 1 · 100 sockets'));
    const row = (label: string): string => table.split('\n').find((l) => l.startsWith(`| ${label} |`)) ?? '';
    assert.equal(
      row('fan-out p99'),
      '| fan-out p99 | 20 ms | 12 ms | 15 ms | 9 ms ⚠ audit failed | 25 ms | ×0.6 ✅ | ×0.75 ✅ | n/a (no valid runs) | ×1.25 🔻 |',
    );
    assert.equal(row('errors'), '| errors | 0 | 6 | 0 | 0 ⚠ audit failed | 0 | ×∞ 🔻 | ×1 | n/a (no valid runs) | ×1 |');
    assert.equal(
      row('RAM per socket'),
      '| RAM per socket | 40 KiB | 20 KiB | 30 KiB | 25 KiB ⚠ audit failed | 1 KiB | ×0.5 ✅ | ×0.75 ✅ | n/a (no valid runs) | ×0.025 ✅ |',
    );
    assert.equal(row('runs'), '| runs | ok | ok | ok | audit failed 1/1 (excluded) | ok | single run | single run | single run | single run |');
    assert.equal(
      row('broadcasts delivered'),
      '| broadcasts delivered | 540/s | 536/s | 539/s | 540/s ⚠ audit failed | 540/s | ×0.992 | ×0.998 | n/a (no valid runs) | ×1 |',
    );
    // the external server exposes no /metrics: its event-loop delay is unknown (—), not 0
    assert.equal(
      row('server event-loop delay p99'),
      '| server event-loop delay p99 | 3 ms | 3 ms | 3 ms | 3 ms ⚠ audit failed | — | ×1 | ×1 | n/a (no valid runs) | n/a (no valid runs) |',
    );
  });

  it('report.html: the warnings, the no-scrape server as unknown, the audit table with the failure', () => {
    assert.match(html, /per-request-4w · stage 1 · 100 sockets · repeat 1 failed its audit/);
    assert.match(html, /6 errors: refused 6 updates \(0.83 %\): BUSY_EXHAUSTED 6/);
    assert.match(html, /broadcasts 12 missing \(of 6480 expected\)/);
    assert.doesNotMatch(html, /No warnings/);
    assert.match(html, /\/opt\/wami-pascal --db \/tmp\/golden\/pascal\.db --port 10001/);
  });
});

describe('golden result: compare', () => {
  it('batched fan-out p99 ten times BASE regresses; the audit-failed design is inconclusive on every metric; the rest within noise', () => {
    const base = golden();
    const head = golden();
    head.runId = 'golden-head';
    head.runs[0]!.latency.fanoutMs.p99 = 200;
    const c = compareResults(base, head, { noise: { all: {} } });
    assert.equal(c.rows.length, 35, '5 designs × 7 gate metrics');
    assert.deepEqual(c.counts, { improved: 0, regressed: 1, 'within noise': 27, inconclusive: 7 });
    const reg = c.regressions[0]!;
    assert.deepEqual([reg.variant, reg.metric.id, reg.ratio, reg.note], ['batched', 'fanout.p99Ms', 10, 'single run per side, no noise band']);
    const inc = c.rows.filter((x) => x.verdict === 'inconclusive');
    assert.deepEqual([...new Set(inc.map((x) => x.variant))], ['per-request-4w']);
    assert.deepEqual([...new Set(inc.map((x) => x.note))], ['BASE has no valid run (1 invalid or errored)']);
    assert.deepEqual(c.refusals, []);
  });
});

describe('golden result: exports', () => {
  it('github-action-benchmark: one entry per valid design and gate metric, the figure as written', () => {
    const e = toGithubActionBenchmark(golden());
    assert.equal(e.length, 28, '4 designs with a valid run × 7 gate metrics; per-request-4w has none');
    assert.deepEqual(e[0], {
      name: 'golden · batched · 100 sockets · fan-out p99',
      unit: 'ms',
      value: 20,
      extra: 'median of 1 valid run of 1; run golden-20260102-030405; commit 0123456789abcdef0123456789abcdef01234567',
    });
    assert.deepEqual(
      e.filter((x) => x.name.startsWith('golden · pascal')).map((x) => [x.name.split(' · ')[3], x.value, x.unit]),
      [
        ['fan-out p99', 25, 'ms'],
        ['fan-out p50', 6, 'ms'],
        ['ack p99', 105, 'ms'],
        ['ack p50', 52, 'ms'],
        ['RAM per socket', 1024, 'bytes'],
        ['server CPU', 1, 's'],
        ['errors', 0, 'count'],
      ],
    );
  });

  it('Bencher BMF: per design and stage, the measures with their values', () => {
    const b = toBencherBmf(golden());
    assert.deepEqual(Object.keys(b), [
      'golden/batched/100 sockets',
      'golden/per-request/100 sockets',
      'golden/sharded/100 sockets',
      'golden/pascal/100 sockets',
    ]);
    assert.deepEqual(b['golden/per-request/100 sockets']!['errors-total'], { value: 6 });
    assert.deepEqual(b['golden/batched/100 sockets']!['fanout-p99-ms'], { value: 20 });
  });
});

describe('golden fleet result: the default thresholds fail on each loss, with the figures as written', () => {
  it('refused, unanswered and missing each fail; duplicates, phantoms and reordering pass', () => {
    const out = evaluateFleetThresholds(fleet(), fleetThresholds([]));
    assert.deepEqual(
      out.map((t) => [t.expr, t.actual, t.pass]),
      [
        ['delivery.missing == 0', 12, false],
        ['delivery.duplicate == 0', 0, true],
        ['delivery.phantom == 0', 0, true],
        ['delivery.outOfOrder == 0', 0, true],
        ['errors.total == 0', 6, false],
        ['updates.unanswered == 0', 2, false],
      ],
    );
    assert.deepEqual(out.filter((t) => !t.pass).map(thresholdReason), [
      'threshold failed: delivery.missing == 0 (actual 12)',
      'threshold failed: errors.total == 0 (actual 6)',
      'threshold failed: updates.unanswered == 0 (actual 2)',
    ]);
  });
});
