//! `growth_log`: a weighing or measuring.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    LogKind,
    fields::{Between, Change},
};
use crate::sync::validate::Rejection;

/// What a client writes of a measurement besides the common fields: at
/// least one of the three.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = GrowthData)]
pub struct Growth {
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<i32>, minimum = 300, maximum = 40000)]
    pub weight_grams: Change<Between<300, 40000>>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<i32>, minimum = 300, maximum = 1300)]
    pub length_mm: Change<Between<300, 1300>>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<i32>, minimum = 200, maximum = 650)]
    pub head_circumference_mm: Change<Between<200, 650>>,
}

impl LogKind for Growth {
    const NAME: &'static str = "growth_log";
    type Entity = entity::growth_log::Entity;

    fn settle(e: &mut entity::growth_log::Model, _: &Map<String, Value>) -> Result<(), Rejection> {
        if e.weight_grams.is_none() && e.length_mm.is_none() && e.head_circumference_mm.is_none() {
            return Err(Rejection::invalid(
                "data: a growth_log needs at least one of weightGrams, lengthMm, headCircumferenceMm",
            ));
        }
        Ok(())
    }
}
