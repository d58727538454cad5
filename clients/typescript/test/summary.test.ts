// Summaries, export and import through the SDK, against the real binary on
// SQLite and on PostgreSQL.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ENTITIES, NetworkError, deviceTimeZone, type Summary, type SummaryDay } from '../src/index.ts';
import { Net, minutesAgo, openDevice } from './device.ts';
import { BACKENDS, api, startServer, type TestServer } from './server.ts';

/** A baby with a birth date and a gender, so growth has percentiles. */
async function createBaby(srv: TestServer, user: string, name = 'Ada'): Promise<string> {
  const id = randomUUID();
  const birthDate = new Date(Date.now() - 60 * 86_400_000).toISOString().slice(0, 10);
  const r = await api(srv, user, 'POST', '/api/babies', { id, name, birthDate, gender: 'female' });
  if (r.status !== 201) throw new Error(`create baby: ${r.status} ${JSON.stringify(r.body)}`);
  return id;
}

/** The days' numbers added up (the entries are minutes old: yesterday and today cover them whenever the test runs). */
function total(s: Summary) {
  const sum = (f: (d: SummaryDay) => number) => s.days.reduce((n, d) => n + f(d), 0);
  return {
    feeds: sum((d) => d.feeds.count),
    bottleMl: sum((d) => d.feeds.bottleMl),
    breastMinutes: sum((d) => d.feeds.breastMinutes),
    nappies: sum((d) => d.nappies.count),
    wet: sum((d) => d.nappies.wet),
    dirty: sum((d) => d.nappies.dirty),
    sleeps: sum((d) => d.sleep.count),
    medications: sum((d) => d.medications.count),
  };
}

const yesterday = () => new Date(Date.now() - 86_400_000);

/** Is the route there yet (a route-not-found 404 says no)? */
for (const backend of BACKENDS) {
  describe(`summary, export and import on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer(backend);
    });
    after(async () => {
      await srv?.stop();
    });

    test('a summary after logging: counts, bottle ml, a running timer, the latest feed, the next dose, growth', async () => {
      const baby = await createBaby(srv, 'sum-alice');
      const dev = await openDevice(srv, 'sum-alice');
      await dev.store.sync();

      await dev.store.create('feed_log', { babyId: baby, method: 'bottle', startedAt: minutesAgo(50), amountMl: 120 });
      await dev.store.create('feed_log', { babyId: baby, method: 'bottle', startedAt: minutesAgo(40), amountMl: 60 });
      const breast = await dev.store.create('feed_log', {
        babyId: baby,
        method: 'breast',
        startedAt: minutesAgo(30),
        endedAt: minutesAgo(20),
        startSide: 'left',
        endSide: 'right',
      });
      for (const [type, ago] of [['wee', 35], ['poo', 25], ['mixed', 15]] as const) {
        await dev.store.create('nappy_log', { babyId: baby, startedAt: minutesAgo(ago), type });
      }
      const sleep = await dev.store.startTimer('sleep_log', { babyId: baby, startedAt: minutesAgo(10) });
      const doseAt = minutesAgo(5);
      await dev.store.create('medication_log', { babyId: baby, startedAt: doseAt, name: 'Paracetamol', dose: 2.5, doseUnit: 'ml', minIntervalMinutes: 240, maxDosesPer24h: 4 });
      await dev.store.create('growth_log', { babyId: baby, startedAt: minutesAgo(3), weightGrams: 5200, lengthMm: 580 });

      // Not pushed yet: summary() pushes first.
      assert.equal(dev.store.pendingMutations.length, 9);
      const s = await dev.store.summary(baby, { from: yesterday(), tz: 'UTC' });
      assert.equal(dev.store.pendingMutations.length, 0, 'summary() synced the pending edits first');

      assert.equal(s.babyId, baby);
      assert.equal(s.tz, 'UTC');
      assert.equal(s.days.length, 2);
      assert.deepEqual(
        s.days.map((d) => d.date),
        [yesterday().toISOString().slice(0, 10), new Date().toISOString().slice(0, 10)],
      );
      assert.deepEqual(total(s), { feeds: 3, bottleMl: 180, breastMinutes: 10, nappies: 3, wet: 2, dirty: 2, sleeps: 1, medications: 1 });

      assert.equal(s.running.length, 1);
      assert.equal(s.running[0]!.entity, 'sleep_log');
      assert.equal(s.running[0]!.entry.id, sleep);
      assert.equal(s.running[0]!.entry.timerState, 'running');

      assert.equal(s.latest.feed_log?.id, breast.id);
      assert.equal(s.latest.feed_log?.startSide, 'left');
      assert.equal(s.latest.feed_log?.endSide, 'right');
      assert.equal(s.latest.growth_log?.weightGrams, 5200);
      assert.equal(s.latest.temperature_log, null);

      assert.equal(s.medications.length, 1);
      const med = s.medications[0]!;
      assert.equal(med.name, 'Paracetamol');
      assert.equal(Date.parse(med.lastGivenAt), Date.parse(doseAt));
      assert.equal(med.dosesLast24h, 1);
      assert.equal(med.maxDosesPer24h, 4);
      assert.equal(Date.parse(med.nextAllowedAt!), Date.parse(doseAt) + 240 * 60_000);

      const w = s.growth.weight!;
      assert.equal(w.value, 5200);
      assert.equal(w.unit, 'g');
      assert.equal(w.ageDays, 60);
      assert.equal(typeof w.z, 'number');
      assert.ok(w.percentile! > 0 && w.percentile! < 100, `percentile ${w.percentile}`);
      assert.equal(s.growth.length?.value, 580);
      assert.equal(s.growth.length?.unit, 'mm');
      assert.equal(s.growth.headCircumference, null);

      // The device's time zone by default, today only.
      const today = await dev.store.summary(baby);
      assert.equal(today.tz, deviceTimeZone());
      assert.equal(today.days.length, 1);

      // Offline it is a network error (not queued).
      dev.net.online = false;
      await assert.rejects(dev.store.summary(baby), NetworkError);
      dev.net.online = true;
      await dev.store.close();
    });

    test('export, then import under another user on a fresh server, then export again: the same entries', async () => {
      const baby = await createBaby(srv, 'exp-alice', 'Bea');
      const a = await openDevice(srv, 'exp-alice');
      await a.store.sync();
      await a.store.create('feed_log', { babyId: baby, method: 'bottle', startedAt: minutesAgo(60), amountMl: 90, notes: 'ünïcode ✓' });
      const gone = await a.store.create('nappy_log', { babyId: baby, startedAt: minutesAgo(50), type: 'poo' });
      await a.store.remove('nappy_log', gone.id);
      const timer = await a.store.startTimer('feed_log', { babyId: baby, method: 'breast', startSide: 'left', startedAt: minutesAgo(30) });
      await a.store.switchSide('feed_log', timer, 'right', minutesAgo(20));
      await a.store.stop('feed_log', timer, minutesAgo(10));
      await a.store.create('growth_log', { babyId: baby, startedAt: minutesAgo(5), weightGrams: 5000 });

      const doc = await a.store.exportBaby(baby); // pushes first
      assert.equal(doc.format, 'babysync-export');
      assert.equal(doc.formatVersion, 1);
      assert.equal(doc.baby.id, baby);
      for (const e of ENTITIES) assert.ok(Array.isArray(doc.entries[e]), e);
      assert.equal(doc.entries.feed_log.length, 2);
      assert.equal(doc.entries.nappy_log[0]!.archivedAt !== null, true, 'archived entries are exported');
      assert.equal(doc.entries.timer_event.length, 2);

      const csv = await a.store.exportBaby(baby, { format: 'csv', kind: 'feed_log', tz: 'UTC' });
      const lines = csv.split('\r\n').filter(Boolean);
      assert.equal(lines.length, 3, 'a header and two feeds');
      assert.match(lines[0]!, /^id,babyId,/);
      assert.ok(csv.includes('ünïcode ✓'));

      // Another user on a fresh server.
      const other = await startServer(backend);
      try {
        // The import goes gzip-compressed (Node has CompressionStream).
        const net = new Net();
        const encodings: string[] = [];
        const plain = net.fetch;
        net.fetch = (input, init) => {
          if (new URL(input).pathname === '/api/babies/import') encodings.push(new Headers(init.headers).get('content-encoding') ?? 'identity');
          return plain(input, init);
        };
        const b = await openDevice(other, 'imp-bob', { net });
        const r = await b.store.importBaby(doc);
        assert.deepEqual(encodings, ['gzip']);
        assert.equal(r.baby.id, baby);
        assert.equal(r.baby.accessLevel, 'owner');
        assert.equal(r.imported.feed_log, 2);
        assert.equal(r.imported.nappy_log, 1);
        assert.equal(r.imported.timer_event, 2);
        // importBaby() synced: the baby and its entries are in the store.
        assert.deepEqual(b.store.babies().map((x) => x.id), [baby]);
        assert.equal(b.store.list('feed_log', { babyId: baby }).length, 2);
        assert.deepEqual(b.store.timer('feed_log', timer)?.segments, a.store.timer('feed_log', timer)?.segments);

        const again = await b.store.exportBaby(baby);
        const ids = (d: typeof doc) => Object.fromEntries(ENTITIES.map((e) => [e, d.entries[e].map((x) => x.id).sort()]));
        assert.deepEqual(ids(again), ids(doc));
        // The client fields and the kept server fields are as they were.
        const strip = (d: typeof doc) =>
          Object.fromEntries(
            ENTITIES.map((e) => [
              e,
              d.entries[e]
                .map((x) => {
                  const { version, updatedAt, ...rest } = x as unknown as Record<string, unknown>;
                  void version;
                  void updatedAt;
                  return rest;
                })
                .sort((p, q) => String(p.id).localeCompare(String(q.id))),
            ]),
          );
        assert.deepEqual(strip(again), strip(doc));

        // Importing the same file again changes nothing.
        const twice = await b.store.importBaby(JSON.stringify(doc));
        assert.equal(twice.imported.feed_log ?? 0, 0);
        assert.equal(twice.unchanged.feed_log, 2);
        await b.store.close();
      } finally {
        await other.stop();
      }
      await a.store.close();
    });
  });
}
