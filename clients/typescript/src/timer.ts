// The timer fold of PROTOCOL.md ("Timers shared by caregivers"), the same as
// the server's (api/src/kinds/timer.rs): an entry's timer state from its
// startedAt, its startSide and its events that are not archived, whatever
// order they arrived in. Pure, so a device shows the right timer offline,
// before its events are pushed. Both implementations are tested against the
// same cases (api/src/kinds/timer-cases.json), in every order.

import type { Segment, Side, TimerAction, TimerState } from './types.ts';

/** One `timer_event` that is not archived. */
export interface TimerEvent {
  id: string;
  /** The moment of the action (the event's `startedAt`), RFC 3339. */
  startedAt: string;
  action: TimerAction;
  /** For `switchSide` (feeds and pumping). */
  side?: Side | null;
}

/** The timer fields the server sets on the entry. */
export interface FoldedTimer {
  timerState: TimerState;
  segments: Segment[];
  /** The time of the stop that stopped it; null unless stopped. */
  endedAt: string | null;
  /** The closed segments' length to the nearest minute. */
  durationMinutes: number;
}

/** The server's timestamp form: UTC, milliseconds. */
const iso = (ms: number): string => new Date(ms).toISOString();

/** Folds `events` (in any order) into the timer of an entry that started at `startedAt` on `startSide`. */
export function foldTimer(startedAt: string, startSide: Side | null | undefined, events: readonly TimerEvent[]): FoldedTimer {
  const start = Date.parse(startedAt);
  // 1. By time, then by id as lower-case text; none before the entry began.
  const sorted = events
    .map((e) => ({ e, at: Date.parse(e.startedAt), id: e.id.toLowerCase() }))
    .filter((x) => x.at >= start)
    .sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  // 2. Running, one segment open from the entry's start, on its side.
  let state: TimerState = 'running';
  let side: Side | null = startSide ?? null;
  const segments: { start: number; end: number | null; side: Side | null }[] = [{ start, end: null, side }];
  let endedAt: number | null = null;
  const close = (at: number): void => {
    const open = segments[segments.length - 1];
    if (open && open.end === null) open.end = at;
  };
  for (const { e, at } of sorted) {
    if (e.action === 'pause' && state === 'running') {
      // 3.
      close(at);
      state = 'paused';
    } else if (e.action === 'resume' && (state === 'paused' || state === 'stopped')) {
      // 4. (after a stop, it undoes the stop)
      segments.push({ start: at, end: null, side });
      state = 'running';
      endedAt = null;
    } else if (e.action === 'switchSide' && e.side && state === 'running') {
      // 5.
      close(at);
      side = e.side;
      segments.push({ start: at, end: null, side });
    } else if (e.action === 'switchSide' && e.side && state === 'paused') {
      side = e.side;
    } else if (e.action === 'stop' && (state === 'running' || state === 'paused')) {
      // 6.
      close(at);
      state = 'stopped';
      endedAt = at;
    }
    // 7. Anything else does not fit the state: nothing changes.
  }
  const closedMs = segments.reduce((sum, s) => sum + (s.end === null ? 0 : s.end - s.start), 0);
  return {
    timerState: state,
    segments: segments.map((s) => ({ startedAt: iso(s.start), endedAt: s.end === null ? null : iso(s.end), side: s.side })),
    endedAt: endedAt === null ? null : iso(endedAt),
    durationMinutes: Math.floor((closedMs + 30_000) / 60_000),
  };
}
