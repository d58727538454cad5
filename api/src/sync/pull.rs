//! `POST /api/sync/pull`: what changed since the cursor, per baby in version
//! order, read from one consistent snapshot so that no write is skipped.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use entity::{babies, baby_access, feed_log, nappy_log, server_settings, sleep_log, sync_clients};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, prelude::Uuid, sea_query::ExprTrait,
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

/// Rows of one kind with `version > seen` for every baby, ordered by (baby,
/// version), at most `limit`: one range scan of the (baby_id, version) index
/// per baby, in one statement.
async fn changes<C: ConnectionTrait>(
    db: &C,
    kind: Kind,
    from: &BTreeMap<Uuid, i64>,
    limit: u64,
) -> Result<Vec<Record>, ApiError> {
    macro_rules! scan {
        ($e:ident) => {{
            let mut cond = Condition::any();
            for (baby, seen) in from {
                cond = cond.add(
                    $e::Column::BabyId
                        .eq(*baby)
                        .and($e::Column::Version.gt(*seen)),
                );
            }
            $e::Entity::find()
                .filter(cond)
                .order_by_asc($e::Column::BabyId)
                .order_by_asc($e::Column::Version)
                .limit(limit)
                .all(db)
                .await?
                .into_iter()
                .map(Record::from)
                .collect()
        }};
    }
    if from.is_empty() {
        return Ok(vec![]);
    }
    Ok(match kind {
        Kind::Feed => scan!(feed_log),
        Kind::Sleep => scan!(sleep_log),
        Kind::Nappy => scan!(nappy_log),
    })
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

    // Each kind's first limit+1 rows in (baby, version) order; merged, the
    // first `limit` of them are the page, and any beyond say there is more.
    let mut merged: Vec<Record> = vec![];
    for kind in Kind::ALL {
        merged.extend(changes(&txn, kind, &from, req.limit + 1).await?);
    }
    txn.commit().await?;
    merged.sort_by_key(|r| (r.baby_id, r.version));
    let has_more = merged.len() as u64 > req.limit;
    merged.truncate(req.limit as usize);

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
