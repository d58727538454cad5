//! `POST /api/sync/push`: a batch of client mutations, applied exactly once in
//! one transaction. [`super::plan`] decides the outcomes; this module reads
//! what the plan needs and stores what it decided.
//!
//! The work for a batch of N mutations is a bounded number of statements,
//! whatever N: the client row (locked); the babies written to (those of the
//! creates, and those of the stored records the updates and deletes name,
//! found by a subquery), locked in id order with their change counters and
//! every caregiver's level (one statement: the caller's level decides, every
//! caregiver hears of the write); which of the named ids exist (one
//! statement over every kind named) and those records; then the write. On
//! PostgreSQL the write is one statement (each kind's rows as one JSON
//! parameter, the counters, the client's new `lastMutationId`, the
//! notifications). On SQLite the reads are one call and the write another
//! (each kind's rows as one JSON parameter read by `json_each`): the
//! database's single write lock is held for as few hand-overs to the
//! connection's thread as possible.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::db::Db;
use entity::{babies, baby_access, sync_clients};
use futures_util::TryStreamExt;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    FromQueryResult, JoinType, QueryFilter, QueryOrder, QuerySelect, QueryTrait, RelationTrait,
    Set,
    prelude::{DateTimeUtc, Uuid},
    sea_query::{Alias, Asterisk, Expr, ExprTrait, LockType, Query, SelectStatement, UnionType},
};
use serde::Serialize;
use serde_json::Value;

use super::{
    plan::{Inputs, LockedBaby, MutationResult, plan},
    validate::{Mutation, Op, PushRequest, Rejection, parse_mutation},
};
use crate::{
    access::Level,
    db::begin_write,
    error::ApiError,
    events::{Change, Events},
    kinds::{Entry, Kind, Record, timer},
    time,
};

/// What push answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushAnswer {
    pub last_mutation_id: i64,
    /// One per mutation sent, in order.
    pub results: Vec<MutationResult>,
    /// (entity, outcome) of each mutation, for metrics.
    #[serde(skip)]
    pub tally: Vec<(&'static str, &'static str)>,
}

/// Finds the client, or claims it for `user`; 403 if it is another user's.
/// The row stays locked until the transaction ends, so one client's pushes
/// take turns.
async fn claim_client(
    txn: &DatabaseTransaction,
    user: &str,
    client: Uuid,
) -> Result<sync_clients::Model, ApiError> {
    let find = || sync_clients::Entity::find_by_id(client).lock_exclusive();
    let row = match find().one(txn).await? {
        Some(row) => row,
        None => {
            let t = time::now();
            sync_clients::Entity::insert(sync_clients::ActiveModel {
                client_id: Set(client),
                user_id: Set(user.to_owned()),
                last_mutation_id: Set(0),
                created_at: Set(t),
                updated_at: Set(t),
            })
            .on_conflict_do_nothing()
            .exec_without_returning(txn)
            .await?;
            find().one(txn).await?.ok_or(ApiError::Internal)?
        }
    };
    owned(row, user)
}

/// The client row, if it is `user`'s; 403 if it is another user's.
fn owned(row: sync_clients::Model, user: &str) -> Result<sync_clients::Model, ApiError> {
    if row.user_id != user {
        return Err(ApiError::Forbidden(
            "this clientId belongs to another user".into(),
        ));
    }
    Ok(row)
}

/// What a push reads before it plans, named by its mutations: the ids per
/// kind, the babies of its creates, and the ids its updates and deletes
/// name (their babies are found by the lock statement itself).
#[derive(Default)]
struct Named {
    ids: BTreeMap<Kind, Vec<Uuid>>,
    babies: BTreeSet<Uuid>,
    lookups: BTreeMap<Kind, Vec<Uuid>>,
}

impl Named {
    fn of<'m>(mutations: impl Iterator<Item = &'m Mutation>) -> Self {
        let mut named = Named::default();
        for m in mutations {
            named.ids.entry(m.kind).or_default().push(m.record_id);
            // An event names its timer: read, and its baby locked (whatever
            // baby the event says).
            if let Some((kind, id)) = m.created.as_ref().and_then(timer::target) {
                named.ids.entry(kind).or_default().push(id);
                named.lookups.entry(kind).or_default().push(id);
            }
            match m.op {
                Op::Create => named.babies.extend(m.baby_id),
                Op::Update | Op::Delete => {
                    named.lookups.entry(m.kind).or_default().push(m.record_id)
                }
            }
        }
        named
    }
}

/// What the reads found: the babies locked (one row per caregiver) and
/// which of the named ids exist, per kind.
struct Found {
    locked: Vec<LockedRow>,
    existing: Vec<(Kind, Vec<Uuid>)>,
}

/// Each statement of a read says which it is in a column `q`, so that one
/// call can hold several (SQLite).
const Q: &str = "q";

/// On SQLite, every read a push needs in one call (one hand-over to the
/// connection's thread while the database's one write lock is held): the
/// client row, the babies with every caregiver's level, which named ids
/// exist. The client's `lastMutationId` is not known yet, so it reads for
/// every mutation sent, already-applied ones too (what the plan does not
/// need, it does not look at). The parameters are anonymous (`?`): sqlx
/// binds a call's values to its statements in order.
async fn read_sqlite(
    txn: &DatabaseTransaction,
    user: &str,
    client: Uuid,
    named: &Named,
) -> Result<(Option<sync_clients::Model>, Found), ApiError> {
    let client_query = Query::select()
        .expr_as(Expr::val("client"), Alias::new(Q))
        .column(Asterisk)
        .from(sync_clients::Entity)
        .and_where(sync_clients::Column::ClientId.eq(client))
        .to_owned();
    let mut queries = vec![client_query, lock_query(user, named)];
    queries.extend(existing_query(&named.ids));
    let (mut sql, mut values) = (String::new(), vec![]);
    for q in &queries {
        let stmt = DbBackend::Sqlite.build(q);
        if !sql.is_empty() {
            sql.push_str(";\n");
        }
        sql.push_str(&stmt.sql);
        values.extend(stmt.values.map(|v| v.0).unwrap_or_default());
    }
    let rows = txn
        .query_all_raw(sea_orm::Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql,
            values,
        ))
        .await?;
    let mut row_of_client = None;
    let mut found = Found {
        locked: vec![],
        existing: existing_slots(&named.ids),
    };
    for row in rows {
        let q: String = row.try_get("", Q)?;
        match q.as_str() {
            "client" => row_of_client = Some(sync_clients::Model::from_query_result(&row, "")?),
            "baby" => found.locked.push(locked_row(&row)?),
            _ => existing_row(&row, &mut found.existing)?,
        }
    }
    Ok((row_of_client, found))
}

/// The reads of [`read_sqlite`], one statement each (PostgreSQL, where the
/// client row was locked first).
async fn read_each(
    txn: &DatabaseTransaction,
    user: &str,
    named: &Named,
) -> Result<Found, ApiError> {
    let backend = txn.get_database_backend();
    let mut found = Found {
        locked: vec![],
        existing: existing_slots(&named.ids),
    };
    for row in txn
        .query_all_raw(backend.build(&lock_query(user, named)))
        .await?
    {
        found.locked.push(locked_row(&row)?);
    }
    if let Some(query) = existing_query(&named.ids) {
        for row in txn.query_all_raw(backend.build(&query)).await? {
            existing_row(&row, &mut found.existing)?;
        }
    }
    Ok(found)
}

/// The stored records of the ids found to exist (usually none: a push is
/// mostly creates).
async fn load_records(
    txn: &DatabaseTransaction,
    existing: &[(Kind, Vec<Uuid>)],
) -> Result<HashMap<(Kind, Uuid), Record>, ApiError> {
    let mut out = HashMap::new();
    for (kind, ids) in existing.iter().filter(|(_, ids)| !ids.is_empty()) {
        let query = Query::select()
            .column(Asterisk)
            .from(Alias::new(kind.name()))
            .and_where(Expr::col(Alias::new("id")).is_in(ids.iter().copied()))
            .to_owned();
        let records = kind.fetch(txn, &query).await?;
        out.extend(records.into_iter().map(|r| ((r.kind, r.id), r)));
    }
    Ok(out)
}

/// The most timers one push may act on (create or delete events of, or
/// update): a push reads every event of each, up to [`timer::MAX_EVENTS`],
/// so this bounds its work to 50 × 200 events; more is 413
/// `too_many_mutations` (a client splits the batch and sends it again).
pub const MAX_TIMERS_PER_PUSH: usize = 50;

/// The timers this push acts on, into `records`, and all their events, by
/// timer (what the fold needs of each): the plan folds them. Only timers in
/// a baby the caller may write to count; nothing to read for a push without
/// timers. The timers' babies are locked already (an event and its timer
/// share one), so no other push changes them until this one commits.
async fn load_timers(
    txn: &DatabaseTransaction,
    parsed: &[(i64, Result<Mutation, Rejection>)],
    records: &mut HashMap<(Kind, Uuid), Record>,
    babies: &HashMap<Uuid, LockedBaby>,
) -> Result<HashMap<(Kind, Uuid), Vec<timer::Logged>>, ApiError> {
    let mut timers: BTreeSet<(Kind, Uuid)> = BTreeSet::new();
    let mut unread: BTreeSet<(Kind, Uuid)> = BTreeSet::new();
    for m in parsed.iter().filter_map(|(_, m)| m.as_ref().ok()) {
        let target = if m.kind.is_timer_event() {
            let event = m.created.as_ref().or(records.get(&(m.kind, m.record_id)));
            event.and_then(timer::target)
        } else {
            Some((m.kind, m.record_id))
        };
        let Some(target) = target else { continue };
        match records.get(&target) {
            // Read already (named by the mutations): a timer the caller may
            // write to, or nothing to fold.
            Some(r) if timer::is_timer(r) && writable(babies, r.baby_id) => {
                timers.insert(target);
            }
            Some(_) => {}
            // The timer of a stored event being deleted.
            None if m.kind.is_timer_event() => {
                unread.insert(target);
            }
            None => {}
        }
    }
    let mut missing: BTreeMap<Kind, Vec<Uuid>> = BTreeMap::new();
    for (kind, id) in &unread {
        missing.entry(*kind).or_default().push(*id);
    }
    let missing: Vec<(Kind, Vec<Uuid>)> = missing.into_iter().collect();
    for (key, r) in load_records(txn, &missing).await? {
        if timer::is_timer(&r) && writable(babies, r.baby_id) {
            timers.insert(key);
        }
        records.insert(key, r);
    }
    let mut events: HashMap<(Kind, Uuid), Vec<timer::Logged>> = HashMap::new();
    if timers.is_empty() {
        return Ok(events);
    }
    if timers.len() > MAX_TIMERS_PER_PUSH {
        return Err(ApiError::TooManyMutations {
            limit: MAX_TIMERS_PER_PUSH,
        });
    }
    // Each timer's events, by its kind and id (ids are unique within a
    // kind, not across kinds).
    // An event is its timer's baby's: only that baby's events count.
    let mut which = Condition::any();
    let mut by_kind: BTreeMap<(Kind, Uuid), Vec<Uuid>> = BTreeMap::new();
    for (kind, id) in &timers {
        let baby = records
            .get(&(*kind, *id))
            .map(|r| r.baby_id)
            .ok_or(ApiError::Internal)?;
        by_kind.entry((*kind, baby)).or_default().push(*id);
    }
    for ((kind, baby), ids) in by_kind {
        which = which.add(
            Condition::all()
                .add(Expr::col(Alias::new("baby_id")).eq(baby))
                .add(Expr::col(Alias::new("entry_entity")).eq(kind.name()))
                .add(Expr::col(Alias::new("entry_id")).is_in(ids)),
        );
    }
    let query = Query::select()
        .columns(
            [
                "id",
                "entry_entity",
                "entry_id",
                "started_at",
                "action",
                "side",
            ]
            .map(Alias::new),
        )
        .expr_as(
            Expr::col(Alias::new("archived_at")).is_not_null(),
            Alias::new("archived"),
        )
        .from(Alias::new(timer::EVENT_KIND))
        .cond_where(which)
        .to_owned();
    let backend = txn.get_database_backend();
    // Row by row: only the compact form is kept.
    let mut rows = sea_orm::StreamTrait::stream_raw(txn, backend.build(&query)).await?;
    while let Some(row) = rows.try_next().await? {
        let kind: String = row.try_get("", "entry_entity")?;
        let entry: Uuid = row.try_get("", "entry_id")?;
        let side: Option<String> = row.try_get("", "side")?;
        let action: String = row.try_get("", "action")?;
        let logged = timer::Logged::from_columns(
            row.try_get("", "id")?,
            row.try_get("", "started_at")?,
            &action,
            side.as_deref(),
            row.try_get("", "archived")?,
        );
        let (Some(kind), Some(logged)) = (Kind::parse(&kind), logged) else {
            tracing::error!(%entry, kind, action, "a stored timer event the fold does not take");
            return Err(ApiError::Internal);
        };
        events.entry((kind, entry)).or_default().push(logged);
    }
    Ok(events)
}

/// Whether the caller may write to this baby (locked for the push, editor
/// or owner).
fn writable(babies: &HashMap<Uuid, LockedBaby>, baby: Uuid) -> bool {
    babies
        .get(&baby)
        .is_some_and(|b| b.level >= Level::Editor && !b.archived)
}

/// Which of these ids exist, per kind: one statement over every table
/// named (rows: `q`, `k` the kind's place in `ids`, `id`); none when no id
/// is named.
fn existing_query(ids: &BTreeMap<Kind, Vec<Uuid>>) -> Option<SelectStatement> {
    let mut parts = ids.iter().enumerate().map(|(i, (kind, ids))| {
        Query::select()
            .expr_as(Expr::val("existing"), Alias::new(Q))
            .expr_as(Expr::val(i as i32), Alias::new("k"))
            .column(Alias::new("id"))
            .from(Alias::new(kind.name()))
            .and_where(Expr::col(Alias::new("id")).is_in(ids.iter().copied()))
            .to_owned()
    });
    let mut query = parts.next()?;
    for part in parts {
        query.union(UnionType::All, part);
    }
    Some(query)
}

/// Where [`existing_row`] puts what it finds: one slot per kind of `ids`,
/// in order.
fn existing_slots(ids: &BTreeMap<Kind, Vec<Uuid>>) -> Vec<(Kind, Vec<Uuid>)> {
    ids.keys().map(|k| (*k, vec![])).collect()
}

fn existing_row(
    row: &sea_orm::QueryResult,
    slots: &mut [(Kind, Vec<Uuid>)],
) -> Result<(), ApiError> {
    let k: i32 = row.try_get("", "k")?;
    let id: Uuid = row.try_get("", "id")?;
    slots
        .get_mut(k as usize)
        .ok_or(ApiError::Internal)?
        .1
        .push(id);
    Ok(())
}

/// The entity a raw mutation names, for metrics.
fn raw_entity(m: &super::validate::RawMutation) -> &'static str {
    m.body
        .get("entity")
        .and_then(Value::as_str)
        .and_then(Kind::parse)
        .map_or("unknown", Kind::name)
}

/// Applies a push. Either everything (outcomes and `lastMutationId`) commits,
/// or nothing does.
#[tracing::instrument(skip_all, fields(client.id = %req.client_id, mutations = req.mutations.len()))]
pub async fn push(
    db: &Db,
    events: &Events,
    user: &str,
    req: PushRequest,
) -> Result<PushAnswer, ApiError> {
    // Parse (and let go of the JSON) before the transaction: the write lock
    // is held only for what needs the database.
    let now = time::now();
    let seen: Vec<(i64, &'static str)> = req
        .mutations
        .iter()
        .map(|m| (m.id, raw_entity(m)))
        .collect();
    let all: Vec<(i64, Result<Mutation, Rejection>)> = req
        .mutations
        .into_iter()
        .map(|m| (m.id, parse_mutation(m, user, now)))
        .collect();

    let (_turn, txn) = begin_write(db).await?;
    let (client, found) = if txn.get_database_backend() == DbBackend::Sqlite {
        let named = Named::of(all.iter().filter_map(|(_, m)| m.as_ref().ok()));
        let (row, found) = read_sqlite(&txn, user, req.client_id, &named).await?;
        let client = match row {
            Some(row) => owned(row, user)?,
            None => claim_client(&txn, user, req.client_id).await?,
        };
        (client, Some(found))
    } else {
        (claim_client(&txn, user, req.client_id).await?, None)
    };
    let last = client.last_mutation_id;
    let mut expected = last + 1;
    for (id, _) in seen.iter().filter(|(id, _)| *id > last) {
        if *id != expected {
            return Err(ApiError::OutOfOrder { expected: last + 1 });
        }
        expected += 1;
    }
    let new_last = expected - 1;
    let parsed: Vec<(i64, Result<Mutation, Rejection>)> =
        all.into_iter().filter(|(id, _)| *id > last).collect();
    let outcomes = if parsed.is_empty() {
        // Nothing new: nothing to store; a newly claimed client is kept.
        txn.commit().await?;
        vec![]
    } else {
        let (inputs, caregivers) = read_inputs(&txn, user, now, &parsed, found).await?;
        let plan = plan(inputs, &parsed);
        // Every caregiver of the babies written to hears of it.
        let changes = Change::grouped(
            caregivers
                .into_iter()
                .filter(|(baby, _)| plan.counters.contains_key(baby)),
        );
        let notify = if txn.get_database_backend() == DbBackend::Postgres {
            crate::events::payloads(&changes)
        } else {
            vec![]
        };
        let client = ClientMark {
            id: req.client_id,
            last: new_last,
            at: now,
        };
        store(
            &txn,
            plan.writes.into_values(),
            &plan.counters,
            client,
            &notify,
        )
        .await?;
        txn.commit().await?;
        // On SQLite, this instance's streams hear of it now (on PostgreSQL
        // the notifications went with the commit).
        events.committed(&changes);
        plan.outcomes
    };

    let mut outcomes = outcomes.into_iter();
    let mut results = Vec::with_capacity(seen.len());
    let mut tally = Vec::with_capacity(seen.len());
    for (i, (id, entity)) in seen.into_iter().enumerate() {
        let result = if id > last {
            // A rejection names its field by its path in the request.
            match outcomes.next().ok_or(ApiError::Internal)? {
                MutationResult::Rejected {
                    id,
                    code,
                    message,
                    current,
                } => MutationResult::Rejected {
                    id,
                    code,
                    message: Rejection::invalid(message).at(i).message,
                    current,
                },
                other => other,
            }
        } else {
            MutationResult::Duplicate { id }
        };
        tally.push((entity, result.status()));
        results.push(result);
    }
    Ok(PushAnswer {
        last_mutation_id: new_last,
        results,
        tally,
    })
}

/// Reads what the plan needs: the stored records named, and the babies
/// written to, locked with the caller's level and their counters (`found`:
/// already read, on SQLite).
async fn read_inputs<'a>(
    txn: &DatabaseTransaction,
    user: &'a str,
    now: chrono::DateTime<chrono::Utc>,
    parsed: &[(i64, Result<Mutation, Rejection>)],
    found: Option<Found>,
) -> Result<(Inputs<'a>, Vec<(Uuid, String)>), ApiError> {
    let found = match found {
        Some(found) => found,
        None => {
            let named = Named::of(parsed.iter().filter_map(|(_, m)| m.as_ref().ok()));
            read_each(txn, user, &named).await?
        }
    };
    // Writers to the babies locked now wait for us: the records as they are.
    let mut records = load_records(txn, &found.existing).await?;
    let mut babies: HashMap<Uuid, LockedBaby> = HashMap::new();
    let mut caregivers: Vec<(Uuid, String)> = Vec::with_capacity(found.locked.len());
    for (id, archived_at, counter, caregiver, level) in found.locked {
        if caregiver == user {
            babies.insert(
                id,
                LockedBaby {
                    archived: archived_at.is_some(),
                    counter,
                    level,
                },
            );
        }
        caregivers.push((id, caregiver));
    }
    let timers = load_timers(txn, parsed, &mut records, &babies).await?;
    // A create whose id lives in another baby is a conflict; whether it shows
    // the stored record depends on the caller seeing that baby (rare: a read).
    let elsewhere: BTreeSet<Uuid> = parsed
        .iter()
        .filter_map(|(_, m)| m.as_ref().ok())
        .filter(|m| m.op == Op::Create)
        .filter_map(|m| records.get(&(m.kind, m.record_id)))
        .map(|r| r.baby_id)
        .filter(|b| !babies.contains_key(b))
        .collect();
    let readable = if elsewhere.is_empty() {
        HashSet::new()
    } else {
        crate::access::levels_of(txn, user, elsewhere)
            .await?
            .into_keys()
            .collect()
    };
    Ok((
        Inputs {
            user,
            now,
            records,
            babies,
            readable,
            timers,
        },
        caregivers,
    ))
}

/// One row per (baby, caregiver) of the babies written to that `user` can
/// access: id, archived at, change counter, caregiver, their level.
type LockedRow = (Uuid, Option<DateTimeUtc>, i64, String, Level);

/// The babies written to (those of the creates, and those of the stored
/// records the updates and deletes name) that `user` can access, with their
/// counters and every caregiver's level (the caller's decides; all of them
/// hear of the write), locked (`FOR UPDATE`, in id order: no deadlocks
/// between pushes) on PostgreSQL; SQLite's `BEGIN IMMEDIATE` already holds
/// the database. A baby the caller cannot access is neither returned nor
/// locked. A record never moves to another baby, so the babies found for
/// updates and deletes are theirs for good.
fn lock_query(user: &str, named: &Named) -> SelectStatement {
    let mine = Alias::new("mine");
    let callers = Query::select()
        .expr(Expr::val(1))
        .from_as(baby_access::Entity, mine.clone())
        .and_where(
            Expr::col((mine.clone(), baby_access::Column::BabyId))
                .equals((babies::Entity, babies::Column::Id)),
        )
        .and_where(Expr::col((mine, baby_access::Column::UserId)).eq(user))
        .to_owned();
    let mut written = Condition::any().add(babies::Column::Id.is_in(named.babies.iter().copied()));
    for (kind, ids) in &named.lookups {
        written = written.add(
            babies::Column::Id.in_subquery(
                Query::select()
                    .column(Alias::new("baby_id"))
                    .from(Alias::new(kind.name()))
                    .and_where(Expr::col(Alias::new("id")).is_in(ids.iter().copied()))
                    .to_owned(),
            ),
        );
    }
    let mut lock = babies::Entity::find()
        .select_only()
        .expr_as(Expr::val("baby"), Q)
        .column(babies::Column::Id)
        .column(babies::Column::ArchivedAt)
        .column(babies::Column::ChangeCounter)
        .column(baby_access::Column::UserId)
        .column(baby_access::Column::AccessLevel)
        .join(JoinType::InnerJoin, babies::Relation::BabyAccess.def())
        .filter(written)
        .filter(Expr::exists(callers))
        .order_by_asc(babies::Column::Id);
    QuerySelect::query(&mut lock).lock_with_tables(LockType::Update, [babies::Entity]);
    lock.into_query()
}

fn locked_row(row: &sea_orm::QueryResult) -> Result<LockedRow, ApiError> {
    Ok((
        row.try_get("", "id")?,
        row.try_get("", "archived_at")?,
        row.try_get("", "change_counter")?,
        row.try_get("", "user_id")?,
        row.try_get("", "access_level")?,
    ))
}

/// The client's new `lastMutationId`, written with the plan.
struct ClientMark {
    id: Uuid,
    last: i64,
    at: chrono::DateTime<chrono::Utc>,
}

/// Stores a plan: the records, the counters of the babies written to, the
/// client's `lastMutationId`, and (PostgreSQL) the notifications. On
/// PostgreSQL that is one statement (data-modifying `WITH` parts, each
/// kind's rows as one JSON parameter); on SQLite one call of several
/// statements (an upsert per kind from one JSON parameter, the counters, the
/// client).
async fn store(
    txn: &DatabaseTransaction,
    writes: impl Iterator<Item = Record>,
    counters: &std::collections::BTreeMap<Uuid, i64>,
    client: ClientMark,
    notify: &[String],
) -> Result<(), ApiError> {
    let mut by_kind: BTreeMap<Kind, Vec<Box<dyn Entry>>> = BTreeMap::new();
    for r in writes {
        by_kind.entry(r.kind).or_default().push(r.entry);
    }
    if txn.get_database_backend() == DbBackend::Postgres {
        store_pg(txn, by_kind, counters, client, notify).await
    } else {
        store_sqlite(txn, by_kind, counters, client).await
    }
}

/// [`store`] on SQLite: one call, so one hand-over to the connection's
/// thread while the database's one write lock is held: every kind's upsert
/// (each kind's rows as one JSON parameter; an empty array for a kind not
/// written, so that the text is the same for every push and stays
/// prepared), the counters, the client. The parameters are anonymous (`?`):
/// sqlx binds a call's values to its statements in order, and numbered ones
/// (`?7`) in a later statement are left unbound when earlier statements
/// skip numbers.
async fn store_sqlite(
    txn: &DatabaseTransaction,
    mut by_kind: BTreeMap<Kind, Vec<Box<dyn Entry>>>,
    counters: &BTreeMap<Uuid, i64>,
    client: ClientMark,
) -> Result<(), ApiError> {
    static SQL: std::sync::OnceLock<Result<String, ApiError>> = std::sync::OnceLock::new();
    let kinds = crate::kinds::KINDS;
    let sql = SQL
        .get_or_init(|| {
            let mut parts = kinds
                .iter()
                .map(|k| k.upsert_sql(DbBackend::Sqlite, 0))
                .collect::<Result<Vec<_>, _>>()?;
            parts.push(
                "UPDATE \"babies\" SET \"change_counter\" = \
                 (SELECT value ->> 1 FROM json_each(?) WHERE unhex(value ->> 0) = \"babies\".\"id\") \
                 WHERE \"id\" IN (SELECT unhex(value ->> 0) FROM json_each(?))"
                    .into(),
            );
            parts.push(
                "UPDATE \"sync_clients\" SET \"last_mutation_id\" = ?, \"updated_at\" = ? \
                 WHERE \"client_id\" = ?"
                    .into(),
            );
            Ok(parts.join(";\n"))
        })
        .as_ref()
        .map_err(|_| ApiError::Internal)?;
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(kinds.len() + 4);
    let mut expected = 0;
    for kind in kinds {
        let rows = by_kind.remove(kind).unwrap_or_default();
        expected += rows.len() as u64;
        values.push(stored_array(&rows)?.into());
    }
    if let Some((kind, _)) = by_kind.first_key_value() {
        tracing::error!(kind = kind.name(), "a kind not in the registry");
        return Err(ApiError::Internal);
    }
    let counters: Vec<(String, i64)> = counters
        .iter()
        .map(|(b, c)| (b.simple().to_string(), *c))
        .collect();
    expected += counters.len() as u64 + 1;
    let counters = json(&counters)?;
    values.extend([
        counters.clone().into(),
        counters.into(),
        client.last.into(),
        client.at.into(),
        client.id.into(),
    ]);
    let written = txn
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql.as_str(),
            values,
        ))
        .await?
        .rows_affected();
    if written != expected {
        // Every counter and the client are one row each; an upsert's update
        // only touches a row of the same baby: a concurrent create in another
        // family took one of these ids.
        return Err(ApiError::Unavailable(
            "a concurrent write took one of these ids; nothing was written; retry".into(),
        ));
    }
    Ok(())
}

/// [`store`] on PostgreSQL: one statement.
async fn store_pg(
    txn: &DatabaseTransaction,
    by_kind: BTreeMap<Kind, Vec<Box<dyn Entry>>>,
    counters: &std::collections::BTreeMap<Uuid, i64>,
    client: ClientMark,
    notify: &[String],
) -> Result<(), ApiError> {
    let mut parts: Vec<String> = vec![];
    let mut values: Vec<sea_orm::Value> = vec![];
    let mut expected: Vec<u64> = vec![];
    for (kind, rows) in &by_kind {
        values.push(json_array(rows)?.into());
        parts.push(format!(
            "w{} AS ({} RETURNING 1)",
            parts.len(),
            kind.upsert_sql(DbBackend::Postgres, values.len())?
        ));
        expected.push(rows.len() as u64);
    }
    let writes = parts.len();
    // The counters: driven by the babies' primary key (`id = ANY(...)`), so
    // that the update never scans `babies`, however many there are (a join
    // with the JSON rows was planned as a hash join over all of them).
    let ids: Vec<String> = counters.keys().map(Uuid::to_string).collect();
    let counters: Vec<serde_json::Value> = counters
        .iter()
        .map(|(b, c)| serde_json::json!({"id": b, "c": c}))
        .collect();
    values.push(json(counters.as_slice())?.into());
    values.push(format!("{{{}}}", ids.join(",")).into());
    parts.push(format!(
        "c AS (UPDATE \"babies\" SET \"change_counter\" = \
         (SELECT x.c FROM json_to_recordset(${}::json) AS x(id uuid, c int8) WHERE x.id = \"babies\".\"id\") \
         WHERE \"babies\".\"id\" = ANY(${}::uuid[]) RETURNING 1)",
        values.len() - 1,
        values.len()
    ));
    values.extend([client.last.into(), client.at.into(), client.id.into()]);
    let n = values.len();
    parts.push(format!(
        "m AS (UPDATE \"sync_clients\" SET \"last_mutation_id\" = ${}, \"updated_at\" = ${} \
         WHERE \"client_id\" = ${} RETURNING 1)",
        n - 2,
        n - 1,
        n
    ));
    values.push(crate::events::CHANNEL.into());
    values.push(json(notify)?.into());
    let n = values.len();
    parts.push(format!(
        "n AS (SELECT pg_notify(${}, p) FROM json_array_elements_text(${}::json) AS p)",
        n - 1,
        n
    ));
    let counts: Vec<String> = (0..writes)
        .map(|i| format!("(SELECT count(*) FROM w{i}) AS w{i}"))
        .chain([
            "(SELECT count(*) FROM c) AS c".into(),
            "(SELECT count(*) FROM m) AS m".into(),
            "(SELECT count(*) FROM n) AS n".into(),
        ])
        .collect();
    let sql = format!("WITH {} SELECT {}", parts.join(", "), counts.join(", "));
    let row = txn
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?
        .ok_or(ApiError::Internal)?;
    for (i, want) in expected.iter().enumerate() {
        let got: i64 = row.try_get("", &format!("w{i}"))?;
        if got as u64 != *want {
            // An update touches only a row of the same baby: a concurrent
            // create in another family took one of these ids.
            return Err(ApiError::Unavailable(
                "a concurrent write took one of these ids; nothing was written; retry".into(),
            ));
        }
    }
    Ok(())
}

/// The entries as SQLite stores them, as one JSON array text, for a
/// parameter.
pub(crate) fn stored_array<E: AsRef<dyn Entry>>(rows: &[E]) -> Result<String, ApiError> {
    let mut out = Vec::with_capacity(rows.len() * 300 + 2);
    out.push(b'[');
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        r.as_ref().write_stored(&mut out).map_err(|e| {
            tracing::error!(error = %e, "an entry SQLite's upsert cannot take");
            ApiError::Internal
        })?;
    }
    out.push(b']');
    String::from_utf8(out).map_err(|_| ApiError::Internal)
}

/// The entries' wire form, as one JSON array text, for a parameter.
pub(crate) fn json_array<E: AsRef<dyn Entry>>(rows: &[E]) -> Result<String, ApiError> {
    let mut out = Vec::with_capacity(rows.len() * 400 + 2);
    out.push(b'[');
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        r.as_ref()
            .write_json(&mut out)
            .map_err(|_| ApiError::Internal)?;
    }
    out.push(b']');
    String::from_utf8(out).map_err(|_| ApiError::Internal)
}

/// `v` as one JSON text, for a parameter.
fn json<T: Serialize + ?Sized>(v: &T) -> Result<String, ApiError> {
    serde_json::to_string(v).map_err(|_| ApiError::Internal)
}
