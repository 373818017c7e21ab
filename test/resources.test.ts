import { strict as assert } from 'node:assert';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { parseProcStat, parseSmapsRollupPssBytes, parseSockstatTcpMemPages, readKernelTcpMemBytes, treePids, type ProcStat } from '../runner/proc.js';
import { parseVmRss } from '../clients/procstat.js';
import { CpuTracker, ResourceSampler, rssBytesPerSocket } from '../runner/resources.js';
import { nowMs } from '../protocol/clock.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('/proc parsers (pure)', () => {
  test('parseProcStat reads fields after the last ")" (comm with spaces and parentheses)', () => {
    const line =
      '4242 (node (worker) x) S 4200 4242 4200 0 -1 4194560 1234 0 0 0 150 25 7 3 20 0 11 0 98765 1210056704 12345 18446744073709551615 1 1 0 0 0 0 0 16781312 17922 0 0 0 17 1 0 0 0 0 0\n';
    const st = parseProcStat(line)!;
    assert.equal(st.pid, 4242);
    assert.equal(st.comm, 'node (worker) x');
    assert.equal(st.state, 'S');
    assert.equal(st.ppid, 4200);
    assert.equal(st.utimeTicks, 150);
    assert.equal(st.stimeTicks, 25);
    assert.equal(st.cutimeTicks, 7);
    assert.equal(st.cstimeTicks, 3);
    assert.equal(st.startTicks, 98765);
    assert.equal(st.rssPages, 12345);
    assert.equal(parseProcStat('garbage'), null);
    assert.equal(parseProcStat('1 (x) S 0'), null);
  });

  test('status VmRSS, smaps_rollup Pss and sockstat TCP mem', () => {
    assert.equal(parseVmRss('Name:\tnode\nVmPeak:\t 999 kB\nVmRSS:\t   51200 kB\nRssAnon:\t 1 kB\n'), 51200 * 1024);
    assert.equal(parseVmRss('Name:\tkthreadd\n'), null);
    const rollup =
      '55d0c0000000-7ffd00000000 ---p 00000000 00:00 0                          [rollup]\nRss:              102400 kB\nPss:               81234 kB\nPss_Anon:          70000 kB\nPss_File:          11234 kB\n';
    assert.equal(parseSmapsRollupPssBytes(rollup), 81234 * 1024);
    assert.equal(parseSmapsRollupPssBytes('Rss: 1 kB\n'), null);
    const sockstat = 'sockets: used 123\nTCP: inuse 5 orphan 0 tw 2 alloc 7 mem 42\nUDP: inuse 1 mem 3\n';
    assert.equal(parseSockstatTcpMemPages(sockstat), 42);
    assert.equal(parseSockstatTcpMemPages('UDP: inuse 1 mem 3\n'), null);
    // Live, so its value moves: on Linux it is read (not null) and is whole pages of the page size.
    const live = readKernelTcpMemBytes();
    const page = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim());
    assert.ok(live !== null && Number.isSafeInteger(live) && live >= 0, String(live));
    assert.equal(live % page, 0, `${live} bytes is not whole ${page}-byte pages`);
  });

  test('treePids walks descendants of every root, ignoring unknown roots', () => {
    const all = new Map<number, { ppid: number }>([
      [1, { ppid: 0 }],
      [10, { ppid: 1 }],
      [11, { ppid: 10 }],
      [12, { ppid: 10 }],
      [13, { ppid: 12 }],
      [20, { ppid: 1 }],
      [21, { ppid: 20 }],
    ]);
    assert.deepEqual(
      [...treePids(all, [10])].sort((a, b) => a - b),
      [10, 11, 12, 13],
    );
    assert.deepEqual(
      [...treePids(all, [12, 20, 999])].sort((a, b) => a - b),
      [12, 13, 20, 21],
    );
    assert.equal(treePids(all, [999]).size, 0);
  });

  test('CpuTracker: positive deltas per process, new processes count in full, exits and pid reuse are harmless', () => {
    const st = (pid: number, start: number, u: number, s: number): ProcStat => ({
      pid,
      comm: 'x',
      state: 'S',
      ppid: 1,
      utimeTicks: u,
      stimeTicks: s,
      cutimeTicks: 0,
      cstimeTicks: 0,
      startTicks: start,
      rssPages: 0,
    });
    const t = new CpuTracker();
    assert.equal(t.update([st(1, 100, 50, 50), st(2, 100, 10, 0)]), 0); // baseline
    assert.equal(t.update([st(1, 100, 60, 55), st(2, 100, 12, 0)]), 17);
    // pid 2 exits, pid 3 appears with 4 ticks
    assert.equal(t.update([st(1, 100, 60, 55), st(3, 500, 3, 1)]), 4);
    // pid 3 reused by a new process (new start time) with 2 ticks: counts 2, not -2
    assert.equal(t.update([st(1, 100, 61, 55), st(3, 900, 1, 1)]), 3);
    assert.equal(t.totalTicks, 24);
  });

  test('rssBytesPerSocket', () => {
    assert.equal(rssBytesPerSocket(150_000_000, 50_000_000, 1000), 100_000);
    assert.equal(rssBytesPerSocket(150_000_000, 50_000_000, 0), null);
    assert.equal(rssBytesPerSocket(40_000_000, 50_000_000, 10), 0);
  });
});

describe('ResourceSampler on a real process tree', () => {
  const started: ChildProcess[] = [];
  let childPids: number[] = [];
  after(() => {
    for (const pid of childPids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const c of started) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  });

  test('counts the tree, sees RSS grow when children allocate, CPU > 0, PSS present', async () => {
    // Each child burns ~300 ms of CPU, then waits; on SIGUSR2 it allocates and touches 64 MiB.
    const childCode = `
      const end = Date.now() + 300; let x = 0; while (Date.now() < end) x += Math.sqrt(x + 1);
      let keep = null;
      process.on('SIGUSR2', () => {
        keep = Buffer.alloc(64 * 1024 * 1024, 1);
        const burn = Date.now() + 300; let y = 0; while (Date.now() < burn) y += Math.sqrt(y + 1);
        console.log('allocated ' + process.pid + ' ' + keep.length);
      });
      console.log('ready ' + process.pid);
      setInterval(() => {}, 1000);`;
    const parentCode = `
      const { spawn } = require('node:child_process');
      const code = ${JSON.stringify(childCode)};
      const kids = [0, 1].map(() => spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'inherit', 'inherit'] }));
      console.log('kids ' + kids.map((k) => k.pid).join(','));
      process.on('SIGTERM', () => { for (const k of kids) k.kill('SIGKILL'); process.exit(0); });
      setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ['-e', parentCode], { stdio: ['ignore', 'pipe', 'inherit'] });
    started.push(parent);
    const lines: string[] = [];
    const waiters: Array<() => void> = [];
    createInterface({ input: parent.stdout! }).on('line', (l) => {
      lines.push(l);
      for (const w of waiters.splice(0)) w();
    });
    const waitFor = async (pred: () => boolean, ms = 10000): Promise<void> => {
      const deadline = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(`timed out; lines: ${lines.join(' | ')}`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), sleep(100)]);
      }
    };
    await waitFor(() => lines.some((l) => l.startsWith('kids ')));
    childPids = lines
      .find((l) => l.startsWith('kids '))!
      .slice(5)
      .split(',')
      .map(Number);
    assert.equal(childPids.length, 2);

    const sampler = new ResourceSampler({
      serverRootPids: [parent.pid!],
      fleetRootPids: [process.pid], // includes the parent as our child: must be left to the server
      intervalMs: 200,
      connectionsProbe: async () => 7,
    });
    sampler.start();
    await waitFor(() => lines.filter((l) => l.startsWith('ready ')).length === 2);
    // Samples of the idle tree, awaited as samples (not as a time a busy machine may not keep).
    await waitFor(() => sampler.current().length >= 2);
    const idle = sampler.markIdle();
    assert.ok(idle > 0);
    for (const pid of childPids) process.kill(pid, 'SIGUSR2');
    await waitFor(() => lines.filter((l) => l.startsWith('allocated ')).length === 2);
    // A sample taken after both allocated (the 64 MiB each, and the 300 ms of CPU each burnt with it).
    const n = sampler.current().length;
    await waitFor(() => sampler.current().length >= Math.max(n + 1, 4) && sampler.current().some((x) => x.serverConnections === 7));
    const rep = sampler.stop(10);
    assert.strictEqual(sampler.stop(), rep, 'stop is idempotent');

    assert.equal(rep.processes, 3);
    assert.ok(rep.rssBytesIdle === idle);
    assert.ok(rep.rssBytesMax - rep.rssBytesIdle > 100 * 1024 * 1024, `RSS grew by only ${rep.rssBytesMax - rep.rssBytesIdle}`);
    assert.ok(rep.rssBytesPerSocket! > 10 * 1024 * 1024);
    assert.ok(rep.pssBytesMax !== null && rep.pssBytesMax > 100 * 1024 * 1024, `pss ${rep.pssBytesMax}`);
    assert.ok(rep.cpuSec > 0.1, `cpuSec ${rep.cpuSec}`);
    assert.ok(rep.samples.length >= 4, `samples ${rep.samples.length}`);
    assert.ok(rep.samples.some((s) => s.serverCpuPct > 0));
    assert.ok(rep.samples.every((s) => s.serverProcesses === 3));
    assert.ok(rep.samples.some((s) => s.serverConnections === 7));
    assert.ok(rep.samples.every((s, i) => i === 0 || s.t > rep.samples[i - 1]!.t));
    assert.ok(rep.samples.every((s) => s.serverPssBytes === null || s.serverPssBytes > 0));
    // The fleet tree is this test process alone (its child, the parent, belongs to the server).
    assert.equal(rep.fleet.processesMax, 1);
    assert.ok(rep.fleet.rssBytesMax > 0);
    assert.ok(rep.tickErrors === 0);

    parent.kill('SIGTERM');
    await new Promise((r) => parent.once('exit', r));
  });

  test('the measured window: readings inside it give rssBytesMaxMeasured, a window no reading fell in gives null', async () => {
    const run = async (fromMs: number, toMs: number | null) => {
      const s = new ResourceSampler({ serverRootPids: [process.pid], intervalMs: 20, pss: false });
      if (toMs !== null) s.setWindow(fromMs, toMs);
      s.start();
      for (let i = 0; i < 3000 && s.current().length < 3; i++) await sleep(10);
      return s.stop();
    };
    // every reading inside (a window of a minute either side, on the fleet's clock): the same maximum as the whole run's
    const all = await run(nowMs() - 60_000, nowMs() + 60_000);
    assert.ok(all.rssBytesMax > 0);
    assert.equal(all.rssBytesMaxMeasured, all.rssBytesMax);
    // a window that ended a second before the first reading, one that starts a minute after the last, and none at all
    assert.equal((await run(nowMs() - 60_000, nowMs() - 1000)).rssBytesMaxMeasured, null);
    assert.equal((await run(nowMs() + 60_000, nowMs() + 120_000)).rssBytesMaxMeasured, null);
    assert.equal((await run(0, null)).rssBytesMaxMeasured, null);
  });

  test('roots that do not exist (or die) yield zero processes and never throw', async () => {
    const s = new ResourceSampler({
      serverRootPids: [2 ** 22 + 12345],
      fleetRootPids: () => {
        throw new Error('boom');
      },
      intervalMs: 50,
      connectionsProbe: () => Promise.reject(new Error('down')),
    });
    s.start();
    for (let i = 0; i < 3000 && s.current().length < 2; i++) await sleep(10);
    const rep = s.stop();
    assert.equal(rep.processes, 0);
    assert.equal(rep.rssBytesMax, 0);
    assert.equal(rep.cpuSec, 0);
    assert.equal(rep.rssBytesPerSocket, null);
    assert.ok(rep.samples.length >= 2);
    assert.ok(rep.samples.every((x) => x.serverProcesses === 0 && x.serverConnections === null && x.serverPssBytes === null));
  });
});
