// One JSON request with retries: network errors and 5xx back off exponentially
// with full jitter; 429 and 503 wait for Retry-After when given; a 401 asks the
// token provider for a fresh token once.

import type { ErrorBody } from './types.ts';

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export type TokenProvider = (opts: { forceRefresh: boolean }) => Promise<string> | string;

export interface RetryOptions {
  /** Attempts in all, the first included (default 6). */
  maxAttempts: number;
  /** First back-off in ms (default 250); doubles each attempt. */
  baseDelayMs: number;
  /** Largest back-off in ms (default 30 000); Retry-After is capped at this too. */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { maxAttempts: 6, baseDelayMs: 250, maxDelayMs: 30_000 };

export interface RetryInfo {
  path: string;
  attempt: number;
  delayMs: number;
  /** HTTP status, or 0 for a network error. */
  status: number;
  reason: string;
}

/** A non-2xx answer that is not retried (or whose retries ran out). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(`${status} ${code}: ${message}`);
    this.name = 'ApiError';
  }
}

/** The server could not be reached (after every retry). */
export class NetworkError extends Error {
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
    this.name = 'NetworkError';
  }
}

export interface HttpOptions {
  baseUrl: string;
  getToken: TokenProvider;
  fetch?: FetchLike;
  retry?: Partial<RetryOptions>;
  onRetry?: (info: RetryInfo) => void;
  /** For tests: how to wait (default setTimeout). */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export class Http {
  readonly baseUrl: string;
  private readonly fetchFn: FetchLike;
  private readonly retry: RetryOptions;
  private token: string | undefined;

  constructor(private readonly opts: HttpOptions) {
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.fetchFn = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
  }

  async currentToken(forceRefresh = false): Promise<string> {
    if (forceRefresh || this.token === undefined) this.token = await this.opts.getToken({ forceRefresh });
    return this.token;
  }

  /** Raw fetch with the bearer token and one refresh on 401 (no other retries): for the event stream. */
  async fetchAuthorized(path: string, init: RequestInit, opts: { freshToken?: boolean } = {}): Promise<Response> {
    let refreshed = false;
    let force = opts.freshToken ?? false;
    for (;;) {
      const token = await this.currentToken(force);
      force = false;
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${token}`);
      const res = await this.fetchFn(this.baseUrl + path, { ...init, headers });
      if (res.status === 401 && !refreshed) {
        await res.body?.cancel().catch(() => {});
        refreshed = true;
        force = true;
        continue;
      }
      return res;
    }
  }

  delay(attempt: number): number {
    const cap = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
    return Math.round((this.opts.random ?? Math.random)() * cap);
  }

  private sleep(ms: number): Promise<void> {
    return this.opts.sleep ? this.opts.sleep(ms) : new Promise((r) => setTimeout(r, ms));
  }

  /** POST (or GET without body) JSON; returns the parsed 2xx body or throws ApiError / NetworkError. */
  json<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    return this.request<T>(method, path, { body: body === undefined ? undefined : JSON.stringify(body), contentType: 'application/json' });
  }

  /**
   * One request with the same retries and token refresh as json(): `body` is
   * sent as is (a string or bytes, with `contentType` and `headers`), and the
   * 2xx answer is parsed as JSON (default) or returned as text. Only for
   * requests that are safe to repeat.
   */
  async request<T>(
    method: 'GET' | 'POST',
    path: string,
    opts: { body?: string | Uint8Array | undefined; contentType?: string; headers?: Record<string, string>; accept?: string; read?: 'json' | 'text' } = {},
  ): Promise<T> {
    const read = opts.read ?? 'json';
    let refreshed = false;
    let forceRefresh = false;
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        const token = await this.currentToken(forceRefresh);
        forceRefresh = false;
        const headers: Record<string, string> = {
          ...opts.headers,
          authorization: `Bearer ${token}`,
          accept: opts.accept ?? (read === 'json' ? 'application/json' : '*/*'),
        };
        if (opts.body !== undefined && opts.contentType) headers['content-type'] = opts.contentType;
        res = await this.fetchFn(this.baseUrl + path, { method, headers, body: opts.body as BodyInit | undefined });
      } catch (err) {
        if (attempt >= this.retry.maxAttempts) throw new NetworkError(`${method} ${path}: ${String(err)}`, err);
        const delayMs = this.delay(attempt);
        this.opts.onRetry?.({ path, attempt, delayMs, status: 0, reason: String(err) });
        await this.sleep(delayMs);
        continue;
      }

      if (res.ok) {
        try {
          return (read === 'json' ? await res.json() : await res.text()) as T;
        } catch (err) {
          // The answer was lost on the way: for push this is the "crash between
          // push and answer" case; a resend is safe (it comes back `duplicate`).
          if (attempt >= this.retry.maxAttempts) throw new NetworkError(`${method} ${path}: body lost: ${String(err)}`, err);
          const delayMs = this.delay(attempt);
          this.opts.onRetry?.({ path, attempt, delayMs, status: 0, reason: `body lost: ${String(err)}` });
          await this.sleep(delayMs);
          continue;
        }
      }

      const err = await readError(res);
      if (res.status === 401 && !refreshed) {
        refreshed = true;
        forceRefresh = true;
        attempt--; // a token refresh is not a retry
        continue;
      }
      const retryable = res.status >= 500 || res.status === 429 || res.status === 408;
      if (!retryable || attempt >= this.retry.maxAttempts) throw err;
      let delayMs = this.delay(attempt);
      if (res.status === 429 || res.status === 503) {
        const ra = parseRetryAfter(res.headers.get('retry-after'));
        if (ra !== undefined) delayMs = Math.min(this.retry.maxDelayMs, ra + Math.round((this.opts.random ?? Math.random)() * 100));
      }
      this.opts.onRetry?.({ path, attempt, delayMs, status: res.status, reason: err.code });
      await this.sleep(delayMs);
    }
  }
}

/** Retry-After in ms (delta-seconds or an HTTP date). */
export function parseRetryAfter(v: string | null): number | undefined {
  if (v === null) return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

async function readError(res: Response): Promise<ApiError> {
  let text = '';
  try {
    text = await res.text();
    const body = JSON.parse(text) as ErrorBody;
    if (body && typeof body.error?.code === 'string') {
      return new ApiError(res.status, body.error.code, body.error.message, body.error.details);
    }
  } catch {
    // not the error shape
  }
  return new ApiError(res.status, `http_${res.status}`, text.slice(0, 200) || res.statusText);
}
