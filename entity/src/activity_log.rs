use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One entry, as pull sends it and a conflict shows it.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize, utoipa::ToSchema)]
#[sea_orm(table_name = "activity_log")]
#[serde(rename_all = "camelCase")]
#[schema(as = ActivityEntry)]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub baby_id: Uuid,
    pub logged_by: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::wire")]
    pub started_at: DateTimeUtc,
    /// The protocol's `type`.
    #[sea_orm(column_name = "type")]
    #[serde(rename = "type")]
    pub activity_type: crate::enums::ActivityType,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, with = "crate::wire::option")]
    pub ended_at: Option<DateTimeUtc>,
    pub duration_minutes: Option<i32>,
    /// Set by the server: `null` unless the entry is a timer.
    pub timer_state: Option<crate::enums::TimerState>,
    /// Set by the server from the timer's events: `null` unless a timer.
    #[sea_orm(column_type = "Json", nullable)]
    #[schema(value_type = Option<Vec<crate::timer::Segment>>)]
    pub segments: Option<Json>,
    #[sea_orm(column_type = "Text", nullable)]
    pub notes: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::wire")]
    pub created_at: DateTimeUtc,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::wire")]
    pub updated_at: DateTimeUtc,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, with = "crate::wire::option")]
    pub archived_at: Option<DateTimeUtc>,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
