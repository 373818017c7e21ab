/**
 * Sizing N, the fleet's hosts (README.md, "Many hosts"): the limits of a host like this one from
 * what the preflight reads, the hosts a scenario needs (segmentsNeeded on each stage), the words the
 * preflight and `run --fleet external` print, with exact numbers; and `run --plan-only`, which prints
 * them without starting anything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fleetHostLimits, fleetSizing, fleetSizingText, readPortRange } from '../runner/preflight.js';
import { segmentLoadLine } from '../runner/external-fleet.js';
import { loadScenario, validateScenario } from '../scenarios/load.js';
import { CLI } from './helpers/server.js';

const GiB = 2 ** 30;
const twoCpus = { cpus: 2, portRange: [32768, 60999] as [number, number], totalMemBytes: 24 * GiB };

function scenario(stages: Array<{ connections: number; updatesPerUserPerMin?: number }>, perBoard = 20, updatesPerUserPerMin = 6) {
  return validateScenario(
    {
      name: 'sz',
      description: 'd',
      variants: [{ name: 'batched', kind: 'batched' }],
      seed: { boards: 5000, cardsPerBoard: 5 },
      users: { perBoard },
      load: { updatesPerUserPerMin },
      stages: stages.map((s) => ({ durationSec: 10, ...s })),
    },
    'sz.json',
  );
}

test('a fleet host: sockets by the ephemeral ports of one source address (or memory), deliveries/s by half its CPUs at 25 µs a message', () => {
  const two = fleetHostLimits(twoCpus);
  assert.equal(two.sockets, 28_232);
  assert.equal(two.deliveriesPerSec, 40_000);
  assert.equal(
    two.why,
    '≤ 28232 sockets: the 28232 ephemeral ports (32768-60999) of one source address; ≤ 40000 deliveries/s: 2 CPUs at ~25 µs a message, 50% of them',
  );
  assert.equal(fleetHostLimits({ ...twoCpus, cpus: 8 }).deliveriesPerSec, 160_000);
  assert.equal(fleetHostLimits({ ...twoCpus, cpus: 0 }).deliveriesPerSec, 20_000, 'at least one CPU');
  assert.equal(fleetHostLimits({ ...twoCpus, portRange: [1024, 65000] }).sockets, 63_977);
  const unread = fleetHostLimits({ ...twoCpus, portRange: null });
  assert.equal(unread.sockets, 28_232);
  assert.match(unread.why, /^≤ 28232 sockets: the 28232 ephemeral ports of Linux's default range \(assumed\) of one source address;/);
  // 1 GiB less the 512 MiB reserve at 30 KiB a socket: 17476 sockets, fewer than the ports
  const small = fleetHostLimits({ ...twoCpus, totalMemBytes: GiB });
  assert.equal(small.sockets, 17_476);
  assert.match(small.why, /^≤ 17476 sockets: 1\.0 GiB of memory at ~30 KiB a socket;/);
});

test('the hosts a scenario needs: the most demanding stage, by sockets and by deliveries, never more than its boards', () => {
  const lim = fleetHostLimits(twoCpus);
  const s = scenario([{ connections: 1000 }, { connections: 30_000 }]);
  const z = fleetSizing(s, lim);
  // 30000 users × 6/min = 3000 updates/s, each to 19 others and acked once: 60000 deliveries/s
  assert.deepEqual(z, { stageIndex: 1, connections: 30_000, boards: 1500, deliveriesPerSec: 60_000, bySockets: 2, byDeliveries: 2, segments: 2 });
  assert.deepEqual(fleetSizing(s, lim, [0]), {
    stageIndex: 0,
    connections: 1000,
    boards: 50,
    deliveriesPerSec: 2000,
    bySockets: 1,
    byDeliveries: 1,
    segments: 1,
  });
  // a stage's own rate counts: 1000 users at 120/min is 40000 deliveries/s, one host; 150/min is two
  assert.equal(fleetSizing(scenario([{ connections: 1000, updatesPerUserPerMin: 120 }]), lim).segments, 1);
  assert.equal(fleetSizing(scenario([{ connections: 1000, updatesPerUserPerMin: 150 }]), lim).byDeliveries, 2);
  // of stages needing as many hosts, the one with the most deliveries/s, then the most users, then the first
  assert.equal(fleetSizing(scenario([{ connections: 500 }, { connections: 400 }]), lim).stageIndex, 0);
  assert.equal(fleetSizing(scenario([{ connections: 1000 }, { connections: 1000, updatesPerUserPerMin: 60 }, { connections: 1000 }]), lim).stageIndex, 1);
  assert.equal(
    fleetSizing(
      scenario([
        { connections: 1000, updatesPerUserPerMin: 0 },
        { connections: 2000, updatesPerUserPerMin: 0 },
      ]),
      lim,
    ).stageIndex,
    1,
  );
  assert.equal(fleetSizing(scenario([{ connections: 700 }, { connections: 700 }]), lim).stageIndex, 0);
  // whole boards cap it: 3 boards of 1000 at 600/min is 3 hosts, not 750
  const capped = fleetSizing(scenario([{ connections: 3000 }], 1000, 600), lim);
  assert.deepEqual([capped.byDeliveries, capped.boards, capped.segments], [750, 3, 3]);
  assert.throws(() => fleetSizing(s, lim, []), /no stage/);
});

test("the preflight's words: a note always; a warning when --segments is fewer than needed", () => {
  const lim = fleetHostLimits(twoCpus);
  const z = fleetSizing(scenario([{ connections: 30_000 }]), lim);
  const local = fleetSizingText(z, lim, null);
  assert.equal(
    local.note,
    'fleet hosts: stage 1 (30000 users on 1500 boards, ~60000 deliveries/s with the acks) needs 2 fleet hosts like this one (by sockets 2, by deliveries 2; ' +
      'a host: ≤ 28232 sockets: the 28232 ephemeral ports (32768-60999) of one source address; ≤ 40000 deliveries/s: 2 CPUs at ~25 µs a message, 50% of them); ' +
      'here one host runs it over loopback source addresses, beside the server: to spread it, run --fleet external --segments 2',
  );
  assert.equal(local.warning, null, "the runner's own fleet: a note, not a warning");
  const one = fleetSizingText(z, lim, 1);
  assert.match(one.note, /\(by sockets 2, by deliveries 2; a host: .*\); --segments 1$/);
  assert.equal(
    one.warning,
    '--segments 1 is fewer than the 2 fleet hosts stage 1 needs: each segment would hold ~30000 sockets and receive ~60000 deliveries/s, beyond one host ' +
      'like this one (28232 sockets, 40000 deliveries/s); expect failed connects or the saturation guard to mark the run invalid; give --segments 2 (and as many hosts)',
  );
  assert.equal(fleetSizingText(z, lim, 2).warning, null);
  assert.equal(fleetSizingText(z, lim, 3).warning, null);
  const small = fleetSizingText(fleetSizing(scenario([{ connections: 1000 }]), lim), lim, null);
  assert.match(small.note, /needs 1 fleet host like this one \(by sockets 1, by deliveries 1; a host: .* 50% of them\)$/, 'one host: no advice to spread');
});

test('run --fleet external tells each host what its segment takes, and warns when the stage needs more hosts', async () => {
  const { scenario: smoke } = await loadScenario('smoke');
  const st = smoke.stages[0]!;
  const lim = fleetHostLimits(twoCpus);
  // 1000 users on 50 boards in 2: 25 boards, 500 users, 50 updates/s to 20 sockets each (19 broadcasts + the ack)
  assert.equal(segmentLoadLine(smoke, st, 2), '  each segment: up to 500 users on 25 boards, ~1000 deliveries/s');
  assert.equal(
    segmentLoadLine(smoke, st, 2, lim),
    '  each segment: up to 500 users on 25 boards, ~1000 deliveries/s; this stage needs 1 fleet host like this one (28232 sockets, 40000 deliveries/s each)',
  );
  assert.equal(segmentLoadLine(smoke, st, 3), '  each segment: up to 340 users on 17 boards, ~680 deliveries/s', 'the first segments get the extra board');
  const big = scenario([{ connections: 60_000 }]);
  assert.equal(
    segmentLoadLine(big, big.stages[0]!, 2, lim),
    '  each segment: up to 30000 users on 1500 boards, ~60000 deliveries/s; WARNING: this stage needs 3 fleet hosts like this one ' +
      '(28232 sockets, 40000 deliveries/s each), more than the 2 segments asked for: expect failed connects or a run marked invalid',
  );
});

test('run --plan-only prints the fleet hosts line and starts nothing; --segments over the boards is one line, exit 2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wami-plan-'));
  try {
    const out = join(dir, 'out');
    const r = spawnSync(
      process.execPath,
      [CLI, 'run', 'smoke', '--variants', 'batched', '--fleet', 'external', '--segments', '2', '--out', out, '--plan-only'],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    assert.equal(r.status, 0, r.stderr);
    // what this machine's preflight reads, through the same pure functions
    const lim = fleetHostLimits({ cpus: availableParallelism(), portRange: readPortRange(), totalMemBytes: totalmem() });
    const want = fleetSizingText(fleetSizing(scenario([{ connections: 1000 }]), lim), lim, 2).note;
    const lines = r.stdout.split('\n');
    assert.ok(lines.includes(`preflight: ${want}`), `${want}\nnot in:\n${r.stdout}`);
    assert.match(want, /^fleet hosts: stage 1 \(1000 users on 50 boards, ~2000 deliveries\/s with the acks\) needs 1 fleet host like this one /);
    assert.match(r.stdout, /^wami-bench run smoke: 1 run\(s\), about \d+s, the fleet as 2 external segments; plan only: nothing was started$/m);
    assert.ok(!existsSync(out), 'nothing written');

    const bad = spawnSync(process.execPath, [CLI, 'run', 'smoke', '--fleet', 'external', '--segments', '60', '--out', out, '--plan-only'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(bad.status, 2);
    assert.equal(
      bad.stderr,
      'wami-bench run: --segments 60 but stage 1 has only 50 boards (20 users each): a segment holds whole boards, so give at most 50\n',
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
