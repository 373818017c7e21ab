/**
 * A user's mistake, on every command, is one line on stderr naming the problem and the fix, exit 2,
 * no stack trace, and no process left behind: port in use (every process of a multi-process server
 * included), missing directory, unreadable file, permission denied, a database that is not a
 * wami-bench database, a near-miss flag ("did you mean"), a negative number, a missing value. Also
 * `--version`, and the help only on --help. The rules and the messages are checked in process; the
 * CLI is spawned once per command and class of mistake, to keep the suite short.
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
import { creatableDir, didYouMean, editDistance, joinNegativeValues, parseCommand } from '../runner/args.js';
import { checkDatabase } from '../runner/servers.js';
import { fsProblem, listenProblem, UsageError } from '../model/errors.js';
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

test('global: --version, a near-miss command; the help only on --help', () => {
  const v = cli(['--version']);
  assert.equal(v.code, 0);
  const pkg = JSON.parse(readFileSync(join(CLI, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  assert.equal(v.stdout, `wami-bench ${pkg.version}\n`);
  assertOneLine(cli(['rn', 'smoke']), /^wami-bench: unknown command "rn": did you mean "run"\?\n$/, 'near-miss command');
});

test('the parsing rules, in process: did you mean, negative numbers joined to their flag, one-line parse errors', () => {
  assert.equal(didYouMean('conections', ['connections', 'per-board']), 'connections');
  assert.equal(didYouMean('connectoins', ['connections']), 'connections', 'a transposition is one edit');
  assert.equal(didYouMean('verison', ['version', 'help']), 'version');
  assert.equal(didYouMean('zzz', ['connections', 'per-board']), null);
  assert.equal(didYouMean('dur', ['duration-sec', 'drain-sec']), 'duration-sec', 'the only flag it starts');
  assert.equal(editDistance('kitten', 'sitting'), 3);
  const options = { connections: { type: 'string' as const }, force: { type: 'boolean' as const } };
  assert.deepEqual(joinNegativeValues(['--connections', '-5', '--force', '-x'], options), ['--connections=-5', '--force', '-x']);
  assert.deepEqual(joinNegativeValues(['--connections', '-0.5e3'], options), ['--connections=-0.5e3']);
  const spec = { usage: 'wami-bench fleet --connections N', summary: '', flagHelp: [], options };
  assert.throws(() => parseCommand(spec, ['--conections', '5']), new UsageError('unknown flag --conections: did you mean --connections?'));
  assert.throws(() => parseCommand(spec, ['--bogus']), new UsageError('unknown flag --bogus (run "wami-bench fleet --help" for the flags)'));
  assert.throws(() => parseCommand(spec, ['--connections']), new UsageError('--connections needs a value (run "wami-bench fleet --help" for the flags)'));
  assert.throws(() => parseCommand(spec, ['--force=1']), new UsageError('--force takes no value'));
  assert.throws(() => parseCommand(spec, ['extra']), new UsageError('unexpected argument "extra" (run "wami-bench fleet --help" for the flags)'));
  assert.equal(parseCommand(spec, ['--connections', '-5'])?.values.connections, '-5');
});

test('the messages, in process: file-system, listen and database problems name the fix', () => {
  const err = (code: string) => Object.assign(new Error(code), { code });
  assert.equal(fsProblem(err('ENOENT'), '/a/b/x.db', 'create'), '/a/b/x.db: the directory /a/b does not exist (create it first, e.g. mkdir -p /a/b)');
  assert.equal(fsProblem(err('ENOENT'), '/a/r.json', 'read'), '/a/r.json: no such file');
  assert.equal(fsProblem(err('EACCES'), '/a/r.json', 'read'), '/a/r.json: permission denied (make it readable, or pass a file you can read)');
  assert.equal(fsProblem(err('EROFS'), '/a/x', 'write'), '/a/x: the file system is read-only (choose a place you can write to)');
  assert.equal(
    listenProblem(err('EADDRINUSE'), '127.0.0.1', 8080)?.message,
    'port 8080 on 127.0.0.1 is already in use: stop what listens there, or choose another --port (--port 0 takes any free port)',
  );
  assert.equal(
    listenProblem(err('EACCES'), '0.0.0.0', 80)?.message,
    'no permission to listen on 0.0.0.0:80 (ports below 1024 need privileges): choose --port 1024 or above, or --port 0',
  );
  assert.equal(
    listenProblem(err('EADDRNOTAVAIL'), '192.0.2.1', 0)?.message,
    '--host 192.0.2.1 is not an address of this machine: choose another --host, e.g. 127.0.0.1',
  );
  assert.equal(listenProblem(err('ECONNRESET'), 'h', 1), null);
  // A directory that exists, one that can be created under it, one under a file.
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  assert.equal(creatableDir('--out', join(dir, 'new', 'deeper')), join(dir, 'new', 'deeper'));
  assert.throws(() => creatableDir('--out', join(file, 'out')), new UsageError(`--out ${join(file, 'out')}: ${file} is a file, not a directory`));
  // An SQLite file without the tables.
  const other = join(dir, 'other.db');
  const d = new Database(other);
  d.exec('CREATE TABLE t (x)');
  d.close();
  assert.throws(
    () => checkDatabase(other),
    new UsageError(`--db ${other}: not a wami-bench database (missing tables: boards, cards, card_events); create one with "wami-bench seed --db FILE"`),
  );
});

test('every command: a mistake is one line and exit 2 (a near-miss, a negative number, a missing value, a path)', () => {
  const file = join(dir, 'plain.txt');
  writeFileSync(file, 'x');
  const text = join(dir, 'text.db');
  writeFileSync(text, 'not sqlite at all, just text, long enough to be read as a header by SQLite...........');
  const cases: Array<[string[], RegExp]> = [
    [['seed', '--db', db, '--bords', '3'], /^wami-bench seed: unknown flag --bords: did you mean --boards\?\n$/],
    [['seed', '--db', join(dir, 'no', 'such', 'x.db')], /x\.db: the directory .*no\/such does not exist \(create it first, e\.g\. mkdir -p .*no\/such\)/],
    [
      ['serve', 'per-request', '--db', text, '--port', '0'],
      /--db .*text\.db: not an SQLite database, so not a wami-bench database; create one with "wami-bench seed/,
    ],
    [['conformance', 'ws://127.0.0.1:9', '--bord', '2'], /unknown flag --bord: did you mean --board\?/],
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
        '--out',
        join(dir, 'nope', 'f.json'),
      ],
      /^wami-bench fleet: --out .*f\.json: the directory .*nope does not exist/,
    ],
    [['run', 'smok'], /no scenario "smok": did you mean smoke\?/],
    [['run', 'smoke', '--out', join(file, 'out')], /--out .*: .*plain\.txt is a file, not a directory/],
    [['report', dir], /is a directory: give a file name/],
    [['compare', 'a.json', 'b.json', '--max-regresion', '5%'], /unknown flag --max-regresion: did you mean --max-regression\?/],
    [['capacity', 'smoke', '--slo', 'fanoutMs.p99 < 250', '--step', '-500'], /--step must be between 1 and .*, got -500/],
    [['micro', '--quik'], /unknown flag --quik: did you mean --quick\?/],
  ];
  for (const [args, re] of cases) assertOneLine(cli(args), re, args.join(' '));
});

test('permission denied: an unreadable database or scenario file, a directory one cannot write to', () => {
  const locked = join(dir, 'locked');
  mkdirSync(locked, { mode: 0o755 });
  const lockedDb = join(locked, 'board.db');
  seedDatabase(lockedDb, { boards: 1, cardsPerBoard: 1 });
  chmodSync(lockedDb, 0o600);
  const scn = join(locked, 'scenario.json');
  writeFileSync(scn, '{}', { mode: 0o600 });
  const ro = join(dir, 'readonly');
  mkdirSync(ro, { mode: 0o555 });
  chmodSync(ro, 0o555);
  const cases: Array<[string[], RegExp]> = [
    [
      ['serve', 'batched', '--db', lockedDb, '--port', '0'],
      /--db .*board\.db: permission denied \(the server reads and writes it: make it readable and writable\)/,
    ],
    [['run', scn], /scenario .*scenario\.json: permission denied \(make it readable, or pass a file you can read\)/],
    [['seed', '--db', join(ro, 'x.db')], /x\.db: permission denied \(choose a place you can write to\)/],
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
