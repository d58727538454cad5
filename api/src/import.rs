//! `POST /api/babies/import` (PROTOCOL.md, "Export and import"): an export
//! document restores its baby under its own ids, in one transaction.
//!
//! Memory: the body (at most `IMPORT_BODY_LIMIT_BYTES`, decompressed) is
//! held once; the document is read over it without copying an entry's
//! text (`RawValue`), each entry is checked as a push `create` is and kept
//! as its model, and the models are written in batches of [`WRITE_ROWS`].

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
                while let Some((k, v)) = m.next_entry::<String, Vec<&'de RawValue>>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
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

/// An export document read and checked, before the database is touched.
struct Prepared {
    baby: NewBaby,
    /// Each entry: its kind, its place in the file's list, its model.
    records: Vec<(Kind, usize, Record)>,
}

/// Reads and checks the document: every entry as a push create (the 24 h
/// rule from `exportedAt`). CPU work only: the caller runs it off the
/// async threads.
fn prepare(body: &[u8], user: &str, now: DateTime<Utc>) -> Result<Prepared, ApiError> {
    let doc: Doc =
        match serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(body)) {
            Ok(doc) => doc,
            Err(e) => {
                let path = e.path().to_string().replace('.', "/");
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
    let mut records: Vec<(Kind, usize, Record)> = vec![];
    for (name, list) in &doc.entries.0 {
        let kind = Kind::parse(name).ok_or_else(|| {
            bad(
                &format!("entries/{name}"),
                format!("must be {}", Kind::names_for_message()),
            )
        })?;
        for (i, raw) in list.iter().enumerate() {
            let record = fields::with_now(exported_at, || {
                entry(kind, i, raw, baby.id, user, now, exported_at)
            })?;
            records.push((kind, i, record));
        }
    }
    Ok(Prepared { baby, records })
}

/// Imports `body` (an export document) for `user`: 201 for a new baby, 200
/// for one the caller owns.
pub async fn import(
    db: &Db,
    events: &Events,
    user: &str,
    body: axum::body::Bytes,
    max_babies: u64,
) -> Result<(bool, Imported), ApiError> {
    let now = time::now();
    let owner = user.to_owned();
    let Prepared { baby, records } =
        tokio::task::spawn_blocking(move || prepare(&body, &owner, now))
            .await
            .map_err(|_| ApiError::Internal)??;

    let (_turn, txn) = begin_write(db).await?;
    let (view, created, mut counter, caregivers) =
        claim_baby(&txn, user, &baby, max_babies, now).await?;

    // Which ids exist, and where.
    let mut existing: HashMap<(Kind, Uuid), Uuid> = HashMap::new();
    let mut by_kind: BTreeMap<Kind, Vec<Uuid>> = BTreeMap::new();
    for (kind, _, r) in &records {
        by_kind.entry(*kind).or_default().push(r.id);
    }
    for (kind, ids) in &by_kind {
        for chunk in ids.chunks(WRITE_ROWS) {
            let q = Query::select()
                .columns([Alias::new("id"), Alias::new("baby_id")])
                .from(Alias::new(kind.name()))
                .and_where(sea_orm::sea_query::ExprTrait::is_in(
                    Expr::col(Alias::new("id")),
                    chunk.iter().copied(),
                ))
                .to_owned();
            for row in txn
                .query_all_raw(txn.get_database_backend().build(&q))
                .await?
            {
                existing.insert((*kind, row.try_get("", "id")?), row.try_get("", "baby_id")?);
            }
        }
    }
    let mut imported: BTreeMap<&'static str, u64> = KINDS.iter().map(|k| (k.name(), 0)).collect();
    let mut unchanged = imported.clone();
    let mut new: Vec<Record> = vec![];
    let mut positions: Vec<usize> = vec![];
    let mut seen: HashSet<(Kind, Uuid)> = HashSet::new();
    for (kind, i, r) in records {
        if !seen.insert((kind, r.id)) {
            return Err(bad(
                &format!("entries/{}/{i}/id", kind.name()),
                "appears twice in the file",
            ));
        }
        match existing.get(&(kind, r.id)) {
            Some(b) if *b != baby.id => {
                return Err(ApiError::ConflictAt {
                    message: format!(
                        "entries/{}/{i}/id: an entry with this id exists in another baby",
                        kind.name()
                    ),
                    field: format!("entries/{}/{i}/id", kind.name()),
                });
            }
            Some(_) => *unchanged.entry(kind.name()).or_default() += 1,
            None => {
                *imported.entry(kind.name()).or_default() += 1;
                new.push(r);
                positions.push(i);
            }
        }
    }

    // Timers folded from their events in the file. A new event must act on
    // a timer the file adds (to this baby, as its babyId says): never on an
    // entry stored before, this baby's or another's.
    let timers: HashSet<(Kind, Uuid)> = new
        .iter()
        .filter(|r| timer::is_timer(r))
        .map(|r| (r.kind, r.id))
        .collect();
    let mut logged: HashMap<(Kind, Uuid), Vec<timer::Logged>> = HashMap::new();
    for (r, i) in new
        .iter()
        .zip(&positions)
        .filter(|(r, _)| r.kind.is_timer_event())
    {
        let field = format!("entries/timer_event/{i}/entryId");
        let target = timer::target(r)
            .filter(|t| timers.contains(t))
            .ok_or_else(|| {
                bad(
                    &field,
                    "must be a timer this file adds (an import adds no event to a stored entry)",
                )
            })?;
        let list = logged.entry(target).or_default();
        if list.len() >= timer::MAX_EVENTS {
            return Err(bad(
                &field,
                format!("a timer takes at most {} events", timer::MAX_EVENTS),
            ));
        }
        list.extend(timer::Logged::of(r));
    }
    for r in new.iter_mut().filter(|r| timer::is_timer(r)) {
        let events = logged.get(&(r.kind, r.id)).map_or(&[][..], Vec::as_slice);
        timer::settle(r, events)?;
    }

    // Versions after the baby's, and the rows written a batch at a time.
    for r in &mut new {
        counter += 1;
        r.bump(counter, now);
    }
    let mut kinds: BTreeMap<Kind, Vec<Record>> = BTreeMap::new();
    for r in new {
        kinds.entry(r.kind).or_default().push(r);
    }
    for (kind, rows) in kinds {
        for chunk in rows.chunks(WRITE_ROWS) {
            write(&txn, kind, chunk).await?;
        }
    }
    babies::Entity::update_many()
        .col_expr(babies::Column::ChangeCounter, Expr::val(counter))
        .filter(babies::Column::Id.eq(baby.id))
        .exec(&txn)
        .await?;
    events
        .commit(txn, &[Change::new(caregivers, [baby.id])])
        .await?;
    Ok((
        created,
        Imported {
            baby: view,
            imported,
            unchanged,
        },
    ))
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
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => user.to_owned(),
        Some(_) => return Err(bad(&at("loggedBy"), "must be a string")),
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

/// Inserts `rows` of `kind` (new ids) with the push's upsert.
async fn write(txn: &DatabaseTransaction, kind: Kind, rows: &[Record]) -> Result<(), ApiError> {
    let backend = txn.get_database_backend();
    let entries: Vec<&Box<dyn crate::kinds::Entry>> = rows.iter().map(|r| &r.entry).collect();
    let (sql, param) = if backend == DbBackend::Postgres {
        (
            kind.upsert_sql(backend, 1)?,
            crate::sync::push::json_array(&entries)?,
        )
    } else {
        (
            kind.upsert_sql(backend, 0)?,
            crate::sync::push::stored_array(&entries)?,
        )
    };
    let written = txn
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            sql,
            [param.into()],
        ))
        .await?
        .rows_affected();
    if written != rows.len() as u64 {
        return Err(ApiError::Unavailable(
            "a concurrent write took one of these ids; nothing was imported; retry".into(),
        ));
    }
    Ok(())
}
