/** `wami-bench serve` and `wami-bench conformance` flags: help, unknown flags, bad values, wrong-variant flags, missing db. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './helpers/server.js';
import { seedDatabase } from '../servers/common/db.js';

function cli(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("serve: --help documents both variants' flags with defaults, exit 0", () => {
  const r = cli(['serve', '--help']);
  assert.equal(r.code, 0);
  for (const f of [
    '--flush-interval-ms',
    '--max-queue',
    '--workers',
    '--tx-mode',
    '--retry-max-attempts',
    '--retry-deadline-ms',
    '--retry-base-ms',
    '--retry-max-ms',
    '--poll-ms',
    '--busy-timeout-ms',
    '--max-buffered-bytes',
    '--max-payload-bytes',
  ]) {
    assert.match(r.out, new RegExp(f), f);
  }
  assert.match(r.out, /default 100\)/);
});

test('serve: bad input exits 2 with a message naming the problem', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wami-cli-'));
  try {
    const db = join(dir, 'ok.db');
    seedDatabase(db, { boards: 1, cardsPerBoard: 1 });
    const junk = join(dir, 'junk.db');
    writeFileSync(junk, 'not sqlite at all');
    const cases: [string[], RegExp][] = [
      [['serve'], /missing the variant/],
      [['serve', 'fast', '--db', db], /unknown variant "fast"/],
      [['serve', 'batched', '--db', db, '--bogus', '1'], /bogus/],
      [['serve', 'batched', '--db', db, '--flush-interval-ms', 'soon'], /--flush-interval-ms must be an integer, got "soon"/],
      [['serve', 'batched', '--db', db, '--max-queue', '0'], /--max-queue must be between 1/],
      [['serve', 'batched', '--db', db, '--workers', '2'], /--workers applies to the per-request variant, not batched/],
      [['serve', 'per-request', '--db', db, '--max-queue', '5'], /--max-queue applies to the batched variant, not per-request/],
      [['serve', 'per-request', '--db', db, '--tx-mode', 'lazy'], /--tx-mode must be one of immediate\|deferred/],
      [['serve', 'per-request', '--db', db, '--retry-base-ms', '10', '--retry-max-ms', '5'], /--retry-max-ms \(5\) must be >= --retry-base-ms \(10\)/],
      [['serve', 'batched', '--db', db, '--port', '70000'], /--port must be between 0 and 65535/],
      [['serve', 'batched'], /--db is required/],
      [['serve', 'batched', '--db', join(dir, 'missing.db')], /no such file.*wami-bench seed/],
      [['serve', 'per-request', '--db', junk], /cannot open as SQLite|not a wami-bench database/],
      [['conformance'], /missing the server URL/],
      [['conformance', 'http://127.0.0.1:1'], /ws:\/\//],
      [['conformance', 'ws://127.0.0.1:1', '--board', '2', '--other-board', '2'], /must differ/],
      [['conformance', 'ws://127.0.0.1:1', '--nope'], /nope/],
    ];
    for (const [args, re] of cases) {
      const r = cli(args);
      assert.equal(r.code, 2, `${args.join(' ')} -> ${r.code}\n${r.err}`);
      assert.match(r.err, re, args.join(' '));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('conformance: --help, exit 0; nothing listening at the URL is one line, exit 2', () => {
  const h = cli(['conformance', '--help']);
  assert.equal(h.code, 0);
  assert.match(h.out, /--cards-per-board M/);
  const r = cli(['conformance', 'ws://127.0.0.1:1', '--timeout-ms', '500']);
  assert.equal(r.code, 2, r.out + r.err);
  assert.equal(r.out, '');
  assert.equal(r.err, 'wami-bench conformance: nothing answers at ws://127.0.0.1:1 (ECONNREFUSED): start the server first, or check the host and port\n');
});
