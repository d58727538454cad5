// Logging the less frequent kinds: pumping, growth, medication, temperature,
// solids and activities. One form at a time, picked from a list; each entry
// is logged now (an activity with a duration ends now).

import { useState } from 'preact/hooks';
import {
  ACTIVITY_TYPES,
  ALLERGENS,
  DOSE_UNITS,
  REACTIONS,
  TEMPERATURE_SITES,
  type ActivityType,
  type Allergen,
  type DoseUnit,
  type Reaction,
  type Store,
  type TemperatureSite,
} from '@babysync/client';
import { ACTIVITY_LABEL, ALLERGEN_LABEL } from './format.ts';

const FORMS = {
  pumping_log: 'Pumping',
  growth_log: 'Growth',
  medication_log: 'Medication',
  temperature_log: 'Temperature',
  solids_log: 'Solids',
  activity_log: 'Activity',
} as const;
type MoreKind = keyof typeof FORMS;

/** An input's number, or null when empty. */
const num = (s: string): number | null => (s.trim() === '' ? null : Number(s));
const nowIso = () => new Date().toISOString();

interface FormProps {
  store: Store;
  babyId: string;
  done: (msg: string) => void;
  fail: (msg: string) => void;
}

export function MoreLog({ store, babyId }: { store: Store; babyId: string }) {
  const [kind, setKind] = useState<MoreKind>('pumping_log');
  const [msg, setMsg] = useState<{ text: string; error: boolean } | null>(null);
  const props: FormProps = {
    store,
    babyId,
    done: (text) => setMsg({ text, error: false }),
    fail: (text) => setMsg({ text, error: true }),
  };
  return (
    <section class="card more" aria-label="Log more">
      <div class="row">
        <label for="more-kind">More to log</label>
        <select
          id="more-kind"
          value={kind}
          onChange={(e) => {
            setKind(e.currentTarget.value as MoreKind);
            setMsg(null);
          }}
        >
          {Object.entries(FORMS).map(([k, label]) => (
            <option value={k} key={k}>
              {label}
            </option>
          ))}
        </select>
      </div>
      {kind === 'pumping_log' && <PumpingForm {...props} />}
      {kind === 'growth_log' && <GrowthForm {...props} />}
      {kind === 'medication_log' && <MedicationForm {...props} />}
      {kind === 'temperature_log' && <TemperatureForm {...props} />}
      {kind === 'solids_log' && <SolidsForm {...props} />}
      {kind === 'activity_log' && <ActivityForm {...props} />}
      {msg && (
        <p role={msg.error ? 'alert' : 'status'} class={msg.error ? 'off' : 'hint'}>
          {msg.text}
        </p>
      )}
    </section>
  );
}

function PumpingForm({ store, babyId, done, fail }: FormProps) {
  const [left, setLeft] = useState('');
  const [right, setRight] = useState('');
  const submit = async (ev: Event) => {
    ev.preventDefault();
    const leftMl = num(left);
    const rightMl = num(right);
    if (leftMl === null && rightMl === null) return fail('Enter the millilitres of at least one side.');
    // totalMl is left to the server (left + right).
    await store.create('pumping_log', { babyId, startedAt: nowIso(), leftMl, rightMl });
    setLeft('');
    setRight('');
    done('Pumping logged.');
  };
  return (
    <form class="more-form" aria-label="Log pumping" onSubmit={submit}>
      <div class="row">
        <label for="pump-left">Left (ml)</label>
        <input id="pump-left" type="number" inputMode="numeric" min={0} max={1000} step={1} value={left} onInput={(e) => setLeft(e.currentTarget.value)} />
        <label for="pump-right">Right (ml)</label>
        <input id="pump-right" type="number" inputMode="numeric" min={0} max={1000} step={1} value={right} onInput={(e) => setRight(e.currentTarget.value)} />
      </div>
      <button type="submit">Log pumping</button>
    </form>
  );
}

function GrowthForm({ store, babyId, done, fail }: FormProps) {
  const [weight, setWeight] = useState('');
  const [length, setLength] = useState('');
  const [head, setHead] = useState('');
  const submit = async (ev: Event) => {
    ev.preventDefault();
    const weightGrams = num(weight);
    const lengthMm = num(length);
    const headCircumferenceMm = num(head);
    if (weightGrams === null && lengthMm === null && headCircumferenceMm === null) return fail('Enter a weight, a length or a head circumference.');
    await store.create('growth_log', { babyId, startedAt: nowIso(), weightGrams, lengthMm, headCircumferenceMm });
    setWeight('');
    setLength('');
    setHead('');
    done('Growth logged.');
  };
  return (
    <form class="more-form" aria-label="Log growth" onSubmit={submit}>
      <div class="row">
        <label for="growth-weight">Weight (g)</label>
        <input id="growth-weight" type="number" inputMode="numeric" min={300} max={40000} step={1} value={weight} onInput={(e) => setWeight(e.currentTarget.value)} />
      </div>
      <div class="row">
        <label for="growth-length">Length (mm)</label>
        <input id="growth-length" type="number" inputMode="numeric" min={300} max={1300} step={1} value={length} onInput={(e) => setLength(e.currentTarget.value)} />
      </div>
      <div class="row">
        <label for="growth-head">Head circumference (mm)</label>
        <input id="growth-head" type="number" inputMode="numeric" min={200} max={650} step={1} value={head} onInput={(e) => setHead(e.currentTarget.value)} />
      </div>
      <button type="submit">Log growth</button>
    </form>
  );
}

function MedicationForm({ store, babyId, done }: FormProps) {
  const [name, setName] = useState('');
  const [dose, setDose] = useState('');
  const [unit, setUnit] = useState<DoseUnit>('ml');
  const [interval, setMinInterval] = useState('');
  const [max, setMax] = useState('');
  const submit = async (ev: Event) => {
    ev.preventDefault();
    const d = num(dose);
    const hours = num(interval);
    await store.create('medication_log', {
      babyId,
      startedAt: nowIso(),
      name: name.trim(),
      // the unit goes with a dose, and only with one
      ...(d !== null ? { dose: Math.round(d * 1000) / 1000, doseUnit: unit } : {}),
      minIntervalMinutes: hours === null ? null : Math.round(hours * 60),
      maxDosesPer24h: num(max),
    });
    setName('');
    setDose('');
    setMinInterval('');
    setMax('');
    done('Medication logged.');
  };
  return (
    <form class="more-form" aria-label="Log medication" onSubmit={submit}>
      <div class="row">
        <label for="med-name">Medicine</label>
        <input id="med-name" value={name} required maxLength={100} onInput={(e) => setName(e.currentTarget.value)} />
      </div>
      <div class="row">
        <label for="med-dose">Dose</label>
        <input id="med-dose" type="number" inputMode="decimal" min={0.001} max={10000} step="any" value={dose} onInput={(e) => setDose(e.currentTarget.value)} />
        <label for="med-unit">Unit</label>
        <select id="med-unit" value={unit} onChange={(e) => setUnit(e.currentTarget.value as DoseUnit)}>
          {DOSE_UNITS.map((u) => (
            <option value={u} key={u}>
              {u}
            </option>
          ))}
        </select>
      </div>
      <div class="row">
        <label for="med-interval">Min. interval (hours)</label>
        <input id="med-interval" type="number" inputMode="decimal" min={0} max={168} step="any" value={interval} onInput={(e) => setMinInterval(e.currentTarget.value)} />
      </div>
      <div class="row">
        <label for="med-max">Max doses per 24 h</label>
        <input id="med-max" type="number" inputMode="numeric" min={1} max={24} step={1} value={max} onInput={(e) => setMax(e.currentTarget.value)} />
      </div>
      <button type="submit">Log medication</button>
    </form>
  );
}

function TemperatureForm({ store, babyId, done }: FormProps) {
  const [celsius, setCelsius] = useState('');
  const [site, setSite] = useState<TemperatureSite | ''>('');
  const submit = async (ev: Event) => {
    ev.preventDefault();
    await store.create('temperature_log', { babyId, startedAt: nowIso(), celsius: Math.round(Number(celsius) * 10) / 10, site: site || null });
    setCelsius('');
    done('Temperature logged.');
  };
  return (
    <form class="more-form" aria-label="Log temperature" onSubmit={submit}>
      <div class="row">
        <label for="temp-c">Temperature (°C)</label>
        <input id="temp-c" type="number" inputMode="decimal" min={30} max={45} step={0.1} required value={celsius} onInput={(e) => setCelsius(e.currentTarget.value)} />
        <label for="temp-site">Site</label>
        <select id="temp-site" value={site} onChange={(e) => setSite(e.currentTarget.value as TemperatureSite | '')}>
          <option value="">not said</option>
          {TEMPERATURE_SITES.map((s) => (
            <option value={s} key={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      <button type="submit">Log temperature</button>
    </form>
  );
}

function SolidsForm({ store, babyId, done }: FormProps) {
  const [food, setFood] = useState('');
  const [reaction, setReaction] = useState<Reaction | ''>('');
  const [allergens, setAllergens] = useState<Allergen[]>([]);
  const toggle = (a: Allergen, on: boolean) => setAllergens((list) => (on ? ALLERGENS.filter((x) => x === a || list.includes(x)) : list.filter((x) => x !== a)));
  const submit = async (ev: Event) => {
    ev.preventDefault();
    await store.create('solids_log', { babyId, startedAt: nowIso(), food: food.trim(), reaction: reaction || null, allergens });
    setFood('');
    setReaction('');
    setAllergens([]);
    done('Solids logged.');
  };
  return (
    <form class="more-form" aria-label="Log solids" onSubmit={submit}>
      <div class="row">
        <label for="solids-food">Food</label>
        <input id="solids-food" value={food} required maxLength={100} onInput={(e) => setFood(e.currentTarget.value)} />
        <label for="solids-reaction">Reaction</label>
        <select id="solids-reaction" value={reaction} onChange={(e) => setReaction(e.currentTarget.value as Reaction | '')}>
          <option value="">not said</option>
          {REACTIONS.map((r) => (
            <option value={r} key={r}>
              {r}
            </option>
          ))}
        </select>
      </div>
      <fieldset class="row allergens">
        <legend>Allergens</legend>
        {ALLERGENS.map((a) => (
          <label key={a} class="check">
            <input type="checkbox" checked={allergens.includes(a)} onChange={(e) => toggle(a, e.currentTarget.checked)} /> {ALLERGEN_LABEL[a]}
          </label>
        ))}
      </fieldset>
      <button type="submit">Log solids</button>
    </form>
  );
}

function ActivityForm({ store, babyId, done }: FormProps) {
  const [type, setType] = useState<ActivityType>('tummyTime');
  const [minutes, setMinutes] = useState('');
  const submit = async (ev: Event) => {
    ev.preventDefault();
    const d = num(minutes);
    const end = new Date();
    await store.create('activity_log', {
      babyId,
      type,
      ...(d === null
        ? { startedAt: end.toISOString() }
        : { startedAt: new Date(end.getTime() - d * 60_000).toISOString(), endedAt: end.toISOString(), durationMinutes: d }),
    });
    setMinutes('');
    done('Activity logged.');
  };
  return (
    <form class="more-form" aria-label="Log activity" onSubmit={submit}>
      <div class="row">
        <label for="activity-type">Activity</label>
        <select id="activity-type" value={type} onChange={(e) => setType(e.currentTarget.value as ActivityType)}>
          {ACTIVITY_TYPES.map((t) => (
            <option value={t} key={t}>
              {ACTIVITY_LABEL[t]}
            </option>
          ))}
        </select>
        <label for="activity-min">Duration (min)</label>
        <input id="activity-min" type="number" inputMode="numeric" min={0} max={1440} step={1} value={minutes} onInput={(e) => setMinutes(e.currentTarget.value)} />
      </div>
      <button type="submit">Log activity</button>
    </form>
  );
}
