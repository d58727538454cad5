//! The one place that answers "may user U do action A on baby B", from the
//! `baby_access` junction rows. A user with no row for a baby is told it does
//! not exist (404), never 403: nobody learns another family's baby exists.

use std::collections::HashMap;

use entity::{babies, baby_access};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, prelude::Uuid};

use crate::error::ApiError;

/// Access levels, ordered: a higher level can do all a lower one can.
pub use entity::enums::AccessLevel as Level;

/// Does `level` allow `action`?
pub fn allows(level: Level, action: Action) -> bool {
    match action {
        Action::Read => true,
        Action::Write => level >= Level::Editor,
        Action::Manage => level == Level::Owner,
    }
}

/// What a caller wants to do with a baby.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// See the baby, its caregivers and its logs.
    Read,
    /// Write logs and edit the baby's details (editor, owner).
    Write,
    /// Share, change access, invite, archive (owner).
    Manage,
}

/// The caller's level on `baby`, if any.
pub async fn level_of<C: ConnectionTrait>(
    db: &C,
    user: &str,
    baby: Uuid,
) -> Result<Option<Level>, ApiError> {
    Ok(baby_access::Entity::find_by_id((baby, user.to_owned()))
        .one(db)
        .await?
        .map(|row| row.access_level))
}

/// The caller's levels on each of `babies` they can access (others are absent).
pub async fn levels_of<C: ConnectionTrait>(
    db: &C,
    user: &str,
    babies: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, Level>, ApiError> {
    let ids: Vec<Uuid> = babies.into_iter().collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = baby_access::Entity::find()
        .filter(baby_access::Column::UserId.eq(user))
        .filter(baby_access::Column::BabyId.is_in(ids))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.baby_id, r.access_level))
        .collect())
}

/// Loads `baby` if the caller may do `action` on it: 404 when they have no
/// access at all, 403 when their level is too low.
pub async fn authorize<C: ConnectionTrait>(
    db: &C,
    user: &str,
    baby: Uuid,
    action: Action,
) -> Result<(babies::Model, Level), ApiError> {
    let found = baby_access::Entity::find_by_id((baby, user.to_owned()))
        .find_also_related(babies::Entity)
        .one(db)
        .await?;
    let Some((row, Some(model))) = found else {
        return Err(ApiError::not_found("baby"));
    };
    let level = row.access_level;
    if !allows(level, action) {
        return Err(ApiError::Forbidden(format!(
            "{} access does not allow this on the baby",
            level.as_str()
        )));
    }
    Ok((model, level))
}

/// Like [`authorize`], but first locks the baby's row for the rest of the
/// transaction (PostgreSQL `FOR UPDATE`; SQLite write transactions are
/// already exclusive), so that concurrent changes to one baby's access or
/// counter take turns.
pub async fn authorize_locked<C: ConnectionTrait>(
    txn: &C,
    user: &str,
    baby: Uuid,
    action: Action,
) -> Result<(babies::Model, Level), ApiError> {
    lock_baby(txn, baby).await?;
    authorize(txn, user, baby, action).await
}

/// Locks the baby row until the transaction ends.
pub async fn lock_baby<C: ConnectionTrait>(
    txn: &C,
    baby: Uuid,
) -> Result<Option<babies::Model>, ApiError> {
    Ok(babies::Entity::find_by_id(baby)
        .lock_exclusive()
        .one(txn)
        .await?)
}

/// Checks that `user` may take access to one more baby (`MAX_BABIES_PER_USER`,
/// archived babies included). Locks the user's row first, so that one user's
/// concurrent creates and accepts take turns and cannot overshoot.
pub async fn check_baby_room<C: ConnectionTrait>(
    txn: &C,
    user: &str,
    max: u64,
) -> Result<(), ApiError> {
    use sea_orm::PaginatorTrait;
    entity::users::Entity::find_by_id(user.to_owned())
        .lock_exclusive()
        .one(txn)
        .await?;
    let n = baby_access::Entity::find()
        .filter(baby_access::Column::UserId.eq(user))
        .count(txn)
        .await?;
    if n >= max {
        return Err(ApiError::LimitReached {
            limit: "babies_per_user",
            message: format!("a user can access at most {max} babies"),
        });
    }
    Ok(())
}

/// How many owners `baby` has.
pub async fn owner_count<C: ConnectionTrait>(db: &C, baby: Uuid) -> Result<u64, ApiError> {
    use sea_orm::PaginatorTrait;
    Ok(baby_access::Entity::find()
        .filter(baby_access::Column::BabyId.eq(baby))
        .filter(baby_access::Column::AccessLevel.eq(Level::Owner))
        .count(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_allow_what_the_protocol_says() {
        assert!(allows(Level::Viewer, Action::Read));
        assert!(!allows(Level::Viewer, Action::Write));
        assert!(!allows(Level::Viewer, Action::Manage));
        assert!(allows(Level::Editor, Action::Write));
        assert!(!allows(Level::Editor, Action::Manage));
        assert!(allows(Level::Owner, Action::Manage));
        assert!(Level::Owner > Level::Editor && Level::Editor > Level::Viewer);
        for l in Level::ALL.iter().copied() {
            assert_eq!(Level::parse(l.as_str()), Some(l));
        }
        assert_eq!(Level::parse("admin"), None);
    }
}
