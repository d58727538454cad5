//! `pumping_log`: expressing milk, by hand or pump; may be a timer.

use entity::enums::Side;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    LogKind,
    fields::{Change, Running, Timestamp, UpTo},
};
use crate::sync::validate::Rejection;

/// What a client writes of a pumping session besides the common fields.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = PumpingData)]
pub struct Pumping {
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Change<Timestamp>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 1440)]
    pub duration_minutes: Change<UpTo<1440>>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 1000)]
    pub left_ml: Change<UpTo<1000>>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 1000)]
    pub right_ml: Change<UpTo<1000>>,
    /// While the entry has `leftMl` or `rightMl`, the server keeps it their
    /// sum (a missing side counts 0); a different value sent is invalid.
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 2000)]
    pub total_ml: Change<UpTo<2000>>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<Side>)]
    pub start_side: Change<Side>,
    /// Create only: makes the entry a timer.
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<Running>)]
    pub timer_state: Change<Running>,
}

impl LogKind for Pumping {
    const NAME: &'static str = "pumping_log";
    type Entity = entity::pumping_log::Entity;

    fn settle(
        e: &mut entity::pumping_log::Model,
        sent: &Map<String, Value>,
    ) -> Result<(), Rejection> {
        if e.left_ml.is_none() && e.right_ml.is_none() {
            return Ok(());
        }
        let sum = e.left_ml.unwrap_or(0) + e.right_ml.unwrap_or(0);
        if let Some(total) = sent.get("totalMl")
            && total.as_i64() != Some(i64::from(sum))
        {
            return Err(Rejection::invalid(format!(
                "data.totalMl: must be leftMl + rightMl ({sum}) while either is given"
            )));
        }
        e.total_ml = Some(sum);
        Ok(())
    }
}
