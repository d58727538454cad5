// The SDK's wire types against the server's own /openapi.json (SQLite server).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ACCESS_LEVELS,
  CLIENT_FIELDS,
  ENTITIES,
  FEED_METHODS,
  GENDERS,
  NAPPY_COLOURS,
  NAPPY_CONSISTENCIES,
  NAPPY_TYPES,
  OPS,
  REJECTION_CODES,
  SERVER_FIELDS,
  SIDES,
  type EntityName,
} from '../src/index.ts';
import { startServer, type TestServer } from './server.ts';

interface Schema {
  properties?: Record<string, unknown>;
  required?: string[];
  enum?: string[];
}

const SCHEMA_OF: Record<EntityName, { entry: string; data: string }> = {
  feed_log: { entry: 'FeedEntry', data: 'FeedData' },
  sleep_log: { entry: 'SleepEntry', data: 'SleepData' },
  nappy_log: { entry: 'NappyEntry', data: 'NappyData' },
};

describe('types against /openapi.json', () => {
  let srv: TestServer;
  let schemas: Record<string, Schema>;
  before(async () => {
    srv = await startServer('sqlite');
    const doc = (await (await fetch(`${srv.url}/openapi.json`)).json()) as { components: { schemas: Record<string, Schema> } };
    schemas = doc.components.schemas;
  });
  after(async () => {
    await srv?.stop();
  });

  const props = (name: string) => Object.keys(schemas[name]?.properties ?? {}).sort();

  for (const entity of ENTITIES) {
    test(`${entity}: entry and data fields`, () => {
      const { entry, data } = SCHEMA_OF[entity];
      assert.deepEqual(props(entry), [...CLIENT_FIELDS[entity], 'id', 'babyId', ...SERVER_FIELDS].sort());
      assert.deepEqual([...props(data), ...props('EntryCommonData')].sort(), [...CLIENT_FIELDS[entity], 'babyId'].sort());
    });
  }

  test('enums', () => {
    const en = (name: string) => [...(schemas[name]?.enum ?? [])].sort();
    assert.deepEqual(en('FeedMethod'), [...FEED_METHODS].sort());
    assert.deepEqual(en('Side'), [...SIDES].sort());
    assert.deepEqual(en('NappyType'), [...NAPPY_TYPES].sort());
    assert.deepEqual(en('NappyColour'), [...NAPPY_COLOURS].sort());
    assert.deepEqual(en('NappyConsistency'), [...NAPPY_CONSISTENCIES].sort());
    assert.deepEqual(en('AccessLevel'), [...ACCESS_LEVELS].sort());
    assert.deepEqual(en('Gender'), [...GENDERS].sort());
    assert.deepEqual(en('RejectCode'), [...REJECTION_CODES].sort());
    assert.deepEqual(en('Op'), [...OPS].sort());
  });

  test('pull answers a list for every kind the SDK knows, and the envelope fields it reads', () => {
    const pull = schemas.PullBody!;
    const changes = pull.properties?.changes as Schema;
    for (const e of ENTITIES) assert.ok(changes.required?.includes(e), e);
    assert.deepEqual([...(pull.required ?? [])].sort(), ['babies', 'changes', 'cursor', 'hasMore', 'lastMutationId', 'revokedBabyIds']);
    assert.deepEqual(props('PushAnswer'), ['lastMutationId', 'results']);
    assert.deepEqual(props('BabyView'), ['accessLevel', 'archivedAt', 'birthDate', 'createdAt', 'gender', 'id', 'name', 'updatedAt']);
  });
});
