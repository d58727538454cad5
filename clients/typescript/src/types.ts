// Wire types of the babysync protocol, version 1 (docs/PROTOCOL.md).
// test/openapi.test.ts checks the field lists below against the server's /openapi.json.

export type Uuid = string;
/** RFC 3339 timestamp; the server answers in UTC with milliseconds. */
export type Timestamp = string;

export type EntityName = 'feed_log' | 'sleep_log' | 'nappy_log';
export const ENTITIES: readonly EntityName[] = ['feed_log', 'sleep_log', 'nappy_log'];

export const ACCESS_LEVELS = ['owner', 'editor', 'viewer'] as const;
export type AccessLevel = (typeof ACCESS_LEVELS)[number];
export const SIDES = ['left', 'right'] as const;
export type Side = (typeof SIDES)[number];
export const FEED_METHODS = ['breast', 'bottle'] as const;
export type FeedMethod = (typeof FEED_METHODS)[number];
export const NAPPY_TYPES = ['wee', 'poo', 'mixed', 'dry', 'clean'] as const;
export type NappyType = (typeof NAPPY_TYPES)[number];
export const NAPPY_COLOURS = ['green', 'yellow', 'brown', 'black', 'red', 'grey'] as const;
export type NappyColour = (typeof NAPPY_COLOURS)[number];
export const NAPPY_CONSISTENCIES = ['watery', 'runny', 'mushy', 'pasty', 'formed', 'hardPellets'] as const;
export type NappyConsistency = (typeof NAPPY_CONSISTENCIES)[number];
export const GENDERS = ['male', 'female', 'other', 'unknown'] as const;
export type Gender = (typeof GENDERS)[number];
export const OPS = ['create', 'update', 'delete'] as const;
export const REJECTION_CODES = ['invalid', 'forbidden', 'not_found', 'conflict'] as const;

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
  method: FeedMethod;
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
  type?: NappyType | null;
  colour?: NappyColour | null;
  consistency?: NappyConsistency | null;
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

type ClientKey<E extends EntityName> = Exclude<keyof InputOf[E], 'id' | 'babyId'>;

/** The client-writable fields of each entity (besides id and babyId); checked against /openapi.json by the tests. */
export const CLIENT_FIELDS = {
  feed_log: ['startedAt', 'notes', 'method', 'endedAt', 'durationMinutes', 'amountMl', 'isEstimated', 'estimatedSource', 'endSide'],
  sleep_log: ['startedAt', 'notes', 'endedAt', 'durationMinutes'],
  nappy_log: ['startedAt', 'notes', 'type', 'colour', 'consistency'],
} as const satisfies { readonly [E in EntityName]: readonly ClientKey<E>[] };

// Compile-time: every field of the input interfaces is listed above.
type Unlisted = { [E in EntityName]: Exclude<ClientKey<E>, (typeof CLIENT_FIELDS)[E][number]> }[EntityName];
const _everyFieldListed: [Unlisted] extends [never] ? true : Unlisted = true;
void _everyFieldListed;

export const SERVER_FIELDS: readonly (keyof ServerFields)[] = ['loggedBy', 'createdAt', 'updatedAt', 'archivedAt', 'version'];

export interface Baby {
  id: Uuid;
  name: string;
  birthDate: string | null;
  gender: Gender | null;
  accessLevel: AccessLevel;
  createdAt: Timestamp;
  updatedAt: Timestamp;
  archivedAt: Timestamp | null;
}

export type Op = (typeof OPS)[number];

export interface Mutation {
  id: number;
  entity: EntityName;
  op: Op;
  data: Record<string, unknown> & { id: Uuid };
  baseVersion?: number;
}

export type RejectionCode = (typeof REJECTION_CODES)[number];

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
