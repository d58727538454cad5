//! Timers shared by caregivers (PROTOCOL.md): `timer_event` records folded
//! into their entry in the push that writes them, whatever order and
//! through whichever caregiver's client they arrive; the section's
//! rejection rules; undo by delete; concurrent pushes from two instances.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use futures::future::join_all;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{both, helpers::*};

const START: &str = "2026-11-21T03:00:00.000Z";

/// `START` plus `min` minutes (fractions allowed), in the wire's form.
fn at(min: f64) -> String {
    let start: DateTime<Utc> = START.parse().unwrap();
    (start + Duration::milliseconds((min * 60_000.0).round() as i64))
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One case of the shared file (api/src/kinds/timer-cases.json).
struct Case {
    name: String,
    start_side: Value,
    /// id, minutes after the start, action, side.
    events: Vec<(String, f64, String, Value)>,
    expect: Value,
}

fn cases() -> Vec<Case> {
    let file: Value =
        serde_json::from_str(include_str!("../../api/src/kinds/timer-cases.json")).unwrap();
    assert_eq!(file["startedAt"], START);
    file["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_owned(),
            start_side: c["startSide"].clone(),
            events: c["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e[0].as_str().unwrap().to_owned(),
                        e[1].as_f64().unwrap(),
                        e[2].as_str().unwrap().to_owned(),
                        e.get(3).cloned().unwrap_or(Value::Null),
                    )
                })
                .collect(),
            expect: c["expect"].clone(),
        })
        .collect()
}

/// The case's expected timer fields, as the entry carries them.
fn expected(case: &Case) -> Value {
    let e = &case.expect;
    let time = |v: &Value| v.as_f64().map_or(Value::Null, |m| json!(at(m)));
    let segments: Vec<Value> = e["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| json!({"startedAt": time(&s[0]), "endedAt": time(&s[1]), "side": s[2]}))
        .collect();
    json!({
        "timerState": e["state"], "segments": segments,
        "endedAt": time(&e["endedAt"]), "durationMinutes": e["durationMinutes"],
    })
}

fn timer_fields(entry: &Value) -> Value {
    json!({
        "timerState": entry["timerState"], "segments": entry["segments"],
        "endedAt": entry["endedAt"], "durationMinutes": entry["durationMinutes"],
    })
}

/// A client of one caregiver: its id and next mutation id.
struct Device {
    token: String,
    client: Uuid,
    next: i64,
}

impl Device {
    fn new(token: &str) -> Self {
        Device {
            token: token.to_owned(),
            client: Uuid::new_v4(),
            next: 1,
        }
    }

    /// Pushes `(entity, op, data)` as consecutive mutations; the answer.
    async fn push(&mut self, c: &Client, muts: Vec<(&str, &str, Value)>) -> Resp {
        let mutations = muts
            .into_iter()
            .map(|(entity, op, data)| {
                self.next += 1;
                json!({"id": self.next - 1, "entity": entity, "op": op, "data": data})
            })
            .collect();
        let r = push(c, &self.token, self.client, mutations).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r
    }

    async fn push_ok(&mut self, c: &Client, muts: Vec<(&str, &str, Value)>) -> Resp {
        let r = self.push(c, muts).await;
        assert_all_applied(&r);
        r
    }
}

/// The entry `id` of `kind` as `token` pulls it (from scratch).
async fn pulled(c: &Client, token: &str, kind: &str, id: &str) -> Value {
    let r = pull(c, token, Uuid::new_v4(), None, Some(5000)).await;
    assert_eq!(r.body["hasMore"], false, "one page is enough here");
    entries(&r)
        .into_iter()
        .find(|(k, e)| k == kind && e["id"] == id)
        .map(|(_, e)| e)
        .unwrap_or_else(|| panic!("{kind} {id} not pulled"))
}

fn event(
    baby: &str,
    kind: &str,
    entry: &str,
    id: &str,
    min: f64,
    action: &str,
    side: &Value,
) -> Value {
    let mut e = json!({"id": id, "babyId": baby, "startedAt": at(min),
        "entryEntity": kind, "entryId": entry, "action": action});
    if !side.is_null() {
        e["side"] = side.clone();
    }
    e
}

/// A running breastfeed timer of `baby`, its id.
fn timer(baby: &str, side: &Value) -> (String, Value) {
    let id = Uuid::new_v4().to_string();
    let mut data = json!({"id": id, "babyId": baby, "method": "breast", "startedAt": START, "timerState": "running"});
    if !side.is_null() {
        data["startSide"] = side.clone();
    }
    (id, data)
}

/// Every case of the shared file, its events in three orders, split between
/// two caregivers' clients (each also sends the other's events again, as
/// a retry from a phone that was offline would): both pull the same entry,
/// and it is the case's expected fold.
async fn every_case_in_any_order_from_two_caregivers(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let bob = share(&app, &alice, &baby, app.token("bob"), "editor").await;
    let (mut a, mut b) = (Device::new(&alice), Device::new(&bob));
    let mut runs = 0;
    for case in cases() {
        let n = case.events.len();
        let orders: Vec<Vec<usize>> = vec![
            (0..n).collect(),
            (0..n).rev().collect(),
            (0..n)
                .filter(|i| i % 2 == 1)
                .chain((0..n).filter(|i| i % 2 == 0))
                .collect(),
        ];
        for order in orders {
            // Fresh ids that sort as the file's do (one prefix per run).
            let prefix = &Uuid::new_v4().simple().to_string()[..8];
            let (entry, data) = timer(&baby, &case.start_side);
            a.push_ok(&app, vec![("feed_log", "create", data)]).await;
            let events: Vec<Value> = case
                .events
                .iter()
                .map(|(id, min, action, side)| {
                    let id = format!("{prefix}{}", &id[8..]);
                    event(&baby, "feed_log", &entry, &id, *min, action, side)
                })
                .collect();
            let (mine, theirs): (Vec<usize>, Vec<usize>) = order
                .iter()
                .partition(|i| order.iter().position(|j| j == *i).unwrap() % 2 == 0);
            let send = |idx: &[usize]| -> Vec<(&str, &str, Value)> {
                idx.iter()
                    .map(|i| ("timer_event", "create", events[*i].clone()))
                    .collect()
            };
            a.push_ok(&app, send(&mine)).await;
            b.push_ok(&app, send(&theirs)).await;
            // The same events again, through the other caregiver: changes nothing.
            let before = pulled(&app, &alice, "feed_log", &entry).await;
            b.push_ok(&app, send(&mine)).await;
            a.push_ok(&app, send(&theirs)).await;
            let (seen_a, seen_b) = (
                pulled(&app, &alice, "feed_log", &entry).await,
                pulled(&app, &bob, "feed_log", &entry).await,
            );
            assert_eq!(seen_a, seen_b, "{}", case.name);
            assert_eq!(
                seen_a, before,
                "{}: repeated events change nothing",
                case.name
            );
            assert_eq!(
                timer_fields(&seen_a),
                expected(&case),
                "{} in order {order:?}",
                case.name
            );
            runs += 1;
        }
    }
    assert_eq!(runs, 30);
}

/// Undo is a delete: the fold forgets the event, the entry gets a new
/// version, and the event stays deleted (a repeated create changes nothing).
async fn undo_by_delete(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let mut a = Device::new(&alice);
    let (entry, data) = timer(&baby, &json!("left"));
    a.push_ok(&app, vec![("feed_log", "create", data)]).await;
    let stop = Uuid::new_v4().to_string();
    let stop_event = event(&baby, "feed_log", &entry, &stop, 20.0, "stop", &Value::Null);
    let r = a
        .push_ok(&app, vec![("timer_event", "create", stop_event.clone())])
        .await;
    assert_eq!(
        r.body["results"][0]["version"], 2,
        "the event 2, then the entry 3"
    );
    let stopped = pulled(&app, &alice, "feed_log", &entry).await;
    assert_eq!(
        (
            &stopped["timerState"],
            &stopped["endedAt"],
            &stopped["durationMinutes"],
            &stopped["version"]
        ),
        (&json!("stopped"), &json!(at(20.0)), &json!(20), &json!(3))
    );
    let r = a
        .push_ok(&app, vec![("timer_event", "delete", json!({"id": stop}))])
        .await;
    assert_eq!(r.body["results"][0]["version"], 4);
    let undone = pulled(&app, &alice, "feed_log", &entry).await;
    assert_eq!(
        timer_fields(&undone),
        json!({"timerState": "running", "segments": [{"startedAt": START, "endedAt": null, "side": "left"}],
               "endedAt": null, "durationMinutes": 0})
    );
    assert_eq!(undone["version"], 5);
    // Deleting again, or creating the same event again: applied, nothing changes.
    let r = a
        .push_ok(
            &app,
            vec![
                ("timer_event", "delete", json!({"id": stop})),
                ("timer_event", "create", stop_event),
            ],
        )
        .await;
    assert_eq!(r.body["results"][0]["version"], 4);
    assert_eq!(r.body["results"][1]["version"], 4);
    assert_eq!(pulled(&app, &alice, "feed_log", &entry).await, undone);
    let gone = pulled(&app, &alice, "timer_event", &stop).await;
    assert!(gone["archivedAt"].is_string(), "{gone}");
    // Moving the timer's start folds it again: an event before it is dropped.
    let pause = Uuid::new_v4().to_string();
    a.push_ok(
        &app,
        vec![
            (
                "timer_event",
                "create",
                event(
                    &baby,
                    "feed_log",
                    &entry,
                    &pause,
                    5.0,
                    "pause",
                    &Value::Null,
                ),
            ),
            (
                "feed_log",
                "update",
                json!({"id": entry, "startedAt": at(6.0), "notes": "later"}),
            ),
        ],
    )
    .await;
    let moved = pulled(&app, &alice, "feed_log", &entry).await;
    assert_eq!(
        (&moved["timerState"], &moved["segments"], &moved["notes"]),
        (
            &json!("running"),
            &json!([{"startedAt": at(6.0), "endedAt": null, "side": "left"}]),
            &json!("later")
        )
    );
}

fn outcome(r: &Resp, i: usize) -> (String, String) {
    let x = &r.body["results"][i];
    let status = x["status"].as_str().unwrap_or_default();
    let code = x["code"].as_str().unwrap_or(status);
    (
        code.to_owned(),
        x["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Every rejection rule of the section, each a named rejection that writes
/// nothing, between mutations that apply.
async fn events_follow_the_rules(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let other = baby_id(&app, &alice, "Bo").await;
    let viewer = share(&app, &alice, &baby, app.token("vic"), "viewer").await;
    let mallory = app.token("mallory");
    let mut a = Device::new(&alice);
    let (feed, feed_data) = timer(&baby, &json!("left"));
    let sleep = Uuid::new_v4().to_string();
    let plain = Uuid::new_v4().to_string();
    let archived = Uuid::new_v4().to_string();
    a.push_ok(
        &app,
        vec![
            ("feed_log", "create", feed_data),
            ("sleep_log", "create", json!({"id": sleep, "babyId": baby, "startedAt": START, "timerState": "running"})),
            ("feed_log", "create", json!({"id": plain, "babyId": baby, "method": "bottle", "startedAt": START})),
            ("activity_log", "create", json!({"id": archived, "babyId": baby, "type": "bath", "startedAt": START, "timerState": "running"})),
            ("activity_log", "delete", json!({"id": archived})),
        ],
    )
    .await;
    let ev = |kind: &str, entry: &str, action: &str, side: Value| {
        event(
            &baby,
            kind,
            entry,
            &Uuid::new_v4().to_string(),
            1.0,
            action,
            &side,
        )
    };
    let fresh = Uuid::new_v4().to_string();
    let mut wrong_baby = ev("feed_log", &feed, "pause", Value::Null);
    wrong_baby["babyId"] = json!(other);
    let cases: Vec<(&str, &str, Value, &str, &str)> = vec![
        (
            "timer_event",
            "create",
            ev(
                "feed_log",
                &Uuid::new_v4().to_string(),
                "pause",
                Value::Null,
            ),
            "not_found",
            "no such entry",
        ),
        (
            "timer_event",
            "create",
            ev("sleep_log", &feed, "pause", Value::Null),
            "not_found",
            "no such entry",
        ),
        (
            "timer_event",
            "create",
            ev("feed_log", &plain, "pause", Value::Null),
            "conflict",
            "not a timer",
        ),
        (
            "timer_event",
            "create",
            ev("activity_log", &archived, "stop", Value::Null),
            "conflict",
            "archived",
        ),
        ("timer_event", "create", wrong_baby, "invalid", "babyId"),
        (
            "timer_event",
            "create",
            ev("sleep_log", &sleep, "switchSide", json!("left")),
            "invalid",
            "switchSide is for feed_log and pumping_log",
        ),
        (
            "timer_event",
            "create",
            ev("feed_log", &feed, "switchSide", Value::Null),
            "invalid",
            "data/side: required for switchSide",
        ),
        (
            "timer_event",
            "create",
            ev("feed_log", &feed, "stop", json!("left")),
            "invalid",
            "only switchSide takes a side",
        ),
        (
            "timer_event",
            "create",
            ev("feed_log", &feed, "rewind", Value::Null),
            "invalid",
            "data/action: must be one of pause, resume, switchSide, stop",
        ),
        (
            "timer_event",
            "update",
            json!({"id": Uuid::new_v4(), "action": "stop"}),
            "invalid",
            "create and delete only",
        ),
        (
            "feed_log",
            "update",
            json!({"id": feed, "endedAt": at(3.0)}),
            "invalid",
            "data/endedAt: follows the timer's events",
        ),
        (
            "feed_log",
            "update",
            json!({"id": feed, "durationMinutes": null}),
            "invalid",
            "data/durationMinutes",
        ),
        (
            "feed_log",
            "update",
            json!({"id": feed, "timerState": "running"}),
            "invalid",
            "data/timerState: accepted on create only",
        ),
        (
            "feed_log",
            "update",
            json!({"id": feed, "timerState": null}),
            "invalid",
            "data/timerState",
        ),
        (
            "feed_log",
            "update",
            json!({"id": feed, "segments": []}),
            "invalid",
            "data/segments: is set by the server",
        ),
        (
            "feed_log",
            "update",
            json!({"id": plain, "timerState": "running"}),
            "invalid",
            "data/timerState",
        ),
        (
            "feed_log",
            "create",
            json!({"id": plain, "babyId": baby, "method": "bottle", "startedAt": START, "timerState": "running"}),
            "invalid",
            "does not become a timer",
        ),
        (
            "sleep_log",
            "create",
            json!({"id": fresh, "babyId": baby, "startedAt": START, "timerState": "running", "endedAt": at(5.0)}),
            "invalid",
            "data/endedAt: a timer is created without it",
        ),
        (
            "sleep_log",
            "create",
            json!({"id": fresh, "babyId": baby, "startedAt": START, "timerState": "paused"}),
            "invalid",
            "data/timerState: must be running",
        ),
        (
            "nappy_log",
            "create",
            json!({"id": fresh, "babyId": baby, "startedAt": START, "timerState": "running"}),
            "invalid",
            "unknown field",
        ),
        // An entry created earlier in the same push exists.
        (
            "sleep_log",
            "create",
            json!({"id": fresh, "babyId": baby, "startedAt": START, "timerState": "running", "endedAt": null}),
            "applied",
            "",
        ),
        (
            "timer_event",
            "create",
            ev("sleep_log", &fresh, "pause", Value::Null),
            "applied",
            "",
        ),
        // A repeated create of a timer ignores its timerState and updates the rest.
        (
            "sleep_log",
            "create",
            json!({"id": fresh, "babyId": baby, "startedAt": START, "timerState": "running", "notes": "again"}),
            "applied",
            "",
        ),
    ];
    let before = pulled(&app, &alice, "feed_log", &feed).await;
    let r = a
        .push(
            &app,
            cases
                .iter()
                .map(|(k, op, d, _, _)| (*k, *op, d.clone()))
                .collect(),
        )
        .await;
    for (i, (kind, op, _, code, msg)) in cases.iter().enumerate() {
        let (got, message) = outcome(&r, i);
        assert_eq!(&got, code, "{i}: {kind} {op}: {message}");
        assert!(message.contains(msg), "{i}: {message:?} should say {msg:?}");
        if *code == "conflict" {
            assert!(
                r.body["results"][i]["current"]["id"].is_string(),
                "{i}: current"
            );
        }
    }
    assert_eq!(
        pulled(&app, &alice, "feed_log", &feed).await,
        before,
        "nothing written to the timer"
    );
    let paused = pulled(&app, &alice, "sleep_log", &fresh).await;
    assert_eq!(
        (&paused["timerState"], &paused["notes"]),
        (&json!("paused"), &json!("again"))
    );

    // A viewer may not act on a timer; a stranger is told it does not exist.
    let r = Device::new(&viewer)
        .push(
            &app,
            vec![(
                "timer_event",
                "create",
                ev("feed_log", &feed, "stop", Value::Null),
            )],
        )
        .await;
    assert_eq!(outcome(&r, 0).0, "forbidden");
    let mut stranger_event = ev("feed_log", &feed, "stop", Value::Null);
    let r = Device::new(&mallory)
        .push(
            &app,
            vec![("timer_event", "create", stranger_event.clone())],
        )
        .await;
    assert_eq!(outcome(&r, 0).0, "not_found");
    stranger_event["babyId"] = json!(baby_id(&app, &mallory, "Mo").await);
    let r = Device::new(&mallory)
        .push(&app, vec![("timer_event", "create", stranger_event)])
        .await;
    assert_eq!(outcome(&r, 0).0, "not_found", "{}", r.text);

    // A repeated create: the same fields (an instant written with another
    // offset) is applied; other fields are a conflict showing the stored event.
    let id = Uuid::new_v4().to_string();
    let pause = event(&baby, "feed_log", &feed, &id, 2.0, "pause", &Value::Null);
    a.push_ok(&app, vec![("timer_event", "create", pause.clone())])
        .await;
    let mut same = pause.clone();
    same["startedAt"] = json!("2026-11-21T04:02:00+01:00");
    let mut other_action = pause;
    other_action["action"] = json!("stop");
    let r = a
        .push(
            &app,
            vec![
                ("timer_event", "create", same),
                ("timer_event", "create", other_action),
            ],
        )
        .await;
    assert_eq!(outcome(&r, 0).0, "applied");
    assert_eq!(outcome(&r, 1).0, "conflict");
    assert_eq!(r.body["results"][1]["current"]["action"], "pause");

    // At most 200 events per entry, deleted ones included.
    let mut burst: Vec<(&str, &str, Value)> = vec![];
    let mut ids = vec![];
    for i in 1..200 {
        let id = Uuid::new_v4().to_string();
        let action = if i % 2 == 0 { "resume" } else { "pause" };
        burst.push((
            "timer_event",
            "create",
            event(
                &baby,
                "feed_log",
                &feed,
                &id,
                2.0 + f64::from(i) / 100.0,
                action,
                &Value::Null,
            ),
        ));
        ids.push(id);
    }
    burst.push(("timer_event", "delete", json!({"id": ids[0]})));
    a.push_ok(&app, burst).await;
    let r = a
        .push(
            &app,
            vec![(
                "timer_event",
                "create",
                ev("feed_log", &feed, "stop", Value::Null),
            )],
        )
        .await;
    let (code, message) = outcome(&r, 0);
    assert_eq!(code, "conflict", "{message}");
    assert!(message.contains("200 events"), "{message}");
    assert!(
        r.body["results"][0].get("current").is_none(),
        "no current: the answer stays small"
    );
}

/// Ids are unique within a kind, not across kinds: another family's entry
/// of another kind under a timer's id never mixes its events with the
/// timer's, neither in the fold nor in the count of 200.
async fn a_timer_id_reused_in_another_kind_stays_apart(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let mallory = app.token("mallory");
    let theirs = baby_id(&app, &mallory, "Mo").await;
    let (mut a, mut m) = (Device::new(&alice), Device::new(&mallory));
    let (feed, data) = timer(&baby, &json!("left"));
    a.push_ok(&app, vec![("feed_log", "create", data)]).await;
    let sleep = json!({"id": feed, "babyId": theirs, "startedAt": START, "timerState": "running"});
    m.push_ok(&app, vec![("sleep_log", "create", sleep)]).await;
    let tap = |baby: &str, kind: &str, min: f64, action: &str| {
        let id = Uuid::new_v4().to_string();
        event(baby, kind, &feed, &id, min, action, &Value::Null)
    };
    m.push_ok(
        &app,
        vec![(
            "timer_event",
            "create",
            tap(&theirs, "sleep_log", 5.0, "stop"),
        )],
    )
    .await;
    a.push_ok(
        &app,
        vec![
            (
                "timer_event",
                "create",
                tap(&baby, "feed_log", 3.0, "pause"),
            ),
            ("feed_log", "update", json!({"id": feed, "notes": "mine"})),
        ],
    )
    .await;
    let mine = pulled(&app, &alice, "feed_log", &feed).await;
    assert_eq!(
        (&mine["timerState"], &mine["segments"]),
        (
            &json!("paused"),
            &json!([{"startedAt": START, "endedAt": at(3.0), "side": "left"}])
        )
    );
    m.push_ok(
        &app,
        vec![("sleep_log", "update", json!({"id": feed, "notes": "x"}))],
    )
    .await;
    let other = pulled(&app, &mallory, "sleep_log", &feed).await;
    assert_eq!(
        (&other["timerState"], &other["segments"]),
        (
            &json!("stopped"),
            &json!([{"startedAt": START, "endedAt": at(5.0), "side": null}])
        )
    );
    // Mallory filling her entry's 200 events leaves Alice's timer free.
    let burst: Vec<(&str, &str, Value)> = (0..199)
        .map(|i| {
            (
                "timer_event",
                "create",
                tap(&theirs, "sleep_log", 6.0 + f64::from(i) / 100.0, "resume"),
            )
        })
        .collect();
    m.push_ok(&app, burst).await;
    a.push_ok(
        &app,
        vec![(
            "timer_event",
            "create",
            tap(&baby, "feed_log", 4.0, "resume"),
        )],
    )
    .await;
}

/// A push reads every event of each timer it acts on, so it may act on at
/// most 50 timers: 51 is 413 `too_many_mutations` and writes nothing (a
/// client splits the batch); 50 are applied.
async fn a_push_acts_on_at_most_fifty_timers(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let mut a = Device::new(&alice);
    let timers: Vec<(String, Value)> = (0..51).map(|_| timer(&baby, &json!("left"))).collect();
    a.push_ok(
        &app,
        timers
            .iter()
            .map(|(_, d)| ("feed_log", "create", d.clone()))
            .collect(),
    )
    .await;
    let pause = |entry: &str| {
        let id = Uuid::new_v4().to_string();
        (
            "timer_event",
            "create",
            event(&baby, "feed_log", entry, &id, 1.0, "pause", &Value::Null),
        )
    };
    let all: Vec<Value> = timers
        .iter()
        .enumerate()
        .map(|(i, (entry, _))| {
            let (entity, op, data) = pause(entry);
            json!({"id": a.next + i as i64, "entity": entity, "op": op, "data": data})
        })
        .collect();
    let r = push(&app, &alice, a.client, all.clone()).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_error_body(&r.body, "too_many_mutations");
    assert_eq!(r.body["error"]["details"]["limit"], 50);
    let first = pulled(&app, &alice, "feed_log", &timers[0].0).await;
    assert_eq!(first["timerState"], "running", "nothing written");
    let r = push(&app, &alice, a.client, all[..50].to_vec()).await;
    assert_all_applied(&r);
}

/// Moving a stopped timer's start past its stop drops the stop from the
/// fold (its end follows the events, not the stored end).
async fn moving_a_start_past_the_stop_refolds(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let mut a = Device::new(&alice);
    let (entry, data) = timer(&baby, &Value::Null);
    let stop = Uuid::new_v4().to_string();
    a.push_ok(
        &app,
        vec![
            ("sleep_log", "create", data_as_sleep(data)),
            (
                "timer_event",
                "create",
                event(
                    &baby,
                    "sleep_log",
                    &entry,
                    &stop,
                    20.0,
                    "stop",
                    &Value::Null,
                ),
            ),
        ],
    )
    .await;
    a.push_ok(
        &app,
        vec![(
            "sleep_log",
            "update",
            json!({"id": entry, "startedAt": at(25.0)}),
        )],
    )
    .await;
    let moved = pulled(&app, &alice, "sleep_log", &entry).await;
    assert_eq!(
        timer_fields(&moved),
        json!({"timerState": "running", "segments": [{"startedAt": at(25.0), "endedAt": null, "side": null}],
               "endedAt": null, "durationMinutes": 0})
    );
}

/// A feed timer's create data as a sleep timer's.
fn data_as_sleep(mut data: Value) -> Value {
    let m = data.as_object_mut().unwrap();
    m.remove("method");
    m.remove("startSide");
    data
}

/// Two server processes, two caregivers pushing events of one timer at
/// once, 80 each in batches of 10: every switch of side is a new segment,
/// so an event lost to a race shows. The entry ends as the fold of all 160
/// events, every event stored once, versions unique in the baby.
async fn concurrent_events_from_two_instances(backend: Backend) {
    use api::kinds::timer::{Action, Event, fold};
    use entity::enums::Side;

    let db = TestDb::new(backend).await;
    let env = load_env(&db);
    let servers = ServerProcess::start_many(2, db.dir.path(), &as_refs(&env));
    let token = |sub: &str| sign(TEST_SECRET, sub, json!({}));
    let alice = token("alice");
    let c0 = &servers[0].client;
    let baby = baby_id(c0, &alice, "Ada").await;
    let bob = share(c0, &alice, &baby, token("bob"), "editor").await;
    let (entry, data) = timer(&baby, &json!("left"));
    Device::new(&alice)
        .push_ok(c0, vec![("feed_log", "create", data)])
        .await;
    let workers = [alice.clone(), bob]
        .into_iter()
        .enumerate()
        .map(|(w, tok)| {
            let (c, baby, entry) = (servers[w].client.clone(), baby.clone(), entry.clone());
            async move {
                let mut device = Device::new(&tok);
                let mut sent = vec![];
                for round in 0..8 {
                    let batch: Vec<(&str, &str, Value)> = (0..10)
                        .map(|i| {
                            let n = (round * 10 + i) * 2 + w + 1;
                            let side = if n % 2 == 0 { "left" } else { "right" };
                            let id = Uuid::new_v4().to_string();
                            let min = n as f64 / 4.0;
                            sent.push((id.clone(), min, side));
                            let e = event(
                                &baby,
                                "feed_log",
                                &entry,
                                &id,
                                min,
                                "switchSide",
                                &json!(side),
                            );
                            ("timer_event", "create", e)
                        })
                        .collect();
                    device.push_ok(&c, batch).await;
                }
                sent
            }
        });
    let sent: Vec<(String, f64, &str)> = join_all(workers).await.into_iter().flatten().collect();
    assert_eq!(sent.len(), 160);
    let start: DateTime<Utc> = START.parse().unwrap();
    let events: Vec<Event> = sent
        .iter()
        .map(|(id, min, side)| Event {
            id: Uuid::parse_str(id).unwrap(),
            at: at(*min).parse().unwrap(),
            action: Action::SwitchSide(Side::parse(side).unwrap()),
        })
        .collect();
    let want = fold(start, Some(Side::Left), &events);
    assert_eq!(want.segments.len(), 161, "every event a segment");
    let got = pulled(c0, &alice, "feed_log", &entry).await;
    assert_eq!(
        got["segments"],
        serde_json::to_value(&want.segments).unwrap()
    );
    assert_eq!(got["timerState"], "running");

    let conn = db.connect().await;
    let rows = stored_rows(&conn).await;
    let events_stored = rows.iter().filter(|r| r.0 == "timer_event").count();
    assert_eq!(events_stored, 160);
    let mut versions: Vec<i64> = rows.iter().map(|r| r.3).collect();
    versions.sort();
    let n = versions.len();
    versions.dedup();
    assert_eq!(versions.len(), n, "versions unique in the baby");
    assert_eq!(
        got["version"],
        json!(versions.last().unwrap()),
        "the timer's version is the last handed out (each event moves it)"
    );
}

both!(
    a_timer_id_reused_in_another_kind_stays_apart,
    a_push_acts_on_at_most_fifty_timers,
    moving_a_start_past_the_stop_refolds,
    concurrent_events_from_two_instances,
    every_case_in_any_order_from_two_caregivers,
    undo_by_delete,
    events_follow_the_rules,
);
