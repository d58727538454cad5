//! `medication_log`: a dose of a medicine.

use entity::enums::DoseUnit;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    LogKind,
    fields::{Between, Change, Dose, Name, Set, UpTo},
};
use crate::sync::validate::Rejection;

/// What a client writes of a dose besides the common fields.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = MedicationData)]
pub struct Medication {
    /// Required to create.
    #[serde(default, skip_serializing_if = "Set::is_keep")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100)]
    pub name: Set<Name<100>>,
    /// More than 0, at most 10000, at most 3 decimals; with `doseUnit`.
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<f64>, exclusive_minimum = 0, maximum = 10000, multiple_of = 0.001)]
    pub dose: Change<Dose>,
    /// Required with `dose`, absent without it.
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<DoseUnit>)]
    pub dose_unit: Change<DoseUnit>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 10080)]
    pub min_interval_minutes: Change<UpTo<10080>>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<i32>, minimum = 1, maximum = 24)]
    pub max_doses_per24h: Change<Between<1, 24>>,
}

impl LogKind for Medication {
    const NAME: &'static str = "medication_log";
    type Entity = entity::medication_log::Entity;

    fn settle(
        e: &mut entity::medication_log::Model,
        _: &Map<String, Value>,
    ) -> Result<(), Rejection> {
        match (e.dose, e.dose_unit) {
            (Some(_), None) => Err(Rejection::invalid("data.doseUnit: required with a dose")),
            (None, Some(_)) => Err(Rejection::invalid(
                "data.doseUnit: only with a dose (send dose too, or doseUnit null)",
            )),
            _ => Ok(()),
        }
    }
}
