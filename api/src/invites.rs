//! Invites: how an owner shares a baby. Only the SHA-256 of a token is stored;
//! the token is shown once, when the invite is made.

use crate::db::Db;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use entity::{baby_access, baby_invites};
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, Set,
    prelude::Uuid,
    sea_query::{Expr, ExprTrait},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    access::{self, Action, Level},
    db::begin_write,
    error::ApiError,
    time::{now, ts, ts_opt},
};

/// `POST /api/babies/{id}/invites`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewInvite {
    pub access_level: Level,
    /// Default 72.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 720)]
    pub expires_in_hours: Option<i64>,
    /// Default 1.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub max_uses: Option<i64>,
}

/// `GET /api/babies/{id}/invites`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InviteList {
    pub invites: Vec<InviteView>,
}

/// `POST /api/invites/accept`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvite {
    pub token: String,
}

/// The answer to making an invite: the only time the token is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteCreated {
    pub id: Uuid,
    pub token: String,
    pub access_level: Level,
    pub expires_at: String,
    pub max_uses: i32,
    pub uses_count: i32,
}

/// An invite as listed to owners: never the token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InviteView {
    pub id: Uuid,
    pub access_level: Level,
    pub expires_at: String,
    pub max_uses: i32,
    pub uses_count: i32,
    pub revoked_at: Option<String>,
    pub created_by: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    pub baby_id: Uuid,
    pub access_level: Level,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// 256 random bits, URL-safe base64 without padding (43 characters).
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn view(m: &baby_invites::Model) -> Option<InviteView> {
    Some(InviteView {
        id: m.id,
        access_level: m.access_level,
        expires_at: ts(&m.expires_at),
        max_uses: m.max_uses,
        uses_count: m.uses_count,
        revoked_at: ts_opt(&m.revoked_at),
        created_by: m.created_by.clone(),
        created_at: ts(&m.created_at),
    })
}

fn in_range(
    field: &str,
    value: Option<i64>,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ApiError> {
    let v = value.unwrap_or(default);
    if !(min..=max).contains(&v) {
        return Err(ApiError::invalid_field(
            field,
            format!("must be {min} to {max}"),
        ));
    }
    Ok(v)
}

pub async fn create(
    db: &Db,
    user: &str,
    baby: Uuid,
    new: NewInvite,
    max_open: u64,
) -> Result<InviteCreated, ApiError> {
    use sea_orm::PaginatorTrait;
    let hours = in_range("expiresInHours", new.expires_in_hours, 72, 1, 720)?;
    let max_uses = in_range("maxUses", new.max_uses, 1, 1, 100)? as i32;
    let (_turn, txn) = begin_write(db).await?;
    access::authorize_locked(&txn, user, baby, Action::Manage).await?;
    let t = now();
    let open = baby_invites::Entity::find()
        .filter(baby_invites::Column::BabyId.eq(baby))
        .filter(baby_invites::Column::RevokedAt.is_null())
        .filter(baby_invites::Column::ExpiresAt.gt(t))
        .filter(
            Expr::col(baby_invites::Column::UsesCount).lt(Expr::col(baby_invites::Column::MaxUses)),
        )
        .count(&txn)
        .await?;
    if open >= max_open {
        return Err(ApiError::LimitReached {
            limit: "open_invites_per_baby",
            message: format!("a baby has at most {max_open} open invites; revoke one first"),
        });
    }
    let token = new_token();
    let model = baby_invites::ActiveModel {
        id: Set(Uuid::now_v7()),
        baby_id: Set(baby),
        token_hash: Set(hash(&token)),
        access_level: Set(new.access_level),
        expires_at: Set(t + TimeDelta::hours(hours)),
        max_uses: Set(max_uses),
        uses_count: Set(0),
        revoked_at: Set(None),
        created_by: Set(user.to_owned()),
        created_at: Set(t),
        updated_at: Set(t),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(InviteCreated {
        id: model.id,
        token,
        access_level: new.access_level,
        expires_at: ts(&model.expires_at),
        max_uses: model.max_uses,
        uses_count: model.uses_count,
    })
}

pub async fn list<C: sea_orm::ConnectionTrait>(
    db: &C,
    user: &str,
    baby: Uuid,
) -> Result<Vec<InviteView>, ApiError> {
    access::authorize(db, user, baby, Action::Manage).await?;
    let rows = baby_invites::Entity::find()
        .filter(baby_invites::Column::BabyId.eq(baby))
        .order_by_asc(baby_invites::Column::CreatedAt)
        .order_by_asc(baby_invites::Column::Id)
        .all(db)
        .await?;
    Ok(rows.iter().filter_map(view).collect())
}

/// Revokes an invite; revoking a revoked invite changes nothing.
pub async fn revoke(db: &Db, user: &str, baby: Uuid, invite: Uuid) -> Result<(), ApiError> {
    access::authorize(db, user, baby, Action::Manage).await?;
    let t = now();
    let found = baby_invites::Entity::find_by_id(invite)
        .filter(baby_invites::Column::BabyId.eq(baby))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("invite"))?;
    if found.revoked_at.is_none() {
        let mut active = found.into_active_model();
        active.revoked_at = Set(Some(t));
        active.updated_at = Set(t);
        active.update(db).await?;
    }
    Ok(())
}

fn unusable(m: &baby_invites::Model, at: DateTime<Utc>) -> Option<&'static str> {
    if m.revoked_at.is_some() {
        Some("the invite was revoked")
    } else if m.expires_at <= at {
        Some("the invite has expired")
    } else if m.uses_count >= m.max_uses {
        Some("the invite has been used up")
    } else {
        None
    }
}

/// Accepts an invite for the caller, atomically: the baby's row is locked,
/// and a use is taken only by a conditional update that cannot overshoot.
/// A use is taken whenever the invite gives the caller access or raises
/// their level, and only then: a caller already at the invite's level or
/// higher keeps it and uses nothing.
pub async fn accept(
    db: &Db,
    events: &crate::events::Events,
    user: &str,
    req: AcceptInvite,
    max_babies: u64,
) -> Result<Accepted, ApiError> {
    let token = req.token.trim();
    if token.is_empty() || token.len() > 512 || token.contains('\0') {
        return Err(ApiError::not_found("invite"));
    }
    let token_hash = hash(token);
    let find = || {
        baby_invites::Entity::find().filter(baby_invites::Column::TokenHash.eq(token_hash.clone()))
    };
    let invite = find()
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("invite"))?;

    let (_turn, txn) = begin_write(db).await?;
    access::lock_baby(&txn, invite.baby_id).await?;
    // Re-read under the lock.
    let invite = find()
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::not_found("invite"))?;
    let offered = invite.access_level;
    let t = now();
    let existing = access::level_of(&txn, user, invite.baby_id).await?;
    if let Some(current) = existing
        && current >= offered
    {
        return Ok(Accepted {
            baby_id: invite.baby_id,
            access_level: current,
        });
    }
    if let Some(why) = unusable(&invite, t) {
        return Err(ApiError::InviteUnusable(why.into()));
    }
    if existing.is_none() {
        access::check_baby_room(&txn, user, max_babies).await?;
    }
    let used = baby_invites::Entity::update_many()
        .col_expr(
            baby_invites::Column::UsesCount,
            Expr::col(baby_invites::Column::UsesCount).add(1),
        )
        .col_expr(baby_invites::Column::UpdatedAt, Expr::value(t))
        .filter(baby_invites::Column::Id.eq(invite.id))
        .filter(
            Expr::col(baby_invites::Column::UsesCount).lt(Expr::col(baby_invites::Column::MaxUses)),
        )
        .filter(baby_invites::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    if used.rows_affected != 1 {
        return Err(ApiError::InviteUnusable(
            "the invite has been used up".into(),
        ));
    }
    if existing.is_some() {
        baby_access::Entity::update_many()
            .col_expr(baby_access::Column::AccessLevel, Expr::value(offered))
            .col_expr(baby_access::Column::UpdatedAt, Expr::value(t))
            .filter(baby_access::Column::BabyId.eq(invite.baby_id))
            .filter(baby_access::Column::UserId.eq(user))
            .exec(&txn)
            .await?;
    } else {
        baby_access::Entity::insert(baby_access::ActiveModel {
            baby_id: Set(invite.baby_id),
            user_id: Set(user.to_owned()),
            access_level: Set(offered),
            created_at: Set(t),
            updated_at: Set(t),
        })
        .exec_without_returning(&txn)
        .await?;
    }
    let change = crate::events::Change::new([user.to_owned()], [invite.baby_id]);
    events.commit(txn, &[change]).await?;
    Ok(Accepted {
        baby_id: invite.baby_id,
        access_level: offered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43); // 256 bits
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), a);
    }
}
