/**
 * What a bare `ws` client costs per socket on this machine: the floor the fleet's own memory is read
 * against (issue 14). Opens N plain WebSocket clients (no recorder, no schedule, perMessageDeflate off,
 * spread over 127.0.0.2-5) to a running server, waits until all are open and 2 s more, runs a full
 * GC when --expose-gc was given, and prints one JSON line: process.memoryUsage() before and after in
 * MiB, and RSS and JS heap per socket in KiB. Then exits (the server sees the sockets close).
 *
 * With `--raw` it opens the same WebSockets without `ws`: a `net.Socket`, the upgrade request written
 * by hand, and one 'data' listener that waits for the end of the 101 response and then ignores what
 * comes. That is the least any Node.js client can hold an open WebSocket with (the kernel's socket
 * buffers are not in RSS), so it is the floor under any fleet written in Node.js, `ws` or not.
 *
 *   node dist/runner/cli.js seed --db /tmp/m.db --boards 750 --cards-per-board 20
 *   node dist/runner/cli.js serve floor --db /tmp/m.db --port 18090 &
 *   node --expose-gc --max-semi-space-size=16 dist/micro/ws-client-memory.js ws://127.0.0.1:18090/ws 10000
 *   node --expose-gc --max-semi-space-size=16 dist/micro/ws-client-memory.js ws://127.0.0.1:18090/ws 10000 --raw
 *
 * At most about 19,000 sockets (one process's descriptor limit). Every wait is bounded (60 s).
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import type WebSocket from 'ws';

const mib = (b: number): number => Math.round((b / 1048576) * 10) / 10;
const usage = (): Record<string, number> => Object.fromEntries(Object.entries(process.memoryUsage()).map(([k, v]) => [k, mib(v)]));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  const [url, nText, mode, ...rest] = process.argv.slice(2);
  const n = Number(nText);
  const raw = mode === '--raw';
  let parsed: URL | null = null;
  try {
    parsed = url ? new URL(url) : null;
  } catch {
    parsed = null;
  }
  if (
    parsed === null ||
    !url ||
    !/^wss?:\/\//.test(url) ||
    !Number.isSafeInteger(n) ||
    n < 1 ||
    n > 19_000 ||
    (mode !== undefined && !raw) ||
    rest.length > 0 ||
    (raw && url.startsWith('wss:'))
  ) {
    process.stderr.write('usage: node dist/micro/ws-client-memory.js ws://HOST:PORT/ws N [--raw]   (N sockets, 1..19000; --raw: no ws library, ws:// only)\n');
    return 2;
  }
  // `ws` is loaded only when used, so that --raw's baseline is Node's alone
  const WebSocketClass = raw ? null : (await import('ws')).default;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage();
  let open = 0;
  let failed = 0;
  const sockets: Array<WebSocket | Socket> = [];
  const u = parsed;
  for (let i = 0; i < n; i++) {
    const target = `${u.pathname}?board=${Math.floor(i / 20) + 1}&user=${i}`;
    const localAddress = `127.0.0.${2 + (i % 4)}`;
    if (raw) {
      sockets.push(
        rawWebSocket(
          u.hostname,
          Number(u.port || 80),
          target,
          localAddress,
          () => open++,
          () => failed++,
        ),
      );
    } else {
      const ws = new WebSocketClass!(`${u.origin}${target}`, { perMessageDeflate: false, localAddress });
      ws.on('open', () => open++);
      ws.on('error', () => failed++);
      ws.on('message', () => {});
      sockets.push(ws);
    }
    if (i % 500 === 499) await sleep(200); // about 2,500 connections a second
  }
  const deadline = Date.now() + 60_000;
  while (open + failed < n && Date.now() < deadline) await sleep(100);
  if (open < n) {
    process.stderr.write(`only ${open} of ${n} sockets opened (${failed} failed)\n`);
    return 1;
  }
  await sleep(2000);
  gc?.();
  const after = process.memoryUsage();
  const perSocketKiB = (a: number, b: number): number => Math.round(((a - b) / 1024 / n) * 100) / 100;
  const report = {
    client: raw ? 'raw net.Socket' : 'ws',
    sockets: n,
    gc: gc !== undefined,
    beforeMiB: Object.fromEntries(Object.entries(before).map(([k, v]) => [k, mib(v)])),
    afterMiB: usage(),
    rssPerSocketKiB: perSocketKiB(after.rss, before.rss),
    heapUsedPerSocketKiB: perSocketKiB(after.heapUsed, before.heapUsed),
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
  for (const x of sockets) 'terminate' in x ? x.terminate() : x.destroy();
  return 0;
}

/**
 * An open WebSocket with nothing but `net`: the upgrade request, then one listener that counts the
 * socket open at the end of a 101 response (failed on any other status) and ignores every later byte.
 */
function rawWebSocket(host: string, port: number, target: string, localAddress: string, opened: () => void, failed: () => void): Socket {
  const s = connect({ host, port, localAddress });
  let state = 0; // 0 waiting for the response head, 1 open, 2 failed
  let head = '';
  s.setNoDelay(true);
  s.on('connect', () => {
    const key = randomBytes(16).toString('base64');
    s.write(
      `GET ${target} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
  s.on('data', (d: Buffer) => {
    if (state !== 0) return;
    head += d.toString('latin1');
    if (!head.includes('\r\n\r\n')) return;
    state = head.startsWith('HTTP/1.1 101') ? 1 : 2;
    head = '';
    if (state === 1) opened();
    else failed();
  });
  // a connection that ends or fails before the 101 is a failure, counted once
  const lost = (): void => {
    if (state !== 0) return;
    state = 2;
    failed();
  };
  s.on('error', lost);
  s.on('close', lost);
  return s;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`ws-client-memory: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
