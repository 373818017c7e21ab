/** Protocol v1's pure parts: the strict client/server frame parsers, connect query, serializers, handshake rules. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_FRAME_BYTES,
  MAX_ID_LENGTH,
  MAX_TITLE_LENGTH,
  parseClientFrame,
  parseConnectQuery,
  parseServerFrame,
  serializeAck,
  serializeBroadcast,
  serializeError,
  type ClientUpdate,
} from '../protocol/index.js';
import { normalizeServerUrl } from '../protocol/conformance.js';
import { checkHandshake } from '../servers/common/handshake.js';

const valid: ClientUpdate = { type: 'update', id: 'a1', card: 7, column: 'doing', title: 'Fix it', at: 10.5, sentAt: 11 };
const frame = (over: Record<string, unknown>): string => JSON.stringify({ ...valid, ...over });

test('a valid update parses to exactly its fields', () => {
  assert.deepEqual(parseClientFrame(JSON.stringify(valid)), { ok: true, msg: valid });
  assert.deepEqual(parseClientFrame(Buffer.from(JSON.stringify(valid))), { ok: true, msg: valid });
  // limits are inclusive
  const atLimit = frame({ id: 'i'.repeat(MAX_ID_LENGTH), title: 't'.repeat(MAX_TITLE_LENGTH) });
  assert.equal(parseClientFrame(atLimit).ok, true);
  assert.equal(parseClientFrame(frame({ title: '' })).ok, true);
  assert.equal(parseClientFrame(frame({ at: 0, sentAt: 0 })).ok, true);
});

test('every bad-frame class is BAD_MESSAGE with the id when the frame had a usable one', () => {
  const cases: [name: string, data: string | Buffer, id: string | undefined, message: RegExp][] = [
    ['not JSON', '{"type":', undefined, /not valid JSON/],
    ['empty frame', '', undefined, /not valid JSON/],
    ['JSON array', '[1]', undefined, /not a JSON object/],
    ['JSON null', 'null', undefined, /not a JSON object/],
    ['JSON number', '5', undefined, /not a JSON object/],
    ['unknown type', frame({ type: 'hello' }), 'a1', /unknown message type "hello"/],
    ['missing type', frame({ type: undefined }), 'a1', /missing "type"/],
    ['type of wrong type', frame({ type: 1 }), 'a1', /missing "type"/],
    ['unknown field', frame({ extra: 1 }), 'a1', /unknown field "extra"/],
    ['missing id', frame({ id: undefined }), undefined, /"id" must be a non-empty string/],
    ['empty id', frame({ id: '' }), undefined, /"id" must be a non-empty string/],
    ['id not a string', frame({ id: 5 }), undefined, /"id" must be a non-empty string/],
    ['id too long', frame({ id: 'i'.repeat(MAX_ID_LENGTH + 1) }), undefined, /"id" is longer than 64/],
    ['missing card', frame({ card: undefined }), 'a1', /"card" must be a positive integer/],
    ['card as string', frame({ card: '7' }), 'a1', /"card"/],
    ['card fractional', frame({ card: 7.5 }), 'a1', /"card"/],
    ['card zero', frame({ card: 0 }), 'a1', /"card"/],
    ['card negative', frame({ card: -1 }), 'a1', /"card"/],
    ['card unsafe', frame({ card: 2 ** 60 }), 'a1', /"card"/],
    ['missing column', frame({ column: undefined }), 'a1', /"column" must be one of backlog\|todo\|doing\|review\|done/],
    ['unknown column', frame({ column: 'DONE' }), 'a1', /"column"/],
    ['missing title', frame({ title: undefined }), 'a1', /"title" must be a string/],
    ['title not a string', frame({ title: ['x'] }), 'a1', /"title" must be a string/],
    ['title too long', frame({ title: 't'.repeat(MAX_TITLE_LENGTH + 1) }), 'a1', /"title" is longer than 200/],
    ['missing at', frame({ at: undefined }), 'a1', /"at" must be/],
    ['at as string', frame({ at: '1' }), 'a1', /"at" must be/],
    ['negative at', frame({ at: -1 }), 'a1', /"at" must be/],
    ['missing sentAt', frame({ sentAt: undefined }), 'a1', /"sentAt" must be/],
    ['sentAt null', frame({ sentAt: null }), 'a1', /"sentAt" must be/],
    ['frame too large', frame({ title: 'x'.repeat(MAX_FRAME_BYTES) }), undefined, /exceeds the limit of 4096/],
  ];
  for (const [name, data, id, message] of cases) {
    const r = parseClientFrame(data);
    assert.equal(r.ok, false, name);
    if (r.ok) continue;
    assert.equal(r.code, 'BAD_MESSAGE', name);
    assert.equal(r.id, id, `${name}: id`);
    assert.match(r.message, message, name);
  }
});

test('frame size is counted in UTF-8 bytes, not characters', () => {
  // 1,400 three-byte characters: 4,200 bytes > 4096 although the string is short
  const r = parseClientFrame(frame({ title: '€'.repeat(1400) }));
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.message, /exceeds/);
  // a title of 200 three-byte characters is within both limits
  assert.equal(parseClientFrame(frame({ title: '€'.repeat(200) })).ok, true);
});

test('server frames: serializers produce what the strict parser accepts, with fixed key order', () => {
  const b = serializeBroadcast(valid, 42, 9);
  assert.equal(b, '{"type":"update","id":"a1","card":7,"column":"doing","title":"Fix it","at":10.5,"sentAt":11,"from":42,"seq":9}');
  assert.deepEqual(parseServerFrame(b), { ok: true, msg: { ...valid, from: 42, seq: 9 } });
  const a = serializeAck({ id: 'a1', seq: 3, queueMs: 1.5, commitMs: 0.25, attempts: 2 });
  assert.equal(a, '{"type":"ack","id":"a1","seq":3,"queueMs":1.5,"commitMs":0.25,"attempts":2}');
  assert.deepEqual(parseServerFrame(a), { ok: true, msg: { type: 'ack', id: 'a1', seq: 3, queueMs: 1.5, commitMs: 0.25, attempts: 2 } });
  const e = serializeError('UNKNOWN_CARD', 'no', 'a1');
  assert.equal(e, '{"type":"error","id":"a1","code":"UNKNOWN_CARD","message":"no"}');
  assert.equal(serializeError('BAD_MESSAGE', 'x'), '{"type":"error","code":"BAD_MESSAGE","message":"x"}');
  assert.deepEqual(parseServerFrame(e), { ok: true, msg: { type: 'error', id: 'a1', code: 'UNKNOWN_CARD', message: 'no' } });
});

test('parseServerFrame rejects frames that are not exactly v1', () => {
  const bad = [
    '{"type":"ack","id":"a","seq":0,"queueMs":1,"commitMs":1,"attempts":1}',
    '{"type":"ack","id":"a","seq":1,"queueMs":-1,"commitMs":1,"attempts":1}',
    '{"type":"ack","id":"a","seq":1,"queueMs":1,"commitMs":1,"attempts":0}',
    '{"type":"ack","seq":1,"queueMs":1,"commitMs":1,"attempts":1}',
    '{"type":"update","id":"a","card":1,"column":"doing","title":"t","at":1,"sentAt":1,"seq":1}',
    '{"type":"error","code":"NOPE","message":"x"}',
    '{"type":"hello"}',
    'nope',
  ];
  for (const f of bad) assert.equal(parseServerFrame(f).ok, false, f);
});

test('connect query: integers only', () => {
  assert.deepEqual(parseConnectQuery('/ws?board=3&user=17'), { path: '/ws', board: 3, user: 17 });
  assert.deepEqual(parseConnectQuery('/ws?board=x&user=-1'), { path: '/ws', board: null, user: null });
  assert.deepEqual(parseConnectQuery('/ws'), { path: '/ws', board: null, user: null });
  assert.deepEqual(parseConnectQuery('/ws?board=1.5&user=0'), { path: '/ws', board: null, user: 0 });
  // a repeated parameter is invalid (which board would it be?); a malformed escape is just not digits
  assert.deepEqual(parseConnectQuery('/ws?board=1&user=1&board=2'), { path: '/ws', board: null, user: 1 });
  assert.deepEqual(parseConnectQuery('/ws?board=1&user=2&user=2'), { path: '/ws', board: 1, user: null });
  assert.deepEqual(parseConnectQuery('/ws?board=%zz&user=%31'), { path: '/ws', board: null, user: 1 });
});

test('handshake: 400 for a missing/invalid board or user, 404 for an unknown board or another path', () => {
  const exists = (id: number): boolean => id === 1 || id === 2;
  assert.deepEqual(checkHandshake('/ws?board=2&user=5', exists), { ok: true, board: 2, user: 5 });
  const status = (url: string): number | true => {
    const h = checkHandshake(url, exists);
    return h.ok ? true : h.status;
  };
  assert.equal(status('/ws?user=5'), 400);
  assert.equal(status('/ws?board=abc&user=5'), 400);
  assert.equal(status('/ws?board=1'), 400);
  assert.equal(status('/ws?board=1&user=x'), 400);
  assert.equal(status('/ws?board=3&user=5'), 404);
  assert.equal(status('/other?board=1&user=5'), 404);
});

test('conformance URL: ws://host:port and ws://host:port/ws both accepted', () => {
  assert.deepEqual(normalizeServerUrl('ws://127.0.0.1:8080'), { ws: 'ws://127.0.0.1:8080/ws', http: 'http://127.0.0.1:8080' });
  assert.deepEqual(normalizeServerUrl('ws://127.0.0.1:8080/ws'), { ws: 'ws://127.0.0.1:8080/ws', http: 'http://127.0.0.1:8080' });
  assert.throws(() => normalizeServerUrl('http://127.0.0.1:8080'), /ws:\/\//);
  assert.throws(() => normalizeServerUrl('ws://127.0.0.1:8080/other'), /path/);
  assert.throws(() => normalizeServerUrl('nonsense'), /not a URL/);
});
