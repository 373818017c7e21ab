/**
 * The shared front keeps nothing of the upgrade request once a socket is open: at 15,000 sockets a
 * shard kept one IncomingMessage (with its headers and raw headers) per socket through a closure
 * context, about 1.2 KB each (servers/common/front.ts, destroyOnError). Checked with a WeakRef and
 * full collections, on a real Front and a real client socket; no timing is asserted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket from 'ws';
import { Front } from '../servers/common/front.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('an open socket does not keep its upgrade request alive', async () => {
  const accepted: WebSocket[] = [];
  const front = new Front({
    host: '127.0.0.1',
    port: 0,
    maxPayloadBytes: 65536,
    hasBoard: (id) => id === 1,
    onSocket: (ws, board, user) => {
      assert.deepEqual([board, user], [1, 7]);
      accepted.push(ws);
    },
    healthz: () => ({}),
    metrics: async () => '',
  });
  let request: WeakRef<IncomingMessage> | undefined;
  front.server.prependListener('upgrade', (req: IncomingMessage) => {
    request = new WeakRef(req);
  });
  const { port } = await front.listen();
  const client = new WebSocket(`ws://127.0.0.1:${port}/ws?board=1&user=7`, { perMessageDeflate: false });
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('open', () => resolve());
      client.once('error', reject);
    });
    // the server side is open too once a frame makes the round trip
    await new Promise<void>((resolve) => {
      accepted[0]!.once('message', () => resolve());
      client.send('ping');
    });
    assert.equal(accepted.length, 1);
    assert.ok(request, 'the upgrade was seen');
    // a WeakRef's target lives at least until the end of the job that made or read it: collect across turns
    for (let i = 0; i < 5 && request.deref() !== undefined; i++) {
      await new Promise((r) => setImmediate(r));
      gc();
    }
    assert.equal(request.deref(), undefined, 'the IncomingMessage of an open socket is still reachable');
    assert.equal(accepted[0]!.readyState, WebSocket.OPEN, 'the socket stayed open throughout');
  } finally {
    client.terminate();
    for (const ws of accepted) ws.terminate();
    front.stopAccepting();
    front.destroyAll();
  }
});
