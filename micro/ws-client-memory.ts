/**
 * What a bare `ws` client costs per socket on this machine: the floor the fleet's own memory is read
 * against (issue 14). Opens N plain WebSocket clients (no recorder, no schedule, perMessageDeflate off,
 * spread over 127.0.0.2-5) to a running server, waits until all are open and 2 s more, runs a full
 * GC when --expose-gc was given, and prints one JSON line: process.memoryUsage() before and after in
 * MiB, and RSS and JS heap per socket in KiB. Then exits (the server sees the sockets close).
 *
 *   node dist/runner/cli.js seed --db /tmp/m.db --boards 750 --cards-per-board 20
 *   node dist/runner/cli.js serve floor --db /tmp/m.db --port 18090 &
 *   node --expose-gc --max-semi-space-size=16 dist/micro/ws-client-memory.js ws://127.0.0.1:18090/ws 10000
 *
 * At most about 19,000 sockets (one process's descriptor limit). Every wait is bounded (60 s).
 */
import WebSocket from 'ws';

const mib = (b: number): number => Math.round((b / 1048576) * 10) / 10;
const usage = (): Record<string, number> => Object.fromEntries(Object.entries(process.memoryUsage()).map(([k, v]) => [k, mib(v)]));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  const [url, nText] = process.argv.slice(2);
  const n = Number(nText);
  if (!url || !/^wss?:\/\//.test(url) || !Number.isSafeInteger(n) || n < 1 || n > 19_000) {
    process.stderr.write('usage: node dist/micro/ws-client-memory.js ws://HOST:PORT/ws N   (N sockets, 1..19000)\n');
    return 2;
  }
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage();
  let open = 0;
  let failed = 0;
  const sockets: WebSocket[] = [];
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(`${url}?board=${Math.floor(i / 20) + 1}&user=${i}`, { perMessageDeflate: false, localAddress: `127.0.0.${2 + (i % 4)}` });
    ws.on('open', () => open++);
    ws.on('error', () => failed++);
    ws.on('message', () => {});
    sockets.push(ws);
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
    sockets: n,
    gc: gc !== undefined,
    beforeMiB: Object.fromEntries(Object.entries(before).map(([k, v]) => [k, mib(v)])),
    afterMiB: usage(),
    rssPerSocketKiB: perSocketKiB(after.rss, before.rss),
    heapUsedPerSocketKiB: perSocketKiB(after.heapUsed, before.heapUsed),
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
  for (const ws of sockets) ws.terminate();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`ws-client-memory: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
