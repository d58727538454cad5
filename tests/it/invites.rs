//! Invites: tokens shown once and stored hashed, expiry, uses, revocation,
//! atomic acceptance under races, and the higher level kept.

use futures::future::join_all;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{both, helpers::*};

async fn invite_lifecycle(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let id = create_baby_id(&app, &alice, "Ada").await;
    let r = create_invite(&app, &alice, &id, "editor").await;
    assert_eq!(r.status, 201, "{}", r.text);
    let inv = &r.body;
    let token = inv["token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 22, "at least 128 bits");
    assert!(
        token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "URL-safe: {token}"
    );
    assert_eq!(inv["accessLevel"], "editor");
    assert_eq!(inv["maxUses"], 1);
    assert_eq!(inv["usesCount"], 0);
    let expires = chrono::DateTime::parse_from_rfc3339(inv["expiresAt"].as_str().unwrap()).unwrap();
    let hours =
        (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((71.9..=72.0).contains(&hours), "default 72 h, got {hours}");
    let mut keys: Vec<&str> = inv
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "accessLevel",
            "expiresAt",
            "id",
            "maxUses",
            "token",
            "usesCount"
        ]
    );

    // Only the hash is stored.
    let rows = app.query("SELECT token_hash FROM baby_invites").await;
    let stored: String = rows[0].try_get("", "token_hash").unwrap();
    assert_eq!(stored, hex::encode(Sha256::digest(token.as_bytes())));
    // Listing never shows a token.
    let list = app.get(&format!("/api/babies/{id}/invites"), &alice).await;
    assert_eq!(list.status, 200);
    assert!(!list.text.contains(&token));
    assert!(list.body["invites"][0].get("token").is_none());
    assert_eq!(list.body["invites"][0]["id"], inv["id"]);

    let bob = app.token("bob");
    let acc = accept_invite(&app, &bob, &token).await;
    assert_eq!(acc.status, 200, "{}", acc.text);
    assert_eq!(acc.body, json!({"babyId": id, "accessLevel": "editor"}));
    assert_eq!(
        app.get(&format!("/api/babies/{id}"), &bob).await.body["accessLevel"],
        "editor"
    );
    // Accepting twice uses the invite once.
    let again = accept_invite(&app, &bob, &token).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body, json!({"babyId": id, "accessLevel": "editor"}));
    let list = app.get(&format!("/api/babies/{id}/invites"), &alice).await;
    assert_eq!(list.body["invites"][0]["usesCount"], 1);
    // Used up for anyone else.
    accept_invite(&app, &app.token("carol"), &token)
        .await
        .assert_error(410, "invite_unusable");
    app.get(&format!("/api/babies/{id}"), &app.token("carol"))
        .await
        .assert_error(404, "not_found");
    // Unknown tokens.
    for t in ["nope", "", &"x".repeat(2000)] {
        accept_invite(&app, &app.token("carol"), &t)
            .await
            .assert_error(404, "not_found");
    }
    app.post(
        "/api/invites/accept",
        &app.token("carol"),
        json!({"tok": "x"}),
    )
    .await
    .assert_error(400, "invalid_request");
}

async fn revoked_and_expired_invites_are_gone(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let id = create_baby_id(&app, &alice, "Ada").await;
    let revoked = create_invite(&app, &alice, &id, "viewer").await.body;
    let rid = revoked["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/api/babies/{id}/invites/{rid}"), &alice)
            .await
            .status,
        204
    );
    assert_eq!(
        app.delete(&format!("/api/babies/{id}/invites/{rid}"), &alice)
            .await
            .status,
        204,
        "idempotent"
    );
    accept_invite(&app, &app.token("bob"), &revoked["token"])
        .await
        .assert_error(410, "invite_unusable");
    let list = app.get(&format!("/api/babies/{id}/invites"), &alice).await;
    assert!(list.body["invites"][0]["revokedAt"].is_string());

    let expired = create_invite(&app, &alice, &id, "viewer").await.body;
    app.db
        .execute_unprepared(&format!(
            "UPDATE baby_invites SET expires_at = '2020-01-01T00:00:00Z' WHERE id = '{}'",
            expired["id"].as_str().unwrap()
        ))
        .await
        .ok();
    if backend == Backend::Sqlite {
        // SQLite keeps uuids as blobs: update through the entity instead.
        use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};
        let inv = entity::baby_invites::Entity::find_by_id(
            uuid::Uuid::parse_str(expired["id"].as_str().unwrap()).unwrap(),
        )
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
        let mut a = inv.into_active_model();
        a.expires_at = Set(chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z")
            .unwrap()
            .to_utc());
        a.update(&app.db).await.unwrap();
    }
    accept_invite(&app, &app.token("bob"), &expired["token"])
        .await
        .assert_error(410, "invite_unusable");
    app.get(&format!("/api/babies/{id}"), &app.token("bob"))
        .await
        .assert_error(404, "not_found");

    // Revoking an invite of another baby, or none: 404.
    let other = create_baby_id(&app, &alice, "Bo").await;
    let live = create_invite(&app, &alice, &id, "viewer").await.body;
    let lid = live["id"].as_str().unwrap();
    app.delete(&format!("/api/babies/{other}/invites/{lid}"), &alice)
        .await
        .assert_error(404, "not_found");
    app.delete(
        &format!("/api/babies/{id}/invites/{}", uuid::Uuid::new_v4()),
        &alice,
    )
    .await
    .assert_error(404, "not_found");
    // The live one still works.
    assert_eq!(
        accept_invite(&app, &app.token("bob"), &live["token"])
            .await
            .status,
        200
    );
}

use sea_orm::ConnectionTrait;

async fn invite_validation(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let id = create_baby_id(&app, &alice, "Ada").await;
    let path = format!("/api/babies/{id}/invites");
    for (body, field) in [
        (json!({}), "accessLevel"),
        (json!({"accessLevel": "admin"}), "accessLevel"),
        (
            json!({"accessLevel": "viewer", "expiresInHours": 0}),
            "expiresInHours",
        ),
        (
            json!({"accessLevel": "viewer", "expiresInHours": 721}),
            "expiresInHours",
        ),
        (
            json!({"accessLevel": "viewer", "expiresInHours": "1"}),
            "expiresInHours",
        ),
        (json!({"accessLevel": "viewer", "maxUses": 0}), "maxUses"),
        (json!({"accessLevel": "viewer", "maxUses": 101}), "maxUses"),
        (json!({"accessLevel": "viewer", "uses": 2}), "uses"),
    ] {
        let r = app.post(&path, &alice, body.clone()).await;
        r.assert_error(400, "invalid_request");
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains(field),
            "{body}: {}",
            r.text
        );
    }
    assert_eq!(
        app.get(&path, &alice).await.body["invites"],
        json!([]),
        "nothing stored"
    );
    let r = app
        .post(
            &path,
            &alice,
            json!({"accessLevel": "owner", "expiresInHours": 720, "maxUses": 100}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["maxUses"], 100);
    let r = app
        .post(
            &path,
            &alice,
            json!({"accessLevel": "owner", "expiresInHours": 1, "maxUses": 1}),
        )
        .await;
    assert_eq!(r.status, 201);
}

async fn existing_caregiver_keeps_the_higher_level(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let id = create_baby_id(&app, &alice, "Ada").await;
    let bob = app.token("bob");
    let ed = create_invite(&app, &alice, &id, "editor").await.body;
    assert_eq!(
        accept_invite(&app, &bob, &ed["token"]).await.body["accessLevel"],
        "editor"
    );
    // A lower invite: bob stays editor, the invite is not used.
    let vi = create_invite(&app, &alice, &id, "viewer").await.body;
    let r = accept_invite(&app, &bob, &vi["token"]).await;
    assert_eq!(r.body, json!({"babyId": id, "accessLevel": "editor"}));
    // A higher invite: bob rises to owner, which uses the invite once.
    let ow = create_invite(&app, &alice, &id, "owner").await.body;
    let r = accept_invite(&app, &bob, &ow["token"]).await;
    assert_eq!(r.body, json!({"babyId": id, "accessLevel": "owner"}));
    let list = app.get(&format!("/api/babies/{id}/invites"), &alice).await;
    let uses: Vec<i64> = list.body["invites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["usesCount"].as_i64().unwrap())
        .collect();
    assert_eq!(uses, vec![1, 0, 1]);
    // The owner herself accepting keeps owner.
    let r = accept_invite(&app, &alice, &vi["token"]).await;
    assert_eq!(r.body["accessLevel"], "owner");
    // The unused viewer invite still works for someone new.
    let r = accept_invite(&app, &app.token("carol"), &vi["token"]).await;
    assert_eq!(r.body["accessLevel"], "viewer");
}

async fn racing_accepts_take_exactly_the_uses_there_are(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let id = create_baby_id(&app, &alice, "Ada").await;
    for round in 0..5 {
        let inv = create_invite(&app, &alice, &id, "viewer").await.body;
        let (u1, u2) = (
            app.token(&format!("r{round}a")),
            app.token(&format!("r{round}b")),
        );
        let (a, b) = tokio::join!(
            accept_invite(&app, &u1, &inv["token"]),
            accept_invite(&app, &u2, &inv["token"]),
        );
        let mut s = [a.status.as_u16(), b.status.as_u16()];
        s.sort();
        assert_eq!(
            s,
            [200, 410],
            "round {round}: exactly one wins: {} / {}",
            a.text,
            b.text
        );
    }
    // Three uses, six takers.
    let inv = app
        .post(
            &format!("/api/babies/{id}/invites"),
            &alice,
            json!({"accessLevel": "viewer", "maxUses": 3}),
        )
        .await
        .body;
    let tokens: Vec<String> = (0..6).map(|i| app.token(&format!("many{i}"))).collect();
    let results = join_all(tokens.iter().map(|t| accept_invite(&app, t, &inv["token"]))).await;
    let ok = results.iter().filter(|r| r.status == 200).count();
    let gone = results.iter().filter(|r| r.status == 410).count();
    assert_eq!((ok, gone), (3, 3), "{results:?}");
    let cg = app
        .get(&format!("/api/babies/{id}/caregivers"), &alice)
        .await;
    let many = cg.body["caregivers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["userId"].as_str().unwrap().starts_with("many"))
        .count();
    assert_eq!(many, 3);
    let list = app.get(&format!("/api/babies/{id}/invites"), &alice).await;
    let last: &Value = list.body["invites"].as_array().unwrap().last().unwrap();
    assert_eq!(last["usesCount"], 3);
}

both!(
    invite_lifecycle,
    revoked_and_expired_invites_are_gone,
    invite_validation,
    existing_caregiver_keeps_the_higher_level,
    racing_accepts_take_exactly_the_uses_there_are,
);
