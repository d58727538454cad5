// How entries read on screen: times, the words for enum values, and one line
// for each entry of the day's timeline.

import type { ActivityType, Allergen, EntityName, Entry, Segment } from '@babysync/client';

/** Every kind a baby's day shows (all but timer_event, which is part of a timer). */
export const LOG_KINDS = [
  'feed_log',
  'sleep_log',
  'nappy_log',
  'pumping_log',
  'growth_log',
  'medication_log',
  'temperature_log',
  'solids_log',
  'activity_log',
] as const;
export type LogKind = (typeof LOG_KINDS)[number];
export type Item = { [K in LogKind]: { entity: K; e: Entry<K> } }[LogKind];

export const entityLabel: Record<EntityName, string> = {
  feed_log: 'feed',
  sleep_log: 'sleep',
  nappy_log: 'nappy',
  pumping_log: 'pumping',
  growth_log: 'growth',
  medication_log: 'medication',
  temperature_log: 'temperature',
  solids_log: 'solids',
  activity_log: 'activity',
  timer_event: 'timer action',
};

export const ACTIVITY_LABEL: Record<ActivityType, string> = {
  tummyTime: 'Tummy time',
  bath: 'Bath',
  indoorPlay: 'Indoor play',
  outdoorPlay: 'Outdoor play',
  skinToSkin: 'Skin to skin',
  other: 'Other activity',
};

export const ALLERGEN_LABEL: Record<Allergen, string> = {
  milk: 'milk',
  egg: 'egg',
  peanut: 'peanut',
  treeNut: 'tree nut',
  soy: 'soy',
  wheat: 'wheat',
  fish: 'fish',
  shellfish: 'shellfish',
  sesame: 'sesame',
};

/** Hours and minutes, in the device's time zone. */
export const time = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '');
/** Hours, minutes and seconds (timers). */
export const clock = (iso: string) => new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

export const isToday = (iso: string) => new Date(iso).toDateString() === new Date().toDateString();

/** A timer that is still going (running or paused). */
export const isActiveTimer = (e: { timerState?: string | null }) => e.timerState === 'running' || e.timerState === 'paused';

/** The sides of a timer's segments, in order, repeats merged: "left → right". */
export function sidesOf(segments: Segment[] | null | undefined): string {
  const sides: string[] = [];
  for (const s of segments ?? []) if (s.side && sides.at(-1) !== s.side) sides.push(s.side);
  return sides.join(' → ');
}

const n = (x: number | null | undefined) => (x === null || x === undefined ? null : x);

/** One line for the timeline. */
export function describe(it: Item): string {
  switch (it.entity) {
    case 'feed_log': {
      const e = it.e;
      if (e.timerState) {
        const what = e.method === 'bottle' ? 'Bottle feed' : 'Breast feed';
        const sides = sidesOf(e.segments);
        if (e.timerState !== 'stopped') return `${what} ${e.timerState}${sides ? ` (${sides})` : ''}`;
        return e.method === 'bottle'
          ? `Bottle ${e.amountMl ?? '?'} ml, ${e.durationMinutes ?? 0} min`
          : `Breast ${sides ? `${sides} ` : ''}${e.durationMinutes ?? 0} min`;
      }
      return e.method === 'bottle' ? `Bottle ${e.amountMl ?? '?'} ml` : `Breast ${e.endSide ?? ''} ${e.durationMinutes ?? '?'} min`.replace('  ', ' ');
    }
    case 'sleep_log': {
      const e = it.e;
      if (e.timerState === 'running') return 'Sleeping';
      if (e.timerState === 'paused') return 'Sleep paused';
      return e.endedAt ? `Sleep until ${time(e.endedAt)} (${e.durationMinutes ?? '?'} min)` : 'Sleeping';
    }
    case 'nappy_log':
      return `Nappy: ${it.e.type ?? 'unknown'}`;
    case 'pumping_log': {
      const e = it.e;
      if (isActiveTimer(e)) return `Pumping ${e.timerState}`;
      const l = n(e.leftMl);
      const r = n(e.rightMl);
      // totalMl is the server's (left + right); before the first sync, the same sum made here.
      const total = n(e.totalMl) ?? (l !== null || r !== null ? (l ?? 0) + (r ?? 0) : null);
      const sides = [l !== null ? `left ${l} ml` : null, r !== null ? `right ${r} ml` : null].filter(Boolean).join(', ');
      const mins = e.durationMinutes ? `, ${e.durationMinutes} min` : '';
      return `Pumped ${total ?? '?'} ml${sides ? ` (${sides})` : ''}${mins}`;
    }
    case 'growth_log': {
      const e = it.e;
      const parts = [
        e.weightGrams != null ? `weight ${e.weightGrams} g` : null,
        e.lengthMm != null ? `length ${e.lengthMm} mm` : null,
        e.headCircumferenceMm != null ? `head ${e.headCircumferenceMm} mm` : null,
      ].filter(Boolean);
      return `Growth: ${parts.join(', ')}`;
    }
    case 'medication_log': {
      const e = it.e;
      let s = `Medication: ${e.name}`;
      if (e.dose != null) s += ` ${e.dose} ${e.doseUnit ?? ''}`.trimEnd();
      if (e.minIntervalMinutes != null) s += `, at least ${hours(e.minIntervalMinutes)} apart`;
      if (e.maxDosesPer24h != null) s += `, at most ${e.maxDosesPer24h} in 24 h`;
      return s;
    }
    case 'temperature_log': {
      const e = it.e;
      const fever = e.celsius >= 38 ? ' · fever' : '';
      return `Temperature ${e.celsius.toFixed(1)} °C${e.site ? ` (${e.site})` : ''}${fever}`;
    }
    case 'solids_log': {
      const e = it.e;
      const allergens = (e.allergens ?? []).map((a) => ALLERGEN_LABEL[a] ?? a).join(', ');
      return `Solids: ${e.food}${e.reaction ? ` (${e.reaction})` : ''}${allergens ? ` · allergens: ${allergens}` : ''}`;
    }
    case 'activity_log': {
      const e = it.e;
      const what = ACTIVITY_LABEL[e.type] ?? e.type;
      if (isActiveTimer(e)) return `${what} ${e.timerState}`;
      return e.durationMinutes != null ? `${what} ${e.durationMinutes} min` : what;
    }
  }
}

/** 240 → "4 h", 90 → "1 h 30 min", 45 → "45 min". */
export function hours(minutes: number): string {
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return h === 0 ? `${m} min` : m === 0 ? `${h} h` : `${h} h ${m} min`;
}

/** How long ago, for a person: "40 s", "12 min", "2 h 5 min", "3 d 4 h". */
export function sinceText(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return hours(m);
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** A time today as "14:05"; another day with its day: "tomorrow 02:05", "Tue 3 Nov 09:00". */
export function dayTime(iso: string, now = new Date()): string {
  const d = new Date(iso);
  const day = (x: Date) => x.toDateString();
  if (day(d) === day(now)) return time(iso);
  const tomorrow = new Date(now);
  tomorrow.setDate(now.getDate() + 1);
  if (day(d) === day(tomorrow)) return `tomorrow ${time(iso)}`;
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (day(d) === day(yesterday)) return `yesterday ${time(iso)}`;
  return `${d.toLocaleDateString([], { weekday: 'short', day: 'numeric', month: 'short' })} ${time(iso)}`;
}
