//! The kinds of issue 20 at their edges (PROTOCOL.md, "Log entries"): each
//! range's first and last value in, the next one out; enums; decimals;
//! "at least one of"; `doseUnit` with `dose`; distinct allergens; and
//! pumping's `totalMl` kept equal to its sides on every write.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{both, helpers::*};

/// (entity, data besides id/babyId/startedAt, `None` if it applies, else
/// what the rejection's message says).
type Edge = (&'static str, Value, Option<&'static str>);

fn edges() -> Vec<Edge> {
    let long = "x".repeat(101);
    let name100 = "é".repeat(100);
    vec![
        // pumping_log
        ("pumping_log", json!({"leftMl": 0, "rightMl": 1000}), None),
        (
            "pumping_log",
            json!({"leftMl": 1001}),
            Some("data/leftMl: must be an integer from 0 to 1000"),
        ),
        (
            "pumping_log",
            json!({"rightMl": -1}),
            Some("data/rightMl: must be an integer from 0 to 1000"),
        ),
        ("pumping_log", json!({"totalMl": 2000}), None),
        (
            "pumping_log",
            json!({"totalMl": 2001}),
            Some("data/totalMl: must be an integer from 0 to 2000"),
        ),
        (
            "pumping_log",
            json!({"leftMl": 10, "rightMl": 20, "totalMl": 30}),
            None,
        ),
        (
            "pumping_log",
            json!({"leftMl": 10, "rightMl": 20, "totalMl": 31}),
            Some("data/totalMl: must be leftMl + rightMl (30)"),
        ),
        (
            "pumping_log",
            json!({"leftMl": 10, "totalMl": null}),
            Some("data/totalMl: must be leftMl + rightMl (10)"),
        ),
        (
            "pumping_log",
            json!({"durationMinutes": 1441}),
            Some("data/durationMinutes: must be an integer from 0 to 1440"),
        ),
        (
            "pumping_log",
            json!({"startSide": "middle"}),
            Some("data/startSide: must be one of left, right"),
        ),
        (
            "pumping_log",
            json!({"endSide": "left"}),
            Some("data/endSide: unknown field for pumping_log"),
        ),
        (
            "pumping_log",
            json!({"endedAt": "2026-11-20T07:04:59.999Z"}),
            Some("data/endedAt: must not be before startedAt"),
        ),
        // growth_log
        ("growth_log", json!({"weightGrams": 300}), None),
        (
            "growth_log",
            json!({"weightGrams": 40000, "lengthMm": 1300, "headCircumferenceMm": 650}),
            None,
        ),
        ("growth_log", json!({"lengthMm": 300}), None),
        ("growth_log", json!({"headCircumferenceMm": 200}), None),
        (
            "growth_log",
            json!({"weightGrams": 299}),
            Some("data/weightGrams: must be an integer from 300 to 40000"),
        ),
        (
            "growth_log",
            json!({"weightGrams": 40001}),
            Some("data/weightGrams: must be an integer from 300 to 40000"),
        ),
        (
            "growth_log",
            json!({"weightGrams": 3500.5}),
            Some("data/weightGrams: must be an integer"),
        ),
        (
            "growth_log",
            json!({"lengthMm": 1301}),
            Some("data/lengthMm: must be an integer from 300 to 1300"),
        ),
        (
            "growth_log",
            json!({"headCircumferenceMm": 199}),
            Some("data/headCircumferenceMm: must be an integer from 200 to 650"),
        ),
        (
            "growth_log",
            json!({}),
            Some("at least one of weightGrams, lengthMm, headCircumferenceMm"),
        ),
        (
            "growth_log",
            json!({"weightGrams": null, "notes": "x"}),
            Some("at least one of"),
        ),
        // medication_log
        ("medication_log", json!({"name": name100}), None),
        (
            "medication_log",
            json!({"name": "Calpol", "dose": 0.001, "doseUnit": "ml"}),
            None,
        ),
        (
            "medication_log",
            json!({"name": "Calpol", "dose": 10000, "doseUnit": "mg", "minIntervalMinutes": 10080, "maxDosesPer24h": 24}),
            None,
        ),
        (
            "medication_log",
            json!({"name": "Calpol", "dose": 2.5, "doseUnit": "puff", "minIntervalMinutes": 0, "maxDosesPer24h": 1}),
            None,
        ),
        (
            "medication_log",
            json!({}),
            Some("data/name: required to create a medication_log"),
        ),
        (
            "medication_log",
            json!({"name": ""}),
            Some("data/name: must be 1 to 100 characters"),
        ),
        (
            "medication_log",
            json!({"name": long}),
            Some("data/name: at most 100 characters"),
        ),
        (
            "medication_log",
            json!({"name": "a", "dose": 0, "doseUnit": "ml"}),
            Some("data/dose: must be a number more than 0 and at most 10000, at most 3 decimals"),
        ),
        (
            "medication_log",
            json!({"name": "a", "dose": 10000.001, "doseUnit": "ml"}),
            Some("data/dose: must be a number"),
        ),
        (
            "medication_log",
            json!({"name": "a", "dose": 2.0005, "doseUnit": "ml"}),
            Some("data/dose: must be a number"),
        ),
        (
            "medication_log",
            json!({"name": "a", "dose": "5", "doseUnit": "ml"}),
            Some("data/dose: must be a number"),
        ),
        (
            "medication_log",
            json!({"name": "a", "dose": 5}),
            Some("data/doseUnit: required with a dose"),
        ),
        (
            "medication_log",
            json!({"name": "a", "doseUnit": "ml"}),
            Some("data/doseUnit: only with a dose"),
        ),
        (
            "medication_log",
            json!({"name": "a", "dose": 5, "doseUnit": "spoon"}),
            Some("data/doseUnit: must be one of ml, mg, drops, tablet, capsule, sachet, puff"),
        ),
        (
            "medication_log",
            json!({"name": "a", "minIntervalMinutes": 10081}),
            Some("data/minIntervalMinutes: must be an integer from 0 to 10080"),
        ),
        (
            "medication_log",
            json!({"name": "a", "maxDosesPer24h": 0}),
            Some("data/maxDosesPer24h: must be an integer from 1 to 24"),
        ),
        (
            "medication_log",
            json!({"name": "a", "maxDosesPer24h": 25}),
            Some("data/maxDosesPer24h: must be an integer from 1 to 24"),
        ),
        // temperature_log
        ("temperature_log", json!({"celsius": 30.0}), None),
        (
            "temperature_log",
            json!({"celsius": 45, "site": "rectal"}),
            None,
        ),
        (
            "temperature_log",
            json!({"celsius": 37.2, "site": "forehead"}),
            None,
        ),
        (
            "temperature_log",
            json!({}),
            Some("data/celsius: required to create a temperature_log"),
        ),
        (
            "temperature_log",
            json!({"celsius": 29.9}),
            Some("data/celsius: must be a number from 30.0 to 45.0, at most 1 decimal"),
        ),
        (
            "temperature_log",
            json!({"celsius": 45.1}),
            Some("data/celsius: must be a number from 30.0 to 45.0"),
        ),
        (
            "temperature_log",
            json!({"celsius": 37.25}),
            Some("data/celsius: must be a number from 30.0 to 45.0"),
        ),
        (
            "temperature_log",
            json!({"celsius": null}),
            Some("data/celsius: must be a number"),
        ),
        (
            "temperature_log",
            json!({"celsius": 37, "site": "mouth"}),
            Some("data/site: must be one of ear, forehead, armpit, rectal, oral"),
        ),
        // solids_log
        (
            "solids_log",
            json!({"food": "avocado", "reaction": "allergic", "allergens": ["milk", "egg", "peanut", "treeNut", "soy", "wheat", "fish", "shellfish", "sesame"]}),
            None,
        ),
        ("solids_log", json!({"food": "pear", "allergens": []}), None),
        (
            "solids_log",
            json!({}),
            Some("data/food: required to create a solids_log"),
        ),
        (
            "solids_log",
            json!({"food": ""}),
            Some("data/food: must be 1 to 100 characters"),
        ),
        (
            "solids_log",
            json!({"food": "egg", "allergens": ["egg", "egg"]}),
            Some("data/allergens: item 1: repeats an earlier one"),
        ),
        (
            "solids_log",
            json!({"food": "nut", "allergens": ["nuts"]}),
            Some("data/allergens: item 0: must be one of milk, egg, peanut"),
        ),
        (
            "solids_log",
            json!({"food": "egg", "allergens": "egg"}),
            Some("data/allergens: must be an array"),
        ),
        (
            "solids_log",
            json!({"food": "egg", "reaction": "meh"}),
            Some("data/reaction: must be one of loved, liked, neutral, disliked, allergic"),
        ),
        // activity_log
        (
            "activity_log",
            json!({"type": "tummyTime", "durationMinutes": 1440}),
            None,
        ),
        (
            "activity_log",
            json!({"type": "skinToSkin", "endedAt": "2026-11-20T07:05:00.000Z"}),
            None,
        ),
        (
            "activity_log",
            json!({}),
            Some("data/type: required to create an activity_log"),
        ),
        (
            "activity_log",
            json!({"type": "nap"}),
            Some(
                "data/type: must be one of tummyTime, bath, indoorPlay, outdoorPlay, skinToSkin, other",
            ),
        ),
        (
            "activity_log",
            json!({"type": "bath", "durationMinutes": 1441}),
            Some("data/durationMinutes: must be an integer from 0 to 1440"),
        ),
        (
            "activity_log",
            json!({"type": "bath", "startSide": "left"}),
            Some("data/startSide: unknown field for activity_log"),
        ),
    ]
}

/// Every edge of every new kind, in one push: what is in applies, what is
/// out is a rejection naming the field by its path; nothing refused is stored.
async fn every_new_kind_at_its_edges(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let edges = edges();
    let mutations: Vec<Value> = edges
        .iter()
        .enumerate()
        .map(|(i, (kind, data, _))| {
            let mut data = data.clone();
            data["id"] = json!(Uuid::new_v4());
            data["babyId"] = json!(baby);
            data["startedAt"] = json!(T0);
            create(i as i64 + 1, kind, data)
        })
        .collect();
    let r = push(&app, &alice, Uuid::new_v4(), mutations.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut applied = 0;
    for (i, (kind, data, want)) in edges.iter().enumerate() {
        let res = &r.body["results"][i];
        match want {
            None => {
                assert_eq!(res["status"], "applied", "{i} {kind} {data}: {res}");
                applied += 1;
            }
            Some(msg) => {
                assert_eq!(
                    (&res["status"], &res["code"]),
                    (&json!("rejected"), &json!("invalid")),
                    "{i} {kind} {data}: {res}"
                );
                let message = res["message"].as_str().unwrap();
                assert!(
                    message.starts_with(&format!("mutations/{i}/")) && message.contains(msg),
                    "{i} {kind}: {message:?} should say {msg:?}"
                );
            }
        }
    }
    let pulled = entries(&pull(&app, &alice, Uuid::new_v4(), None, Some(5000)).await);
    assert_eq!(pulled.len(), applied, "only what applied is stored");
    // Decimals come back as they were written.
    let by_id = |i: usize| {
        let id = &mutations[i]["data"]["id"];
        pulled
            .iter()
            .find(|(_, e)| &e["id"] == id)
            .map(|(_, e)| e.clone())
            .unwrap()
    };
    let dose = edges
        .iter()
        .position(|(_, d, _)| d["dose"] == json!(0.001))
        .unwrap();
    assert_eq!(by_id(dose)["dose"].as_f64(), Some(0.001));
    let temp = edges
        .iter()
        .position(|(_, d, _)| d["celsius"] == json!(37.2))
        .unwrap();
    assert_eq!(by_id(temp)["celsius"].as_f64(), Some(37.2));
    let pumped = edges
        .iter()
        .position(|(_, d, _)| d["leftMl"] == json!(0))
        .unwrap();
    assert_eq!(by_id(pumped)["totalMl"], 1000, "the sum, derived");
}

/// Pumping's `totalMl` follows its sides on every write; without sides it
/// is what the client says. Growth keeps at least one measure; a dose keeps
/// its unit.
async fn derived_and_joint_fields_hold_on_every_write(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let (p, g, m) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let client = Uuid::new_v4();
    let r = push(
        &app,
        &alice,
        client,
        vec![
            create(1, "pumping_log", json!({"id": p, "babyId": baby, "startedAt": T0, "leftMl": 60})),
            update(2, "pumping_log", json!({"id": p, "rightMl": 45})),
            create(3, "growth_log", json!({"id": g, "babyId": baby, "startedAt": T0, "weightGrams": 3500})),
            create(4, "medication_log", json!({"id": m, "babyId": baby, "startedAt": T0, "name": "Calpol", "dose": 2.5, "doseUnit": "ml"})),
        ],
    )
    .await;
    assert_all_applied(&r);
    let get = |r: &Resp, id: Uuid| {
        entries(r)
            .into_iter()
            .find(|(_, e)| e["id"] == json!(id))
            .map(|(_, e)| e)
            .unwrap()
    };
    let all = pull(&app, &alice, Uuid::new_v4(), None, None).await;
    assert_eq!(get(&all, p)["totalMl"], 105);
    let r = push(
        &app,
        &alice,
        client,
        vec![
            update(5, "pumping_log", json!({"id": p, "totalMl": 100})),
            update(6, "growth_log", json!({"id": g, "weightGrams": null})),
            update(7, "medication_log", json!({"id": m, "doseUnit": null})),
            update(
                8,
                "medication_log",
                json!({"id": m, "dose": null, "doseUnit": null}),
            ),
            update(
                9,
                "pumping_log",
                json!({"id": p, "leftMl": null, "rightMl": null}),
            ),
            update(10, "pumping_log", json!({"id": p, "totalMl": 90})),
            update(
                11,
                "growth_log",
                json!({"id": g, "lengthMm": 520, "weightGrams": null}),
            ),
        ],
    )
    .await;
    let statuses: Vec<&Value> = r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| &x["status"])
        .collect();
    assert_eq!(
        statuses,
        [
            "rejected", "rejected", "rejected", "applied", "applied", "applied", "applied"
        ]
        .iter()
        .collect::<Vec<_>>(),
        "{}",
        r.text
    );
    let all = pull(&app, &alice, Uuid::new_v4(), None, None).await;
    let pumped = get(&all, p);
    assert_eq!(
        (&pumped["leftMl"], &pumped["rightMl"], &pumped["totalMl"]),
        (&Value::Null, &Value::Null, &json!(90)),
        "without sides the total is the client's"
    );
    let grown = get(&all, g);
    assert_eq!(
        (&grown["weightGrams"], &grown["lengthMm"]),
        (&Value::Null, &json!(520))
    );
    let dosed = get(&all, m);
    assert_eq!(
        (&dosed["dose"], &dosed["doseUnit"]),
        (&Value::Null, &Value::Null)
    );
}

both!(
    every_new_kind_at_its_edges,
    derived_and_joint_fields_hold_on_every_write,
);
