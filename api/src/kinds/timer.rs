//! The timer fold of PROTOCOL.md ("Timers shared by caregivers"): an entry's
//! timer state as a function of its `startedAt`, its `startSide` and the set
//! of its events that are not archived, and of nothing else (not the order
//! the events arrived in). Pure: the push applies it, and the TypeScript SDK
//! computes the same locally.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use entity::enums::{Side, TimerAction, TimerState};
use sea_orm::{DbErr, Value as Db, prelude::Uuid};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Kind, Record};
use crate::sync::validate::{Op, Rejection};

/// What a caregiver did to a timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Pause,
    Resume,
    /// Feeds and pumping only (the event's `side`).
    SwitchSide(Side),
    Stop,
}

/// One `timer_event` that is not archived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub id: Uuid,
    /// The moment of the action (the event's `startedAt`).
    pub at: DateTime<Utc>,
    pub action: Action,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    Running,
    Paused,
    Stopped,
}

pub use entity::timer::Segment;

/// The timer fields the server sets on the entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folded {
    pub state: State,
    pub segments: Vec<Segment>,
    /// The time of the stop that stopped it; `None` unless stopped.
    pub ended_at: Option<DateTime<Utc>>,
    /// The closed segments' length to the nearest minute.
    pub duration_minutes: i32,
}

/// Folds `events` (in any order) into the timer of an entry that started at
/// `started_at` on `start_side`.
pub fn fold(started_at: DateTime<Utc>, start_side: Option<Side>, events: &[Event]) -> Folded {
    // 1. By time, then by id as lower-case text (the hyphenated lower-case
    //    form orders as the bytes do); none before the entry began.
    let mut events: Vec<&Event> = events.iter().filter(|e| e.at >= started_at).collect();
    events.sort_by(|a, b| {
        a.at.cmp(&b.at)
            .then_with(|| a.id.as_bytes().cmp(b.id.as_bytes()))
    });
    // 2. Running, one segment open from the entry's start, on its side.
    let mut state = State::Running;
    let mut side = start_side;
    let mut segments = vec![Segment {
        started_at,
        ended_at: None,
        side,
    }];
    let mut ended_at = None;
    let close = |segments: &mut Vec<Segment>, at| {
        if let Some(open) = segments.last_mut().filter(|s| s.ended_at.is_none()) {
            open.ended_at = Some(at);
        }
    };
    for e in events {
        match (e.action, state) {
            // 3.
            (Action::Pause, State::Running) => {
                close(&mut segments, e.at);
                state = State::Paused;
            }
            // 4. (after a stop, it undoes the stop)
            (Action::Resume, State::Paused | State::Stopped) => {
                segments.push(Segment {
                    started_at: e.at,
                    ended_at: None,
                    side,
                });
                state = State::Running;
                ended_at = None;
            }
            // 5.
            (Action::SwitchSide(to), State::Running) => {
                close(&mut segments, e.at);
                side = Some(to);
                segments.push(Segment {
                    started_at: e.at,
                    ended_at: None,
                    side,
                });
            }
            (Action::SwitchSide(to), State::Paused) => side = Some(to),
            // 6.
            (Action::Stop, State::Running | State::Paused) => {
                close(&mut segments, e.at);
                state = State::Stopped;
                ended_at = Some(e.at);
            }
            // 7. Anything else does not fit the state: nothing changes.
            _ => {}
        }
    }
    let closed_ms: i64 = segments
        .iter()
        .filter_map(|s| {
            s.ended_at
                .map(|end| (end - s.started_at).num_milliseconds())
        })
        .sum();
    Folded {
        state,
        segments,
        ended_at,
        duration_minutes: i32::try_from((closed_ms + 30_000).div_euclid(60_000))
            .unwrap_or(i32::MAX),
    }
}

/// The kind of a caregiver's tap on a timer.
pub const EVENT_KIND: &str = "timer_event";
/// The most events an entry takes, deleted ones included.
pub const MAX_EVENTS: usize = 200;

impl Kind {
    /// Whether entries of this kind can be timers (they have the timer fields).
    pub fn has_timer(self) -> bool {
        self.has_column("timer_state")
    }

    pub fn is_timer_event(self) -> bool {
        self.name() == EVENT_KIND
    }
}

/// Whether a stored entry is a timer.
pub fn is_timer(r: &Record) -> bool {
    matches!(r.entry.get("timer_state"), Some(Db::String(Some(_))))
}

/// The entry an event acts on: its kind and id.
pub fn target(event: &Record) -> Option<(Kind, Uuid)> {
    let kind = match event.entry.get("entry_entity")? {
        Db::String(Some(s)) => Kind::parse(&s)?,
        _ => return None,
    };
    match event.entry.get("entry_id")? {
        Db::Uuid(Some(id)) => Some((kind, id)),
        _ => None,
    }
}

/// One of a timer's events as a push keeps it: what the fold needs, and
/// whether it is deleted (it still counts towards [`MAX_EVENTS`]). A few
/// dozen bytes, where the event's record is a few hundred: a push may read
/// up to [`MAX_EVENTS`] of these for each timer it touches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Logged {
    pub event: Event,
    pub archived: bool,
}

impl Logged {
    /// From a stored event's columns: id, `started_at`, `action`, `side`,
    /// whether `archived_at` is set. `None` for an action it does not know.
    pub fn from_columns(
        id: Uuid,
        at: DateTime<Utc>,
        action: &str,
        side: Option<&str>,
        archived: bool,
    ) -> Option<Logged> {
        let action = match TimerAction::parse(action)? {
            TimerAction::Pause => Action::Pause,
            TimerAction::Resume => Action::Resume,
            TimerAction::SwitchSide => Action::SwitchSide(Side::parse(side?)?),
            TimerAction::Stop => Action::Stop,
        };
        Some(Logged {
            event: Event { id, at, action },
            archived,
        })
    }

    /// From an event's record.
    pub fn of(r: &Record) -> Option<Logged> {
        let text = |column| match r.entry.get(column) {
            Some(Db::String(Some(s))) => Some(s),
            _ => None,
        };
        let at = match r.entry.get("started_at")? {
            Db::ChronoDateTimeUtc(Some(t)) => t,
            _ => return None,
        };
        Logged::from_columns(
            r.id,
            at,
            &text("action")?,
            text("side").as_deref(),
            r.archived,
        )
    }
}

/// Sets a timer entry's `timerState`, `segments`, `endedAt` and
/// `durationMinutes` from the fold of `events` (its events, deleted ones
/// included: they are left out).
pub fn settle(entry: &mut Record, events: &[Logged]) -> Result<(), DbErr> {
    let started_at = match entry.entry.get("started_at") {
        Some(Db::ChronoDateTimeUtc(Some(t))) => t,
        _ => return Err(DbErr::Type("a timer without startedAt".into())),
    };
    let start_side = match entry.entry.get("start_side") {
        Some(Db::String(Some(s))) => Side::parse(&s),
        _ => None,
    };
    let events: Vec<Event> = events
        .iter()
        .filter(|l| !l.archived)
        .map(|l| l.event)
        .collect();
    let f = fold(started_at, start_side, &events);
    let state = match f.state {
        State::Running => TimerState::Running,
        State::Paused => TimerState::Paused,
        State::Stopped => TimerState::Stopped,
    };
    let segments = serde_json::to_value(&f.segments).map_err(|e| DbErr::Type(e.to_string()))?;
    let e = &mut entry.entry;
    e.set("timer_state", Some(state.as_str().to_owned()).into())?;
    e.set("segments", Some(segments).into())?;
    e.set("ended_at", f.ended_at.into())?;
    e.set("duration_minutes", Some(f.duration_minutes).into())
}

/// A timer without its folded end (`endedAt`, `durationMinutes`), to be
/// patched and folded again.
pub fn unfolded(mut entry: Record) -> Record {
    let _ = entry
        .entry
        .set("ended_at", Option::<DateTime<Utc>>::None.into());
    let _ = entry
        .entry
        .set("duration_minutes", Option::<i32>::None.into());
    entry
}

/// The server-set keys of a timer's wire form a write never gives.
const FOLDED: [&str; 2] = ["endedAt", "durationMinutes"];

/// A create of a kind with timers, before it is built: `timerState: null`
/// is as if absent; a timer is not created with `endedAt` or
/// `durationMinutes` (they follow its events).
pub fn check_create(fields: &mut Map<String, Value>) -> Result<(), Rejection> {
    match fields.get("timerState") {
        Some(Value::Null) => {
            fields.remove("timerState");
        }
        Some(_) => {
            if let Some(key) = FOLDED
                .iter()
                .find(|k| fields.get(**k).is_some_and(|v| !v.is_null()))
            {
                return Err(Rejection::invalid(format!(
                    "data.{key}: a timer is created without it (it follows the timer's events)"
                )));
            }
        }
        None => {}
    }
    Ok(())
}

/// The fields of an update (or of a create that acts as one) of a stored
/// entry, under the timer rules: on a timer, `endedAt` and
/// `durationMinutes` are never written, and `timerState` only comes back
/// in a repeated create (and is ignored); an entry that is not a timer does
/// not become one.
pub fn check_write<'d>(
    op: Op,
    stored: &Record,
    data: &'d Map<String, Value>,
) -> Result<Cow<'d, Map<String, Value>>, Rejection> {
    if !stored.kind.has_timer() {
        return Ok(Cow::Borrowed(data));
    }
    let state = data.get("timerState");
    if is_timer(stored) {
        if let Some(key) = FOLDED.iter().find(|k| data.contains_key(**k)) {
            return Err(Rejection::invalid(format!(
                "data.{key}: follows the timer's events; a write cannot set it"
            )));
        }
        if op == Op::Update && state.is_some() {
            return Err(Rejection::invalid(
                "data.timerState: accepted on create only (on a timer it follows its events)",
            ));
        }
    } else if state.is_some_and(|v| !v.is_null()) {
        return Err(Rejection::invalid(
            "data.timerState: accepted on create only; an existing entry does not become a timer",
        ));
    }
    if state.is_none() {
        return Ok(Cow::Borrowed(data));
    }
    let mut data = data.clone();
    data.remove("timerState");
    Ok(Cow::Owned(data))
}

/// Whether a repeated create of an event gives the fields stored
/// (timestamps are in one form, so text compares instants).
pub fn same_event(sent: &Record, stored: &Record) -> bool {
    let client_fields = |r: &Record| {
        let mut m = r.entry.to_map();
        for k in super::SERVER_KEYS {
            m.remove(k);
        }
        m
    };
    client_fields(sent) == client_fields(stored)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-21T03:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + chrono::Duration::minutes(min)
    }

    fn ev(n: u128, min: i64, action: Action) -> Event {
        Event {
            id: Uuid::from_u128(n),
            at: t(min),
            action,
        }
    }

    fn seg(from: i64, to: Option<i64>, side: Option<Side>) -> Segment {
        Segment {
            started_at: t(from),
            ended_at: to.map(t),
            side,
        }
    }

    #[test]
    fn a_new_timer_runs_with_one_open_segment() {
        let f = fold(t(0), Some(Side::Left), &[]);
        assert_eq!(f.state, State::Running);
        assert_eq!(f.segments, vec![seg(0, None, Some(Side::Left))]);
        assert_eq!((f.ended_at, f.duration_minutes), (None, 0));
    }

    #[test]
    fn pause_resume_switch_and_stop() {
        use Action::*;
        let events = [
            ev(1, 5, Pause),
            ev(2, 7, Resume),
            ev(3, 12, SwitchSide(Side::Right)),
            ev(4, 20, Stop),
        ];
        let f = fold(t(0), Some(Side::Left), &events);
        assert_eq!(f.state, State::Stopped);
        assert_eq!(
            f.segments,
            vec![
                seg(0, Some(5), Some(Side::Left)),
                seg(7, Some(12), Some(Side::Left)),
                seg(12, Some(20), Some(Side::Right)),
            ]
        );
        assert_eq!(f.ended_at, Some(t(20)));
        assert_eq!(f.duration_minutes, 18);
    }

    #[test]
    fn both_parents_stop_the_earlier_stop_counts() {
        let f = fold(
            t(0),
            None,
            &[ev(1, 30, Action::Stop), ev(2, 25, Action::Stop)],
        );
        assert_eq!(f.ended_at, Some(t(25)));
        assert_eq!(f.segments, vec![seg(0, Some(25), None)]);
        assert_eq!(f.duration_minutes, 25);
    }

    #[test]
    fn a_resume_after_a_stop_undoes_it() {
        let f = fold(
            t(0),
            None,
            &[ev(1, 10, Action::Stop), ev(2, 12, Action::Resume)],
        );
        assert_eq!(f.state, State::Running);
        assert_eq!(f.ended_at, None);
        assert_eq!(
            f.segments,
            vec![seg(0, Some(10), None), seg(12, None, None)]
        );
        assert_eq!(f.duration_minutes, 10);
    }

    #[test]
    fn switching_side_while_paused_sets_the_next_segments_side() {
        use Action::*;
        let events = [
            ev(1, 4, Pause),
            ev(2, 5, SwitchSide(Side::Right)),
            ev(3, 6, Resume),
        ];
        let f = fold(t(0), Some(Side::Left), &events);
        assert_eq!(
            f.segments,
            vec![
                seg(0, Some(4), Some(Side::Left)),
                seg(6, None, Some(Side::Right))
            ]
        );
    }

    #[test]
    fn actions_that_do_not_fit_change_nothing() {
        use Action::*;
        let events = [
            ev(1, 1, Resume),                  // running: no
            ev(2, 2, Pause),                   // paused
            ev(3, 3, Pause),                   // paused again: no
            ev(4, 4, Stop),                    // stopped
            ev(5, 5, SwitchSide(Side::Right)), // stopped: no
            ev(6, 6, Stop),                    // stopped again: no
            ev(7, 7, Pause),                   // stopped: no
        ];
        let f = fold(t(0), Some(Side::Left), &events);
        assert_eq!(f.state, State::Stopped);
        assert_eq!(f.segments, vec![seg(0, Some(2), Some(Side::Left))]);
        assert_eq!(f.ended_at, Some(t(4)));
    }

    #[test]
    fn events_before_the_start_are_dropped_and_ties_go_by_id() {
        let early = fold(t(10), None, &[ev(1, 5, Action::Stop)]);
        assert_eq!(early.state, State::Running);
        // Same moment: the lower id first (pause, then stop while paused).
        let tie = [ev(0xb, 3, Action::Stop), ev(0xa, 3, Action::Pause)];
        let f = fold(t(0), None, &tie);
        assert_eq!(f.state, State::Stopped);
        assert_eq!(f.ended_at, Some(t(3)));
        assert_eq!(f.segments, vec![seg(0, Some(3), None)]);
    }

    #[test]
    fn duration_is_rounded_to_the_nearest_minute() {
        let at = |s: i64| t(0) + chrono::Duration::seconds(s);
        let stop = |s| Event {
            id: Uuid::from_u128(1),
            at: at(s),
            action: Action::Stop,
        };
        assert_eq!(fold(t(0), None, &[stop(89)]).duration_minutes, 1);
        assert_eq!(fold(t(0), None, &[stop(90)]).duration_minutes, 2);
        assert_eq!(fold(t(0), None, &[stop(29)]).duration_minutes, 0);
    }

    /// Every order of every case's events (the file the SDK's tests read too).
    #[test]
    fn the_shared_cases_fold_as_written_in_every_order() {
        use serde_json::Value;
        let doc: Value = serde_json::from_str(include_str!("timer-cases.json")).unwrap();
        let start = DateTime::parse_from_rfc3339(doc["startedAt"].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc);
        let at = |v: &Value| -> Option<DateTime<Utc>> {
            v.as_f64()
                .map(|m| start + chrono::Duration::milliseconds((m * 60_000.0).round() as i64))
        };
        let side = |v: &Value| match v.as_str() {
            Some("left") => Some(Side::Left),
            Some("right") => Some(Side::Right),
            _ => None,
        };
        let cases = doc["cases"].as_array().unwrap();
        assert!(cases.len() >= 10);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let events: Vec<Event> = case["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| Event {
                    id: Uuid::parse_str(e[0].as_str().unwrap()).unwrap(),
                    at: at(&e[1]).unwrap(),
                    action: match e[2].as_str().unwrap() {
                        "pause" => Action::Pause,
                        "resume" => Action::Resume,
                        "stop" => Action::Stop,
                        "switchSide" => Action::SwitchSide(side(&e[3]).unwrap()),
                        other => panic!("{other}"),
                    },
                })
                .collect();
            let x = &case["expect"];
            let want = Folded {
                state: match x["state"].as_str().unwrap() {
                    "running" => State::Running,
                    "paused" => State::Paused,
                    _ => State::Stopped,
                },
                segments: x["segments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|g| Segment {
                        started_at: at(&g[0]).unwrap(),
                        ended_at: at(&g[1]),
                        side: side(&g[2]),
                    })
                    .collect(),
                ended_at: at(&x["endedAt"]),
                duration_minutes: x["durationMinutes"].as_i64().unwrap() as i32,
            };
            let mut order: Vec<usize> = (0..events.len()).collect();
            let mut seen = 0;
            loop {
                let permuted: Vec<Event> = order.iter().map(|&i| events[i]).collect();
                assert_eq!(
                    fold(start, side(&case["startSide"]), &permuted),
                    want,
                    "{name}, order {order:?}"
                );
                seen += 1;
                if !next_permutation(&mut order) {
                    break;
                }
            }
            assert_eq!(seen, (1..=events.len()).product::<usize>().max(1), "{name}");
        }
    }

    /// The next order in lexicographic order; false after the last.
    fn next_permutation(v: &mut [usize]) -> bool {
        let Some(i) = (1..v.len()).rev().find(|&i| v[i - 1] < v[i]) else {
            return false;
        };
        let j = (i..v.len()).rev().find(|&j| v[j] > v[i - 1]).unwrap();
        v.swap(i - 1, j);
        v[i..].reverse();
        true
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            Just(Action::Pause),
            Just(Action::Resume),
            Just(Action::Stop),
            Just(Action::SwitchSide(Side::Left)),
            Just(Action::SwitchSide(Side::Right)),
        ]
    }

    proptest! {
        /// Any order of the same events folds to the same timer.
        #[test]
        fn any_permutation_folds_the_same(
            raw in proptest::collection::vec((0u128..6, -5i64..40, action()), 0..14),
            seed in any::<u64>(),
        ) {
            let events: Vec<Event> = raw
                .iter()
                .enumerate()
                .map(|(i, (n, min, a))| ev((*n << 8) | i as u128, *min, *a))
                .collect();
            let want = fold(t(0), Some(Side::Left), &events);
            let mut shuffled = events.clone();
            // A Fisher-Yates shuffle from the seed.
            let mut s = seed | 1;
            for i in (1..shuffled.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                shuffled.swap(i, (s % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(fold(t(0), Some(Side::Left), &shuffled), want.clone());
            // The segments never overlap and the open one, if any, is last.
            for w in want.segments.windows(2) {
                prop_assert!(w[0].ended_at.is_some_and(|e| e <= w[1].started_at));
            }
            prop_assert_eq!(want.ended_at.is_some(), want.state == State::Stopped);
        }
    }
}
