// Wire types of the babysync protocol, version 1 (docs/PROTOCOL.md).
// test/openapi.test.ts checks the field lists below against the server's /openapi.json.

export type Uuid = string;
/** RFC 3339 timestamp; the server answers in UTC with milliseconds. */
export type Timestamp = string;

export type EntityName = 'feed_log' | 'sleep_log' | 'nappy_log';
export const ENTITIES: readonly EntityName[] = ['feed_log', 'sleep_log', 'nappy_log'];

export type AccessLevel = 'owner' | 'editor' | 'viewer';
export type Side = 'left' | 'right';

/** Fields the server sets; never sent by a client. */
export interface ServerFields {
  loggedBy: string | null;
  createdAt: Timestamp | null;
  updatedAt: Timestamp | null;
  archivedAt: Timestamp | null;
  /** null while the entry exists only locally. */
  version: number | null;
}

export interface CommonInput {
  id: Uuid;
  babyId: Uuid;
  startedAt: Timestamp;
  notes?: string | null;
}

export interface FeedLogInput extends CommonInput {
  method: 'breast' | 'bottle';
  endedAt?: Timestamp | null;
  durationMinutes?: number | null;
  amountMl?: number | null;
  isEstimated?: boolean | null;
  estimatedSource?: string | null;
  endSide?: Side | null;
}

export interface SleepLogInput extends CommonInput {
  endedAt?: Timestamp | null;
  durationMinutes?: number | null;
}

export interface NappyLogInput extends CommonInput {
  type?: 'wee' | 'poo' | 'mixed' | 'dry' | 'clean' | null;
  colour?: 'green' | 'yellow' | 'brown' | 'black' | 'red' | 'grey' | null;
  consistency?: 'watery' | 'runny' | 'mushy' | 'pasty' | 'formed' | 'hardPellets' | null;
}

export interface InputOf {
  feed_log: FeedLogInput;
  sleep_log: SleepLogInput;
  nappy_log: NappyLogInput;
}

/** What a client writes on create (id optional: the SDK makes a UUIDv4). */
export type CreateInput<E extends EntityName> = Omit<InputOf[E], 'id'> & { id?: Uuid };
/** What a client writes on update: any client field but id and babyId. */
export type UpdateInput<E extends EntityName> = Partial<Omit<InputOf[E], 'id' | 'babyId'>>;

export type Entry<E extends EntityName> = InputOf[E] & ServerFields;
export type FeedLog = Entry<'feed_log'>;
export type SleepLog = Entry<'sleep_log'>;
export type NappyLog = Entry<'nappy_log'>;
export type AnyEntry = Entry<EntityName>;

/** The client-writable fields of each entity (besides id and babyId). */
export const CLIENT_FIELDS: { readonly [E in EntityName]: readonly string[] } = {
  feed_log: ['startedAt', 'notes', 'method', 'endedAt', 'durationMinutes', 'amountMl', 'isEstimated', 'estimatedSource', 'endSide'],
  sleep_log: ['startedAt', 'notes', 'endedAt', 'durationMinutes'],
  nappy_log: ['startedAt', 'notes', 'type', 'colour', 'consistency'],
};
export const SERVER_FIELDS: readonly (keyof ServerFields)[] = ['loggedBy', 'createdAt', 'updatedAt', 'archivedAt', 'version'];

export interface Baby {
  id: Uuid;
  name: string;
  birthDate: string | null;
  gender: 'male' | 'female' | 'other' | 'unknown' | null;
  accessLevel: AccessLevel;
  createdAt: Timestamp;
  updatedAt: Timestamp;
  archivedAt: Timestamp | null;
}

export type Op = 'create' | 'update' | 'delete';

export interface Mutation {
  id: number;
  entity: EntityName;
  op: Op;
  data: Record<string, unknown> & { id: Uuid };
  baseVersion?: number;
}

export type RejectionCode = 'invalid' | 'forbidden' | 'not_found' | 'conflict';

export type MutationResult =
  | { id: number; status: 'applied'; version?: number }
  | { id: number; status: 'duplicate' }
  | { id: number; status: 'rejected'; code: RejectionCode; message?: string; current?: AnyEntry | null };

export interface PushRequest {
  protocolVersion: 1;
  clientId: Uuid;
  mutations: Mutation[];
}

export interface PushResponse {
  lastMutationId: number;
  results: MutationResult[];
}

export interface PullRequest {
  protocolVersion: 1;
  clientId: Uuid;
  cursor: string | null;
  limit?: number;
}

export interface PullResponse {
  cursor: string;
  hasMore: boolean;
  lastMutationId: number;
  babies: Baby[];
  revokedBabyIds: Uuid[];
  /** One key per kind the server knows; kinds this client does not know are ignored. */
  changes: Partial<Record<string, AnyEntry[]>>;
}

export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}
