//! `nappy_log`: a nappy change.

use entity::enums::{NappyColour, NappyConsistency, NappyType};
use serde::{Deserialize, Serialize};

use super::{LogKind, fields::Change};

/// What a client writes of a nappy change besides the common fields.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = NappyData)]
pub struct Nappy {
    #[serde(default, rename = "type", skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<NappyType>)]
    pub nappy_type: Change<NappyType>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<NappyColour>)]
    pub colour: Change<NappyColour>,
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<NappyConsistency>)]
    pub consistency: Change<NappyConsistency>,
}

impl LogKind for Nappy {
    const NAME: &'static str = "nappy_log";
    type Entity = entity::nappy_log::Entity;
}
