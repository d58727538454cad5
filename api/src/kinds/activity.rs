//! `activity_log`: tummy time, a bath, play; may be a timer.

use entity::enums::ActivityType;
use serde::{Deserialize, Serialize};

use super::{
    LogKind,
    fields::{Change, Running, Set, Timestamp, UpTo},
};

/// What a client writes of an activity besides the common fields.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = ActivityData)]
pub struct Activity {
    /// Required to create.
    #[serde(default, rename = "type", skip_serializing_if = "Set::is_keep")]
    #[schema(value_type = Option<ActivityType>)]
    pub activity_type: Set<ActivityType>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Change<Timestamp>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 1440)]
    pub duration_minutes: Change<UpTo<1440>>,
    /// Create only: makes the entry a timer.
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<Running>)]
    pub timer_state: Change<Running>,
}

impl LogKind for Activity {
    const NAME: &'static str = "activity_log";
    type Entity = entity::activity_log::Entity;
}
