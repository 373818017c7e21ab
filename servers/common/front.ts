/**
 * The HTTP/upgrade front both variants share: one `http.Server` on one port serving
 * `GET /healthz`, `GET /metrics`, `GET /boards/:id`, and the protocol v1 WebSocket handshake on
 * `/ws` (validated before any WebSocket exists: 400/404). It knows nothing about boards' sockets
 * or writes: an accepted socket is handed to `onSocket`, the variant's core. The primary of
 * batched `--shards N` also gives `handOff`: a validated upgrade request for a board of another
 * shard is handed, socket and all, to the shard process that owns it (servers/batched/sharded.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { BoardView } from './boards.js';
import { checkHandshake, rejectUpgrade } from './handshake.js';
import { METRICS_CONTENT_TYPE } from './metrics.js';

export interface FrontOptions {
  host: string;
  /** 0 = any free port. */
  port: number;
  /** ws maxPayload: frames above it are closed by the transport with 1009. */
  maxPayloadBytes: number;
  hasBoard: (id: number) => boolean;
  /** Gets each WebSocket accepted here. */
  onSocket: (ws: WebSocket, board: number, user: number) => void;
  /**
   * Before the WebSocket handshake is completed here: gets the upgrade request that passed the v1
   * checks (400/404/503 are answered here first), with its raw socket and the bytes read past the
   * request head. Returns true when it took the socket over (handed it to another process, or
   * answered it), false to have the handshake completed here and the socket given to `onSocket`.
   */
  handOff?: (req: IncomingMessage, socket: Duplex, head: Buffer, board: number, user: number) => boolean;
  healthz: () => Promise<Record<string, unknown>> | Record<string, unknown>;
  metrics: () => Promise<string>;
  /** The board's state for `GET /boards/:id`; absent for a server that stores nothing (the floor): 501 for a board that exists. */
  readBoard?: (id: number) => BoardView | null;
  /** Extra response headers on a successful upgrade, e.g. ['X-Wami-Pid: 123']. */
  upgradeHeaders?: string[];
  /**
   * Fault injection (`--fault-injection` only): serves `POST /faults/disk-full/on` and `…/off`,
   * answered once every writing connection of the server has it. Absent: those routes do not exist (404).
   */
  faults?: { diskFull: (on: boolean) => Promise<Record<string, unknown>> };
}

/**
 * The socket's error listener for its whole life. A module function on purpose: a closure made in
 * onUpgrade would share that call's context, which holds the request, so every open socket would
 * keep its IncomingMessage, its headers and raw headers alive. Measured (2026-12-01, batched
 * `--shards 2`, 30,000 sockets): a shard's JS heap at 15,000 idle sockets 77.8 -> 60.2 MB (heap
 * snapshot), the two shards' RSS in a 30k run 380-386 -> 337-343 MB.
 */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** handleUpgrade's callback, made outside onUpgrade for the same reason (it captures no request). */
function upgraded(onSocket: FrontOptions['onSocket'], board: number, user: number): (ws: WebSocket) => void {
  return (ws) => onSocket(ws, board, user);
}

export class Front {
  readonly server: Server;
  readonly wss: WebSocketServer;
  private accepting = true;

  constructor(private readonly opts: FrontOptions) {
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: opts.maxPayloadBytes,
      clientTracking: false,
    });
    if (opts.upgradeHeaders?.length) {
      const extra = opts.upgradeHeaders;
      this.wss.on('headers', (headers: string[]) => headers.push(...extra));
    }
    this.server = createServer((req, res) => void this.onRequest(req, res));
    this.server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
  }

  listen(): Promise<AddressInfo> {
    return new Promise((res, rej) => {
      this.server.once('error', rej);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', rej);
        // Once listening, an error here is an accept() that failed (EMFILE near the descriptor
        // limit, ECONNABORTED): that connection is lost, the server goes on.
        let logged = 0;
        this.server.on('error', (e: Error) => {
          if (Date.now() - logged < 10_000) return;
          logged = Date.now();
          process.stderr.write(`wami-bench server ${process.pid}: ${e.message} (connection lost, still serving)\n`);
        });
        res(this.server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting connections (new HTTP requests on open keep-alive connections get 503). */
  stopAccepting(): void {
    this.accepting = false;
    this.server.close();
    this.server.closeIdleConnections();
  }

  /** Destroys whatever is still connected (call after the core closed its sockets). */
  destroyAll(): void {
    this.server.closeAllConnections();
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', destroyOnError);
    if (!this.accepting) return rejectUpgrade(socket, 503, 'server is shutting down');
    const h = checkHandshake(req.url, this.opts.hasBoard);
    if (!h.ok) return rejectUpgrade(socket, h.status, h.reason);
    try {
      if (this.opts.handOff?.(req, socket, head, h.board, h.user)) return;
      this.wss.handleUpgrade(req, socket, head, upgraded(this.opts.onSocket, h.board, h.user));
    } catch {
      socket.destroy();
    }
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (!this.accepting) return send(res, 503, { error: 'server is shutting down' });
      const faults = this.opts.faults;
      if (faults && path.startsWith('/faults/')) {
        const f = /^\/faults\/disk-full\/(on|off)$/.exec(path);
        if (!f) return send(res, 404, { error: `no fault at ${path.slice(0, 64)}; fault injection serves POST /faults/disk-full/on and /off` });
        if (req.method !== 'POST') {
          res.setHeader('Allow', 'POST');
          return send(res, 405, { error: `method ${req.method} not allowed` });
        }
        req.resume(); // a body, if any, is not read
        return send(res, 200, await faults.diskFull(f[1] === 'on'));
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        return send(res, 405, { error: `method ${req.method} not allowed` });
      }
      if (path === '/healthz') return send(res, 200, await this.opts.healthz());
      if (path === '/metrics') {
        const text = await this.opts.metrics();
        res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
        res.end(req.method === 'HEAD' ? undefined : text);
        return;
      }
      const m = /^\/boards\/([^/]+)$/.exec(path);
      if (m) {
        let raw: string;
        try {
          raw = decodeURIComponent(m[1]!);
        } catch {
          return send(res, 400, { error: `board id is not a valid percent-encoded string: "${m[1]!.slice(0, 32)}"` });
        }
        if (!/^\d{1,15}$/.test(raw)) return send(res, 400, { error: `board id must be a non-negative integer, got "${raw.slice(0, 32)}"` });
        const readBoard = this.opts.readBoard;
        if (!readBoard)
          return this.opts.hasBoard(Number(raw))
            ? send(res, 501, { error: 'this server stores nothing (storage: none), so it has no board state to serve' })
            : send(res, 404, { error: `unknown board ${raw}` });
        const view = readBoard(Number(raw));
        return view ? send(res, 200, view) : send(res, 404, { error: `unknown board ${raw}` });
      }
      if (path === '/ws') return send(res, 426, { error: 'WebSocket endpoint: connect with Upgrade: websocket' });
      return send(res, 404, { error: `no route for ${path.slice(0, 64)}` });
    } catch (e) {
      try {
        send(res, 500, { error: String((e as Error)?.message ?? e) });
      } catch {
        res.destroy();
      }
    }
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}
