// Storage adapters. The store keeps a few string values under fixed keys; each
// `set` must be durable (or at least atomic) on its own when its promise resolves.

export interface StorageAdapter {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
}

/** In memory: for tests and for apps that need no persistence. */
export class MemoryStorage implements StorageAdapter {
  readonly map = new Map<string, string>();
  async get(key: string): Promise<string | undefined> {
    return this.map.get(key);
  }
  async set(key: string, value: string): Promise<void> {
    this.map.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.map.delete(key);
  }
}

/**
 * The shape of React Native's AsyncStorage (and of MMKV wrappers, localStorage
 * behind promises, ...): anything with getItem/setItem/removeItem.
 */
export interface KeyValueBackend {
  getItem(key: string): Promise<string | null | undefined> | string | null | undefined;
  setItem(key: string, value: string): Promise<void> | void;
  removeItem(key: string): Promise<void> | void;
}

/** Adapts a key-value backend (e.g. `@react-native-async-storage/async-storage`). */
export class KeyValueStorage implements StorageAdapter {
  constructor(
    private readonly backend: KeyValueBackend,
    private readonly prefix = '',
  ) {}
  async get(key: string): Promise<string | undefined> {
    const v = await this.backend.getItem(this.prefix + key);
    return v ?? undefined;
  }
  async set(key: string, value: string): Promise<void> {
    await this.backend.setItem(this.prefix + key, value);
  }
  async delete(key: string): Promise<void> {
    await this.backend.removeItem(this.prefix + key);
  }
}

/** Browsers: one object store of strings in IndexedDB. */
export class IndexedDBStorage implements StorageAdapter {
  private dbPromise: Promise<IDBDatabase> | undefined;

  constructor(
    private readonly dbName = 'babysync',
    private readonly factory: IDBFactory = globalThis.indexedDB,
    private readonly storeName = 'kv',
  ) {
    if (!factory) throw new Error('IndexedDB is not available; pass an IDBFactory');
  }

  private db(): Promise<IDBDatabase> {
    if (!this.dbPromise) {
      this.dbPromise = new Promise<IDBDatabase>((resolve, reject) => {
        const req = this.factory.open(this.dbName, 1);
        req.onupgradeneeded = () => {
          if (!req.result.objectStoreNames.contains(this.storeName)) req.result.createObjectStore(this.storeName);
        };
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error ?? new Error('IndexedDB open failed'));
      });
      this.dbPromise.catch(() => (this.dbPromise = undefined));
    }
    return this.dbPromise;
  }

  private async run<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const db = await this.db();
    return new Promise<T>((resolve, reject) => {
      const tx = db.transaction(this.storeName, mode, { durability: 'strict' });
      const req = fn(tx.objectStore(this.storeName));
      // Resolve on commit, not on the request's success: only then is a write durable.
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error ?? req.error ?? new Error('IndexedDB transaction failed'));
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
  }

  async get(key: string): Promise<string | undefined> {
    const v = await this.run('readonly', (s) => s.get(key) as IDBRequest<unknown>);
    return typeof v === 'string' ? v : undefined;
  }
  async set(key: string, value: string): Promise<void> {
    await this.run('readwrite', (s) => s.put(value, key));
  }
  async delete(key: string): Promise<void> {
    await this.run('readwrite', (s) => s.delete(key));
  }
  close(): void {
    void this.dbPromise?.then((db) => db.close());
    this.dbPromise = undefined;
  }
}
