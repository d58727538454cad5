//! Babies and their caregivers: the domain behind `/api/babies`.

use crate::db::Db;
use chrono::{Days, NaiveDate, Utc};
use entity::{babies, baby_access, users};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, ModelTrait,
    QueryFilter, QueryOrder, Set, prelude::Uuid,
};
use serde::{Deserialize, Deserializer, Serialize};

use crate::{
    access::{self, Action, Level},
    db::begin_write,
    error::ApiError,
    events::{Change, Events},
    time::{now, ts, ts_opt},
};

pub use entity::enums::Gender;

/// `POST /api/babies`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewBaby {
    #[serde(default)]
    pub id: Option<Uuid>,
    /// 1 to 100 characters after trimming.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[serde(default)]
    pub birth_date: Option<NaiveDate>,
    #[serde(default)]
    pub gender: Option<Gender>,
}

/// Tells a field that is absent (`None`) from one that is `null` (`Some(None)`).
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH /api/babies/{id}`: only the fields given change; `null` clears
/// `birthDate` or `gender`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BabyPatch {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub birth_date: Option<Option<NaiveDate>>,
    #[serde(default, deserialize_with = "present")]
    pub gender: Option<Option<Gender>>,
}

/// The protocol's Baby.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BabyView {
    pub id: Uuid,
    pub name: String,
    pub birth_date: Option<NaiveDate>,
    pub gender: Option<Gender>,
    pub access_level: Level,
    pub created_at: String,
    pub updated_at: String,
    pub archived_at: Option<String>,
}

impl BabyView {
    pub fn new(m: &babies::Model, level: Level) -> Self {
        Self {
            id: m.id,
            name: m.name.clone(),
            birth_date: m.birth_date,
            gender: m.gender,
            access_level: level,
            created_at: ts(&m.created_at),
            updated_at: ts(&m.updated_at),
            archived_at: ts_opt(&m.archived_at),
        }
    }
}

/// `GET /api/babies/{id}/caregivers`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CaregiverList {
    pub caregivers: Vec<CaregiverView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaregiverView {
    pub user_id: String,
    pub display_name: Option<String>,
    pub access_level: Level,
    pub since: String,
}

pub(crate) fn validate_name(name: &str) -> Result<String, ApiError> {
    if name.contains('\0') {
        return Err(ApiError::invalid_field("name", "must not contain NUL"));
    }
    let trimmed = name.trim();
    let len = trimmed.chars().count();
    if !(1..=100).contains(&len) {
        return Err(ApiError::invalid_field(
            "name",
            "must be 1 to 100 characters after trimming",
        ));
    }
    Ok(trimmed.to_owned())
}

pub(crate) fn validate_birth_date(date: NaiveDate) -> Result<NaiveDate, ApiError> {
    let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).expect("valid date");
    // "Today" anywhere on Earth: up to UTC+14 is already tomorrow in UTC.
    let latest = Utc::now().date_naive() + Days::new(1);
    if date < earliest || date > latest {
        return Err(ApiError::invalid_field(
            "birthDate",
            "must not be in the future nor before 1900",
        ));
    }
    Ok(date)
}

/// Creates a baby and makes the caller its owner, in one transaction. The same
/// id again from a caller who can see it is a safe retry: `Ok((baby, false))`.
pub async fn create(
    db: &Db,
    events: &Events,
    user: &str,
    new: NewBaby,
    max_babies: u64,
) -> Result<(BabyView, bool), ApiError> {
    let name = validate_name(&new.name)?;
    let birth_date = new.birth_date.map(validate_birth_date).transpose()?;
    let id = new.id.unwrap_or_else(Uuid::now_v7);
    let (_turn, txn) = begin_write(db).await?;
    if let Some(existing) = existing_for(&txn, user, id).await? {
        return Ok((existing, false));
    }
    crate::access::check_baby_room(&txn, user, max_babies).await?;
    let t = now();
    let baby = babies::Model {
        id,
        name,
        birth_date,
        gender: new.gender,
        change_counter: 0,
        created_at: t,
        updated_at: t,
        archived_at: None,
    };
    if !insert_owned(&txn, &baby, user).await? {
        // Lost a race with a create of the same id: answer as a retry would.
        return existing_for(&txn, user, id)
            .await?
            .map(|b| (b, false))
            .ok_or_else(|| ApiError::Conflict("that baby id is already in use".into()));
    }
    let model = babies::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or(ApiError::Internal)?;
    // The creator's other devices learn of the new baby.
    events
        .commit(txn, &[Change::new([user.to_owned()], [id])])
        .await?;
    Ok((BabyView::new(&model, Level::Owner), true))
}

/// Inserts `baby` (new) and makes `user` its owner; `false`, with nothing
/// written, when its id was taken meanwhile (a concurrent create or
/// import).
pub(crate) async fn insert_owned<C: ConnectionTrait>(
    db: &C,
    baby: &babies::Model,
    user: &str,
) -> Result<bool, ApiError> {
    let inserted = babies::Entity::insert(babies::ActiveModel::from(baby.clone()))
        .on_conflict_do_nothing()
        .exec_without_returning(db)
        .await?;
    if matches!(inserted, sea_orm::TryInsertResult::Conflicted) || inserted_rows(&inserted) == 0 {
        return Ok(false);
    }
    baby_access::Entity::insert(baby_access::ActiveModel {
        baby_id: Set(baby.id),
        user_id: Set(user.to_owned()),
        access_level: Set(Level::Owner),
        created_at: Set(baby.created_at),
        updated_at: Set(baby.created_at),
    })
    .exec_without_returning(db)
    .await?;
    Ok(true)
}

fn inserted_rows(r: &sea_orm::TryInsertResult<u64>) -> u64 {
    match r {
        sea_orm::TryInsertResult::Inserted(n) => *n,
        _ => 0,
    }
}

/// An existing baby with this id: the caller's view of it, or 409 when the
/// caller cannot see it.
async fn existing_for<C: ConnectionTrait>(
    db: &C,
    user: &str,
    id: Uuid,
) -> Result<Option<BabyView>, ApiError> {
    let Some(model) = babies::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    match access::level_of(db, user, id).await? {
        Some(level) => Ok(Some(BabyView::new(&model, level))),
        None => Err(ApiError::Conflict("that baby id is already in use".into())),
    }
}

/// Every baby the caller can access, archived ones included.
/// Every baby `user` can access, with their level, in the order they got
/// access (archived ones included).
pub async fn accessible<C: ConnectionTrait>(
    db: &C,
    user: &str,
) -> Result<Vec<(babies::Model, Level)>, ApiError> {
    let rows = baby_access::Entity::find()
        .filter(baby_access::Column::UserId.eq(user))
        .find_also_related(babies::Entity)
        .order_by_asc(baby_access::Column::CreatedAt)
        .order_by_asc(baby_access::Column::BabyId)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(row, baby)| Some((baby?, row.access_level)))
        .collect())
}

/// `GET /api/babies`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BabyList {
    pub babies: Vec<BabyView>,
}

pub async fn list<C: ConnectionTrait>(db: &C, user: &str) -> Result<BabyList, ApiError> {
    let babies = accessible(db, user).await?;
    Ok(BabyList {
        babies: babies
            .iter()
            .map(|(b, level)| BabyView::new(b, *level))
            .collect(),
    })
}

pub async fn get<C: ConnectionTrait>(db: &C, user: &str, id: Uuid) -> Result<BabyView, ApiError> {
    let (model, level) = access::authorize(db, user, id, Action::Read).await?;
    Ok(BabyView::new(&model, level))
}

pub async fn update(
    db: &Db,
    events: &Events,
    user: &str,
    id: Uuid,
    patch: BabyPatch,
) -> Result<BabyView, ApiError> {
    let name = match &patch.name {
        Some(Some(name)) => Some(validate_name(name)?),
        Some(None) => return Err(ApiError::invalid_field("name", "must not be null")),
        None => None,
    };
    let birth_date = match patch.birth_date {
        Some(Some(d)) => Some(Some(validate_birth_date(d)?)),
        other => other,
    };
    let (_turn, txn) = begin_write(db).await?;
    let (model, level) = access::authorize_locked(&txn, user, id, Action::Write).await?;
    if model.archived_at.is_some() {
        return Err(ApiError::Conflict(
            "the baby is archived and takes no changes".into(),
        ));
    }
    let mut active = model.into_active_model();
    if let Some(name) = name {
        active.name = Set(name);
    }
    if let Some(birth_date) = birth_date {
        active.birth_date = Set(birth_date);
    }
    if let Some(gender) = patch.gender {
        active.gender = Set(gender);
    }
    if active.is_changed() {
        active.updated_at = Set(now());
    }
    let model = active.update(&txn).await?;
    let changes = Change::to_caregivers(&txn, &[id]).await?;
    events.commit(txn, &changes).await?;
    Ok(BabyView::new(&model, level))
}

/// Archives (soft-deletes) the baby; archiving an archived baby changes nothing.
pub async fn archive(db: &Db, events: &Events, user: &str, id: Uuid) -> Result<BabyView, ApiError> {
    let (_turn, txn) = begin_write(db).await?;
    let (model, level) = access::authorize_locked(&txn, user, id, Action::Manage).await?;
    let model = if model.archived_at.is_none() {
        let t = now();
        let mut active = model.into_active_model();
        active.archived_at = Set(Some(t));
        active.updated_at = Set(t);
        active.update(&txn).await?
    } else {
        model
    };
    let changes = Change::to_caregivers(&txn, &[id]).await?;
    events.commit(txn, &changes).await?;
    Ok(BabyView::new(&model, level))
}

pub async fn caregivers<C: ConnectionTrait>(
    db: &C,
    user: &str,
    id: Uuid,
) -> Result<Vec<CaregiverView>, ApiError> {
    access::authorize(db, user, id, Action::Read).await?;
    let rows = baby_access::Entity::find()
        .filter(baby_access::Column::BabyId.eq(id))
        .find_also_related(users::Entity)
        .order_by_asc(baby_access::Column::CreatedAt)
        .order_by_asc(baby_access::Column::UserId)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(row, u)| caregiver_view(row, u))
        .collect())
}

fn caregiver_view(row: baby_access::Model, user: Option<users::Model>) -> Option<CaregiverView> {
    Some(CaregiverView {
        access_level: row.access_level,
        since: ts(&row.created_at),
        display_name: user.and_then(|u| u.display_name),
        user_id: row.user_id,
    })
}

/// Changes a caregiver's level (owner only). The last owner cannot be demoted.
pub async fn set_caregiver(
    db: &Db,
    events: &Events,
    user: &str,
    id: Uuid,
    target: &str,
    level: Level,
) -> Result<CaregiverView, ApiError> {
    let (_turn, txn) = begin_write(db).await?;
    access::authorize_locked(&txn, user, id, Action::Manage).await?;
    let row = baby_access::Entity::find_by_id((id, target.to_owned()))
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::not_found("caregiver"))?;
    let current = row.access_level;
    if current == Level::Owner && level != Level::Owner && access::owner_count(&txn, id).await? <= 1
    {
        return Err(ApiError::LastOwner(
            "the baby would be left without an owner".into(),
        ));
    }
    let row = if current != level {
        let mut active = row.into_active_model();
        active.access_level = Set(level);
        active.updated_at = Set(now());
        active.update(&txn).await?
    } else {
        row
    };
    let profile = users::Entity::find_by_id(target.to_owned())
        .one(&txn)
        .await?;
    events
        .commit(txn, &[Change::new([target.to_owned()], [id])])
        .await?;
    caregiver_view(row, profile).ok_or(ApiError::Internal)
}

/// Removes a caregiver: an owner may remove anyone, anybody may leave. The
/// last owner can do neither.
pub async fn remove_caregiver(
    db: &Db,
    events: &Events,
    user: &str,
    id: Uuid,
    target: &str,
) -> Result<(), ApiError> {
    let (_turn, txn) = begin_write(db).await?;
    access::lock_baby(&txn, id).await?;
    let caller = access::level_of(&txn, user, id)
        .await?
        .ok_or_else(|| ApiError::not_found("baby"))?;
    if user != target && caller != Level::Owner {
        return Err(ApiError::Forbidden(
            "only an owner may remove another caregiver".into(),
        ));
    }
    let row = baby_access::Entity::find_by_id((id, target.to_owned()))
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::not_found("caregiver"))?;
    if row.access_level == Level::Owner && access::owner_count(&txn, id).await? <= 1 {
        return Err(ApiError::LastOwner(
            "the baby would be left without an owner".into(),
        ));
    }
    row.delete(&txn).await?;
    events
        .commit(txn, &[Change::new([target.to_owned()], [id])])
        .await?;
    Ok(())
}
