import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writerRatios, type MicroResultFile } from '../micro/output.js';
import { SUITE_NAMES } from '../micro/suites.js';
import { CLI } from './helpers/server.js';

test('micro --quick runs every suite and writes valid JSON and markdown', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wami-micro-test-'));
  try {
    const r = spawnSync(process.execPath, [CLI, 'micro', '--quick', '--out', dir], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const f = JSON.parse(readFileSync(join(dir, 'micro.json'), 'utf8')) as MicroResultFile;
    assert.equal(f.schemaVersion, 1);
    assert.equal(f.quick, true);
    assert.deepEqual([...new Set(f.tasks.map((t) => t.suite))], SUITE_NAMES);
    for (const t of f.tasks) {
      assert.ok(t.opsPerSec > 0 && Number.isFinite(t.opsPerSec), `${t.suite}/${t.task} measured`);
      assert.equal(t.unitsPerSec, t.opsPerSec * t.unitsPerOp);
      assert.ok(t.samples >= 4);
    }
    const sizes = f.tasks.filter((t) => t.suite === 'sqlite' && t.task.startsWith('batched')).map((t) => t.unitsPerOp);
    assert.deepEqual(sizes, [1, 10, 100, 1000, 10000]);
    assert.ok(f.tasks.some((t) => t.task.startsWith('per-request')));
    const plain = f.tasks.filter((t) => t.suite === 'sqlite' && t.task.startsWith('plain better-sqlite3')).map((t) => t.unitsPerOp);
    assert.deepEqual(plain, [100, 1000, 10000], 'the plain loop beside the writer path at 100, 1,000 and 10,000');
    assert.equal(writerRatios(f.tasks).length, 3);
    assert.match(r.stdout, /writer path \/ plain better-sqlite3 at 1000 updates per transaction: .* = \d+\.\d\d/);
    // WAL pages per update are counted, not timed: one transaction per update writes several pages per update, batches far fewer
    assert.deepEqual(
      f.wal!.map((w) => [w.what, w.updates, w.commits]),
      [
        ['per-request: 1 update per transaction', 2000, 2000],
        ['batched: 100 updates per transaction', 2000, 20],
        ['batched: 1000 updates per transaction', 2000, 2],
      ],
    );
    assert.equal(f.txSplit!.transactions, 1000, 'quick: 2,000 transactions, the first 1,000 not counted');
    assert.ok(f.txSplit!.commitShare > 0 && f.txSplit!.commitShare <= 1);
    assert.match(r.stdout, /per-request transaction, one connection: BEGIN IMMEDIATE .* COMMIT is [\d.]+ % of the time/);
    const [one, hundred, thousand] = f.wal!;
    assert.ok(
      one!.pagesPerUpdate >= 3 && hundred!.pagesPerUpdate < one!.pagesPerUpdate && thousand!.pagesPerUpdate < hundred!.pagesPerUpdate,
      JSON.stringify(f.wal),
    );
    assert.equal(typeof f.environment.cpuModel, 'string');
    assert.match(readFileSync(join(dir, 'micro.md'), 'utf8'), /\| sqlite \| batched: 10000 updates per transaction \|/);
    assert.match(r.stdout, /updates\/s/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('micro refuses an unknown suite with exit 2', () => {
  const r = spawnSync(process.execPath, [CLI, 'micro', '--suites', 'queue,nope'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--suites: unknown suite\(s\) nope/);
});
