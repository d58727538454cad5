// The SDK's timer fold against the cases the server's fold is tested with
// (api/src/kinds/timer-cases.json), in every order of each case's events, and
// random events in random orders.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { foldTimer, type Side, type TimerAction, type TimerEvent } from '../src/index.ts';

interface Case {
  name: string;
  startSide: Side | null;
  events: [string, number, TimerAction, Side?][];
  expect: { state: string; segments: [number, number | null, Side | null][]; endedAt: number | null; durationMinutes: number };
}

const doc = JSON.parse(readFileSync(new URL('../../../api/src/kinds/timer-cases.json', import.meta.url), 'utf8')) as {
  startedAt: string;
  cases: Case[];
};
const start = Date.parse(doc.startedAt);
const at = (min: number): string => new Date(start + Math.round(min * 60_000)).toISOString();

function* permutations<T>(xs: T[]): Generator<T[]> {
  if (xs.length <= 1) {
    yield xs.slice();
    return;
  }
  for (let i = 0; i < xs.length; i++) {
    const rest = xs.slice(0, i).concat(xs.slice(i + 1));
    for (const p of permutations(rest)) yield [xs[i]!, ...p];
  }
}

test('the shared cases fold as written, in every order', () => {
  assert.ok(doc.cases.length >= 10);
  for (const c of doc.cases) {
    const events: TimerEvent[] = c.events.map(([id, min, action, side]) => ({ id, startedAt: at(min), action, side: side ?? null }));
    const want = {
      timerState: c.expect.state,
      segments: c.expect.segments.map(([s, e, side]) => ({ startedAt: at(s), endedAt: e === null ? null : at(e), side })),
      endedAt: c.expect.endedAt === null ? null : at(c.expect.endedAt),
      durationMinutes: c.expect.durationMinutes,
    };
    let orders = 0;
    for (const order of permutations(events)) {
      assert.deepEqual(foldTimer(doc.startedAt, c.startSide, order), want, `${c.name}: ${order.map((e) => e.id.slice(-2)).join(',')}`);
      orders++;
    }
    assert.ok(orders >= 1, c.name);
  }
});

test('random events fold the same in any order, segments in order, endedAt only when stopped', () => {
  let seed = 0x2545f491;
  const rand = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const actions: TimerAction[] = ['pause', 'resume', 'switchSide', 'stop'];
  for (let round = 0; round < 300; round++) {
    const events: TimerEvent[] = Array.from({ length: rand(12) }, (_, i) => {
      const action = actions[rand(4)]!;
      return {
        id: `00000000-0000-0000-0000-${(rand(6) * 256 + i).toString(16).padStart(12, '0')}`,
        startedAt: at(rand(45) - 5),
        action,
        side: action === 'switchSide' ? (rand(2) ? 'left' : 'right') : null,
      };
    });
    const want = foldTimer(doc.startedAt, 'left', events);
    const shuffled = events.slice();
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = rand(i + 1);
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    assert.deepEqual(foldTimer(doc.startedAt, 'left', shuffled), want);
    for (let i = 1; i < want.segments.length; i++) {
      const prev = want.segments[i - 1]!;
      assert.ok(prev.endedAt !== null && prev.endedAt <= want.segments[i]!.startedAt);
    }
    assert.equal(want.endedAt !== null, want.timerState === 'stopped');
  }
});
