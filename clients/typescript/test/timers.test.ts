// Timers and the newer kinds through the store, against the real binary on
// SQLite and PostgreSQL: the shared fold cases (api/src/kinds/timer-cases.json)
// acted out by two caregivers on two devices in several orders and splits,
// some offline, where the local fold must show the answer before the push and
// equal the server's entry after it; undo; create and update of each new kind.

import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import {
  foldTimer,
  type AnyEntry,
  type CreateInput,
  type EntityName,
  type FoldedTimer,
  type PullResponse,
  type Side,
  type TimerAction,
  type TimerEntity,
  type UpdatableEntity,
  type UpdateInput,
} from '../src/index.ts';
import { minutesAgo, openDevice, snapshot, type Device } from './device.ts';
import { BACKENDS, api, createBaby, share, startServer, type TestServer } from './server.ts';

interface Case {
  name: string;
  startSide: Side | null;
  events: [string, number, TimerAction, Side?][];
  expect: { state: FoldedTimer['timerState']; segments: [number, number | null, Side | null][]; endedAt: number | null; durationMinutes: number };
}
const doc = JSON.parse(readFileSync(new URL('../../../api/src/kinds/timer-cases.json', import.meta.url), 'utf8')) as { cases: Case[] };

/** The timer fields of an entry, as the fold gives them. */
function timerFields(e: AnyEntry | undefined): FoldedTimer | undefined {
  if (!e) return undefined;
  const { timerState, segments, endedAt, durationMinutes } = e as AnyEntry & FoldedTimer;
  return { timerState, segments, endedAt, durationMinutes };
}

/** The server's copy of every entry of a kind the user sees: a raw pull from the start by a client of its own. */
async function serverEntries(srv: TestServer, user: string, entity: EntityName): Promise<Map<string, AnyEntry>> {
  const clientId = randomUUID();
  const out = new Map<string, AnyEntry>();
  let cursor: string | null = null;
  for (;;) {
    const r: { status: number; body: PullResponse } = await api<PullResponse>(srv, user, 'POST', '/api/sync/pull', { protocolVersion: 1, clientId, cursor, limit: 5000 });
    assert.equal(r.status, 200);
    for (const e of r.body.changes[entity] ?? []) out.set(e.id, e);
    cursor = r.body.cursor;
    if (!r.body.hasMore) return out;
  }
}

/** A few orders of a case's events: as written, reversed, rotated (distinct ones only). */
function ordersOf<T>(xs: T[]): T[][] {
  const all = [xs, xs.slice().reverse(), [...xs.slice(1), ...xs.slice(0, 1)]];
  return all.filter((o, i) => all.findIndex((p) => p.every((x, j) => x === o[j])) === i);
}

for (const backend of BACKENDS) {
  describe(`timers on ${backend}`, () => {
    let srv: TestServer;
    before(async () => {
      srv = await startServer(backend);
    });
    after(async () => {
      await srv?.stop();
    });

    test('the shared cases, acted out by two caregivers in several orders and splits, fold alike on both devices and the server', async () => {
      const baby = await createBaby(srv, 'tina');
      await share(srv, 'tina', baby, 'tom');
      const a = await openDevice(srv, 'tina');
      const b = await openDevice(srv, 'tom');
      await b.store.sync();
      const base = Math.floor(Date.now() / 60_000) * 60_000 - 2 * 3_600_000;
      const at = (min: number): string => new Date(base + Math.round(min * 60_000)).toISOString();
      let scenarios = 0;
      for (const c of doc.cases) {
        const want: FoldedTimer = {
          timerState: c.expect.state,
          segments: c.expect.segments.map(([s, e, side]) => ({ startedAt: at(s), endedAt: e === null ? null : at(e), side })),
          endedAt: c.expect.endedAt === null ? null : at(c.expect.endedAt),
          durationMinutes: c.expect.durationMinutes,
        };
        const sided = c.startSide !== null || c.events.some((e) => e[2] === 'switchSide');
        const orders = ordersOf(c.events);
        for (const [mode, order] of orders.entries()) {
          const label = `${c.name} (order ${mode})`;
          let entryId = '';
          const entity: TimerEntity = sided ? (scenarios % 2 ? 'pumping_log' : 'feed_log') : scenarios % 2 ? 'activity_log' : 'sleep_log';
          scenarios++;
          // Fresh event ids for each run that keep the case's order of ids (a common prefix replaced).
          const prefix = randomBytes(4).toString('hex');
          assert.ok(order.every((e) => e[0].slice(0, 8) === order[0]![0].slice(0, 8)), label);
          const act = (d: Device, [id, min, action, side]: Case['events'][number]) =>
            d.store.actOnTimer(entity, entryId, action, { at: at(min), side, id: prefix + id.slice(8) });
          const foldOf = (events: Case['events']) =>
            foldTimer(at(0), c.startSide, events.map(([id, min, action, side]) => ({ id: prefix + id.slice(8), startedAt: at(min), action, side: side ?? null })));
          const extra = entity === 'feed_log' ? { method: 'breast' as const } : entity === 'activity_log' ? { type: 'tummyTime' as const } : {};
          const start = async (d: Device) =>
            d.store.startTimer(entity, { babyId: baby, startedAt: at(0), ...extra, ...(c.startSide ? { startSide: c.startSide } : {}) });

          if (mode === 0) {
            // One device, offline throughout: the timer and every event go in one push.
            a.net.online = false;
            entryId = await start(a);
            for (const e of order) await act(a, e);
            assert.deepEqual(a.store.timer(entity, entryId), want, `${label}: before the push`);
            a.net.online = true;
            await a.store.sync();
            await b.store.sync();
          } else if (mode === 1) {
            // Both offline, taking turns; then tina pushes, and tom's device shows the
            // answer from her pulled events and his pending ones before his own push.
            entryId = await start(a);
            await a.store.sync();
            await b.store.sync();
            a.net.online = false;
            b.net.online = false;
            const mine = order.filter((_, i) => i % 2 === 0);
            const his = order.filter((_, i) => i % 2 === 1);
            for (const [i, e] of order.entries()) await act(i % 2 ? b : a, e);
            assert.deepEqual(a.store.timer(entity, entryId), foldOf(mine), `${label}: tina's own taps`);
            assert.deepEqual(b.store.timer(entity, entryId), foldOf(his), `${label}: tom's own taps`);
            a.net.online = true;
            b.net.online = true;
            await a.store.sync();
            await b.store.pull();
            assert.deepEqual(b.store.timer(entity, entryId), want, `${label}: tom, before his push`);
            await b.store.sync();
            await a.store.sync();
          } else {
            // Tom acts online as he goes (the first half); tina offline (the rest) pushes last.
            entryId = await start(a);
            await a.store.sync();
            await b.store.sync();
            a.net.online = false;
            const half = Math.ceil(order.length / 2);
            for (const e of order.slice(0, half)) {
              await act(b, e);
              await b.store.sync();
            }
            for (const e of order.slice(half)) await act(a, e);
            assert.deepEqual(a.store.timer(entity, entryId), foldOf(order.slice(half)), `${label}: tina's own taps`);
            a.net.online = true;
            await a.store.pull();
            assert.deepEqual(a.store.timer(entity, entryId), want, `${label}: tina, before her push`);
            await a.store.sync();
            await b.store.sync();
          }

          assert.deepEqual(a.rejected, [], label);
          assert.deepEqual(b.rejected, [], label);
          assert.equal(a.store.pendingMutations.length + b.store.pendingMutations.length, 0, label);
          const server = (await serverEntries(srv, 'tina', entity)).get(entryId);
          assert.deepEqual(timerFields(server), want, `${label}: the server's entry`);
          assert.deepEqual(a.store.timer(entity, entryId), want, `${label}: tina`);
          assert.deepEqual(b.store.timer(entity, entryId), want, `${label}: tom`);
          assert.deepEqual(a.store.get(entity, entryId), server, `${label}: tina's whole entry`);
          assert.deepEqual(b.store.get(entity, entryId), server, `${label}: tom's whole entry`);
        }
      }
      assert.ok(scenarios >= 2 * doc.cases.length, `${scenarios} scenarios`);
      assert.deepEqual(snapshot(a.store), snapshot(b.store));
    });

    test('undo deletes the latest event, offline too, whoever made it', async () => {
      const baby = await createBaby(srv, 'uma');
      await share(srv, 'uma', baby, 'ugo');
      const a = await openDevice(srv, 'uma');
      const b = await openDevice(srv, 'ugo');
      const t0 = Date.parse(minutesAgo(60));
      const at = (m: number): string => new Date(t0 + m * 60_000).toISOString();
      const seg = (s: number, e: number | null, side: Side | null) => ({ startedAt: at(s), endedAt: e === null ? null : at(e), side });
      const check = async (want: FoldedTimer) => {
        for (const d of [a, b]) assert.deepEqual(d.store.timer('feed_log', id), want);
        assert.deepEqual(timerFields((await serverEntries(srv, 'uma', 'feed_log')).get(id)), want);
      };

      const id = await a.store.startTimer('feed_log', { babyId: baby, method: 'breast', startSide: 'left', startedAt: at(0) });
      assert.deepEqual(a.store.timer('feed_log', id), { timerState: 'running', segments: [seg(0, null, 'left')], endedAt: null, durationMinutes: 0 });
      await a.store.sync();
      await b.store.sync();

      a.net.online = false;
      await a.store.pause('feed_log', id, at(5));
      await a.store.resume('feed_log', id, at(7));
      const sw = await a.store.switchSide('feed_log', id, 'right', at(10));
      assert.deepEqual(a.store.timer('feed_log', id)?.segments, [seg(0, 5, 'left'), seg(7, 10, 'left'), seg(10, null, 'right')]);
      // An event not pushed yet: undone at once, and both mutations go to the server.
      assert.equal(await a.store.undo('feed_log', id), sw);
      const running = { timerState: 'running' as const, segments: [seg(0, 5, 'left'), seg(7, null, 'left')], endedAt: null, durationMinutes: 5 };
      assert.deepEqual(a.store.timer('feed_log', id), running);
      // Editing the timer itself after one's own pending taps is no conflict.
      await a.store.update('feed_log', id, { notes: 'latched well' });
      a.net.online = true;
      await a.store.sync();
      await b.store.sync();
      assert.deepEqual(a.rejected, []);
      assert.equal(b.store.get('feed_log', id)?.notes, 'latched well');
      await check(running);

      // Ugo, offline, undoes the latest action he sees (Uma's resume), then stops the paused feed.
      b.net.online = false;
      const resume = b.store.timerEvents('feed_log', id).at(-1)!;
      assert.equal(resume.action, 'resume');
      assert.equal(await b.store.undo('feed_log', id), resume.id);
      assert.equal(b.store.timer('feed_log', id)?.timerState, 'paused');
      const stop = await b.store.stop('feed_log', id, at(12));
      const stopped = { timerState: 'stopped' as const, segments: [seg(0, 5, 'left')], endedAt: at(12), durationMinutes: 5 };
      assert.deepEqual(b.store.timer('feed_log', id), stopped);
      b.net.online = true;
      await b.store.sync();
      await a.store.sync();
      await check(stopped);

      // Uma undoes the stop, then the pause; then there is nothing left to undo.
      assert.equal(await a.store.undo('feed_log', id), stop);
      assert.equal(a.store.timer('feed_log', id)?.timerState, 'paused');
      assert.equal((await a.store.undo('feed_log', id)) !== undefined, true);
      assert.equal(await a.store.undo('feed_log', id), undefined);
      await a.store.sync();
      await b.store.sync();
      await check({ timerState: 'running', segments: [seg(0, null, 'left')], endedAt: null, durationMinutes: 0 });

      // The latest by time, not the latest tap: a stop entered for minute 30, then a pause for minute 25.
      const late = await a.store.stop('feed_log', id, at(30));
      await a.store.pause('feed_log', id, at(25));
      assert.equal(await a.store.undo('feed_log', id), late);
      const paused = { timerState: 'paused' as const, segments: [seg(0, 25, 'left')], endedAt: null, durationMinutes: 25 };
      assert.deepEqual(a.store.timer('feed_log', id), paused);
      await a.store.sync();
      await b.store.sync();
      await check(paused);
      const events = a.store.list('timer_event', { includeArchived: true }).filter((e) => e.entryId === id);
      assert.equal(events.length, 6);
      assert.equal(events.filter((e) => e.archivedAt).length, 5, 'undone events are deleted, as tombstones');
      assert.deepEqual(a.rejected, []);
      assert.deepEqual(b.rejected, []);
      assert.deepEqual(snapshot(a.store), snapshot(b.store));

      // An entry that is not a timer has no timer, and takes no timer actions.
      const plain = await a.store.create('sleep_log', { babyId: baby, startedAt: at(20), endedAt: at(40) });
      assert.equal(a.store.timer('sleep_log', plain.id), undefined);
      await assert.rejects(a.store.pause('sleep_log', plain.id), /no such timer/);
      await assert.rejects(a.store.actOnTimer('sleep_log', id, 'pause'), /no such timer/);
    });

    test('the newer kinds go through create and update', async () => {
      const baby = await createBaby(srv, 'vic');
      await share(srv, 'vic', baby, 'val');
      const a = await openDevice(srv, 'vic');
      const b = await openDevice(srv, 'val');
      const roundTrip = async <E extends UpdatableEntity>(entity: E, input: Omit<CreateInput<E>, 'babyId' | 'startedAt'>, patch: UpdateInput<E>, derived: Record<string, unknown> = {}) => {
        const made = await a.store.create(entity, { ...input, babyId: baby, startedAt: minutesAgo(90) } as CreateInput<E>);
        const has = (e: AnyEntry | undefined, fields: object, what: string) => {
          for (const [k, v] of Object.entries(fields)) assert.deepEqual((e as unknown as Record<string, unknown>)[k], v, `${entity}.${k}: ${what}`);
        };
        has(made, input, 'shown at once');
        await a.store.sync();
        await b.store.sync();
        has(b.store.get(entity, made.id), { ...input, ...derived }, 'pulled');
        await b.store.update(entity, made.id, patch);
        has(b.store.get(entity, made.id), patch, 'updated at once');
        await b.store.sync();
        await a.store.sync();
        const server = (await serverEntries(srv, 'vic', entity)).get(made.id);
        has(server, patch, 'on the server');
        assert.deepEqual(a.store.get(entity, made.id), server);
        assert.deepEqual(b.store.get(entity, made.id), server);
        return server as unknown as Record<string, unknown>;
      };

      const pumped = await roundTrip('pumping_log', { leftMl: 60, rightMl: 40, startSide: 'right', endedAt: minutesAgo(75), durationMinutes: 15 }, { rightMl: 55 }, { totalMl: 100 });
      assert.equal(pumped.totalMl, 115, 'the server keeps totalMl = leftMl + rightMl');
      await roundTrip('growth_log', { weightGrams: 4200, lengthMm: 540, headCircumferenceMm: 370 }, { weightGrams: 4250, notes: 'clinic' });
      await roundTrip('medication_log', { name: 'Paracetamol', dose: 2.5, doseUnit: 'ml', minIntervalMinutes: 240, maxDosesPer24h: 4 }, { dose: 2.25 });
      await roundTrip('temperature_log', { celsius: 37.8, site: 'armpit' }, { celsius: 38.1, site: 'ear' });
      await roundTrip('solids_log', { food: 'Banana', reaction: 'loved', allergens: ['milk', 'egg'] }, { reaction: 'allergic', allergens: ['peanut'] });
      await roundTrip('activity_log', { type: 'tummyTime', endedAt: minutesAgo(80), durationMinutes: 10 }, { type: 'bath' });
      const feed = await roundTrip('feed_log', { method: 'breast', startSide: 'left', endSide: 'right', durationMinutes: 20 }, { endSide: 'left' });
      assert.equal(feed.timerState, null, 'an entry created without timerState is not a timer');
      assert.deepEqual(a.rejected, []);
      assert.deepEqual(b.rejected, []);
      assert.deepEqual(snapshot(a.store), snapshot(b.store));
    });
  });
}
