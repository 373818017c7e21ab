import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyOverrides, BUILTIN_SCENARIOS, loadScenario, scenarioHash, validateScenario } from '../scenarios/load.js';
import { planRuns } from '../runner/plan.js';
import { CLI } from './helpers/server.js';

const base = {
  name: 'tiny',
  description: 'a test scenario',
  variants: [
    { name: 'batched', kind: 'batched' },
    { name: 'per-request', kind: 'per-request' },
  ],
  seed: { boards: 10, cardsPerBoard: 5 },
  users: { perBoard: 10, connectRatePerSec: 500 },
  load: { updatesPerUserPerMin: 6 },
  stages: [{ connections: 100, durationSec: 3 }],
};

function errorOf(raw: unknown): string {
  try {
    validateScenario(raw, 'x.json');
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail('expected a validation error');
}

test('every shipped scenario loads and validates', async () => {
  for (const name of BUILTIN_SCENARIOS) {
    const { scenario } = await loadScenario(name);
    assert.equal(scenario.name, name);
    // fleet-cost measures the fleet against the floor alone (the machine, not a design)
    if (name === 'fleet-cost')
      assert.deepEqual(
        scenario.variants.map((v) => v.kind),
        ['floor'],
      );
    else assert.ok(scenario.variants.length >= 2, `${name} compares at least two variants`);
  }
});

test('defaults are filled in', () => {
  const s = validateScenario(base, 'x.json');
  assert.equal(s.warmupSec, 5);
  assert.equal(s.repeats, 1);
  assert.equal(s.via, 'direct');
  assert.equal(s.load.arrival, 'poisson');
  assert.deepEqual(s.variants[0]!.options, {});
});

test("variant options are typed by kind, with the serve flags' bounds; older `flags` are read into options", () => {
  const one = (v: object): unknown => validateScenario({ ...base, variants: [v] }, 'x.json').variants[0];
  assert.deepEqual(one({ name: 'p', kind: 'per-request', flags: ['--workers', '3', '--tx-mode=deferred'] }), {
    name: 'p',
    kind: 'per-request',
    options: { workers: 3, txMode: 'deferred' },
  });
  assert.deepEqual(one({ name: 'b', kind: 'batched', options: { shards: 2 }, via: 'caddy' }), {
    name: 'b',
    kind: 'batched',
    options: { shards: 2 },
    via: 'caddy',
  });
  assert.match(
    errorOf({ ...base, variants: [{ name: 'b', kind: 'batched', options: { workers: 2 } }] }),
    /variants\[0\]\.options: unknown option\(s\) "workers" for the batched variant/,
  );
  assert.match(errorOf({ ...base, variants: [{ name: 'b', kind: 'batched', options: { maxQueue: 0 } }] }), /variants\[0\]\.options\.maxQueue:/);
  assert.match(
    errorOf({ ...base, variants: [{ name: 'p', kind: 'per-request', options: { retryBaseMs: 10, retryMaxMs: 5 } }] }),
    /variants\[0\]\.options: --retry-max-ms \(5\) must be >= --retry-base-ms \(10\)/,
  );
  assert.match(
    errorOf({ ...base, variants: [{ name: 'b', kind: 'batched', flags: ['--bogus', '1'] }] }),
    /variants\[0\]\.flags: "--bogus" is not a flag of the batched variant/,
  );
});

test('an unknown key is named with its path', () => {
  assert.match(errorOf({ ...base, durationMs: 5 }), /\(top level\): unknown key\(s\) "durationMs"/);
  assert.match(errorOf({ ...base, stages: [{ connections: 100, durationSec: 3, rampMs: 1 }] }), /stages\[0\]: unknown key\(s\) "rampMs"/);
});

test('a wrong unit (string with a unit instead of a number) names the field', () => {
  assert.match(errorOf({ ...base, stages: [{ connections: 100, durationSec: '30s' }] }), /stages\[0\]\.durationSec:/);
  assert.match(errorOf({ ...base, warmupSec: '5s' }), /warmupSec:/);
});

test('impossible values are refused, naming the field', () => {
  assert.match(errorOf({ ...base, load: { updatesPerUserPerMin: -1 } }), /load\.updatesPerUserPerMin:/);
  assert.match(errorOf({ ...base, users: { perBoard: 200 } }), /stages\[0\]\.connections: 100 connections is fewer than users\.perBoard \(200\)/);
  assert.match(
    errorOf({ ...base, stages: [{ connections: 500, durationSec: 3 }] }),
    /stages\[0\]\.connections: 500 connections at 10 per board need 50 boards, but seed\.boards is 10/,
  );
  assert.match(errorOf({ ...base, variants: [{ name: 'a', kind: 'sharded' }] }), /variants\[0\]\.kind:/);
  assert.match(
    errorOf({
      ...base,
      variants: [
        { name: 'a', kind: 'batched' },
        { name: 'a', kind: 'per-request' },
      ],
    }),
    /variants\[1\]\.name: duplicate variant name "a"/,
  );
  assert.match(errorOf({ ...base, repeats: 0 }), /repeats:/);
});

test('thresholds with unknown metrics are refused when the scenario loads', () => {
  assert.match(errorOf({ ...base, thresholds: ['fanout.p99 < 250'] }), /thresholds\[0\]: threshold "fanout\.p99 < 250" names an unknown metric "fanout\.p99"/);
  assert.match(errorOf({ ...base, thresholds: ['fanoutMs.p99 ~ 250'] }), /thresholds\[0\]: .*not of the form/);
  const s = validateScenario({ ...base, thresholds: ['fanoutMs.p99 < 250', 'audit.lostAcked == 0'] }, 'x.json');
  assert.equal(s.thresholds.length, 2);
});

test('overrides: --connections makes one stage and grows the boards; --variants filters; unknown variant refused', () => {
  const s = validateScenario(base, 'x.json');
  const o = applyOverrides(s, { connections: 1000, durationSec: 2, variants: ['per-request'] }, 'x.json');
  assert.deepEqual(o.stages, [{ connections: 1000, durationSec: 2 }]);
  assert.equal(o.seed.boards, 100);
  assert.deepEqual(
    o.variants.map((v) => v.name),
    ['per-request'],
  );
  assert.throws(() => applyOverrides(s, { variants: ['nope'] }, 'x.json'), /--variants names "nope", not in scenario tiny \(it has batched, per-request\)/);
  assert.notEqual(scenarioHash(s), scenarioHash(o));
  assert.equal(scenarioHash(s), scenarioHash(validateScenario(base, 'y.json')));
});

test('runs are planned repeat -> stage -> variant, so variants interleave A B A B', () => {
  const s = validateScenario(
    {
      ...base,
      repeats: 2,
      stages: [
        { connections: 100, durationSec: 1 },
        { connections: 100, durationSec: 2 },
      ],
    },
    'x',
  );
  assert.deepEqual(
    planRuns(s).map((p) => `${p.repeat}:${p.stageIndex}:${p.variant.name}`),
    ['1:0:batched', '1:0:per-request', '1:1:batched', '1:1:per-request', '2:0:batched', '2:0:per-request', '2:1:batched', '2:1:per-request'],
  );
});

test('the CLI exits 2 and names the file and the field for a bad scenario file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wami-scn-'));
  try {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ ...base, users: { perBoard: 10, connectRatePerSec: -5 } }));
    const r = spawnSync(process.execPath, [CLI, 'run', bad], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /bad\.json is invalid/);
    assert.match(r.stderr, /users\.connectRatePerSec:/);
    const garbled = join(dir, 'garbled.json');
    writeFileSync(garbled, '{ not json');
    const g = spawnSync(process.execPath, [CLI, 'run', garbled], { encoding: 'utf8' });
    assert.equal(g.status, 2);
    assert.match(g.stderr, /garbled\.json is not valid JSON/);
    const missing = spawnSync(process.execPath, [CLI, 'run', 'no-such-scenario'], { encoding: 'utf8' });
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /no scenario "no-such-scenario"/);
    const flag = spawnSync(process.execPath, [CLI, 'run', 'smoke', '--connections', 'many'], { encoding: 'utf8' });
    assert.equal(flag.status, 2);
    assert.match(flag.stderr, /--connections must be an integer, got "many"/);
    const over = spawnSync(process.execPath, [CLI, 'run', 'smoke', '--bogus'], { encoding: 'utf8' });
    assert.equal(over.status, 2);
    assert.match(over.stderr, /unknown flag --bogus/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
