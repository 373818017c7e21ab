/**
 * Test helper for the server/protocol tests: a recording protocol v1 client over a real socket,
 * metric scraping, and event-driven waits (no fixed sleeps where an event can be awaited).
 */
import { WebSocket } from 'ws';
import type { BroadcastMessage, ClientUpdate, Column, ServerMessage } from '../../protocol/messages.js';
import { parseServerFrame } from '../../protocol/parse.js';
import { nowMs } from '../../protocol/clock.js';

export const WAIT_MS = 20_000;

let counter = 0;
/** A fresh client message id. */
export function msgId(prefix = 'm'): string {
  return `${prefix}-${process.pid}-${++counter}`;
}

export class WsClient {
  readonly frames: ServerMessage[] = [];
  /** First ack/error per message id, and broadcasts, indexed as they arrive (O(1) waits). */
  private readonly answers = new Map<string, ServerMessage>();
  private readonly answerWaiters = new Map<string, ((m: ServerMessage) => void)[]>();
  private readonly broadcasts: BroadcastMessage[] = [];
  readonly bad: string[] = [];
  closed: { code: number; reason: string } | null = null;
  private listeners = new Set<() => void>();
  private closeWaiters: (() => void)[] = [];

  private constructor(
    readonly ws: WebSocket,
    readonly board: number,
    readonly user: number,
    /** The server process that holds this socket (X-Wami-Pid upgrade header). */
    readonly pid: number,
  ) {
    ws.on('message', (data) => {
      const p = parseServerFrame(data as Buffer);
      if (p.ok) {
        const f = p.msg;
        this.frames.push(f);
        if (f.type === 'update') this.broadcasts.push(f);
        else if (f.id !== undefined && !this.answers.has(f.id)) {
          this.answers.set(f.id, f);
          const ws = this.answerWaiters.get(f.id);
          if (ws) {
            this.answerWaiters.delete(f.id);
            for (const w of ws) w(f);
          }
        }
      } else this.bad.push(`${p.message}: ${String(data)}`);
      for (const l of [...this.listeners]) l();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const f of this.closeWaiters.splice(0)) f();
      for (const l of [...this.listeners]) l();
    });
    ws.on('error', () => {});
  }

  static connect(wsUrl: string, board: number, user: number, timeoutMs = WAIT_MS): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${wsUrl}?board=${board}&user=${user}`, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
      let pid = 0;
      ws.once('upgrade', (res) => (pid = Number(res.headers['x-wami-pid'] ?? 0)));
      ws.once('open', () => resolve(new WsClient(ws, board, user, pid)));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake refused: HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  /** Resolves once `pred()` holds (checked on every frame and on close), or rejects after timeoutMs. */
  until<T>(pred: () => T | undefined | false, what: string, timeoutMs = WAIT_MS): Promise<T> {
    const v = pred();
    if (v) return Promise.resolve(v);
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const r = pred();
        if (r) {
          clearTimeout(t);
          this.listeners.delete(check);
          resolve(r);
        }
      };
      const t = setTimeout(() => {
        this.listeners.delete(check);
        reject(
          new Error(
            `user ${this.user}: timed out waiting for ${what}; closed=${JSON.stringify(this.closed)}; last frames ${JSON.stringify(this.frames.slice(-3))}`,
          ),
        );
      }, timeoutMs);
      this.listeners.add(check);
    });
  }

  /** The ack or error answering message `id`. */
  answer(id: string, timeoutMs = WAIT_MS): Promise<ServerMessage> {
    const have = this.answers.get(id);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        reject(new Error(`user ${this.user}: no answer to ${id} within ${timeoutMs} ms; closed=${JSON.stringify(this.closed)}`));
      }, timeoutMs);
      const list = this.answerWaiters.get(id) ?? [];
      list.push((m) => {
        clearTimeout(t);
        resolve(m);
      });
      this.answerWaiters.set(id, list);
    });
  }

  /** Broadcasts received, in arrival order (a copy). */
  updates(): BroadcastMessage[] {
    return [...this.broadcasts];
  }

  /** Waits until at least `n` broadcasts have arrived. */
  waitUpdates(n: number, timeoutMs = WAIT_MS): Promise<BroadcastMessage[]> {
    return this.until(() => (this.broadcasts.length >= n ? this.updates() : undefined), `${n} broadcasts (have ${this.broadcasts.length})`, timeoutMs);
  }

  /** Sends a valid update (fields overridable) and returns it. */
  sendUpdate(card: number, over: Partial<ClientUpdate> = {}): ClientUpdate {
    const t = nowMs();
    const u: ClientUpdate = { type: 'update', id: msgId(`u${this.user}`), card, column: 'doing' as Column, title: `t ${counter}`, at: t, sentAt: t, ...over };
    this.ws.send(JSON.stringify(u));
    return u;
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((r) => {
      this.closeWaiters.push(r);
      this.ws.close();
      setTimeout(() => {
        this.ws.terminate();
        r();
      }, 3000).unref();
    });
  }

  /** Resolves when the server closes the socket. */
  waitClosed(timeoutMs = WAIT_MS): Promise<{ code: number; reason: string }> {
    return this.until(() => this.closed ?? undefined, 'close', timeoutMs);
  }
}

/** Sum of a metric's samples in /metrics (all label sets unless `labels` given), 0 if absent. */
export async function metric(httpUrl: string, name: string, labels?: string): Promise<number> {
  const text = await (await fetchNamed(`${httpUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    if (labels !== undefined && m[2] !== `{${labels}}`) continue;
    sum += Number(m[3]);
  }
  return sum;
}

/** Polls `fn` every 25 ms until it returns a truthy value. */
export async function waitUntil<T>(fn: () => Promise<T> | T, what: string, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * fetch, whose failure names the URL and the cause (undici's own message is only "fetch failed";
 * the socket error that made it is in `cause`).
 */
export async function fetchNamed(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    const c = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`${init?.method ?? 'GET'} ${url}: ${(e as Error).message}${c ? ` (${c.code ?? ''} ${c.message ?? ''})` : ''}`, { cause: e });
  }
}

export async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const r = await fetchNamed(url);
  const text = await r.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: r.status, body };
}
