//! Planning a push, without the database: from the parsed mutations, the
//! stored records they name, the babies written to (locked by the caller)
//! and the caller's access, decide every mutation's outcome and what to
//! write. `push.rs` reads the inputs and stores the plan.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::prelude::Uuid;
use serde::Serialize;
use serde_json::Value;

use super::validate::{Mutation, Op, Rejection};
use crate::{
    access::Level,
    kinds::{Kind, Record, timer},
};

/// A mutation's outcome, as push answers it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum MutationResult {
    /// Applied now; the record's new version.
    Applied { id: i64, version: i64 },
    /// Processed before (`id ≤ lastMutationId`); not applied again.
    Duplicate { id: i64 },
    /// Not applied; its id is consumed all the same.
    Rejected {
        id: i64,
        code: RejectCode,
        message: String,
        /// For a `conflict`: the stored record, as pull sends it.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(schema_with = crate::openapi::any_entry)]
        current: Option<Value>,
    },
}

impl MutationResult {
    /// `applied`, `duplicate` or `rejected`, for metrics.
    pub fn status(&self) -> &'static str {
        match self {
            MutationResult::Applied { .. } => "applied",
            MutationResult::Duplicate { .. } => "duplicate",
            MutationResult::Rejected { .. } => "rejected",
        }
    }
}

/// Why a mutation was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    Invalid,
    Forbidden,
    NotFound,
    Conflict,
}

impl PartialEq<&str> for RejectCode {
    fn eq(&self, other: &&str) -> bool {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(|s| s == *other))
            == Some(true)
    }
}

/// A baby written to, as locked for the push.
#[derive(Clone, Debug)]
pub struct LockedBaby {
    pub archived: bool,
    /// The last version handed out to its records.
    pub counter: i64,
    /// The caller's level on it.
    pub level: Level,
}

/// What the plan starts from.
pub struct Inputs<'a> {
    pub user: &'a str,
    pub now: DateTime<Utc>,
    /// The stored records the mutations name, as they are now.
    pub records: HashMap<(Kind, Uuid), Record>,
    /// The babies the caller may write to (or read: see `level`), locked.
    pub babies: HashMap<Uuid, LockedBaby>,
    /// Other babies the caller can see (for a conflict's `current`; never written).
    pub readable: HashSet<Uuid>,
    /// The events of each timer the mutations touch (all, deleted ones
    /// included), by the timer's id.
    pub timers: HashMap<(Kind, Uuid), Vec<timer::Logged>>,
}

/// What to answer and what to store.
#[derive(Debug, Default)]
pub struct Plan {
    /// Each new mutation's outcome, in order.
    pub outcomes: Vec<MutationResult>,
    /// The records to write, in their final state.
    pub writes: BTreeMap<(Kind, Uuid), Record>,
    /// Babies whose counter moved, with the new value.
    pub counters: BTreeMap<Uuid, i64>,
}

/// Plans the new mutations (id, parsed or refused), in order.
pub fn plan(mut inputs: Inputs<'_>, mutations: &[(i64, Result<Mutation, Rejection>)]) -> Plan {
    let mut batch = Batch {
        counters: inputs.babies.iter().map(|(b, l)| (*b, l.counter)).collect(),
        dirty: BTreeSet::new(),
        events: std::mem::take(&mut inputs.timers),
        inputs,
    };
    let outcomes = mutations
        .iter()
        .map(|(id, m)| {
            match m
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|m| batch.apply(m))
            {
                Ok(version) => MutationResult::Applied { id: *id, version },
                Err(r) => MutationResult::Rejected {
                    id: *id,
                    code: r.code,
                    message: r.message,
                    current: r.current,
                },
            }
        })
        .collect();
    let counters = batch
        .counters
        .iter()
        .filter(|(b, c)| batch.inputs.babies.get(b).is_some_and(|l| l.counter != **c))
        .map(|(b, c)| (*b, *c))
        .collect();
    let mut records = batch.inputs.records;
    let writes = batch
        .dirty
        .iter()
        .filter_map(|key| Some((*key, records.remove(key)?)))
        .collect();
    Plan {
        outcomes,
        writes,
        counters,
    }
}

struct Batch<'a> {
    inputs: Inputs<'a>,
    counters: HashMap<Uuid, i64>,
    dirty: BTreeSet<(Kind, Uuid)>,
    /// Each timer's events (all that exist, deleted ones included), by the
    /// timer's id: the push read them all.
    events: HashMap<(Kind, Uuid), Vec<timer::Logged>>,
}

type Applied = Result<i64, Rejection>;

impl Batch<'_> {
    /// May the caller write to `baby`? Strangers are told it does not exist.
    fn check_write(&self, baby: Uuid) -> Result<(), Rejection> {
        let Some(locked) = self.inputs.babies.get(&baby) else {
            return Err(Rejection {
                message: "no such baby".into(),
                ..Rejection::not_found()
            });
        };
        if locked.level < Level::Editor {
            return Err(Rejection::forbidden("viewer access cannot write"));
        }
        if locked.archived {
            return Err(Rejection::forbidden(
                "the baby is archived and takes no new writes",
            ));
        }
        Ok(())
    }

    /// Gives `r` the next version of its baby and keeps it as written.
    fn store(&mut self, mut r: Record) -> i64 {
        let counter = self.counters.entry(r.baby_id).or_insert(0);
        *counter += 1;
        r.bump(*counter, self.inputs.now);
        let v = r.version;
        self.dirty.insert((r.kind, r.id));
        self.inputs.records.insert((r.kind, r.id), r);
        v
    }

    fn apply(&mut self, m: &Mutation) -> Applied {
        if m.kind.is_timer_event() {
            return self.apply_event(m);
        }
        let current = self.inputs.records.get(&(m.kind, m.record_id)).cloned();
        match (m.op, current) {
            (Op::Create, None) => {
                let baby = m
                    .baby_id
                    .ok_or_else(|| Rejection::invalid("data.babyId: required to create"))?;
                self.check_write(baby)?;
                // Parsing built and checked the new record already.
                let r = match &m.created {
                    Some(r) => r.clone(),
                    None => Record::create(
                        m.kind,
                        m.record_id,
                        baby,
                        self.inputs.user,
                        self.inputs.now,
                        &m.data,
                    )?,
                };
                Ok(self.store(r))
            }
            (Op::Create, Some(r)) if m.baby_id != Some(r.baby_id) => Err(self.elsewhere(&r)),
            (Op::Create | Op::Update, Some(r)) => {
                self.check_stored(m, &r)?;
                if r.archived {
                    return Err(Rejection::conflict(
                        "the record is archived",
                        Some(r.to_json()),
                    ));
                }
                let data = timer::check_write(m.op, &r, &m.data)?;
                // A timer's end follows the fold, after the patch: a start
                // moved past its stop drops the stop.
                let base = if timer::is_timer(&r) {
                    timer::unfolded(r)
                } else {
                    r
                };
                let mut next = base.patched(&data)?;
                if timer::is_timer(&next) {
                    // Its start or start side may have moved.
                    self.refold(&mut next)?;
                }
                Ok(self.store(next))
            }
            (Op::Delete, Some(r)) => {
                self.check_stored(m, &r)?;
                if r.archived {
                    return Ok(r.version);
                }
                let mut next = r;
                next.archive(self.inputs.now);
                Ok(self.store(next))
            }
            (Op::Update | Op::Delete, None) => Err(Rejection::not_found()),
        }
    }

    /// A create whose id is taken in another baby: a conflict, showing the
    /// record only to a caller who can see that baby.
    fn elsewhere(&self, r: &Record) -> Rejection {
        let visible = self.inputs.babies.contains_key(&r.baby_id)
            || self.inputs.readable.contains(&r.baby_id);
        Rejection::conflict(
            "a record with this id exists in another baby",
            visible.then(|| r.to_json()),
        )
    }

    /// Sets a timer's fields from the fold of its events.
    fn refold(&self, entry: &mut Record) -> Result<(), Rejection> {
        let events = self
            .events
            .get(&(entry.kind, entry.id))
            .map_or(&[][..], Vec::as_slice);
        timer::settle(entry, events).map_err(|e| Rejection::invalid(format!("data: {e}")))
    }

    /// The timer an event acts on, stored (or created earlier in this push),
    /// if the caller can see its baby; refused if it is archived or not a
    /// timer.
    fn timer_of(&self, event: &Record) -> Result<Record, Rejection> {
        let no_entry = || Rejection {
            message: "no such entry".into(),
            ..Rejection::not_found()
        };
        let (kind, id) = timer::target(event).ok_or_else(no_entry)?;
        let entry = self
            .inputs
            .records
            .get(&(kind, id))
            .filter(|e| self.inputs.babies.contains_key(&e.baby_id))
            .ok_or_else(no_entry)?;
        if entry.archived {
            return Err(Rejection::conflict(
                "the entry is archived",
                Some(entry.to_json()),
            ));
        }
        if !timer::is_timer(entry) {
            return Err(Rejection::conflict(
                "the entry is not a timer (it was not created with timerState running)",
                Some(entry.to_json()),
            ));
        }
        Ok(entry.clone())
    }

    /// A `timer_event`: created or deleted (never updated), and its timer
    /// folded again with a new version, in the same push.
    fn apply_event(&mut self, m: &Mutation) -> Applied {
        let current = self.inputs.records.get(&(m.kind, m.record_id)).cloned();
        match (m.op, current) {
            (Op::Create, None) => {
                let event = m
                    .created
                    .clone()
                    .ok_or_else(|| Rejection::invalid("data: an event to create"))?;
                let entry = self.timer_of(&event)?;
                if event.baby_id != entry.baby_id {
                    return Err(Rejection::invalid(
                        "data.babyId: must be the baby of the entry the event acts on",
                    ));
                }
                self.check_write(entry.baby_id)?;
                let events = self.events.entry((entry.kind, entry.id)).or_default();
                if events.len() >= timer::MAX_EVENTS {
                    // No `current`: the entry, with its segments, is the one
                    // thing the client has, and a push of such events
                    // would answer many times its size.
                    return Err(Rejection::conflict(
                        format!(
                            "the entry has {} events, the most it takes (deleted ones count)",
                            timer::MAX_EVENTS
                        ),
                        None,
                    ));
                }
                events.push(
                    timer::Logged::of(&event)
                        .ok_or_else(|| Rejection::invalid("data: an event the fold takes"))?,
                );
                let version = self.store(event);
                self.store_refolded(entry)?;
                Ok(version)
            }
            (Op::Create, Some(r)) if m.baby_id != Some(r.baby_id) => Err(self.elsewhere(&r)),
            // A repeated create changes nothing (a deleted event stays
            // deleted): applied if it says what is stored.
            (Op::Create, Some(r)) => {
                self.check_stored(m, &r)?;
                match &m.created {
                    Some(sent) if timer::same_event(sent, &r) => Ok(r.version),
                    _ => Err(Rejection::conflict(
                        "an event with this id exists with other fields",
                        Some(r.to_json()),
                    )),
                }
            }
            (Op::Delete, Some(r)) => {
                self.check_stored(m, &r)?;
                if r.archived {
                    return Ok(r.version);
                }
                let entry = self.timer_of(&r)?;
                for logged in self.events.entry((entry.kind, entry.id)).or_default() {
                    if logged.event.id == r.id {
                        logged.archived = true;
                    }
                }
                let mut event = r;
                event.archive(self.inputs.now);
                let version = self.store(event);
                self.store_refolded(entry)?;
                Ok(version)
            }
            (Op::Delete, None) => Err(Rejection::not_found()),
            (Op::Update, _) => Err(Rejection::invalid(
                "op: a timer_event takes create and delete only",
            )),
        }
    }

    /// Folds a timer again (an event of it was written) and stores it.
    fn store_refolded(&mut self, mut entry: Record) -> Result<(), Rejection> {
        self.refold(&mut entry)?;
        self.store(entry);
        Ok(())
    }

    /// Access to a stored record: checked against the baby it belongs to,
    /// never a `babyId` the client sends.
    fn check_stored(&self, m: &Mutation, r: &Record) -> Result<(), Rejection> {
        if !self.inputs.babies.contains_key(&r.baby_id) {
            return Err(Rejection::not_found());
        }
        if m.baby_id.is_some_and(|b| b != r.baby_id) {
            return Err(Rejection::invalid(
                "data.babyId: a record cannot move to another baby",
            ));
        }
        self.check_write(r.baby_id)?;
        if let Some(base) = m.base_version
            && r.version > base
        {
            return Err(Rejection::conflict(
                format!(
                    "the record is at version {}, newer than baseVersion {base}",
                    r.version
                ),
                Some(r.to_json()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::validate::{RawMutation, parse_mutation};
    use serde_json::json;

    const T0: &str = "2026-11-20T07:05:00.000Z";

    fn parsed(id: i64, v: Value) -> (i64, Result<Mutation, Rejection>) {
        let raw = RawMutation {
            id,
            body: v.as_object().unwrap().clone(),
        };
        (id, parse_mutation(raw, "alice", Utc::now()))
    }

    fn inputs(babies: &[(Uuid, Level, bool, i64)]) -> Inputs<'static> {
        Inputs {
            user: "alice",
            now: Utc::now(),
            records: HashMap::new(),
            babies: babies
                .iter()
                .map(|(b, level, archived, counter)| {
                    (
                        *b,
                        LockedBaby {
                            archived: *archived,
                            counter: *counter,
                            level: *level,
                        },
                    )
                })
                .collect(),
            readable: HashSet::new(),
            timers: HashMap::new(),
        }
    }

    fn feed(mid: i64, id: Uuid, baby: Uuid) -> (i64, Result<Mutation, Rejection>) {
        parsed(
            mid,
            json!({"id": mid, "entity": "feed_log", "op": "create",
            "data": {"id": id, "babyId": baby, "method": "bottle", "startedAt": T0, "amountMl": 120}}),
        )
    }

    #[test]
    fn versions_rise_per_baby_even_within_one_push() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let (f1, f2) = (Uuid::new_v4(), Uuid::new_v4());
        let muts = [
            feed(1, f1, a),
            feed(2, f2, b),
            parsed(
                3,
                json!({"id": 3, "entity": "feed_log", "op": "update", "data": {"id": f1, "amountMl": 90}}),
            ),
        ];
        let p = plan(
            inputs(&[(a, Level::Owner, false, 7), (b, Level::Editor, false, 0)]),
            &muts,
        );
        assert_eq!(
            p.outcomes,
            vec![
                MutationResult::Applied { id: 1, version: 8 },
                MutationResult::Applied { id: 2, version: 1 },
                MutationResult::Applied { id: 3, version: 9 },
            ]
        );
        assert_eq!(p.counters, BTreeMap::from([(a, 9), (b, 1)]));
        let kind = Kind::parse("feed_log").unwrap();
        let written = &p.writes[&(kind, f1)];
        assert_eq!(
            (written.version, &written.to_json()["amountMl"]),
            (9, &json!(90))
        );
        assert_eq!(
            p.writes.len(),
            2,
            "one write per record, in its final state"
        );
    }

    #[test]
    fn refusals_consume_nothing_but_their_id() {
        let (a, viewer, archived) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let stranger = Uuid::new_v4();
        let muts = [
            feed(1, Uuid::new_v4(), viewer),
            feed(2, Uuid::new_v4(), archived),
            feed(3, Uuid::new_v4(), stranger),
            parsed(
                4,
                json!({"id": 4, "entity": "feed_log", "op": "update", "data": {"id": Uuid::new_v4()}}),
            ),
            parsed(
                5,
                json!({"id": 5, "entity": "feed_log", "op": "create", "data": {"id": 1}}),
            ),
            feed(6, Uuid::new_v4(), a),
        ];
        let p = plan(
            inputs(&[
                (a, Level::Owner, false, 0),
                (viewer, Level::Viewer, false, 0),
                (archived, Level::Owner, true, 0),
            ]),
            &muts,
        );
        let codes: Vec<String> = p
            .outcomes
            .iter()
            .map(|o| match o {
                MutationResult::Rejected { code, .. } => serde_json::to_value(code)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned(),
                other => other.status().to_owned(),
            })
            .collect();
        assert_eq!(
            codes,
            [
                "forbidden",
                "forbidden",
                "not_found",
                "not_found",
                "invalid",
                "applied"
            ]
        );
        assert_eq!(p.outcomes[5], MutationResult::Applied { id: 6, version: 1 });
        assert_eq!(p.counters, BTreeMap::from([(a, 1)]));
    }

    #[test]
    fn stale_base_versions_and_archived_records_conflict_with_current() {
        let a = Uuid::new_v4();
        let f = Uuid::new_v4();
        let first = plan(inputs(&[(a, Level::Owner, false, 0)]), &[feed(1, f, a)]);
        let stored = first.writes.into_values().next().unwrap();
        let mut i = inputs(&[(a, Level::Owner, false, 1)]);
        i.records.insert((stored.kind, stored.id), stored.clone());
        let muts = [
            parsed(
                2,
                json!({"id": 2, "entity": "feed_log", "op": "update", "data": {"id": f, "amountMl": 1}, "baseVersion": 0}),
            ),
            parsed(
                3,
                json!({"id": 3, "entity": "feed_log", "op": "delete", "data": {"id": f}, "baseVersion": 1}),
            ),
            parsed(
                4,
                json!({"id": 4, "entity": "feed_log", "op": "update", "data": {"id": f, "amountMl": 2}}),
            ),
            parsed(
                5,
                json!({"id": 5, "entity": "feed_log", "op": "delete", "data": {"id": f}}),
            ),
        ];
        let p = plan(i, &muts);
        match &p.outcomes[0] {
            MutationResult::Rejected { code, current, .. } => {
                assert_eq!(*code, RejectCode::Conflict);
                assert_eq!(current.as_ref().unwrap()["version"], json!(1));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p.outcomes[1], MutationResult::Applied { id: 3, version: 2 });
        assert!(matches!(
            &p.outcomes[2],
            MutationResult::Rejected {
                code: RejectCode::Conflict,
                ..
            }
        ));
        assert_eq!(
            p.outcomes[3],
            MutationResult::Applied { id: 5, version: 2 },
            "deleting an archived record changes nothing"
        );
    }
}
