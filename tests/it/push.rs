//! Push: exactly-once batches, one transaction, access from the stored
//! record's baby, strict validation, versions per baby.

use std::collections::{HashMap, HashSet};

use futures::future::join_all;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{both, helpers::*};

#[track_caller]
fn statuses(r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| match x["status"].as_str().unwrap() {
            "rejected" => format!("rejected/{}", x["code"].as_str().unwrap()),
            s => s.to_owned(),
        })
        .collect()
}

async fn create_update_delete_each_entity(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let client = Uuid::new_v4();
    let (f, s, n) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let r = push(
        &app,
        &alice,
        client,
        vec![feed(1, f, &baby), sleep(2, s, &baby), nappy(3, n, &baby)],
    )
    .await;
    assert_eq!(r.body["lastMutationId"], 3);
    assert_eq!(
        r.body["results"],
        json!([{"id": 1, "status": "applied", "version": 1}, {"id": 2, "status": "applied", "version": 2}, {"id": 3, "status": "applied", "version": 3}])
    );
    let row = entity::feed_log::Entity::find_by_id(f)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            row.method.as_str(),
            row.amount_ml,
            row.is_estimated,
            row.logged_by.as_str()
        ),
        ("bottle", Some(120), false, "alice")
    );
    assert_eq!(row.started_at.to_rfc3339(), "2026-11-20T07:05:00+00:00");
    let row = entity::nappy_log::Entity::find_by_id(n)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.nappy_type.map(|t| t.as_str()), Some("poo"));

    // Update changes only the fields given.
    let r = push(
        &app,
        &alice,
        client,
        vec![
            update(
                4,
                "feed_log",
                json!({"id": f, "amountMl": 150, "notes": "sleepy"}),
            ),
            update(5, "sleep_log", json!({"id": s, "durationMinutes": null})),
            update(6, "nappy_log", json!({"id": n, "colour": "green"})),
        ],
    )
    .await;
    assert_eq!(statuses(&r), ["applied"; 3]);
    assert_eq!(r.body["results"][0]["version"], 4);
    let row = entity::feed_log::Entity::find_by_id(f)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            row.amount_ml,
            row.notes.as_deref(),
            row.method.as_str(),
            row.version
        ),
        (Some(150), Some("sleepy"), "bottle", 4)
    );
    let row = entity::sleep_log::Entity::find_by_id(s)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.duration_minutes, row.ended_at.is_some()), (None, true));
    let row = entity::nappy_log::Entity::find_by_id(n)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            row.colour.map(|c| c.as_str()),
            row.consistency.map(|c| c.as_str())
        ),
        (Some("green"), Some("mushy"))
    );

    // Delete: soft; twice is applied and changes nothing; update after is a conflict.
    let r = push(
        &app,
        &alice,
        client,
        vec![delete(7, "feed_log", f), delete(8, "feed_log", f)],
    )
    .await;
    assert_eq!(statuses(&r), ["applied", "applied"]);
    assert_eq!(r.body["results"][0]["version"], 7);
    assert_eq!(
        r.body["results"][1]["version"], 7,
        "deleting an archived record changes nothing"
    );
    let row = entity::feed_log::Entity::find_by_id(f)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(row.archived_at.is_some());
    assert_eq!(row.version, 7);
    let r = push(
        &app,
        &alice,
        client,
        vec![update(9, "feed_log", json!({"id": f, "amountMl": 1}))],
    )
    .await;
    assert_eq!(statuses(&r), ["rejected/conflict"]);
    let current = &r.body["results"][0]["current"];
    assert_eq!(current["id"], f.to_string());
    assert_eq!(current["version"], 7);
    assert!(current["archivedAt"].is_string());
    assert_eq!(current["amountMl"], 150);
    let r = push(
        &app,
        &alice,
        client,
        vec![delete(10, "sleep_log", s), delete(11, "nappy_log", n)],
    )
    .await;
    assert_eq!(statuses(&r), ["applied", "applied"]);
    let babies = entity::babies::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(
        babies[0].change_counter, 9,
        "counter = highest version handed out"
    );
}

async fn replay_is_all_duplicate_and_changes_nothing(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let client = Uuid::new_v4();
    let batch = vec![
        feed(1, Uuid::new_v4(), &baby),
        sleep(2, Uuid::new_v4(), &baby),
        nappy(3, Uuid::new_v4(), &baby),
    ];
    let first = push(&app, &alice, client, batch.clone()).await;
    assert_eq!(statuses(&first), ["applied"; 3]);
    let before = app.stored().await;
    let again = push(&app, &alice, client, batch.clone()).await;
    assert_eq!(again.body["lastMutationId"], 3);
    assert_eq!(
        again.body["results"],
        json!([{"id": 1, "status": "duplicate"}, {"id": 2, "status": "duplicate"}, {"id": 3, "status": "duplicate"}])
    );
    assert_eq!(
        app.stored().await,
        before,
        "a replay changes nothing, versions included"
    );
    // Overlapping: old ones duplicate, the new one applied.
    let n = Uuid::new_v4();
    let r = push(
        &app,
        &alice,
        client,
        vec![batch[1].clone(), batch[2].clone(), nappy(4, n, &baby)],
    )
    .await;
    assert_eq!(statuses(&r), ["duplicate", "duplicate", "applied"]);
    assert_eq!(r.body["results"][2]["version"], 4);
    // An empty push reports where the client stands.
    let r = push(&app, &alice, client, vec![]).await;
    assert_eq!(r.body, json!({"lastMutationId": 4, "results": []}));
}

async fn a_gap_is_409_and_applies_nothing(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let client = Uuid::new_v4();
    let r = push(&app, &alice, client, vec![feed(2, Uuid::new_v4(), &baby)]).await;
    r.assert_error(409, "out_of_order");
    assert_eq!(r.body["error"]["details"]["expected"], 1);
    push(&app, &alice, client, vec![feed(1, Uuid::new_v4(), &baby)]).await;
    for batch in [
        vec![feed(3, Uuid::new_v4(), &baby)],
        vec![
            feed(2, Uuid::new_v4(), &baby),
            feed(4, Uuid::new_v4(), &baby),
        ],
        vec![
            feed(2, Uuid::new_v4(), &baby),
            feed(2, Uuid::new_v4(), &baby),
        ],
        vec![
            feed(3, Uuid::new_v4(), &baby),
            feed(2, Uuid::new_v4(), &baby),
        ],
    ] {
        let r = push(&app, &alice, client, batch).await;
        r.assert_error(409, "out_of_order");
        assert_eq!(r.body["error"]["details"]["expected"], 2);
    }
    assert_eq!(
        app.stored().await.len(),
        1,
        "nothing of the refused batches was applied"
    );
    let r = push(&app, &alice, client, vec![]).await;
    assert_eq!(r.body["lastMutationId"], 1);
}

async fn a_bad_mutation_between_two_good_ones(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let client = Uuid::new_v4();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let mut bad = feed(2, Uuid::new_v4(), &baby);
    bad["data"]["amountMl"] = json!(5000);
    let r = push(
        &app,
        &alice,
        client,
        vec![feed(1, a, &baby), bad, feed(3, b, &baby)],
    )
    .await;
    assert_eq!(statuses(&r), ["applied", "rejected/invalid", "applied"]);
    assert!(
        r.body["results"][1]["message"]
            .as_str()
            .unwrap()
            .contains("amountMl")
    );
    assert_eq!(
        r.body["lastMutationId"], 3,
        "the rejected mutation consumed its id"
    );
    assert_eq!(
        r.body["results"][2]["version"], 2,
        "a rejection takes no version"
    );
    assert_eq!(app.stored().await.len(), 2);
    // Malformed mutations inside a good envelope are rejections, not a 400.
    let id = Uuid::new_v4();
    let r = push(&app, &alice, client, vec![
        json!({"id": 4, "entity": "bath_log", "op": "create", "data": {"id": id}}),
        json!({"id": 5, "entity": "feed_log", "op": "upsert", "data": {"id": id}}),
        json!({"id": 6, "entity": "feed_log", "op": "update", "data": "nope"}),
        json!({"id": 7, "entity": "feed_log", "op": "update", "data": {"id": a}, "color": 1}),
        json!({"id": 8, "entity": "feed_log", "op": "update", "data": {"id": a}, "baseVersion": "1"}),
        json!({"id": 9, "entity": "feed_log", "op": "update", "data": {"id": a, "favourite": true}}),
        json!({"id": 10}),
        feed(11, Uuid::new_v4(), &baby),
    ]).await;
    assert_eq!(
        statuses(&r),
        [vec!["rejected/invalid"; 7], vec!["applied"]].concat()
    );
    for (i, word) in [
        "entity",
        "op",
        "data",
        "color",
        "baseVersion",
        "favourite",
        "entity",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            r.body["results"][i]["message"]
                .as_str()
                .unwrap()
                .contains(word),
            "{}",
            r.body["results"][i]
        );
    }
}

async fn every_validation_rule_is_a_named_rejection(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let client = Uuid::new_v4();
    let f = Uuid::new_v4();
    push(&app, &alice, client, vec![feed(1, f, &baby)]).await;
    let future = (chrono::Utc::now() + chrono::TimeDelta::hours(25)).to_rfc3339();
    let cases: Vec<(Value, &str)> = vec![
        (json!({"method": "spoon"}), "method"),
        (json!({"method": null}), "method"),
        (json!({"amountMl": -1}), "amountMl"),
        (json!({"amountMl": 2001}), "amountMl"),
        (json!({"amountMl": 1.5}), "amountMl"),
        (json!({"durationMinutes": 1441}), "durationMinutes"),
        (json!({"isEstimated": "true"}), "isEstimated"),
        (
            json!({"estimatedSource": "x".repeat(65)}),
            "estimatedSource",
        ),
        (json!({"endSide": "both"}), "endSide"),
        (json!({"notes": "x".repeat(2001)}), "notes"),
        (json!({"notes": 7}), "notes"),
        (json!({"startedAt": "1899-12-31T23:59:59Z"}), "startedAt"),
        (json!({"startedAt": future}), "startedAt"),
        (json!({"startedAt": "2026-11-20T07:05:00"}), "startedAt"),
        (json!({"startedAt": null}), "startedAt"),
        (json!({"endedAt": "2026-11-20T07:04:59.999Z"}), "endedAt"),
        (json!({"loggedBy": "mallory"}), "loggedBy"),
        (json!({"version": 99}), "version"),
        (json!({"type": "wee"}), "type"),
        (json!({"babyId": "not-a-uuid"}), "babyId"),
    ];
    let n = cases.len() as i64;
    let mutations: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, (extra, _))| {
            let mut data = json!({"id": f});
            for (k, v) in extra.as_object().unwrap() {
                data[k] = v.clone();
            }
            update(i as i64 + 2, "feed_log", data)
        })
        .collect();
    let r = push(&app, &alice, client, mutations).await;
    for (i, (_, field)) in cases.iter().enumerate() {
        let res = &r.body["results"][i];
        assert_eq!(res["status"], "rejected", "{field}: {res}");
        assert_eq!(res["code"], "invalid", "{field}: {res}");
        assert!(
            res["message"].as_str().unwrap().contains(field),
            "{field}: {res}"
        );
    }
    assert_eq!(r.body["lastMutationId"], n + 1);
    let row = entity::feed_log::Entity::find_by_id(f)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.version, row.amount_ml, row.notes),
        (1, Some(120), None),
        "nothing changed"
    );
    // Kind-specific limits and the 24 h window's inside edge.
    let soon = (chrono::Utc::now() + chrono::TimeDelta::hours(23)).to_rfc3339();
    let s = Uuid::new_v4();
    let m = n + 2;
    let r = push(&app, &alice, client, vec![
        json!({"id": m, "entity": "sleep_log", "op": "create", "data": {"id": s, "babyId": baby, "startedAt": soon, "durationMinutes": 2880}}),
        json!({"id": m + 1, "entity": "sleep_log", "op": "update", "data": {"id": s, "durationMinutes": 2881}}),
        json!({"id": m + 2, "entity": "nappy_log", "op": "create", "data": {"id": Uuid::new_v4(), "babyId": baby, "startedAt": T0, "consistency": "hardPellets", "colour": "grey", "type": "clean"}}),
        json!({"id": m + 3, "entity": "nappy_log", "op": "create", "data": {"id": Uuid::new_v4(), "babyId": baby, "startedAt": T0, "colour": "purple"}}),
        json!({"id": m + 4, "entity": "feed_log", "op": "create", "data": {"id": Uuid::new_v4(), "babyId": baby, "startedAt": T0}}),
        json!({"id": m + 5, "entity": "sleep_log", "op": "create", "data": {"id": Uuid::new_v4(), "babyId": baby, "startedAt": T0, "endedAt": "2026-11-20T07:00:00Z"}}),
    ]).await;
    assert_eq!(
        statuses(&r),
        [
            "applied",
            "rejected/invalid",
            "applied",
            "rejected/invalid",
            "rejected/invalid",
            "rejected/invalid"
        ]
    );
}

async fn malformed_envelopes_are_400_and_apply_nothing(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let client = Uuid::new_v4();
    let good = feed(1, Uuid::new_v4(), &baby);
    let cases = vec![
        json!({"protocolVersion": 1, "clientId": client, "mutations": {"0": good}}),
        json!({"protocolVersion": 1, "clientId": client, "mutations": [{"entity": "feed_log"}]}),
        json!({"protocolVersion": 1, "clientId": client, "mutations": [good, {"id": "2"}]}),
        json!({"protocolVersion": 1, "clientId": client, "mutations": [{"id": -1}]}),
        json!({"protocolVersion": 1, "clientId": client, "mutations": [{"id": u64::MAX}]}),
        json!({"protocolVersion": 1, "clientId": "abc", "mutations": [good]}),
        json!({"protocolVersion": 1, "mutations": [good]}),
        json!({"clientId": client, "mutations": [good]}),
        json!({"protocolVersion": 1, "clientId": client, "mutations": [good], "force": true}),
    ];
    for body in cases {
        let r = app.post("/api/sync/push", &alice, body.clone()).await;
        r.assert_error(400, "invalid_request");
    }
    let r = app
        .post(
            "/api/sync/push",
            &alice,
            json!({"protocolVersion": 2, "clientId": client, "mutations": [good]}),
        )
        .await;
    r.assert_error(400, "unsupported_protocol_version");
    for (ct, body, status, code) in [
        ("application/json", "{not json", 400, "invalid_request"),
        ("text/plain", "{}", 415, "unsupported_media_type"),
    ] {
        let r = app
            .http
            .post(app.url(PUSH))
            .bearer_auth(&alice)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        Client::read(r).await.assert_error(status, code);
    }
    assert!(app.stored().await.is_empty());
    let r = push(&app, &alice, client, vec![]).await;
    assert_eq!(r.body["lastMutationId"], 0);
}

async fn viewers_and_strangers_write_nothing(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let vera = share(&app, &alice, &baby, app.token("vera"), "viewer").await;
    let stranger = app.token("mallory");
    let f = Uuid::new_v4();
    push(&app, &alice, Uuid::new_v4(), vec![feed(1, f, &baby)]).await;
    let before = app.stored().await;
    let r = push(
        &app,
        &vera,
        Uuid::new_v4(),
        vec![
            feed(1, Uuid::new_v4(), &baby),
            update(2, "feed_log", json!({"id": f, "amountMl": 1})),
            delete(3, "feed_log", f),
        ],
    )
    .await;
    assert_eq!(statuses(&r), ["rejected/forbidden"; 3]);
    let r = push(
        &app,
        &stranger,
        Uuid::new_v4(),
        vec![
            feed(1, Uuid::new_v4(), &baby),
            update(2, "feed_log", json!({"id": f, "amountMl": 1})),
            delete(3, "feed_log", f),
            feed(4, Uuid::new_v4(), &Uuid::new_v4().to_string()),
        ],
    )
    .await;
    assert_eq!(statuses(&r), ["rejected/not_found"; 4]);
    assert!(
        r.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x.get("current").is_none()),
        "nothing leaks"
    );
    assert_eq!(app.stored().await, before);
}

async fn another_familys_entry_by_uuid_stays_untouched(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, bob) = (app.token("alice"), app.token("bob"));
    let alices = baby_id(&app, &alice, "Ada").await;
    let bobs = baby_id(&app, &bob, "Ada").await;
    let (f, s) = (Uuid::new_v4(), Uuid::new_v4());
    push(
        &app,
        &alice,
        Uuid::new_v4(),
        vec![feed(1, f, &alices), sleep(2, s, &alices)],
    )
    .await;
    let before = app.stored().await;
    let row_before = entity::feed_log::Entity::find_by_id(f)
        .one(&app.db)
        .await
        .unwrap();
    let r = push(&app, &bob, Uuid::new_v4(), vec![
        update(1, "feed_log", json!({"id": f, "amountMl": 1})),
        update(2, "feed_log", json!({"id": f, "babyId": bobs, "amountMl": 1})),
        update(3, "feed_log", json!({"id": f, "babyId": alices, "amountMl": 1})),
        delete(4, "feed_log", f),
        json!({"id": 5, "entity": "feed_log", "op": "delete", "data": {"id": f, "babyId": bobs}}),
        json!({"id": 6, "entity": "sleep_log", "op": "update", "data": {"id": s, "babyId": bobs, "notes": "mine"}, "baseVersion": 99}),
        json!({"id": 7, "entity": "feed_log", "op": "create", "data": {"id": f, "babyId": alices, "method": "breast", "startedAt": T0}}),
    ]).await;
    assert_eq!(statuses(&r), ["rejected/not_found"; 7]);
    // Creating the same id in bob's own baby: a conflict, but nothing of alice's shows.
    let r = push(
        &app,
        &bob,
        Uuid::new_v4(),
        vec![json!({"id": 1, "entity": "feed_log", "op": "create",
        "data": {"id": f, "babyId": bobs, "method": "breast", "startedAt": T0}})],
    )
    .await;
    assert_eq!(statuses(&r), ["rejected/conflict"]);
    assert!(r.body["results"][0].get("current").is_none());
    assert_eq!(app.stored().await, before);
    assert_eq!(
        entity::feed_log::Entity::find_by_id(f)
            .one(&app.db)
            .await
            .unwrap(),
        row_before
    );
}

async fn create_of_an_existing_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let (one, two) = (
        baby_id(&app, &alice, "Ada").await,
        baby_id(&app, &alice, "Ada").await,
    );
    let client = Uuid::new_v4();
    let f = Uuid::new_v4();
    push(&app, &alice, client, vec![feed(1, f, &one)]).await;
    // Same baby: acts as update of the fields given.
    let r = push(
        &app,
        &alice,
        client,
        vec![json!({"id": 2, "entity": "feed_log", "op": "create",
        "data": {"id": f, "babyId": one, "method": "breast", "startedAt": T0, "endSide": "left"}})],
    )
    .await;
    assert_eq!(statuses(&r), ["applied"]);
    assert_eq!(r.body["results"][0]["version"], 2);
    let row = entity::feed_log::Entity::find_by_id(f)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            row.method.as_str(),
            row.end_side.map(|s| s.as_str()),
            row.amount_ml
        ),
        ("breast", Some("left"), Some(120))
    );
    // Another baby: conflict, with the stored record (the caller can see it).
    let r = push(&app, &alice, client, vec![feed(3, f, &two)]).await;
    assert_eq!(statuses(&r), ["rejected/conflict"]);
    assert_eq!(r.body["results"][0]["current"]["babyId"], one);
    assert_eq!(r.body["results"][0]["current"]["version"], 2);
    let row = entity::feed_log::Entity::find_by_id(f)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.baby_id.to_string(), one);
    // The same id may be used by another kind.
    let r = push(&app, &alice, client, vec![sleep(4, f, &two)]).await;
    assert_eq!(statuses(&r), ["applied"]);
}

async fn base_version_conflicts(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let bob = share(&app, &alice, &baby, app.token("bob"), "editor").await;
    let (ca, cb) = (Uuid::new_v4(), Uuid::new_v4());
    let f = Uuid::new_v4();
    push(&app, &alice, ca, vec![feed(1, f, &baby)]).await; // v1
    let r = push(&app, &bob, cb, vec![json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": f, "amountMl": 90}, "baseVersion": 1})]).await;
    assert_eq!(statuses(&r), ["applied"]);
    assert_eq!(r.body["results"][0]["version"], 2);
    // Alice still thinks it is at version 1.
    let r = push(&app, &alice, ca, vec![
        json!({"id": 2, "entity": "feed_log", "op": "update", "data": {"id": f, "amountMl": 200}, "baseVersion": 1}),
        json!({"id": 3, "entity": "feed_log", "op": "delete", "data": {"id": f}, "baseVersion": 1}),
    ]).await;
    assert_eq!(statuses(&r), ["rejected/conflict", "rejected/conflict"]);
    let current = &r.body["results"][0]["current"];
    assert_eq!(
        (current["version"].as_i64(), current["amountMl"].as_i64()),
        (Some(2), Some(90))
    );
    assert_eq!(current["loggedBy"], "alice");
    // Without baseVersion the last write wins; a current baseVersion applies.
    let r = push(&app, &alice, ca, vec![
        update(4, "feed_log", json!({"id": f, "amountMl": 200})),
        json!({"id": 5, "entity": "feed_log", "op": "delete", "data": {"id": f}, "baseVersion": 3}),
    ]).await;
    assert_eq!(statuses(&r), ["applied", "applied"]);
    let row = entity::feed_log::Entity::find_by_id(f)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.amount_ml, row.version, row.archived_at.is_some()),
        (Some(200), 4, true)
    );
}

async fn client_ids_belong_to_their_first_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, bob) = (app.token("alice"), app.token("bob"));
    let baby = baby_id(&app, &alice, "Ada").await;
    share(&app, &alice, &baby, app.token("bob"), "editor").await;
    let client = Uuid::new_v4();
    push(&app, &alice, client, vec![feed(1, Uuid::new_v4(), &baby)]).await;
    let r = push(&app, &bob, client, vec![feed(2, Uuid::new_v4(), &baby)]).await;
    r.assert_error(403, "forbidden");
    assert_eq!(app.stored().await.len(), 1);
    assert_eq!(
        push(&app, &alice, client, vec![]).await.body["lastMutationId"],
        1
    );
}

async fn archived_babies_take_no_writes(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let client = Uuid::new_v4();
    let f = Uuid::new_v4();
    push(&app, &alice, client, vec![feed(1, f, &baby)]).await;
    assert_eq!(
        app.delete(&format!("/api/babies/{baby}"), &alice)
            .await
            .status,
        200
    );
    let r = push(
        &app,
        &alice,
        client,
        vec![
            feed(2, Uuid::new_v4(), &baby),
            update(3, "feed_log", json!({"id": f, "amountMl": 1})),
            delete(4, "feed_log", f),
        ],
    )
    .await;
    assert_eq!(statuses(&r), ["rejected/forbidden"; 3]);
    assert!(
        r.body["results"][0]["message"]
            .as_str()
            .unwrap()
            .contains("archived")
    );
    let row = entity::feed_log::Entity::find_by_id(f)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.version, row.archived_at),
        (1, None),
        "its logs stay as they were"
    );
}

async fn limits_are_413_and_apply_nothing(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let client = Uuid::new_v4();
    let many: Vec<Value> = (1..=1001).map(|i| feed(i, Uuid::new_v4(), &baby)).collect();
    let r = push(&app, &alice, client, many).await;
    r.assert_error(413, "too_many_mutations");
    let exactly: Vec<Value> = (1..=1000).map(|i| feed(i, Uuid::new_v4(), &baby)).collect();
    let r = push(&app, &alice, Uuid::new_v4(), exactly).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["results"][999]["version"], 1000);
    // Over the 2 MiB body limit.
    let mut big = feed(1, Uuid::new_v4(), &baby);
    big["data"]["notes"] = json!("x".repeat(2 * 1024 * 1024));
    let r = push(&app, &alice, client, vec![big]).await;
    r.assert_error(413, "payload_too_large");
    assert_eq!(app.stored().await.len(), 1000);
    assert_eq!(
        push(&app, &alice, client, vec![]).await.body["lastMutationId"],
        0
    );
}

async fn configured_limits_apply(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.push_max_mutations = 3;
        c.body_limit_bytes = 4096;
    })
    .await;
    let alice = app.token("alice");
    let baby = baby_id(&app, &alice, "Ada").await;
    let r = push(
        &app,
        &alice,
        Uuid::new_v4(),
        (1..=4).map(|i| feed(i, Uuid::new_v4(), &baby)).collect(),
    )
    .await;
    r.assert_error(413, "too_many_mutations");
    assert_eq!(r.body["error"]["details"]["limit"], 3);
    let mut big = feed(1, Uuid::new_v4(), &baby);
    big["data"]["notes"] = json!("x".repeat(1990));
    let r = push(
        &app,
        &alice,
        Uuid::new_v4(),
        vec![big.clone(), big.clone(), big],
    )
    .await;
    r.assert_error(413, "payload_too_large");
    let r = push(
        &app,
        &alice,
        Uuid::new_v4(),
        (1..=3).map(|i| feed(i, Uuid::new_v4(), &baby)).collect(),
    )
    .await;
    assert_eq!(r.status, 200);
}

/// The statements of one push do not grow with the number of mutations.
async fn a_push_takes_a_bounded_number_of_statements(backend: Backend) {
    let (app, statements) = spawn_recording_app(backend).await;
    let alice = app.token("alice");
    let baby = baby_id(&app, &alice, "Ada").await;
    let client = Uuid::new_v4();
    push(&app, &alice, client, vec![]).await; // claims the client
    let mut next = 1;
    let mut counts = vec![];
    for n in [3, 30, 300] {
        let batch: Vec<Value> = (0..n)
            .map(|i| {
                let id = Uuid::new_v4();
                match i % 3 {
                    0 => feed(next + i, id, &baby),
                    1 => sleep(next + i, id, &baby),
                    _ => nappy(next + i, id, &baby),
                }
            })
            .collect();
        statements.lock().unwrap().clear();
        let r = push(&app, &alice, client, batch).await;
        assert_eq!(r.status, 200);
        counts.push(statements.lock().unwrap().len());
        next += n;
    }
    // One write statement (one call on SQLite), whatever the rows.
    assert_eq!(counts[0], counts[1], "{counts:?}");
    assert_eq!(counts[1], counts[2], "{counts:?}");
    assert!(
        counts[0] <= 16,
        "{counts:?}: {:?}",
        statements.lock().unwrap()
    );
}

/// A push writes each column as SeaORM itself would (on SQLite the rows go to
/// the database as one JSON parameter and are converted in SQL): every
/// pushed row, read back as its model and inserted again by SeaORM under a
/// new id, is stored the same in every other column, type included (on
/// SQLite `quote()` tells a text from a number or a blob).
async fn pushed_rows_are_stored_as_the_orm_stores_them(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let mutations = crate::pull::every_kind_of_value(&baby);
    let count = mutations.len();
    let r = push(&app, &alice, Uuid::new_v4(), mutations).await;
    assert_all_applied(&r);
    let compared = stored_as_the_orm_would::<entity::feed_log::Entity>(&app).await
        + stored_as_the_orm_would::<entity::sleep_log::Entity>(&app).await
        + stored_as_the_orm_would::<entity::nappy_log::Entity>(&app).await
        + stored_as_the_orm_would::<entity::pumping_log::Entity>(&app).await
        + stored_as_the_orm_would::<entity::growth_log::Entity>(&app).await
        + stored_as_the_orm_would::<entity::medication_log::Entity>(&app).await
        + stored_as_the_orm_would::<entity::temperature_log::Entity>(&app).await
        + stored_as_the_orm_would::<entity::solids_log::Entity>(&app).await
        + stored_as_the_orm_would::<entity::activity_log::Entity>(&app).await
        + stored_as_the_orm_would::<entity::timer_event::Entity>(&app).await;
    // The update changes a created row; the delete keeps its row (archived).
    assert_eq!(compared, count - 2);
}

/// Compares every row of `E`'s table with a copy SeaORM inserts; returns
/// the number of rows compared.
async fn stored_as_the_orm_would<E>(app: &TestApp) -> usize
where
    E: sea_orm::EntityTrait,
    E::Model: sea_orm::IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: sea_orm::ActiveModelTrait<Entity = E> + Send,
{
    use sea_orm::{
        ActiveModelTrait, ConnectionTrait, IdenStatic, IntoActiveModel, Iterable, ModelTrait,
        Statement,
    };
    let backend = app.db.get_database_backend();
    let table = E::default().table_name().to_owned();
    let id_column = E::Column::iter().find(|c| c.as_str() == "id").unwrap();
    let columns: Vec<(&str, bool)> = E::Column::iter()
        .filter(|c| c.as_str() != "id")
        .map(|c| {
            let json = matches!(
                sea_orm::ColumnTrait::def(&c).get_column_type(),
                sea_orm::ColumnType::Json
            );
            (c.as_str(), json)
        })
        .collect();
    // A JSON column's text as PostgreSQL normalises it: SeaORM binds JSON
    // as jsonb, whose text has spaces; the push sends it as json.
    let select = columns
        .iter()
        .map(|(c, json)| match (backend, json) {
            (sea_orm::DbBackend::Postgres, true) => format!("\"{c}\"::jsonb::text AS \"{c}\""),
            (sea_orm::DbBackend::Postgres, false) => format!("\"{c}\"::text AS \"{c}\""),
            _ => format!("quote(\"{c}\") AS \"{c}\""),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let param = if backend == sea_orm::DbBackend::Postgres {
        "$1"
    } else {
        "?"
    };
    let sql = format!("SELECT {select} FROM \"{table}\" WHERE \"id\" = {param}");
    let stored = |id: Uuid| {
        let sql = sql.clone();
        let columns = columns.clone();
        async move {
            let row = app
                .db
                .query_one_raw(Statement::from_sql_and_values(backend, sql, [id.into()]))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("no row {id}"));
            columns
                .iter()
                .map(|(c, _)| row.try_get::<Option<String>>("", c).unwrap())
                .collect::<Vec<_>>()
        }
    };
    let models = E::find().all(&app.db).await.unwrap();
    assert!(!models.is_empty(), "{table}: rows to compare");
    for model in &models {
        let sea_orm::Value::Uuid(Some(id)) = model.get(id_column) else {
            panic!("{table}: an id");
        };
        let copy = Uuid::new_v4();
        let mut row = model.clone().into_active_model().reset_all();
        row.set(id_column, copy.into());
        E::insert(row)
            .exec_without_returning(&app.db)
            .await
            .unwrap();
        let (pushed, orm) = (stored(id).await, stored(copy).await);
        for (((c, _), p), o) in columns.iter().zip(&pushed).zip(&orm) {
            assert_eq!(p, o, "{table}.{c} of {id}: pushed vs SeaORM");
        }
    }
    models.len()
}

/// Two server processes, four clients pushing to one baby at once: every
/// acknowledged entry stored exactly once, versions unique per baby.
async fn concurrent_pushes_from_two_processes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = load_env(&db);
    let servers = ServerProcess::start_many(2, db.dir.path(), &as_refs(&env));
    let token = |sub: &str| sign(TEST_SECRET, sub, json!({}));
    let alice = token("alice");
    let c0 = &servers[0].client;
    let baby = baby_id(c0, &alice, "Ada").await;
    let other = baby_id(c0, &alice, "Bo").await;
    for sub in ["w1", "w2", "w3"] {
        let inv = create_invite(c0, &alice, &baby, "editor").await;
        accept_invite(c0, &token(sub), &inv.body["token"]).await;
    }
    let workers = ["alice", "w1", "w2", "w3"]
        .iter()
        .enumerate()
        .map(|(w, sub)| {
            let (token, baby, other) = (token(sub), baby.clone(), other.clone());
            let clients: Vec<Client> = servers.iter().map(|s| s.client.clone()).collect();
            async move {
                let client_id = Uuid::new_v4();
                let mut acked: Vec<(String, Uuid)> = vec![];
                let mut next = 1;
                for round in 0..8 {
                    let batch: Vec<(String, Uuid, Value)> = (0..15)
                        .map(|i| {
                            let id = Uuid::new_v4();
                            let target = if w == 0 && i % 5 == 0 { &other } else { &baby };
                            let m = match i % 3 {
                                0 => feed(next + i, id, target),
                                1 => sleep(next + i, id, target),
                                _ => nappy(next + i, id, target),
                            };
                            (m["entity"].as_str().unwrap().to_owned(), id, m)
                        })
                        .collect();
                    let c = &clients[(round + w) % clients.len()];
                    let r = push(
                        c,
                        &token,
                        client_id,
                        batch.iter().map(|b| b.2.clone()).collect(),
                    )
                    .await;
                    assert_eq!(r.status, 200, "{}", r.text);
                    for (i, res) in r.body["results"].as_array().unwrap().iter().enumerate() {
                        assert_eq!(res["status"], "applied", "{res}");
                        acked.push((batch[i].0.clone(), batch[i].1));
                    }
                    next += 15;
                }
                acked
            }
        });
    let acked: Vec<(String, Uuid)> = join_all(workers).await.into_iter().flatten().collect();
    assert_eq!(acked.len(), 4 * 8 * 15);

    let conn = db.connect().await;
    let mut versions: HashMap<Uuid, Vec<i64>> = HashMap::new();
    let mut stored_ids: HashSet<(String, Uuid)> = HashSet::new();
    for (kind, id, baby, version, _) in stored_rows(&conn).await {
        versions.entry(baby).or_default().push(version);
        assert!(stored_ids.insert((kind.into(), id)));
    }
    let acked_set: HashSet<(String, Uuid)> = acked.into_iter().collect();
    assert_eq!(
        stored_ids, acked_set,
        "every acknowledged entry stored exactly once, nothing else"
    );
    let counters: HashMap<Uuid, i64> = entity::babies::Entity::find()
        .all(&conn)
        .await
        .unwrap()
        .into_iter()
        .map(|b| (b.id, b.change_counter))
        .collect();
    for (baby, mut vs) in versions {
        let n = vs.len();
        vs.sort();
        vs.dedup();
        assert_eq!(vs.len(), n, "versions unique per baby");
        assert_eq!(
            vs,
            (1..=n as i64).collect::<Vec<_>>(),
            "creates only: versions are exactly 1..=n"
        );
        assert_eq!(counters[&baby], n as i64);
    }
}

/// The statement that moves a baby's change counter looks the baby up by its
/// primary key, however many babies there are (20,000 here, never analyzed):
/// a push's cost must not grow with the number of families.
async fn the_counter_update_never_scans_every_baby(backend: Backend) {
    use sea_orm::{ConnectionTrait, Statement};
    let (app, statements) = spawn_recording_app(backend).await;
    let alice = app.token("alice");
    let baby = baby_id(&app, &alice, "Ada").await;
    let many = match app.db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            "INSERT INTO babies (id, name, birth_date, gender, change_counter, created_at, updated_at, archived_at) \
             SELECT gen_random_uuid(), 'x', NULL, NULL, 0, now(), now(), NULL FROM generate_series(1, 20000)"
        }
        _ => {
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 20000) \
             INSERT INTO babies (id, name, birth_date, gender, change_counter, created_at, updated_at, archived_at) \
             SELECT randomblob(16), 'x', NULL, NULL, 0, created_at, updated_at, NULL FROM g, \
             (SELECT created_at, updated_at FROM babies LIMIT 1)"
        }
    };
    app.db.execute_unprepared(many).await.unwrap();
    statements.lock().unwrap().clear();
    let r = push(
        &app,
        &alice,
        Uuid::new_v4(),
        vec![feed(1, Uuid::new_v4(), &baby)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let update: Vec<Statement> = statements
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.sql.contains("UPDATE \"babies\"") && s.sql.contains("change_counter"))
        .cloned()
        .collect();
    assert_eq!(update.len(), 1, "one statement moves the counter");
    let backend = app.db.get_database_backend();
    let values = update[0].values.clone().unwrap().0;
    let (sql, values) = match backend {
        sea_orm::DbBackend::Postgres => (format!("EXPLAIN {}", update[0].sql), values),
        // One call of several statements with anonymous parameters: explain
        // the counter's statement with its own values.
        _ => {
            let parts: Vec<&str> = update[0].sql.split(";\n").collect();
            let at = parts
                .iter()
                .position(|p| p.contains("UPDATE \"babies\""))
                .unwrap();
            let before: usize = parts[..at].iter().map(|p| p.matches('?').count()).sum();
            let own = parts[at].matches('?').count();
            (
                format!("EXPLAIN QUERY PLAN {}", parts[at]),
                values[before..before + own].to_vec(),
            )
        }
    };
    let rows = app
        .db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap();
    let plan: Vec<String> = rows
        .iter()
        .map(|r| {
            r.try_get::<String>("", "QUERY PLAN")
                .or_else(|_| r.try_get::<String>("", "detail"))
                .unwrap()
        })
        .collect();
    let plan = plan.join("\n");
    let scans_babies = plan.contains("Seq Scan on babies") || plan.contains("SCAN babies");
    assert!(
        !scans_babies,
        "the counter update reads babies by key:\n{plan}"
    );
    assert!(
        plan.contains("babies_pkey") || plan.contains("SEARCH babies"),
        "{plan}"
    );
}

both!(
    the_counter_update_never_scans_every_baby,
    create_update_delete_each_entity,
    replay_is_all_duplicate_and_changes_nothing,
    a_gap_is_409_and_applies_nothing,
    a_bad_mutation_between_two_good_ones,
    every_validation_rule_is_a_named_rejection,
    malformed_envelopes_are_400_and_apply_nothing,
    viewers_and_strangers_write_nothing,
    another_familys_entry_by_uuid_stays_untouched,
    create_of_an_existing_id,
    base_version_conflicts,
    client_ids_belong_to_their_first_user,
    archived_babies_take_no_writes,
    limits_are_413_and_apply_nothing,
    configured_limits_apply,
    concurrent_pushes_from_two_processes,
    a_push_takes_a_bounded_number_of_statements,
    pushed_rows_are_stored_as_the_orm_stores_them,
);
