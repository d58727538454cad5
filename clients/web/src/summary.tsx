// The baby's "now" and growth cards, from the server's summary
// (store.summary: what the server has, so what has been pushed; the store
// pushes pending edits first). Refreshed when the store changes for this
// baby, every minute, and on coming back online; when a refresh fails the
// last figures stay, with a note saying how old they are.

import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Store, type FeedLog, type GrowthMeasurement, type Summary, type TimerEntity } from '@babysync/client';
import { ACTIVITY_LABEL, dayTime, hours, sidesOf, sinceText } from './format.ts';

export interface SummaryState {
  summary: Summary | null;
  /** Why the last refresh failed (the figures shown, if any, are from before). */
  error: string | null;
  offline: boolean;
}

/** The summary of `babyId` (null: none, nothing fetched). */
export function useSummary(store: Store, babyId: string | null): SummaryState {
  const [state, setState] = useState<SummaryState>({ summary: null, error: null, offline: false });
  useEffect(() => {
    setState({ summary: null, error: null, offline: false });
    if (babyId === null) return;
    let alive = true;
    let running = false;
    let again = false;
    let soonTimer: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        do {
          again = false;
          try {
            const s = await store.summary(babyId);
            if (alive && s.babyId === babyId) setState({ summary: s, error: null, offline: false });
          } catch (err) {
            const offline = Store.isNetworkError(err);
            const error = offline ? 'offline' : err instanceof Error ? err.message : String(err);
            if (alive) setState((st) => ({ ...st, error, offline }));
          }
        } while (again && alive);
      } finally {
        running = false;
      }
    };
    const soon = () => {
      clearTimeout(soonTimer);
      soonTimer = setTimeout(() => void load(), 250);
    };
    void load();
    const unsubscribe = store.subscribe((e) => {
      if (e.babyIds.includes(babyId)) soon();
    });
    const everyMinute = setInterval(() => void load(), 60_000);
    addEventListener('online', soon);
    return () => {
      alive = false;
      unsubscribe();
      clearTimeout(soonTimer);
      clearInterval(everyMinute);
      removeEventListener('online', soon);
    };
  }, [store, babyId]);
  return state;
}

/** Re-renders every `ms` while mounted; returns the time to draw with (now, whatever made it render). */
function useClock(ms: number): number {
  const [, setTick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => setTick((n) => n + 1), ms);
    return () => clearInterval(t);
  }, [ms]);
  return Date.now();
}

const TIMER_WORD: Record<TimerEntity, string> = { feed_log: 'Feed', sleep_log: 'Sleep', pumping_log: 'Pumping', activity_log: 'Activity' };

/** The sides of a feed: its timer segments', else its start and end sides ("left → right"). */
function feedSides(f: FeedLog): string {
  if (f.segments && f.segments.length > 0) return sidesOf(f.segments);
  const sides = [f.startSide, f.endSide].filter((s): s is 'left' | 'right' => !!s);
  return sides.filter((s, i) => sides[i - 1] !== s).join(' → ');
}

function feedWhat(f: FeedLog): string {
  if (f.method === 'bottle') return f.amountMl != null ? `Bottle · ${f.amountMl} ml` : 'Bottle';
  return 'Breast';
}

function StaleNote({ state }: { state: SummaryState }) {
  if (!state.error) return null;
  const asOf = state.summary ? ` These figures are the server's as of ${dayTime(state.summary.asOf)}; what was logged since is not counted yet.` : '';
  return (
    <p class="hint stale" data-testid="summary-stale" role="status">
      {state.offline ? `Offline: the summary needs the server.${asOf}` : `Could not refresh the summary (${state.error}).${asOf}`}
    </p>
  );
}

export function NowCard({ state }: { state: SummaryState }) {
  const now = useClock(1000);
  const s = state.summary;
  return (
    <section class="card now" aria-label="Now" data-testid="now-card" data-as-of={s?.asOf ?? ''}>
      <h3>Now</h3>
      <StaleNote state={state} />
      {!s ? (
        !state.error && <p class="hint">Loading…</p>
      ) : (
        <NowBody s={s} now={now} />
      )}
    </section>
  );
}

function NowBody({ s, now }: { s: Summary; now: number }) {
  const today = s.days.at(-1);
  const feed = s.latest.feed_log;
  const sides = feed && feed.method === 'breast' ? feedSides(feed) : '';
  return (
    <dl class="facts">
      <dt>Last feed</dt>
      <dd data-testid="now-last-feed">
        {feed ? (
          <>
            <span data-testid="now-last-feed-what">{feedWhat(feed)}</span>
            {sides && (
              <>
                {' · '}
                <span data-testid="now-last-feed-side">{sides}</span>
              </>
            )}
            {' · at '}
            <time dateTime={feed.startedAt}>{dayTime(feed.startedAt)}</time>
            {' · '}
            <span data-testid="now-last-feed-ago">{sinceText(now - Date.parse(feed.startedAt))} ago</span>
          </>
        ) : (
          'none yet'
        )}
      </dd>
      {today && (
        <>
          <dt>Feeds today</dt>
          <dd data-testid="now-feeds">
            <span data-testid="now-feeds-count">{today.feeds.count}</span>
            {' · bottles '}
            <span data-testid="now-bottle-ml">{today.feeds.bottleMl} ml</span>
            {' · breast '}
            <span data-testid="now-breast-min">{hours(today.feeds.breastMinutes)}</span>
          </dd>
          <dt>Sleep today</dt>
          <dd data-testid="now-sleep">
            <span data-testid="now-sleep-minutes">{hours(today.sleep.minutes)}</span>
            {today.sleep.count > 0 && ` · ${today.sleep.count} ${today.sleep.count === 1 ? 'sleep' : 'sleeps'}, longest ${hours(today.sleep.longestMinutes)}`}
          </dd>
          <dt>Nappies today</dt>
          <dd data-testid="now-nappies">
            <span data-testid="now-nappies-count">{today.nappies.count}</span>
            {' · wet '}
            <span data-testid="now-nappies-wet">{today.nappies.wet}</span>
            {' · dirty '}
            <span data-testid="now-nappies-dirty">{today.nappies.dirty}</span>
          </dd>
        </>
      )}
      {s.running.length > 0 && (
        <>
          <dt>Timers</dt>
          <dd>
            <ul class="plain" data-testid="now-running">
              {s.running.map((r) => (
                <li key={r.entry.id} data-entity={r.entity}>
                  {r.entity === 'activity_log' ? (ACTIVITY_LABEL[r.entry.type] ?? 'Activity') : TIMER_WORD[r.entity]} {r.entry.timerState} since{' '}
                  <time dateTime={r.entry.startedAt}>{dayTime(r.entry.startedAt)}</time>
                </li>
              ))}
            </ul>
          </dd>
        </>
      )}
      {s.medications.length > 0 && (
        <>
          <dt>Medicines</dt>
          <dd>
            <ul class="plain" data-testid="now-medications">
              {s.medications.map((m) => {
                const next = m.nextAllowedAt;
                return (
                  <li key={m.name} data-testid="now-medication" data-name={m.name}>
                    <span class="what">
                      {m.name}:{' '}
                      {next === null ? (
                        <>
                          last at <time dateTime={m.lastGivenAt}>{dayTime(m.lastGivenAt)}</time>
                        </>
                      ) : Date.parse(next) <= now ? (
                        <span data-testid="now-medication-next">now</span>
                      ) : (
                        <>
                          next at{' '}
                          <time dateTime={next} data-testid="now-medication-next">
                            {dayTime(next)}
                          </time>
                        </>
                      )}
                    </span>
                    <span class="hint">
                      {' · '}
                      {m.dosesLast24h} in 24 h{m.maxDosesPer24h != null ? ` (at most ${m.maxDosesPer24h})` : ''}
                    </span>
                  </li>
                );
              })}
            </ul>
          </dd>
        </>
      )}
    </dl>
  );
}

const MEASURES = [
  ['weight', 'Weight'],
  ['length', 'Length'],
  ['headCircumference', 'Head'],
] as const;

const percentileText = (p: number) => p.toFixed(1);
const zText = (z: number) => (z < 0 ? `−${Math.abs(z).toFixed(2)}` : z.toFixed(2));

export function GrowthCard({ state }: { state: SummaryState }) {
  const g = state.summary?.growth;
  if (!g) return null;
  const any = MEASURES.some(([k]) => g[k]);
  const noPercentile = MEASURES.some(([k]) => g[k] && g[k]!.percentile === null);
  return (
    <section class="card growth" aria-label="Growth" data-testid="growth-card">
      <h3>Growth</h3>
      {!any && <p class="hint">No measurements yet.</p>}
      {any && (
        <dl class="facts">
          {MEASURES.map(([k, label]) => {
            const m: GrowthMeasurement | null = g[k];
            if (!m) return null;
            const id = k === 'headCircumference' ? 'head' : k;
            return (
              <Fragment key={k}>
                <dt>{label}</dt>
                <dd data-testid={`growth-${id}`}>
                  <span data-testid={`growth-${id}-value`}>
                    {m.value} {m.unit}
                  </span>
                  {m.percentile !== null && (
                    <>
                      {' · percentile '}
                      <span data-testid={`growth-${id}-percentile`}>{percentileText(m.percentile)}</span>
                    </>
                  )}
                  {m.z !== null && (
                    <>
                      {' · z '}
                      <span data-testid={`growth-${id}-z`}>{zText(m.z)}</span>
                    </>
                  )}
                  <span class="hint">
                    {' · '}
                    <time dateTime={m.measuredAt}>{dayTime(m.measuredAt)}</time>
                    {m.ageDays !== null && `, ${m.ageDays} days old`}
                  </span>
                </dd>
              </Fragment>
            );
          })}
        </dl>
      )}
      {noPercentile && <p class="hint">Percentiles (WHO) need the baby's birth date and sex (female or male), up to age 5.</p>}
    </section>
  );
}
