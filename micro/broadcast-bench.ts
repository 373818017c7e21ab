/**
 * Broadcast frames per second one batched server pushes: 1,000 sockets on 50 boards (20 each),
 * one sender per board keeping a window of updates in flight (closed loop, so the server is
 * saturated but never OVERLOADED). The server runs as its own process (`wami-bench serve
 * batched`); the sockets live in this process. Reports the server's own counter
 * (wami_broadcast_frames_total) and the frames the sockets actually received, over the window.
 *
 *   node dist/micro/broadcast-bench.js [--sockets 1000] [--boards 50] [--seconds 10] [--window 50] [--flush-interval-ms 100]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { seedDatabase } from '../servers/common/db.js';

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../runner/cli.js');

async function scrape(http: string, name: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

/** CPU seconds (user + system) of a process, from /proc (Linux). */
function cpuSec(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(parts[11]) + Number(parts[12])) / 100;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { sockets: { type: 'string' }, boards: { type: 'string' }, seconds: { type: 'string' }, window: { type: 'string' }, 'flush-interval-ms': { type: 'string' } },
  });
  const socketsN = Number(values.sockets ?? 1000);
  const boards = Number(values.boards ?? 50);
  const seconds = Number(values.seconds ?? 10);
  const windowN = Number(values.window ?? 50);
  const flush = values['flush-interval-ms'] ?? '100';
  const perBoard = Math.floor(socketsN / boards);
  const cardsPerBoard = 20;

  const dir = mkdtempSync(join(tmpdir(), 'wami-bcast-'));
  const db = join(dir, 'b.db');
  seedDatabase(db, { boards, cardsPerBoard });
  const child = spawn(process.execPath, [CLI, 'serve', 'batched', '--port', '0', '--db', db, '--flush-interval-ms', flush, '--max-buffered-bytes', String(64 * 1024 * 1024)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((res, rej) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on ws:\/\/[\d.]+:(\d+)\/ws/.exec(out);
        if (m) res(Number(m[1]));
      });
      child.once('exit', (c) => rej(new Error(`server exited ${c}`)));
    });
    const http = `http://127.0.0.1:${port}`;
    let received = 0;
    let counting = false;
    const sockets: WebSocket[] = [];
    const senders: { ws: WebSocket; board: number; inflight: number; n: number }[] = [];
    for (let b = 1; b <= boards; b++) {
      for (let k = 0; k < perBoard; k++) {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?board=${b}&user=${b * 1000 + k}`, { perMessageDeflate: false });
        await new Promise((r, j) => {
          ws.once('open', r);
          ws.once('error', j);
        });
        sockets.push(ws);
        if (k === 0) {
          const s = { ws, board: b, inflight: 0, n: 0 };
          senders.push(s);
          ws.on('message', (data) => {
            // the sender only gets acks/errors: cheap check on the first bytes
            if ((data as Buffer)[9] === 0x61 /* {"type":"ack" */) s.inflight--;
            else if (String(data).includes('"error"')) s.inflight--;
            pump(s);
          });
        } else {
          ws.on('message', () => {
            if (counting) received++;
          });
        }
      }
    }
    let running = true;
    const pump = (s: (typeof senders)[number]): void => {
      while (running && s.inflight < windowN) {
        s.inflight++;
        s.n++;
        const t = performance.now();
        s.ws.send(
          `{"type":"update","id":"b${s.board}-${s.n}","card":${(s.board - 1) * cardsPerBoard + (s.n % cardsPerBoard) + 1},"column":"doing","title":"bench ${s.n}","at":${t},"sentAt":${t}}`,
        );
      }
    };
    senders.forEach(pump);
    await new Promise((r) => setTimeout(r, 2000)); // warm-up
    counting = true;
    const f0 = await scrape(http, 'wami_broadcast_frames_total');
    const p0 = await scrape(http, 'wami_updates_persisted_total');
    const t0 = performance.now();
    const sc0 = cpuSec(child.pid!);
    const cc0 = cpuSec(process.pid);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const sc1 = cpuSec(child.pid!);
    const cc1 = cpuSec(process.pid);
    const f1 = await scrape(http, 'wami_broadcast_frames_total');
    const p1 = await scrape(http, 'wami_updates_persisted_total');
    counting = false;
    const dt = (performance.now() - t0) / 1000;
    running = false;
    const overloaded = await scrape(http, 'wami_errors_total{code="OVERLOADED"}');
    const result = {
      sockets: sockets.length,
      boards,
      membersPerBoard: perBoard,
      flushIntervalMs: Number(flush),
      window: windowN,
      seconds: dt,
      serverFramesPerSec: (f1 - f0) / dt,
      clientReceivedFramesPerSec: received / dt,
      updatesPersistedPerSec: (p1 - p0) / dt,
      serverCpuPct: ((sc1 - sc0) / dt) * 100,
      clientCpuPct: ((cc1 - cc0) / dt) * 100,
      overloaded: Number.isNaN(overloaded) ? 0 : overloaded,
    };
    console.log(
      `${result.sockets} sockets on ${boards} boards: server sent ${Math.round(result.serverFramesPerSec)} broadcast frames/s, ` +
        `sockets received ${Math.round(result.clientReceivedFramesPerSec)}/s, ${Math.round(result.updatesPersistedPerSec)} updates/s persisted ` +
        `(server CPU ${result.serverCpuPct.toFixed(0)}% of a core, this client process ${result.clientCpuPct.toFixed(0)}%)`,
    );
    console.log(JSON.stringify(result));
    for (const ws of sockets) ws.terminate();
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
