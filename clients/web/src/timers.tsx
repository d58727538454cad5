// Timers shared by caregivers (PROTOCOL.md, "Timers shared by caregivers"):
// a breastfeed timer and a sleep timer to start here, and every running timer
// of the baby, whoever started it. Each tap is a timer event queued by the
// store (so it works offline); the store folds the timer from the events it
// has, pulled and pending, and the live stream brings the others' taps.

import { useEffect, useState } from 'preact/hooks';
import { foldTimer, type Entry, type Segment, type Side, type Store, type TimerAction, type TimerEntity, type TimerEventLog } from '@babysync/client';
import { ACTIVITY_LABEL, clock, isActiveTimer, isToday } from './format.ts';

const WORD: Record<TimerEntity, string> = { feed_log: 'feed', sleep_log: 'sleep', pumping_log: 'pumping', activity_log: 'activity' };

/** Running time: the closed segments plus the open one up to `now`. */
export function elapsedMs(segments: Segment[], now: number): number {
  return segments.reduce((sum, s) => sum + Math.max(0, (s.endedAt ? Date.parse(s.endedAt) : now) - Date.parse(s.startedAt)), 0);
}

/** 65 s → "1:05", 3725 s → "1:02:05". */
export function formatElapsed(ms: number): string {
  const total = Math.floor(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/**
 * The side a timer is on now. A switch while paused changes the side without
 * opening a segment, so the last segment does not always tell: fold the
 * timer's events once more with a resume after all of them, which opens a
 * segment on the current side (and changes nothing while running).
 */
function currentSide(store: Store, entity: TimerEntity, e: Entry<TimerEntity>, events: TimerEventLog[]): Side | null {
  if (entity !== 'feed_log' && entity !== 'pumping_log') return null;
  const startSide = 'startSide' in e ? e.startSide : null;
  const probe = { id: 'probe', startedAt: '9999-12-31T23:59:59.999Z', action: 'resume' as const };
  return foldTimer(e.startedAt, startSide, [...events, probe]).segments.at(-1)?.side ?? null;
}

const ACTION_WORD: Record<TimerAction, string> = { pause: 'pause', resume: 'resume', switchSide: 'switch', stop: 'stop' };
const actionWord = (ev: TimerEventLog) => (ev.action === 'switchSide' ? `switch to ${ev.side}` : ACTION_WORD[ev.action]);

/** Re-renders every second while `active`; returns the time to draw with. */
function useNow(active: boolean): number {
  const [, setTick] = useState(0);
  useEffect(() => {
    if (!active) return;
    const t = setInterval(() => setTick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [active]);
  return Date.now();
}

function title(entity: TimerEntity, e: Entry<TimerEntity>): string {
  switch (entity) {
    case 'feed_log':
      return (e as Entry<'feed_log'>).method === 'bottle' ? 'Bottle feed' : 'Breastfeed';
    case 'sleep_log':
      return 'Sleep';
    case 'pumping_log':
      return 'Pumping';
    case 'activity_log':
      return ACTIVITY_LABEL[(e as Entry<'activity_log'>).type] ?? 'Activity';
  }
}

function TimerCard(props: { store: Store; entity: TimerEntity; e: Entry<TimerEntity>; canEdit: boolean; now: number; fail: (err: unknown) => void }) {
  const { store, entity, e, canEdit, now, fail } = props;
  const t = store.timer(entity, e.id);
  if (!t) return null;
  const word = WORD[entity];
  const events = store.timerEvents(entity, e.id);
  const side = currentSide(store, entity, e, events);
  const last = events.at(-1);
  const other: Side = side === 'left' ? 'right' : 'left';
  const run = (f: () => Promise<unknown>) => () => void f().catch(fail);
  const sided = entity === 'feed_log' || entity === 'pumping_log';
  return (
    <article class={`timer ${t.timerState}`} data-testid={`${word}-timer`} data-entry-id={e.id} aria-label={`${title(entity, e)} timer`}>
      <div class="row">
        <strong>{title(entity, e)}</strong>
        <span data-testid="timer-state" class={`state ${t.timerState}`}>
          {t.timerState}
        </span>
        {side && (
          <span>
            side <strong data-testid="timer-side">{side}</strong>
          </span>
        )}
        <span data-testid="timer-elapsed" class="elapsed" role="timer" aria-label="Elapsed time">
          {formatElapsed(elapsedMs(t.segments, now))}
        </span>
      </div>
      <p class="hint">
        Started{' '}
        <time data-testid="timer-started-at" dateTime={e.startedAt}>
          {clock(e.startedAt)}
        </time>
        {t.endedAt && (
          <>
            {' · '}ended{' '}
            <time data-testid="timer-ended-at" dateTime={t.endedAt}>
              {clock(t.endedAt)}
            </time>
            {` · ${t.durationMinutes} min`}
          </>
        )}
      </p>
      <ol class="segments" data-testid="timer-segments" aria-label={`${title(entity, e)} segments`}>
        {t.segments.map((s, i) => (
          <li key={i}>
            {s.side ? <span class="side">{s.side} </span> : null}
            <time dateTime={s.startedAt}>{clock(s.startedAt)}</time>–{s.endedAt ? <time dateTime={s.endedAt}>{clock(s.endedAt)}</time> : 'now'}
          </li>
        ))}
      </ol>
      {canEdit && (
        <div class="row timer-actions">
          {t.timerState === 'running' && (
            <button type="button" onClick={run(() => store.pause(entity, e.id))}>
              Pause {word}
            </button>
          )}
          {t.timerState === 'paused' && (
            <button type="button" onClick={run(() => store.resume(entity, e.id))}>
              Resume {word}
            </button>
          )}
          {sided && t.timerState !== 'stopped' && (
            <button
              type="button"
              aria-label={`Switch ${word} to ${other}`}
              onClick={run(() => store.switchSide(entity as 'feed_log' | 'pumping_log', e.id, other))}
            >
              Switch to {other}
            </button>
          )}
          {t.timerState !== 'stopped' && (
            <button type="button" class="stop" onClick={run(() => store.stop(entity, e.id))}>
              Stop {word}
            </button>
          )}
          {last ? (
            <button type="button" aria-label={`Undo last ${word} action (${actionWord(last)})`} onClick={run(() => store.undo(entity, e.id))}>
              Undo {actionWord(last)}
            </button>
          ) : (
            <button
              type="button"
              aria-label={`Undo ${word} start`}
              onClick={() => confirm(`Discard this ${title(entity, e).toLowerCase()} timer?`) && void store.remove(entity, e.id).catch(fail)}
            >
              Undo start
            </button>
          )}
        </div>
      )}
    </article>
  );
}

/** The timers of a kind to show: those still going, else the last one stopped today. */
function shown<E extends TimerEntity>(store: Store, entity: E, babyId: string): Entry<E>[] {
  const timers = store.list(entity, { babyId }).filter((e) => e.timerState);
  const active = timers.filter(isActiveTimer);
  if (active.length > 0) return active;
  const last = timers.at(-1);
  return last && (isToday(last.startedAt) || (last.endedAt && isToday(last.endedAt))) ? [last] : [];
}

export function Timers({ store, babyId, canEdit }: { store: Store; babyId: string; canEdit: boolean }) {
  const [error, setError] = useState<string | null>(null);
  const fail = (err: unknown) => setError(err instanceof Error ? err.message : String(err));
  const feeds = shown(store, 'feed_log', babyId);
  const sleeps = shown(store, 'sleep_log', babyId);
  // Pumping and activity timers are started by other apps; shown while they run.
  const others = [
    ...store.list('pumping_log', { babyId }).filter(isActiveTimer).map((e) => ({ entity: 'pumping_log' as const, e })),
    ...store.list('activity_log', { babyId }).filter(isActiveTimer).map((e) => ({ entity: 'activity_log' as const, e })),
  ];
  const running = [...feeds, ...sleeps, ...others.map((o) => o.e)].some((e) => e.timerState === 'running');
  const now = useNow(running);
  const start = (f: () => Promise<unknown>) => () => {
    setError(null);
    void f().catch(fail);
  };
  const card = (entity: TimerEntity, e: Entry<TimerEntity>) => (
    <TimerCard key={e.id} store={store} entity={entity} e={e} canEdit={canEdit} now={now} fail={fail} />
  );
  return (
    <section class="card timers" aria-label="Timers">
      <h3>Timers</h3>
      <div class="timer-kind">
        {feeds.map((e) => card('feed_log', e))}
        {canEdit && !feeds.some(isActiveTimer) && (
          <div class="row" role="group" aria-label="Start a breastfeed timer">
            <button type="button" onClick={start(() => store.startTimer('feed_log', { babyId, method: 'breast', startSide: 'left' }))}>
              Start feed on left
            </button>
            <button type="button" onClick={start(() => store.startTimer('feed_log', { babyId, method: 'breast', startSide: 'right' }))}>
              Start feed on right
            </button>
          </div>
        )}
      </div>
      <div class="timer-kind">
        {sleeps.map((e) => card('sleep_log', e))}
        {canEdit && !sleeps.some(isActiveTimer) && (
          <div class="row">
            <button type="button" onClick={start(() => store.startTimer('sleep_log', { babyId }))}>
              Start sleep
            </button>
          </div>
        )}
      </div>
      {others.map((o) => card(o.entity, o.e))}
      {!canEdit && feeds.length + sleeps.length + others.length === 0 && <p class="hint">No timer running.</p>}
      {error && (
        <p role="alert" class="off">
          {error}
        </p>
      )}
    </section>
  );
}
