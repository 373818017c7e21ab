/**
 * The fleet's cards, decided from the server's answers to GET /boards/:id (pure, exact), and the
 * schedule drawing from a board's own card list exactly as it draws from the seeded layout.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { boardsOf, decideCards, httpBaseOf, isLayout, type BoardAnswer } from '../clients/board-cards.js';
import { FleetConfigError } from '../model/fleet-options.js';
import { cardId } from '../protocol/layout.js';
import { planUser, type ScheduleConfig } from '../clients/schedule.js';

const layout = (b: number, m: number): number[] => Array.from({ length: m }, (_, k) => cardId(b, k, m));
const ok = (cards: number[]): BoardAnswer => ({ ok: true, cards });
const answers = (entries: Array<[number, BoardAnswer]>) => new Map(entries);
const W = 'http://127.0.0.1:8080';

function refused(fn: () => unknown, flag: string, message: string): void {
  assert.throws(fn, (e: unknown) => e instanceof FleetConfigError && e.flag === flag && e.message === message);
}

describe('decideCards', () => {
  it('the seeded layout read from the server: its M, no lists', () => {
    const d = decideCards([1, 2, 3], answers([1, 2, 3].map((b) => [b, ok(layout(b, 12))])), undefined, W);
    assert.deepEqual(d, { plan: { kind: 'layout', cardsPerBoard: 12 }, source: { source: 'server', cardsPerBoard: 12, boards: 3 } });
  });

  it('boards that follow no layout: each board its own list', () => {
    const d = decideCards(
      [1, 2],
      answers([
        [1, ok([1, 2, 3])],
        [2, ok([7, 9])],
      ]),
      undefined,
      W,
    );
    assert.equal(d.plan.kind, 'lists');
    assert.deepEqual(d.plan.kind === 'lists' ? [...d.plan.byBoard] : null, [
      [1, [1, 2, 3]],
      [2, [7, 9]],
    ]);
    assert.deepEqual(d.source, { source: 'server', cardsPerBoard: null, boards: 2 });
  });

  it('--cards-per-board that matches the server: used, source server', () => {
    const d = decideCards([4], answers([[4, ok(layout(4, 20))]]), 20, W);
    assert.deepEqual(d, { plan: { kind: 'layout', cardsPerBoard: 20 }, source: { source: 'server', cardsPerBoard: 20, boards: 1 } });
  });

  it('--cards-per-board that does not match: refused, naming both', () => {
    refused(
      () =>
        decideCards(
          [1, 2],
          answers([
            [1, ok(layout(1, 20))],
            [2, ok([21, 22, 40])],
          ]),
          20,
          W,
        ),
      '--cards-per-board',
      "--cards-per-board 20 does not match the server: board 2 has 3 cards: 21, 22, 40, the layout says 20 cards, ids 21..40; drop --cards-per-board to use the server's cards",
    );
  });

  it('a server without the route: --cards-per-board is used; without it, refused with the fix', () => {
    const none = answers([[1, { ok: false, status: 404, why: 'HTTP 404' }]]);
    assert.deepEqual(decideCards([1, 2], none, 8, W), {
      plan: { kind: 'layout', cardsPerBoard: 8 },
      source: { source: 'flag', cardsPerBoard: 8, boards: 0, note: `GET ${W}/boards/1: HTTP 404` },
    });
    refused(
      () => decideCards([1, 2], none, undefined, W),
      '--cards-per-board',
      `cannot read board 1's cards from GET ${W}/boards/1 (HTTP 404): pass --cards-per-board M for a server without that route`,
    );
  });

  it('no server at all: the default layout, and the connect phase reports the server', () => {
    const d = decideCards([1], answers([[1, { ok: false, status: null, why: 'ECONNREFUSED' }]]), undefined, W);
    assert.deepEqual(d.plan, { kind: 'layout', cardsPerBoard: 20 });
    assert.equal(d.source.source, 'default');
  });

  it('a board the fleet needs is missing or empty: refused, naming it', () => {
    refused(
      () =>
        decideCards(
          [1, 2, 3],
          answers([
            [1, ok(layout(1, 5))],
            [2, ok(layout(2, 5))],
            [3, { ok: false, status: 404, why: 'HTTP 404' }],
          ]),
          undefined,
          W,
        ),
      '--connections',
      `board 3 does not exist on the server (GET ${W}/boards/3: 404): the fleet's users need boards 1..3; seed more boards, or lower --connections or raise --per-board`,
    );
    refused(
      () => decideCards([1], answers([[1, ok([])]]), undefined, W),
      '--connections',
      'board 1 has no cards on the server: its users would have nothing to update',
    );
  });

  it('helpers: layout check, boards of a segment, the HTTP base of a ws URL', () => {
    assert.equal(isLayout(2, [11, 12, 13, 14, 15, 16, 17, 18, 19, 20], 10), true);
    assert.equal(isLayout(2, [11, 12], 10), false);
    assert.deepEqual(boardsOf(0, 40, 10), [1, 2, 3, 4]);
    assert.deepEqual(boardsOf(15, 10, 10), [2, 3]);
    assert.equal(httpBaseOf('ws://127.0.0.1:8080/ws'), 'http://127.0.0.1:8080');
    assert.equal(httpBaseOf('wss://example.test/app/ws'), 'https://example.test/app');
  });
});

describe('the schedule with card lists', () => {
  const cfg: ScheduleConfig = { seed: 7, perBoard: 10, cardsPerBoard: 12, updatesPerUserPerMin: 120, arrival: 'poisson', windowMs: 20_000 };

  it('a board listed with its layout cards gives exactly the layout schedule', () => {
    const lists: ScheduleConfig = { ...cfg, boardCards: new Map([[3, layout(3, 12)]]) };
    assert.deepEqual(planUser(lists, 25), planUser(cfg, 25));
  });

  it("a board's own list: every card drawn is one of its cards, at the same times", () => {
    const own = [101, 205, 999];
    const lists: ScheduleConfig = { ...cfg, boardCards: new Map([[3, own]]) };
    const a = planUser(lists, 25);
    const b = planUser(cfg, 25);
    assert.ok(a.length > 10);
    assert.deepEqual(
      a.map((u) => u.offsetMs),
      b.map((u) => u.offsetMs),
    );
    assert.ok(a.every((u) => own.includes(u.card)));
    assert.deepEqual([...new Set(a.map((u) => u.card))].sort(), [...own].sort());
  });
});
