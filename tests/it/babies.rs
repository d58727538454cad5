//! Babies and caregivers: every route, every error, every level, and the
//! cross-family rule (404, never 403, for a baby not shared with you).

use futures::future::join_all;
use serde_json::{Value, json};

use crate::{both, helpers::*};

#[track_caller]
fn assert_ts(v: &Value) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("timestamp expected, got {v}"));
    assert_eq!(s.len(), 24, "{s}");
    assert!(
        s.ends_with('Z') && s.as_bytes()[19] == b'.',
        "UTC millis: {s}"
    );
    assert!(chrono::DateTime::parse_from_rfc3339(s).is_ok(), "{s}");
}

async fn create_get_list_patch(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let id = uuid::Uuid::new_v4();
    let r = app
        .post(
            "/api/babies",
            &alice,
            json!({"id": id, "name": "  Ada  ", "birthDate": "2026-05-01", "gender": "female"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let b = &r.body;
    assert_eq!(b["id"], id.to_string());
    assert_eq!(b["name"], "Ada", "name is stored trimmed");
    assert_eq!(b["birthDate"], "2026-05-01");
    assert_eq!(b["gender"], "female");
    assert_eq!(b["accessLevel"], "owner");
    assert_eq!(b["archivedAt"], Value::Null);
    assert_ts(&b["createdAt"]);
    assert_ts(&b["updatedAt"]);
    let keys: Vec<&String> = b.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 8, "{keys:?}");

    let got = app.get(&format!("/api/babies/{id}"), &alice).await;
    assert_eq!(got.status, 200);
    assert_eq!(&got.body, b);

    // Minimal body; the server picks the id.
    let r = app.post("/api/babies", &alice, json!({"name": "Bo"})).await;
    assert_eq!(r.status, 201);
    assert!(uuid::Uuid::parse_str(r.body["id"].as_str().unwrap()).is_ok());
    assert_eq!(r.body["birthDate"], Value::Null);
    assert_eq!(r.body["gender"], Value::Null);

    let list = app.get("/api/babies", &alice).await;
    assert_eq!(list.status, 200);
    let babies = list.body["babies"].as_array().unwrap();
    assert_eq!(babies.len(), 2);
    assert_eq!(&babies[0], b);

    let p = app
        .patch(
            &format!("/api/babies/{id}"),
            &alice,
            json!({"name": "Ada L", "gender": "other"}),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert_eq!(p.body["name"], "Ada L");
    assert_eq!(p.body["gender"], "other");
    assert_eq!(p.body["birthDate"], "2026-05-01", "untouched field stays");
    assert!(p.body["updatedAt"].as_str() >= b["updatedAt"].as_str());
    let p = app
        .patch(
            &format!("/api/babies/{id}"),
            &alice,
            json!({"birthDate": null, "gender": null}),
        )
        .await;
    assert_eq!(p.body["birthDate"], Value::Null);
    assert_eq!(p.body["gender"], Value::Null);
    let before = p.body.clone();
    let p = app
        .patch(&format!("/api/babies/{id}"), &alice, json!({}))
        .await;
    assert_eq!(p.status, 200);
    assert_eq!(p.body, before, "empty patch changes nothing");
}

async fn create_retry_and_conflict(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, bob) = (app.token("alice"), app.token("bob"));
    let id = uuid::Uuid::new_v4();
    let body = json!({"id": id, "name": "Ada"});
    let first = app.post("/api/babies", &alice, body.clone()).await;
    assert_eq!(first.status, 201);
    let again = app.post("/api/babies", &alice, body.clone()).await;
    assert_eq!(again.status, 200, "safe retry: {}", again.text);
    assert_eq!(again.body, first.body);
    let other = app.post("/api/babies", &bob, body.clone()).await;
    other.assert_error(409, "conflict");
    assert_eq!(
        app.get(&format!("/api/babies/{id}"), &bob).await.status,
        404
    );
    let rows = app.query("SELECT user_id FROM baby_access").await;
    assert_eq!(rows.len(), 1, "one owner row, no row for bob");

    // Concurrent creates of one id by one user: one 201, the rest 200.
    let id2 = uuid::Uuid::new_v4();
    let results = join_all(
        (0..4).map(|_| app.post("/api/babies", &alice, json!({"id": id2, "name": "Twin"}))),
    )
    .await;
    let mut statuses: Vec<u16> = results.iter().map(|r| r.status.as_u16()).collect();
    statuses.sort();
    assert_eq!(statuses, vec![200, 200, 200, 201], "{results:?}");
}

async fn validation_names_the_field_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let future = (chrono::Utc::now().date_naive() + chrono::Days::new(3)).to_string();
    let cases = vec![
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"name": 42}), "name"),
        (json!({}), "name"),
        (json!({"name": "A", "birthDate": future}), "birthDate"),
        (json!({"name": "A", "birthDate": "1899-12-31"}), "birthDate"),
        (json!({"name": "A", "birthDate": "2026-13-01"}), "birthDate"),
        (json!({"name": "A", "birthDate": "yesterday"}), "birthDate"),
        (json!({"name": "A", "gender": "robot"}), "gender"),
        (json!({"name": "A", "colour": "blue"}), "colour"),
        (json!({"name": "A", "id": "not-a-uuid"}), "id"),
        (json!(["name", "A"]), ""),
    ];
    for (body, field) in cases {
        let r = app.post("/api/babies", &alice, body.clone()).await;
        r.assert_error(400, "invalid_request");
        let msg = r.body["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(field),
            "{body} -> message {msg:?} names {field:?}"
        );
    }
    // 100 characters after trimming is fine.
    let id = baby_id(&app, &alice, &format!(" {} ", "y".repeat(100))).await;
    // Malformed JSON, wrong content type.
    let raw = app
        .http
        .post(app.url("/api/babies"))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    Client::read(raw).await.assert_error(400, "invalid_request");
    let form = app
        .http
        .post(app.url("/api/babies"))
        .bearer_auth(&alice)
        .header("content-type", "text/plain")
        .body("{\"name\": \"A\"}")
        .send()
        .await
        .unwrap();
    Client::read(form)
        .await
        .assert_error(415, "unsupported_media_type");

    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": null}), "name"),
        (json!({"birthDate": "1850-01-01"}), "birthDate"),
        (json!({"gender": "x"}), "gender"),
        (json!({"nickname": "x"}), "nickname"),
    ] {
        let r = app
            .patch(&format!("/api/babies/{id}"), &alice, body.clone())
            .await;
        r.assert_error(400, "invalid_request");
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains(field),
            "{body}: {}",
            r.text
        );
    }
    app.get("/api/babies/not-a-uuid", &alice)
        .await
        .assert_error(400, "invalid_request");
    // Nothing of the above was stored or changed.
    let list = app.get("/api/babies", &alice).await;
    assert_eq!(list.body["babies"].as_array().unwrap().len(), 1);
    assert_eq!(list.body["babies"][0]["name"], "y".repeat(100));
}

async fn cross_family_gets_404_on_every_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, bob) = (app.token("alice"), app.token("bob"));
    let baby = create_baby(&app, &alice, "Ada").await;
    let id = baby["id"].as_str().unwrap();
    let invite = create_invite(&app, &alice, id, "viewer").await;
    let invite_id = invite.body["id"].as_str().unwrap();
    let nobody = uuid::Uuid::new_v4().to_string();
    for target in [id, nobody.as_str()] {
        let calls = vec![
            app.get(&format!("/api/babies/{target}"), &bob).await,
            app.patch(
                &format!("/api/babies/{target}"),
                &bob,
                json!({"name": "Mine"}),
            )
            .await,
            app.delete(&format!("/api/babies/{target}"), &bob).await,
            app.get(&format!("/api/babies/{target}/caregivers"), &bob)
                .await,
            app.put(
                &format!("/api/babies/{target}/caregivers/alice"),
                &bob,
                json!({"accessLevel": "viewer"}),
            )
            .await,
            app.put(
                &format!("/api/babies/{target}/caregivers/bob"),
                &bob,
                json!({"accessLevel": "owner"}),
            )
            .await,
            app.delete(&format!("/api/babies/{target}/caregivers/alice"), &bob)
                .await,
            app.delete(&format!("/api/babies/{target}/caregivers/bob"), &bob)
                .await,
            create_invite(&app, &bob, target, "owner").await,
            app.get(&format!("/api/babies/{target}/invites"), &bob)
                .await,
            app.delete(&format!("/api/babies/{target}/invites/{invite_id}"), &bob)
                .await,
        ];
        for (i, r) in calls.iter().enumerate() {
            r.assert_error(404, "not_found");
            assert_eq!(
                r.body["error"]["message"], "baby not found",
                "call {i}: same answer as for no baby at all"
            );
        }
    }
    assert_eq!(
        app.get("/api/babies", &bob).await.body,
        json!({"babies": []})
    );
    // Alice's baby is untouched.
    let after = app.get(&format!("/api/babies/{id}"), &alice).await;
    assert_eq!(after.body, baby);
    let invites = app.get(&format!("/api/babies/{id}/invites"), &alice).await;
    assert_eq!(invites.body["invites"][0]["revokedAt"], Value::Null);
}

async fn levels_on_every_write(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.token("olive");
    let id = create_baby_id(&app, &owner, "Ada").await;
    let editor = share(&app, &owner, &id, app.token("eddie"), "editor").await;
    let viewer = share(&app, &owner, &id, app.token("vera"), "viewer").await;
    let invite = create_invite(&app, &owner, &id, "viewer").await;
    let invite_id = invite.body["id"].as_str().unwrap().to_owned();

    // Reading: everyone, with their own level.
    for (token, level) in [(&owner, "owner"), (&editor, "editor"), (&viewer, "viewer")] {
        let r = app.get(&format!("/api/babies/{id}"), token).await;
        assert_eq!(r.body["accessLevel"], level);
        assert_eq!(
            app.get(&format!("/api/babies/{id}/caregivers"), token)
                .await
                .status,
            200
        );
    }
    // Editing the baby: owner and editor.
    assert_eq!(
        app.patch(
            &format!("/api/babies/{id}"),
            &editor,
            json!({"name": "By editor"})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        app.patch(
            &format!("/api/babies/{id}"),
            &owner,
            json!({"name": "By owner"})
        )
        .await
        .status,
        200
    );
    app.patch(
        &format!("/api/babies/{id}"),
        &viewer,
        json!({"name": "By viewer"}),
    )
    .await
    .assert_error(403, "forbidden");
    // Managing: owner only.
    for token in [&editor, &viewer] {
        app.delete(&format!("/api/babies/{id}"), token)
            .await
            .assert_error(403, "forbidden");
        app.put(
            &format!("/api/babies/{id}/caregivers/vera"),
            token,
            json!({"accessLevel": "owner"}),
        )
        .await
        .assert_error(403, "forbidden");
        app.put(
            &format!("/api/babies/{id}/caregivers/eddie"),
            token,
            json!({"accessLevel": "owner"}),
        )
        .await
        .assert_error(403, "forbidden");
        app.delete(&format!("/api/babies/{id}/caregivers/olive"), token)
            .await
            .assert_error(403, "forbidden");
        create_invite(&app, token, &id, "owner")
            .await
            .assert_error(403, "forbidden");
        app.get(&format!("/api/babies/{id}/invites"), token)
            .await
            .assert_error(403, "forbidden");
        app.delete(&format!("/api/babies/{id}/invites/{invite_id}"), token)
            .await
            .assert_error(403, "forbidden");
    }
    app.delete(&format!("/api/babies/{id}/caregivers/vera"), &editor)
        .await
        .assert_error(403, "forbidden");
    // Nothing the refused calls tried happened.
    let cg = app
        .get(&format!("/api/babies/{id}/caregivers"), &owner)
        .await;
    let levels: Vec<(String, String)> = cg.body["caregivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["userId"].as_str().unwrap().to_owned(),
                c["accessLevel"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        levels,
        vec![
            ("olive".into(), "owner".into()),
            ("eddie".into(), "editor".into()),
            ("vera".into(), "viewer".into())
        ]
    );
    let b = app.get(&format!("/api/babies/{id}"), &owner).await;
    assert_eq!(b.body["name"], "By owner");
    assert_eq!(b.body["archivedAt"], Value::Null);
    let inv = app.get(&format!("/api/babies/{id}/invites"), &owner).await;
    assert_eq!(inv.body["invites"].as_array().unwrap().len(), 3);
    assert!(
        inv.body["invites"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["revokedAt"].is_null())
    );
    // The owner can do all of it.
    assert_eq!(
        app.put(
            &format!("/api/babies/{id}/caregivers/vera"),
            &owner,
            json!({"accessLevel": "editor"})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        app.delete(&format!("/api/babies/{id}/invites/{invite_id}"), &owner)
            .await
            .status,
        204
    );
    assert_eq!(
        app.delete(&format!("/api/babies/{id}"), &owner)
            .await
            .status,
        200
    );
}

async fn archive_is_a_soft_delete(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let id = create_baby_id(&app, &alice, "Ada").await;
    let r = app.delete(&format!("/api/babies/{id}"), &alice).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_ts(&r.body["archivedAt"]);
    assert_eq!(r.body["name"], "Ada");
    let again = app.delete(&format!("/api/babies/{id}"), &alice).await;
    assert_eq!(again.status, 200);
    assert_eq!(
        again.body["archivedAt"], r.body["archivedAt"],
        "archiving twice keeps the first time"
    );
    let list = app.get("/api/babies", &alice).await;
    assert_eq!(
        list.body["babies"][0]["archivedAt"], r.body["archivedAt"],
        "archived babies are listed"
    );
    app.patch(&format!("/api/babies/{id}"), &alice, json!({"name": "New"}))
        .await
        .assert_error(409, "conflict");
    assert_eq!(
        app.get(&format!("/api/babies/{id}"), &alice).await.body["name"],
        "Ada"
    );
}

async fn caregivers_and_the_last_owner(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let id = create_baby_id(&app, &alice, "Ada").await;
    let bob = share(&app, &alice, &id, app.token("bob"), "editor").await;
    let cg = app.get(&format!("/api/babies/{id}/caregivers"), &bob).await;
    assert_eq!(cg.status, 200);
    let list = cg.body["caregivers"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["userId"], "alice");
    assert_eq!(list[0]["displayName"], "User alice");
    assert_eq!(list[0]["accessLevel"], "owner");
    assert_ts(&list[0]["since"]);
    assert_eq!(list[1]["userId"], "bob");
    assert_eq!(list[1]["accessLevel"], "editor");

    let r = app
        .put(
            &format!("/api/babies/{id}/caregivers/bob"),
            &alice,
            json!({"accessLevel": "viewer"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["userId"], "bob");
    assert_eq!(r.body["accessLevel"], "viewer");
    assert_eq!(
        app.get(&format!("/api/babies/{id}"), &bob).await.body["accessLevel"],
        "viewer"
    );

    app.put(
        &format!("/api/babies/{id}/caregivers/alice"),
        &alice,
        json!({"accessLevel": "editor"}),
    )
    .await
    .assert_error(409, "last_owner");
    app.delete(&format!("/api/babies/{id}/caregivers/alice"), &alice)
        .await
        .assert_error(409, "last_owner");
    app.put(
        &format!("/api/babies/{id}/caregivers/nobody"),
        &alice,
        json!({"accessLevel": "editor"}),
    )
    .await
    .assert_error(404, "not_found");
    app.delete(&format!("/api/babies/{id}/caregivers/nobody"), &alice)
        .await
        .assert_error(404, "not_found");
    for body in [
        json!({"accessLevel": "admin"}),
        json!({}),
        json!({"accessLevel": "owner", "x": 1}),
    ] {
        app.put(&format!("/api/babies/{id}/caregivers/bob"), &alice, body)
            .await
            .assert_error(400, "invalid_request");
    }
    // With a second owner, the first may step down.
    app.put(
        &format!("/api/babies/{id}/caregivers/bob"),
        &alice,
        json!({"accessLevel": "owner"}),
    )
    .await;
    let r = app
        .put(
            &format!("/api/babies/{id}/caregivers/alice"),
            &alice,
            json!({"accessLevel": "editor"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        app.get(&format!("/api/babies/{id}"), &alice).await.body["accessLevel"],
        "editor"
    );
    // Anyone may leave; a revoked caregiver loses access at once.
    assert_eq!(
        app.delete(&format!("/api/babies/{id}/caregivers/alice"), &alice)
            .await
            .status,
        204
    );
    app.get(&format!("/api/babies/{id}"), &alice)
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        app.get("/api/babies", &alice).await.body["babies"],
        json!([])
    );
    app.delete(&format!("/api/babies/{id}/caregivers/bob"), &bob)
        .await
        .assert_error(409, "last_owner");
}

async fn a_removed_caregiver_loses_access_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let id = create_baby_id(&app, &alice, "Ada").await;
    let bob = share(&app, &alice, &id, app.token("bob"), "editor").await;
    assert_eq!(
        app.get(&format!("/api/babies/{id}"), &bob).await.status,
        200
    );
    assert_eq!(
        app.delete(&format!("/api/babies/{id}/caregivers/bob"), &alice)
            .await
            .status,
        204
    );
    app.get(&format!("/api/babies/{id}"), &bob)
        .await
        .assert_error(404, "not_found");
    app.patch(&format!("/api/babies/{id}"), &bob, json!({"name": "x"}))
        .await
        .assert_error(404, "not_found");
    app.get(&format!("/api/babies/{id}/caregivers"), &bob)
        .await
        .assert_error(404, "not_found");
    assert_eq!(app.get("/api/babies", &bob).await.body["babies"], json!([]));
}

async fn last_owner_races(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    for round in 0..6 {
        let id = create_baby_id(&app, &alice, "Ada").await;
        let bob = share(&app, &alice, &id, app.token("bob"), "owner").await;
        let (to_alice, to_bob) = (
            format!("/api/babies/{id}/caregivers/alice"),
            format!("/api/babies/{id}/caregivers/bob"),
        );
        let (a, b) = if round % 2 == 0 {
            // Two owners demote each other at the same moment.
            let demote = json!({"accessLevel": "editor"});
            tokio::join!(
                app.put(&to_bob, &alice, demote.clone()),
                app.put(&to_alice, &bob, demote.clone())
            )
        } else {
            // Two owners leave at the same moment.
            tokio::join!(app.delete(&to_alice, &alice), app.delete(&to_bob, &bob))
        };
        let (winner, loser) = if a.status.is_success() {
            (&a, &b)
        } else {
            (&b, &a)
        };
        assert!(
            winner.status.is_success(),
            "round {round}: one wins: {a:?} {b:?}"
        );
        if round % 2 == 0 {
            // Serialised behind the winner, the loser is no longer an owner
            // (403) or would remove the last owner (409).
            assert!(
                [403, 409].contains(&loser.status.as_u16()),
                "round {round}: {loser:?}"
            );
        } else {
            loser.assert_error(409, "last_owner");
        }
        let survivor = if std::ptr::eq(loser, &a) {
            &alice
        } else {
            &bob
        };
        let cg = app
            .get(&format!("/api/babies/{id}/caregivers"), survivor)
            .await;
        let n_owners = cg.body["caregivers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["accessLevel"] == "owner")
            .count();
        assert_eq!(
            n_owners, 1,
            "round {round}: exactly one owner left: {}",
            cg.text
        );
    }
}

both!(
    create_get_list_patch,
    create_retry_and_conflict,
    validation_names_the_field_and_changes_nothing,
    cross_family_gets_404_on_every_route,
    levels_on_every_write,
    archive_is_a_soft_delete,
    caregivers_and_the_last_owner,
    a_removed_caregiver_loses_access_at_once,
    last_owner_races,
);
