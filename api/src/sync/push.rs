//! `POST /api/sync/push`: a batch of client mutations, applied exactly once in
//! one transaction. [`super::plan`] decides the outcomes; this module reads
//! what the plan needs and stores what it decided.
//!
//! The work for a batch of N mutations is a bounded number of statements: the
//! client row (locked); the babies of updated and deleted records (read only
//! when there are such mutations); the babies written to, locked in id order
//! with their change counters and every caregiver's level (one statement:
//! the caller's level decides, every caregiver hears of the write); which of
//! the named ids exist (one statement over every kind named) and those
//! records; then one upsert per kind (on PostgreSQL one statement whatever
//! the number of rows, the rows as one JSON parameter), one counter update
//! per baby written, and the client's new `lastMutationId`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use entity::{babies, baby_access, sync_clients};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    JoinType, QueryFilter, QueryOrder, QuerySelect, RelationTrait, Set,
    prelude::{DateTimeUtc, Uuid},
    sea_query::{Alias, Asterisk, Expr, ExprTrait, LockType, Query, UnionType},
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
    kinds::{Entry, Kind, Record},
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
    if row.user_id != user {
        return Err(ApiError::Forbidden(
            "this clientId belongs to another user".into(),
        ));
    }
    Ok(row)
}

/// The stored records with these ids, of every kind. When several kinds are
/// named, one statement first finds which ids exist (usually none: a push is
/// mostly creates), and only those rows are read.
async fn load_records(
    txn: &DatabaseTransaction,
    ids: &HashMap<Kind, Vec<Uuid>>,
) -> Result<HashMap<(Kind, Uuid), Record>, ApiError> {
    let named: Vec<(Kind, &Vec<Uuid>)> = ids
        .iter()
        .filter(|(_, ids)| !ids.is_empty())
        .map(|(k, ids)| (*k, ids))
        .collect();
    let found: Vec<(Kind, Vec<Uuid>)> = if named.len() > 1 {
        existing(txn, &named).await?
    } else {
        named.into_iter().map(|(k, ids)| (k, ids.clone())).collect()
    };
    let mut out = HashMap::new();
    for (kind, ids) in found.iter().filter(|(_, ids)| !ids.is_empty()) {
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

/// Which of these ids exist, per kind: one statement over every table named.
async fn existing(
    txn: &DatabaseTransaction,
    named: &[(Kind, &Vec<Uuid>)],
) -> Result<Vec<(Kind, Vec<Uuid>)>, ApiError> {
    let mut parts = named.iter().enumerate().map(|(i, (kind, ids))| {
        Query::select()
            .expr_as(Expr::val(i as i32), Alias::new("k"))
            .column(Alias::new("id"))
            .from(Alias::new(kind.name()))
            .and_where(Expr::col(Alias::new("id")).is_in(ids.iter().copied()))
            .to_owned()
    });
    let Some(mut query) = parts.next() else {
        return Ok(vec![]);
    };
    for part in parts {
        query.union(UnionType::All, part);
    }
    let backend = txn.get_database_backend();
    let mut found: Vec<(Kind, Vec<Uuid>)> = named.iter().map(|(k, _)| (*k, vec![])).collect();
    for row in txn.query_all_raw(backend.build(&query)).await? {
        let k: i32 = row.try_get("", "k")?;
        let id: Uuid = row.try_get("", "id")?;
        found
            .get_mut(k as usize)
            .ok_or(ApiError::Internal)?
            .1
            .push(id);
    }
    Ok(found)
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
    db: &DatabaseConnection,
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
    let client = claim_client(&txn, user, req.client_id).await?;
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
        let (inputs, caregivers) = read_inputs(&txn, user, now, &parsed).await?;
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
    for (id, entity) in seen {
        let result = if id > last {
            outcomes.next().ok_or(ApiError::Internal)?
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
/// written to, locked with the caller's level and their counters.
async fn read_inputs<'a>(
    txn: &DatabaseTransaction,
    user: &'a str,
    now: chrono::DateTime<chrono::Utc>,
    parsed: &[(i64, Result<Mutation, Rejection>)],
) -> Result<(Inputs<'a>, Vec<(Uuid, String)>), ApiError> {
    // The babies written to: those of new creates, and those of the stored
    // records that updates and deletes name (read once, unlocked, for that).
    let mut ids: HashMap<Kind, Vec<Uuid>> = HashMap::new();
    let mut lookups: HashMap<Kind, Vec<Uuid>> = HashMap::new();
    let mut baby_ids: BTreeSet<Uuid> = BTreeSet::new();
    for m in parsed.iter().filter_map(|(_, m)| m.as_ref().ok()) {
        ids.entry(m.kind).or_default().push(m.record_id);
        match m.op {
            Op::Create => baby_ids.extend(m.baby_id),
            Op::Update | Op::Delete => lookups.entry(m.kind).or_default().push(m.record_id),
        }
    }
    baby_ids.extend(
        load_records(txn, &lookups)
            .await?
            .values()
            .map(|r| r.baby_id),
    );
    // Lock those of them the caller can access, in id order (no deadlocks
    // between pushes), with each baby's counter and every caregiver's level
    // (the caller's decides; all of them hear of the write). A baby the
    // caller cannot access is neither returned nor locked.
    let locked = lock_babies(txn, user, &baby_ids).await?;
    // Writers to these babies now wait for us: read the records as they are.
    let records = load_records(txn, &ids).await?;
    let mut babies: HashMap<Uuid, LockedBaby> = HashMap::new();
    let mut caregivers: Vec<(Uuid, String)> = Vec::with_capacity(locked.len());
    for (id, archived_at, counter, caregiver, level) in locked {
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
        },
        caregivers,
    ))
}

/// One row per (baby, caregiver) of the babies in `ids` that `user` can
/// access: id, archived at, change counter, caregiver, their level. The
/// babies are locked (`FOR UPDATE`, in id order) on PostgreSQL; SQLite's
/// `BEGIN IMMEDIATE` already holds the database.
type LockedRow = (Uuid, Option<DateTimeUtc>, i64, String, Level);

async fn lock_babies(
    txn: &DatabaseTransaction,
    user: &str,
    ids: &BTreeSet<Uuid>,
) -> Result<Vec<LockedRow>, ApiError> {
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
    let mut lock = babies::Entity::find()
        .select_only()
        .column(babies::Column::Id)
        .column(babies::Column::ArchivedAt)
        .column(babies::Column::ChangeCounter)
        .column(baby_access::Column::UserId)
        .column(baby_access::Column::AccessLevel)
        .join(JoinType::InnerJoin, babies::Relation::BabyAccess.def())
        .filter(babies::Column::Id.is_in(ids.iter().copied()))
        .filter(Expr::exists(callers))
        .order_by_asc(babies::Column::Id);
    QuerySelect::query(&mut lock).lock_with_tables(LockType::Update, [babies::Entity]);
    Ok(lock.into_tuple::<LockedRow>().all(txn).await?)
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
/// kind's rows as one JSON parameter); on SQLite, in-process, one upsert per
/// kind and chunk, then the updates.
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
fn stored_array(rows: &[Box<dyn Entry>]) -> Result<String, ApiError> {
    let mut out = Vec::with_capacity(rows.len() * 300 + 2);
    out.push(b'[');
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        r.write_stored(&mut out).map_err(|e| {
            tracing::error!(error = %e, "an entry SQLite's upsert cannot take");
            ApiError::Internal
        })?;
    }
    out.push(b']');
    String::from_utf8(out).map_err(|_| ApiError::Internal)
}

/// The entries' wire form, as one JSON array text, for a parameter.
fn json_array(rows: &[Box<dyn Entry>]) -> Result<String, ApiError> {
    let mut out = Vec::with_capacity(rows.len() * 400 + 2);
    out.push(b'[');
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        r.write_json(&mut out).map_err(|_| ApiError::Internal)?;
    }
    out.push(b']');
    String::from_utf8(out).map_err(|_| ApiError::Internal)
}

/// `v` as one JSON text, for a parameter.
fn json<T: Serialize + ?Sized>(v: &T) -> Result<String, ApiError> {
    serde_json::to_string(v).map_err(|_| ApiError::Internal)
}
