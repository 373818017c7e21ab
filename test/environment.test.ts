import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import {
  captureEnvironment,
  findProjectRoot,
  gitState,
  packageVersions,
  parseFdLimits,
  parsePortRange,
  parsePrettyName,
  RECORDED_PACKAGES,
} from '../runner/environment.js';

/** A package's version read straight from its package.json under the project root. */
const installed = (root: string, name: string): string =>
  (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
/** The shell's own view of this process's descriptor limits (inherited by the child), null for unlimited. */
const shellLimit = (flag: '-Sn' | '-Hn'): number | null => {
  const v = execFileSync('sh', ['-c', `ulimit ${flag}`], { encoding: 'utf8' }).trim();
  return v === 'unlimited' ? null : Number(v);
};

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
    // Each field against the same fact read another way.
    assert.equal(env.cpuModel, os.cpus()[0]!.model.trim());
    assert.equal(env.cpuCount, os.cpus().length);
    assert.equal(env.memTotalBytes, os.totalmem());
    assert.equal(env.kernel, os.release());
    assert.match(env.os, /^Linux/);
    assert.equal(env.node, process.version);
    const mem = new Database(':memory:');
    assert.equal(env.sqlite, mem.prepare('select sqlite_version()').pluck().get());
    mem.close();
    const root = findProjectRoot();
    assert.equal(env.packages['wami-bench'], (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version);
    for (const p of ['ws', 'better-sqlite3', 'prom-client', 'hdr-histogram-js', 'typescript', 'zod']) assert.equal(env.packages[p], installed(root, p), p);
    // This checkout is a git repository.
    const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8' });
    assert.equal(env.git.commit, git('rev-parse', 'HEAD').trim());
    assert.equal(env.git.dirty, git('status', '--porcelain').trim().length > 0);
    assert.deepEqual(env.fdLimit, { soft: shellLimit('-Sn'), hard: shellLimit('-Hn') });
    assert.notEqual(env.fdLimit.soft, null, 'the soft limit is readable on Linux');
    assert.deepEqual(env.ephemeralPortRange, readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number));
    assert.deepEqual(env.serverNodeFlags, ['--max-semi-space-size=64']);
    assert.deepEqual(env.fleetNodeFlags, []);
    assert.equal(env.pinned, false);
    assert.equal(env.hostname, os.hostname());
    assert.ok(!Number.isNaN(Date.parse(env.startedAtIso)));
    const at = new Date('2026-01-02T03:04:05.678Z');
    assert.equal(captureEnvironment({ serverNodeFlags: [], fleetNodeFlags: [], pinned: true, startedAt: at }).startedAtIso, '2026-01-02T03:04:05.678Z');
    // JSON as it is: nothing lost or changed by the round trip into result.json.
    assert.deepEqual(JSON.parse(JSON.stringify(env)), env);
  });

  test('outside a git repository and without node_modules: nulls, never a throw', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wami-env-'));
    try {
      assert.deepEqual(gitState(dir), { commit: null, dirty: null });
      // A project of its own with every recorded package (fake versions), so no parent directory's
      // node_modules can answer for it: the versions are exactly these; no better-sqlite3 to load.
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'not-wami', version: '1.2.3' }));
      const fake: Record<string, string> = { 'not-wami': '1.2.3' };
      RECORDED_PACKAGES.forEach((name, i) => {
        if (name === 'better-sqlite3') return;
        mkdirSync(join(dir, 'node_modules', name), { recursive: true });
        writeFileSync(join(dir, 'node_modules', name, 'package.json'), JSON.stringify({ name, version: `0.0.${i}` }));
        fake[name] = `0.0.${i}`;
      });
      const env = captureEnvironment({ serverNodeFlags: [], fleetNodeFlags: [], pinned: true, projectRoot: dir });
      assert.deepEqual(env.git, { commit: null, dirty: null });
      const found = { ...env.packages };
      delete found['better-sqlite3']; // a parent directory's node_modules may hold one (Node's resolution walks up)
      assert.deepEqual(found, fake);
      assert.equal(env.pinned, true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('project root and package versions', () => {
    const root = findProjectRoot();
    const v = packageVersions(root, ['ws', 'no-such-package-xyz']);
    assert.deepEqual(v, { 'wami-bench': '0.1.0', ws: installed(root, 'ws') });
  });
});
