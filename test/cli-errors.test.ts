/**
 * A user's mistake, on every command, is one line on stderr naming the problem and the fix, exit 2,
 * no stack trace, and no process left behind: port in use (every process of a multi-process server
 * included), missing directory, unreadable file, permission denied, a database that is not a
 * wami-bench database, a near-miss flag ("did you mean"), a negative number, a missing value. Also
 * `--version`, and the help only on --help.
 *
 * Permission cases run the CLI as `nobody` when the suite runs as root (root reads anything).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { seedDatabase } from '../servers/common/db.js';
import { CLI } from './helpers/server.js';

const dir = mkdtempSync(join(tmpdir(), 'wami-cli-errors-'));
chmodSync(dir, 0o755); // `nobody` must reach the files the permission cases name
test.after(() => rmSync(dir, { recursive: true, force: true }));

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

interface Out {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], opts: { asNobody?: boolean } = {}): Out {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    cwd: dir,
    timeout: 60_000,
    ...(opts.asNobody && isRoot ? { uid: NOBODY, gid: NOBODY } : {}),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Exit 2, exactly one line on stderr that starts with "wami-bench", no stack frame, and it matches `re`. */
function assertOneLine(r: Out, re: RegExp, what: string): void {
  assert.equal(r.code, 2, `${what}: exit ${r.code}\n${r.stderr}${r.stdout}`);
  assert.match(r.stderr, /^wami-bench[^\n]*\n$/, `${what}: one line on stderr, got:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at |Error:|node:internal/, `${what}: no stack trace`);
  assert.match(r.stderr, re, what);
}

const db = join(dir, 'ok.db');
seedDatabase(db, { boards: 4, cardsPerBoard: 5 });

test('global: --version, a near-miss command, no command; the help only on --help', () => {
  const v = cli(['--version']);
  assert.equal(v.code, 0);
  const pkg = JSON.parse(readFileSync(join(CLI, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  assert.equal(v.stdout, `wami-bench ${pkg.version}\n`);
  assert.equal(cli(['run', '--version']).stdout, `wami-bench ${pkg.version}\n`);
  assertOneLine(cli(['rn', 'smoke']), /^wami-bench: unknown command "rn": did you mean "run"\?\n$/, 'near-miss command');
  assertOneLine(cli([]), /missing the command, one of seed, serve, .* \(wami-bench --help says what each does\)/, 'no command');
  assertOneLine(cli(['--verison']), /unknown option "--verison": did you mean "--version"\?/, 'near-miss global option');
  const h = cli(['--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /^wami-bench \d+\.\d+\.\d+\n\nUsage: wami-bench <command>/);
});

test('flags on every command: a near-miss gets "did you mean", a negative number is range-checked, a missing value is named', () => {
  const cases: Array<[string[], RegExp]> = [
    [['seed', '--db', db, '--bords', '3'], /^wami-bench seed: unknown flag --bords: did you mean --boards\?\n$/],
    [['seed', '--db', db, '--boards', '-3'], /^wami-bench seed: --boards must be between 1 and 1000000, got -3\n$/],
    [['seed', '--db'], /^wami-bench seed: --db needs a value \(run "wami-bench seed --help" for the flags\)\n$/],
    [['serve', 'batched', '--db', db, '--flush-interval', '5'], /unknown flag --flush-interval: did you mean --flush-interval-ms\?/],
    [['serve', 'bached', '--db', db], /unknown variant "bached": did you mean batched\?/],
    [['serve', 'batched', '--db', db, '--port', '-1'], /--port must be between 0 and 65535, got -1/],
    [['conformance', 'ws://127.0.0.1:9', '--bord', '2'], /unknown flag --bord: did you mean --board\?/],
    [['fleet', '--url', 'ws://127.0.0.1:9', '--conections', '5'], /^wami-bench fleet: unknown flag --conections: did you mean --connections\?\n$/],
    [
      ['fleet', '--url', 'ws://127.0.0.1:9', '--connections', '-5', '--per-board', '1', '--updates-per-user-per-min', '1', '--duration-sec', '1'],
      /^wami-bench fleet: --connections must be between 1 and 1000000, got -5\n$/,
    ],
    [
      [
        'fleet',
        '--url',
        'ws://127.0.0.1:9',
        '--connections',
        '5',
        '--per-board',
        '1',
        '--updates-per-user-per-min',
        '1',
        '--duration-sec',
        '1',
        '--threshold',
        'audit.lostAcked == 0',
      ],
      /--threshold: threshold "audit.lostAcked == 0" names audit.lostAcked, which the fleet alone does not measure/,
    ],
    [['run', 'smok'], /no scenario "smok": did you mean smoke\?/],
    [['run', 'smoke', '--connections', '-100'], /--connections must be between 1 and 1000000, got -100/],
    [['run', 'smoke', '--duration'], /unknown flag --duration: did you mean --duration-sec\?/],
    [['report', 'x.json', '--fromat', 'md'], /unknown flag --fromat: did you mean --format\?/],
    [['compare', 'a.json', 'b.json', '--max-regresion', '5%'], /unknown flag --max-regresion: did you mean --max-regression\?/],
    [['capacity', 'smoke', '--slo', 'fanoutMs.p99 < 250', '--step', '-500'], /--step must be between 1 and .*, got -500/],
    [['capacity', 'smoke'], /--slo is required/],
    [['micro', '--suites', 'queu'], /--suites: unknown suite\(s\) queu \(known: /],
    [['micro', '--quik'], /unknown flag --quik: did you mean --quick\?/],
  ];
  for (const [args, re] of cases) assertOneLine(cli(args), re, args.join(' '));
});

test('paths: a missing directory, a file where a directory is needed, a directory where a file is, a missing file', () => {
  const file = join(dir, 'plain.txt');
  writeFileSync(file, 'x');
  const cases: Array<[string[], RegExp]> = [
    [['seed', '--db', join(dir, 'no', 'such', 'x.db')], /x\.db: the directory .*no\/such does not exist \(create it first, e\.g\. mkdir -p .*no\/such\)/],
    [['seed', '--db', dir], /is a directory: give a file name for the database/],
    [['serve', 'batched', '--db', join(dir, 'missing.db')], /--db .*missing\.db: no such file \(create it with "wami-bench seed --db /],
    [['serve', 'batched', '--db', dir], /--db .* is a directory: give the database file/],
    [
      [
        'fleet',
        '--url',
        'ws://127.0.0.1:9',
        '--connections',
        '5',
        '--per-board',
        '1',
        '--updates-per-user-per-min',
        '1',
        '--duration-sec',
        '1',
        '--out',
        join(dir, 'nope', 'f.json'),
      ],
      /^wami-bench fleet: --out .*f\.json: the directory .*nope does not exist/,
    ],
    [['run', 'smoke', '--out', join(file, 'out')], /--out .*: .*plain\.txt is a file, not a directory/],
    [['run', join(dir, 'nope.json')], /no scenario ".*nope\.json"/],
    [['report', join(dir, 'nope.json')], /nope\.json: no such file/],
    [['report', dir], /is a directory: give a file name/],
    [['compare', join(dir, 'a.json'), join(dir, 'b.json')], /a\.json: no such file/],
    [['micro', '--out', join(file, 'm')], /--out .*plain\.txt is a file, not a directory/],
  ];
  for (const [args, re] of cases) assertOneLine(cli(args), re, args.join(' '));
});

test('a database that is not a wami-bench database: a text file, an SQLite file without the tables', () => {
  const text = join(dir, 'text.db');
  writeFileSync(text, 'not sqlite at all, just text, long enough to be read as a header by SQLite...........');
  const other = join(dir, 'other.db');
  const d = new Database(other);
  d.exec('CREATE TABLE t (x)');
  d.close();
  for (const kind of ['batched', 'per-request']) {
    assertOneLine(
      cli(['serve', kind, '--db', text, '--port', '0']),
      /--db .*text\.db: not an SQLite database, so not a wami-bench database; create one with "wami-bench seed/,
      kind,
    );
    assertOneLine(
      cli(['serve', kind, '--db', other, '--port', '0']),
      /--db .*other\.db: not a wami-bench database \(missing tables: boards, cards, card_events\); create one with "wami-bench seed/,
      kind,
    );
  }
});

test('permission denied: an unreadable database, scenario or result file, a directory one cannot write to', () => {
  const locked = join(dir, 'locked');
  mkdirSync(locked, { mode: 0o755 });
  const lockedDb = join(locked, 'board.db');
  seedDatabase(lockedDb, { boards: 1, cardsPerBoard: 1 });
  chmodSync(lockedDb, 0o600);
  const scn = join(locked, 'scenario.json');
  writeFileSync(scn, '{}', { mode: 0o600 });
  const res = join(locked, 'result.json');
  writeFileSync(res, '{}', { mode: 0o600 });
  const ro = join(dir, 'readonly');
  mkdirSync(ro, { mode: 0o555 });
  chmodSync(ro, 0o555);
  const cases: Array<[string[], RegExp]> = [
    [
      ['serve', 'batched', '--db', lockedDb, '--port', '0'],
      /--db .*board\.db: permission denied \(the server reads and writes it: make it readable and writable\)/,
    ],
    [['run', scn], /scenario .*scenario\.json: permission denied \(make it readable, or pass a file you can read\)/],
    [['report', res], /result\.json: permission denied \(make it readable/],
    [['seed', '--db', join(ro, 'x.db')], /x\.db: permission denied \(choose a place you can write to\)/],
    [['micro', '--quick', '--out', join(ro, 'm')], /--out .*readonly\/m: permission denied \(choose a place you can write to\)/],
  ];
  for (const [args, re] of cases) assertOneLine(cli(args, { asNobody: true }), re, args.join(' '));
});

/** Pids whose process group is `pgid` (the CLI was started as a group leader: everything it forked is in it). */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Runs the CLI as the leader of its own process group; resolves at its exit with its output and group. */
function cliGroup(args: string[]): Promise<Out & { pgid: number }> {
  return new Promise((res) => {
    const c = spawn(process.execPath, [CLI, ...args], { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => process.kill(-c.pid!, 'SIGKILL'), 60_000);
    c.on('close', (code) => {
      clearTimeout(t);
      res({ code, stdout, stderr, pgid: c.pid! });
    });
  });
}

test('serve on a port in use: one line, exit 2, and no process of its tree left (batched, its shards, per-request workers)', async () => {
  const holder: Server = createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  const port = (holder.address() as AddressInfo).port;
  try {
    for (const variant of [['batched'], ['batched', '--shards', '2'], ['per-request', '--workers', '2']]) {
      const r = await cliGroup(['serve', ...variant, '--db', db, '--port', String(port)]);
      assertOneLine(
        r,
        new RegExp(
          `^wami-bench serve: port ${port} on 127\\.0\\.0\\.1 is already in use: stop what listens there, or choose another --port \\(--port 0 takes any free port\\)\\n$`,
        ),
        variant.join(' '),
      );
      assert.equal(r.stdout, '', 'no listening line');
      assert.deepEqual(groupMembers(r.pgid), [], `${variant.join(' ')}: every process of the tree has exited`);
    }
  } finally {
    await new Promise((r) => holder.close(r));
  }
});

test('serve on an address that is not this machine: one line, exit 2', async () => {
  // 192.0.2.0/24 is TEST-NET-1: never an address of this machine.
  const r = await cliGroup(['serve', 'batched', '--db', db, '--host', '192.0.2.1', '--port', '0']);
  assertOneLine(r, /--host 192\.0\.2\.1 is not an address of this machine: choose another --host, e\.g\. 127\.0\.0\.1/, 'EADDRNOTAVAIL');
  assert.deepEqual(groupMembers(r.pgid), []);
});

test('conformance against nothing: one line, exit 2, no failed checks printed', () => {
  const r = cli(['conformance', 'ws://127.0.0.1:9']);
  assertOneLine(r, /nothing answers at ws:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\): start the server first, or check the host and port/, 'unreachable');
  assert.equal(r.stdout, '');
});
