import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { Store, IndexedDBStorage, GENDERS, type Baby, type Gender, type RejectedEvent, type AnyEntry, type FeedLog, type NappyLog } from '@babysync/client';
import { api, decodeToken, inviteLink, inviteToken, loadSession, saveSession, type Caregiver, type Invite, type Session } from './session.ts';
import { LOG_KINDS, describe, entityLabel, isActiveTimer, isToday, time, type Item } from './format.ts';
import { Timers } from './timers.tsx';
import { MoreLog } from './more.tsx';
import { GrowthCard, NowCard, useSummary } from './summary.tsx';
import { ExportPanel, ImportForm } from './transfer.tsx';
import './style.css';

// ---------- routing (in the hash, so any static server works) ----------

type Route = { page: 'babies' } | { page: 'baby'; id: string } | { page: 'people'; id: string } | { page: 'invite'; token: string };

function parseHash(): Route {
  const h = location.hash.replace(/^#/, '');
  let m = /^\/baby\/([^/]+)\/people$/.exec(h);
  if (m) return { page: 'people', id: m[1]! };
  m = /^\/baby\/([^/]+)$/.exec(h);
  if (m) return { page: 'baby', id: m[1]! };
  m = /^\/invite\/(.+)$/.exec(h);
  if (m) return { page: 'invite', token: decodeURIComponent(m[1]!) };
  return { page: 'babies' };
}

function useRoute(): Route {
  const [route, setRoute] = useState(parseHash);
  useEffect(() => {
    const f = () => setRoute(parseHash());
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return route;
}

const go = (hash: string) => (location.hash = hash);

// ---------- the store and its sync state ----------

interface SyncState {
  online: boolean;
  live: string;
  lastSynced: string | null;
  error: string | null;
  conflicts: RejectedEvent[];
}

function useStore(session: Session) {
  const [store, setStore] = useState<Store | null>(null);
  const [, setTick] = useState(0);
  const [sync, setSync] = useState<SyncState>({
    online: navigator.onLine,
    live: 'connecting',
    lastSynced: localStorage.getItem(`babysync.lastSynced.${session.userId}`),
    error: null,
    conflicts: [],
  });

  useEffect(() => {
    let closed = false;
    let opened: Store | undefined;
    const patch = (p: Partial<SyncState>) => setSync((s) => ({ ...s, ...p }));
    const synced = () => {
      const at = new Date().toISOString();
      localStorage.setItem(`babysync.lastSynced.${session.userId}`, at);
      patch({ lastSynced: at, error: null });
    };
    const onOnline = () => {
      patch({ online: true });
      opened?.sync().then(synced, () => {});
    };
    const onOffline = () => patch({ online: false });
    addEventListener('online', onOnline);
    addEventListener('offline', onOffline);
    void Store.open({
      baseUrl: session.baseUrl,
      userId: session.userId,
      getToken: () => session.token,
      storage: new IndexedDBStorage('babysync-web'),
      retry: { maxAttempts: 3, maxDelayMs: 5000 },
    }).then((s) => {
      if (closed) return void s.close();
      opened = s;
      s.subscribe((e) => {
        if (e.source !== 'local') synced();
        setTick((t) => t + 1);
      });
      s.on('pushed', synced);
      s.on('rejected', (e) => setSync((st) => ({ ...st, conflicts: [...st.conflicts, e] })));
      s.on('syncError', (err: unknown) =>
        patch({ error: Store.isNetworkError(err) ? null : err instanceof Error ? err.message : String(err), online: navigator.onLine && !Store.isNetworkError(err) }),
      );
      s.on('live', (e) => patch({ live: e.state, ...(e.state === 'open' ? { online: true } : {}) }));
      setStore(s);
      s.startLive({ pollIntervalMs: 15_000, reconnectMaxMs: 3_000 });
      s.sync().then(synced, () => {});
    });
    return () => {
      closed = true;
      removeEventListener('online', onOnline);
      removeEventListener('offline', onOffline);
      void opened?.close();
    };
  }, [session]);

  const dismissConflicts = () => setSync((s) => ({ ...s, conflicts: [] }));
  return { store, sync, dismissConflicts };
}

function SyncBar({ store, sync, dismiss }: { store: Store; sync: SyncState; dismiss: () => void }) {
  const pending = store.pendingMutations.length;
  const [open, setOpen] = useState(false);
  return (
    <section class="syncbar" aria-label="Sync state" role="status">
      <span data-testid="connection" class={sync.online ? 'ok' : 'off'}>
        {sync.online ? (sync.live === 'open' ? 'Online · live' : 'Online') : 'Offline'}
      </span>
      <span data-testid="pending">{pending === 0 ? 'All saved' : `${pending} pending`}</span>
      <span data-testid="last-synced">Last synced {sync.lastSynced ? time(sync.lastSynced) : 'never'}</span>
      {sync.conflicts.length > 0 && (
        <button type="button" class="warn" onClick={() => setOpen(!open)} aria-expanded={open}>
          {sync.conflicts.length} to review
        </button>
      )}
      {sync.error && <span class="off">Sync error: {sync.error}</span>}
      {open && sync.conflicts.length > 0 && (
        <div class="conflicts">
          <ul>
            {sync.conflicts.map((c) => (
              <li key={c.mutation.id}>
                {c.code === 'conflict'
                  ? `Someone else changed this ${entityLabel[c.mutation.entity]} first; showing their version.`
                  : `A ${entityLabel[c.mutation.entity]} ${c.mutation.op} was not saved (${c.code}${c.message ? `: ${c.message}` : ''}).`}
              </li>
            ))}
          </ul>
          <button type="button" onClick={() => (dismiss(), setOpen(false))}>
            Dismiss
          </button>
        </div>
      )}
    </section>
  );
}

// ---------- sign in ----------

function SignIn({ onSignIn }: { onSignIn: (s: Session) => void }) {
  const [token, setToken] = useState('');
  const [baseUrl, setBaseUrl] = useState(location.origin);
  const [error, setError] = useState<string | null>(null);
  const submit = (e: Event) => {
    e.preventDefault();
    try {
      const { sub, name } = decodeToken(token);
      onSignIn({ token: token.trim(), userId: sub, name, baseUrl: baseUrl.replace(/\/+$/, '') });
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <main>
      <h1>babysync</h1>
      <form onSubmit={submit} class="card">
        <h2>Sign in</h2>
        <label for="token">Access token</label>
        <textarea id="token" rows={4} value={token} onInput={(e) => setToken(e.currentTarget.value)} required placeholder="eyJ…" />
        <p class="hint">
          Paste a token from your sign-in provider, or make one with <code>babysync token --sub you --name You</code>.
        </p>
        <label for="server">Server</label>
        <input id="server" type="url" value={baseUrl} onInput={(e) => setBaseUrl(e.currentTarget.value)} required />
        {error && <p role="alert" class="off">{error}</p>}
        <button type="submit">Sign in</button>
      </form>
    </main>
  );
}

// ---------- babies ----------

function Babies({ session, store }: { session: Session; store: Store }) {
  const babies = store.babies().filter((b) => !b.archivedAt);
  const [name, setName] = useState('');
  const [birthDate, setBirthDate] = useState('');
  const [gender, setGender] = useState<Gender | ''>('');
  const [invite, setInvite] = useState('');
  const [msg, setMsg] = useState<string | null>(null);
  const create = async (e: Event) => {
    e.preventDefault();
    setMsg(null);
    try {
      const baby = await api<Baby>(session, 'POST', '/api/babies', {
        id: crypto.randomUUID(),
        name: name.trim(),
        ...(birthDate ? { birthDate } : {}),
        ...(gender ? { gender } : {}),
      });
      setName('');
      setBirthDate('');
      setGender('');
      await store.sync().catch(() => {});
      go(`/baby/${baby.id}`);
    } catch (err) {
      setMsg(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <main>
      <h2>Babies</h2>
      {babies.length === 0 ? <p>No babies yet. Add one, or accept an invite.</p> : null}
      <ul class="babies">
        {babies.map((b) => (
          <li key={b.id}>
            <a href={`#/baby/${b.id}`}>{b.name}</a> <span class="hint">({b.accessLevel})</span>
          </li>
        ))}
      </ul>
      <form onSubmit={create} class="card">
        <label for="baby-name">New baby's name</label>
        <input id="baby-name" value={name} onInput={(e) => setName(e.currentTarget.value)} required maxLength={100} />
        <div class="row">
          <label for="baby-birth">Birth date</label>
          <input id="baby-birth" type="date" value={birthDate} max={new Date().toISOString().slice(0, 10)} onInput={(e) => setBirthDate(e.currentTarget.value)} />
        </div>
        <div class="row">
          <label for="baby-gender">Sex</label>
          <select id="baby-gender" value={gender} onChange={(e) => setGender(e.currentTarget.value as Gender | '')}>
            <option value="">not said</option>
            {GENDERS.map((g) => (
              <option value={g} key={g}>
                {g}
              </option>
            ))}
          </select>
        </div>
        <p class="hint">The birth date and sex (female or male) give growth percentiles (WHO).</p>
        <button type="submit">Add baby</button>
      </form>
      <form
        class="card"
        onSubmit={(e) => {
          e.preventDefault();
          go(`/invite/${encodeURIComponent(inviteToken(invite))}`);
        }}
      >
        <label for="invite-code">Invite link or code</label>
        <input id="invite-code" value={invite} onInput={(e) => setInvite(e.currentTarget.value)} required />
        <button type="submit">Open invite</button>
      </form>
      <ImportForm store={store} onImported={(babyId) => go(`/baby/${babyId}`)} />
      {msg && <p role="alert" class="off">{msg}</p>}
    </main>
  );
}

function AcceptInvite({ session, store, token }: { session: Session; store: Store; token: string }) {
  const [msg, setMsg] = useState<string | null>(null);
  const accept = async () => {
    try {
      const r = await api<{ babyId: string; accessLevel: string }>(session, 'POST', '/api/invites/accept', { token });
      await store.sync().catch(() => {});
      go(`/baby/${r.babyId}`);
    } catch (err) {
      setMsg(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <main>
      <div class="card">
        <h2>Invite</h2>
        <p>You have been invited to help look after a baby.</p>
        <button type="button" onClick={accept}>
          Accept invite
        </button>{' '}
        <a href="#/">Not now</a>
        {msg && <p role="alert" class="off">{msg}</p>}
      </div>
    </main>
  );
}

// ---------- a baby's day ----------

/** Shown whatever its day: a timer still going, or a sleep (not a timer) not yet ended. */
const isOpen = (it: Item) =>
  ('timerState' in it.e && isActiveTimer(it.e)) || (it.entity === 'sleep_log' && !it.e.timerState && !it.e.endedAt);

function BabyDay({ store, id }: { store: Store; id: string }) {
  const baby = store.babies().find((b) => b.id === id);
  const [amount, setAmount] = useState('120');
  const [side, setSide] = useState<'left' | 'right'>('left');
  const [minutes, setMinutes] = useState('15');
  const [editing, setEditing] = useState<string | null>(null);
  const summary = useSummary(store, baby ? id : null);

  if (!baby) {
    return (
      <main>
        <p role="alert" data-testid="no-access">
          This baby is not (or no longer) shared with you.
        </p>
        <a href="#/">Back to babies</a>
      </main>
    );
  }
  const canEdit = baby.accessLevel !== 'viewer';
  const items: Item[] = LOG_KINDS.flatMap((k) => store.list(k, { babyId: id }).map((e) => ({ entity: k, e }) as Item))
    .filter((it) => isToday(it.e.startedAt) || isOpen(it))
    .sort((a, b) => (a.e.startedAt < b.e.startedAt ? 1 : -1));
  // A sleep logged without the timer (by an older app) that has not ended yet.
  const openSleep = store.list('sleep_log', { babyId: id }).find((s) => !s.timerState && !s.endedAt);
  const now = () => new Date().toISOString();

  const logBottle = () => store.create('feed_log', { babyId: id, method: 'bottle', startedAt: now(), amountMl: Number(amount) });
  const logBreast = () => {
    const end = new Date();
    const start = new Date(end.getTime() - Number(minutes) * 60_000);
    return store.create('feed_log', { babyId: id, method: 'breast', startedAt: start.toISOString(), endedAt: end.toISOString(), durationMinutes: Number(minutes), endSide: side });
  };
  const endSleep = () => {
    if (!openSleep) return;
    const end = new Date();
    const mins = Math.max(0, Math.round((end.getTime() - new Date(openSleep.startedAt).getTime()) / 60_000));
    return store.update('sleep_log', openSleep.id, { endedAt: end.toISOString(), durationMinutes: mins });
  };
  const logNappy = (type: 'wee' | 'poo' | 'mixed' | 'dry') => store.create('nappy_log', { babyId: id, startedAt: now(), type });

  return (
    <main>
      <h2>{baby.name}</h2>
      <nav class="row">
        <a href="#/">All babies</a>
        <a href={`#/baby/${id}/people`}>Caregivers and invites</a>
      </nav>
      <NowCard state={summary} />
      <Timers store={store} babyId={id} canEdit={canEdit} />
      {canEdit && (
        <section class="card log" aria-label="Log">
          <div class="row">
            <label for="bottle-ml">Bottle (ml)</label>
            <input id="bottle-ml" type="number" inputMode="numeric" min={0} max={2000} value={amount} onInput={(e) => setAmount(e.currentTarget.value)} />
            <button type="button" onClick={logBottle}>
              Log bottle
            </button>
          </div>
          <div class="row">
            <label for="breast-side">Breast side</label>
            <select id="breast-side" value={side} onChange={(e) => setSide(e.currentTarget.value as 'left' | 'right')}>
              <option value="left">left</option>
              <option value="right">right</option>
            </select>
            <label for="breast-min">Minutes</label>
            <input id="breast-min" type="number" inputMode="numeric" min={0} max={1440} value={minutes} onInput={(e) => setMinutes(e.currentTarget.value)} />
            <button type="button" onClick={logBreast}>
              Log breast feed
            </button>
          </div>
          {openSleep && (
            <div class="row">
              <button type="button" onClick={endSleep}>
                End sleep (since {time(openSleep.startedAt)})
              </button>
            </div>
          )}
          <div class="row" role="group" aria-labelledby="nappy-label">
            <span id="nappy-label" class="label">Nappy</span>
            {(['wee', 'poo', 'mixed', 'dry'] as const).map((t) => (
              <button type="button" key={t} onClick={() => logNappy(t)} aria-label={`Log ${t} nappy`}>
                {t}
              </button>
            ))}
          </div>
        </section>
      )}
      {canEdit && <MoreLog store={store} babyId={id} />}
      <GrowthCard state={summary} />
      <h3>Today</h3>
      {items.length === 0 && <p>Nothing logged today.</p>}
      <ol class="timeline" aria-label="Today's log">
        {items.map((it) =>
          editing === it.e.id ? (
            <li key={it.e.id}>
              <EditEntry store={store} item={it} done={() => setEditing(null)} />
            </li>
          ) : (
            <li key={it.e.id} data-entity={it.entity} data-entry-id={it.e.id}>
              <time dateTime={it.e.startedAt}>{time(it.e.startedAt)}</time> <span class="what">{describe(it)}</span>
              {it.e.notes ? <span class="hint"> · {it.e.notes}</span> : null}
              {it.e.version === null && <span class="hint"> · not synced yet</span>}
              {canEdit && (
                <span class="actions">
                  <button type="button" aria-label={`Edit ${describe(it)} at ${time(it.e.startedAt)}`} onClick={() => setEditing(it.e.id)}>
                    Edit
                  </button>
                  <button
                    type="button"
                    aria-label={`Delete ${describe(it)} at ${time(it.e.startedAt)}`}
                    onClick={() => confirm(`Delete ${describe(it)}?`) && store.remove(it.entity, it.e.id)}
                  >
                    Delete
                  </button>
                </span>
              )}
            </li>
          ),
        )}
      </ol>
      <ExportPanel store={store} baby={baby} />
    </main>
  );
}

/** Sets the hours and minutes of an ISO time from an `<input type=time>` value, keeping its day. */
function withTime(iso: string, hhmm: string): string {
  const d = new Date(iso);
  const [h, m] = hhmm.split(':').map(Number);
  d.setHours(h ?? 0, m ?? 0);
  return d.toISOString();
}
const hhmm = (iso: string) => {
  const d = new Date(iso);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
};

function EditEntry({ store, item, done }: { store: Store; item: Item; done: () => void }) {
  const e = item.e as AnyEntry & Partial<Pick<FeedLog, 'amountMl' | 'durationMinutes' | 'endSide'> & Pick<NappyLog, 'type'>>;
  // A timer's end and duration follow its events: only its time and notes are edited here.
  const breast = item.entity === 'feed_log' && item.e.method === 'breast' && !item.e.timerState;
  const [at, setAt] = useState(hhmm(e.startedAt));
  const [amount, setAmount] = useState(String(e.amountMl ?? ''));
  const [minutes, setMinutes] = useState(String(e.durationMinutes ?? ''));
  const [side, setSide] = useState(e.endSide ?? 'left');
  const [type, setType] = useState(e.type ?? 'wee');
  const [notes, setNotes] = useState(e.notes ?? '');
  const num = (s: string) => (s.trim() === '' ? null : Number(s));
  const save = async (ev: Event) => {
    ev.preventDefault();
    const common = { startedAt: withTime(e.startedAt, at), notes: notes.trim() || null };
    if (item.entity === 'feed_log') {
      await store.update('feed_log', e.id, {
        ...common,
        ...(item.e.method === 'bottle' ? { amountMl: num(amount) } : breast ? { durationMinutes: num(minutes), endSide: side } : {}),
      });
    } else if (item.entity === 'nappy_log') {
      await store.update('nappy_log', e.id, { ...common, type: type as NappyLog['type'] });
    } else {
      await store.update(item.entity, e.id, common);
    }
    done();
  };
  return (
    <form class="card edit" onSubmit={save} aria-label="Edit entry">
      <label for="edit-time">Time</label>
      <input id="edit-time" type="time" value={at} onInput={(x) => setAt(x.currentTarget.value)} required />
      {item.entity === 'feed_log' && item.e.method === 'bottle' && (
        <>
          <label for="edit-ml">Amount (ml)</label>
          <input id="edit-ml" type="number" min={0} max={2000} value={amount} onInput={(x) => setAmount(x.currentTarget.value)} />
        </>
      )}
      {breast && (
        <>
          <label for="edit-side">Side</label>
          <select id="edit-side" value={side} onChange={(x) => setSide(x.currentTarget.value as 'left' | 'right')}>
            <option value="left">left</option>
            <option value="right">right</option>
          </select>
          <label for="edit-min">Minutes</label>
          <input id="edit-min" type="number" min={0} max={1440} value={minutes} onInput={(x) => setMinutes(x.currentTarget.value)} />
        </>
      )}
      {item.entity === 'nappy_log' && (
        <>
          <label for="edit-type">Nappy type</label>
          <select id="edit-type" value={type} onChange={(x) => setType(x.currentTarget.value as typeof type)}>
            {['wee', 'poo', 'mixed', 'dry', 'clean'].map((t) => (
              <option value={t} key={t}>
                {t}
              </option>
            ))}
          </select>
        </>
      )}
      <label for="edit-notes">Notes</label>
      <input id="edit-notes" value={notes} maxLength={2000} onInput={(x) => setNotes(x.currentTarget.value)} />
      <div class="row">
        <button type="submit">Save</button>
        <button type="button" onClick={done}>
          Cancel
        </button>
      </div>
    </form>
  );
}

// ---------- caregivers and invites ----------

function People({ session, store, id }: { session: Session; store: Store; id: string }) {
  const baby = store.babies().find((b) => b.id === id);
  const [people, setPeople] = useState<Caregiver[] | null>(null);
  const [level, setLevel] = useState('editor');
  const [link, setLink] = useState<string | null>(null);
  const [msg, setMsg] = useState<string | null>(null);
  const fail = (err: unknown) => setMsg(err instanceof Error ? err.message : String(err));
  const load = () =>
    api<{ caregivers: Caregiver[] }>(session, 'GET', `/api/babies/${id}/caregivers`).then((r) => setPeople(r.caregivers), fail);
  useEffect(() => void load(), [id]);
  if (!baby) return <BabyDay store={store} id={id} />;
  const owner = baby.accessLevel === 'owner';
  const createInvite = async () => {
    setMsg(null);
    try {
      const inv = await api<Invite>(session, 'POST', `/api/babies/${id}/invites`, { accessLevel: level });
      setLink(inviteLink(inv.token));
    } catch (err) {
      fail(err);
    }
  };
  const remove = async (c: Caregiver) => {
    if (!confirm(`Remove ${c.displayName ?? c.userId}?`)) return;
    try {
      await api(session, 'DELETE', `/api/babies/${id}/caregivers/${encodeURIComponent(c.userId)}`);
      if (c.userId === session.userId) {
        await store.sync().catch(() => {});
        go('/');
      } else await load();
    } catch (err) {
      fail(err);
    }
  };
  return (
    <main>
      <h2>{baby.name}: caregivers</h2>
      <nav class="row">
        <a href={`#/baby/${id}`}>Back to today</a>
      </nav>
      {people === null ? (
        <p>Loading…</p>
      ) : (
        <ul class="people">
          {people.map((c) => (
            <li key={c.userId}>
              {c.displayName ?? c.userId} <span class="hint">({c.accessLevel})</span>
              {(owner || c.userId === session.userId) && (
                <button type="button" aria-label={c.userId === session.userId ? 'Leave' : `Remove ${c.displayName ?? c.userId}`} onClick={() => remove(c)}>
                  {c.userId === session.userId ? 'Leave' : 'Remove'}
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {owner && (
        <section class="card" aria-label="Invite">
          <label for="invite-level">Invite as</label>
          <select id="invite-level" value={level} onChange={(e) => setLevel(e.currentTarget.value)}>
            <option value="editor">editor (can log)</option>
            <option value="viewer">viewer (read only)</option>
            <option value="owner">owner (can share)</option>
          </select>
          <button type="button" onClick={createInvite}>
            Create invite link
          </button>
          {link && (
            <div class="row">
              <label for="invite-link">Invite link (one use, 3 days)</label>
              <input id="invite-link" readOnly value={link} onFocus={(e) => e.currentTarget.select()} />
              <button
                type="button"
                onClick={() => navigator.clipboard?.writeText(link).then(() => setMsg('Copied.'), () => setMsg('Select the link and copy it.'))}
              >
                Copy link
              </button>
            </div>
          )}
        </section>
      )}
      {msg && <p role="alert">{msg}</p>}
    </main>
  );
}

// ---------- the app ----------

function SignedIn({ session, signOut }: { session: Session; signOut: () => void }) {
  const { store, sync, dismissConflicts } = useStore(session);
  const route = useRoute();
  if (!store) return <p>Opening…</p>;
  return (
    <>
      <header>
        <a href="#/" class="brand">
          babysync
        </a>
        <span class="hint">{session.name ?? session.userId}</span>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <SyncBar store={store} sync={sync} dismiss={dismissConflicts} />
      {route.page === 'babies' && <Babies session={session} store={store} />}
      {route.page === 'baby' && <BabyDay store={store} id={route.id} />}
      {route.page === 'people' && <People session={session} store={store} id={route.id} />}
      {route.page === 'invite' && <AcceptInvite session={session} store={store} token={route.token} />}
    </>
  );
}

function App() {
  const [session, setSession] = useState(loadSession);
  const signIn = useMemo(
    () => (s: Session) => {
      saveSession(s);
      setSession(s);
    },
    [],
  );
  if (!session) return <SignIn onSignIn={signIn} />;
  return (
    <SignedIn
      session={session}
      signOut={() => {
        saveSession(null);
        setSession(null);
      }}
    />
  );
}

render(<App />, document.getElementById('app')!);

if ('serviceWorker' in navigator && import.meta.env.PROD) {
  void navigator.serviceWorker.register('./sw.js');
}
