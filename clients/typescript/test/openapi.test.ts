// The SDK's wire types against the server's own /openapi.json (SQLite server).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CLIENT_FIELDS,
  ENTITIES,
  ENUMS,
  EXPORT_FIELDS,
  IMPORT_RESULT_FIELDS,
  SERVER_FIELDS,
  SUMMARY_FIELDS,
  TIMER_ENTITIES,
  TIMER_SERVER_FIELDS,
  type EntityName,
  type InputOf,
} from '../src/index.ts';
import { startServer, type TestServer } from './server.ts';

interface Schema {
  properties?: Record<string, unknown>;
  required?: string[];
  enum?: string[];
  items?: { $ref?: string };
}
interface Operation {
  responses?: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
}
/** The schema a `$ref` names (`#/components/schemas/Name` → `Name`). */
const refName = (ref: string | undefined) => ref?.split('/').pop();

const SCHEMA_OF: Record<EntityName, { entry: string; data: string }> = {
  feed_log: { entry: 'FeedEntry', data: 'FeedData' },
  sleep_log: { entry: 'SleepEntry', data: 'SleepData' },
  nappy_log: { entry: 'NappyEntry', data: 'NappyData' },
  pumping_log: { entry: 'PumpingEntry', data: 'PumpingData' },
  growth_log: { entry: 'GrowthEntry', data: 'GrowthData' },
  medication_log: { entry: 'MedicationEntry', data: 'MedicationData' },
  temperature_log: { entry: 'TemperatureEntry', data: 'TemperatureData' },
  solids_log: { entry: 'SolidsEntry', data: 'SolidsData' },
  activity_log: { entry: 'ActivityEntry', data: 'ActivityData' },
  timer_event: { entry: 'TimerEventEntry', data: 'TimerEventData' },
};
/** The enum (schema name) each client field takes; checked against the document below and against the SDK's types here. */
const FIELD_ENUMS = {
  feed_log: { method: 'FeedMethod', startSide: 'Side', endSide: 'Side', timerState: 'Running' },
  sleep_log: { timerState: 'Running' },
  nappy_log: { type: 'NappyType', colour: 'NappyColour', consistency: 'NappyConsistency' },
  pumping_log: { startSide: 'Side', timerState: 'Running' },
  growth_log: {},
  medication_log: { doseUnit: 'DoseUnit' },
  temperature_log: { site: 'TemperatureSite' },
  solids_log: { reaction: 'Reaction', allergens: 'Allergen' },
  activity_log: { type: 'ActivityType', timerState: 'Running' },
  timer_event: { entryEntity: 'TimerEntity', action: 'TimerAction', side: 'Side' },
} as const satisfies { [E in EntityName]: Partial<Record<keyof InputOf[E], keyof typeof ENUMS>> };

// Compile-time: each of those fields has exactly the enum's type (an array of it for allergens).
type Elem<T> = T extends readonly (infer U)[] ? U : T;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type WrongType = {
  [E in EntityName]: {
    [F in keyof (typeof FIELD_ENUMS)[E]]: F extends keyof InputOf[E]
      ? Same<Elem<NonNullable<InputOf[E][F]>>, (typeof ENUMS)[(typeof FIELD_ENUMS)[E][F] & keyof typeof ENUMS][number]> extends true
        ? never
        : `${E}.${F & string}`
      : `${E}.${F & string}`;
  }[keyof (typeof FIELD_ENUMS)[E]];
}[EntityName];
const _fieldTypes: [WrongType] extends [never] ? true : WrongType = true;
void _fieldTypes;

/** Enums of the document the SDK does not model as constants (live.ts reads the stream's event names). */
const NOT_MODELLED = ['StreamEventName'];

describe('types against /openapi.json', () => {
  let srv: TestServer;
  let schemas: Record<string, Schema>;
  let paths: Record<string, Record<string, Operation>>;
  before(async () => {
    srv = await startServer('sqlite');
    const doc = (await (await fetch(`${srv.url}/openapi.json`)).json()) as { components: { schemas: Record<string, Schema> }; paths: typeof paths };
    schemas = doc.components.schemas;
    paths = doc.paths;
  });
  after(async () => {
    await srv?.stop();
  });

  const props = (name: string) => Object.keys(schemas[name]?.properties ?? {}).sort();

  for (const entity of ENTITIES) {
    test(`${entity}: entry and data fields`, () => {
      const { entry, data } = SCHEMA_OF[entity];
      const timer = (TIMER_ENTITIES as readonly string[]).includes(entity) ? TIMER_SERVER_FIELDS : [];
      assert.deepEqual(props(entry), [...CLIENT_FIELDS[entity], 'id', 'babyId', ...SERVER_FIELDS, ...timer].sort());
      assert.deepEqual([...props(data), ...props('EntryCommonData')].sort(), [...CLIENT_FIELDS[entity], 'babyId'].sort());
    });
  }

  test('each field takes the enum the SDK types it with', () => {
    const refName = (p: unknown): string | undefined => {
      const s = p as { $ref?: string; oneOf?: unknown[]; items?: unknown };
      if (s.$ref) return s.$ref.split('/').pop();
      return [...(s.oneOf ?? []), ...(s.items ? [s.items] : [])].map(refName).find((x) => x !== undefined);
    };
    for (const entity of ENTITIES) {
      const data = schemas[SCHEMA_OF[entity].data]!.properties ?? {};
      const inDoc = Object.entries(data)
        .map(([field, p]) => [field, refName(p)])
        .filter(([, name]) => name && name in ENUMS);
      assert.deepEqual(Object.fromEntries(inDoc), FIELD_ENUMS[entity], entity);
    }
  });

  test('every enum of the document', () => {
    const inDoc = Object.keys(schemas).filter((name) => schemas[name]!.enum && !NOT_MODELLED.includes(name));
    assert.deepEqual(inDoc.sort(), Object.keys(ENUMS).sort());
    for (const [name, values] of Object.entries(ENUMS)) assert.deepEqual([...schemas[name]!.enum!].sort(), [...values].sort(), name);
  });

  test('the kinds: every one the server pushes and pulls, and the timer kinds', () => {
    const pull = schemas.PullBody!;
    const changes = pull.properties?.changes as Schema;
    assert.deepEqual([...(changes.required ?? [])].sort(), [...ENTITIES].sort());
    assert.deepEqual(((schemas.MutationIn!.properties?.entity as Schema).enum ?? []).slice().sort(), [...ENTITIES].sort());
    const timers = ENTITIES.filter((e) => props(SCHEMA_OF[e].data).includes('timerState'));
    assert.deepEqual(timers, [...TIMER_ENTITIES]);
    assert.deepEqual([...(pull.required ?? [])].sort(), ['babies', 'changes', 'cursor', 'hasMore', 'lastMutationId', 'revokedBabyIds']);
    assert.deepEqual(props('PushAnswer'), ['lastMutationId', 'results']);
    assert.deepEqual(props('BabyView'), ['accessLevel', 'archivedAt', 'birthDate', 'createdAt', 'gender', 'id', 'name', 'updatedAt']);
    assert.deepEqual(props('TimerSegment'), ['endedAt', 'side', 'startedAt']);
  });

  test('the summary: every object of GET /api/babies/{id}/summary', () => {
    const answer = paths['/api/babies/{id}/summary']?.get?.responses?.['200']?.content?.['application/json']?.schema?.$ref;
    assert.equal(refName(answer), 'Summary');
    for (const [name, fields] of Object.entries(SUMMARY_FIELDS)) {
      if (name === 'RunningTimer') continue;
      assert.deepEqual(props(name), [...fields].sort(), name);
    }
    assert.deepEqual([...(schemas.Summary!.required ?? [])].sort(), [...SUMMARY_FIELDS.Summary].sort());
    // `running`'s items: the document's name for them.
    const running = refName((schemas.Summary!.properties?.running as Schema).items?.$ref);
    assert.ok(running, 'running has items');
    assert.deepEqual(props(running), [...SUMMARY_FIELDS.RunningTimer].sort());
  });

  test('export and import: the export document and the import answer', () => {
    const jsonOf = (path: string, method: string, status: string[]) =>
      status.map((st) => refName(paths[path]?.[method]?.responses?.[st]?.content?.['application/json']?.schema?.$ref)).find(Boolean);
    const exportDoc = jsonOf('/api/babies/{id}/export', 'get', ['200']);
    const importAnswer = jsonOf('/api/babies/import', 'post', ['201', '200']);
    assert.ok(exportDoc && importAnswer, 'export and import are in the document');
    assert.deepEqual(props(exportDoc), [...EXPORT_FIELDS].sort(), exportDoc);
    assert.deepEqual(props(importAnswer), [...IMPORT_RESULT_FIELDS].sort(), importAnswer);
  });
});
