// A test device: a Store over a fetch that can be switched offline, can lose
// answers, and counts what it sent.

import { ENTITIES, MemoryStorage, Store, type Entry, type EntityName, type RejectedEvent, type RetryInfo, type StorageAdapter, type StoreOptions } from '../src/index.ts';
import type { TestServer } from './server.ts';

export class Net {
  online = true;
  /** Performs push requests but throws their answers away (a crash between push and answer): always, or the next n. */
  losePushAnswers: boolean | number = false;
  /** Answers the next n requests with this status before they reach the server. */
  injected: { status: number; retryAfter?: string; count: number } | undefined;
  requests: { path: string; status: number }[] = [];
  /** Answer GET /api/sync/events with this status (a server without live updates: 404). */
  eventsStatus: number | undefined;
  private streams = new Set<ReadableStreamDefaultController<Uint8Array>>();

  /** Breaks every open event stream (as a dropped connection does). */
  cutStreams(): void {
    for (const c of this.streams) c.error(new TypeError('terminated (connection cut)'));
    this.streams.clear();
  }

  fetch = async (input: string, init: RequestInit): Promise<Response> => {
    const path = new URL(input).pathname;
    if (!this.online) throw new TypeError('fetch failed (offline)');
    if (this.injected && this.injected.count > 0) {
      this.injected.count--;
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (this.injected.retryAfter) headers['retry-after'] = this.injected.retryAfter;
      this.requests.push({ path, status: this.injected.status });
      return new Response(JSON.stringify({ error: { code: 'unavailable', message: 'injected' } }), { status: this.injected.status, headers });
    }
    if (path === '/api/sync/events' && this.eventsStatus) {
      this.requests.push({ path, status: this.eventsStatus });
      return new Response(JSON.stringify({ error: { code: 'not_found', message: 'no such route' } }), { status: this.eventsStatus, headers: { 'content-type': 'application/json' } });
    }
    const res = await fetch(input, init);
    this.requests.push({ path, status: res.status });
    if (path === '/api/sync/events' && res.body) {
      const reader = res.body.getReader();
      let ctl!: ReadableStreamDefaultController<Uint8Array>;
      const streams = this.streams;
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          ctl = c;
          streams.add(c);
        },
        async pull(c) {
          try {
            const { done, value } = await reader.read();
            if (done) {
              streams.delete(ctl);
              c.close();
            } else c.enqueue(value);
          } catch (err) {
            streams.delete(ctl);
            c.error(err);
          }
        },
        cancel(reason) {
          streams.delete(ctl);
          return reader.cancel(reason);
        },
      });
      const cut = ctl;
      const origError = cut.error.bind(cut);
      cut.error = (e?: unknown) => {
        origError(e);
        reader.cancel(e).catch(() => {});
      };
      return new Response(body, { status: res.status, headers: res.headers });
    }
    if (this.losePushAnswers && path === '/api/sync/push') {
      if (typeof this.losePushAnswers === 'number') this.losePushAnswers--;
      await res.arrayBuffer(); // the server did all its work; the answer is lost
      throw new TypeError('connection reset (answer lost)');
    }
    return res;
  };
}

export interface Device {
  store: Store;
  net: Net;
  storage: StorageAdapter;
  rejected: RejectedEvent[];
  retries: RetryInfo[];
  tokenCalls: { forceRefresh: boolean }[];
}

export async function openDevice(
  srv: TestServer,
  user: string,
  opts: { storage?: StorageAdapter; net?: Net; getToken?: StoreOptions['getToken'] } & Partial<StoreOptions> = {},
): Promise<Device> {
  const net = opts.net ?? new Net();
  const storage = opts.storage ?? new MemoryStorage();
  const tokenCalls: { forceRefresh: boolean }[] = [];
  const store = await Store.open({
    baseUrl: srv.url,
    userId: user,
    retry: { maxAttempts: 4, baseDelayMs: 20, maxDelayMs: 3000 },
    ...opts,
    storage,
    fetch: net.fetch,
    getToken:
      opts.getToken ??
      ((o) => {
        tokenCalls.push(o);
        return srv.token(user);
      }),
  });
  const dev: Device = { store, net, storage, rejected: [], retries: [], tokenCalls };
  store.on('rejected', (e) => dev.rejected.push(e));
  store.on('retry', (e) => dev.retries.push(e));
  return dev;
}

/** What a device shows, in a form two devices can be compared by. */
export function snapshot(store: Store) {
  const entries = Object.fromEntries(ENTITIES.map((e) => [e, store.list(e, { includeArchived: true })])) as { [E in EntityName]: Entry<E>[] };
  return { babies: store.babies().map((b) => b.id).sort(), ...entries };
}

export function minutesAgo(n: number): string {
  return new Date(Date.now() - n * 60_000).toISOString().replace(/\.\d+Z$/, '.000Z');
}
