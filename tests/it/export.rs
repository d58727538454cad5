//! `GET /api/babies/{id}/export` (PROTOCOL.md, "Export and import"), on
//! both databases: the JSON document holds every entry of every kind as
//! pull sends it, archived ones included, across many pages; CSV per kind
//! in a time zone; bad queries are 400s and another family's baby a 404.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{both, helpers::*};

async fn get_raw(app: &TestApp, token: &str, path: &str) -> (u16, String, String, String) {
    let r = app
        .http
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (ct, cd) = (header("content-type"), header("content-disposition"));
    (status, ct, cd, r.text().await.unwrap())
}

/// Every entry, as pull sends it, by kind and id.
async fn pulled(app: &TestApp, token: &str) -> BTreeMap<(String, String), Value> {
    let (_, pages) = pull_all(app, token, Uuid::new_v4(), None, 5000).await;
    pages
        .into_iter()
        .flatten()
        .map(|(k, e)| ((k, e["id"].as_str().unwrap().to_owned()), e))
        .collect()
}

async fn json_document(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    // Every kind and value, an update and a delete; then 2,700 feeds (more
    // than a page of rows).
    let r = push(
        &app,
        &alice,
        Uuid::new_v4(),
        crate::pull::every_kind_of_value(&baby),
    )
    .await;
    assert_all_applied(&r);
    let client = Uuid::new_v4();
    for round in 0..3 {
        let batch = (1..=900)
            .map(|i| feed(round * 900 + i, Uuid::new_v4(), &baby))
            .collect();
        let r = push(&app, &alice, client, batch).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let (status, ct, cd, body) = get_raw(&app, &alice, &format!("/api/babies/{baby}/export")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ct, "application/json");
    assert!(cd.starts_with("attachment;"), "{cd}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&doc["format"], &doc["formatVersion"]),
        (&json!("babysync-export"), &json!(1))
    );
    assert!(doc["exportedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(doc["baby"]["id"], baby);
    assert_eq!(doc["baby"]["name"], "Ada");
    let kinds: Vec<&String> = doc["entries"].as_object().unwrap().keys().collect();
    assert_eq!(kinds.len(), 10, "every kind: {kinds:?}");
    let mut exported = BTreeMap::new();
    for (kind, list) in doc["entries"].as_object().unwrap() {
        for e in list.as_array().unwrap() {
            exported.insert(
                (kind.clone(), e["id"].as_str().unwrap().to_owned()),
                e.clone(),
            );
        }
    }
    let want = pulled(&app, &alice).await;
    assert!(want.len() > 2600, "{}", want.len());
    assert!(
        want.values().any(|e| e["archivedAt"].is_string()),
        "a tombstone among them"
    );
    assert_eq!(exported, want, "every entry, as pull sends it");
}

async fn csv_per_kind(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let (a, b, gone) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let r = push(
        &app,
        &alice,
        Uuid::new_v4(),
        vec![
            create(1, "feed_log", json!({"id": b, "babyId": baby, "method": "bottle", "startedAt": "2026-07-01T12:00:00.5Z",
                "amountMl": 120, "notes": "said \"more\", then\nslept"})),
            create(2, "feed_log", json!({"id": a, "babyId": baby, "method": "breast", "startedAt": "2026-01-01T08:00:00Z",
                "durationMinutes": 15, "startSide": "left", "isEstimated": true})),
            create(3, "feed_log", json!({"id": gone, "babyId": baby, "method": "bottle", "startedAt": "2026-03-01T08:00:00Z"})),
            delete(4, "feed_log", gone),
            create(5, "solids_log", json!({"id": Uuid::new_v4(), "babyId": baby, "food": "egg, boiled", "startedAt": "2026-02-01T08:00:00Z",
                "allergens": ["egg", "milk"]})),
        ],
    )
    .await;
    assert_all_applied(&r);
    let path = format!("/api/babies/{baby}/export?format=csv&kind=feed_log&tz=Europe/London");
    let (status, ct, cd, body) = get_raw(&app, &alice, &path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ct, "text/csv; charset=utf-8");
    assert!(cd.contains("feed_log.csv"), "{cd}");
    let lines: Vec<&str> = body.split("\r\n").collect();
    assert_eq!(
        lines[0],
        "id,babyId,startedAt,notes,loggedBy,createdAt,updatedAt,archivedAt,version,method,endedAt,\
         durationMinutes,amountMl,isEstimated,estimatedSource,startSide,endSide,timerState"
    );
    assert_eq!(
        lines.len(),
        4,
        "two rows (the deleted one left out), then the last CRLF: {body:?}"
    );
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(first[0], a.to_string(), "by startedAt");
    assert_eq!(first[2], "2026-01-01T08:00:00.000+00:00", "GMT in January");
    assert_eq!((first[3], first[7]), ("", ""), "nulls are empty");
    assert_eq!((first[9], first[13], first[15]), ("breast", "true", "left"));
    assert!(
        lines[2].starts_with(&format!(
            "{b},{baby},2026-07-01T13:00:00.500+01:00,\"said \"\"more\"\", then\nslept\",alice,"
        )),
        "BST in July, quoted text: {:?}",
        lines[2]
    );
    let path = format!("/api/babies/{baby}/export?format=csv&kind=solids_log");
    let (_, _, _, body) = get_raw(&app, &alice, &path).await;
    let row = body.split("\r\n").nth(1).unwrap();
    assert!(
        row.contains(",\"egg, boiled\",") && row.ends_with(",egg;milk"),
        "{row}"
    );
    assert!(
        row.contains(",2026-02-01T08:00:00.000+00:00,"),
        "UTC by default: {row}"
    );
}

async fn bad_queries_and_strangers(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    for (query, field) in [
        ("format=xml", "format"),
        ("format=csv", "kind"),
        ("format=csv&kind=weather_log", "kind"),
        ("format=csv&kind=feed_log&tz=Moon/Base", "tz"),
    ] {
        let r = app
            .get(&format!("/api/babies/{baby}/export?{query}"), &alice)
            .await;
        assert_eq!(r.status, 400, "{query}: {}", r.text);
        assert_eq!(r.body["error"]["details"]["field"], field, "{query}");
    }
    let mallory = app.token("mallory");
    let r = app
        .get(&format!("/api/babies/{baby}/export"), &mallory)
        .await;
    assert_eq!(r.status, 404);
    assert_error_body(&r.body, "not_found");
}

both!(json_document, csv_per_kind, bad_queries_and_strangers);
