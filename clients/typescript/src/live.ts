// Live updates: hold GET /api/sync/events open (streaming fetch, so it works in
// browsers where EventSource cannot send Authorization), sync on `ready` and on
// every `poke`, reconnect with back-off; poll while there is no stream.

import type { Http } from './http.ts';
import { parseRetryAfter } from './http.ts';

export interface LiveOptions {
  /** Sync this often while no stream is open (default 30 000 ms; 0: never poll). */
  pollIntervalMs?: number;
  /** Reconnect back-off: first delay (default 500 ms), doubling, with full jitter... */
  reconnectBaseMs?: number;
  /** ...up to this (default 30 000 ms). */
  reconnectMaxMs?: number;
  /** Push soon after each local edit (default true). */
  pushOnLocalChange?: boolean;
}

export type LiveState = 'connecting' | 'open' | 'polling' | 'stopped';

export interface LiveHost {
  http: Http;
  sync(): Promise<unknown>;
  onLocalChange(fn: () => void): () => void;
  setLiveState(state: LiveState, detail?: string): void;
}

export interface SseEvent {
  event: string;
  data: string;
}

/** Parses a text/event-stream body into events (comments and ids are ignored). */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let event = '';
  let data: string[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
        if (line === '') {
          if (data.length > 0 || event) yield { event: event || 'message', data: data.join('\n') };
          event = '';
          data = [];
        } else if (line.startsWith(':')) {
          // comment (keep-alive)
        } else {
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
          if (field === 'event') event = value;
          else if (field === 'data') data.push(value);
        }
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

export class LiveSync {
  private stopped = false;
  private abort: AbortController | undefined;
  private pollTimer: ReturnType<typeof setTimeout> | undefined;
  private pushTimer: ReturnType<typeof setTimeout> | undefined;
  private wake: (() => void) | undefined;
  private readonly unsubscribe: () => void;
  private readonly opts: Required<LiveOptions>;
  readonly done: Promise<void>;

  constructor(
    private readonly host: LiveHost,
    opts: LiveOptions = {},
  ) {
    this.opts = { pollIntervalMs: 30_000, reconnectBaseMs: 500, reconnectMaxMs: 30_000, pushOnLocalChange: true, ...opts };
    this.unsubscribe = host.onLocalChange(() => {
      if (!this.opts.pushOnLocalChange || this.stopped || this.pushTimer) return;
      this.pushTimer = setTimeout(() => {
        this.pushTimer = undefined;
        this.syncQuietly();
      }, 0);
    });
    this.done = this.loop();
  }

  stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    this.abort?.abort();
    this.wake?.();
    clearTimeout(this.pollTimer);
    clearTimeout(this.pushTimer);
    this.host.setLiveState('stopped');
    return this.done;
  }

  private syncQuietly(): void {
    this.host.sync().catch(() => {
      // reported through the store's syncError event; the next poke, poll or reconnect tries again
    });
  }

  private startPolling(): void {
    if (this.pollTimer || this.opts.pollIntervalMs <= 0 || this.stopped) return;
    const tick = () => {
      this.pollTimer = setTimeout(() => {
        if (this.stopped) return;
        this.syncQuietly();
        tick();
      }, this.opts.pollIntervalMs);
    };
    tick();
  }

  private stopPolling(): void {
    clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }

  private backoff(attempt: number): number {
    const cap = Math.min(this.opts.reconnectMaxMs, this.opts.reconnectBaseMs * 2 ** Math.min(attempt, 20));
    return Math.round(Math.random() * cap);
  }

  private async loop(): Promise<void> {
    let attempt = 0;
    // A stream that ends by itself ends mostly at the token's expiry: reconnect with a fresh token.
    let freshToken = false;
    while (!this.stopped) {
      this.host.setLiveState('connecting');
      let waitMs: number | undefined;
      try {
        this.abort = new AbortController();
        const res = await this.host.http.fetchAuthorized('/api/sync/events', {
          method: 'GET',
          headers: { accept: 'text/event-stream' },
          signal: this.abort.signal,
        }, { freshToken });
        freshToken = false;
        const type = res.headers.get('content-type') ?? '';
        if (res.status === 200 && type.startsWith('text/event-stream') && res.body) {
          this.stopPolling();
          for await (const ev of readSse(res.body)) {
            if (this.stopped) break;
            if (ev.event === 'ready') {
              attempt = 0;
              this.host.setLiveState('open');
              this.syncQuietly();
            } else if (ev.event === 'poke') {
              this.syncQuietly();
            }
          }
          // The stream ended (token expiry, server shutdown): reconnect soon.
          freshToken = true;
          this.host.setLiveState('polling', 'stream ended');
        } else {
          await res.body?.cancel().catch(() => {});
          if (res.status === 429 || res.status === 503) waitMs = parseRetryAfter(res.headers.get('retry-after'));
          // 404/405: a server without live updates; anything else: try again later. Poll meanwhile.
          this.host.setLiveState('polling', `events: ${res.status}`);
        }
      } catch (err) {
        if (this.stopped) break;
        this.host.setLiveState('polling', String(err));
      }
      if (this.stopped) break;
      this.startPolling();
      attempt++;
      await this.sleep(Math.max(waitMs ?? 0, this.backoff(attempt)));
    }
  }
}
