/** Exact-number tests of the report's pure parts: statistics, formatting, histograms, downsampling. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as hdr from 'hdr-histogram-js';
import { compactJson, escapeHtml, fmtBytes, fmtInterval, fmtNum, fmtRatio, jsonForScript, sig } from '../report/format.js';
import { decodeHistogram, mergeHistograms, percentileAt, percentilePoints } from '../report/hdr.js';
import { downsample, pointsPerRun, xy } from '../report/series.js';
import { bootstrapRatio, median, medianOrNull, mulberry32, quantile, ratioVerdict, safeRatio } from '../report/stats.js';

describe('stats', () => {
  it('median and quantiles (type 7)', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([7]), 7);
    assert.equal(quantile([1, 2, 3, 4], 0.25), 1.75);
    assert.equal(quantile([1, 2, 3, 4], 0), 1);
    assert.equal(quantile([1, 2, 3, 4], 1), 4);
    assert.equal(quantile([10, 20, 30, 40, 50], 0.9), 46);
    assert.equal(quantile([1, Infinity, Infinity], 0.75), Infinity);
    assert.equal(medianOrNull([]), null);
    assert.throws(() => median([]), RangeError);
    assert.throws(() => quantile([1], 1.5), RangeError);
  });

  it('mulberry32 is deterministic and in [0, 1)', () => {
    const a = mulberry32(1);
    const b = mulberry32(1);
    const xs = [a(), a(), a()];
    assert.deepEqual(xs, [b(), b(), b()]);
    assert.equal(xs[0], 0.6270739405881613);
    for (const x of xs) assert.ok(x >= 0 && x < 1);
    assert.notEqual(mulberry32(2)(), xs[0]);
  });

  it('safeRatio treats 0/0 as no change and x/0 as infinite', () => {
    assert.equal(safeRatio(0, 0), 1);
    assert.equal(safeRatio(3, 0), Infinity);
    assert.equal(safeRatio(3, 6), 0.5);
  });

  it('bootstrapRatio: single runs have no interval', () => {
    assert.deepEqual(bootstrapRatio([10], [30]), { ratio: 3, interval: null, n: { base: 1, head: 1 } });
    assert.equal(bootstrapRatio([], [1]), null);
    assert.equal(bootstrapRatio([1], []), null);
  });

  it('bootstrapRatio: a constant side and a two-valued side give the exact extremes', () => {
    // head medians resample to 2 (p=1/4), 3 (1/2) or 4 (1/4); over base median 1 the 2.5% and
    // 97.5% quantiles of 2000 resamples are exactly 2 and 4.
    const est = bootstrapRatio([1, 1], [2, 4], { seed: 7 });
    assert.deepEqual(est, { ratio: 3, interval: { lo: 2, hi: 4, level: 0.95 }, n: { base: 2, head: 2 } });
    assert.deepEqual(bootstrapRatio([10], [20, 20, 20])?.interval, { lo: 2, hi: 2, level: 0.95 });
  });

  it('bootstrapRatio: fixed seed gives fixed numbers', () => {
    const base = [10, 11, 12, 13, 9];
    const head = [20, 22, 19, 25, 21];
    const a = bootstrapRatio(base, head, { seed: 42 });
    assert.equal(a?.ratio, 21 / 11);
    assert.deepEqual(a?.interval, { lo: 19 / 12, hi: 22 / 9, level: 0.95 });
    assert.deepEqual(bootstrapRatio(base, head, { seed: 42 }), a);
    const c = bootstrapRatio(base, head, { seed: 42, iterations: 500, level: 0.5 });
    assert.equal(c?.interval?.level, 0.5);
    assert.ok((c?.interval?.lo ?? 0) >= (a?.interval?.lo ?? 0));
  });

  it('ratioVerdict: the noise rule', () => {
    const b = 0.1;
    assert.equal(ratioVerdict({ ratio: 3, interval: null }, b), 'regressed');
    assert.equal(ratioVerdict({ ratio: 1.1, interval: null }, b), 'within noise');
    assert.equal(ratioVerdict({ ratio: 1.11, interval: null }, b), 'regressed');
    assert.equal(ratioVerdict({ ratio: 0.5, interval: null }, b), 'improved');
    assert.equal(ratioVerdict({ ratio: 1 / 1.1, interval: null }, b), 'within noise');
    // beyond the bound but the interval reaches 1: noise
    assert.equal(ratioVerdict({ ratio: 1.5, interval: { lo: 0.98, hi: 2, level: 0.95 } }, b), 'within noise');
    assert.equal(ratioVerdict({ ratio: 1.5, interval: { lo: 1.2, hi: 2, level: 0.95 } }, b), 'regressed');
    // outside the noise but within the bound: not a regression
    assert.equal(ratioVerdict({ ratio: 1.05, interval: { lo: 1.02, hi: 1.08, level: 0.95 } }, b), 'within noise');
    assert.equal(ratioVerdict({ ratio: 0.5, interval: { lo: 0.4, hi: 0.6, level: 0.95 } }, b), 'improved');
    assert.equal(ratioVerdict({ ratio: Infinity, interval: null }, b), 'regressed');
  });
});

describe('format', () => {
  it('numbers, units, ratios', () => {
    assert.equal(sig(123.456, 3), 123);
    assert.equal(sig(0.0012345, 3), 0.00123);
    assert.equal(sig(98765, 3), 98765);
    assert.equal(fmtNum(1234567), '1,234,567');
    assert.equal(fmtNum(1.23456), '1.23');
    assert.equal(fmtNum(null), '—');
    assert.equal(fmtBytes(1536), '1.5 KiB');
    assert.equal(fmtBytes(64 * 1024 * 1024), '64 MiB');
    assert.equal(fmtRatio(8.3219), '×8.32');
    assert.equal(fmtRatio(Infinity), '×∞');
    assert.equal(fmtInterval({ lo: 0.912, hi: 1.1234 }), '[0.912–1.12]');
  });

  it('escapes HTML and JSON for a script element', () => {
    assert.equal(escapeHtml(`<a href="x">&'</a>`), '&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;');
    const tricky = { s: '</script><!-- & \u2028\u2029 >' };
    const j = jsonForScript(tricky);
    assert.ok(!/[<>&\u2028\u2029]/.test(j), j);
    assert.equal(j, '{"s":"\\u003c/script\\u003e\\u003c!-- \\u0026 \\u2028\\u2029 \\u003e"}');
    assert.deepEqual(JSON.parse(j), tricky);
  });

  it('compactJson keeps short values on one line', () => {
    assert.equal(compactJson({ a: [1, 2], b: 'x' }), '{"a":[1,2],"b":"x"}');
    assert.equal(compactJson({ a: [1, 2], b: 'x'.repeat(20) }, 20), '{\n  "a": [1,2],\n  "b": "xxxxxxxxxxxxxxxxxxxx"\n}');
  });
});

describe('hdr', () => {
  const build = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });

  it('decodes, reads the 1/(1-p) distribution and merges losslessly', () => {
    const h = build();
    for (let v = 1; v <= 1000; v++) h.recordValue(v * 1000); // 1..1000 ms in µs
    const enc = hdr.encodeIntoCompressedBase64(h);
    const d = decodeHistogram(enc);
    assert.ok(d);
    assert.equal(d.totalCount, 1000);
    const pts = percentilePoints(d, { pointsPerDecade: 1 });
    // x = 1, 10, 100, 1000 (= count); values p0, p90, p99, then the max
    assert.deepEqual(
      pts.map((p) => p[0]),
      [1, 10, 100, 1000],
    );
    assert.deepEqual(
      pts.map((p) => p[1]),
      [1, 900.1, 990.2, 1000],
    );
    const m = mergeHistograms([enc, enc, 'not base64 at all']);
    assert.equal(m?.totalCount, 2000);
    assert.equal(decodeHistogram(''), null);
    assert.equal(decodeHistogram('garbage!!'), null);
    assert.deepEqual(percentilePoints(build()), []);
    assert.equal(percentileAt(1000), 99.9);
  });

  it('has a bounded number of points whatever the count', () => {
    const h = build();
    for (let i = 0; i < 2_000_000; i += 7) h.recordValueWithCount(100 + (i % 5000), 7);
    const pts = percentilePoints(h);
    assert.ok(pts.length <= 62, String(pts.length));
    assert.equal(pts[pts.length - 1]?.[0], 1e6);
  });
});

describe('series', () => {
  it('downsamples with per-field rules and keeps nulls apart', () => {
    const rows = Array.from({ length: 10 }, (_, i) => ({ t: i, rate: i, p99: i % 3 === 0 ? 100 : 1, pss: i < 5 ? null : i }));
    const d = downsample(rows, 2, { t: 'first', rate: 'mean', p99: 'max', pss: 'mean' });
    assert.deepEqual(d, [
      { t: 0, rate: 2, p99: 100, pss: null },
      { t: 5, rate: 7, p99: 100, pss: 7 },
    ]);
    assert.equal(downsample<'t'>(rows, 100, { t: 'first' }).length, 10);
    assert.deepEqual(downsample([], 10, { t: 'first' }), []);
    assert.deepEqual(xy(d, 't', 'pss'), [[5, 7]]);
    assert.equal(pointsPerRun(1), 300);
    assert.equal(pointsPerRun(30), 100);
    assert.equal(pointsPerRun(1000), 30);
  });
});
