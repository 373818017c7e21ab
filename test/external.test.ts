/**
 * The `external` variant kind without a run: the scenario schema's errors, placeholders, the
 * listening line, how a command is resolved (and what the error says when it is not there), the port
 * window, the preflight's one-process bound and its optional stages, and the shipped pascal-vs-port
 * scenario against servers/pascal/index.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commandLine, fillPlaceholders, parseListeningLine, usesPortPlaceholder } from '../model/external.js';
import { SERVE_KINDS, serverProcesses, VARIANT_KINDS } from '../model/variants.js';
import { loadScenario, PACKAGE_ROOT, scenarioBaseDir, validateScenario } from '../scenarios/load.js';
import type { Scenario } from '../scenarios/schema.js';
import { externalProblems, pickPort, portWindow, resolveCommand, type ExternalVariant } from '../runner/external.js';
import { optionalStagesToSkip, socketsDoNotFit } from '../runner/preflight.js';
import { PASCAL_BINARY, PASCAL_COMMAND_TEMPLATE } from '../servers/pascal/index.js';

const base = {
  name: 'ext',
  description: 'external kind',
  seed: { boards: 10, cardsPerBoard: 10 },
  users: { perBoard: 10 },
  load: { updatesPerUserPerMin: 6 },
  stages: [{ connections: 100, durationSec: 5 }],
};
const scenarioWith = (variant: Record<string, unknown>) => ({ ...base, variants: [variant] });
const errorOf = (raw: unknown): string => {
  try {
    validateScenario(raw, 'test.json');
  } catch (e) {
    return (e as Error).message;
  }
  return '';
};

test('an external variant loads with its defaults; options only say how many processes hold its sockets', () => {
  const s = validateScenario(scenarioWith({ name: 'mine', kind: 'external', command: ['./srv', '--db', '{db}', '--port', '{port}'] }), 't');
  const v = s.variants[0]!;
  assert.equal(v.kind, 'external');
  assert.deepEqual(
    { ...v },
    {
      name: 'mine',
      kind: 'external',
      options: {},
      command: ['./srv', '--db', '{db}', '--port', '{port}'],
      ready: '/healthz',
      readyTimeoutSec: 30,
      stopTimeoutSec: 10,
    },
  );
  assert.equal(serverProcesses(v, 8), 1, 'one process unless told otherwise');
  const two = validateScenario(scenarioWith({ name: 'b', kind: 'external', command: ['srv'], env: { DB: '{db}' }, options: { processes: 2 } }), 't')
    .variants[0]!;
  assert.equal(serverProcesses(two, 8), 2);
  assert.ok(VARIANT_KINDS.includes('external'));
  assert.ok(!SERVE_KINDS.includes('external'), 'wami-bench serve does not run external servers');
});

test('scenario errors name the field and say what to write', () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ name: 'x', kind: 'external' }, /variants\[0\]\.command: an external variant needs command: .*\{db\}/],
    [{ name: 'x', kind: 'external', command: [] }, /variants\[0\]\.command: command needs at least the program/],
    [{ name: 'x', kind: 'external', command: ['./srv', '--port', '{port}'] }, /variants\[0\]\.command: the command never passes the database: put \{db\}/],
    [
      { name: 'x', kind: 'external', command: ['./srv --db {db} --port {port}'] },
      /command is an argv list, not a shell line: write \["\.\/srv","--db","\{db\}","--port","\{port\}"\]/,
    ],
    [
      { name: 'x', kind: 'external', command: ['./srv', '--db', '{database}'] },
      /variants\[0\]\.command\[2\]: unknown placeholder \{database\} \(the runner fills \{db\}, \{port\}, \{host\}\)/,
    ],
    [{ name: 'x', kind: 'external', command: ['{db}', '--db', '{db}'] }, /command\[0\]: the program \(command\[0\] "\{db\}"\) cannot hold a placeholder/],
    [{ name: 'x', kind: 'external', command: ['./srv', '--db', '{db}'], env: { PORT: '{prot}' } }, /variants\[0\]\.env\.PORT: unknown placeholder \{prot\}/],
    [{ name: 'x', kind: 'external', command: ['./srv', '--db', '{db}'], ready: 'healthz' }, /variants\[0\]\.ready: a path starting with "\/"/],
    [{ name: 'x', kind: 'external', command: ['./srv', '--db', '{db}'], stopTimeoutSec: 0 }, /variants\[0\]\.stopTimeoutSec/],
    [{ name: 'x', kind: 'external', command: ['./srv', '--db', '{db}'], flags: ['--x'] }, /variants\[0\]\.flags: an external variant has no serve flags/],
    [
      { name: 'x', kind: 'external', command: ['./srv', '--db', '{db}'], options: { workers: 2 } },
      /unknown option\(s\) "workers" for the external variant \(it takes processes\)/,
    ],
    [{ name: 'x', kind: 'batched', command: ['./srv', '--db', '{db}'] }, /variants\[0\]\.command: command is for kind "external" only/],
    [{ name: 'x', kind: 'external', command: ['./srv', '--db', '{db}'], comand: [] }, /unknown key\(s\) "comand"/],
  ];
  for (const [variant, re] of cases) assert.match(errorOf(scenarioWith(variant)), re, JSON.stringify(variant));
});

test('placeholders, the listening line and the command as one line', () => {
  const values = { db: '/tmp/a b.db', port: '21000', host: '127.0.0.1' };
  assert.equal(fillPlaceholders('--db={db}', values), '--db=/tmp/a b.db');
  assert.equal(fillPlaceholders('{host}:{port} {"json":1}', values), '127.0.0.1:21000 {"json":1}');
  assert.equal(usesPortPlaceholder({ command: ['s', '--db', '{db}'], env: { PORT: '{port}' } }), true);
  assert.equal(usesPortPlaceholder({ command: ['s', '--db', '{db}', '--port', '0'] }), false);
  assert.deepEqual(parseListeningLine('x\nwami-pascal: listening on ws://127.0.0.1:41239/ws (http://127.0.0.1:41239) pid 7\n'), {
    host: '127.0.0.1',
    port: 41239,
  });
  assert.deepEqual(parseListeningLine('tiny-v1: listening on ws://127.0.0.1:5000 pid 3'), { host: '127.0.0.1', port: 5000 });
  assert.deepEqual(parseListeningLine('Listening on ws://0.0.0.0:4000'), null, 'case matters: the line is the one protocol/README.md names');
  assert.deepEqual(parseListeningLine('listening on ws://0.0.0.0:4000'), { host: null, port: 4000 });
  assert.deepEqual(parseListeningLine('listening on ws://localhost:4000/socket'), { host: null, port: 4000 });
  assert.equal(parseListeningLine('listening on http://127.0.0.1:4000'), null);
  assert.equal(commandLine(['/bin/srv', '--db', '/tmp/a b.db', '--title', "it's"]), "/bin/srv --db '/tmp/a b.db' --title 'it'\\''s'");
});

test('a command is resolved against the working directory, itself against the scenario directory; the error says what was looked for where', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wami-ext-'));
  try {
    mkdirSync(join(dir, 'srv', 'bin'), { recursive: true });
    const prog = join(dir, 'srv', 'bin', 'server');
    writeFileSync(prog, '#!/bin/sh\nexit 0\n');
    chmodSync(prog, 0o755);
    writeFileSync(join(dir, 'srv', 'data.txt'), 'not a program');
    const v = (x: Partial<ExternalVariant>): ExternalVariant =>
      ({
        name: 'mine',
        kind: 'external',
        options: {},
        command: ['bin/server', '--db', '{db}'],
        ready: '/healthz',
        readyTimeoutSec: 30,
        stopTimeoutSec: 10,
        ...x,
      }) as ExternalVariant;

    assert.deepEqual(resolveCommand(v({ cwd: 'srv' }), dir), { ok: true, cmd: { program: prog, args: ['--db', '{db}'], cwd: join(dir, 'srv') } });
    assert.deepEqual(resolveCommand(v({ command: ['srv/bin/server', '--db', '{db}'] }), dir), {
      ok: true,
      cmd: { program: prog, args: ['--db', '{db}'], cwd: dir },
    });
    const node = resolveCommand(v({ command: ['node', '--db', '{db}'] }), dir);
    assert.ok(node.ok && node.cmd.program.endsWith('/node'), 'a bare name is looked up on PATH');

    const missing = resolveCommand(v({ command: ['bin/nope', '--db', '{db}'], cwd: 'srv', setup: 'npm run build:mine' }), dir);
    assert.deepEqual(missing, {
      ok: false,
      problem: `variant "mine": the server's program ${join(dir, 'srv', 'bin', 'nope')} (command[0] "bin/nope" resolved against the working directory ${join(dir, 'srv')} (cwd "srv" resolved against ${dir})) does not exist: run \`npm run build:mine\` first`,
    });
    assert.match(
      (resolveCommand(v({ command: ['./data.txt', '--db', '{db}'], cwd: 'srv' }), dir) as { problem: string }).problem,
      /srv\/data\.txt \(command\[0\] "\.\/data\.txt".* is not executable \(chmod \+x it/,
    );
    assert.match((resolveCommand(v({ cwd: 'elsewhere' }), dir) as { problem: string }).problem, /working directory .*elsewhere.* does not exist/);
    assert.match(
      (resolveCommand(v({ command: ['no-such-program-here', '--db', '{db}'] }), dir) as { problem: string }).problem,
      /"no-such-program-here" is not on PATH/,
    );
    assert.deepEqual(externalProblems([v({ cwd: 'srv' }), { kind: 'batched', options: {} }], dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('{port} is picked outside the ephemeral range, so no outgoing connection can take it first', async () => {
  assert.deepEqual(portWindow([32768, 60999]), [10000, 32767]);
  assert.deepEqual(portWindow([1024, 60999]), [61000, 65535]);
  assert.deepEqual(portWindow([1024, 65535]), null);
  assert.deepEqual(portWindow(null), [10000, 32767]);
  const port = await pickPort('127.0.0.1', [32768, 60999]);
  assert.ok(port >= 10000 && port <= 32767, String(port));
});

test('the preflight: an external server is one process, its file limit bounds a stage; optional stages are skipped where it does not fit', async () => {
  const { scenario } = await loadScenario('pascal-vs-port');
  const pascal = scenario.variants.find((v) => v.kind === 'external')!;
  assert.equal(socketsDoNotFit(pascal, 19_000, 20_000, 2, 20_000), null);
  assert.match(
    socketsDoNotFit(pascal, 20_000, 20_000, 2, 20_000) ?? '',
    /^variant "pascal": 20000 sockets on an external server of 1 process is ~20000 per process, over the 20000-descriptor limit .*one process holds at most 19600 sockets.*options\.processes/,
  );
  assert.equal(socketsDoNotFit({ ...pascal, options: { processes: 2 } }, 20_000, 20_000, 2, 20_000), null);
  const skip = optionalStagesToSkip(scenario, 20_000, 2, 20_000);
  assert.deepEqual(
    skip.map((x) => [x.index, x.connections]),
    [[3, 20_000]],
  );
  assert.match(skip[0]!.why, /variant "pascal"/);
  assert.doesNotMatch(skip[0]!.why, /batched|per-request/, 'batched adds shards, per-request has workers: only the one-process server does not fit');
  assert.deepEqual(optionalStagesToSkip(scenario, 65_536, 2, 65_536), [], 'a higher limit runs the 20k stage');
  const notOptional: Scenario = { ...scenario, stages: scenario.stages.map((s) => ({ ...s, optional: false })) };
  assert.deepEqual(optionalStagesToSkip(notOptional, 20_000, 2, 20_000), [], 'a stage not marked optional is refused by checkPlan instead');
});

test('pascal-vs-port names the Pascal binary by servers/pascal/index.ts command template, and says how to build it', async () => {
  const { scenario, file } = await loadScenario('pascal-vs-port');
  assert.equal(scenarioBaseDir(file), PACKAGE_ROOT);
  assert.deepEqual(
    scenario.variants.map((v) => [v.name, v.kind]),
    [
      ['batched', 'batched'],
      ['pascal', 'external'],
      ['per-request', 'per-request'],
    ],
  );
  const pascal = scenario.variants[1] as ExternalVariant;
  assert.equal(pascal.setup, 'npm run build:pascal');
  // scenarios/ may not import servers/: the template is written relative to the package root, and must stay equal.
  const program = join(PACKAGE_ROOT, pascal.command[0]!);
  assert.equal(program, PASCAL_BINARY);
  assert.deepEqual([program, ...pascal.command.slice(1)], PASCAL_COMMAND_TEMPLATE);
  assert.deepEqual(
    scenario.stages.map((s) => [s.connections, s.optional ?? false]),
    [
      [1000, false],
      [5000, false],
      [10000, false],
      [20000, true],
    ],
  );
});
