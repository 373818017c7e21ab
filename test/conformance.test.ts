/** `wami-bench conformance` passes against both variants and fails, naming the rules, against a server that breaks them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { CLI, startServer } from './helpers/server.js';

function runCli(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

for (const [variant, flags] of [
  ['batched', []],
  ['per-request', ['--workers', '2']],
] as const) {
  test(`conformance passes against ${variant}`, async () => {
    const srv = await startServer(variant, { boards: 3, cardsPerBoard: 10, flags: [...flags] });
    try {
      const base = srv.wsUrl.replace(/\/ws$/, '');
      const r = await runCli(['conformance', variant === 'batched' ? base : srv.wsUrl, '--cards-per-board', '10', '--quiet-ms', '200']);
      assert.equal(r.code, 0, r.out);
      assert.doesNotMatch(r.out, /^FAIL/m);
      assert.match(r.out, /^(\d+) passed, 0 failed$/m);
      assert.ok(Number(/^(\d+) passed/m.exec(r.out)![1]) >= 18, r.out);
    } finally {
      assert.equal(await srv.stop(), 0);
      srv.cleanup();
    }
  });
}

test('conformance fails, naming the broken rules, against a server that breaks them', async () => {
  // accepts any handshake, acks every JSON object with seq 1 and echoes it to every socket of every board
  const sockets = new Set<WebSocket>();
  const wss = new WebSocketServer({ noServer: true });
  const http = createServer((req, res) => {
    if (req.url === '/metrics') {
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' });
      res.end('# TYPE wami_connections gauge\nwami_connections 1\n');
    } else {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(req.url?.startsWith('/boards/') ? '{"id":1,"cards":[]}' : '{}');
    }
  });
  http.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      ws.on('message', (data) => {
        let m: Record<string, unknown>;
        try {
          m = JSON.parse(String(data));
        } catch {
          ws.send(JSON.stringify({ type: 'error', code: 'BAD_MESSAGE', message: 'bad' }));
          return;
        }
        if (typeof m !== 'object' || m === null || typeof m.id !== 'string') {
          ws.send(JSON.stringify({ type: 'error', code: 'BAD_MESSAGE', message: 'bad' }));
          return;
        }
        ws.send(JSON.stringify({ type: 'ack', id: m.id, seq: 1, queueMs: 0, commitMs: 0, attempts: 1 }));
        for (const o of sockets) o.send(JSON.stringify({ ...m, type: 'update', from: 1, seq: 1 }));
      });
    }),
  );
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const port = (http.address() as AddressInfo).port;
  try {
    // The wrong frames this server sends go out in the same turn as the ack: a second of quiet is
    // ample on a busy machine for them to arrive, so the FAILs below cannot race.
    const r = await runCli(['conformance', `ws://127.0.0.1:${port}`, '--timeout-ms', '1500', '--quiet-ms', '1000', '--burst', '3']);
    assert.equal(r.code, 1, r.out);
    for (const rule of [
      /^FAIL {2}handshake: missing board -> HTTP 400 — handshake was accepted/m,
      /^FAIL {2}handshake: unknown board 999999999 -> HTTP 404/m,
      /^FAIL {2}cards: card of another board -> UNKNOWN_CARD/m,
      /^FAIL {2}no echo: sender never gets its own update/m,
      /^FAIL {2}isolation: other board gets nothing/m,
      /^FAIL {2}seq: burst/m,
      /^FAIL {2}http: GET \/metrics is Prometheus text with the wami_\* metrics — missing: wami_updates_received_total/m,
      /^PASS {2}http: GET \/healthz is 200 JSON/m,
    ]) {
      assert.match(r.out, rule);
    }
    assert.match(r.out, /^\d+ passed, \d+ failed$/m);
  } finally {
    for (const ws of sockets) ws.terminate();
    await new Promise((r) => http.close(r));
  }
});

test('conformance against the floor: every check passes but the one that needs storage, reported as skipped (exit 0)', async () => {
  const srv = await startServer('floor', { boards: 3, cardsPerBoard: 10 });
  try {
    const health = (await (await fetch(srv.wsUrl.replace(/^ws/, 'http').replace(/\/ws$/, '/healthz'))).json()) as Record<string, unknown>;
    assert.equal(health.variant, 'floor');
    assert.equal(health.storage, 'none');
    const r = await runCli(['conformance', srv.wsUrl, '--cards-per-board', '10', '--quiet-ms', '200']);
    assert.equal(r.code, 0, r.out);
    assert.doesNotMatch(r.out, /^FAIL/m);
    const skipped = r.out.split('\n').filter((l) => l.startsWith('SKIP'));
    assert.deepEqual(skipped, [
      'SKIP  http: GET /boards/1 has the v1 shape and the last update — skipped: the server stores nothing (/healthz storage "none")',
    ]);
    assert.match(r.out, /^18 passed, 0 failed, 1 skipped \(the server stores nothing\)$/m);
  } finally {
    assert.equal(await srv.stop(), 0);
    srv.cleanup();
  }
});
