//! `POST /api/sync/push`: a batch of client mutations, applied exactly once in
//! one transaction.
//!
//! The work for a batch of N mutations is a bounded number of statements: the
//! client row (locked); the babies of updated and deleted records (one read
//! per kind, only when there are such mutations); the babies written to,
//! locked in id order with the caller's level and their change counters (one
//! statement); the stored records of every kind named (one read per kind);
//! then one multi-row upsert per kind, one counter update per baby written,
//! and the client's new `lastMutationId`.

use std::collections::{BTreeSet, HashMap, HashSet};

use entity::{babies, baby_access, sync_clients};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, IdenStatic, Iterable, QueryFilter, QueryOrder, QuerySelect, Set,
    prelude::Uuid,
    sea_query::{Alias, Asterisk, Expr, ExprTrait, LockType, OnConflict, Query},
};
use serde_json::{Value, json};

use super::{
    records::{Kind, Record},
    validate::{Mutation, Op, PushRequest, Rejection, check_record, parse_mutation},
};
use crate::{access::Level, db::begin_write, error::ApiError, time};

/// What push answers.
#[derive(Debug)]
pub struct PushOutcome {
    pub last_mutation_id: i64,
    pub results: Vec<Value>,
    /// (entity, outcome) of each new mutation, for metrics.
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

/// The stored records with these ids, of every kind.
async fn load_records<C: ConnectionTrait>(
    db: &C,
    ids: &HashMap<Kind, Vec<Uuid>>,
) -> Result<HashMap<(Kind, Uuid), Record>, ApiError> {
    let mut out = HashMap::new();
    for (kind, ids) in ids.iter().filter(|(_, ids)| !ids.is_empty()) {
        let query = Query::select()
            .column(Asterisk)
            .from(Alias::new(kind.as_str()))
            .and_where(Expr::col(Alias::new("id")).is_in(ids.iter().copied()))
            .to_owned();
        let records = super::records::fetch(db, *kind, &query).await?;
        out.extend(records.into_iter().map(|r| ((r.kind, r.id), r)));
    }
    Ok(out)
}

/// The batch being applied: records as they stand after each mutation so far,
/// the babies' counters, and the caller's access.
struct Batch<'a> {
    user: &'a str,
    now: chrono::DateTime<chrono::Utc>,
    records: HashMap<(Kind, Uuid), Record>,
    dirty: BTreeSet<(Kind, Uuid)>,
    babies: HashMap<Uuid, babies::Model>,
    counters: HashMap<Uuid, i64>,
    /// The caller's level on each locked baby: the babies it may write to.
    levels: HashMap<Uuid, Level>,
    /// Other babies the caller can see (for a conflict's `current`; never written).
    readable: HashSet<Uuid>,
}

type Applied = Result<i64, Rejection>;

impl Batch<'_> {
    /// May the caller write to `baby`? Strangers are told it does not exist.
    fn check_write(&self, baby: Uuid) -> Result<(), Rejection> {
        let Some(level) = self.levels.get(&baby) else {
            return Err(Rejection {
                message: "no such baby".into(),
                ..Rejection::not_found()
            });
        };
        if *level < Level::Editor {
            return Err(Rejection::forbidden("viewer access cannot write"));
        }
        match self.babies.get(&baby) {
            Some(b) if b.archived_at.is_some() => Err(Rejection::forbidden(
                "the baby is archived and takes no new writes",
            )),
            Some(_) => Ok(()),
            None => Err(Rejection::not_found()),
        }
    }

    /// The next version for `baby`: its counter plus one.
    fn next_version(&mut self, baby: Uuid) -> i64 {
        let c = self.counters.entry(baby).or_insert(0);
        *c += 1;
        *c
    }

    fn store(&mut self, mut r: Record, bump: bool) -> i64 {
        if bump {
            r.version = self.next_version(r.baby_id);
            r.updated_at = self.now;
        }
        let v = r.version;
        self.dirty.insert((r.kind, r.id));
        self.records.insert((r.kind, r.id), r);
        v
    }

    fn apply(&mut self, m: &Mutation) -> Applied {
        let key = (m.kind, m.record_id);
        let current = self.records.get(&key).cloned();
        match (m.op, current) {
            (Op::Create, None) => {
                let baby = m
                    .fields
                    .baby_id
                    .ok_or_else(|| Rejection::invalid("data.babyId: required to create"))?;
                self.check_write(baby)?;
                let mut r = Record::new(m.kind, m.record_id, baby, self.user, self.now);
                m.fields.apply(&mut r);
                check_record(&r)?;
                Ok(self.store(r, true))
            }
            (Op::Create, Some(r)) if m.fields.baby_id != Some(r.baby_id) => {
                let visible =
                    self.levels.contains_key(&r.baby_id) || self.readable.contains(&r.baby_id);
                let current = visible.then(|| r.to_json());
                Err(Rejection::conflict(
                    "a record with this id exists in another baby",
                    current,
                ))
            }
            (Op::Create | Op::Update, Some(r)) => self.update(m, r),
            (Op::Delete, Some(r)) => self.delete(m, r),
            (Op::Update | Op::Delete, None) => Err(Rejection::not_found()),
        }
    }

    /// Access to a stored record: checked against the baby it belongs to,
    /// never a `babyId` the client sends.
    fn check_stored(&self, m: &Mutation, r: &Record) -> Result<(), Rejection> {
        if !self.levels.contains_key(&r.baby_id) {
            return Err(Rejection::not_found());
        }
        if m.fields.baby_id.is_some_and(|b| b != r.baby_id) {
            return Err(Rejection::invalid(
                "data.babyId: a record cannot move to another baby",
            ));
        }
        self.check_write(r.baby_id)?;
        if let Some(base) = m.base_version
            && r.version > base
        {
            return Err(Rejection::conflict(
                format!(
                    "the record is at version {}, newer than baseVersion {base}",
                    r.version
                ),
                Some(r.to_json()),
            ));
        }
        Ok(())
    }

    fn update(&mut self, m: &Mutation, r: Record) -> Applied {
        self.check_stored(m, &r)?;
        if r.archived_at.is_some() {
            return Err(Rejection::conflict(
                "the record is archived",
                Some(r.to_json()),
            ));
        }
        let mut next = r;
        m.fields.apply(&mut next);
        check_record(&next)?;
        Ok(self.store(next, true))
    }

    fn delete(&mut self, m: &Mutation, r: Record) -> Applied {
        self.check_stored(m, &r)?;
        if r.archived_at.is_some() {
            return Ok(r.version);
        }
        let mut next = r;
        next.archived_at = Some(self.now);
        Ok(self.store(next, true))
    }
}

/// Rows per upsert statement: large enough that a push of 50 is one statement
/// per kind, small enough that a push of 1000 does not hold 16,000 bound
/// values at once.
const UPSERT_CHUNK: usize = 200;

/// Every column but the ones a record keeps for life.
fn updatable<E: EntityTrait>() -> Vec<E::Column> {
    E::Column::iter()
        .filter(|c| !["id", "baby_id", "logged_by", "created_at"].contains(&c.as_str()))
        .collect()
}

/// One multi-row upsert per chunk. The update only touches a row of the same
/// baby; anything else means a concurrent create in another family took the
/// id, and the whole push is retried.
async fn upsert<E, A>(txn: &DatabaseTransaction, rows: Vec<A>) -> Result<(), ApiError>
where
    E: EntityTrait,
    A: ActiveModelTrait<Entity = E> + Send,
{
    let id = E::Column::iter()
        .find(|c| c.as_str() == "id")
        .ok_or(ApiError::Internal)?;
    let baby = E::Column::iter()
        .find(|c| c.as_str() == "baby_id")
        .ok_or(ApiError::Internal)?;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(UPSERT_CHUNK).collect();
        let n = chunk.len() as u64;
        let mut on_conflict = OnConflict::column(id);
        on_conflict
            .update_columns(updatable::<E>())
            .action_and_where(
                Expr::col((E::default(), baby)).eq(Expr::col((Alias::new("excluded"), baby))),
            );
        let written = E::insert_many(chunk)
            .on_conflict(on_conflict)
            .exec_without_returning(txn)
            .await?;
        if written != n {
            return Err(ApiError::Unavailable(
                "a concurrent write took one of these ids; nothing was written; retry".into(),
            ));
        }
    }
    Ok(())
}

/// The entity a raw mutation names, for metrics.
fn raw_entity(m: &super::validate::RawMutation) -> &'static str {
    m.body
        .get("entity")
        .and_then(Value::as_str)
        .and_then(Kind::parse)
        .map_or("unknown", Kind::as_str)
}

/// Applies a push. Either everything (outcomes and `lastMutationId`) commits,
/// or nothing does.
#[tracing::instrument(skip_all, fields(client.id = %req.client_id, mutations = req.mutations.len()))]
pub async fn push(
    db: &DatabaseConnection,
    user: &str,
    req: PushRequest,
) -> Result<PushOutcome, ApiError> {
    let txn = begin_write(db).await?;
    let client = claim_client(&txn, user, req.client_id).await?;
    let last = client.last_mutation_id;
    let mut expected = last + 1;
    for m in req.mutations.iter().filter(|m| m.id > last) {
        if m.id != expected {
            return Err(ApiError::OutOfOrder { expected: last + 1 });
        }
        expected += 1;
    }
    let new_last = expected - 1;
    let now = time::now();
    // Parse the new mutations and let go of their JSON as we go: only ids and
    // entity names are needed after this.
    let seen: Vec<(i64, &'static str)> = req
        .mutations
        .iter()
        .map(|m| (m.id, raw_entity(m)))
        .collect();
    let parsed: Vec<(i64, &'static str, Result<Mutation, Rejection>)> = req
        .mutations
        .into_iter()
        .filter(|m| m.id > last)
        .map(|m| (m.id, raw_entity(&m), parse_mutation(&m, now)))
        .collect();
    if parsed.is_empty() {
        txn.commit().await?; // keeps a newly claimed client
        return Ok(PushOutcome {
            last_mutation_id: last,
            results: seen
                .iter()
                .map(|(id, _)| json!({"id": id, "status": "duplicate"}))
                .collect(),
            tally: seen
                .iter()
                .map(|(_, entity)| (*entity, "duplicate"))
                .collect(),
        });
    }

    // The babies written to: those of new creates, and those of the stored
    // records that updates and deletes name (read once, unlocked, for that).
    let mut ids: HashMap<Kind, Vec<Uuid>> = HashMap::new();
    let mut lookups: HashMap<Kind, Vec<Uuid>> = HashMap::new();
    let mut baby_ids: BTreeSet<Uuid> = BTreeSet::new();
    for m in parsed.iter().filter_map(|(_, _, m)| m.as_ref().ok()) {
        ids.entry(m.kind).or_default().push(m.record_id);
        match m.op {
            Op::Create => baby_ids.extend(m.fields.baby_id),
            Op::Update | Op::Delete => lookups.entry(m.kind).or_default().push(m.record_id),
        }
    }
    baby_ids.extend(
        load_records(&txn, &lookups)
            .await?
            .values()
            .map(|r| r.baby_id),
    );
    // Lock those of them the caller can access, in id order (no deadlocks
    // between pushes), with the caller's level and each baby's counter.
    let mut lock = babies::Entity::find()
        .find_also_related(baby_access::Entity)
        .filter(babies::Column::Id.is_in(baby_ids.iter().copied()))
        .filter(baby_access::Column::UserId.eq(user))
        .order_by_asc(babies::Column::Id);
    QuerySelect::query(&mut lock).lock_with_tables(LockType::Update, [babies::Entity]);
    let locked = lock.all(&txn).await?;
    // Writers to these babies now wait for us: read the records as they are.
    let records = load_records(&txn, &ids).await?;
    let levels: HashMap<Uuid, Level> = locked
        .iter()
        .filter_map(|(b, a)| Some((b.id, Level::parse(&a.as_ref()?.access_level)?)))
        .collect();
    // A create whose id lives in another baby is a conflict; whether it shows
    // the stored record depends on the caller seeing that baby (rare: a read).
    let elsewhere: BTreeSet<Uuid> = parsed
        .iter()
        .filter_map(|(_, _, m)| m.as_ref().ok())
        .filter(|m| m.op == Op::Create)
        .filter_map(|m| records.get(&(m.kind, m.record_id)))
        .map(|r| r.baby_id)
        .filter(|b| !levels.contains_key(b))
        .collect();
    let readable = if elsewhere.is_empty() {
        HashSet::new()
    } else {
        crate::access::levels_of(&txn, user, elsewhere)
            .await?
            .into_keys()
            .collect()
    };
    let mut batch = Batch {
        user,
        now,
        records,
        dirty: BTreeSet::new(),
        counters: locked
            .iter()
            .map(|(b, _)| (b.id, b.change_counter))
            .collect(),
        babies: locked.into_iter().map(|(b, _)| (b.id, b)).collect(),
        levels,
        readable,
    };

    let new_ids: HashSet<i64> = parsed.iter().map(|(id, _, _)| *id).collect();
    let mut outcomes: HashMap<i64, (Value, &'static str, &'static str)> = HashMap::new();
    for (id, entity, m) in &parsed {
        let entity = *entity;
        let result = match m {
            Ok(m) => batch.apply(m),
            Err(rejection) => Err(rejection.clone()),
        };
        let (value, status) = match result {
            Ok(version) => (
                json!({"id": id, "status": "applied", "version": version}),
                "applied",
            ),
            Err(r) => {
                let mut v =
                    json!({"id": id, "status": "rejected", "code": r.code, "message": r.message});
                if let Some(current) = r.current {
                    v["current"] = current;
                }
                (v, "rejected")
            }
        };
        outcomes.insert(*id, (value, entity, status));
    }

    // Write: one upsert per kind, the counters, the client.
    let mut by_kind: HashMap<Kind, Vec<Record>> = HashMap::new();
    for key in &batch.dirty {
        by_kind
            .entry(key.0)
            .or_default()
            .push(batch.records[key].clone());
    }
    for (kind, rows) in by_kind {
        match kind {
            Kind::Feed => upsert(&txn, rows.into_iter().map(Record::into_feed).collect()).await?,
            Kind::Sleep => upsert(&txn, rows.into_iter().map(Record::into_sleep).collect()).await?,
            Kind::Nappy => upsert(&txn, rows.into_iter().map(Record::into_nappy).collect()).await?,
        }
    }
    for (baby, counter) in &batch.counters {
        if batch
            .babies
            .get(baby)
            .is_some_and(|b| b.change_counter != *counter)
        {
            babies::Entity::update_many()
                .col_expr(babies::Column::ChangeCounter, Expr::value(*counter))
                .filter(babies::Column::Id.eq(*baby))
                .exec(&txn)
                .await?;
        }
    }
    sync_clients::Entity::update_many()
        .col_expr(sync_clients::Column::LastMutationId, Expr::value(new_last))
        .col_expr(sync_clients::Column::UpdatedAt, Expr::value(now))
        .filter(sync_clients::Column::ClientId.eq(req.client_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;

    let mut tally = vec![];
    let results = seen
        .iter()
        .map(|(id, entity)| {
            if new_ids.contains(id)
                && let Some((v, entity, status)) = outcomes.remove(id)
            {
                tally.push((entity, status));
                v
            } else {
                tally.push((*entity, "duplicate"));
                json!({"id": id, "status": "duplicate"})
            }
        })
        .collect();
    Ok(PushOutcome {
        last_mutation_id: new_last,
        results,
        tally,
    })
}
