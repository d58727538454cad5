// What a browser needs for the SDK's requests, asked with a real Origin (SQLite server).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startServer, type TestServer } from './server.ts';

const APP = 'https://app.example';

describe('CORS for the SDK', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer('sqlite', { CORS_ALLOWED_ORIGINS: APP });
  });
  after(async () => {
    await srv?.stop();
  });

  for (const [method, path, headers] of [
    ['POST', '/api/sync/push', 'authorization, content-type'],
    ['POST', '/api/sync/pull', 'authorization, content-type'],
    ['GET', '/api/sync/events', 'authorization'],
  ] as const) {
    test(`preflight and request: ${method} ${path}`, async () => {
      const pre = await fetch(srv.url + path, {
        method: 'OPTIONS',
        headers: { origin: APP, 'access-control-request-method': method, 'access-control-request-headers': headers },
      });
      assert.ok(pre.status >= 200 && pre.status < 300, String(pre.status));
      assert.equal(pre.headers.get('access-control-allow-origin'), APP);
      const allowed = (pre.headers.get('access-control-allow-headers') ?? '').toLowerCase();
      for (const h of headers.split(', ')) assert.ok(allowed.includes(h), `${h} in ${allowed}`);
      assert.ok((pre.headers.get('access-control-allow-methods') ?? '').includes(method));

      const ctl = new AbortController();
      const res = await fetch(srv.url + path, {
        method,
        signal: ctl.signal,
        headers: { origin: APP, authorization: `Bearer ${srv.token('web')}`, 'content-type': 'application/json' },
        body: method === 'POST' ? JSON.stringify({ protocolVersion: 1, clientId: crypto.randomUUID(), ...(path.endsWith('push') ? { mutations: [] } : { cursor: null }) }) : undefined,
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('access-control-allow-origin'), APP);
      // The SDK reads Retry-After on 429/503: a browser lets it only when exposed.
      assert.ok((res.headers.get('access-control-expose-headers') ?? '').toLowerCase().includes('retry-after'));
      ctl.abort();
      await res.body?.cancel().catch(() => {});
    });
  }

  test('another origin gets no CORS headers', async () => {
    const res = await fetch(`${srv.url}/api/sync/pull`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(res.headers.get('access-control-allow-origin'), null);
  });
});
