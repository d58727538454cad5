// The retry rules of the HTTP layer, without a server.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError, Http, NetworkError, parseRetryAfter } from '../src/index.ts';

test('Retry-After: seconds and HTTP dates', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter('soon'), undefined);
  const ms = parseRetryAfter(new Date(Date.now() + 5000).toUTCString())!;
  assert.ok(ms > 3000 && ms <= 5000);
});

test('back-off: exponential, capped, full jitter', () => {
  const hi = new Http({ baseUrl: 'http://x', getToken: () => 't', retry: { baseDelayMs: 100, maxDelayMs: 1000 }, random: () => 0.999999 });
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((a) => hi.delay(a)), [100, 200, 400, 800, 1000, 1000]);
  const lo = new Http({ baseUrl: 'http://x', getToken: () => 't', random: () => 0 });
  assert.equal(lo.delay(3), 0);
});

function scripted(answers: (Response | Error)[]) {
  const seen: { auth: string | null }[] = [];
  const fetch = async (_url: string, init: RequestInit) => {
    seen.push({ auth: new Headers(init.headers).get('authorization') });
    const a = answers.shift();
    if (!a) throw new Error('no more answers');
    if (a instanceof Error) throw a;
    return a;
  };
  return { fetch, seen };
}
const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
const err = (status: number, code: string, headers: Record<string, string> = {}) => json(status, { error: { code, message: code } }, headers);

test('network errors, 5xx, 429 and 503 are retried; Retry-After is waited; 4xx is not', async () => {
  const waits: number[] = [];
  const { fetch } = scripted([new TypeError('offline'), err(500, 'internal'), err(429, 'rate_limited', { 'retry-after': '2' }), err(503, 'unavailable', { 'retry-after': '1' }), json(200, { ok: 1 })]);
  const http = new Http({ baseUrl: 'http://x', getToken: () => 't', fetch, sleep: async (ms) => void waits.push(ms), random: () => 0 });
  assert.deepEqual(await http.json('POST', '/p', {}), { ok: 1 });
  assert.deepEqual(waits, [0, 0, 2000, 1000]);

  const { fetch: f2 } = scripted([err(400, 'invalid_request')]);
  const h2 = new Http({ baseUrl: 'http://x', getToken: () => 't', fetch: f2, sleep: async () => {} });
  await assert.rejects(h2.json('POST', '/p', {}), (e: ApiError) => e instanceof ApiError && e.code === 'invalid_request');

  const { fetch: f3, seen } = scripted([new TypeError('a'), new TypeError('b'), new TypeError('c')]);
  const h3 = new Http({ baseUrl: 'http://x', getToken: () => 't', fetch: f3, retry: { maxAttempts: 3 }, sleep: async () => {} });
  await assert.rejects(h3.json('POST', '/p', {}), NetworkError);
  assert.equal(seen.length, 3);
});

test('401 asks the provider for a fresh token once', async () => {
  const asked: boolean[] = [];
  let n = 0;
  const { fetch, seen } = scripted([err(401, 'unauthorized'), json(200, {}), err(401, 'unauthorized'), err(401, 'unauthorized')]);
  const http = new Http({
    baseUrl: 'http://x',
    getToken: ({ forceRefresh }) => {
      asked.push(forceRefresh);
      return `t${++n}`;
    },
    fetch,
    sleep: async () => {},
  });
  await http.json('POST', '/p', {});
  assert.deepEqual(asked, [false, true]);
  assert.deepEqual(seen.map((s) => s.auth), ['Bearer t1', 'Bearer t2']);
  await assert.rejects(http.json('POST', '/p', {}), (e: ApiError) => e.status === 401);
  assert.deepEqual(asked, [false, true, true]);
});
