/**
 * The conformance checker of wire protocol v1: plays the protocol's rules against any server (any
 * language) through real sockets and HTTP, and reports each rule as a passed or failed check with
 * the reason. Used by `wami-bench conformance ws://HOST:PORT`.
 *
 * It cannot know a foreign server's seeded layout, so the caller names two existing boards and the
 * cards per board (protocol/layout.ts gives the card ids). Run it against a server nobody else is
 * using: it checks exact seq continuity on its board.
 */
import { WebSocket } from 'ws';
import { z } from 'zod';
import { cardId } from './layout.js';
import { MAX_FRAME_BYTES, MAX_ID_LENGTH, MAX_TITLE_LENGTH, METRIC_NAMES, type ClientUpdate, type ServerMessage } from './messages.js';
import { parseServerFrame } from './parse.js';

/** The metric names the runner scrapes; a v1 server exposes all of them. */
export const REQUIRED_METRICS = METRIC_NAMES;

const id = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/** The checker's options, each with its bounds and default (the CLI's flags are these in kebab case). */
export const CONFORMANCE_OPTIONS = {
  /** A board that exists (default 1). */
  board: id.default(1),
  /** Another board that exists (default 2). */
  otherBoard: id.default(2),
  /** A board id that does not exist (default 999999999). */
  unknownBoard: id.default(999_999_999),
  /** Cards per board of the seeded layout (default 20). */
  cardsPerBoard: id.default(20),
  /** Longest wait for any one expected frame or response, ms (default 5000). */
  timeoutMs: z.number().int().min(1).max(600_000).default(5000),
  /** Silence awaited before concluding that something did NOT arrive, ms (default 500). */
  quietMs: z.number().int().min(0).max(600_000).default(500),
  /** Updates per sender in the burst check (default 20; two senders). */
  burst: z.number().int().min(1).max(10_000).default(20),
  /** Metric names /metrics must expose (default: the runner's wami_* names). */
  requiredMetrics: z.array(z.string()).readonly().default(REQUIRED_METRICS),
};

export const ConformanceOptionsSchema = z
  .strictObject({
    /** ws://HOST:PORT or ws://HOST:PORT/ws */
    url: z.string(),
    ...CONFORMANCE_OPTIONS,
  })
  .superRefine((o, ctx) => {
    if (o.board === o.otherBoard) ctx.addIssue({ code: 'custom', path: ['otherBoard'], message: '--board and --other-board must differ' });
    if (o.unknownBoard === o.board || o.unknownBoard === o.otherBoard)
      ctx.addIssue({ code: 'custom', path: ['unknownBoard'], message: '--unknown-board must differ from the boards that exist' });
  });
export type ConformanceOptions = z.output<typeof ConformanceOptionsSchema>;

export const DEFAULT_CONFORMANCE_OPTIONS: Omit<ConformanceOptions, 'url'> = z.strictObject(CONFORMANCE_OPTIONS).parse({});

export interface CheckResult {
  name: string;
  /** Passed. A skipped check is not passed (ok false) and not failed (`skipped`). */
  ok: boolean;
  /**
   * Not run because the server says it stores nothing (`/healthz` has `"storage": "none"`, the
   * floor): the checks that need storage do not apply to it. Counted apart, neither passed nor failed.
   */
  skipped?: true;
  /** Why it failed, or what was seen when it passed. */
  detail: string;
}

/** Splits ws://HOST:PORT[/ws] into the WebSocket base (ending in /ws) and the HTTP base. */
export function normalizeServerUrl(url: string): { ws: string; http: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`not a URL: "${url}" (expected ws://HOST:PORT)`);
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new Error(`expected a ws:// or wss:// URL, got "${url}"`);
  if (u.pathname !== '/' && u.pathname !== '' && u.pathname !== '/ws')
    throw new Error(`expected ws://HOST:PORT or ws://HOST:PORT/ws, got path "${u.pathname}"`);
  const http = `${u.protocol === 'wss:' ? 'https' : 'http'}://${u.host}`;
  return { ws: `${u.protocol}//${u.host}/ws`, http };
}

class Fail extends Error {}
function must(cond: unknown, why: string): asserts cond {
  if (!cond) throw new Fail(why);
}

/** A client socket that records every server frame, parsed strictly. */
class Client {
  readonly frames: ServerMessage[] = [];
  readonly protocolErrors: string[] = [];
  private waiters: { pred: (m: ServerMessage) => boolean; from: number; resolve: (m: ServerMessage) => void }[] = [];
  closed: { code: number; reason: string } | null = null;

  private constructor(
    readonly ws: WebSocket,
    readonly name: string,
  ) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        this.protocolErrors.push('server sent a binary frame');
        return;
      }
      const p = parseServerFrame(data as Buffer);
      if (!p.ok) {
        this.protocolErrors.push(`${p.message}: ${String(data).slice(0, 200)}`);
        return;
      }
      this.frames.push(p.msg);
      const idx = this.frames.length - 1;
      this.waiters = this.waiters.filter((w) => {
        if (idx >= w.from && w.pred(p.msg)) {
          w.resolve(p.msg);
          return false;
        }
        return true;
      });
    });
    ws.on('close', (code, reason) => (this.closed = { code, reason: reason.toString() }));
    ws.on('error', () => {});
  }

  static connect(url: string, name: string, timeoutMs: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
      ws.once('open', () => resolve(new Client(ws, name)));
      ws.once('unexpected-response', (_req, res) => {
        reject(new Fail(`${name}: handshake answered HTTP ${res.statusCode}`));
        res.resume();
        ws.terminate();
      });
      ws.once('error', (e) => reject(new Fail(`${name}: connect failed: ${e.message}`)));
    });
  }

  /** Waits for the first frame at index >= `from` matching `pred`. */
  waitFor(pred: (m: ServerMessage) => boolean, what: string, timeoutMs: number, from = 0): Promise<ServerMessage> {
    for (let i = from; i < this.frames.length; i++) if (pred(this.frames[i]!)) return Promise.resolve(this.frames[i]!);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        from,
        resolve: (m: ServerMessage) => {
          clearTimeout(t);
          resolve(m);
        },
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Fail(`${this.name}: no ${what} within ${timeoutMs} ms${this.closed ? ` (socket closed ${this.closed.code} ${this.closed.reason})` : ''}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Ids of every frame this client sent (to recognise echoes of its own updates). */
  readonly sentIds = new Set<string>();

  send(data: string | Buffer, binary = false): void {
    try {
      const id = (JSON.parse(String(data)) as { id?: unknown }).id;
      if (typeof id === 'string') this.sentIds.add(id);
    } catch {
      // not JSON: no id
    }
    this.ws.send(data, { binary });
  }

  close(): void {
    this.ws.close();
  }
}

/** Tries a handshake that must be refused; returns the HTTP status (or throws if it was accepted). */
function refusedStatus(url: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    ws.once('open', () => {
      ws.terminate();
      reject(new Fail('handshake was accepted'));
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('error', (e) => reject(new Fail(`connect failed: ${e.message}`)));
  });
}

async function fetchWithTimeout(url: string, timeoutMs: number): Promise<{ status: number; type: string; body: string }> {
  const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: r.status, type: r.headers.get('content-type') ?? '', body: await r.text() };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What every group of checks shares: the options, the bases, the ids and users of this run, and how a check is run. */
interface Ctx {
  o: ConformanceOptions;
  /** Longest wait for one expected frame or response, ms. */
  T: number;
  http: string;
  runId: string;
  U: { sender: number; member: number; other: number; sender2: number };
  // biome-ignore lint/suspicious/noConfusingVoidType: a check resolves with its detail, or with nothing
  run: (name: string, fn: () => Promise<string | void>) => Promise<boolean>;
  skip: (name: string, why: string) => void;
  card: (k: number) => number;
  update: (k: number, title: string, column?: ClientUpdate['column']) => ClientUpdate;
  wsUrl: (board: string | number | null, user: number | null) => string;
}

/** The four sockets of the WebSocket checks: two senders and a member on the board, one socket on another board. */
interface Sockets {
  s: Client;
  m: Client;
  ob: Client;
  s2: Client;
}

/** The board's last stored update as the checks made it (for /boards/:id), and its last seq. */
interface Last {
  seq: number;
  title: string;
  column: string;
  card: number;
}

const WS_CHECKS = [
  'update: ack with the same id and a positive seq',
  'update: other member gets the broadcast with from and the ack seq',
  'bad frames: each class -> BAD_MESSAGE',
  'bad frames: socket stays usable, nothing broadcast, no seq consumed',
  'cards: card of another board -> UNKNOWN_CARD',
  'cards: nonexistent card -> UNKNOWN_CARD',
  'seq: burst from 2 senders is gap-free and increasing for the member',
  'no echo: sender never gets its own update',
  'isolation: other board gets nothing',
  'frames: every server frame is valid v1',
];

function context(o: ConformanceOptions, results: CheckResult[], onResult: (r: CheckResult) => void): Ctx {
  const { ws: wsBase, http } = normalizeServerUrl(o.url);
  // biome-ignore lint/suspicious/noConfusingVoidType: a check resolves with its detail, or with nothing
  const run = async (name: string, fn: () => Promise<string | void>): Promise<boolean> => {
    let r: CheckResult;
    try {
      r = { name, ok: true, detail: (await fn()) ?? '' };
    } catch (e) {
      r = { name, ok: false, detail: e instanceof Fail ? e.message : `error: ${(e as Error)?.message ?? String(e)}` };
    }
    results.push(r);
    onResult(r);
    return r.ok;
  };
  const skip = (name: string, why: string): void => {
    const r = { name, ok: false, detail: `not run: ${why}` };
    results.push(r);
    onResult(r);
  };
  const runId = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  let msgN = 0;
  const newId = (): string => `c${runId}-${++msgN}`;
  // users far from any fleet's range, distinct per run
  const userBase = 900_000_000 + (Date.now() % 1_000_000) * 10;
  const U = { sender: userBase + 1, member: userBase + 2, other: userBase + 3, sender2: userBase + 4 };
  const card = (k: number): number => cardId(o.board, k, o.cardsPerBoard);
  const update = (k: number, title: string, column: ClientUpdate['column'] = 'doing'): ClientUpdate => {
    const t = performance.now();
    return { type: 'update', id: newId(), card: card(k % o.cardsPerBoard), column, title, at: t, sentAt: t };
  };
  const wsUrl = (board: string | number | null, user: number | null): string => {
    const q = [board === null ? null : `board=${board}`, user === null ? null : `user=${user}`].filter(Boolean).join('&');
    return `${wsBase}${q ? `?${q}` : ''}`;
  };
  return { o, T: o.timeoutMs, http, runId, U, run, skip, card, update, wsUrl };
}

/** The checks that need the server to store updates, skipped for one whose /healthz says `storage: "none"`. */
export const STORAGE_CHECKS = (o: { board: number }): string[] => [`http: GET /boards/${o.board} has the v1 shape and the last update`];

/** The /healthz checks; whether the server says it stores nothing (`"storage": "none"`). */
async function httpBasics(ctx: Ctx): Promise<{ noStorage: boolean }> {
  const { T, run, http } = ctx;
  let noStorage = false;
  await run('http: GET /healthz is 200 JSON', async () => {
    const r = await fetchWithTimeout(`${http}/healthz`, T);
    must(r.status === 200, `status ${r.status}`);
    let j: unknown;
    try {
      j = JSON.parse(r.body);
    } catch {
      throw new Fail(`body is not JSON: ${r.body.slice(0, 120)}`);
    }
    must(typeof j === 'object' && j !== null && !Array.isArray(j), 'body is not a JSON object');
    noStorage = (j as { storage?: unknown }).storage === 'none';
    return r.body.slice(0, 160);
  });
  return { noStorage };
}

/** The handshake checks; the four sockets when the valid handshake was accepted, else null. */
async function handshakes(ctx: Ctx): Promise<Sockets | null> {
  const { o, T, U, run, wsUrl } = ctx;
  await run('handshake: missing board -> HTTP 400', async () => {
    const s = await refusedStatus(wsUrl(null, U.sender), T);
    must(s === 400, `got HTTP ${s}`);
  });
  await run('handshake: non-integer board -> HTTP 400', async () => {
    const s = await refusedStatus(wsUrl('abc', U.sender), T);
    must(s === 400, `got HTTP ${s}`);
  });
  await run('handshake: board given twice -> HTTP 400', async () => {
    const s = await refusedStatus(`${wsUrl(o.board, U.sender)}&board=${o.otherBoard}`, T);
    must(s === 400, `got HTTP ${s} (which board would the socket be on?)`);
  });
  await run(`handshake: unknown board ${o.unknownBoard} -> HTTP 404`, async () => {
    const s = await refusedStatus(wsUrl(o.unknownBoard, U.sender), T);
    must(s === 404, `got HTTP ${s}`);
  });

  let sender: Client | null = null;
  let member: Client | null = null;
  let other: Client | null = null;
  let sender2: Client | null = null;
  const connected = await run('handshake: valid board and user are accepted', async () => {
    sender = await Client.connect(wsUrl(o.board, U.sender), 'sender', T);
    member = await Client.connect(wsUrl(o.board, U.member), 'member', T);
    other = await Client.connect(wsUrl(o.otherBoard, U.other), 'other-board', T);
    sender2 = await Client.connect(wsUrl(o.board, U.sender2), 'sender2', T);
    return `4 sockets on boards ${o.board} and ${o.otherBoard}`;
  });

  return connected && sender && member && other && sender2 ? { s: sender, m: member, ob: other, s2: sender2 } : null;
}

async function updateChecks(ctx: Ctx, { s, m }: Sockets, last: Last): Promise<void> {
  const { T, U, run, skip, update, runId } = ctx;
  let first: ClientUpdate | null = null;
  let firstAckSeq = 0;
  const acked = await run('update: ack with the same id and a positive seq', async () => {
    first = update(0, `conformance ${runId} first`, 'review');
    s.send(JSON.stringify(first));
    const a = await s.waitFor((f) => f.id === first!.id && (f.type === 'ack' || f.type === 'error'), `answer to ${first.id}`, T);
    must(a.type === 'ack', `got ${JSON.stringify(a)}`);
    firstAckSeq = a.seq;
    last.seq = a.seq;
    last.title = first.title;
    last.column = first.column;
    last.card = first.card;
    return `seq ${a.seq}, queueMs ${a.queueMs}, commitMs ${a.commitMs}, attempts ${a.attempts}`;
  });
  if (acked) {
    await run('update: other member gets the broadcast with from and the ack seq', async () => {
      const f = first!;
      const b = await m.waitFor((x) => x.type === 'update' && x.id === f.id, `broadcast of ${f.id}`, T);
      must(b.type === 'update', 'not an update');
      must(b.from === U.sender, `from is ${b.from}, expected ${U.sender}`);
      must(b.seq === firstAckSeq, `seq ${b.seq}, ack said ${firstAckSeq}`);
      must(
        b.card === f.card && b.column === f.column && b.title === f.title && b.at === f.at && b.sentAt === f.sentAt,
        `fields differ from the sent update: ${JSON.stringify(b)}`,
      );
    });
  } else skip('update: other member gets the broadcast with from and the ack seq', 'no ack');
}

async function badFrameChecks(ctx: Ctx, { s, m }: Sockets, last: Last): Promise<void> {
  const { T, run, update, card, runId } = ctx;
  const good = (): Record<string, unknown> => ({ ...update(1, 'bad-frame probe') });
  const cases: { name: string; frame: () => string | Buffer; binary?: boolean; echoId?: boolean }[] = [
    { name: 'not JSON', frame: () => '{"type":"update",' },
    { name: 'JSON array', frame: () => '[1,2,3]' },
    { name: 'JSON string', frame: () => '"update"' },
    { name: 'unknown type', frame: () => JSON.stringify({ ...good(), type: 'hello' }), echoId: true },
    { name: 'missing type', frame: () => JSON.stringify({ ...good(), type: undefined }), echoId: true },
    { name: 'missing card', frame: () => JSON.stringify({ ...good(), card: undefined }), echoId: true },
    { name: 'card as string', frame: () => JSON.stringify({ ...good(), card: String(card(1)) }), echoId: true },
    { name: 'card not an integer', frame: () => JSON.stringify({ ...good(), card: 1.5 }), echoId: true },
    { name: 'card not positive', frame: () => JSON.stringify({ ...good(), card: -3 }), echoId: true },
    { name: 'unknown column', frame: () => JSON.stringify({ ...good(), column: 'nowhere' }), echoId: true },
    { name: 'title not a string', frame: () => JSON.stringify({ ...good(), title: 42 }), echoId: true },
    { name: `title over ${MAX_TITLE_LENGTH} characters`, frame: () => JSON.stringify({ ...good(), title: 'x'.repeat(MAX_TITLE_LENGTH + 1) }), echoId: true },
    { name: 'missing id', frame: () => JSON.stringify({ ...good(), id: undefined }) },
    { name: 'empty id', frame: () => JSON.stringify({ ...good(), id: '' }) },
    { name: `id over ${MAX_ID_LENGTH} characters`, frame: () => JSON.stringify({ ...good(), id: 'i'.repeat(MAX_ID_LENGTH + 1) }) },
    { name: 'id not a string', frame: () => JSON.stringify({ ...good(), id: 7 }) },
    { name: 'missing at', frame: () => JSON.stringify({ ...good(), at: undefined }), echoId: true },
    { name: 'negative sentAt', frame: () => JSON.stringify({ ...good(), sentAt: -1 }), echoId: true },
    { name: 'unknown field', frame: () => JSON.stringify({ ...good(), extra: true }), echoId: true },
    { name: `frame over ${MAX_FRAME_BYTES} bytes`, frame: () => JSON.stringify({ ...good(), title: 'y'.repeat(MAX_FRAME_BYTES) }) },
    { name: 'binary frame', frame: () => Buffer.from(JSON.stringify(good())), binary: true },
  ];
  const memberFramesBefore = m.frames.length;
  await run('bad frames: each class -> BAD_MESSAGE', async () => {
    const problems: string[] = [];
    for (const c of cases) {
      const frame = c.frame();
      const idInFrame = c.echoId ? (JSON.parse(frame as string) as { id: string }).id : undefined;
      const from = s.frames.length;
      s.send(frame, c.binary ?? false);
      try {
        const e = await s.waitFor((f) => f.type === 'error' || f.type === 'ack', `answer to "${c.name}"`, T, from);
        if (e.type !== 'error') problems.push(`${c.name}: got ${e.type}`);
        else if (e.code !== 'BAD_MESSAGE') problems.push(`${c.name}: code ${e.code}`);
        else if (idInFrame !== undefined && e.id !== idInFrame) problems.push(`${c.name}: error id ${JSON.stringify(e.id)}, expected ${idInFrame}`);
      } catch (err) {
        problems.push((err as Error).message);
      }
      if (s.closed) {
        problems.push(`${c.name}: server closed the socket (${s.closed.code})`);
        break;
      }
    }
    must(problems.length === 0, problems.join('; '));
    return `${cases.length} classes`;
  });
  await run('bad frames: socket stays usable, nothing broadcast, no seq consumed', async () => {
    must(!s.closed, `socket closed (${s.closed?.code})`);
    const u = update(2, `conformance ${runId} after bad frames`, 'todo');
    s.send(JSON.stringify(u));
    const a = await s.waitFor((f) => f.id === u.id && (f.type === 'ack' || f.type === 'error'), `answer to ${u.id}`, T);
    must(a.type === 'ack', `got ${JSON.stringify(a)}`);
    await m.waitFor((x) => x.type === 'update' && x.id === u.id, `broadcast of ${u.id}`, T);
    const between = m.frames.slice(memberFramesBefore).filter((f) => f.type === 'update' && f.id !== u.id);
    must(between.length === 0, `member got ${between.length} broadcast(s) for bad frames`);
    if (last.seq > 0) must(a.seq === last.seq + 1, `seq ${a.seq} after ${last.seq}: bad frames consumed seqs`);
    last.seq = a.seq;
    last.title = u.title;
    last.column = u.column;
    last.card = u.card;
  });
}

async function cardChecks(ctx: Ctx, { s }: Sockets): Promise<void> {
  const { o, T, run, update } = ctx;
  const unknownCard = async (cardNo: number): Promise<string> => {
    const u = { ...update(3, 'unknown card probe'), card: cardNo };
    s.send(JSON.stringify(u));
    const e = await s.waitFor((f) => f.id === u.id && (f.type === 'ack' || f.type === 'error'), `answer to ${u.id}`, T);
    must(e.type === 'error' && e.code === 'UNKNOWN_CARD', `got ${JSON.stringify(e)}`);
    return e.message;
  };
  await run('cards: card of another board -> UNKNOWN_CARD', () => unknownCard(cardId(o.otherBoard, 0, o.cardsPerBoard)));
  await run('cards: nonexistent card -> UNKNOWN_CARD', () => unknownCard(2_000_000_000));
}

async function burstCheck(ctx: Ctx, { s, m, s2 }: Sockets, last: Last): Promise<void> {
  const { o, T, run, update, runId } = ctx;
  await run('seq: burst from 2 senders is gap-free and increasing for the member', async () => {
    const mFrom = m.frames.length;
    const sent: ClientUpdate[] = [];
    for (let i = 0; i < o.burst; i++) {
      for (const [c, k] of [
        [s, i],
        [s2, i + 7],
      ] as const) {
        const u = update(k, `conformance ${runId} burst ${i}`, i % 2 ? 'done' : 'doing');
        sent.push(u);
        c.send(JSON.stringify(u));
      }
    }
    const answers = await Promise.all(
      sent.map((u, i) => (i % 2 === 0 ? s : s2).waitFor((f) => f.id === u.id && (f.type === 'ack' || f.type === 'error'), `answer to ${u.id}`, T)),
    );
    const notAcked = answers.filter((a) => a.type !== 'ack');
    must(notAcked.length === 0, `${notAcked.length} not acked, e.g. ${JSON.stringify(notAcked[0])}`);
    const ackSeqs = answers.map((a) => (a.type === 'ack' ? a.seq : 0)).sort((x, y) => x - y);
    for (let i = 1; i < ackSeqs.length; i++) must(ackSeqs[i] === ackSeqs[i - 1]! + 1, `ack seqs not consecutive: ${ackSeqs[i - 1]} then ${ackSeqs[i]}`);
    if (last.seq > 0) must(ackSeqs[0] === last.seq + 1, `first burst seq ${ackSeqs[0]} after ${last.seq}`);
    const ids = new Set(sent.map((u) => u.id));
    const deadline = Date.now() + T;
    const got = (): ServerMessage[] => m.frames.slice(mFrom).filter((f) => f.type === 'update' && ids.has(f.id));
    while (got().length < sent.length && Date.now() < deadline) await sleep(10);
    const seen = got();
    must(seen.length === sent.length, `member got ${seen.length} of ${sent.length} broadcasts`);
    const seqs = seen.map((f) => (f.type === 'update' ? f.seq : 0));
    for (let i = 1; i < seqs.length; i++) must(seqs[i] === seqs[i - 1]! + 1, `member saw seq ${seqs[i]} after ${seqs[i - 1]}`);
    must(seqs[0] === ackSeqs[0], `member's first seq ${seqs[0]}, first ack seq ${ackSeqs[0]}`);
    let lastSent: ClientUpdate | undefined;
    let lastAck = 0;
    sent.forEach((u, i) => {
      const a = answers[i]!;
      if (a.type === 'ack' && a.seq > lastAck) {
        lastAck = a.seq;
        lastSent = u;
      }
    });
    if (lastSent) {
      last.title = lastSent.title;
      last.column = lastSent.column;
      last.card = lastSent.card;
    }
    last.seq = ackSeqs[ackSeqs.length - 1]!;
    return `${sent.length} updates, seq ${ackSeqs[0]}..${last.seq}`;
  });
}

/** The negatives, after a quiet period: nothing echoed, nothing across boards, every frame valid. */
async function negativeChecks(ctx: Ctx, { s, m, ob, s2 }: Sockets): Promise<void> {
  const { o, run } = ctx;
  await sleep(o.quietMs);
  await run('no echo: sender never gets its own update', async () => {
    const echoes = [s, s2].flatMap((c) => c.frames.filter((f) => f.type === 'update' && c.sentIds.has(f.id)));
    must(echoes.length === 0, `${echoes.length} echo(es), e.g. ${JSON.stringify(echoes[0])}`);
  });
  await run('isolation: other board gets nothing', async () => {
    const got = ob.frames.filter((f) => f.type === 'update');
    must(got.length === 0, `${got.length} broadcast(s) from board ${o.board} reached board ${o.otherBoard}, e.g. ${JSON.stringify(got[0])}`);
  });
  await run('frames: every server frame is valid v1', async () => {
    const errs = [s, m, ob, s2].flatMap((c) => c.protocolErrors.map((e) => `${c.name}: ${e}`));
    must(errs.length === 0, errs.slice(0, 3).join('; '));
    return `${[s, m, ob, s2].reduce((n, c) => n + c.frames.length, 0)} frames`;
  });
}

async function boardRouteCheck(ctx: Ctx, last: Last): Promise<void> {
  const { o, T, run, http } = ctx;
  await run(`http: GET /boards/${o.board} has the v1 shape and the last update`, async () => {
    const r = await fetchWithTimeout(`${http}/boards/${o.board}`, T);
    must(r.status === 200, `status ${r.status}`);
    const j = JSON.parse(r.body) as { id?: unknown; cards?: unknown };
    must(j.id === o.board, `id ${JSON.stringify(j.id)}`);
    must(Array.isArray(j.cards) && j.cards.length > 0, '"cards" is not a non-empty array');
    for (const c of j.cards as Record<string, unknown>[]) {
      must(
        typeof c.id === 'number' && typeof c.column === 'string' && typeof c.title === 'string' && typeof c.version === 'number',
        `card without id/column/title/version numbers and strings: ${JSON.stringify(c)}`,
      );
    }
    if (last.card) {
      const c = (j.cards as { id: number; column: string; title: string; version: number }[]).find((x) => x.id === last.card);
      must(c, `card ${last.card} missing`);
      must(c.title === last.title && c.column === last.column, `card ${last.card} is ${JSON.stringify(c)}, expected title "${last.title}" in ${last.column}`);
      must(c.version >= 1, `version ${c.version} after updates`);
    }
    return `${(j.cards as unknown[]).length} cards`;
  });
}

async function httpRouteChecks(ctx: Ctx): Promise<void> {
  const { o, T, run, http } = ctx;
  await run('http: GET /boards/<unknown> -> 404, /boards/abc and /boards/%zz -> 400', async () => {
    const a = await fetchWithTimeout(`${http}/boards/${o.unknownBoard}`, T);
    must(a.status === 404, `unknown board: status ${a.status}`);
    const b = await fetchWithTimeout(`${http}/boards/abc`, T);
    must(b.status === 400, `non-integer id: status ${b.status}`);
    const c = await fetchWithTimeout(`${http}/boards/%zz`, T);
    must(c.status === 400, `malformed percent-escape: status ${c.status}`);
  });
  await run('http: GET /metrics is Prometheus text with the wami_* metrics', async () => {
    const r = await fetchWithTimeout(`${http}/metrics`, T);
    must(r.status === 200, `status ${r.status}`);
    must(r.type.startsWith('text/plain'), `content-type "${r.type}"`);
    must(/^# (HELP|TYPE) \w+/m.test(r.body), 'no # HELP/# TYPE lines');
    const bad = r.body.split('\n').filter((l) => l !== '' && !l.startsWith('#') && !/^[a-zA-Z_:][\w:]*(\{[^}]*\})? \S+( \d+)?$/.test(l));
    must(bad.length === 0, `malformed sample line(s): ${bad.slice(0, 2).join(' | ')}`);
    const missing = o.requiredMetrics.filter((n) => !new RegExp(`^# TYPE ${n} `, 'm').test(r.body));
    must(missing.length === 0, `missing: ${missing.join(', ')}`);
    return `${r.body.split('\n').filter((l) => l && !l.startsWith('#')).length} samples`;
  });
}

/**
 * Runs every check; calls `onResult` as each finishes. Never throws for a failing server: every
 * problem becomes a failed check.
 */
export async function runConformance(opts: ConformanceOptions, onResult: (r: CheckResult) => void = () => {}): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const ctx = context(opts, results, onResult);
  const { noStorage } = await httpBasics(ctx);
  const sockets = await handshakes(ctx);
  if (!sockets) {
    for (const n of WS_CHECKS) ctx.skip(n, 'could not connect');
  } else {
    const last: Last = { seq: 0, title: '', column: '', card: 0 };
    await updateChecks(ctx, sockets, last);
    await badFrameChecks(ctx, sockets, last);
    await cardChecks(ctx, sockets);
    await burstCheck(ctx, sockets, last);
    await negativeChecks(ctx, sockets);
    if (noStorage)
      for (const name of STORAGE_CHECKS(opts)) {
        const r: CheckResult = { name, ok: false, skipped: true, detail: 'skipped: the server stores nothing (/healthz storage "none")' };
        results.push(r);
        onResult(r);
      }
    else await boardRouteCheck(ctx, last);
    for (const c of Object.values(sockets)) c.close();
  }
  await httpRouteChecks(ctx);
  return results;
}
