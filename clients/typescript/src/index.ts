export * from './types.ts';
export * from './storage.ts';
export { Http, ApiError, NetworkError, DEFAULT_RETRY, parseRetryAfter } from './http.ts';
export type { FetchLike, TokenProvider, RetryOptions, RetryInfo } from './http.ts';
export { Store, uuidv4 } from './store.ts';
export type { StoreOptions, RejectedEvent, ChangeEvent, PushedEvent, SyncResult } from './store.ts';
export { LiveSync, readSse } from './live.ts';
export type { LiveOptions, LiveState, SseEvent } from './live.ts';
