use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One entry, as pull sends it and a conflict shows it.
#[derive(
    Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize, utoipa::ToSchema,
)]
#[sea_orm(table_name = "feed_log")]
#[serde(rename_all = "camelCase")]
#[schema(as = FeedEntry)]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(value_type = String, format = Uuid)]
    pub baby_id: Uuid,
    pub logged_by: String,
    pub method: crate::enums::FeedMethod,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::wire")]
    pub started_at: DateTimeUtc,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, with = "crate::wire::option")]
    pub ended_at: Option<DateTimeUtc>,
    pub duration_minutes: Option<i32>,
    pub amount_ml: Option<i32>,
    #[serde(default)]
    pub is_estimated: bool,
    pub estimated_source: Option<String>,
    pub start_side: Option<crate::enums::Side>,
    pub end_side: Option<crate::enums::Side>,
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
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::babies::Entity",
        from = "Column::BabyId",
        to = "super::babies::Column::Id",
        on_delete = "Cascade"
    )]
    Babies,
}

impl Related<super::babies::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Babies.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
