//! The shape of a timer's `segments` (PROTOCOL.md, "Timers shared by
//! caregivers"): stored as a JSON array on the entry, set by the server.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A stretch of time a timer ran, on one side (or none).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = TimerSegment)]
pub struct Segment {
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "crate::wire")]
    pub started_at: DateTime<Utc>,
    /// `null` while the segment is open.
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "crate::wire::option")]
    pub ended_at: Option<DateTime<Utc>>,
    pub side: Option<crate::enums::Side>,
}
