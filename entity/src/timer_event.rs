use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One entry, as pull sends it and a conflict shows it.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel, Serialize, Deserialize, utoipa::ToSchema)]
#[sea_orm(table_name = "timer_event")]
#[serde(rename_all = "camelCase")]
#[schema(as = TimerEventEntry)]
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
    pub entry_entity: crate::enums::TimerEntity,
    #[schema(value_type = String, format = Uuid)]
    pub entry_id: Uuid,
    pub action: crate::enums::TimerAction,
    pub side: Option<crate::enums::Side>,
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
