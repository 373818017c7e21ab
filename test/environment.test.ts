import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { captureEnvironment, findProjectRoot, gitState, packageVersions, parseFdLimits, parsePortRange, parsePrettyName } from '../runner/environment.js';

describe('environment parsers (pure)', () => {
  test('fd limits from /proc/self/limits', () => {
    const text = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 20000                files
Max locked memory         8388608              8388608              bytes
`;
    assert.deepEqual(parseFdLimits(text), { soft: 1024, hard: 20000 });
    assert.deepEqual(parseFdLimits('Max open files            unlimited            unlimited            files\n'), { soft: null, hard: null });
    assert.deepEqual(parseFdLimits(''), { soft: null, hard: null });
  });
  test('port range and PRETTY_NAME', () => {
    assert.deepEqual(parsePortRange('32768\t60999\n'), [32768, 60999]);
    assert.equal(parsePortRange('nonsense'), null);
    assert.equal(parsePrettyName('NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'), 'Debian GNU/Linux 12 (bookworm)');
    assert.equal(parsePrettyName('ID=x\n'), null);
  });
});

describe('captureEnvironment', () => {
  test('every field present and typed', () => {
    const env = captureEnvironment({ serverNodeFlags: ['--max-semi-space-size=64'], fleetNodeFlags: [], pinned: false });
    assert.equal(typeof env.cpuModel, 'string');
    assert.ok(env.cpuModel.length > 0);
    assert.ok(Number.isInteger(env.cpuCount) && env.cpuCount >= 1);
    assert.ok(env.memTotalBytes > 0);
    assert.match(env.kernel, /\d/);
    assert.match(env.os, /^Linux/);
    assert.equal(env.node, process.version);
    assert.match(env.sqlite, /^3\.\d+\.\d+$/);
    for (const p of ['wami-bench', 'ws', 'better-sqlite3', 'prom-client', 'hdr-histogram-js', 'typescript']) {
      assert.match(env.packages[p] ?? '', /^\d+\.\d+\.\d+/, p);
    }
    // This checkout is a git repository.
    assert.match(env.git.commit ?? '', /^[0-9a-f]{40}$/);
    assert.equal(typeof env.git.dirty, 'boolean');
    assert.ok(env.fdLimit.soft === null || Number.isInteger(env.fdLimit.soft));
    assert.ok(env.fdLimit.hard === null || Number.isInteger(env.fdLimit.hard));
    assert.ok(env.fdLimit.soft !== null, 'the soft limit is readable on Linux');
    assert.ok(env.ephemeralPortRange === null || (env.ephemeralPortRange[0] > 0 && env.ephemeralPortRange[1] >= env.ephemeralPortRange[0]));
    assert.deepEqual(env.serverNodeFlags, ['--max-semi-space-size=64']);
    assert.deepEqual(env.fleetNodeFlags, []);
    assert.equal(env.pinned, false);
    assert.ok(env.hostname.length > 0);
    assert.ok(!Number.isNaN(Date.parse(env.startedAtIso)));
    assert.doesNotThrow(() => JSON.stringify(env));
  });

  test('outside a git repository and without node_modules: nulls, never a throw', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wami-env-'));
    try {
      assert.deepEqual(gitState(dir), { commit: null, dirty: null });
      const env = captureEnvironment({ serverNodeFlags: [], fleetNodeFlags: [], pinned: true, projectRoot: dir });
      assert.deepEqual(env.git, { commit: null, dirty: null });
      // tmpdir has no node_modules of its own (a parent directory may, like Node's resolution)
      assert.equal(typeof env.packages, 'object');
      assert.equal(env.pinned, true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('project root and package versions', () => {
    const root = findProjectRoot();
    const v = packageVersions(root, ['ws', 'no-such-package-xyz']);
    assert.ok(v.ws);
    assert.equal(v['no-such-package-xyz'], undefined);
    assert.equal(v['wami-bench'], '0.1.0');
  });
});
