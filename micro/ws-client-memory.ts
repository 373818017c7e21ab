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
 * With `--rate R` it then measures CPU as well: the first socket of each board (20 sockets a board)
 * sends updates, R a second in all, for `--seconds S` (default 20) after 3 s of warm-up, and every
 * socket parses each frame it receives (JSON.parse, as any client must). It adds to the line the
 * process's CPU (user + system) per received frame over those seconds. `--raw` then parses the
 * frames itself (RFC 6455: FIN text frames, lengths up to 2^53) and masks what it sends; `ws` does
 * both its own way. So the two lines say what a WebSocket library costs a client per frame, the
 * rest being Node's: what a fleet transport of our own could buy at most (issue 14). The server
 * must be one that broadcasts (`serve floor` stores nothing and acks at once), with
 * `--cards-per-board` (default 20) as seeded:
 *
 *   node --max-semi-space-size=16 dist/micro/ws-client-memory.js ws://127.0.0.1:18090/ws 10000 --rate 250
 *   node --max-semi-space-size=16 dist/micro/ws-client-memory.js ws://127.0.0.1:18090/ws 10000 --raw --rate 250
 *
 * At most about 19,000 sockets (one process's descriptor limit). Every wait is bounded (60 s).
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import type WebSocket from 'ws';
import { cardId } from '../protocol/layout.js';

const PER_BOARD = 20;
const USAGE =
  'usage: node dist/micro/ws-client-memory.js ws://HOST:PORT/ws N [--raw] [--rate R [--seconds S] [--cards-per-board M]]\n' +
  '  N sockets (1..19000); --raw: no ws library (ws:// only); --rate: updates a second in all, then CPU per received frame over S seconds (default 20)\n';

const mib = (b: number): number => Math.round((b / 1048576) * 10) / 10;
const usage = (): Record<string, number> => Object.fromEntries(Object.entries(process.memoryUsage()).map(([k, v]) => [k, mib(v)]));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A socket of either kind, as the traffic phase uses it. */
interface Client {
  send: (text: string) => void;
  close: () => void;
}

async function main(): Promise<number> {
  let a: ReturnType<
    typeof parseArgs<{
      options: { raw: { type: 'boolean' }; rate: { type: 'string' }; seconds: { type: 'string' }; 'cards-per-board': { type: 'string' } };
      allowPositionals: true;
    }>
  >;
  try {
    a = parseArgs({
      args: process.argv.slice(2),
      options: { raw: { type: 'boolean' }, rate: { type: 'string' }, seconds: { type: 'string' }, 'cards-per-board': { type: 'string' } },
      allowPositionals: true,
    });
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const [url, nText, ...rest] = a.positionals;
  const n = Number(nText);
  const raw = a.values.raw === true;
  const rate = a.values.rate === undefined ? null : Number(a.values.rate);
  const seconds = Number(a.values.seconds ?? 20);
  const cardsPerBoard = Number(a.values['cards-per-board'] ?? 20);
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
    rest.length > 0 ||
    (raw && url.startsWith('wss:')) ||
    (rate !== null && !(rate > 0 && rate <= 100_000)) ||
    !(Number.isSafeInteger(seconds) && seconds >= 1 && seconds <= 600) ||
    !(Number.isSafeInteger(cardsPerBoard) && cardsPerBoard >= 1)
  ) {
    process.stderr.write(USAGE);
    return 2;
  }
  // `ws` is loaded only when used, so that --raw's baseline is Node's alone
  const WebSocketClass = raw ? null : (await import('ws')).default;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage();
  let open = 0;
  let failed = 0;
  let frames = 0;
  let badFrames = 0;
  // every frame is parsed, as any client must; what it says is not looked at
  const onText = (text: string): void => {
    frames++;
    try {
      JSON.parse(text);
    } catch {
      badFrames++;
    }
  };
  const sockets: Array<WebSocket | Socket> = [];
  /** Only with --rate: the memory figures without it are those of the sockets alone. */
  const clients: Client[] = [];
  const u = parsed;
  for (let i = 0; i < n; i++) {
    const target = `${u.pathname}?board=${Math.floor(i / PER_BOARD) + 1}&user=${i}`;
    const localAddress = `127.0.0.${2 + (i % 4)}`;
    if (raw) {
      const r = rawWebSocket(
        u.hostname,
        Number(u.port || 80),
        target,
        localAddress,
        () => open++,
        () => failed++,
        rate === null ? null : onText,
      );
      sockets.push(r.socket);
      if (rate !== null) clients.push(r);
    } else {
      const ws = new WebSocketClass!(`${u.origin}${target}`, { perMessageDeflate: false, localAddress });
      ws.on('open', () => open++);
      ws.on('error', () => failed++);
      if (rate === null) ws.on('message', () => {});
      else ws.on('message', (d: Buffer) => onText(d.toString('utf8')));
      sockets.push(ws);
      if (rate !== null) clients.push({ send: (t) => ws.send(t), close: () => ws.terminate() });
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
  const traffic = rate === null ? {} : await measureTraffic(clients, n, rate, seconds, cardsPerBoard, () => frames);
  process.stdout.write(`${JSON.stringify({ ...report, ...traffic, ...(badFrames > 0 ? { badFrames } : {}) })}\n`);
  for (const x of sockets) 'terminate' in x ? x.terminate() : x.destroy();
  return 0;
}

/**
 * The first socket of each board sends updates, `rate` a second in all (boards in turn, every 10 ms),
 * for 3 s of warm-up and then `seconds` measured: the process's CPU per frame received meanwhile.
 */
async function measureTraffic(
  clients: Client[],
  n: number,
  rate: number,
  seconds: number,
  cardsPerBoard: number,
  received: () => number,
): Promise<Record<string, number>> {
  const boards = Math.ceil(n / PER_BOARD);
  let sent = 0;
  let due = 0;
  let next = 0;
  const timer = setInterval(() => {
    due += rate / 100;
    for (; sent < Math.floor(due); sent++) {
      const board = (next++ % boards) + 1;
      const now = Date.now();
      clients[(board - 1) * PER_BOARD]!.send(
        JSON.stringify({
          type: 'update',
          id: `m${sent}`,
          card: cardId(board, sent % cardsPerBoard, cardsPerBoard),
          column: 'doing',
          title: `t${sent}`,
          at: now,
          sentAt: now,
        }),
      );
    }
  }, 10);
  await sleep(3000);
  const cpu0 = process.cpuUsage();
  const frames0 = received();
  const sent0 = sent;
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const cpu = process.cpuUsage(cpu0);
  const frames = received() - frames0;
  const wallSec = (performance.now() - t0) / 1000;
  clearInterval(timer);
  return {
    updatesPerSec: Math.round((sent - sent0) / wallSec),
    framesPerSec: Math.round(frames / wallSec),
    cpuPct: Math.round(((cpu.user + cpu.system) / 1e6 / wallSec) * 1000) / 10,
    cpuUsPerFrame: frames > 0 ? Math.round(((cpu.user + cpu.system) / frames) * 10) / 10 : 0,
    userUsPerFrame: frames > 0 ? Math.round((cpu.user / frames) * 10) / 10 : 0,
  };
}

/**
 * An open WebSocket with nothing but `net`: the upgrade request, then one listener that counts the
 * socket open at the end of a 101 response (failed on any other status). Later bytes are ignored, or,
 * with `onText`, parsed as the server's frames: unmasked, unfragmented (what a v1 server sends), a
 * text frame's payload given to `onText`, a close frame ending the socket, any other ignored.
 * `send` writes one masked text frame.
 */
function rawWebSocket(
  host: string,
  port: number,
  target: string,
  localAddress: string,
  opened: () => void,
  failed: () => void,
  onText: ((text: string) => void) | null,
): Client & { socket: Socket } {
  const s = connect({ host, port, localAddress });
  let state = 0; // 0 waiting for the response head, 1 open, 2 failed
  let head = '';
  let buf: Buffer = Buffer.alloc(0);
  s.setNoDelay(true);
  s.on('connect', () => {
    const key = randomBytes(16).toString('base64');
    s.write(
      `GET ${target} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
  const frames = (d: Buffer): void => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    let at = 0;
    for (;;) {
      if (buf.length - at < 2) break;
      const op = buf[at]! & 0x0f;
      let len = buf[at + 1]! & 0x7f;
      let off = at + 2;
      if (len === 126) {
        if (buf.length - at < 4) break;
        len = buf.readUInt16BE(at + 2);
        off = at + 4;
      } else if (len === 127) {
        if (buf.length - at < 10) break;
        len = Number(buf.readBigUInt64BE(at + 2));
        off = at + 10;
      }
      if (buf.length < off + len) break;
      if (op === 1) onText!(buf.toString('utf8', off, off + len));
      else if (op === 8) s.end();
      at = off + len;
    }
    buf = at === buf.length ? Buffer.alloc(0) : buf.subarray(at);
  };
  s.on('data', (d: Buffer) => {
    if (state === 1) {
      if (onText) frames(d);
      return;
    }
    if (state !== 0) return;
    head += d.toString('latin1');
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    state = head.startsWith('HTTP/1.1 101') ? 1 : 2;
    const after = Buffer.from(head.slice(end + 4), 'latin1');
    head = '';
    if (state === 1) opened();
    else failed();
    if (state === 1 && onText && after.length > 0) frames(after);
  });
  // a connection that ends or fails before the 101 is a failure, counted once
  const lost = (): void => {
    if (state !== 0) return;
    state = 2;
    failed();
  };
  s.on('error', lost);
  s.on('close', lost);
  return {
    socket: s,
    send: (text: string) => {
      const payload = Buffer.from(text, 'utf8');
      const len = payload.length;
      const hdr = len < 126 ? 6 : len < 65536 ? 8 : 14;
      const f = Buffer.allocUnsafe(hdr + len);
      f[0] = 0x81;
      if (len < 126) f[1] = 0x80 | len;
      else if (len < 65536) {
        f[1] = 0x80 | 126;
        f.writeUInt16BE(len, 2);
      } else {
        f[1] = 0x80 | 127;
        f.writeBigUInt64BE(BigInt(len), 2);
      }
      const mask = randomBytes(4);
      mask.copy(f, hdr - 4);
      for (let i = 0; i < len; i++) f[hdr + i] = payload[i]! ^ mask[i & 3]!;
      s.write(f);
    },
    close: () => s.destroy(),
  };
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`ws-client-memory: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
