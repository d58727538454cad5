//! `solids_log`: a first taste or a meal of solid food.

use entity::enums::{Allergen, Reaction};
use serde::{Deserialize, Serialize};

use super::{
    LogKind,
    fields::{Change, Distinct, Name, Set},
};

/// What a client writes of solids besides the common fields.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = SolidsData)]
pub struct Solids {
    /// Required to create.
    #[serde(default, skip_serializing_if = "Set::is_keep")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100)]
    pub food: Set<Name<100>>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<Reaction>)]
    pub reaction: Change<Reaction>,
    /// Distinct values.
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<Vec<Allergen>>)]
    pub allergens: Change<Distinct<Allergen>>,
}

impl LogKind for Solids {
    const NAME: &'static str = "solids_log";
    type Entity = entity::solids_log::Entity;
}
