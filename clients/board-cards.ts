/**
 * The cards the fleet updates, read from the server before the load starts (`GET /boards/:id`,
 * protocol v1) instead of assumed: a fleet whose idea of the cards differs from the database's gets
 * every update refused with UNKNOWN_CARD, which is a wrong measurement, not a slow server.
 *
 * `--cards-per-board M` (the seeded layout: board b owns cards (b-1)*M+1 .. b*M) stays as an
 * override for servers without that route; when the route answers, the flag is checked against it
 * and a mismatch is an error before any socket opens. The decision is pure (`decideCards`); the
 * reading is `readBoardCards`.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { FleetConfigError } from '../model/fleet-options.js';
import { boardOfUser, cardId } from '../protocol/layout.js';

/** What the fleet updates: the seeded layout with M cards per board, or each board's own list of card ids. */
export type CardPlan = { kind: 'layout'; cardsPerBoard: number } | { kind: 'lists'; byBoard: Map<number, number[]> };

/** How the card plan came about, for the fleet result's `config.cards`. */
export interface CardSource {
  /** server: read from GET /boards/:id; flag: --cards-per-board (the route is unavailable); default: neither (nothing to update, or the server could not be reached). */
  source: 'server' | 'flag' | 'default';
  /** The layout's cards per board, or null when the boards do not follow one layout. */
  cardsPerBoard: number | null;
  /** Boards read. */
  boards: number;
  /** Why the server's cards were not used, when they were not. */
  note?: string;
}

/** One board's answer to GET /boards/:id. */
export type BoardAnswer = { ok: true; cards: number[] } | { ok: false; status: number | null; why: string };

/** The cards every fleet used before reading them: the default of `--cards-per-board`. */
export const DEFAULT_CARDS_PER_BOARD = 20;

/** Boards of users [firstUser, firstUser + connections), in order. */
export function boardsOf(firstUser: number, connections: number, perBoard: number): number[] {
  const out: number[] = [];
  for (let b = boardOfUser(firstUser, perBoard); b <= boardOfUser(firstUser + connections - 1, perBoard); b++) out.push(b);
  return out;
}

/** Whether `cards` (sorted ids) are exactly board b's cards in the seeded layout of M per board. */
export function isLayout(board: number, cards: readonly number[], m: number): boolean {
  if (cards.length !== m) return false;
  for (let k = 0; k < m; k++) if (cards[k] !== cardId(board, k, m)) return false;
  return true;
}

/** "12 cards, ids 1..12" or "3 cards: 5, 9, 40". */
function describeCards(cards: readonly number[]): string {
  if (cards.length === 0) return 'no cards';
  const contiguous = cards.every((c, i) => i === 0 || c === cards[i - 1]! + 1);
  if (contiguous) return `${cards.length} card${cards.length === 1 ? '' : 's'}, ids ${cards[0]}..${cards[cards.length - 1]}`;
  return `${cards.length} cards: ${cards.slice(0, 5).join(', ')}${cards.length > 5 ? ', …' : ''}`;
}

/**
 * The card plan from the server's answers (`answers`: board -> answer, every board the fleet uses,
 * or only the first when it already failed) and the optional --cards-per-board. Throws
 * FleetConfigError, naming the fix, when the boards cannot be used as they are.
 * `unreachable`: the first request got no HTTP answer at all (the connect phase will report that).
 */
export function decideCards(
  boards: readonly number[],
  answers: ReadonlyMap<number, BoardAnswer>,
  flag: number | undefined,
  where: string,
): { plan: CardPlan; source: CardSource } {
  const first = boards[0]!;
  const a0 = answers.get(first);
  if (!a0?.ok) {
    const why = a0 && !a0.ok ? a0.why : 'not read';
    if (flag !== undefined)
      return {
        plan: { kind: 'layout', cardsPerBoard: flag },
        source: { source: 'flag', cardsPerBoard: flag, boards: 0, note: `GET ${where}/boards/${first}: ${why}` },
      };
    if (a0 && !a0.ok && a0.status === null) {
      // No HTTP answer at all: the server is not there. The connect phase reports that; the cards do not matter.
      return {
        plan: { kind: 'layout', cardsPerBoard: DEFAULT_CARDS_PER_BOARD },
        source: { source: 'default', cardsPerBoard: DEFAULT_CARDS_PER_BOARD, boards: 0, note: `GET ${where}/boards/${first}: ${why}` },
      };
    }
    throw new FleetConfigError(
      'cardsPerBoard',
      '--cards-per-board',
      `cannot read board ${first}'s cards from GET ${where}/boards/${first} (${why}): pass --cards-per-board M for a server without that route`,
    );
  }
  const byBoard = new Map<number, number[]>();
  for (const b of boards) {
    const a = answers.get(b);
    if (!a) throw new Error(`internal: board ${b} was not read`);
    if (!a.ok) {
      if (a.status === 404)
        throw new FleetConfigError(
          'connections',
          '--connections',
          `board ${b} does not exist on the server (GET ${where}/boards/${b}: 404): the fleet's users need boards ${boards[0]}..${boards[boards.length - 1]}; seed more boards, or lower --connections or raise --per-board`,
        );
      throw new FleetConfigError('cardsPerBoard', '--cards-per-board', `cannot read board ${b}'s cards from GET ${where}/boards/${b} (${a.why})`);
    }
    if (a.cards.length === 0)
      throw new FleetConfigError('connections', '--connections', `board ${b} has no cards on the server: its users would have nothing to update`);
    byBoard.set(b, a.cards);
  }
  if (flag !== undefined) {
    for (const b of boards) {
      const cards = byBoard.get(b)!;
      if (!isLayout(b, cards, flag))
        throw new FleetConfigError(
          'cardsPerBoard',
          '--cards-per-board',
          `--cards-per-board ${flag} does not match the server: board ${b} has ${describeCards(cards)}, the layout says ${describeCards(Array.from({ length: flag }, (_, k) => cardId(b, k, flag)))}; drop --cards-per-board to use the server's cards`,
        );
    }
    return { plan: { kind: 'layout', cardsPerBoard: flag }, source: { source: 'server', cardsPerBoard: flag, boards: boards.length } };
  }
  const m = byBoard.get(first)!.length;
  if (boards.every((b) => isLayout(b, byBoard.get(b)!, m))) {
    return { plan: { kind: 'layout', cardsPerBoard: m }, source: { source: 'server', cardsPerBoard: m, boards: boards.length } };
  }
  return { plan: { kind: 'lists', byBoard }, source: { source: 'server', cardsPerBoard: null, boards: boards.length } };
}

/** The HTTP(S) base of a ws(s) URL: the path beside its `ws` (ws://h:p/ws -> http://h:p). */
export function httpBaseOf(wsUrl: string): string {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  u.pathname = u.pathname.replace(/\/?[^/]*$/, '');
  u.search = '';
  return u.toString().replace(/\/$/, '');
}

/** GET `url` (a board's cards), bounded by `timeoutMs`. Never throws. */
export function fetchBoard(url: string, timeoutMs: number, ca?: string): Promise<BoardAnswer> {
  return new Promise((resolve) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(
      url,
      { method: 'GET', timeout: timeoutMs, headers: { accept: 'application/json' }, ...(ca !== undefined ? { ca } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => resolve({ ok: false, status: res.statusCode ?? null, why: e.message }));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status !== 200) return resolve({ ok: false, status, why: `HTTP ${status}` });
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { cards?: Array<{ id?: unknown }> };
            if (!Array.isArray(body.cards)) return resolve({ ok: false, status, why: 'the answer has no "cards" array' });
            const ids = body.cards.map((c) => c?.id);
            if (!ids.every((x): x is number => Number.isSafeInteger(x) && (x as number) > 0))
              return resolve({ ok: false, status, why: 'a card without a positive integer id' });
            resolve({ ok: true, cards: [...ids].sort((x, y) => x - y) });
          } catch {
            resolve({ ok: false, status, why: 'the answer is not JSON' });
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, status: null, why: e.code ?? e.message }));
    req.end();
  });
}

export interface ReadCardsOptions {
  urls: string[];
  boards: readonly number[];
  cardsPerBoard?: number;
  timeoutMs: number;
  ca?: string;
  /** Requests in flight at once (default 16). */
  concurrency?: number;
}

/** Reads the boards' cards (board b from urls[(b - 1) % n]) and decides the card plan (see decideCards). */
export async function readBoardCards(o: ReadCardsOptions): Promise<{ plan: CardPlan; source: CardSource }> {
  const base = (b: number): string => httpBaseOf(o.urls[(b - 1) % o.urls.length]!);
  const answers = new Map<number, BoardAnswer>();
  const [first, ...rest] = o.boards;
  if (first === undefined) throw new Error('internal: no boards to read');
  answers.set(first, await fetchBoard(`${base(first)}/boards/${first}`, o.timeoutMs, o.ca));
  if (answers.get(first)!.ok) {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < rest.length) {
        const b = rest[next++]!;
        answers.set(b, await fetchBoard(`${base(b)}/boards/${b}`, o.timeoutMs, o.ca));
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 16, rest.length) }, worker));
  }
  return decideCards(o.boards, answers, o.cardsPerBoard, base(first));
}
