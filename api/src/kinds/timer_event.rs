//! `timer_event`: a caregiver's tap on a timer (PROTOCOL.md, "Timers shared
//! by caregivers"). Created and deleted, never updated; the push folds an
//! entry's events into it ([`super::timer`]).

use entity::enums::{Side, TimerAction, TimerEntity};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    LogKind,
    fields::{Change, Id, Set},
};
use crate::sync::validate::Rejection;

/// What a client writes of an event besides the common fields (its
/// `startedAt` is the moment of the action).
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = TimerEventData)]
pub struct TimerEvent {
    /// Required to create.
    #[serde(default, skip_serializing_if = "Set::is_keep")]
    #[schema(value_type = Option<TimerEntity>)]
    pub entry_entity: Set<TimerEntity>,
    /// Required to create: the timer's id.
    #[serde(default, skip_serializing_if = "Set::is_keep")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub entry_id: Set<Id>,
    /// Required to create.
    #[serde(default, skip_serializing_if = "Set::is_keep")]
    #[schema(value_type = Option<TimerAction>)]
    pub action: Set<TimerAction>,
    /// Required for `switchSide` (feeds and pumping only); absent otherwise.
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<Side>)]
    pub side: Change<Side>,
}

impl LogKind for TimerEvent {
    const NAME: &'static str = "timer_event";
    type Entity = entity::timer_event::Entity;
    const UPDATABLE: bool = false;

    fn settle(e: &mut entity::timer_event::Model, _: &Map<String, Value>) -> Result<(), Rejection> {
        let sided = matches!(
            e.entry_entity,
            TimerEntity::FeedLog | TimerEntity::PumpingLog
        );
        match (e.action, e.side) {
            (TimerAction::SwitchSide, _) if !sided => Err(Rejection::invalid(format!(
                "data.action: switchSide is for feed_log and pumping_log, not {}",
                e.entry_entity
            ))),
            (TimerAction::SwitchSide, None) => {
                Err(Rejection::invalid("data.side: required for switchSide"))
            }
            (TimerAction::SwitchSide, Some(_)) | (_, None) => Ok(()),
            (_, Some(_)) => Err(Rejection::invalid(
                "data.side: only switchSide takes a side",
            )),
        }
    }
}
