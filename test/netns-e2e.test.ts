/**
 * Many hosts without a cluster: "hosts" are network namespaces this test makes itself. The runner
 * (server and audit) runs in one namespace; two fleet segments run in two others, each joined to the
 * server's namespace by its own veth pair with link-local addresses (169.254.x.y/30) that exist
 * only inside those namespaces, so the traffic crosses a real link and never leaves the machine.
 * `run --fleet external --segments 2` waits for both segments, merges and audits them. Everything
 * made is removed afterwards, even when the test fails. Skipped, saying why, where namespaces cannot
 * be made (not root, no `ip`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FleetResult } from '../model/fleet-result.js';
import type { ResultFile } from '../model/result.js';
import { CLI } from './helpers/server.js';

const tag = `wb${process.pid}`;
const NS = { server: `${tag}-srv`, f0: `${tag}-f0`, f1: `${tag}-f1` };
/** Per fleet namespace: its veth pair (server side, fleet side) and /30 addresses. */
const LINKS = [
  { ns: NS.f0, srvIf: `${tag}s0`, fleetIf: `${tag}f0`, srvIp: '169.254.77.1', fleetIp: '169.254.77.2' },
  { ns: NS.f1, srvIf: `${tag}s1`, fleetIf: `${tag}f1`, srvIp: '169.254.77.5', fleetIp: '169.254.77.6' },
];
const PORT = 8080;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
}

/** Why namespaces cannot be made here (null when they can): tries one and removes it. */
function netnsSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'network namespaces need root (ip netns add); run the suite as root to run this test';
  const probe = `${tag}-probe`;
  try {
    ip('netns', 'add', probe);
  } catch (e) {
    return `cannot create a network namespace here (ip netns add: ${String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim()})`;
  }
  try {
    ip('netns', 'del', probe);
  } catch {
    /* removed below with the others at worst */
  }
  return null;
}

function removeAll(): void {
  // deleting a namespace deletes the veth ends inside it, and with them their peers
  for (const n of Object.values(NS)) {
    try {
      ip('netns', 'del', n);
    } catch {
      /* not made */
    }
  }
}

function makeHosts(): void {
  for (const n of Object.values(NS)) {
    ip('netns', 'add', n);
    ip('-n', n, 'link', 'set', 'lo', 'up');
  }
  for (const l of LINKS) {
    ip('link', 'add', l.srvIf, 'netns', NS.server, 'type', 'veth', 'peer', 'name', l.fleetIf, 'netns', l.ns);
    ip('-n', NS.server, 'addr', 'add', `${l.srvIp}/30`, 'dev', l.srvIf);
    ip('-n', l.ns, 'addr', 'add', `${l.fleetIp}/30`, 'dev', l.fleetIf);
    ip('-n', NS.server, 'link', 'set', l.srvIf, 'up');
    ip('-n', l.ns, 'link', 'set', l.fleetIf, 'up');
  }
}

interface Proc {
  child: ChildProcess;
  out: () => string;
  done: Promise<number | null>;
}

function inNs(ns: string, args: string[], timeoutMs: number): Proc {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<number | null>((res) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      res(code);
    }),
  );
  return { child, out: () => text, done };
}

const skip = netnsSkipReason();
if (skip) process.stderr.write(`netns end-to-end test skipped: ${skip}\n`);

test('two fleet segments in two namespaces against a server in a third: merged, audited, accounting = the sum of the segments', {
  skip: skip ?? false,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wami-netns-'));
  const procs: Proc[] = [];
  try {
    removeAll();
    makeHosts();
    // 8 boards of 5: segment 0/2 holds boards 1-4, segment 1/2 boards 5-8
    const scenario = join(dir, 'netns.json');
    writeFileSync(
      scenario,
      JSON.stringify({
        name: 'netns',
        description: 'two segments over veth links',
        variants: [{ name: 'batched', kind: 'batched' }],
        seed: { boards: 8, cardsPerBoard: 10 },
        users: { perBoard: 5, connectRatePerSec: 2000 },
        load: { updatesPerUserPerMin: 60, arrival: 'poisson', seed: 7 },
        stages: [{ connections: 40, durationSec: 2 }],
        warmupSec: 0,
        repeats: 1,
        // a guard for a loaded machine: this test is about the segments, not about this machine's speed
        fleet: { drainSec: 3, guard: { lagMsP99: 1000, cpuPct: 1000, eventLoopDelayMsP99: 1000 } },
        thresholds: ['audit.lostAcked == 0', 'delivery.missing == 0'],
      }),
    );
    const segDir = join(dir, 'segments');
    const out = join(dir, 'out');
    const runner = inNs(
      NS.server,
      [
        'run',
        scenario,
        '--fleet',
        'external',
        '--segments',
        '2',
        '--segment-dir',
        segDir,
        '--host',
        '0.0.0.0',
        '--port',
        String(PORT),
        '--segments-timeout-sec',
        '90',
        '--out',
        out,
        '--keep-db',
        '--no-report',
      ],
      150_000,
    );
    procs.push(runner);
    LINKS.forEach((l, i) => {
      procs.push(
        inNs(
          l.ns,
          [
            'fleet',
            '--scenario',
            scenario,
            '--url',
            `ws://${l.srvIp}:${PORT}/ws`,
            '--segment',
            `${i}/2`,
            '--barrier',
            segDir,
            '--workers',
            '1',
            '--wait-server-sec',
            '60',
            '--quiet',
          ],
          150_000,
        ),
      );
    });
    const codes = await Promise.all(procs.map((p) => p.done));
    const outputs = procs.map((p) => p.out()).join('\n----\n');
    assert.deepEqual(codes, [0, 0, 0], outputs);

    const result = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as ResultFile;
    const run = result.runs[0]!;
    assert.equal(run.status, 'ok', outputs);
    assert.equal(run.audit?.ok, true);
    assert.equal(run.audit?.lostAcked, 0);
    // the segments the runner consumed are kept beside the database (--keep-db)
    const work = join(out, 'work');
    const segFiles = readdirSync(work)
      .filter((f) => /\.segment-\d-of-2\.json$/.test(f))
      .sort();
    assert.equal(segFiles.length, 2);
    const segs = segFiles.map((f) => JSON.parse(readFileSync(join(work, f), 'utf8')) as FleetResult);
    // each segment reached the server over its own link, from its own namespace, with whole boards
    assert.deepEqual(
      segs.map((s) => [s.segment!.index, s.segment!.boards, s.segment!.users, (s.config.url as string).includes(LINKS[s.segment!.index]!.srvIp)]),
      [
        [0, { first: 1, last: 4, count: 4 }, { first: 0, count: 20 }, true],
        [1, { first: 5, last: 8, count: 4 }, { first: 20, count: 20 }, true],
      ],
    );
    const sum = (pick: (r: FleetResult) => number): number => segs.reduce((n, s) => n + pick(s), 0);
    assert.equal(
      run.sockets.reached,
      sum((s) => s.sockets.reached),
    );
    assert.equal(run.sockets.reached, 40);
    for (const k of ['sent', 'acked', 'errored', 'unanswered'] as const)
      assert.equal(
        run.updates[k],
        sum((s) => s.updates[k]),
        `updates.${k}`,
      );
    for (const k of ['expected', 'received', 'missing', 'duplicate', 'outOfOrder', 'phantom'] as const)
      assert.equal(
        run.delivery[k],
        sum((s) => s.delivery[k]),
        `delivery.${k}`,
      );
    assert.equal(
      run.latency.ackMs.count,
      sum((s) => s.latency.ackMs.count),
    );
    assert.equal(
      run.latency.fanoutMs.count,
      sum((s) => s.latency.fanoutMs.count),
    );
    assert.ok(run.updates.acked > 0 && run.delivery.expected > 0, 'the run carried load');
    assert.equal(run.delivery.missing, 0);
    assert.equal(run.audit?.eventsStored, run.updates.acked);
    assert.deepEqual(
      run.fleetSegments?.map((s) => [s.index, s.status]),
      [
        [0, 'ok'],
        [1, 'ok'],
      ],
    );
  } finally {
    for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.done));
    removeAll();
    rmSync(dir, { recursive: true, force: true });
  }
  // nothing of ours is left
  const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  assert.ok(!left.includes(tag), `namespaces left: ${left}`);
});
