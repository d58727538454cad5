// Export and import (PROTOCOL.md, "Export and import"): a baby's whole
// record as the JSON export document, or one kind as CSV for a spreadsheet,
// downloaded as a file; and a file input on the babies screen that imports an
// export document (here, or from another babysync server). Both need the
// network.

import { useState } from 'preact/hooks';
import { ENTITIES, Store, type Baby, type EntityName } from '@babysync/client';
import { entityLabel } from './format.ts';

/** Saves `text` as a file: a Blob and a click on an `<a download>`. */
export function download(filename: string, type: string, text: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.rel = 'noopener';
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

const slug = (s: string) =>
  s
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '') || 'baby';

const localDate = () => {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
};

const message = (err: unknown) =>
  Store.isNetworkError(err) ? 'No connection: exporting and importing need the server. Try again when online.' : err instanceof Error ? err.message : String(err);

export function ExportPanel({ store, baby }: { store: Store; baby: Baby }) {
  const [kind, setKind] = useState<EntityName>('feed_log');
  const [busy, setBusy] = useState(false);
  const [msg, setMsg] = useState<{ text: string; error: boolean } | null>(null);
  const run = (f: () => Promise<string>) => async () => {
    setBusy(true);
    setMsg(null);
    try {
      setMsg({ text: await f(), error: false });
    } catch (err) {
      setMsg({ text: message(err), error: true });
    } finally {
      setBusy(false);
    }
  };
  const exportJson = run(async () => {
    const doc = await store.exportBaby(baby.id);
    const name = `babysync-${slug(baby.name)}-${localDate()}.json`;
    download(name, 'application/json', JSON.stringify(doc));
    const n = ENTITIES.reduce((sum, e) => sum + (doc.entries[e]?.length ?? 0), 0);
    return `Exported ${n} entries to ${name}.`;
  });
  const exportCsv = run(async () => {
    const csv = await store.exportBaby(baby.id, { format: 'csv', kind });
    const name = `babysync-${slug(baby.name)}-${kind.replace(/_log$/, '').replace('_', '-')}-${localDate()}.csv`;
    download(name, 'text/csv;charset=utf-8', csv);
    return `Exported ${name}.`;
  });
  return (
    <section class="card transfer" aria-label="Export">
      <h3>Export</h3>
      <p class="hint">Everything about {baby.name} as one file (to keep, or to import on another babysync server), or one kind for a spreadsheet.</p>
      <div class="row">
        <button type="button" data-testid="export-json" onClick={exportJson} disabled={busy}>
          Export JSON
        </button>
      </div>
      <div class="row">
        <label for="export-kind">CSV of</label>
        <select id="export-kind" data-testid="export-kind" value={kind} onChange={(e) => setKind(e.currentTarget.value as EntityName)}>
          {ENTITIES.map((e) => (
            <option value={e} key={e}>
              {e === 'timer_event' ? 'timer actions' : `${entityLabel[e]} entries`}
            </option>
          ))}
        </select>
        <button type="button" data-testid="export-csv" onClick={exportCsv} disabled={busy}>
          Export CSV
        </button>
      </div>
      {msg && (
        <p role={msg.error ? 'alert' : 'status'} class={msg.error ? 'off' : 'hint'} data-testid="export-message">
          {msg.text}
        </p>
      )}
    </section>
  );
}

/** A file input that imports an export document and then opens the baby. */
export function ImportForm({ store, onImported }: { store: Store; onImported: (babyId: string) => void }) {
  const [busy, setBusy] = useState(false);
  const [msg, setMsg] = useState<{ text: string; error: boolean } | null>(null);
  const onFile = async (input: HTMLInputElement) => {
    const file = input.files?.[0];
    if (!file) return;
    setBusy(true);
    setMsg(null);
    try {
      const text = await file.text();
      try {
        const doc = JSON.parse(text) as { format?: unknown };
        if (doc?.format !== 'babysync-export') throw new Error();
      } catch {
        throw new Error(`${file.name} is not a babysync export file.`);
      }
      const r = await store.importBaby(text);
      const count = (m: Partial<Record<string, number>>) => Object.values(m).reduce<number>((s, n) => s + (n ?? 0), 0);
      setMsg({ text: `Imported ${r.baby.name}: ${count(r.imported)} entries added, ${count(r.unchanged)} already here.`, error: false });
      onImported(r.baby.id);
    } catch (err) {
      setMsg({ text: message(err), error: true });
    } finally {
      setBusy(false);
      input.value = '';
    }
  };
  return (
    <section class="card transfer" aria-label="Import">
      <label for="import-file">Import a baby from an export file</label>
      <input
        id="import-file"
        data-testid="import-file"
        type="file"
        accept="application/json,.json"
        disabled={busy}
        onChange={(e) => void onFile(e.currentTarget)}
      />
      <p class="hint">A babysync export (JSON), from this server or another. You become its owner; entries already here are left as they are.</p>
      {busy && <p class="hint">Importing…</p>}
      {msg && (
        <p role={msg.error ? 'alert' : 'status'} class={msg.error ? 'off' : 'hint'} data-testid="import-message">
          {msg.text}
        </p>
      )}
    </section>
  );
}
