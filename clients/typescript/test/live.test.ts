// Live updates against the real binary: a write on one device reaches another
// through GET /api/sync/events; a cut stream reconnects; without a stream, polling.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readSse, type LiveState } from '../src/index.ts';
import { minutesAgo, openDevice, type Device } from './device.ts';
import { BACKENDS, createBaby, share, startServer, type TestServer } from './server.ts';

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
}

function states(d: Device): LiveState[] {
  const out: LiveState[] = [];
  d.store.on('live', (e) => out.push(e.state));
  return out;
}

test('readSse: events, multi-line data, comments, CRLF, split chunks', async () => {
  const text = ': hi\r\nevent: ready\r\ndata: {}\r\n\r\n: keep-alive\n\nevent: poke\ndata: {"babyIds":\ndata: ["a"]}\n\n';
  const bytes = new TextEncoder().encode(text);
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < bytes.length; i += 7) c.enqueue(bytes.slice(i, i + 7));
      c.close();
    },
  });
  const got = [];
  for await (const e of readSse(body)) got.push(e);
  assert.deepEqual(got, [
    { event: 'ready', data: '{}' },
    { event: 'poke', data: '{"babyIds":\n["a"]}' },
  ]);
});

for (const backend of BACKENDS) {
  describe(`live updates on ${backend}`, () => {
    let srv: TestServer;
    const open: Device[] = [];
    before(async () => {
      srv = await startServer(backend);
    });
    after(async () => {
      for (const d of open) await d.store.close();
      await srv?.stop();
    });

    test('a write on one device reaches the other by a poke; a cut stream reconnects; no stream means polling', async () => {
      const baby = await createBaby(srv, 'ann');
      await share(srv, 'ann', baby, 'ben');
      const a = await openDevice(srv, 'ann');
      const b = await openDevice(srv, 'ben');
      open.push(a, b);
      const bStates = states(b);

      // ready → pull: ben sees what was there before, without calling sync().
      const first = await a.store.create('sleep_log', { babyId: baby, startedAt: minutesAgo(90) });
      await a.store.sync();
      b.store.startLive({ pollIntervalMs: 0, reconnectBaseMs: 50, reconnectMaxMs: 200 });
      await waitFor('the first pull on ready', () => b.store.get('sleep_log', first.id) !== undefined);
      assert.ok(bStates.includes('open'));

      // ann's device is live too: a local edit is pushed at once, ben's is poked and pulls.
      a.store.startLive({ pollIntervalMs: 0 });
      await waitFor('ann open', () => a.net.requests.some((r) => r.path === '/api/sync/events'));
      const lat: number[] = [];
      for (let i = 0; i < 5; i++) {
        const f = await a.store.create('feed_log', { babyId: baby, method: 'bottle', startedAt: minutesAgo(60 - i), amountMl: 50 + i });
        lat.push(await waitFor(`feed ${i} on ben's device`, () => b.store.get('feed_log', f.id)?.version != null));
      }
      const pullsByBen = b.net.requests.filter((r) => r.path === '/api/sync/pull').length;
      assert.equal(b.net.requests.filter((r) => r.path === '/api/sync/push').length, 0);
      console.log(`[${backend}] write on one device → seen on the other: ${lat.join(', ')} ms; ben pulled ${pullsByBen} times`);

      // The connection drops while ben is offline; ann writes meanwhile; ben comes back.
      const streamsBefore = b.net.requests.filter((r) => r.path === '/api/sync/events').length;
      b.net.online = false;
      b.net.cutStreams();
      const late = await a.store.create('nappy_log', { babyId: baby, startedAt: minutesAgo(5), type: 'poo' });
      await waitFor('ann pushed', () => a.store.pendingMutations.length === 0);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(b.store.get('nappy_log', late.id), undefined);
      b.net.online = true;
      await waitFor('ben reconnected and pulled', () => b.store.get('nappy_log', late.id) !== undefined);
      assert.ok(b.net.requests.filter((r) => r.path === '/api/sync/events').length > streamsBefore);
      assert.ok(bStates.filter((s) => s === 'open').length >= 2, bStates.join(','));

      // A server without live updates (404 on the stream): the device polls.
      const c = await openDevice(srv, 'ben');
      open.push(c);
      c.net.eventsStatus = 404;
      const cStates = states(c);
      c.store.startLive({ pollIntervalMs: 100, reconnectBaseMs: 1000 });
      const last = await a.store.create('sleep_log', { babyId: baby, startedAt: minutesAgo(2) });
      await waitFor('polled', () => c.store.get('sleep_log', last.id) !== undefined);
      assert.ok(cStates.includes('polling'));
      assert.ok(!cStates.includes('open'));

      await b.store.stopLive();
      await a.store.stopLive();
      await c.store.stopLive();
      assert.deepEqual(
        b.store.list('feed_log', { includeArchived: true }).map((e) => e.id),
        a.store.list('feed_log', { includeArchived: true }).map((e) => e.id),
      );
    });

    test('the stream ends with the token; the device reconnects with a fresh one', async () => {
      const baby = await createBaby(srv, 'eve');
      const forced: boolean[] = [];
      // The first token expired 57 s ago: still accepted (60 s leeway), and the stream ends about 3 s from now.
      const e = await openDevice(srv, 'eve', {
        getToken: ({ forceRefresh }) => {
          forced.push(forceRefresh);
          return forced.length === 1 ? srv.token('eve', { ttlSecs: -57 }) : srv.token('eve');
        },
      });
      open.push(e);
      const st = states(e);
      e.store.startLive({ pollIntervalMs: 0, reconnectBaseMs: 50, reconnectMaxMs: 100 });
      await waitFor('open', () => st.includes('open'));
      await waitFor('the stream to end and open again', () => st.filter((x) => x === 'open').length >= 2, 10_000);
      assert.ok(forced.includes(true), 'a fresh token was asked for');
      // Not a burst of reconnects with the old token (the server still takes it for up to a second after the stream ends).
      assert.equal(e.net.requests.filter((r) => r.path === '/api/sync/events').length, 2, JSON.stringify(e.net.requests));
      const w = await openDevice(srv, 'eve');
      const s1 = await w.store.create('sleep_log', { babyId: baby, startedAt: minutesAgo(3) });
      await w.store.sync();
      await waitFor('poke on the new stream', () => e.store.get('sleep_log', s1.id) !== undefined);
      await e.store.stopLive();
    });
  });
}
