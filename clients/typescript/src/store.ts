// The local store: server state from pull, a durable outbox of mutations, and
// the view the app reads (server state with the outbox applied on top).

import { ApiError, Http, NetworkError, type FetchLike, type RetryInfo, type RetryOptions, type TokenProvider } from './http.ts';
import { LiveSync, type LiveOptions, type LiveState } from './live.ts';
import type { StorageAdapter } from './storage.ts';
import { foldTimer, type FoldedTimer } from './timer.ts';
import {
  ENTITIES,
  TIMER_ENTITIES,
  type AnyEntry,
  type Baby,
  type CreateInput,
  type EntityName,
  type Entry,
  type ExportDocument,
  type ImportResult,
  type Mutation,
  type MutationResult,
  type PullResponse,
  type PushResponse,
  type RejectionCode,
  type Side,
  type SidedTimerEntity,
  type Summary,
  type TimerAction,
  type TimerEntity,
  type TimerEventLog,
  type Timestamp,
  type UpdatableEntity,
  type UpdateInput,
  type Uuid,
} from './types.ts';

export interface StoreOptions {
  /** e.g. `https://api.example.com` (no trailing `/api`). */
  baseUrl: string;
  /** The user the token's `sub` names; storage keys are per user. */
  userId: string;
  getToken: TokenProvider;
  storage: StorageAdapter;
  fetch?: FetchLike;
  retry?: Partial<RetryOptions>;
  /** Mutations per push request (default 100; the server takes up to 1000). */
  pushBatchSize?: number;
  /** Entries per pull page (default 1000). */
  pullLimit?: number;
  /**
   * `version` (default): an update carries the `baseVersion` the device last
   * saw, so an edit made on stale data is rejected as `conflict` and the server's
   * `current` is kept. `lastWriteWins`: no `baseVersion`.
   */
  conflictPolicy?: 'version' | 'lastWriteWins';
}

/** What startTimer takes: the entry's fields but the folded ones; startedAt defaults to now. */
export type TimerStartInput<E extends TimerEntity> = Omit<CreateInput<E>, 'timerState' | 'endedAt' | 'durationMinutes' | 'startedAt'> & {
  startedAt?: Timestamp | Date;
};

export interface RejectedEvent {
  mutation: Mutation;
  code: RejectionCode;
  message: string | undefined;
  /** For `conflict`: the server's record, which the store now holds. */
  current: AnyEntry | null | undefined;
}

export interface ChangeEvent {
  source: 'local' | 'push' | 'pull';
  /** Babies whose data changed (for a pull: every baby touched by the page). */
  babyIds: Uuid[];
}

export interface PushedEvent {
  results: MutationResult[];
  lastMutationId: number;
}

/** What summary() takes: dates in `tz` (YYYY-MM-DD, or a Date read in `tz`); both default to today there. */
export interface SummaryOptions {
  from?: string | Date;
  to?: string | Date;
  /** IANA time zone the days run in (default: the device's). */
  tz?: string;
}

/** What exportBaby() takes: JSON (the whole baby, for importBaby) or one kind as CSV. */
export type ExportOptions =
  | { format?: 'json' }
  | {
      format: 'csv';
      /** The kind whose entries (not archived) become the rows. */
      kind: EntityName;
      /** IANA time zone of the timestamps (default: the device's). */
      tz?: string;
    };

export interface SyncResult {
  pushed: { applied: number; duplicate: number; rejected: number };
  pulled: { entries: number; pages: number; revokedBabyIds: Uuid[] };
}

interface EventMap {
  change: ChangeEvent;
  rejected: RejectedEvent;
  pushed: PushedEvent;
  retry: RetryInfo;
  syncError: Error;
  live: { state: LiveState; detail?: string };
}

type Listener<T> = (ev: T) => void;

interface QueueState {
  clientId: Uuid;
  nextMutationId: number;
  /** Not yet answered by the server (in id order). */
  pending: Mutation[];
  /** Applied by the server, not yet seen in a pull: still shown on top of pulled state. */
  awaitingPull: Mutation[];
}

interface DataState {
  cursor: string | null;
  babies: Baby[];
  entries: { [E in EntityName]: Record<Uuid, Entry<E>> };
  revokedBabyIds: Uuid[];
}

const PROTOCOL_VERSION = 1 as const;

function emptyData(): DataState {
  return { cursor: null, babies: [], entries: emptyEntries(), revokedBabyIds: [] };
}

function emptyEntries(): DataState['entries'] {
  return Object.fromEntries(ENTITIES.map((e) => [e, {}])) as DataState['entries'];
}

export function uuidv4(): Uuid {
  return globalThis.crypto.randomUUID();
}

export class Store {
  private readonly http: Http;
  private readonly listeners: { [K in keyof EventMap]: Set<Listener<EventMap[K]>> } = {
    change: new Set(),
    rejected: new Set(),
    pushed: new Set(),
    retry: new Set(),
    syncError: new Set(),
    live: new Set(),
  };
  private liveSync: LiveSync | undefined;
  private view: DataState['entries'] | undefined;
  private writeChain: Promise<void> = Promise.resolve();
  private syncing: Promise<SyncResult> | undefined;
  private syncAgain = false;
  private closed = false;

  private constructor(
    private readonly opts: StoreOptions,
    private queue: QueueState,
    private data: DataState,
  ) {
    this.http = new Http({
      baseUrl: opts.baseUrl,
      getToken: opts.getToken,
      fetch: opts.fetch,
      retry: opts.retry,
      onRetry: (info) => this.emit('retry', info),
    });
  }

  /** Opens the store of one user from storage (a new clientId on first use). */
  static async open(opts: StoreOptions): Promise<Store> {
    const k = keys(opts.userId);
    const [q, d] = await Promise.all([opts.storage.get(k.queue), opts.storage.get(k.data)]);
    let queue: QueueState;
    if (q) {
      queue = JSON.parse(q) as QueueState;
    } else {
      queue = { clientId: uuidv4(), nextMutationId: 1, pending: [], awaitingPull: [] };
      await opts.storage.set(k.queue, JSON.stringify(queue));
    }
    const data = d ? (JSON.parse(d) as DataState) : emptyData();
    for (const e of ENTITIES) {
      if (data.entries[e]) continue;
      // Stored by an SDK that did not know this kind: its cursor went past the
      // kind's entries, so pull everything again.
      data.entries[e] = {};
      data.cursor = null;
    }
    return new Store(opts, queue, data);
  }

  get clientId(): Uuid {
    return this.queue.clientId;
  }
  get cursor(): string | null {
    return this.data.cursor;
  }
  /** Mutations not yet answered by the server. */
  get pendingMutations(): readonly Mutation[] {
    return this.queue.pending;
  }
  get nextMutationId(): number {
    return this.queue.nextMutationId;
  }

  // ---- events ----

  on<K extends keyof EventMap>(event: K, fn: Listener<EventMap[K]>): () => void {
    this.listeners[event].add(fn);
    return () => this.listeners[event].delete(fn);
  }
  /** Local changes (own edits, pulled data, conflicts): re-read what the UI shows. */
  subscribe(fn: Listener<ChangeEvent>): () => void {
    return this.on('change', fn);
  }
  private emit<K extends keyof EventMap>(event: K, ev: EventMap[K]): void {
    for (const fn of this.listeners[event]) {
      try {
        fn(ev);
      } catch (err) {
        console.error('babysync listener failed', err);
      }
    }
  }

  // ---- reading ----

  babies(): Baby[] {
    const revoked = new Set(this.data.revokedBabyIds);
    return this.data.babies.filter((b) => !revoked.has(b.id));
  }

  /** Entries of a kind (optionally of one baby), archived ones left out unless asked, by startedAt. */
  list<E extends EntityName>(entity: E, opts: { babyId?: Uuid; includeArchived?: boolean } = {}): Entry<E>[] {
    const revoked = new Set(this.data.revokedBabyIds);
    const all = Object.values(this.entriesView()[entity]) as Entry<E>[];
    return all
      .filter(
        (e) =>
          !revoked.has(e.babyId) &&
          (opts.babyId === undefined || e.babyId === opts.babyId) &&
          (opts.includeArchived || !e.archivedAt),
      )
      .sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : a.id < b.id ? -1 : 1));
  }

  get<E extends EntityName>(entity: E, id: Uuid): Entry<E> | undefined {
    const e = this.entriesView()[entity][id] as Entry<E> | undefined;
    if (!e || this.data.revokedBabyIds.includes(e.babyId)) return undefined;
    return e;
  }

  private entriesView(): DataState['entries'] {
    if (this.view) return this.view;
    const view = Object.fromEntries(ENTITIES.map((e) => [e, { ...this.data.entries[e] }])) as DataState['entries'];
    for (const m of [...this.queue.awaitingPull, ...this.queue.pending]) applyMutation(view, m, this.opts.userId);
    foldTimers(view);
    this.view = view;
    return view;
  }

  // ---- writing (local, at once; queued for the server) ----

  async create<E extends EntityName>(entity: E, input: CreateInput<E>): Promise<Entry<E>> {
    const data = { ...input, id: input.id ?? uuidv4() } as Record<string, unknown> & { id: Uuid };
    await this.enqueue({ entity, op: 'create', data });
    return this.get(entity, data.id)!;
  }

  async update<E extends UpdatableEntity>(entity: E, id: Uuid, patch: UpdateInput<E>): Promise<Entry<E> | undefined> {
    const m: Omit<Mutation, 'id'> = { entity, op: 'update', data: { ...patch, id } };
    if ((this.opts.conflictPolicy ?? 'version') === 'version') {
      const base = this.baseVersionFor(entity, id);
      if (base !== undefined) m.baseVersion = base;
    }
    await this.enqueue(m);
    return this.get(entity, id);
  }

  async remove(entity: EntityName, id: Uuid): Promise<void> {
    await this.enqueue({ entity, op: 'delete', data: { id } });
  }

  // ---- timers (PROTOCOL.md, "Timers shared by caregivers") ----
  //
  // Every action is a `timer_event` queued like any write, so it works offline;
  // the view folds each timer from its events (pulled and pending) with the
  // server's own fold, so the screen shows what the server will make of them.

  /** Starts a timer: creates the entry with `timerState: 'running'` (startedAt: now unless given). Returns its id. */
  async startTimer<E extends TimerEntity>(entity: E, input: TimerStartInput<E>): Promise<Uuid> {
    const data = { ...input, startedAt: toIso(input.startedAt ?? new Date()), timerState: 'running' } as unknown as CreateInput<E>;
    return (await this.create(entity, data)).id;
  }

  pause(entity: TimerEntity, entryId: Uuid, at?: Timestamp | Date): Promise<Uuid> {
    return this.actOnTimer(entity, entryId, 'pause', { at });
  }
  /** Also undoes a stop. */
  resume(entity: TimerEntity, entryId: Uuid, at?: Timestamp | Date): Promise<Uuid> {
    return this.actOnTimer(entity, entryId, 'resume', { at });
  }
  switchSide(entity: SidedTimerEntity, entryId: Uuid, side: Side, at?: Timestamp | Date): Promise<Uuid> {
    return this.actOnTimer(entity, entryId, 'switchSide', { at, side });
  }
  stop(entity: TimerEntity, entryId: Uuid, at?: Timestamp | Date): Promise<Uuid> {
    return this.actOnTimer(entity, entryId, 'stop', { at });
  }

  /**
   * Queues a `timer_event` on a timer this device knows: `at` (default now) is
   * the moment of the action, `side` is for `switchSide` only, `id` the event's
   * (default a new UUIDv4). Returns the event's id.
   */
  async actOnTimer(
    entity: TimerEntity,
    entryId: Uuid,
    action: TimerAction,
    opts: { at?: Timestamp | Date | undefined; side?: Side | undefined; id?: Uuid | undefined } = {},
  ): Promise<Uuid> {
    const entry = this.get(entity, entryId);
    if (!entry?.timerState || entry.archivedAt) throw new Error(`${entity} ${entryId}: no such timer on this device`);
    if (action === 'switchSide' && (!opts.side || (entity !== 'feed_log' && entity !== 'pumping_log'))) {
      throw new Error(`switchSide needs a side, on a feed_log or pumping_log timer`);
    }
    const data = {
      id: opts.id ?? uuidv4(),
      babyId: entry.babyId,
      startedAt: toIso(opts.at ?? new Date()),
      entryEntity: entity,
      entryId,
      action,
      ...(action === 'switchSide' ? { side: opts.side } : {}),
    };
    await this.enqueue({ entity: 'timer_event', op: 'create', data });
    return data.id;
  }

  /**
   * Undoes the last action on a timer by deleting its event. The last action is
   * the latest in the fold's order (startedAt, then id) of the timer's events
   * this device sees that are not deleted, pulled or pending, whichever
   * caregiver made it: every device steps back through the same timeline, and
   * right after a tap it is that tap unless someone acted later. (An event
   * the fold ignored, as the later of two stops, counts as an action too.)
   * Returns the deleted event's id, or undefined when there is none.
   */
  async undo(entity: TimerEntity, entryId: Uuid): Promise<Uuid | undefined> {
    const last = this.timerEvents(entity, entryId).at(-1);
    if (!last) return undefined;
    await this.remove('timer_event', last.id);
    return last.id;
  }

  /** A timer's events this device sees (pulled and pending, not deleted), in the fold's order. */
  timerEvents(entity: TimerEntity, entryId: Uuid): TimerEventLog[] {
    return this.list('timer_event')
      .filter((e) => e.entryEntity === entity && e.entryId === entryId)
      .sort(foldOrder);
  }

  /** A timer as this device shows it (folded from its visible events), or undefined if the entry is not a timer here. */
  timer(entity: TimerEntity, entryId: Uuid): FoldedTimer | undefined {
    const e = this.get(entity, entryId);
    if (!e?.timerState || !e.segments) return undefined;
    return { timerState: e.timerState, segments: e.segments, endedAt: e.endedAt ?? null, durationMinutes: e.durationMinutes ?? 0 };
  }

  /**
   * The version this device last saw, when no earlier local mutation of the record
   * is still in flight (its outcome would move the version on under us; so does
   * a timer's event, which gives the timer a new version).
   */
  private baseVersionFor(entity: EntityName, id: Uuid): number | undefined {
    const events = this.entriesView().timer_event;
    const touched = [...this.queue.awaitingPull, ...this.queue.pending].some(
      (m) =>
        (m.entity === entity && m.data.id === id) ||
        (m.entity === 'timer_event' && (m.data.entryId ?? events[m.data.id]?.entryId) === id),
    );
    if (touched) return undefined;
    const v = this.data.entries[entity][id]?.version;
    return typeof v === 'number' ? v : undefined;
  }

  private async enqueue(m: Omit<Mutation, 'id'>): Promise<void> {
    if (!ENTITIES.includes(m.entity)) throw new Error(`unknown entity ${m.entity}`);
    const mutation: Mutation = { id: this.queue.nextMutationId, ...m };
    this.queue.nextMutationId++;
    this.queue.pending.push(mutation);
    this.view = undefined;
    const babyId = (m.data.babyId as string | undefined) ?? this.get(m.entity, m.data.id)?.babyId;
    this.emit('change', { source: 'local', babyIds: babyId ? [babyId] : [] });
    await this.persistQueue();
  }

  // ---- persistence ----

  private persist(key: 'queue' | 'data'): Promise<void> {
    const k = keys(this.opts.userId);
    const value = JSON.stringify(key === 'queue' ? this.queue : this.data);
    const storageKey = key === 'queue' ? k.queue : k.data;
    const p = this.writeChain.then(() => this.opts.storage.set(storageKey, value));
    this.writeChain = p.catch(() => {});
    return p;
  }
  private persistQueue(): Promise<void> {
    return this.persist('queue');
  }
  private persistData(): Promise<void> {
    return this.persist('data');
  }

  // ---- sync ----

  /** Push the outbox, then pull until `hasMore` is false. Concurrent calls share one run (and one more after it). */
  sync(): Promise<SyncResult> {
    if (this.closed) return Promise.reject(new Error('store closed'));
    if (this.syncing) {
      this.syncAgain = true;
      return this.syncing;
    }
    const run = async (): Promise<SyncResult> => {
      try {
        let result: SyncResult;
        do {
          this.syncAgain = false;
          result = await this.syncOnce();
        } while (this.syncAgain && !this.closed);
        return result;
      } catch (err) {
        this.emit('syncError', err as Error);
        throw err;
      } finally {
        this.syncing = undefined;
      }
    };
    this.syncing = run();
    return this.syncing;
  }

  private async syncOnce(): Promise<SyncResult> {
    const pushed = await this.push();
    const pulled = await this.pull();
    return { pushed, pulled };
  }

  /** Push every pending mutation, in batches. */
  async push(): Promise<SyncResult['pushed']> {
    const counts = { applied: 0, duplicate: 0, rejected: 0 };
    let batchSize = this.opts.pushBatchSize ?? 100;
    let renumbered = 0;
    while (this.queue.pending.length > 0) {
      const batch = this.queue.pending.slice(0, batchSize);
      let res: PushResponse;
      try {
        res = await this.http.json<PushResponse>('POST', '/api/sync/push', {
          protocolVersion: PROTOCOL_VERSION,
          clientId: this.queue.clientId,
          mutations: batch,
        });
      } catch (err) {
        if (err instanceof ApiError && err.code === 'out_of_order' && renumbered < 2) {
          const expected = Number(err.details?.expected);
          if (Number.isSafeInteger(expected) && expected >= 1) {
            renumbered++;
            await this.renumber(expected);
            continue;
          }
        }
        // Over the server's PUSH_MAX_MUTATIONS or body limit: smaller batches.
        if (err instanceof ApiError && err.status === 413 && batch.length > 1) {
          batchSize = Math.max(1, Math.floor(batch.length / 2));
          continue;
        }
        throw err;
      }
      this.applyPushResults(batch, res, counts);
      await Promise.all([this.persistQueue(), this.persistData()]);
    }
    return counts;
  }

  /** out_of_order: the server expects `expected` next; the outbox's ids run from there on. */
  private async renumber(expected: number): Promise<void> {
    let id = expected;
    for (const m of this.queue.pending) m.id = id++;
    this.queue.nextMutationId = id;
    await this.persistQueue();
  }

  private applyPushResults(batch: Mutation[], res: PushResponse, counts: SyncResult['pushed']): void {
    const byId = new Map(res.results.map((r) => [r.id, r]));
    const done = new Set<number>();
    const babyIds = new Set<Uuid>();
    for (const m of batch) {
      const r = byId.get(m.id);
      if (!r) continue; // not answered: stays pending
      done.add(m.id);
      counts[r.status]++;
      if (r.status === 'applied') {
        this.queue.awaitingPull.push(m);
      } else if (r.status === 'rejected') {
        let current = r.code === 'conflict' ? r.current : undefined;
        if (current && typeof current === 'object') {
          this.putServerEntry(m.entity, current);
          babyIds.add(current.babyId);
        }
        this.rejectedQueue.push({ mutation: m, code: r.code, message: r.message, current });
      }
    }
    // Ids the server reports processed but did not answer for (cannot happen with a
    // conforming server, but never resend below lastMutationId).
    this.queue.pending = this.queue.pending.filter((m) => !done.has(m.id) && m.id > res.lastMutationId);
    if (this.queue.nextMutationId <= res.lastMutationId) this.queue.nextMutationId = res.lastMutationId + 1;
    this.view = undefined;
    this.emit('pushed', { results: res.results, lastMutationId: res.lastMutationId });
    const rejected = this.rejectedQueue.splice(0);
    for (const ev of rejected) this.emit('rejected', ev);
    if (rejected.length > 0) this.emit('change', { source: 'push', babyIds: [...babyIds] });
  }
  private rejectedQueue: RejectedEvent[] = [];

  private putServerEntry(entity: EntityName, e: AnyEntry): void {
    const map = this.data.entries[entity] as Record<Uuid, AnyEntry>;
    const have = map[e.id];
    if (!have || (have.version ?? -1) <= (e.version ?? -1)) map[e.id] = e;
  }

  /** Pull until `hasMore` is false. */
  async pull(): Promise<SyncResult['pulled']> {
    let entries = 0;
    let pages = 0;
    const revoked: Uuid[] = [];
    for (;;) {
      const res = await this.http.json<PullResponse>('POST', '/api/sync/pull', {
        protocolVersion: PROTOCOL_VERSION,
        clientId: this.queue.clientId,
        cursor: this.data.cursor,
        limit: this.opts.pullLimit ?? 1000,
      });
      pages++;
      const babyIds = new Set<Uuid>();
      this.data.babies = res.babies;
      const present = new Set(res.babies.map((b) => b.id));
      // A baby shared again is no longer revoked.
      this.data.revokedBabyIds = this.data.revokedBabyIds.filter((id) => !present.has(id));
      for (const id of res.revokedBabyIds) {
        revoked.push(id);
        babyIds.add(id);
        this.dropBaby(id);
      }
      for (const entity of ENTITIES) {
        for (const e of res.changes[entity] ?? []) {
          entries++;
          babyIds.add(e.babyId);
          this.putServerEntry(entity, e);
        }
      }
      this.data.cursor = res.cursor;
      if (!res.hasMore) {
        // Everything this client pushed before this pull is now in the pulled state.
        const answeredUpTo = res.lastMutationId;
        this.queue.awaitingPull = this.queue.awaitingPull.filter((m) => m.id > answeredUpTo);
      }
      this.view = undefined;
      await Promise.all([this.persistData(), this.persistQueue()]);
      this.emit('change', { source: 'pull', babyIds: [...babyIds] });
      if (!res.hasMore) break;
    }
    return { entries, pages, revokedBabyIds: revoked };
  }

  private dropBaby(babyId: Uuid): void {
    this.data.babies = this.data.babies.filter((b) => b.id !== babyId);
    if (!this.data.revokedBabyIds.includes(babyId)) this.data.revokedBabyIds.push(babyId);
    for (const entity of ENTITIES) {
      const map = this.data.entries[entity] as Record<Uuid, AnyEntry>;
      for (const [id, e] of Object.entries(map)) if (e.babyId === babyId) delete map[id];
    }
  }

  // ---- live updates ----

  /**
   * Keep in step by itself: hold the server's event stream, sync on `ready` and
   * `poke`, push soon after local edits, reconnect with back-off, and poll while
   * there is no stream. Stop with stopLive() or close().
   */
  startLive(opts: LiveOptions = {}): void {
    if (this.liveSync || this.closed) return;
    this.liveSync = new LiveSync(
      {
        http: this.http,
        sync: () => this.sync(),
        onLocalChange: (fn) => this.on('change', (e) => e.source === 'local' && fn()),
        setLiveState: (state, detail) => this.emit('live', detail === undefined ? { state } : { state, detail }),
      },
      opts,
    );
  }

  async stopLive(): Promise<void> {
    const live = this.liveSync;
    this.liveSync = undefined;
    await live?.stop();
  }

  // ---- online calls: summaries, export and import ----
  //
  // These ask the server and are not queued: they need the network (a
  // NetworkError offline) and answer with what the server has, which is what
  // has been pushed. So each first pushes (and pulls) when the outbox has
  // pending mutations and the device is not known to be offline; that sync is
  // best-effort, and a failed one does not stop the call.

  /**
   * The baby's summary (PROTOCOL.md, "Summaries"): per day counts and minutes,
   * the latest entry of each kind, running timers, medications with the next
   * dose allowed, and growth with WHO percentiles. Dates and days are in `tz`,
   * the device's time zone unless given.
   */
  async summary(babyId: Uuid, opts: SummaryOptions = {}): Promise<Summary> {
    await this.syncIfPending();
    const tz = opts.tz ?? deviceTimeZone();
    const q = new URLSearchParams();
    if (opts.from !== undefined) q.set('from', dateIn(opts.from, tz));
    if (opts.to !== undefined) q.set('to', dateIn(opts.to, tz));
    q.set('tz', tz);
    return this.http.json<Summary>('GET', `/api/babies/${encodeURIComponent(babyId)}/summary?${q}`);
  }

  /**
   * Exports a baby (PROTOCOL.md, "Export and import"): by default the export
   * document (the baby and every entry, archived ones included), which
   * importBaby() takes back, here or on another server; with `format: 'csv'`,
   * the CSV text of one kind (entries not archived, by startedAt, timestamps
   * in `tz`, the device's time zone unless given).
   */
  exportBaby(babyId: Uuid, opts?: { format?: 'json' }): Promise<ExportDocument>;
  exportBaby(babyId: Uuid, opts: { format: 'csv'; kind: EntityName; tz?: string }): Promise<string>;
  exportBaby(babyId: Uuid, opts?: ExportOptions): Promise<ExportDocument | string>;
  async exportBaby(babyId: Uuid, opts: ExportOptions = {}): Promise<ExportDocument | string> {
    await this.syncIfPending();
    const path = `/api/babies/${encodeURIComponent(babyId)}/export`;
    if (opts.format !== 'csv') return this.http.json<ExportDocument>('GET', path);
    const q = new URLSearchParams({ format: 'csv', kind: opts.kind, tz: opts.tz ?? deviceTimeZone() });
    return this.http.request<string>('GET', `${path}?${q}`, { read: 'text', accept: 'text/csv' });
  }

  /**
   * Imports an export document (the object, or its JSON text as read from a
   * file): the baby under its own ids, the caller its owner; a baby the caller
   * owns already gets the entries it lacks. The body goes gzip-compressed where
   * the runtime has CompressionStream. Then syncs (best-effort), so the baby
   * and its entries are in the store when this returns online.
   */
  async importBaby(doc: ExportDocument | string): Promise<ImportResult> {
    const text = typeof doc === 'string' ? doc : JSON.stringify(doc);
    const gz = await gzip(text);
    const result = await this.http.request<ImportResult>(
      'POST',
      '/api/babies/import',
      gz ? { body: gz, contentType: 'application/json', headers: { 'content-encoding': 'gzip' } } : { body: text, contentType: 'application/json' },
    );
    if (!this.closed) await this.sync().catch(() => {});
    return result;
  }

  private async syncIfPending(): Promise<void> {
    if (this.queue.pending.length === 0 || this.closed) return;
    if ((globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine === false) return;
    await this.sync().catch(() => {});
  }

  /** Stop syncing (pending work stays in storage for the next open). */
  async close(): Promise<void> {
    await this.stopLive();
    this.closed = true;
    await this.syncing?.catch(() => {});
    await this.writeChain;
  }

  /** For apps: an error from sync() that says "offline, try later". */
  static isNetworkError(err: unknown): err is NetworkError {
    return err instanceof NetworkError;
  }
}

const toIso = (t: Timestamp | Date): string => new Date(t).toISOString();

/** The device's IANA time zone, or UTC when the runtime does not say. */
export function deviceTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    return 'UTC';
  }
}

/** A date as YYYY-MM-DD: a string as given, a Date as its date in `tz`. */
function dateIn(d: string | Date, tz: string): string {
  if (typeof d === 'string') return d;
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(d);
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')}`;
}

/** gzip of a text, or undefined where the runtime has no CompressionStream (then it goes as is). */
async function gzip(text: string): Promise<Uint8Array | undefined> {
  const CS = (globalThis as { CompressionStream?: typeof CompressionStream }).CompressionStream;
  if (!CS || typeof Blob === 'undefined') return undefined;
  try {
    const stream = new Blob([text]).stream().pipeThrough(new CS('gzip'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch {
    return undefined;
  }
}

/** The fold's order of events: by time, then by id as lower-case text. */
function foldOrder(a: TimerEventLog, b: TimerEventLog): number {
  const ia = a.id.toLowerCase();
  const ib = b.id.toLowerCase();
  return Date.parse(a.startedAt) - Date.parse(b.startedAt) || (ia < ib ? -1 : ia > ib ? 1 : 0);
}

/**
 * Sets every timer's timerState, segments, endedAt and durationMinutes in a view
 * from its startedAt, startSide and the events of the view that are not
 * archived (pulled and pending): what the server's fold makes of them.
 */
function foldTimers(view: DataState['entries']): void {
  const events = new Map<string, TimerEventLog[]>();
  for (const ev of Object.values(view.timer_event)) {
    if (ev.archivedAt) continue;
    const k = `${ev.entryEntity}/${ev.entryId}`;
    const list = events.get(k);
    if (list) list.push(ev);
    else events.set(k, [ev]);
  }
  for (const entity of TIMER_ENTITIES) {
    const map = view[entity] as Record<Uuid, Entry<TimerEntity>>;
    for (const [id, e] of Object.entries(map)) {
      if (!e.timerState) continue; // not a timer
      const startSide = 'startSide' in e ? e.startSide : null;
      map[id] = { ...e, ...foldTimer(e.startedAt, startSide, events.get(`${entity}/${id}`) ?? []) };
    }
  }
}

function keys(userId: string) {
  const p = `babysync:v1:${encodeURIComponent(userId)}:`;
  return { queue: `${p}queue`, data: `${p}data` };
}

/** Applies one queued mutation to a view (optimistic). */
function applyMutation(view: DataState['entries'], m: Mutation, userId: string): void {
  const map = view[m.entity] as Record<Uuid, AnyEntry>;
  const have = map[m.data.id];
  switch (m.op) {
    case 'create':
      if (have) {
        if (!have.archivedAt) map[m.data.id] = { ...have, ...m.data } as AnyEntry;
      } else {
        map[m.data.id] = {
          loggedBy: userId,
          createdAt: null,
          updatedAt: null,
          archivedAt: null,
          version: null,
          ...((TIMER_ENTITIES as readonly string[]).includes(m.entity) ? { timerState: null, segments: null } : {}),
          ...m.data,
        } as AnyEntry;
      }
      break;
    case 'update':
      if (have && !have.archivedAt) map[m.data.id] = { ...have, ...m.data } as AnyEntry;
      break;
    case 'delete':
      if (have && !have.archivedAt) map[m.data.id] = { ...have, archivedAt: have.archivedAt ?? new Date().toISOString() };
      break;
  }
}
