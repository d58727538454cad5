// The SDK against the real babysync binary, on SQLite and on PostgreSQL.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MemoryStorage, NetworkError, Store } from '../src/index.ts';
import { Net, minutesAgo, openDevice, snapshot } from './device.ts';
import { BACKENDS, api, createBaby, share, startServer, type TestServer } from './server.ts';

for (const backend of BACKENDS) {
  describe(`sync on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer(backend);
    });
    after(async () => {
      await srv?.stop();
    });

    test('two caregivers edit offline on two devices and converge', async () => {
      const baby = await createBaby(srv, 'alice1');
      await share(srv, 'alice1', baby, 'bob1');
      const a = await openDevice(srv, 'alice1');
      const b = await openDevice(srv, 'bob1');

      // Something both have seen.
      const shared = await a.store.create('sleep_log', { babyId: baby, startedAt: minutesAgo(300), endedAt: minutesAgo(240) });
      await a.store.sync();
      await b.store.sync();
      assert.equal(b.store.get('sleep_log', shared.id)?.endedAt, shared.endedAt);

      // Both go offline and keep logging.
      a.net.online = false;
      b.net.online = false;
      const changes: string[] = [];
      a.store.subscribe((e) => changes.push(e.source));
      const feeds = [];
      for (let i = 0; i < 5; i++) {
        feeds.push(await a.store.create('feed_log', { babyId: baby, method: 'bottle', startedAt: minutesAgo(200 - i * 10), amountMl: 100 + i }));
      }
      await a.store.update('feed_log', feeds[0]!.id, { amountMl: 90, notes: 'spat up' });
      await a.store.remove('feed_log', feeds[4]!.id);
      const nappies = [];
      for (let i = 0; i < 4; i++) {
        nappies.push(await b.store.create('nappy_log', { babyId: baby, startedAt: minutesAgo(150 - i * 10), type: 'wee' }));
      }
      await b.store.update('sleep_log', shared.id, { notes: 'woke once' });
      await b.store.remove('nappy_log', nappies[3]!.id);

      // Shown at once, offline.
      assert.equal(a.store.list('feed_log', { babyId: baby }).length, 4);
      assert.equal(a.store.get('feed_log', feeds[0]!.id)?.amountMl, 90);
      assert.equal(b.store.list('nappy_log', { babyId: baby }).length, 3);
      assert.equal(b.store.get('sleep_log', shared.id)?.notes, 'woke once');
      assert.ok(changes.filter((s) => s === 'local').length >= 7);

      // A sync while offline fails as a network error and keeps the outbox.
      await assert.rejects(a.store.sync(), NetworkError);
      assert.equal(a.store.pendingMutations.length, 7);
      assert.deepEqual(
        a.store.pendingMutations.map((m) => m.id),
        [2, 3, 4, 5, 6, 7, 8],
      );

      // Reconnect.
      a.net.online = true;
      b.net.online = true;
      const ra = await a.store.sync();
      const rb = await b.store.sync();
      await a.store.sync();
      assert.deepEqual(ra.pushed, { applied: 7, duplicate: 0, rejected: 0 });
      assert.deepEqual(rb.pushed, { applied: 6, duplicate: 0, rejected: 0 });
      assert.equal(a.store.pendingMutations.length, 0);
      assert.equal(b.store.pendingMutations.length, 0);

      const sa = snapshot(a.store);
      const sb = snapshot(b.store);
      assert.deepEqual(sa, sb);
      assert.equal(sa.feed_log.length, 5);
      assert.equal(sa.feed_log.filter((e) => e.archivedAt).length, 1);
      assert.equal(sa.nappy_log.length, 4);
      assert.equal(sa.nappy_log.filter((e) => e.archivedAt).length, 1);
      assert.equal(sa.sleep_log[0]!.notes, 'woke once');
      for (const e of [...sa.feed_log, ...sa.nappy_log]) assert.equal(typeof e.version, 'number');

      // A third device of bob's, fresh, sees the same.
      const b2 = await openDevice(srv, 'bob1');
      await b2.store.sync();
      assert.deepEqual(snapshot(b2.store), sa);
    });

    test('a crash between push and answer loses and doubles nothing', async () => {
      const baby = await createBaby(srv, 'alice2');
      const storage = new MemoryStorage();
      const net = new Net();
      const a = await openDevice(srv, 'alice2', { storage, net, retry: { maxAttempts: 1 } });
      const watcher = await openDevice(srv, 'alice2');

      const made = [];
      for (let i = 0; i < 6; i++) made.push(await a.store.create('nappy_log', { babyId: baby, startedAt: minutesAgo(60 - i), type: 'poo', colour: 'yellow' }));
      await a.store.update('nappy_log', made[0]!.id, { colour: 'green' });
      await a.store.remove('nappy_log', made[5]!.id);
      const clientId = a.store.clientId;

      net.losePushAnswers = true;
      await assert.rejects(a.store.sync(), NetworkError);
      assert.equal(net.requests.filter((r) => r.path === '/api/sync/push' && r.status === 200).length, 1);
      await a.store.close(); // the app dies here

      // The server did take them.
      await watcher.store.sync();
      const seen = watcher.store.list('nappy_log', { includeArchived: true });
      assert.equal(seen.length, 6);
      const versions = new Map(seen.map((e) => [e.id, e.version]));

      // The app starts again from its storage and resends.
      const a2 = await openDevice(srv, 'alice2', { storage });
      assert.equal(a2.store.clientId, clientId);
      assert.equal(a2.store.pendingMutations.length, 8);
      const pushed: string[] = [];
      a2.store.on('pushed', (e) => pushed.push(...e.results.map((r) => r.status)));
      const r = await a2.store.sync();
      assert.deepEqual(r.pushed, { applied: 0, duplicate: 8, rejected: 0 });
      assert.deepEqual(pushed, Array(8).fill('duplicate'));
      assert.equal(a2.store.pendingMutations.length, 0);
      assert.equal(a2.store.nextMutationId, 9);

      // Nothing was written twice: the watcher's next pull brings nothing new.
      const again = await watcher.store.sync();
      assert.equal(again.pulled.entries, 0);
      const after = watcher.store.list('nappy_log', { includeArchived: true });
      assert.deepEqual(new Map(after.map((e) => [e.id, e.version])), versions);
      assert.deepEqual(snapshot(a2.store), snapshot(watcher.store));
      assert.equal(a2.store.get('nappy_log', made[0]!.id)?.colour, 'green');

      // Within one session too: an answer lost once is resent at once and comes back duplicate.
      a2.net.losePushAnswers = 1;
      await a2.store.create('nappy_log', { babyId: baby, startedAt: minutesAgo(3), type: 'mixed' });
      const statuses: string[] = [];
      a2.store.on('pushed', (e) => statuses.push(...e.results.map((x) => x.status)));
      pushed.length = 0;
      const r2 = await a2.store.sync();
      assert.deepEqual(r2.pushed, { applied: 0, duplicate: 1, rejected: 0 });
      assert.equal(a2.retries.filter((x) => x.status === 0).length, 1);
      assert.equal(a2.store.list('nappy_log').length, 6);

      // The next new mutation goes on from 10.
      await a2.store.create('nappy_log', { babyId: baby, startedAt: minutesAgo(1), type: 'wee' });
      assert.equal(a2.store.pendingMutations[0]!.id, 10);
      assert.deepEqual((await a2.store.sync()).pushed, { applied: 1, duplicate: 0, rejected: 0 });
    });

    test('a conflict is surfaced with current, and the server copy is kept', async () => {
      const baby = await createBaby(srv, 'alice3');
      await share(srv, 'alice3', baby, 'bob3');
      const a = await openDevice(srv, 'alice3');
      const b = await openDevice(srv, 'bob3');
      const feed = await a.store.create('feed_log', { babyId: baby, method: 'bottle', startedAt: minutesAgo(30), amountMl: 100 });
      await a.store.sync();
      await b.store.sync();
      const v0 = b.store.get('feed_log', feed.id)!.version;
      assert.equal(typeof v0, 'number');

      a.net.online = false;
      await a.store.update('feed_log', feed.id, { amountMl: 120 });
      assert.equal(a.store.pendingMutations[0]!.baseVersion, v0);
      await b.store.update('feed_log', feed.id, { amountMl: 140, notes: 'bob' });
      await b.store.sync();

      a.net.online = true;
      const r = await a.store.sync();
      assert.deepEqual(r.pushed, { applied: 0, duplicate: 0, rejected: 1 });
      assert.equal(a.rejected.length, 1);
      const ev = a.rejected[0]!;
      assert.equal(ev.code, 'conflict');
      assert.equal(ev.mutation.op, 'update');
      assert.ok(ev.current);
      assert.equal((ev.current as { amountMl?: number }).amountMl, 140);
      assert.ok((ev.current.version ?? 0) > (v0 ?? 0));
      assert.equal(a.store.get('feed_log', feed.id)?.amountMl, 140);
      await b.store.sync();
      assert.deepEqual(snapshot(a.store), snapshot(b.store));

      // Other rejections are typed too: a viewer's write is forbidden, an unknown record not_found.
      const viewerBaby = await createBaby(srv, 'bob3', 'Bea');
      await share(srv, 'bob3', viewerBaby, 'alice3', 'viewer');
      await a.store.sync();
      await a.store.create('sleep_log', { babyId: viewerBaby, startedAt: minutesAgo(10) });
      await a.store.update('sleep_log', crypto.randomUUID(), { notes: 'x' });
      await a.store.create('feed_log', { babyId: baby, method: 'bottle', startedAt: minutesAgo(5), amountMl: 5000 });
      await a.store.sync();
      assert.deepEqual(
        a.rejected.slice(1).map((e) => e.code),
        ['forbidden', 'not_found', 'invalid'],
      );
      assert.equal(a.store.list('sleep_log', { babyId: viewerBaby }).length, 0, 'the refused entry is gone from the view');
    });

    test('revocation wipes the baby locally', async () => {
      const baby = await createBaby(srv, 'alice4');
      const other = await createBaby(srv, 'bob4', 'Own');
      await share(srv, 'alice4', baby, 'bob4');
      const b = await openDevice(srv, 'bob4');
      await b.store.create('feed_log', { babyId: baby, method: 'breast', startedAt: minutesAgo(20) });
      await b.store.create('feed_log', { babyId: other, method: 'breast', startedAt: minutesAgo(20) });
      await b.store.sync();
      assert.equal(b.store.list('feed_log', { babyId: baby }).length, 1);

      const del = await api(srv, 'alice4', 'DELETE', `/api/babies/${baby}/caregivers/bob4`);
      assert.equal(del.status, 204);
      // An edit bob made meanwhile for that baby is refused and not shown.
      await b.store.create('nappy_log', { babyId: baby, startedAt: minutesAgo(2), type: 'dry' });
      const r = await b.store.sync();
      assert.deepEqual(r.pulled.revokedBabyIds, [baby]);
      assert.deepEqual(b.rejected.map((e) => e.code), ['not_found']);
      assert.deepEqual(b.store.babies().map((x) => x.id), [other]);
      assert.equal(b.store.list('feed_log', { babyId: baby }).length, 0);
      assert.equal(b.store.list('nappy_log', { babyId: baby }).length, 0);
      assert.equal(b.store.list('feed_log', { babyId: other }).length, 1);
      const stored = [...(b.storage as MemoryStorage).map.values()].join('');
      assert.ok(!stored.includes(`"babyId":"${baby}"`), 'no entry of the revoked baby left in storage');

      // Shared again: the whole history comes back.
      await share(srv, 'alice4', baby, 'bob4');
      await b.store.sync();
      assert.equal(b.store.list('feed_log', { babyId: baby }).length, 1);
      assert.ok(b.store.babies().some((x) => x.id === baby));
    });

    test('503 and network errors are retried with back-off; 401 refreshes the token once', async () => {
      const baby = await createBaby(srv, 'alice5');
      const a = await openDevice(srv, 'alice5');
      await a.store.create('sleep_log', { babyId: baby, startedAt: minutesAgo(40) });
      a.net.injected = { status: 503, retryAfter: '1', count: 2 };
      const t0 = Date.now();
      const r = await a.store.sync();
      assert.equal(r.pushed.applied, 1);
      assert.deepEqual(a.retries.map((x) => x.status), [503, 503]);
      assert.ok(a.retries.every((x) => x.delayMs >= 1000), 'Retry-After honoured');
      assert.ok(Date.now() - t0 >= 2000);

      a.retries.length = 0;
      a.net.injected = { status: 502, count: 2 };
      await a.store.create('sleep_log', { babyId: baby, startedAt: minutesAgo(30) });
      await a.store.sync();
      assert.deepEqual(a.retries.map((x) => x.status), [502, 502]);
      assert.ok(a.retries.every((x) => x.delayMs <= 20 * 2 ** (x.attempt - 1)), 'jittered exponential back-off');

      // 401: an expired token is replaced through the provider, once.
      let calls = 0;
      const forced: boolean[] = [];
      const c = await openDevice(srv, 'alice5', {
        getToken: ({ forceRefresh }) => {
          calls++;
          forced.push(forceRefresh);
          return forceRefresh ? srv.token('alice5') : srv.token('alice5', { ttlSecs: -3600 });
        },
      });
      await c.store.sync();
      assert.deepEqual(forced, [false, true]);
      assert.equal(c.store.list('sleep_log').length, 2);
      // A provider that keeps handing out bad tokens is not asked forever.
      const d = await openDevice(srv, 'alice5', { getToken: () => srv.token('alice5', { ttlSecs: -3600 }) });
      await assert.rejects(d.store.sync(), (e: Error & { status?: number }) => e.status === 401);
      assert.equal(calls, 2);
    });

    test('a real 503 (database unreachable) is retried after Retry-After', { skip: backend !== 'postgres' && 'PostgreSQL only' }, async () => {
      const baby = await createBaby(srv, 'alice8');
      const a = await openDevice(srv, 'alice8', { retry: { maxAttempts: 8, baseDelayMs: 20, maxDelayMs: 3000 } });
      for (let i = 0; i < 3; i++) await a.store.create('feed_log', { babyId: baby, method: 'bottle', startedAt: minutesAgo(50 - i), amountMl: 30 });
      srv.setDatabaseReachable(false);
      const back = setTimeout(() => srv.setDatabaseReachable(true), 1500);
      try {
        const r = await a.store.sync();
        assert.deepEqual(r.pushed, { applied: 3, duplicate: 0, rejected: 0 });
      } finally {
        clearTimeout(back);
        srv.setDatabaseReachable(true);
      }
      const unavailable = a.retries.filter((x) => x.status === 503);
      assert.ok(unavailable.length >= 1, JSON.stringify(a.net.requests));
      assert.ok(unavailable.every((x) => x.delayMs >= 1000), 'Retry-After: 1 honoured');
      assert.equal(a.store.list('feed_log').length, 3);
    });

    test('out_of_order is recovered from the server\'s lastMutationId', async () => {
      const baby = await createBaby(srv, 'alice6');
      const storage = new MemoryStorage();
      const a = await openDevice(srv, 'alice6', { storage });
      await a.store.create('feed_log', { babyId: baby, method: 'bottle', startedAt: minutesAgo(9), amountMl: 60 });
      await a.store.sync();
      await a.store.close();
      // The device's storage goes wrong (say, restored badly): its outbox ids jump ahead.
      const key = [...storage.map.keys()].find((k) => k.endsWith(':queue'))!;
      const q = JSON.parse(storage.map.get(key)!);
      const a2 = await openDevice(srv, 'alice6', { storage: Object.assign(new MemoryStorage(), { map: new Map([...storage.map, [key, JSON.stringify({ ...q, nextMutationId: 40 })]]) }) });
      await a2.store.create('feed_log', { babyId: baby, method: 'bottle', startedAt: minutesAgo(8), amountMl: 70 });
      await a2.store.create('feed_log', { babyId: baby, method: 'bottle', startedAt: minutesAgo(7), amountMl: 80 });
      assert.deepEqual(a2.store.pendingMutations.map((m) => m.id), [40, 41]);
      const r = await a2.store.sync();
      assert.deepEqual(r.pushed, { applied: 2, duplicate: 0, rejected: 0 });
      assert.equal(a2.store.nextMutationId, 4);
      assert.equal(a2.store.list('feed_log').length, 3);
    });

    test('big outbox goes in batches and pull pages until hasMore is false', async () => {
      const baby = await createBaby(srv, 'alice7');
      const a = await openDevice(srv, 'alice7', { pushBatchSize: 50 });
      a.net.online = false;
      for (let i = 0; i < 230; i++) await a.store.create('nappy_log', { babyId: baby, startedAt: minutesAgo(1000 - i), type: 'wee' });
      a.net.online = true;
      const r = await a.store.sync();
      assert.equal(r.pushed.applied, 230);
      assert.equal(a.net.requests.filter((x) => x.path === '/api/sync/push').length, 5);
      const b = await openDevice(srv, 'alice7', { pullLimit: 100 });
      const rb = await b.store.sync();
      assert.equal(rb.pulled.entries, 230);
      assert.equal(rb.pulled.pages, 3);
      assert.deepEqual(snapshot(a.store), snapshot(b.store));
      // Restart from storage: state and cursor are kept.
      const b2 = await Store.open({ baseUrl: srv.url, userId: 'alice7', getToken: () => srv.token('alice7'), storage: b.storage });
      assert.equal(b2.list('nappy_log').length, 230);
      assert.equal((await b2.sync()).pulled.entries, 0);
    });
  });
}

for (const backend of BACKENDS) {
  test(`429 is retried after Retry-After (${backend}, RATE_LIMIT_PER_SEC=1)`, async () => {
    const srv = await startServer(backend, { RATE_LIMIT_PER_SEC: '1', RATE_LIMIT_BURST: '1' });
    try {
      const baby = await createBaby(srv, 'carol');
      const a = await openDevice(srv, 'carol');
      for (let i = 0; i < 3; i++) await a.store.create('feed_log', { babyId: baby, method: 'breast', startedAt: minutesAgo(10 + i) });
      const r = await a.store.sync();
      assert.equal(r.pushed.applied, 3);
      const limited = a.retries.filter((x) => x.status === 429);
      assert.ok(limited.length >= 1, `expected a 429, got ${JSON.stringify(a.net.requests)}`);
      assert.ok(limited.every((x) => x.delayMs >= 1000));
      assert.equal(a.store.list('feed_log').length, 3);
    } finally {
      await srv.stop();
    }
  });
}

test('a batch over PUSH_MAX_MUTATIONS (413) is split (sqlite, PUSH_MAX_MUTATIONS=8)', async () => {
  const srv = await startServer('sqlite', { PUSH_MAX_MUTATIONS: '8' });
  try {
    const baby = await createBaby(srv, 'dan');
    const a = await openDevice(srv, 'dan', { pushBatchSize: 100 });
    for (let i = 0; i < 20; i++) await a.store.create('sleep_log', { babyId: baby, startedAt: minutesAgo(100 - i) });
    const r = await a.store.sync();
    assert.deepEqual(r.pushed, { applied: 20, duplicate: 0, rejected: 0 });
    const pushes = a.net.requests.filter((x) => x.path === '/api/sync/push').map((x) => x.status);
    // 20 → 413, 10 → 413, then batches of 5.
    assert.deepEqual(pushes, [413, 413, 200, 200, 200, 200]);
  } finally {
    await srv.stop();
  }
});
