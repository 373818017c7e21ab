import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPlan, effectiveOptions, SOCKETS_PER_SOURCE_ADDRESS, type MachineFacts } from '../runner/preflight.js';
import { serverProcesses, serverProcessesOfArgv, variantArgv, type VariantSet } from '../model/variants.js';
import { validateScenario } from '../scenarios/load.js';

const facts: MachineFacts = {
  cpus: 2,
  fdSoft: 20000,
  fdHard: 20000,
  portRange: [32768, 60999],
  loopbackOk: Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`),
  loopbackFailed: [],
  freeDiskBytes: 10 * 2 ** 30,
  freeMemBytes: 20 * 2 ** 30,
  totalMemBytes: 24 * 2 ** 30,
  caddyPath: '/usr/bin/caddy',
  tasksetPath: '/usr/bin/taskset',
  conntrackMax: null,
};

function scenario(connections: number, variants: unknown[], extra: Record<string, unknown> = {}) {
  return validateScenario(
    {
      name: 'p',
      description: 'd',
      variants,
      seed: { boards: 2000, cardsPerBoard: 5 },
      users: { perBoard: 20 },
      load: { updatesPerUserPerMin: 1 },
      stages: [{ connections, durationSec: 1 }],
      ...extra,
    },
    'p.json',
  );
}

test('server processes come from shards / workers, defaults 1 and CPUs; also read back from a recorded argv', () => {
  assert.equal(serverProcesses({ kind: 'batched', options: {} }, 2), 1);
  assert.equal(serverProcesses({ kind: 'batched', options: { shards: 3 } }, 2), 3);
  assert.equal(serverProcesses({ kind: 'per-request', options: {} }, 2), 2);
  assert.equal(serverProcesses({ kind: 'per-request', options: { workers: 8 } }, 2), 8);
  assert.equal(serverProcessesOfArgv('batched', ['--shards', '3'], 2), 3);
  assert.equal(serverProcessesOfArgv('per-request', ['--workers=8'], 2), 8);
  assert.equal(serverProcessesOfArgv('per-request', ['--bogus'], 2), 2, 'an argv it cannot read counts as nothing set');
});

/** The argv a variant runs with: what effectiveOptions gives, as the spawn writes it. */
const argv = (v: VariantSet, connections: number): string[] => variantArgv(effectiveOptions(v, connections, 20000, 2));

test('30k sockets: batched without --shards gets 2 shards; an explicit --shards 1 is refused with the fix; per-request over 2 workers passes', () => {
  const s = scenario(30000, [
    { name: 'batched', kind: 'batched' },
    { name: 'per-request', kind: 'per-request' },
  ]);
  const c = checkPlan(s, facts);
  assert.deepEqual(c.errors, []);
  assert.match(
    c.notes.join('\n'),
    /variant "batched": 30000 sockets need 2 shards \(one process holds at most 19600 sockets here, the primary 2000 fewer of its own shard's: it keeps room for handoffs\)/,
  );
  assert.deepEqual(argv({ kind: 'batched', options: {} }, 30000), ['--shards', '2']);
  // the primary is shard 0 and keeps 2,000 descriptors for sockets waiting for the other shards
  assert.deepEqual(argv({ kind: 'batched', options: {} }, 35200), ['--shards', '2'], '17,600 each');
  assert.deepEqual(argv({ kind: 'batched', options: {} }, 35201), ['--shards', '3'], 'one more would leave the primary under 2,000 free');
  assert.deepEqual(argv({ kind: 'batched', options: {} }, 19600), [], 'one process up to its own limit: nothing to hand off');
  const tight = checkPlan(scenario(38000, [{ name: 'batched', kind: 'batched', flags: ['--shards', '2'] }]), facts);
  assert.match(tight.errors.join('\n'), /38000 sockets over 2 server process\(es\) is ~19000 per process.* Give it --shards 3 or more/);
  assert.deepEqual(argv({ kind: 'batched', options: {} }, 19000), [], 'one process when it fits: the seed design');
  assert.deepEqual(argv({ kind: 'batched', options: { shards: 3 } }, 30000), ['--shards', '3'], 'explicit options are kept');
  assert.deepEqual(argv({ kind: 'per-request', options: {} }, 30000), ['--workers', '2'], 'the worker count is written out, so taskset cannot shrink it');
  assert.deepEqual(argv({ kind: 'per-request', options: { workers: 4 } }, 30000), ['--workers', '4']);
  assert.deepEqual(
    argv({ kind: 'per-request', options: { txMode: 'deferred', workers: 4, busyTimeoutMs: 5 } }, 300),
    ['--workers', '4', '--tx-mode', 'deferred', '--busy-timeout-ms', '5'],
    "in the kind's option order",
  );
  const one = checkPlan(scenario(30000, [{ name: 'batched', kind: 'batched', flags: ['--shards', '1'] }]), facts);
  assert.equal(one.errors.length, 1);
  assert.match(
    one.errors[0]!,
    /variant "batched": 30000 sockets over 1 server process\(es\) is ~30000 per process, over the 20000-descriptor limit .* Give it --shards 2 or more/,
  );
  const pr = checkPlan(scenario(40000, [{ name: 'per-request', kind: 'per-request' }]), facts);
  assert.match(pr.errors.join('\n'), /variant "per-request": 40000 sockets over 2 server process\(es\) is ~22000 per process.* Give it --workers 3 or more/);
});

test('too few loopback addresses, a narrow port range and missing Caddy are each refused with what to do', () => {
  const s = scenario(30000, [{ name: 'b', kind: 'batched', flags: ['--shards', '2'] }]);
  const c = checkPlan(s, { ...facts, loopbackOk: ['127.0.0.2'], loopbackFailed: ['127.0.0.3', '127.0.0.4'], portRange: [50000, 55000] });
  assert.equal(c.errors.length, 2);
  assert.match(
    c.errors[0]!,
    new RegExp(`ephemeral port range has 5001 ports but up to ${SOCKETS_PER_SOURCE_ADDRESS} sockets would share one source address.*ip_local_port_range`),
  );
  assert.match(
    c.errors[1]!,
    new RegExp(
      `need ${Math.ceil(30000 / SOCKETS_PER_SOURCE_ADDRESS)} loopback source addresses .* only 1 could be bound \\(failed: 127\\.0\\.0\\.3, 127\\.0\\.0\\.4\\)`,
    ),
  );
  const caddy = checkPlan(scenario(1000, [{ name: 'b', kind: 'batched' }], { via: 'caddy' }), { ...facts, caddyPath: null });
  assert.match(caddy.errors.join('\n'), /no `caddy` is on PATH: install Caddy 2 \(Debian: apt-get install -y caddy\)/);
});

test('Caddy above ~10k sockets is refused: two descriptors per socket', () => {
  const c = checkPlan(scenario(12000, [{ name: 'b', kind: 'batched' }], { via: 'caddy' }), facts);
  assert.match(
    c.errors.join('\n'),
    /Caddy, which holds 2 descriptors per proxied socket: 12000 sockets need ~24000, over the 20000 limit \(Caddy returns 502 beyond ~9800 sockets here\)/,
  );
});

test('memory and disk', () => {
  const s = scenario(1000, [{ name: 'b', kind: 'batched' }]);
  const c = checkPlan(s, { ...facts, freeDiskBytes: 10 * 2 ** 20 });
  assert.match(c.errors.join('\n'), /only 10 MiB free on the output disk/);
  const m = checkPlan(scenario(30000, [{ name: 'b', kind: 'batched', flags: ['--shards', '2'] }]), { ...facts, freeMemBytes: 2 ** 30, totalMemBytes: 2 ** 30 });
  assert.match(m.errors.join('\n'), /about 1\.4 GiB of memory is needed for 30000 sockets and only 1\.0 GiB is free/);
});
