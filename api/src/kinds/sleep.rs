//! `sleep_log`: a sleep.

use serde::{Deserialize, Serialize};

use super::{
    LogKind,
    fields::{Change, Running, Timestamp, UpTo},
};

/// What a client writes of a sleep besides the common fields.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = SleepData)]
pub struct Sleep {
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Change<Timestamp>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 2880)]
    pub duration_minutes: Change<UpTo<2880>>,
    /// Create only: makes the entry a timer.
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<Running>)]
    pub timer_state: Change<Running>,
}

impl LogKind for Sleep {
    const NAME: &'static str = "sleep_log";
    type Entity = entity::sleep_log::Entity;
}
