//! `POST /api/babies/import` (PROTOCOL.md, "Export and import"): an export
//! document restores its baby under its own ids, in one transaction.
//!
//! A reader on blocking threads and the writer run side by side: the
//! reader reads the document over the body without copying an entry's text
//! (`RawValue`), has two threads check each entry as a push `create` is,
//! and hands the writer batches of [`WRITE_ROWS`] entries of a kind,
//! versioned and written out as the insert's one parameter; the writer
//! inserts those whose ids are new while the next ones are checked. A
//! timer is folded from the file's events for it once they are all read.
//!
//! Memory: the body (at most `IMPORT_BODY_LIMIT_BYTES`, decompressed) is
//! held once, with at most [`READ_AHEAD`] batches waiting, the timers whose
//! events are still to come, and a few words per event and per id.

use std::{
    cmp::min,
    collections::{BTreeMap, HashMap, HashSet},
};

use chrono::{DateTime, NaiveDate, Utc};
use entity::{babies, baby_access, enums::Gender};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    prelude::Uuid,
    sea_query::{Alias, Expr, Query},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, value::RawValue};

use crate::{
    access::{self, Level},
    babies::BabyView,
    db::{Db, begin_write},
    error::ApiError,
    events::{Change, Events},
    kinds::{KINDS, Kind, Record, SERVER_KEYS, fields, timer},
    sync::validate::{Op, RawMutation, Rejection, parse_mutation},
    time,
};

/// Entries written per statement.
const WRITE_ROWS: usize = 1000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Doc<'a> {
    format: String,
    format_version: i64,
    exported_at: String,
    baby: Map<String, Value>,
    #[serde(borrow)]
    entries: Ordered<'a>,
}

/// The document's `entries`, in its order (the first bad entry is the first
/// in the file).
struct Ordered<'a>(Vec<(String, Vec<&'a RawValue>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Ordered<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Ordered<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of kinds, each a list of entries")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<Self::Value, M::Error> {
                let mut out = vec![];
                while let Some((k, v)) = m.next_entry::<String, Entries<'de>>()? {
                    out.push((k, v.0));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// The shortest text an entry can have: its `id` alone takes 45 bytes,
/// and it needs a `babyId` and a `startedAt` too.
const MIN_ENTRY_BYTES: usize = 64;

/// A kind's list of entries, each kept as its text in the body. Anything
/// that cannot be an entry (not an object, or too short to hold its
/// required fields) is refused as it is read: the list costs at most a
/// quarter of the body it lies in, whatever the body holds.
struct Entries<'a>(Vec<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Entries<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of entries")
            }
            fn visit_seq<S: serde::de::SeqAccess<'de>>(
                self,
                mut seq: S,
            ) -> Result<Self::Value, S::Error> {
                let mut out = vec![];
                while let Some(EntryText(raw)) = seq.next_element()? {
                    out.push(raw);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_seq(Visit(std::marker::PhantomData))
    }
}

/// One element of [`Entries`], refused while it is read (so that the
/// error's path names it).
struct EntryText<'a>(&'a RawValue);

impl<'de: 'a, 'a> Deserialize<'de> for EntryText<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(d)?;
        let text = raw.get();
        if !text.starts_with('{') || text.len() < MIN_ENTRY_BYTES {
            return Err(serde::de::Error::custom(
                "must be an entry: an object with at least its id, babyId and startedAt",
            ));
        }
        Ok(EntryText(raw))
    }
}

/// What an import answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Imported {
    baby: BabyView,
    /// Per kind, the entries added.
    #[schema(value_type = Object)]
    imported: BTreeMap<&'static str, u64>,
    /// Per kind, the entries already there (left as they are).
    #[schema(value_type = Object)]
    unchanged: BTreeMap<&'static str, u64>,
}

/// A 400 naming `field` (a path in the document).
fn bad(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_field(field, message)
}

/// A push rejection of entry `i` of `kind` as the import's 400: its
/// `data.<field>` becomes `entries/<kind>/<i>/<field>`.
fn rejected(kind: Kind, i: usize, r: Rejection) -> ApiError {
    let at = format!("entries/{}/{i}", kind.name());
    match r.message.split_once(": ") {
        Some((field, rest)) if field.starts_with("data") => {
            let field = field.trim_start_matches("data").trim_start_matches('.');
            if field.is_empty() {
                bad(&at, rest)
            } else {
                bad(&format!("{at}/{}", field.replace('.', "/")), rest)
            }
        }
        _ => bad(&at, r.message),
    }
}

/// What the reader of a document hands to the writer, in the file's order:
/// the baby first, then the entries a batch at a time, the timers last.
enum Read {
    Baby(NewBaby),
    Rows(Rows),
    /// The whole file was read and checked, and the last version given:
    /// the writer commits only then.
    End(i64),
}

/// A batch's entries of one kind, checked, versioned and written out as
/// the insert's one parameter.
struct Rows {
    kind: Kind,
    rows: Vec<Row>,
    /// The insert's parameter (see [`insert_sql`]).
    param: String,
    /// Whether these are the file's timers.
    timers: bool,
}

/// An entry as the writer sorts it out.
struct Row {
    /// Its place in its kind's list in the file.
    i: usize,
    id: Uuid,
    version: i64,
    /// An event's timer.
    target: Option<(Kind, Uuid)>,
}

/// The reader's side of an import: the entries' versions follow the baby's
/// change counter, which the writer sends once it holds the baby.
struct Reader<'a> {
    backend: DbBackend,
    now: DateTime<Utc>,
    counter: i64,
    seen: HashSet<(Kind, Uuid)>,
    /// Per timer, the file's events for it not read yet (counted before).
    pending: HashMap<(Kind, Uuid), usize>,
    /// The file's timers whose events are not all read yet, with their place.
    timers: HashMap<(Kind, Uuid), (usize, Record)>,
    /// The events read, by their timer, with their place.
    events: HashMap<(Kind, Uuid), Vec<(usize, timer::Logged)>>,
    /// Timers folded, waiting for a batch's worth of their kind.
    ready: BTreeMap<Kind, Vec<(usize, Record)>>,
    /// The place of the first event beyond a timer's 200.
    over: Option<usize>,
    /// The timers folded.
    folded: HashSet<(Kind, Uuid)>,
    /// The first id given twice in the file, as a path.
    twice: Option<String>,
    out: &'a tokio::sync::mpsc::Sender<Result<Read, ApiError>>,
}

impl Reader<'_> {
    fn send(&self, read: Read) -> Result<(), ApiError> {
        // The writer is gone (it failed): nothing more to read for it.
        self.out
            .blocking_send(Ok(read))
            .map_err(|_| ApiError::Internal)
    }

    /// Versions `rows` of `kind` and sends them.
    fn rows(
        &mut self,
        kind: Kind,
        rows: Vec<(usize, Record)>,
        timers: bool,
    ) -> Result<(), ApiError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut out = Vec::with_capacity(rows.len());
        let mut entries = Vec::with_capacity(rows.len());
        for (i, mut r) in rows {
            self.counter += 1;
            r.bump(self.counter, self.now);
            out.push(Row {
                i,
                id: r.id,
                version: self.counter,
                target: if kind.is_timer_event() {
                    timer::target(&r)
                } else {
                    None
                },
            });
            entries.push(r.entry);
        }
        let param = if self.backend == DbBackend::Postgres {
            pg_rows(kind, &entries)?
        } else {
            crate::sync::push::stored_array(&entries)?
        };
        self.send(Read::Rows(Rows {
            kind,
            rows: out,
            param,
            timers,
        }))
    }

    /// Folds timer `r` (at place `i`) from the file's events for it, all
    /// read, for the next batch of its kind.
    fn fold(&mut self, i: usize, mut r: Record) -> Result<(), ApiError> {
        self.folded.insert((r.kind, r.id));
        let events = self.events.remove(&(r.kind, r.id)).unwrap_or_default();
        if let Some((at, _)) = events.get(timer::MAX_EVENTS) {
            self.over = Some(self.over.map_or(*at, |o| min(o, *at)));
            return Ok(());
        }
        let events: Vec<timer::Logged> = events.into_iter().map(|(_, e)| e).collect();
        timer::settle(&mut r, &events)?;
        self.ready.entry(r.kind).or_default().push((i, r));
        Ok(())
    }

    /// A batch checked: each timer folded once the file's events for it
    /// are read, each event noted for its timer's fold, and sent by kind.
    fn batch(&mut self, batch: Vec<(Kind, usize, Record)>) -> Result<(), ApiError> {
        let mut by_kind: BTreeMap<Kind, Vec<(usize, Record)>> = BTreeMap::new();
        for (kind, i, r) in batch {
            if !self.seen.insert((kind, r.id)) {
                // Reported once the whole file is checked (a bad entry
                // after it comes first).
                self.twice
                    .get_or_insert_with(|| format!("entries/{}/{i}/id", kind.name()));
                continue;
            }
            if timer::is_timer(&r) {
                let key = (kind, r.id);
                if self.pending.get(&key).is_some_and(|n| *n > 0) {
                    self.timers.insert(key, (i, r));
                } else {
                    self.fold(i, r)?;
                }
                continue;
            }
            if kind.is_timer_event()
                && let Some(target) = timer::target(&r)
            {
                self.events
                    .entry(target)
                    .or_default()
                    .extend(timer::Logged::of(&r).map(|e| (i, e)));
                if self.folded.contains(&target) {
                    // The first pass counted every event of the timer.
                    tracing::error!(entry = %target.1, "an import's event after its timer was folded");
                    return Err(ApiError::Internal);
                }
                if let Some(n) = self.pending.get_mut(&target) {
                    *n = n.saturating_sub(1);
                    if *n == 0
                        && let Some((at, timer)) = self.timers.remove(&target)
                    {
                        self.fold(at, timer)?;
                    }
                }
            }
            by_kind.entry(kind).or_default().push((i, r));
        }
        for (kind, rows) in by_kind {
            self.rows(kind, rows, false)?;
        }
        let full: Vec<Kind> = self
            .ready
            .iter()
            .filter(|(_, v)| v.len() >= WRITE_ROWS)
            .map(|(k, _)| *k)
            .collect();
        for kind in full {
            let rows = self.ready.remove(&kind).unwrap_or_default();
            self.rows(kind, rows, true)?;
        }
        Ok(())
    }

    /// The timers left, folded and sent; an error if a timer has more than
    /// 200 events in the file.
    fn finish(&mut self) -> Result<(), ApiError> {
        let timers: Vec<(usize, Record)> = self.timers.drain().map(|(_, t)| t).collect();
        for (i, r) in timers {
            self.fold(i, r)?;
        }
        let over = self
            .events
            .values()
            .filter_map(|list| list.get(timer::MAX_EVENTS).map(|(i, _)| *i))
            .chain(self.over)
            .min();
        if let Some(i) = over {
            return Err(bad(
                &format!("entries/timer_event/{i}/entryId"),
                format!("a timer takes at most {} events", timer::MAX_EVENTS),
            ));
        }
        if let Some(field) = self.twice.take() {
            return Err(bad(&field, "appears twice in the file"));
        }
        for (kind, rows) in std::mem::take(&mut self.ready) {
            self.rows(kind, rows, true)?;
        }
        self.send(Read::End(self.counter))
    }
}

/// The timer an event in the file acts on, read before the events are
/// checked (see [`Reader::pending`]): a key given twice counts as its last
/// value, as when the event itself is read.
#[derive(Default)]
struct Aim {
    entry_entity: Option<String>,
    entry_id: Option<Uuid>,
}

impl<'de> Deserialize<'de> for Aim {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Aim;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an event")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut m: M) -> Result<Aim, M::Error> {
                let mut aim = Aim::default();
                while let Some(key) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "entryEntity" => {
                            aim.entry_entity = m.next_value::<Value>()?.as_str().map(str::to_owned)
                        }
                        "entryId" => {
                            aim.entry_id = m
                                .next_value::<Value>()?
                                .as_str()
                                .and_then(|s| Uuid::parse_str(s).ok())
                        }
                        _ => {
                            m.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(aim)
            }
        }
        d.deserialize_map(Visit)
    }
}

/// Reads and checks the document, every entry as a push create (the 24 h
/// rule from `exportedAt`), and hands it to `out` as it goes: the baby,
/// then (once `counter` gives the baby's change counter) batches of
/// entries of a kind, versioned and written out as the writer's statement
/// takes them, at most [`READ_AHEAD`] waiting; the timers last. The first
/// bad field ends it with a 400. CPU work only: the caller runs it off the
/// async threads, beside the writes of the batches before.
fn read(
    body: &[u8],
    user: &str,
    now: DateTime<Utc>,
    backend: DbBackend,
    out: &tokio::sync::mpsc::Sender<Result<Read, ApiError>>,
    counter: tokio::sync::oneshot::Receiver<i64>,
) -> Result<(), ApiError> {
    let doc: Doc =
        match serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body)) {
            Ok(doc) => doc,
            Err(e) => {
                // `entries.feed_log[3]` → `entries/feed_log/3`.
                let path = e
                    .path()
                    .to_string()
                    .replace(['.', '['], "/")
                    .replace(']', "");
                let path = if path == "/" { String::new() } else { path };
                return Err(bad(
                    &path,
                    crate::extract::describe(&path, &e.inner().to_string()).1,
                ));
            }
        };
    if doc.format != "babysync-export" {
        return Err(bad("format", "must be babysync-export"));
    }
    if doc.format_version != 1 {
        return Err(bad("formatVersion", "must be 1"));
    }
    // An export is never dated later than now: a later date would only
    // move the 24 h rule.
    let exported_at = DateTime::parse_from_rfc3339(&doc.exported_at)
        .map(|t| min(t.with_timezone(&Utc), now))
        .map_err(|_| bad("exportedAt", "must be an RFC 3339 timestamp with an offset"))?;
    let baby = parse_baby(&doc.baby)?;
    let baby_id = baby.id;
    let mut lists: Vec<(Kind, &[&RawValue])> = vec![];
    for (name, list) in &doc.entries.0 {
        let kind = Kind::parse(name).ok_or_else(|| {
            bad(
                &format!("entries/{name}"),
                format!("must be {}", Kind::names_for_message()),
            )
        })?;
        lists.push((kind, list));
    }
    // The writer claims the baby meanwhile.
    out.blocking_send(Ok(Read::Baby(baby)))
        .map_err(|_| ApiError::Internal)?;
    // How many events the file has for each timer: a timer is folded and
    // written as soon as its events are read, not after the whole file.
    let mut pending: HashMap<(Kind, Uuid), usize> = HashMap::new();
    let events = lists.iter().filter(|(k, _)| k.is_timer_event());
    for raw in events.flat_map(|(_, list)| list.iter()) {
        if let Ok(Aim {
            entry_entity: Some(entity),
            entry_id: Some(id),
        }) = serde_json::from_str::<Aim>(raw.get())
            && let Some(target) = Kind::parse(&entity)
        {
            *pending.entry((target, id)).or_default() += 1;
        }
    }
    let mut reader = Reader {
        backend,
        now,
        counter: 0,
        seen: HashSet::new(),
        pending,
        timers: HashMap::new(),
        events: HashMap::new(),
        ready: BTreeMap::new(),
        over: None,
        folded: HashSet::new(),
        twice: None,
        out,
    };
    reader.counter = counter.blocking_recv().map_err(|_| ApiError::Internal)?;
    // A batch: a kind, the place of its first entry, its entries.
    type Batch<'b> = (Kind, usize, &'b [&'b RawValue]);
    let check = |(kind, first, raws): &Batch| -> Result<Vec<(Kind, usize, Record)>, ApiError> {
        raws.iter()
            .enumerate()
            .map(|(n, raw)| {
                let i = first + n;
                fields::with_now(exported_at, || {
                    entry(*kind, i, raw, baby_id, user, now, exported_at)
                })
                .map(|r| (*kind, i, r))
            })
            .collect()
    };
    // Two threads check the batches (most of an import's work on the
    // server), each a batch ahead at most, while this one sorts them out in
    // order, writes them out and hands them over.
    let batches: Vec<Batch> = lists
        .iter()
        .flat_map(|(kind, list)| {
            list.chunks(WRITE_ROWS)
                .enumerate()
                .map(move |(n, raws)| (*kind, n * WRITE_ROWS, raws))
        })
        .collect();
    std::thread::scope(|s| {
        let checkers = [0, 1].map(|w| {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let (batches, check) = (&batches, &check);
            s.spawn(move || {
                for batch in batches.iter().skip(w).step_by(2) {
                    let checked = check(batch);
                    let failed = checked.is_err();
                    // Stopped (the reader failed), or after a bad entry.
                    if tx.send(checked).is_err() || failed {
                        break;
                    }
                }
            });
            rx
        });
        for k in 0..batches.len() {
            let batch = checkers[k % 2].recv().map_err(|_| ApiError::Internal)??;
            reader.batch(batch)?;
        }
        reader.finish()
    })
}

/// Batches read ahead of the writer: what the import holds beyond the body
/// is these, the timers it adds and a few words per event.
const READ_AHEAD: usize = 4;

/// The writer's side of an import: the rows written and sorted out.
struct Merge {
    baby: Uuid,
    imported: BTreeMap<&'static str, u64>,
    unchanged: BTreeMap<&'static str, u64>,
    /// The timers the import adds.
    timers: HashSet<(Kind, Uuid)>,
    /// The timers of the events the import adds, in the file's order,
    /// with the event's place.
    targets: Vec<(usize, Option<(Kind, Uuid)>)>,
    /// The first entry whose id is used in another baby (a 409, once the
    /// whole file is read, unless a bad field comes first).
    failed: Option<ApiError>,
}

impl Merge {
    /// Inserts the rows whose ids are new; of the others, those of this
    /// baby are left as they are and one of another baby fails the import.
    async fn take(&mut self, txn: &DatabaseTransaction, rows: Rows) -> Result<(), ApiError> {
        if self.failed.is_some() {
            return Ok(());
        }
        let Rows {
            kind,
            rows,
            param,
            timers,
        } = rows;
        let backend = txn.get_database_backend();
        let inserted = txn
            .execute_raw(sea_orm::Statement::from_sql_and_values(
                backend,
                insert_sql(kind, backend)?,
                [param.into()],
            ))
            .await
            .map_err(|e| match e.sql_err() {
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => ApiError::Unavailable(
                    "a concurrent write took one of these ids; nothing was imported; retry".into(),
                ),
                _ => e.into(),
            })?
            .rows_affected();
        // Which were added: all of them, else those found with the version
        // given here (the baby is locked: no other write gives its versions).
        let mut stored: HashMap<Uuid, (Uuid, i64)> = HashMap::new();
        if inserted != rows.len() as u64 {
            let q = Query::select()
                .columns([
                    Alias::new("id"),
                    Alias::new("baby_id"),
                    Alias::new("version"),
                ])
                .from(Alias::new(kind.name()))
                .and_where(sea_orm::sea_query::ExprTrait::is_in(
                    Expr::col(Alias::new("id")),
                    rows.iter().map(|r| r.id),
                ))
                .to_owned();
            for row in txn.query_all_raw(backend.build(&q)).await? {
                stored.insert(
                    row.try_get("", "id")?,
                    (row.try_get("", "baby_id")?, row.try_get("", "version")?),
                );
            }
        }
        for r in rows {
            match stored.get(&r.id) {
                Some((baby, _)) if *baby != self.baby => {
                    let field = format!("entries/{}/{}/id", kind.name(), r.i);
                    self.failed = Some(ApiError::ConflictAt {
                        message: format!("{field}: an entry with this id exists in another baby"),
                        field,
                    });
                    return Ok(());
                }
                Some((_, version)) if *version != r.version => {
                    *self.unchanged.entry(kind.name()).or_default() += 1;
                }
                _ => {
                    *self.imported.entry(kind.name()).or_default() += 1;
                    if timers {
                        self.timers.insert((kind, r.id));
                    }
                    if kind.is_timer_event() {
                        self.targets.push((r.i, r.target));
                    }
                }
            }
        }
        Ok(())
    }

    /// An event the import adds must act on a timer it adds (to this baby,
    /// as its babyId says): never on an entry stored before, this baby's or
    /// another's.
    fn finish(&mut self) -> Result<(), ApiError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        for (i, target) in &self.targets {
            if !target.is_some_and(|t| self.timers.contains(&t)) {
                return Err(bad(
                    &format!("entries/timer_event/{i}/entryId"),
                    "must be a timer this file adds (an import adds no event to a stored entry)",
                ));
            }
        }
        Ok(())
    }
}

/// Imports `body` (an export document) for `user`: 201 for a new baby, 200
/// for one the caller owns. The document is read, checked and written out
/// on blocking threads while the batches read before are written; one bad
/// entry rolls the whole import back.
pub async fn import(
    db: &Db,
    events: &Events,
    user: &str,
    body: axum::body::Bytes,
    max_babies: u64,
) -> Result<(bool, Imported), ApiError> {
    let now = time::now();
    let owner = user.to_owned();
    let backend = db.get_database_backend();
    let (tx, mut rx) = tokio::sync::mpsc::channel(READ_AHEAD);
    let (counter_tx, counter_rx) = tokio::sync::oneshot::channel();
    let reader = tokio::task::spawn_blocking(move || {
        if let Err(e) = read(&body, &owner, now, backend, &tx, counter_rx) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    // The reader's error, else what the writer found.
    let outcome = async {
        let baby = match rx.recv().await {
            Some(Ok(Read::Baby(b))) => b,
            Some(Err(e)) => return Err(e),
            _ => return Err(ApiError::Internal),
        };
        let (_turn, txn) = begin_write(db).await?;
        if backend == DbBackend::Postgres {
            // Each row's lookup (`insert_sql`) a probe of the primary key,
            // whatever the planner believes of the tables (they may never
            // have been analyzed): never a scan of the whole table.
            txn.execute_unprepared(
                "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off",
            )
            .await?;
        }
        let (view, created, counter, caregivers) =
            claim_baby(&txn, user, &baby, max_babies, now).await?;
        if counter_tx.send(counter).is_err() {
            // The reader stopped: its error is waiting.
            return Err(match rx.recv().await {
                Some(Err(e)) => e,
                _ => ApiError::Internal,
            });
        }
        let zero: BTreeMap<&'static str, u64> = KINDS.iter().map(|k| (k.name(), 0)).collect();
        let mut merge = Merge {
            baby: baby.id,
            imported: zero.clone(),
            unchanged: zero,
            timers: HashSet::new(),
            targets: vec![],
            failed: None,
        };
        // Until the reader says it read the whole file: a reader that
        // stopped otherwise (a panic) leaves nothing committed.
        let last = loop {
            match rx.recv().await.ok_or(ApiError::Internal)?? {
                Read::Rows(rows) => merge.take(&txn, rows).await?,
                Read::End(last) => break last,
                Read::Baby(_) => return Err(ApiError::Internal),
            }
        };
        merge.finish()?;
        let added = merge.imported.values().any(|n| *n > 0);
        if added {
            babies::Entity::update_many()
                .col_expr(babies::Column::ChangeCounter, Expr::val(last))
                .filter(babies::Column::Id.eq(baby.id))
                .exec(&txn)
                .await?;
        }
        // Caregivers hear of a new baby or new entries; a file imported
        // again changes nothing and tells nobody.
        let changes = if added || created {
            vec![Change::new(caregivers, [baby.id])]
        } else {
            vec![]
        };
        events.commit(txn, &changes).await?;
        Ok((
            created,
            Imported {
                baby: view,
                imported: merge.imported,
                unchanged: merge.unchanged,
            },
        ))
    }
    .await;
    // Dropping the receiver stops a reader still going (its next send
    // fails); wait for it so that the body is freed before the answer.
    drop(rx);
    reader.await.map_err(|_| ApiError::Internal)?;
    outcome
}

/// The baby of the document: its id, name, birth date and gender (the
/// rest is the exporter's view of it).
struct NewBaby {
    id: Uuid,
    name: String,
    birth_date: Option<NaiveDate>,
    gender: Option<Gender>,
}

fn parse_baby(b: &Map<String, Value>) -> Result<NewBaby, ApiError> {
    let id = b
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| bad("baby/id", "must be a UUID"))?;
    let name = b
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("baby/name", "must be a string"))?;
    let name = crate::babies::validate_name(name)
        .map_err(|_| bad("baby/name", "must be 1 to 100 characters after trimming"))?;
    let birth_date = match b.get("birthDate") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let date = v
                .as_str()
                .and_then(crate::summary::strict_date)
                .ok_or_else(|| bad("baby/birthDate", "must be a date YYYY-MM-DD"))?;
            Some(crate::babies::validate_birth_date(date).map_err(|_| {
                bad(
                    "baby/birthDate",
                    "must not be in the future nor before 1900",
                )
            })?)
        }
    };
    let gender = match b.get("gender") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            serde_json::from_value::<Gender>(v.clone())
                .map_err(|_| bad("baby/gender", "must be one of male, female, other, unknown"))?,
        ),
    };
    Ok(NewBaby {
        id,
        name,
        birth_date,
        gender,
    })
}

/// Entry `i` of `kind`, checked as a push `create` checks it, with the
/// server's fields the file keeps (`loggedBy`, `createdAt`, `archivedAt`).
fn entry(
    kind: Kind,
    i: usize,
    raw: &RawValue,
    baby: Uuid,
    user: &str,
    now: DateTime<Utc>,
    exported_at: DateTime<Utc>,
) -> Result<Record, ApiError> {
    let at = |field: &str| format!("entries/{}/{i}/{field}", kind.name());
    let mut e: Map<String, Value> = serde_json::from_str(raw.get())
        .map_err(|_| bad(&format!("entries/{}/{i}", kind.name()), "must be an object"))?;
    if e.get("babyId")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
        != Some(baby)
    {
        return Err(bad(&at("babyId"), "must be the document's baby"));
    }
    let logged_by = match e.get("loggedBy") {
        // A user id as a token's subject may be one.
        Some(Value::String(s))
            if !s.is_empty()
                && s.chars().count() <= crate::auth::MAX_SUB_CHARS
                && !s.contains('\0') =>
        {
            s.clone()
        }
        None | Some(Value::Null) => user.to_owned(),
        Some(_) => {
            return Err(bad(
                &at("loggedBy"),
                "must be a user id: 1 to 255 characters, without NUL",
            ));
        }
    };
    // Checked as a client's timestamp (1900 to 24 h after the export).
    let stamp = |key: &str| -> Result<Option<DateTime<Utc>>, ApiError> {
        match e.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => fields::parse_timestamp(v, exported_at)
                .map(|t| Some(t.0))
                .map_err(|m| bad(&at(key), m)),
        }
    };
    let created_at = stamp("createdAt")?;
    let archived_at = stamp("archivedAt")?;
    let is_timer = kind.has_timer() && e.get("timerState").is_some_and(|v| !v.is_null());
    for k in SERVER_KEYS.iter().chain(&["segments", "timerState"]) {
        e.remove(*k);
    }
    if is_timer {
        // Its end follows its events.
        e.remove("endedAt");
        e.remove("durationMinutes");
        e.insert("timerState".into(), Value::from("running"));
    }
    // A null optional field is as if absent (defaults included).
    e.retain(|_, v| !Value::is_null(v));
    let mut body = Map::new();
    body.insert("entity".into(), Value::from(kind.name()));
    body.insert("op".into(), Value::from("create"));
    body.insert("data".into(), Value::Object(e));
    let m =
        parse_mutation(RawMutation { id: 1, body }, user, now).map_err(|r| rejected(kind, i, r))?;
    debug_assert_eq!(m.op, Op::Create);
    let mut r = m
        .created
        .ok_or_else(|| bad(&at("id"), "an entry to create"))?;
    r.entry.set("logged_by", logged_by.into())?;
    if let Some(t) = created_at {
        r.entry.set("created_at", t.into())?;
    }
    if let Some(t) = archived_at {
        r.archive(t);
    }
    Ok(r)
}

/// The document's baby for `user`: created (the caller its owner, within
/// `MAX_BABIES_PER_USER`), or one the caller owns (locked); 409 if it
/// exists and the caller does not own it. Its view, whether it was made,
/// its change counter and who hears of the import.
async fn claim_baby(
    txn: &DatabaseTransaction,
    user: &str,
    baby: &NewBaby,
    max_babies: u64,
    now: DateTime<Utc>,
) -> Result<(BabyView, bool, i64, Vec<String>), ApiError> {
    if let Some(stored) = access::lock_baby(txn, baby.id).await? {
        if access::level_of(txn, user, baby.id).await? != Some(Level::Owner) {
            return Err(ApiError::Conflict(
                "a baby with this id exists and the caller does not own it".into(),
            ));
        }
        if stored.archived_at.is_some() {
            return Err(ApiError::Conflict(
                "the baby is archived and takes no new entries".into(),
            ));
        }
        let caregivers: Vec<String> = baby_access::Entity::find()
            .filter(baby_access::Column::BabyId.eq(baby.id))
            .all(txn)
            .await?
            .into_iter()
            .map(|a| a.user_id)
            .collect();
        return Ok((
            BabyView::new(&stored, Level::Owner),
            false,
            stored.change_counter,
            caregivers,
        ));
    }
    access::check_baby_room(txn, user, max_babies).await?;
    let model = babies::Model {
        id: baby.id,
        name: baby.name.clone(),
        birth_date: baby.birth_date,
        gender: baby.gender,
        change_counter: 0,
        created_at: now,
        updated_at: now,
        archived_at: None,
    };
    if !crate::babies::insert_owned(txn, &model, user).await? {
        // A concurrent create or import took the id.
        return Err(ApiError::Conflict(
            "a baby with this id exists and the caller does not own it".into(),
        ));
    }
    Ok((
        BabyView::new(&model, Level::Owner),
        true,
        0,
        vec![user.to_owned()],
    ))
}

/// Between two rows of [`pg_rows`], and between two fields of a row.
const ROW_SEP: char = '\u{1e}';
const FIELD_SEP: char = '\u{1f}';

/// `rows` of `kind` as one text for PostgreSQL's insert ([`insert_sql`]):
/// each row its columns' values as PostgreSQL reads them from text, in the
/// order of `Kind::columns`, NULL an empty field; a text as it is, or
/// JSON-quoted when it is empty, starts with `"` or holds a control
/// character (a separator among them: JSON escapes them), a JSON value as
/// its JSON text. PostgreSQL splits
/// and casts it at a fraction of what reading JSON objects costs it
/// (docs/PERFORMANCE.md, "Issue 21").
fn pg_rows(kind: Kind, rows: &[Box<dyn crate::kinds::Entry>]) -> Result<String, ApiError> {
    use sea_orm::Value as V;
    use std::fmt::Write;
    let columns = kind.columns();
    let mut out = String::with_capacity(rows.len() * 300);
    let fail = |e: &dyn std::fmt::Display| {
        tracing::error!(kind = kind.name(), error = %e, "an entry the import cannot write");
        ApiError::Internal
    };
    for (n, r) in rows.iter().enumerate() {
        if n > 0 {
            out.push(ROW_SEP);
        }
        for (i, (column, _, _)) in columns.iter().enumerate() {
            if i > 0 {
                out.push(FIELD_SEP);
            }
            let value = r
                .get(column)
                .ok_or_else(|| fail(&format!("no column {column}")))?;
            if !value.is_some() {
                continue;
            }
            let written = match value {
                V::Uuid(Some(u)) => write!(out, "{}", u.hyphenated()),
                V::ChronoDateTimeUtc(Some(t)) => {
                    write!(
                        out,
                        "{}",
                        t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                    )
                }
                V::ChronoDate(Some(d)) => write!(out, "{}", d.format("%F")),
                // As it is, unless it could be mistaken: JSON-quoted if it is
                // empty, starts with a quote or holds a control character.
                V::String(Some(s)) => {
                    if s.is_empty() || s.starts_with('"') || s.chars().any(char::is_control) {
                        out.push_str(&serde_json::to_string(&s).map_err(|e| fail(&e))?);
                    } else {
                        out.push_str(&s);
                    }
                    Ok(())
                }
                V::Bool(Some(b)) => write!(out, "{}", u8::from(b)),
                V::TinyInt(Some(x)) => write!(out, "{x}"),
                V::SmallInt(Some(x)) => write!(out, "{x}"),
                V::Int(Some(x)) => write!(out, "{x}"),
                V::BigInt(Some(x)) => write!(out, "{x}"),
                V::Double(Some(x)) => {
                    out.push_str(&serde_json::to_string(&x).map_err(|e| fail(&e))?);
                    Ok(())
                }
                V::Json(Some(j)) => {
                    out.push_str(&serde_json::to_string(&j).map_err(|e| fail(&e))?);
                    Ok(())
                }
                other => return Err(fail(&format!("{column}: {other:?}"))),
            };
            written.map_err(|e| fail(&e))?;
        }
    }
    Ok(out)
}

/// The insert of a kind's rows given as one parameter, leaving a row whose
/// id exists as it is: on SQLite `Kind::insert_new_sql`, on PostgreSQL
/// from the text of [`pg_rows`].
fn insert_sql(kind: Kind, backend: DbBackend) -> Result<String, ApiError> {
    if backend == DbBackend::Postgres {
        let columns = kind.columns();
        let mut names = vec![];
        let mut values = vec![];
        for (i, (name, ty, _)) in columns.iter().enumerate() {
            let field = format!("f[{}]", i + 1);
            names.push(format!("\"{name}\""));
            values.push(match ty {
                sea_orm::ColumnType::String(_)
                | sea_orm::ColumnType::Text
                | sea_orm::ColumnType::Char(_) => {
                    format!(
                        "CASE WHEN left({field}, 1) = '\"' THEN {field}::json #>> '{{}}' \
                         ELSE {field} END AS \"{name}\""
                    )
                }
                other => format!(
                    "{field}::{} AS \"{name}\"",
                    crate::kinds::pg_type(other).ok_or(ApiError::Internal)?
                ),
            });
        }
        // `OFFSET 0`: each row split once, not once per column. The rows
        // whose ids exist are left out by a lookup each, cheaper than
        // `ON CONFLICT DO NOTHING`'s speculative insertion; one a
        // concurrent write adds meanwhile fails the import (a 503).
        let table = kind.name();
        return Ok(format!(
            "INSERT INTO \"{table}\" ({}) SELECT * FROM (SELECT {} FROM (SELECT \
             string_to_array(r, chr(31), '') AS f FROM unnest(string_to_array($1, chr(30))) AS r \
             OFFSET 0) AS x) AS y WHERE NOT EXISTS \
             (SELECT 1 FROM \"{table}\" AS t WHERE t.\"id\" = y.\"id\")",
            names.join(", "),
            values.join(", "),
        ));
    }
    kind.insert_new_sql(backend, 1)
}
