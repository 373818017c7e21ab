/**
 * The verdict's rules and the decision section, as pure functions over a hand-built result with
 * hand-written expectations: a design that refused or lost any update never wins a latency or
 * memory criterion and the headline says so with the count and the share; every run with errors is
 * a warning; each design gets a paragraph from its figures and its mechanism; the figure that
 * decided is named; what one stage cannot say about other loads is said.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResultFile, RunRecord } from '../model/result.js';
import { computeDecision, decideBy, SECTION_VERDICTS } from '../report/decision.js';
import { renderHtml } from '../report/html.js';
import { renderMarkdown } from '../report/markdown.js';
import { computeVerdict, fmtPct, integrityOf, integrityProblem, type Integrity } from '../report/verdict.js';
import { cleanAudit } from './helpers/audit-db.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const fixture = JSON.parse(readFileSync(join(root, 'results/fixtures/result-smoke.json'), 'utf8')) as ResultFile;

interface Spec {
  variant: string;
  kind: 'batched' | 'per-request';
  flags: string[];
  fanout: number;
  ack: number;
  ram: number;
  cpu: number;
  refused?: Record<string, number>;
  commitP99?: number;
  busy?: [hits: number, retries: number, exhausted: number];
}

/** One run at 1,000 sockets with exactly these figures; everything else clean. */
function run(s: Spec): RunRecord {
  const r = structuredClone(fixture.runs[0]!);
  const refused = Object.values(s.refused ?? {}).reduce((a, b) => a + b, 0);
  Object.assign(r, {
    variant: s.variant,
    variantKind: s.kind,
    variantFlags: s.flags,
    stage: { index: 0, connections: 1000, durationSec: 30 },
    repeat: 1,
    status: 'ok',
    reasons: [],
    thresholds: [],
  });
  r.window = { ...r.window, warmupSec: 0, durationSec: 30 };
  r.sockets = { asked: 1000, reached: 1000, failed: 0, failuresByKind: {}, closedEarly: 0 };
  r.latency.fanoutMs.p99 = s.fanout;
  r.latency.ackMs.p99 = s.ack;
  r.resources.server.rssBytesPerSocket = s.ram;
  r.resources.server.cpuSec = s.cpu;
  r.updates = { sent: 600, acked: 600 - refused, errored: refused, unanswered: 0 };
  r.delivery = { expected: 57_000, received: 57_000, missing: 0, duplicate: 0, outOfOrder: 0, phantom: 0 };
  r.errors = { total: refused, byCode: { ...(s.refused ?? {}) }, byKind: {} };
  r.audit = cleanAudit(600 - refused);
  r.server.commitMs = s.commitP99 === undefined ? null : { count: 300, mean: 1, p50: 1, p99: s.commitP99 };
  [r.server.busyHits, r.server.retries, r.server.exhausted] = s.busy ?? [0, 0, 0];
  return r;
}

function result(specs: Spec[]): ResultFile {
  const r = structuredClone(fixture);
  r.runs = specs.map(run);
  r.status = 'ok';
  r.reasons = [];
  r.environment.cpuCount = 2;
  delete r.capacity;
  return r;
}

const BATCHED: Spec = { variant: 'batched', kind: 'batched', flags: [], fanout: 10, ack: 105, ram: 17_000, cpu: 4, commitP99: 2.5 };
const PER_REQUEST: Spec = { variant: 'per-request', kind: 'per-request', flags: ['--workers', '2'], fanout: 40, ack: 8, ram: 20_000, cpu: 6, busy: [3, 3, 0] };
const NO_RETRY: Spec = {
  variant: 'per-request-no-retry',
  kind: 'per-request',
  flags: ['--workers', '2', '--tx-mode', 'deferred', '--busy-timeout-ms', '5'],
  fanout: 30,
  ack: 6,
  ram: 18_000,
  cpu: 5,
  refused: { BUSY_EXHAUSTED: 6 },
  busy: [12, 0, 6],
};

describe('integrity: what a design refused or lost, in one line', () => {
  const zero: Integrity = {
    sent: 600,
    refused: 0,
    refusedByCode: {},
    unanswered: 0,
    otherErrors: {},
    missing: 0,
    duplicate: 0,
    outOfOrder: 0,
    phantom: 0,
    audit: 0,
  };

  it('nothing refused or lost: null', () => {
    assert.equal(integrityProblem(zero), null);
  });

  it('every kind of loss, refusals first with their share', () => {
    assert.equal(
      integrityProblem({
        ...zero,
        refused: 6,
        refusedByCode: { OVERLOADED: 2, BUSY_EXHAUSTED: 4 },
        unanswered: 1,
        missing: 3,
        duplicate: 1,
        outOfOrder: 2,
        phantom: 1,
        audit: 2,
        otherErrors: { closed: 2 },
      }),
      'refused 6 updates (1 %): BUSY_EXHAUSTED 4, OVERLOADED 2; left 1 update unanswered (0.17 %); lost 3 broadcasts; 1 duplicate broadcast; ' +
        '2 broadcasts out of order; 1 phantom broadcast; 2 audit findings; 2 other errors (closed 2)',
    );
  });

  it('shares: two significant digits', () => {
    assert.equal(fmtPct(6, 600), '1 %');
    assert.equal(fmtPct(582, 600), '97 %');
    assert.equal(fmtPct(1, 600), '0.17 %');
    assert.equal(fmtPct(1, 0), '— %');
  });

  it('sums a set of runs, audit findings included', () => {
    const a = run(NO_RETRY);
    const b = run(NO_RETRY);
    b.audit!.lostAcked = 2;
    b.audit!.seqGaps = 1;
    b.delivery.missing = 4;
    const i = integrityOf([a, b]);
    assert.deepEqual(i, { ...zero, sent: 1200, refused: 12, refusedByCode: { BUSY_EXHAUSTED: 12 }, missing: 4, audit: 3 });
  });
});

describe('the verdict: a design that refused updates never wins latency or memory', () => {
  const r = result([BATCHED, PER_REQUEST, NO_RETRY]);
  const v = computeVerdict(r);
  const crit = (id: string) => v.criteria.find((c) => c.id === id)!;
  const refusal = 'it refused 6 updates (1 %): BUSY_EXHAUSTED 6';

  it('ack p99: the refusing design is fastest but excluded; the best of the others wins', () => {
    const c = crit('ackP99');
    assert.equal(c.winner, 'per-request');
    assert.equal(c.text, `per-request: 8 ms vs batched 105 ms (batched ×13.1); per-request-no-retry's 6 ms does not count: ${refusal}`);
    assert.deepEqual(
      c.candidates.map((x) => [x.variant, x.value, x.excluded ?? null]),
      [
        ['batched', 105, null],
        ['per-request', 8, null],
        ['per-request-no-retry', 6, 'refused 6 updates (1 %): BUSY_EXHAUSTED 6'],
      ],
    );
  });

  it('fan-out p99 and RAM per socket likewise', () => {
    assert.equal(crit('fanoutP99').winner, 'batched');
    assert.equal(crit('fanoutP99').text, `batched: 10 ms vs per-request 40 ms (per-request ×4); per-request-no-retry's 30 ms does not count: ${refusal}`);
    assert.equal(crit('ramPerSocket').winner, 'batched');
    assert.equal(
      crit('ramPerSocket').text,
      `batched: 16.6 KiB vs per-request 19.5 KiB (per-request ×1.18); per-request-no-retry's 17.6 KiB does not count: ${refusal}`,
    );
  });

  it('errors: the two that refused nothing tie, the third is named with its count', () => {
    const c = crit('errors');
    assert.equal(c.winner, null);
    assert.deepEqual(c.tied, ['batched', 'per-request']);
    assert.equal(c.text, 'tie: none at all (batched, per-request); per-request-no-retry 6');
  });

  it('a run with errors is a warning, so the page can never say "no warnings"', () => {
    const w = v.warnings.filter((x) => x.kind === 'errors');
    assert.deepEqual(
      w.map((x) => [x.severity, x.message]),
      [['error', 'per-request-no-retry · stage 1 · 1,000 sockets · repeat 1: 6 errors: refused 6 updates (1 %): BUSY_EXHAUSTED 6.']],
    );
  });

  it('when only one design did all its work, it wins by default and the text says why', () => {
    const two = computeVerdict(result([BATCHED, NO_RETRY]));
    const ack = two.criteria.find((c) => c.id === 'ackP99')!;
    assert.equal(ack.winner, 'batched');
    assert.equal(ack.text, `batched: 105 ms (per-request-no-retry's 6 ms does not count: ${refusal})`);
  });

  it('when every design refused updates, nobody wins latency or memory', () => {
    const both = computeVerdict(result([{ ...BATCHED, refused: { OVERLOADED: 3 } }, NO_RETRY]));
    const ack = both.criteria.find((c) => c.id === 'ackP99')!;
    assert.equal(ack.winner, null);
    assert.match(
      ack.text,
      /^no comparison \(every variant refused or lost updates\): batched's 105 ms does not count: it refused 3 updates \(0\.5 %\): OVERLOADED 3; /,
    );
  });
});

describe('the decision section', () => {
  const r = result([BATCHED, PER_REQUEST, NO_RETRY]);
  const v = computeVerdict(r);
  const d = computeDecision(r, v);

  it('the headline names every design that refused or lost updates, count and share in the same line', () => {
    assert.deepEqual(d.headline, ['At 1,000 sockets per-request-no-retry refused 6 updates (1 %): BUSY_EXHAUSTED 6; it wins no latency or memory criterion.']);
  });

  it('names the pick and the figure that decided it: errors first, then fan-out p99, ack p99, RAM per socket', () => {
    assert.equal(
      d.decidedBy,
      "At 1,000 sockets: batched, decided by fan-out p99 — batched: 10 ms vs per-request 40 ms (per-request ×4); per-request-no-retry's 30 ms does not count: " +
        'it refused 6 updates (1 %): BUSY_EXHAUSTED 6. It also leads on RAM per socket. per-request leads on ack p99.',
    );
    // errors decide first when one design refused and the other did not
    const two = computeVerdict(result([BATCHED, NO_RETRY]));
    assert.equal(
      decideBy(two),
      'At 1,000 sockets: batched, decided by errors — batched: 0 vs per-request-no-retry 6. It also leads on fan-out p99, ack p99 and RAM per socket.',
    );
  });

  it('one paragraph per design: figures, the mechanism with its own option values, where it stands', () => {
    assert.deepEqual(
      d.designs.map((p) => p.head),
      ['batched [1 shard (default)]', 'per-request [2 workers]', 'per-request-no-retry [per-request, 2 workers]'],
    );
    assert.equal(
      d.designs[0]!.body,
      'Fan-out p99 10 ms, ack p99 105 ms, RAM per socket 16.6 KiB, server CPU 4 s. ' +
        "Its ack waits for the writer's next commit, by construction: ack p99 105 ms ≈ the 100 ms flush interval + commit p99 2.5 ms + queueing, " +
        'tunable with --flush-interval-ms (shorter: smaller, more frequent transactions). ' +
        'Broadcasts go from RAM before the commit, so fan-out (p99 10 ms) does not wait for SQLite. ' +
        "At this load it is best on fan-out p99 and RAM per socket; tied on errors; behind on ack p99 (×13.1 per-request's).",
    );
    assert.equal(
      d.designs[1]!.body,
      'Fan-out p99 40 ms, ack p99 8 ms, RAM per socket 19.5 KiB, server CPU 6 s. ' +
        'Each update is its own transaction, acked once committed: ack p99 8 ms (SQLITE_BUSY retried up to 20 times within 2,000 ms; BUSY hits 3, retries 3, exhausted 0). ' +
        'Members on the other worker learn of an update only by polling SQLite every 20 ms (--poll-ms), so a broadcast can wait up to one poll period: fan-out p99 40 ms. ' +
        "At this load it is best on ack p99; tied on errors; behind on fan-out p99 (×4 batched's), RAM per socket (×1.18 batched's).",
    );
    assert.equal(
      d.designs[2]!.body,
      'Refused 6 updates (1 %): BUSY_EXHAUSTED 6, so it wins no latency or memory criterion. ' +
        'Fan-out p99 30 ms, ack p99 6 ms, RAM per socket 17.6 KiB, server CPU 5 s. ' +
        "Each update is its own transaction, acked once committed: ack p99 6 ms (no app retry: the Redbean/Fullmoon baseline, deferred transactions, SQLite's busy_timeout 5 ms; " +
        'BUSY hits 12, retries 0, exhausted 6). ' +
        'Members on the other worker learn of an update only by polling SQLite every 20 ms (--poll-ms), so a broadcast can wait up to one poll period: fan-out p99 30 ms. ' +
        'At this load it is behind on errors (6 vs 0); excluded from fan-out p99, ack p99 and RAM per socket.',
    );
    assert.equal(d.designs[2]!.problem, 'refused 6 updates (1 %): BUSY_EXHAUSTED 6');
  });

  it('one stage: says what it cannot say, and the straight lines to 30,000 sockets as such', () => {
    assert.deepEqual(d.otherLoads, [
      'One stage (1,000 sockets) says nothing measured about other loads. Straight lines to 30,000 sockets, not measurements: ' +
        'server RSS growth batched 486 MiB (16.6 KiB per socket), per-request 572 MiB (19.5 KiB per socket), per-request-no-retry 515 MiB (17.6 KiB per socket); ' +
        'at the same rate per user, 57,000 broadcasts/s instead of 1,900. Run ramp-30k (stages up to 30,000) or wami-bench capacity to measure how each design scales.',
    ]);
  });

  it('stages: the trends from the first to the last stage, and where a criterion changes hands', () => {
    const big = result([
      { ...BATCHED, fanout: 20, ack: 110, ram: 16_000 },
      { ...PER_REQUEST, fanout: 15, ack: 9, ram: 21_000 },
    ]);
    for (const x of big.runs) x.stage = { index: 1, connections: 5000, durationSec: 30 };
    const two = result([BATCHED, PER_REQUEST]);
    two.runs.push(...big.runs);
    const dv = computeVerdict(two);
    assert.deepEqual(computeDecision(two, dv).otherLoads, [
      'Fan-out p99: batched 10 ms at 1,000 → 20 ms at 5,000; per-request 40 ms at 1,000 → 15 ms at 5,000.',
      'Ack p99: batched 105 ms at 1,000 → 110 ms at 5,000; per-request 8 ms at 1,000 → 9 ms at 5,000.',
      'RAM per socket: batched 16.6 KiB at 1,000 → 15.6 KiB at 5,000; per-request 19.5 KiB at 1,000 → 20.5 KiB at 5,000.',
      'Fan-out p99 changes hands: batched at 1,000, per-request at 5,000.',
    ]);
  });

  it('sections contribute their own verdict lines (the floor and the capacity search here)', () => {
    assert.deepEqual(
      SECTION_VERDICTS.map((s) => s.section),
      ['floor', 'capacity'],
    );
    assert.deepEqual(d.sections, []);
  });

  it('comes first in summary.md and report.html, the refusal in its headline', () => {
    const md = renderMarkdown(r);
    const at = (s: string) => md.indexOf(s);
    assert.ok(at('### Decision at 1,000 sockets') > 0 && at('### Decision at 1,000 sockets') < at('### Verdict at'), 'decision before the verdict');
    assert.ok(md.includes('- ✖ **At 1,000 sockets per-request-no-retry refused 6 updates (1 %): BUSY_EXHAUSTED 6; it wins no latency or memory criterion.**'));
    assert.ok(md.includes(`- **batched [1 shard (default)]**: ${d.designs[0]!.body}`));
    assert.doesNotMatch(md, /No warnings/);
    const html = renderHtml(r);
    const first = /<section id="([\w-]+)"/.exec(html)?.[1];
    assert.equal(first, 'decision');
    assert.match(html, /<section id="decision" class="has-errors"><h2>Decision at 1,000 sockets<\/h2>/);
  });
});
