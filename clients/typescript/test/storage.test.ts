// Each storage adapter keeps the outbox, the clientId, the next mutation id and
// the pulled state across a restart; the last part syncs through the real binary (SQLite).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { IDBFactory } from 'fake-indexeddb';
import { IndexedDBStorage, KeyValueStorage, MemoryStorage, NetworkError, Store, type KeyValueBackend, type StorageAdapter } from '../src/index.ts';
import { minutesAgo } from './device.ts';
import { createBaby, startServer, type TestServer } from './server.ts';

/** What @react-native-async-storage/async-storage looks like. */
class FakeAsyncStorage implements KeyValueBackend {
  readonly items = new Map<string, string>();
  async getItem(key: string): Promise<string | null> {
    await new Promise((r) => setImmediate(r));
    return this.items.get(key) ?? null;
  }
  async setItem(key: string, value: string): Promise<void> {
    await new Promise((r) => setImmediate(r));
    this.items.set(key, value);
  }
  async removeItem(key: string): Promise<void> {
    this.items.delete(key);
  }
}

interface Adapter {
  name: string;
  /** A fresh backing store; `open` gives a new adapter object over it (as after an app restart). */
  make(): () => StorageAdapter;
}

const adapters: Adapter[] = [
  {
    name: 'memory',
    make() {
      const s = new MemoryStorage();
      return () => s;
    },
  },
  {
    name: 'key-value (React Native)',
    make() {
      const backend = new FakeAsyncStorage();
      return () => new KeyValueStorage(backend, 'app1:');
    },
  },
  {
    name: 'IndexedDB',
    make() {
      const factory = new IDBFactory();
      let last: IndexedDBStorage | undefined;
      return () => {
        last?.close();
        last = new IndexedDBStorage('babysync-test', factory);
        return last;
      };
    },
  },
];

const offline = async (): Promise<Response> => {
  throw new TypeError('fetch failed (offline)');
};

describe('storage adapters', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer('sqlite');
  });
  after(async () => {
    await srv?.stop();
  });

  for (const ad of adapters) {
    test(`${ad.name}: get/set/delete`, async () => {
      const s = ad.make()();
      assert.equal(await s.get('k'), undefined);
      await s.set('k', 'v1');
      await s.set('k', 'v2 ✓');
      assert.equal(await s.get('k'), 'v2 ✓');
      await s.delete('k');
      assert.equal(await s.get('k'), undefined);
    });

    test(`${ad.name}: the outbox and the mutation ids survive a restart, then sync`, async () => {
      const open = ad.make();
      const user = `u-${ad.name.replace(/\W/g, '')}`;
      const baby = await createBaby(srv, user);
      const opts = { baseUrl: srv.url, userId: user, getToken: () => srv.token(user), retry: { maxAttempts: 1 } };

      const s1 = await Store.open({ ...opts, storage: open(), fetch: offline });
      const f = await s1.create('feed_log', { babyId: baby, method: 'bottle', startedAt: minutesAgo(30), amountMl: 80 });
      await s1.create('sleep_log', { babyId: baby, startedAt: minutesAgo(20) });
      await s1.update('feed_log', f.id, { amountMl: 85 });
      await assert.rejects(s1.sync(), NetworkError);
      await s1.close();

      const s2 = await Store.open({ ...opts, storage: open(), fetch: offline });
      assert.equal(s2.clientId, s1.clientId);
      assert.deepEqual(s2.pendingMutations.map((m) => m.id), [1, 2, 3]);
      assert.equal(s2.nextMutationId, 4);
      assert.equal(s2.get('feed_log', f.id)?.amountMl, 85);
      await s2.create('nappy_log', { babyId: baby, startedAt: minutesAgo(10), type: 'dry' });
      await s2.close();

      const s3 = await Store.open({ ...opts, storage: open() });
      assert.deepEqual(s3.pendingMutations.map((m) => m.id), [1, 2, 3, 4]);
      const r = await s3.sync();
      assert.deepEqual(r.pushed, { applied: 4, duplicate: 0, rejected: 0 });
      await s3.close();

      const s4 = await Store.open({ ...opts, storage: open(), fetch: offline });
      assert.equal(s4.pendingMutations.length, 0);
      assert.ok(s4.cursor);
      assert.equal(s4.nextMutationId, 5);
      assert.equal(s4.get('feed_log', f.id)?.amountMl, 85);
      assert.equal(typeof s4.get('feed_log', f.id)?.version, 'number');
      assert.equal(s4.list('nappy_log').length, 1);
      assert.deepEqual(s4.babies().map((b) => b.id), [baby]);
    });
  }

  test('two users on one device keep separate stores and clientIds', async () => {
    const storage = new MemoryStorage();
    const a = await Store.open({ baseUrl: srv.url, userId: 'x', getToken: () => '', storage, fetch: offline });
    const b = await Store.open({ baseUrl: srv.url, userId: 'y', getToken: () => '', storage, fetch: offline });
    assert.notEqual(a.clientId, b.clientId);
    await a.create('sleep_log', { babyId: crypto.randomUUID(), startedAt: minutesAgo(1) });
    assert.equal(b.list('sleep_log').length, 0);
  });
});
