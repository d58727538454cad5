//! `POST /api/sync/pull`: what changed since the cursor, per baby in version
//! order, read from one consistent snapshot so that no write is skipped.
//!
//! A page takes four statements whatever the number of babies: one walk of
//! the three (baby_id, version) indexes (a bounded ordered scan per table and
//! baby) finds where the page ends, then one read per log table (an index
//! range scan per baby) fetches exactly its rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use entity::{babies, baby_access, server_settings, sync_clients};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, Set,
    prelude::Uuid,
    sea_query::{Alias, Asterisk, Expr, ExprTrait, Order, Query, SelectStatement, UnionType},
};
use serde_json::{Value, json};

use super::{
    cursor::{self, Cursor},
    records::{Kind, Record},
    validate::PullRequest,
};
use crate::{access::Level, babies::BabyView, error::ApiError};

/// What pull answers.
#[derive(Debug)]
pub struct PullOutcome {
    pub body: Value,
    pub entries: usize,
}

const CURSOR_KEY: &str = "pull_cursor_key";

/// The cursor signing key every replica shares, made once in the database.
pub async fn cursor_key(db: &DatabaseConnection) -> Result<Vec<u8>, ApiError> {
    let find = || server_settings::Entity::find_by_id(CURSOR_KEY.to_owned());
    if let Some(row) = find().one(db).await? {
        return hex::decode(row.value).map_err(|_| ApiError::Internal);
    }
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    server_settings::Entity::insert(server_settings::ActiveModel {
        name: Set(CURSOR_KEY.to_owned()),
        value: Set(hex::encode(bytes)),
        created_at: Set(crate::time::now()),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(db)
    .await?;
    let row = find().one(db).await?.ok_or(ApiError::Internal)?;
    hex::decode(row.value).map_err(|_| ApiError::Internal)
}

/// Per baby, the versions a page covers: `(seen, up_to]` (no upper bound: `None`).
type Ranges = BTreeMap<Uuid, (i64, Option<i64>)>;

fn col(name: &str) -> Expr {
    Expr::col(Alias::new(name))
}

/// `parts` joined with UNION ALL.
fn union_all(mut parts: Vec<SelectStatement>) -> Option<SelectStatement> {
    let mut q = parts.pop()?;
    for p in parts {
        q.union(UnionType::All, p);
    }
    Some(q)
}

/// Where the page ends: the `limit`-th change in (baby, version) order over
/// the three tables. Each (table, baby) branch walks that table's
/// (baby_id, version) index from the cursor and stops after `limit + 1`
/// entries. Returns each baby's range for the page, and whether there is more.
async fn page_ranges<C: ConnectionTrait>(
    db: &C,
    from: &BTreeMap<Uuid, i64>,
    limit: u64,
) -> Result<(Ranges, bool), ApiError> {
    let all: Ranges = from.iter().map(|(b, v)| (*b, (*v, None))).collect();
    let mut parts = vec![];
    for kind in Kind::ALL {
        for (baby, seen) in from {
            let walk = Query::select()
                .column(Alias::new("baby_id"))
                .column(Alias::new("version"))
                .from(Alias::new(kind.as_str()))
                .and_where(col("baby_id").eq(*baby))
                .and_where(col("version").gt(*seen))
                .order_by(Alias::new("version"), Order::Asc)
                .limit(limit + 1)
                .to_owned();
            parts.push(
                Query::select()
                    .column(Alias::new("baby_id"))
                    .column(Alias::new("version"))
                    .from_subquery(walk, Alias::new("w"))
                    .to_owned(),
            );
        }
    }
    let Some(mut q) = union_all(parts) else {
        return Ok((all, false));
    };
    q.order_by(Alias::new("baby_id"), Order::Asc)
        .order_by(Alias::new("version"), Order::Asc)
        .limit(limit + 1);
    let rows = db
        .query_all_raw(db.get_database_backend().build(&q))
        .await?;
    if rows.len() as u64 <= limit {
        return Ok((all, false));
    }
    let last = &rows[limit as usize - 1];
    let (cut_baby, cut_version): (Uuid, i64) =
        (last.try_get("", "baby_id")?, last.try_get("", "version")?);
    let ranges = all
        .into_iter()
        .filter(|(b, _)| *b <= cut_baby)
        .map(|(b, (seen, _))| (b, (seen, (b == cut_baby).then_some(cut_version))))
        .collect();
    Ok((ranges, true))
}

/// The rows of one kind in the page's ranges: one index range scan per baby.
async fn changes<C: ConnectionTrait>(
    db: &C,
    kind: Kind,
    ranges: &Ranges,
) -> Result<Vec<Record>, ApiError> {
    let parts = ranges
        .iter()
        .map(|(baby, (seen, up_to))| {
            let mut q = Query::select();
            q.column(Asterisk)
                .from(Alias::new(kind.as_str()))
                .and_where(col("baby_id").eq(*baby))
                .and_where(col("version").gt(*seen));
            if let Some(v) = up_to {
                q.and_where(col("version").lte(*v));
            }
            q
        })
        .collect();
    let Some(q) = union_all(parts) else {
        return Ok(vec![]);
    };
    Ok(super::records::fetch(db, kind, &q).await?)
}

#[tracing::instrument(skip_all, err, fields(client.id = %req.client_id, limit = req.limit))]
pub async fn pull(
    db: &DatabaseConnection,
    key: &[u8],
    user: &str,
    req: PullRequest,
) -> Result<PullOutcome, ApiError> {
    let seen: Cursor = match &req.cursor {
        Some(text) => cursor::decode(key, user, text)?,
        None => Cursor::new(),
    };
    // One snapshot for everything read below.
    let txn = crate::db::begin_snapshot(db).await?;
    let last_mutation_id = match sync_clients::Entity::find_by_id(req.client_id)
        .one(&txn)
        .await?
    {
        Some(c) if c.user_id != user => {
            return Err(ApiError::Forbidden(
                "this clientId belongs to another user".into(),
            ));
        }
        Some(c) => c.last_mutation_id,
        None => 0,
    };
    let visible: Vec<(baby_access::Model, Option<babies::Model>)> = baby_access::Entity::find()
        .filter(baby_access::Column::UserId.eq(user))
        .find_also_related(babies::Entity)
        .order_by_asc(baby_access::Column::CreatedAt)
        .order_by_asc(baby_access::Column::BabyId)
        .all(&txn)
        .await?;
    let mut babies_out = vec![];
    let mut from: BTreeMap<Uuid, i64> = BTreeMap::new();
    for (row, baby) in &visible {
        let (Some(baby), Some(level)) = (baby, Level::parse(&row.access_level)) else {
            continue;
        };
        babies_out.push(BabyView::new(baby, level));
        from.insert(baby.id, seen.get(&baby.id).copied().unwrap_or(0));
    }
    let revoked: BTreeSet<Uuid> = seen
        .keys()
        .filter(|b| !from.contains_key(b))
        .copied()
        .collect();

    // Where the page ends, then exactly its rows of each kind. On PostgreSQL
    // the walk must be an ordered index scan that stops early, whatever the
    // planner believes of the table's size (it may never have been analyzed).
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(
            "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off; SET LOCAL jit = off",
        )
        .await?;
    }
    let (ranges, has_more) = page_ranges(&txn, &from, req.limit).await?;
    let mut merged: Vec<Record> = vec![];
    for kind in Kind::ALL {
        merged.extend(changes(&txn, kind, &ranges).await?);
    }
    txn.commit().await?;
    merged.sort_by_key(|r| (r.baby_id, r.version));

    let mut next = from.clone();
    let mut out: HashMap<Kind, Vec<Value>> = Kind::ALL.iter().map(|k| (*k, vec![])).collect();
    for r in &merged {
        next.insert(r.baby_id, r.version);
        out.get_mut(&r.kind).expect("every kind").push(r.to_json());
    }
    let body = json!({
        "cursor": cursor::encode(key, user, &next),
        "hasMore": has_more,
        "lastMutationId": last_mutation_id,
        "babies": babies_out,
        "revokedBabyIds": revoked,
        "changes": {
            "feed_log": out.remove(&Kind::Feed),
            "sleep_log": out.remove(&Kind::Sleep),
            "nappy_log": out.remove(&Kind::Nappy),
        },
    });
    Ok(PullOutcome {
        body,
        entries: merged.len(),
    })
}
