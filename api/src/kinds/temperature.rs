//! `temperature_log`: a temperature taken.

use entity::enums::TemperatureSite;
use serde::{Deserialize, Serialize};

use super::{
    LogKind,
    fields::{Celsius, Change, Set},
};

/// What a client writes of a temperature besides the common fields.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = TemperatureData)]
pub struct Temperature {
    /// Required to create: 30.0 to 45.0, at most 1 decimal.
    #[serde(default, skip_serializing_if = "Set::is_keep")]
    #[schema(value_type = Option<f64>, minimum = 30.0, maximum = 45.0, multiple_of = 0.1)]
    pub celsius: Set<Celsius>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<TemperatureSite>)]
    pub site: Change<TemperatureSite>,
}

impl LogKind for Temperature {
    const NAME: &'static str = "temperature_log";
    type Entity = entity::temperature_log::Entity;
}
