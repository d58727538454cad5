// Wire types of the babysync protocol, version 1 (docs/PROTOCOL.md).
// test/openapi.test.ts checks the field lists below against the server's /openapi.json.

export type Uuid = string;
/** RFC 3339 timestamp; the server answers in UTC with milliseconds. */
export type Timestamp = string;

export const ENTITIES = [
  'feed_log',
  'sleep_log',
  'nappy_log',
  'pumping_log',
  'growth_log',
  'medication_log',
  'temperature_log',
  'solids_log',
  'activity_log',
  'timer_event',
] as const;
export type EntityName = (typeof ENTITIES)[number];
/** The kinds whose entries can be timers (created with `timerState: 'running'`). */
export const TIMER_ENTITIES = ['feed_log', 'sleep_log', 'pumping_log', 'activity_log'] as const;
export type TimerEntity = (typeof TIMER_ENTITIES)[number];
/** Timers that have sides (`startSide`, `switchSide`). */
export type SidedTimerEntity = 'feed_log' | 'pumping_log';
/** Every kind but `timer_event`, which takes create and delete only. */
export type UpdatableEntity = Exclude<EntityName, 'timer_event'>;

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
export const ACTIVITY_TYPES = ['tummyTime', 'bath', 'indoorPlay', 'outdoorPlay', 'skinToSkin', 'other'] as const;
export type ActivityType = (typeof ACTIVITY_TYPES)[number];
export const DOSE_UNITS = ['ml', 'mg', 'drops', 'tablet', 'capsule', 'sachet', 'puff'] as const;
export type DoseUnit = (typeof DOSE_UNITS)[number];
export const TEMPERATURE_SITES = ['ear', 'forehead', 'armpit', 'rectal', 'oral'] as const;
export type TemperatureSite = (typeof TEMPERATURE_SITES)[number];
export const REACTIONS = ['loved', 'liked', 'neutral', 'disliked', 'allergic'] as const;
export type Reaction = (typeof REACTIONS)[number];
export const ALLERGENS = ['milk', 'egg', 'peanut', 'treeNut', 'soy', 'wheat', 'fish', 'shellfish', 'sesame'] as const;
export type Allergen = (typeof ALLERGENS)[number];
export const TIMER_STATES = ['running', 'paused', 'stopped'] as const;
export type TimerState = (typeof TIMER_STATES)[number];
export const TIMER_ACTIONS = ['pause', 'resume', 'switchSide', 'stop'] as const;
export type TimerAction = (typeof TIMER_ACTIONS)[number];
export const GENDERS = ['male', 'female', 'other', 'unknown'] as const;
export type Gender = (typeof GENDERS)[number];
export const OPS = ['create', 'update', 'delete'] as const;
export const REJECTION_CODES = ['invalid', 'forbidden', 'not_found', 'conflict'] as const;

/** Every enum of the wire, by its schema name in /openapi.json (the tests compare them). */
export const ENUMS = {
  AccessLevel: ACCESS_LEVELS,
  Side: SIDES,
  FeedMethod: FEED_METHODS,
  NappyType: NAPPY_TYPES,
  NappyColour: NAPPY_COLOURS,
  NappyConsistency: NAPPY_CONSISTENCIES,
  ActivityType: ACTIVITY_TYPES,
  DoseUnit: DOSE_UNITS,
  TemperatureSite: TEMPERATURE_SITES,
  Reaction: REACTIONS,
  Allergen: ALLERGENS,
  TimerState: TIMER_STATES,
  TimerAction: TIMER_ACTIONS,
  TimerEntity: TIMER_ENTITIES,
  Running: ['running'],
  Gender: GENDERS,
  Op: OPS,
  RejectCode: REJECTION_CODES,
} as const;

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

/** On the four timer kinds. */
export interface TimerInput {
  /** Create only: `running` makes the entry a timer (then without endedAt and durationMinutes). */
  timerState?: 'running' | null;
}

export interface FeedLogInput extends CommonInput, TimerInput {
  method: FeedMethod;
  endedAt?: Timestamp | null;
  durationMinutes?: number | null;
  amountMl?: number | null;
  isEstimated?: boolean | null;
  estimatedSource?: string | null;
  startSide?: Side | null;
  endSide?: Side | null;
}

export interface SleepLogInput extends CommonInput, TimerInput {
  endedAt?: Timestamp | null;
  durationMinutes?: number | null;
}

export interface NappyLogInput extends CommonInput {
  type?: NappyType | null;
  colour?: NappyColour | null;
  consistency?: NappyConsistency | null;
}

export interface PumpingLogInput extends CommonInput, TimerInput {
  endedAt?: Timestamp | null;
  durationMinutes?: number | null;
  leftMl?: number | null;
  rightMl?: number | null;
  /** Kept by the server as leftMl + rightMl while either is set. */
  totalMl?: number | null;
  startSide?: Side | null;
}

export interface GrowthLogInput extends CommonInput {
  weightGrams?: number | null;
  lengthMm?: number | null;
  headCircumferenceMm?: number | null;
}

export interface MedicationLogInput extends CommonInput {
  name: string;
  dose?: number | null;
  /** Required with dose, absent without it. */
  doseUnit?: DoseUnit | null;
  minIntervalMinutes?: number | null;
  maxDosesPer24h?: number | null;
}

export interface TemperatureLogInput extends CommonInput {
  celsius: number;
  site?: TemperatureSite | null;
}

export interface SolidsLogInput extends CommonInput {
  food: string;
  reaction?: Reaction | null;
  allergens?: Allergen[] | null;
}

export interface ActivityLogInput extends CommonInput, TimerInput {
  type: ActivityType;
  endedAt?: Timestamp | null;
  durationMinutes?: number | null;
}

/** A caregiver's action on a timer; `startedAt` is its moment. Create and delete only. */
export interface TimerEventInput extends CommonInput {
  entryEntity: TimerEntity;
  entryId: Uuid;
  action: TimerAction;
  /** For switchSide only (feeds and pumping). */
  side?: Side | null;
}

export interface InputOf {
  feed_log: FeedLogInput;
  sleep_log: SleepLogInput;
  nappy_log: NappyLogInput;
  pumping_log: PumpingLogInput;
  growth_log: GrowthLogInput;
  medication_log: MedicationLogInput;
  temperature_log: TemperatureLogInput;
  solids_log: SolidsLogInput;
  activity_log: ActivityLogInput;
  timer_event: TimerEventInput;
}

/** What a client writes on create (id optional: the SDK makes a UUIDv4). */
export type CreateInput<E extends EntityName> = Omit<InputOf[E], 'id'> & { id?: Uuid };
/** What a client writes on update: any client field but id, babyId and timerState. */
export type UpdateInput<E extends UpdatableEntity> = Partial<Omit<InputOf[E], 'id' | 'babyId' | 'timerState'>>;

/** One stretch of a timer's running time. */
export interface Segment {
  startedAt: Timestamp;
  endedAt: Timestamp | null;
  side: Side | null;
}

/** Set by the server on the timer kinds: null unless the entry is a timer (and then folded from its events). */
export interface TimerFields {
  timerState: TimerState | null;
  segments: Segment[] | null;
}

export type Entry<E extends EntityName> = (E extends TimerEntity ? Omit<InputOf[E], 'timerState'> & TimerFields : InputOf[E]) & ServerFields;
export type FeedLog = Entry<'feed_log'>;
export type SleepLog = Entry<'sleep_log'>;
export type NappyLog = Entry<'nappy_log'>;
export type PumpingLog = Entry<'pumping_log'>;
export type GrowthLog = Entry<'growth_log'>;
export type MedicationLog = Entry<'medication_log'>;
export type TemperatureLog = Entry<'temperature_log'>;
export type SolidsLog = Entry<'solids_log'>;
export type ActivityLog = Entry<'activity_log'>;
export type TimerEventLog = Entry<'timer_event'>;
export type AnyEntry = Entry<EntityName>;

type ClientKey<E extends EntityName> = Exclude<keyof InputOf[E], 'id' | 'babyId'>;

const COMMON = ['startedAt', 'notes'] as const;
/** The client-writable fields of each entity (besides id and babyId); checked against /openapi.json by the tests. */
export const CLIENT_FIELDS = {
  feed_log: [...COMMON, 'method', 'endedAt', 'durationMinutes', 'amountMl', 'isEstimated', 'estimatedSource', 'startSide', 'endSide', 'timerState'],
  sleep_log: [...COMMON, 'endedAt', 'durationMinutes', 'timerState'],
  nappy_log: [...COMMON, 'type', 'colour', 'consistency'],
  pumping_log: [...COMMON, 'endedAt', 'durationMinutes', 'leftMl', 'rightMl', 'totalMl', 'startSide', 'timerState'],
  growth_log: [...COMMON, 'weightGrams', 'lengthMm', 'headCircumferenceMm'],
  medication_log: [...COMMON, 'name', 'dose', 'doseUnit', 'minIntervalMinutes', 'maxDosesPer24h'],
  temperature_log: [...COMMON, 'celsius', 'site'],
  solids_log: [...COMMON, 'food', 'reaction', 'allergens'],
  activity_log: [...COMMON, 'type', 'endedAt', 'durationMinutes', 'timerState'],
  timer_event: [...COMMON, 'entryEntity', 'entryId', 'action', 'side'],
} as const satisfies { readonly [E in EntityName]: readonly ClientKey<E>[] };

// Compile-time: every field of the input interfaces is listed above.
type Unlisted = { [E in EntityName]: Exclude<ClientKey<E>, (typeof CLIENT_FIELDS)[E][number]> }[EntityName];
const _everyFieldListed: [Unlisted] extends [never] ? true : Unlisted = true;
void _everyFieldListed;

export const SERVER_FIELDS: readonly (keyof ServerFields)[] = ['loggedBy', 'createdAt', 'updatedAt', 'archivedAt', 'version'];
/** Server-set on the timer kinds only (besides SERVER_FIELDS; timerState is also sent on create). */
export const TIMER_SERVER_FIELDS: readonly (keyof TimerFields)[] = ['segments'];

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

// ---- summaries (PROTOCOL.md, "Summaries") ----

/** Every kind but `timer_event`: the kinds a summary's `latest` has a key for. */
export type LogEntity = Exclude<EntityName, 'timer_event'>;

export interface FeedsDay {
  count: number;
  /** amountMl of bottle feeds. */
  bottleMl: number;
  breastMinutes: number;
  /** Timer segments on the left (other breast time counts in breastMinutes only). */
  breastLeftMinutes: number;
  breastRightMinutes: number;
}
export interface SleepDay {
  count: number;
  minutes: number;
  /** The longest single sleep that started that day, whole. */
  longestMinutes: number;
}
export interface NappiesDay {
  count: number;
  /** wee and mixed. */
  wet: number;
  /** poo and mixed. */
  dirty: number;
}
export interface PumpingDay {
  count: number;
  ml: number;
}
export interface CountDay {
  count: number;
}
export interface TimedDay {
  count: number;
  minutes: number;
}

/** One date in the summary's time zone (local midnight to local midnight). */
export interface SummaryDay {
  /** YYYY-MM-DD in the summary's tz. */
  date: string;
  feeds: FeedsDay;
  sleep: SleepDay;
  nappies: NappiesDay;
  pumping: PumpingDay;
  solids: CountDay;
  activities: TimedDay;
  medications: CountDay;
}

/** A timer that is running or paused, with its kind. */
export type RunningTimer = { [E in TimerEntity]: { entity: E; entry: Entry<E> } }[TimerEntity];

export interface MedicationSummary {
  /** As written in its latest dose (names are one medication whatever their letter case). */
  name: string;
  lastGivenAt: Timestamp;
  dosesLast24h: number;
  maxDosesPer24h: number | null;
  /** When the next dose is allowed (may be past: allowed now); null when the latest dose sets no limit. */
  nextAllowedAt: Timestamp | null;
}

/** The latest measurement of one kind, with its WHO z-score and percentile. */
export interface GrowthMeasurement {
  value: number;
  unit: 'g' | 'mm';
  measuredAt: Timestamp;
  /** Days from the birth date to the measurement's date; null without a birth date. */
  ageDays: number | null;
  /** null when the gender is not male or female, without a birth date, or past 1856 days. */
  z: number | null;
  percentile: number | null;
}

export interface GrowthSummary {
  weight: GrowthMeasurement | null;
  length: GrowthMeasurement | null;
  headCircumference: GrowthMeasurement | null;
}

/** `GET /api/babies/{id}/summary`: what the server has (pushed entries), as of `asOf`. */
export interface Summary {
  babyId: Uuid;
  /** The IANA time zone the days are in. */
  tz: string;
  asOf: Timestamp;
  /** One per date from `from` to `to`, in order. */
  days: SummaryDay[];
  /** Per kind, the entry with the latest startedAt (any date), or null. */
  latest: { [E in LogEntity]: Entry<E> | null };
  /** Timers running or paused, by startedAt, then id. */
  running: RunningTimer[];
  /** Medications given in the 30 days before asOf, by name ignoring case. */
  medications: MedicationSummary[];
  growth: GrowthSummary;
}

/** Field names of the summary's objects, by their schema name in /openapi.json (the tests compare them). */
export const SUMMARY_FIELDS = {
  Summary: ['babyId', 'tz', 'asOf', 'days', 'latest', 'running', 'medications', 'growth'],
  Day: ['date', 'feeds', 'sleep', 'nappies', 'pumping', 'solids', 'activities', 'medications'],
  Feeds: ['count', 'bottleMl', 'breastMinutes', 'breastLeftMinutes', 'breastRightMinutes'],
  Sleep: ['count', 'minutes', 'longestMinutes'],
  Nappies: ['count', 'wet', 'dirty'],
  Pumping: ['count', 'ml'],
  Count: ['count'],
  Timed: ['count', 'minutes'],
  Medication: ['name', 'lastGivenAt', 'dosesLast24h', 'maxDosesPer24h', 'nextAllowedAt'],
  Growth: ['value', 'unit', 'measuredAt', 'ageDays', 'z', 'percentile'],
  GrowthSet: ['weight', 'length', 'headCircumference'],
  RunningTimer: ['entity', 'entry'],
} as const satisfies {
  Summary: readonly (keyof Summary)[];
  Day: readonly (keyof SummaryDay)[];
  Feeds: readonly (keyof FeedsDay)[];
  Sleep: readonly (keyof SleepDay)[];
  Nappies: readonly (keyof NappiesDay)[];
  Pumping: readonly (keyof PumpingDay)[];
  Count: readonly (keyof CountDay)[];
  Timed: readonly (keyof TimedDay)[];
  Medication: readonly (keyof MedicationSummary)[];
  Growth: readonly (keyof GrowthMeasurement)[];
  GrowthSet: readonly (keyof GrowthSummary)[];
  RunningTimer: readonly (keyof RunningTimer)[];
};

// Compile-time: every field of the summary's interfaces is listed above.
type SummaryUnlisted =
  | Exclude<keyof Summary, (typeof SUMMARY_FIELDS.Summary)[number]>
  | Exclude<keyof SummaryDay, (typeof SUMMARY_FIELDS.Day)[number]>
  | Exclude<keyof FeedsDay, (typeof SUMMARY_FIELDS.Feeds)[number]>
  | Exclude<keyof SleepDay, (typeof SUMMARY_FIELDS.Sleep)[number]>
  | Exclude<keyof NappiesDay, (typeof SUMMARY_FIELDS.Nappies)[number]>
  | Exclude<keyof PumpingDay, (typeof SUMMARY_FIELDS.Pumping)[number]>
  | Exclude<keyof CountDay, (typeof SUMMARY_FIELDS.Count)[number]>
  | Exclude<keyof TimedDay, (typeof SUMMARY_FIELDS.Timed)[number]>
  | Exclude<keyof MedicationSummary, (typeof SUMMARY_FIELDS.Medication)[number]>
  | Exclude<keyof GrowthMeasurement, (typeof SUMMARY_FIELDS.Growth)[number]>
  | Exclude<keyof GrowthSummary, (typeof SUMMARY_FIELDS.GrowthSet)[number]>
  | Exclude<keyof RunningTimer, (typeof SUMMARY_FIELDS.RunningTimer)[number]>;
const _everySummaryFieldListed: [SummaryUnlisted] extends [never] ? true : SummaryUnlisted = true;
void _everySummaryFieldListed;

// ---- export and import (PROTOCOL.md, "Export and import") ----

/** `GET /api/babies/{id}/export`: the baby and every entry of it, archived ones included, each as pull returns it. */
export interface ExportDocument {
  format: 'babysync-export';
  formatVersion: 1;
  exportedAt: Timestamp;
  baby: Baby;
  /** One key per kind the server knows. */
  entries: { [E in EntityName]: Entry<E>[] };
}

/** `POST /api/babies/import`'s answer: the baby, and per kind how many entries were added and how many were there already. */
export interface ImportResult {
  baby: Baby;
  imported: Partial<Record<EntityName, number>>;
  unchanged: Partial<Record<EntityName, number>>;
}

export const EXPORT_FIELDS = ['format', 'formatVersion', 'exportedAt', 'baby', 'entries'] as const satisfies readonly (keyof ExportDocument)[];
export const IMPORT_RESULT_FIELDS = ['baby', 'imported', 'unchanged'] as const satisfies readonly (keyof ImportResult)[];
