// @babysync/client/replicache: lets Replicache (https://replicache.dev) sync
// through babysync's own push and pull, with its `pusher` and `puller` hooks.
// No runtime import of replicache: only its types (an optional peer dependency).
//
// Mapping (docs/CLIENTS.md, "Replicache"):
// - a Replicache clientID ↔ a babysync clientId: a UUID derived from it (SHA-1,
//   UUID version 5 layout), so the same Replicache client always pushes as the same
//   babysync client, across restarts, with nothing to store;
// - Replicache mutation ids ↔ babysync mutation ids (both from 1, consecutive, per client);
// - the mutator `babysync` carries one babysync mutation in its args
//   (`{entity, op, data, baseVersion?}`);
// - the pull cookie ↔ the babysync cursor (`{order, cursor}`: Replicache wants
//   cookies in order, the cursor is opaque);
// - pulled entries → `put entry/<entity>/<id>`; archived entries (tombstones) and
//   every entry and key of a revoked baby → `del`; babies → `baby/<id>`.

import type {
  Cookie,
  PatchOperation,
  PullRequest,
  PullerResult,
  PushRequest,
  PusherResult,
  ReadTransaction,
  ReadonlyJSONValue,
  WriteTransaction,
} from 'replicache';
import { ApiError, Http, type FetchLike, type RetryOptions, type TokenProvider } from './http.ts';
import { ENTITIES, type AnyEntry, type EntityName, type Mutation, type MutationResult, type Op, type PullResponse, type PushResponse, type RejectionCode, type Uuid } from './types.ts';

/** The name of the one mutator; its args are one babysync mutation without its id. */
export const MUTATOR = 'babysync';

export interface BabysyncMutationArgs {
  entity: EntityName;
  op: Op;
  /** `create`: the whole entry (with a client-made `id`); `update`: `id` and the fields to change; `delete`: `{id}`. */
  data: { id: Uuid } & Record<string, ReadonlyJSONValue>;
  /** On update and delete: the version the device last saw (a conflict if the server's is newer). */
  baseVersion?: number;
}

export const entryKey = (entity: string, id: string): string => `entry/${entity}/${id}`;
export const babyKey = (id: string): string => `baby/${id}`;

/** The mutators to give Replicache (`mutators: babysyncMutators`): `rep.mutate.babysync({entity, op, data})`. */
export const babysyncMutators = {
  async [MUTATOR](tx: WriteTransaction, args: BabysyncMutationArgs): Promise<void> {
    const key = entryKey(args.entity, args.data.id);
    if (args.op === 'create') {
      await tx.set(key, { ...args.data, loggedBy: null, createdAt: null, updatedAt: null, archivedAt: null, version: null });
    } else if (args.op === 'update') {
      const cur = await tx.get(key);
      if (cur && typeof cur === 'object' && !Array.isArray(cur)) await tx.set(key, { ...(cur as Record<string, ReadonlyJSONValue>), ...args.data });
    } else if (args.op === 'delete') {
      await tx.del(key);
    }
  },
};

/** The entries of one kind in a Replicache transaction (not archived: tombstones are deleted keys). */
export async function listEntries(tx: ReadTransaction, entity: EntityName, babyId?: Uuid): Promise<AnyEntry[]> {
  const out: AnyEntry[] = [];
  for await (const v of tx.scan({ prefix: `entry/${entity}/` }).values()) {
    const e = v as unknown as AnyEntry;
    if (babyId === undefined || e.babyId === babyId) out.push(e);
  }
  return out;
}

export interface ReplicacheRejected {
  /** The Replicache client that made the mutation, and its babysync clientId. */
  clientID: string;
  clientId: Uuid;
  mutation: Mutation;
  code: RejectionCode;
  message: string | undefined;
  /** On a conflict: the server's record, which the next pull puts in place. */
  current: AnyEntry | null | undefined;
}

/** The little of a Replicache instance the puller needs. */
export interface ReplicacheLike {
  readonly clientID: string;
  query<R>(body: (tx: ReadTransaction) => Promise<R> | R): Promise<R>;
}

export interface ReplicacheAdapterOptions {
  baseUrl: string;
  getToken: TokenProvider;
  fetch?: FetchLike;
  /** Retries within one push or pull (default 3 attempts; Replicache retries failed ones itself, with back-off). */
  retry?: Partial<RetryOptions>;
  /** Mutations a push request carries at most (default 100). */
  pushBatchSize?: number;
  /** Entries a pull page asks for (default 1000); the puller pages until `hasMore` is false. */
  pullLimit?: number;
  onRejected?: (e: ReplicacheRejected) => void;
  /** Every result of every push (duplicates included). */
  onPushed?: (e: { clientID: string; clientId: Uuid; results: MutationResult[]; lastMutationId: number }) => void;
}

interface BabysyncCookie {
  order: number;
  cursor: string;
}

function isBabysyncCookie(c: Cookie): c is BabysyncCookie & Cookie {
  return typeof c === 'object' && c !== null && typeof (c as { cursor?: unknown }).cursor === 'string' && typeof c.order === 'number';
}

const NAMESPACE = 'babysync/replicache/clientID';

/** The babysync clientId (a UUID) of a Replicache clientID: stable, derived, never stored. */
export async function clientIdFor(replicacheClientID: string): Promise<Uuid> {
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-1', new TextEncoder().encode(`${NAMESPACE}:${replicacheClientID}`)));
  const b = digest.slice(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function httpInfo(status: number, errorMessage = '') {
  return { httpStatusCode: status, errorMessage };
}

/**
 * A pusher and a puller for one Replicache instance:
 *
 * ```ts
 * const sync = new BabysyncReplicache({ baseUrl, getToken });
 * const rep = new Replicache({ name: userId, mutators: babysyncMutators, pusher: sync.pusher, puller: sync.puller });
 * sync.bind(rep);
 * ```
 */
export class BabysyncReplicache {
  private readonly http: Http;
  private rep: ReplicacheLike | undefined;
  private bound: Promise<ReplicacheLike>;
  private resolveBound!: (r: ReplicacheLike) => void;
  /** babysync's lastMutationId of each Replicache client this adapter pushed for, from push answers. */
  private readonly lastMutationIds = new Map<string, number>();

  constructor(private readonly opts: ReplicacheAdapterOptions) {
    this.http = new Http({ baseUrl: opts.baseUrl, getToken: opts.getToken, fetch: opts.fetch, retry: { maxAttempts: 3, ...opts.retry } });
    this.bound = new Promise((r) => (this.resolveBound = r));
  }

  /** The Replicache instance whose clientID the puller reports (pulls wait for this). */
  bind(rep: ReplicacheLike): void {
    this.rep = rep;
    this.resolveBound(rep);
  }

  pusher = async (req: PushRequest, _requestID: string): Promise<PusherResult> => {
    if (req.pushVersion !== 1) return { response: { error: 'VersionNotSupported', versionType: 'push' }, httpRequestInfo: httpInfo(200) };
    // Mutations of several clients of one group may come together: one babysync client each.
    const byClient = new Map<string, Mutation[]>();
    for (const m of req.mutations) {
      const a = (m.args ?? {}) as Partial<BabysyncMutationArgs>;
      const mutation = { id: m.id, entity: a.entity, op: a.op, data: a.data } as Mutation;
      if (a.baseVersion !== undefined && a.baseVersion !== null) mutation.baseVersion = a.baseVersion;
      let list = byClient.get(m.clientID);
      if (!list) byClient.set(m.clientID, (list = []));
      list.push(mutation);
    }
    const size = Math.max(1, this.opts.pushBatchSize ?? 100);
    try {
      for (const [clientID, mutations] of byClient) {
        const clientId = await clientIdFor(clientID);
        for (let i = 0; i < mutations.length; i += size) {
          const batch = mutations.slice(i, i + size);
          const res = await this.http.json<PushResponse>('POST', '/api/sync/push', { protocolVersion: 1, clientId, mutations: batch });
          this.noteLastMutationId(clientID, res.lastMutationId);
          this.opts.onPushed?.({ clientID, clientId, results: res.results, lastMutationId: res.lastMutationId });
          for (const r of res.results) {
            if (r.status !== 'rejected') continue;
            const mutation = batch.find((m) => m.id === r.id);
            if (mutation) this.opts.onRejected?.({ clientID, clientId, mutation, code: r.code, message: r.message, current: r.current });
          }
        }
      }
    } catch (err) {
      // An error answer (after the retries): Replicache backs off and pushes again.
      // A network error is thrown: Replicache counts itself offline and pushes again later.
      // Either way the mutations stay pending, and a resend of one the server has is `duplicate`.
      if (err instanceof ApiError) return { httpRequestInfo: httpInfo(err.status, err.message) };
      throw err;
    }
    return { httpRequestInfo: httpInfo(200) };
  };

  puller = async (req: PullRequest, _requestID: string): Promise<PullerResult> => {
    if (req.pullVersion !== 1) return { response: { error: 'VersionNotSupported', versionType: 'pull' }, httpRequestInfo: httpInfo(200) };
    const rep = this.rep ?? (await this.bound);
    const clientId = await clientIdFor(rep.clientID);
    const start = isBabysyncCookie(req.cookie) ? req.cookie : null;
    let cursor: string | null = start ? start.cursor : null;
    const patch: PatchOperation[] = [];
    if (cursor === null) patch.push({ op: 'clear' });
    // What this replica holds now, to delete the keys of babies that went away.
    const held = await rep.query(async (tx) => {
      const babies: string[] = [];
      for await (const k of tx.scan({ prefix: 'baby/' }).keys()) babies.push(k.slice('baby/'.length));
      const entries: { key: string; babyId: string }[] = [];
      for await (const [k, v] of tx.scan({ prefix: 'entry/' }).entries()) {
        const babyId = (v as { babyId?: unknown } | null)?.babyId;
        if (typeof babyId === 'string') entries.push({ key: k, babyId });
      }
      return { babies, entries };
    });
    let lastMutationId = 0;
    let babiesNow: Set<string> | undefined;
    const gone = new Set<string>();
    try {
      for (;;) {
        const page: PullResponse = await this.http.json<PullResponse>('POST', '/api/sync/pull', {
          protocolVersion: 1,
          clientId,
          cursor,
          ...(this.opts.pullLimit ? { limit: this.opts.pullLimit } : {}),
        });
        lastMutationId = page.lastMutationId;
        babiesNow = new Set(page.babies.map((b) => b.id));
        for (const b of page.babies) patch.push({ op: 'put', key: babyKey(b.id), value: b as unknown as ReadonlyJSONValue });
        for (const id of page.revokedBabyIds) gone.add(id);
        for (const entity of ENTITIES) {
          for (const e of page.changes[entity] ?? []) {
            if (e.archivedAt) patch.push({ op: 'del', key: entryKey(entity, e.id) });
            else patch.push({ op: 'put', key: entryKey(entity, e.id), value: e as unknown as ReadonlyJSONValue });
          }
        }
        cursor = page.cursor;
        if (!page.hasMore) break;
      }
    } catch (err) {
      if (err instanceof ApiError) return { httpRequestInfo: httpInfo(err.status, err.message) };
      throw err;
    }
    // A revoked baby, or one no longer in the list: its key and every entry of it go.
    for (const id of held.babies) if (!babiesNow?.has(id)) gone.add(id);
    for (const id of gone) {
      if (babiesNow?.has(id)) continue; // revoked, then shared again within this pull
      patch.push({ op: 'del', key: babyKey(id) });
      for (const e of held.entries) if (e.babyId === id) patch.push({ op: 'del', key: e.key });
      // Entries of it pulled in this very pull (before the revocation) go too.
      for (let i = 0; i < patch.length; i++) {
        const p = patch[i]!;
        if (p.op === 'put' && p.key.startsWith('entry/') && (p.value as { babyId?: unknown }).babyId === id) patch[i] = { op: 'del', key: p.key };
      }
    }
    this.noteLastMutationId(rep.clientID, lastMutationId);
    const lastMutationIDChanges: Record<string, number> = Object.fromEntries(this.lastMutationIds);
    const cookie = { order: (start?.order ?? 0) + 1, cursor: cursor! };
    return { response: { cookie, lastMutationIDChanges, patch }, httpRequestInfo: httpInfo(200) };
  };

  private noteLastMutationId(clientID: string, n: number): void {
    // Replicache refuses a lastMutationID that goes back; answers may arrive out of order.
    this.lastMutationIds.set(clientID, Math.max(n, this.lastMutationIds.get(clientID) ?? 0));
  }
}
