//! `feed_log`: a breast or bottle feed.

use entity::enums::{FeedMethod, Side};
use serde::{Deserialize, Serialize};

use super::{
    LogKind,
    fields::{Change, Flag, Running, Set, Text, Timestamp, UpTo},
};

/// What a client writes of a feed besides the common fields.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = FeedData)]
pub struct Feed {
    /// Required to create.
    #[serde(default, skip_serializing_if = "Set::is_keep")]
    #[schema(value_type = Option<FeedMethod>)]
    pub method: Set<FeedMethod>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Change<Timestamp>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 1440)]
    pub duration_minutes: Change<UpTo<1440>>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 2000)]
    pub amount_ml: Change<UpTo<2000>>,
    /// Default false.
    #[serde(default, skip_serializing_if = "Set::is_keep")]
    #[schema(value_type = Option<bool>)]
    pub is_estimated: Set<Flag>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<String>, max_length = 64)]
    pub estimated_source: Change<Text<64>>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<Side>)]
    pub end_side: Change<Side>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<Side>)]
    pub start_side: Change<Side>,
    /// Create only: makes the entry a timer.
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<Running>)]
    pub timer_state: Change<Running>,
}

impl LogKind for Feed {
    const NAME: &'static str = "feed_log";
    type Entity = entity::feed_log::Entity;
}
