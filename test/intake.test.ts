/**
 * admitFrame (servers/common/intake.ts): the steps batched and per-request take with a frame before
 * their write paths part, each case with exact counts and the exact refusal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { WebSocket } from 'ws';
import type { ErrorCode } from '../protocol/messages.js';
import { serializeUpdate } from '../protocol/serialize.js';
import { CardIndex } from '../servers/common/boards.js';
import { admitFrame } from '../servers/common/intake.js';
import { createMetrics, type ServerMetrics } from '../servers/common/metrics.js';

// card 1 and 2 on board 1, card 3 on board 2
const cards = CardIndex.fromPairs([
  [1, 1],
  [2, 1],
  [3, 2],
]);
const frame = (card: number): Buffer => Buffer.from(serializeUpdate({ type: 'update', id: `u-${card}`, card, column: 'doing', title: 't', at: 1, sentAt: 2 }));
const count = async (m: ServerMetrics, name: 'updatesAfterClose' | 'updatesReceived'): Promise<number> =>
  (await m[name].get()).values.reduce((t, v) => t + v.value, 0);

function setup(readyState: number) {
  const metrics = createMetrics({ connections: () => 0, queueDepth: () => 0, dbFile: '' });
  const refused: Array<[ErrorCode, string, string | undefined]> = [];
  const ws = { readyState } as unknown as WebSocket;
  const refuse = (_ws: WebSocket, code: ErrorCode, message: string, id?: string): void => void refused.push([code, message, id]);
  return { metrics, refused, ws, refuse };
}

test('a valid update on its own board is admitted, counted once, nothing refused', async () => {
  const { metrics, refused, ws, refuse } = setup(1);
  const u = admitFrame(ws, frame(2), false, 1, cards, metrics, false, refuse);
  assert.deepEqual(u, { type: 'update', id: 'u-2', card: 2, column: 'doing', title: 't', at: 1, sentAt: 2 });
  assert.deepEqual(refused, []);
  assert.equal(await count(metrics, 'updatesReceived'), 1);
  assert.equal(await count(metrics, 'updatesAfterClose'), 0);
});

test('a frame after the server closed the socket: counted as after-close, neither parsed nor answered', async () => {
  const { metrics, refused, ws, refuse } = setup(2); // CLOSING
  assert.equal(admitFrame(ws, frame(2), false, 1, cards, metrics, false, refuse), null);
  assert.deepEqual(refused, []);
  assert.equal(await count(metrics, 'updatesAfterClose'), 1);
  assert.equal(await count(metrics, 'updatesReceived'), 0);
});

test("takeIn's refusals are answered: a binary frame (BAD_MESSAGE, no id) and a card of another board (UNKNOWN_CARD, with the id)", async () => {
  const { metrics, refused, ws, refuse } = setup(1);
  assert.equal(admitFrame(ws, frame(2), true, 1, cards, metrics, false, refuse), null);
  assert.equal(admitFrame(ws, frame(3), false, 1, cards, metrics, false, refuse), null);
  assert.deepEqual(refused, [
    ['BAD_MESSAGE', 'binary frames are not accepted: send JSON in text frames', undefined],
    ['UNKNOWN_CARD', 'card 3 is not on board 1', 'u-3'],
  ]);
  // the binary frame was never parsed; the update on the wrong board was
  assert.equal(await count(metrics, 'updatesReceived'), 1);
});

test('while the server stops, a valid update is answered OVERLOADED with its id', async () => {
  const { metrics, refused, ws, refuse } = setup(1);
  assert.equal(admitFrame(ws, frame(1), false, 1, cards, metrics, true, refuse), null);
  assert.deepEqual(refused, [['OVERLOADED', 'server is shutting down', 'u-1']]);
  assert.equal(await count(metrics, 'updatesReceived'), 1);
});
