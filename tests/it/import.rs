//! `POST /api/babies/import` (PROTOCOL.md, "Export and import"), on both
//! databases: export → import on a fresh database under another user →
//! export gives the same entries; a second import changes nothing; a baby
//! or entry id of someone else is a 409; one bad entry is a 400 with its
//! path and nothing is imported; gzip bodies; the import's own body limit.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{both, helpers::*};

async fn export(app: &TestApp, token: &str, baby: &str) -> Value {
    let r = app.get(&format!("/api/babies/{baby}/export"), token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

async fn import(app: &TestApp, token: &str, doc: &Value) -> Resp {
    app.post("/api/babies/import", token, doc.clone()).await
}

/// Every entry, by kind and id, without what an import recomputes
/// (`version`, `updatedAt`).
fn entries(doc: &Value) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for (kind, list) in doc["entries"].as_object().unwrap() {
        for e in list.as_array().unwrap() {
            let mut e = e.clone();
            let m = e.as_object_mut().unwrap();
            m.remove("version");
            m.remove("updatedAt");
            out.insert((kind.clone(), m["id"].as_str().unwrap().to_owned()), e);
        }
    }
    out
}

fn counts(doc: &Value) -> Value {
    let m: serde_json::Map<String, Value> = doc["entries"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, l)| (k.clone(), json!(l.as_array().unwrap().len())))
        .collect();
    Value::Object(m)
}

async fn round_trip(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let r = push(
        &app,
        &alice,
        Uuid::new_v4(),
        crate::pull::every_kind_of_value(&baby),
    )
    .await;
    assert_all_applied(&r);
    let first = export(&app, &alice, &baby).await;

    // A fresh database, another user.
    let other = spawn_app(backend).await;
    let bob = other.token("bob");
    let r = import(&other, &bob, &first).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["baby"]["id"], baby);
    assert_eq!(r.body["baby"]["accessLevel"], "owner");
    assert_eq!(r.body["imported"], counts(&first));
    let second = export(&other, &bob, &baby).await;
    assert_eq!(entries(&second), entries(&first), "the same entries");
    assert_eq!(second["baby"]["name"], first["baby"]["name"]);
    // Versions are the new database's own: 1..=n, unique.
    let mut versions: Vec<i64> = second["entries"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|l| {
            l.as_array()
                .unwrap()
                .iter()
                .map(|e| e["version"].as_i64().unwrap())
        })
        .collect();
    versions.sort();
    assert_eq!(versions, (1..=versions.len() as i64).collect::<Vec<_>>());
    // Bob's devices pull it.
    let pulled = pull(&other, &bob, Uuid::new_v4(), None, Some(5000)).await;
    assert_eq!(pulled.body["babies"][0]["id"], baby);

    // The same file again: nothing changes.
    let r = import(&other, &bob, &first).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["unchanged"], counts(&first));
    assert!(
        r.body["imported"]
            .as_object()
            .unwrap()
            .values()
            .all(|n| n == 0)
    );
    assert_eq!(entries(&export(&other, &bob, &baby).await), entries(&first));

    // Someone who does not own the baby: 409, nothing written.
    let carol = other.token("carol");
    let r = import(&other, &carol, &first).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_error_body(&r.body, "conflict");

    // A new baby whose entries live in another baby: 409 naming the first.
    let mut moved = first.clone();
    let new_baby = Uuid::new_v4().to_string();
    moved["baby"]["id"] = json!(new_baby);
    for list in moved["entries"].as_object_mut().unwrap().values_mut() {
        for e in list.as_array_mut().unwrap() {
            e["babyId"] = json!(new_baby);
        }
    }
    let r = import(&other, &bob, &moved).await;
    assert_eq!(r.status, 409, "{}", r.text);
    // The first entry in the file (its kinds come in the order of the
    // document this test writes).
    let first_kind = moved["entries"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, l)| !l.as_array().unwrap().is_empty())
        .map(|(k, _)| k.clone())
        .unwrap();
    assert_eq!(
        r.body["error"]["details"]["field"],
        format!("entries/{first_kind}/0/id")
    );
    let r = other.get(&format!("/api/babies/{new_baby}"), &bob).await;
    assert_eq!(r.status, 404, "nothing imported");
}

async fn one_bad_entry_imports_nothing(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let client = Uuid::new_v4();
    let muts = (1..=3).map(|i| feed(i, Uuid::new_v4(), &baby)).collect();
    assert_all_applied(&push(&app, &alice, client, muts).await);
    let doc = export(&app, &alice, &baby).await;
    let bob = app.token("bob");
    let mut fresh = doc.clone();
    let id = Uuid::new_v4().to_string();
    fresh["baby"]["id"] = json!(id);
    for e in fresh["entries"]["feed_log"].as_array_mut().unwrap() {
        e["babyId"] = json!(id);
        e["id"] = json!(Uuid::new_v4());
    }
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "/entries/feed_log/2",
            "amountMl",
            json!(3000),
            "entries/feed_log/2/amountMl",
        ),
        (
            "/entries/feed_log/1",
            "startedAt",
            json!("soon"),
            "entries/feed_log/1/startedAt",
        ),
        (
            "/entries/feed_log/0",
            "babyId",
            json!(Uuid::new_v4()),
            "entries/feed_log/0/babyId",
        ),
        (
            "/entries/feed_log/0",
            "colour",
            json!("red"),
            "entries/feed_log/0/colour",
        ),
        (
            "/entries/feed_log/0",
            "loggedBy",
            json!("x\u{0}"),
            "entries/feed_log/0/loggedBy",
        ),
        ("/entries", "bogus_log", json!([]), "entries/bogus_log"),
        ("", "format", json!("csv"), "format"),
        ("", "formatVersion", json!(2), "formatVersion"),
        ("/baby", "name", json!(""), "baby/name"),
    ];
    for (parent, key, change, field) in cases {
        let path = format!("{parent}/{key}");
        let mut bad = fresh.clone();
        bad.pointer_mut(parent).unwrap()[key] = change;
        let r = import(&app, &bob, &bad).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert_error_body(&r.body, "invalid_request");
        assert_eq!(r.body["error"]["details"]["field"], field, "{path}");
        let r = app.get(&format!("/api/babies/{id}"), &bob).await;
        assert_eq!(r.status, 404, "{path}: nothing imported");
    }
    // What cannot be an entry is refused as the document is read (a list
    // of tiny values would otherwise cost far more than its bytes).
    for (junk, what) in [(json!(1), "a number"), (json!({}), "an empty object")] {
        let mut bad = fresh.clone();
        bad["entries"]["feed_log"][1] = junk;
        let r = import(&app, &bob, &bad).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text);
        assert_eq!(
            r.body["error"]["details"]["field"], "entries/feed_log/1",
            "{what}"
        );
    }
    // The 24 h rule counts from the export's time (never later than now):
    // an hour from now is too late for a file exported ten days ago.
    let ts =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let now = chrono::Utc::now();
    let exported = now - chrono::Duration::days(10);
    let mut late = fresh.clone();
    late["exportedAt"] = json!(ts(exported));
    for e in late["entries"]["feed_log"].as_array_mut().unwrap() {
        e["createdAt"] = json!(ts(exported - chrono::Duration::hours(1)));
        e["startedAt"] = json!(ts(exported - chrono::Duration::hours(2)));
    }
    late["entries"]["feed_log"][0]["startedAt"] = json!(ts(now + chrono::Duration::hours(1)));
    let r = import(&app, &bob, &late).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.body["error"]["details"]["field"],
        "entries/feed_log/0/startedAt"
    );
    late["entries"]["feed_log"][0]["startedAt"] = json!(ts(exported + chrono::Duration::hours(12)));
    let r = import(&app, &bob, &late).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["imported"]["feed_log"], 3);
}

async fn gzip_bodies_and_the_import_limit(backend: Backend) {
    use std::io::Write;
    let app = spawn_app_with(backend, |c| c.import_body_limit_bytes = 64 * 1024).await;
    let alice = app.token("alice");
    let baby = baby_id(&app, &alice, "Ada").await;
    let client = Uuid::new_v4();
    let muts = (1..=100).map(|i| feed(i, Uuid::new_v4(), &baby)).collect();
    assert_all_applied(&push(&app, &alice, client, muts).await);
    let doc = export(&app, &alice, &baby).await;
    let text = serde_json::to_vec(&doc).unwrap();
    assert!(text.len() < 64 * 1024, "{}", text.len());
    let mut gz = flate2::write::GzEncoder::new(vec![], flate2::Compression::default());
    gz.write_all(&text).unwrap();
    let gz = gz.finish().unwrap();
    let send = |body: Vec<u8>, encoding: Option<&'static str>| {
        let mut req = app
            .http
            .post(app.url("/api/babies/import"))
            .bearer_auth(&alice)
            .header("content-type", "application/json")
            .body(body);
        if let Some(e) = encoding {
            req = req.header("content-encoding", e);
        }
        req.send()
    };
    let r = send(gz, Some("gzip")).await.unwrap();
    assert_eq!(r.status(), 200, "the owner's own baby: a merge");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["unchanged"]["feed_log"], 100);
    // Over the import's limit once decompressed: 413.
    let mut big = doc.clone();
    big["baby"]["note"] = json!("x".repeat(70 * 1024));
    let text = serde_json::to_vec(&big).unwrap();
    let mut gz = flate2::write::GzEncoder::new(vec![], flate2::Compression::default());
    gz.write_all(&text).unwrap();
    let r = send(gz.finish().unwrap(), Some("gzip")).await.unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_error_body(&body, "payload_too_large");
}

/// A large file is read while its first batches are written: a bad entry
/// far into it (after 2,000 entries went in) still imports nothing, a bad
/// field wins over an id of another baby read before it, and the good file
/// imported twice changes nothing the second time (no new version).
async fn a_bad_entry_late_in_a_large_file_imports_nothing(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let client = Uuid::new_v4();
    let theirs = Uuid::new_v4();
    assert_all_applied(&push(&app, &alice, client, vec![feed(1, theirs, &baby)]).await);
    let bob = app.token("bob");
    let id = Uuid::new_v4().to_string();
    let feeds: Vec<Value> = (0..2500)
        .map(|i| {
            json!({"id": Uuid::new_v4(), "babyId": id, "method": "bottle", "amountMl": 100,
                   "startedAt": format!("2026-11-{:02}T{:02}:{:02}:00.000Z", 1 + i / 100, (i / 4) % 24, i % 60)})
        })
        .collect();
    let doc = json!({"format": "babysync-export", "formatVersion": 1,
        "exportedAt": "2026-12-01T00:00:00.000Z", "baby": {"id": id, "name": "Large"},
        "entries": {"feed_log": feeds}});
    let refused = |doc: Value, status: u16, field: &'static str| {
        let (app, bob, id) = (&app, &bob, &id);
        async move {
            let r = import(app, bob, &doc).await;
            assert_eq!(r.status, status, "{field}: {}", r.text);
            assert_eq!(r.body["error"]["details"]["field"], field, "{}", r.text);
            let r = app.get(&format!("/api/babies/{id}"), bob).await;
            assert_eq!(r.status, 404, "{field}: nothing imported");
        }
    };
    let mut bad = doc.clone();
    bad["entries"]["feed_log"][2400]["amountMl"] = json!(3000);
    refused(bad, 400, "entries/feed_log/2400/amountMl").await;
    let mut bad = doc.clone();
    bad["entries"]["feed_log"][2400]["id"] = json!(theirs);
    refused(bad.clone(), 409, "entries/feed_log/2400/id").await;
    bad["entries"]["feed_log"][2450]["method"] = json!("cup");
    refused(bad, 400, "entries/feed_log/2450/method").await;
    let mut bad = doc.clone();
    bad["entries"]["feed_log"][2450]["id"] = doc["entries"]["feed_log"][10]["id"].clone();
    refused(bad.clone(), 400, "entries/feed_log/2450/id").await;
    // An id given twice is reported once the file is checked: a bad entry
    // after it comes first.
    bad["entries"]["feed_log"][2480]["method"] = json!("cup");
    refused(bad, 400, "entries/feed_log/2480/method").await;

    let r = import(&app, &bob, &doc).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["imported"]["feed_log"], 2500);
    let first = export(&app, &bob, &id).await;
    let r = import(&app, &bob, &doc).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (
            &r.body["imported"]["feed_log"],
            &r.body["unchanged"]["feed_log"]
        ),
        (&json!(0), &json!(2500))
    );
    let again = export(&app, &bob, &id).await;
    assert_eq!(
        first["entries"], again["entries"],
        "the second import changed nothing"
    );
}

/// A timer is folded from the file's events for it wherever they stand in
/// the file (here before it), and at most 200 of them: the 201st is a 400
/// naming it.
async fn timers_fold_from_their_events_in_any_order(backend: Backend) {
    let (app, alice, _) = spawn_with_baby(backend).await;
    let (baby, feed) = (Uuid::new_v4(), Uuid::new_v4());
    let event = |n: usize, action: &str, side: Option<&str>| {
        let mut e = json!({"id": Uuid::new_v4(), "babyId": baby, "entryEntity": "feed_log",
            "entryId": feed, "action": action,
            "startedAt": format!("2026-11-20T08:{:02}:{:02}.000Z", n / 60, n % 60)});
        if let Some(s) = side {
            e["side"] = json!(s);
        }
        e
    };
    let timer = json!({"id": feed, "babyId": baby, "method": "breast", "startSide": "left",
        "startedAt": "2026-11-20T08:00:00.000Z", "timerState": "running"});
    // serde_json's maps are sorted: the events go first in the text by hand.
    let body = |events: &Value| {
        format!(
            r#"{{"format":"babysync-export","formatVersion":1,"exportedAt":"2026-12-01T00:00:00.000Z","baby":{{"id":"{baby}","name":"Timers"}},"entries":{{"timer_event":{events},"feed_log":[{timer}]}}}}"#
        )
    };
    let send = |text: String| {
        app.http
            .post(app.url("/api/babies/import"))
            .bearer_auth(&alice)
            .header("content-type", "application/json")
            .body(text)
            .send()
    };
    let mut many: Vec<Value> = (1..=201).map(|n| event(n, "pause", None)).collect();
    let r = send(body(&json!(many))).await.unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(
        e["error"]["details"]["field"], "entries/timer_event/200/entryId",
        "{e}"
    );
    many.truncate(0);
    many.push(event(600, "switchSide", Some("right")));
    many.push(event(900, "stop", None));
    let r = send(body(&json!(many))).await.unwrap();
    assert_eq!(r.status(), 201);
    let doc = export(&app, &alice, &baby.to_string()).await;
    let stored = &doc["entries"]["feed_log"][0];
    // An event with `entryId` given twice acts on the last one, as its
    // timer's fold reads it (here: the timer), wherever it stands.
    let (baby2, feed2) = (Uuid::new_v4(), Uuid::new_v4());
    let text = format!(
        r#"{{"format":"babysync-export","formatVersion":1,"exportedAt":"2026-12-01T00:00:00.000Z","baby":{{"id":"{baby2}","name":"Twice"}},"entries":{{"feed_log":[{{"id":"{feed2}","babyId":"{baby2}","method":"breast","startedAt":"2026-11-20T10:00:00.000Z","timerState":"running"}}],"timer_event":[{{"id":"{}","babyId":"{baby2}","entryEntity":"feed_log","entryId":"{}","entryId":"{feed2}","action":"pause","startedAt":"2026-11-20T10:10:00.000Z"}},{{"id":"{}","babyId":"{baby2}","entryEntity":"feed_log","entryId":"{feed2}","action":"stop","startedAt":"2026-11-20T10:20:00.000Z"}}]}}}}"#,
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4()
    );
    let r = send(text).await.unwrap();
    assert_eq!(r.status(), 201);
    let twice = export(&app, &alice, &baby2.to_string()).await;
    assert_eq!(
        twice["entries"]["feed_log"][0]["timerState"], "stopped",
        "{twice}"
    );
    assert_eq!(stored["timerState"], "stopped", "{stored}");
    assert_eq!(stored["endedAt"], "2026-11-20T08:15:00.000Z");
    assert_eq!(stored["segments"].as_array().unwrap().len(), 2, "{stored}");
    assert_eq!(stored["segments"][1]["side"], "right", "{stored}");
}

/// Free text comes back exactly as it went in, whatever it holds (on
/// PostgreSQL the rows travel as one delimited text: quotes, separators and
/// control characters must survive it).
async fn any_text_survives_an_import(backend: Backend) {
    let (app, alice, _) = spawn_with_baby(backend).await;
    let baby = Uuid::new_v4();
    let notes = [
        "",
        "plain",
        "\"quoted\"",
        "\"",
        "tab\there",
        "unit\u{1f}record\u{1e}sep",
        "back\\slash {\"json\": [1]}",
        "ünïcødé 👶",
        "null",
        " ",
    ];
    let feeds: Vec<Value> = notes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            json!({"id": Uuid::new_v4(), "babyId": baby, "method": "bottle", "notes": n,
                   "estimatedSource": n.chars().take(64).collect::<String>(),
                   "startedAt": format!("2026-11-20T08:{i:02}:00.000Z")})
        })
        .collect();
    let doc = json!({"format": "babysync-export", "formatVersion": 1,
        "exportedAt": "2026-12-01T00:00:00.000Z", "baby": {"id": baby, "name": "Text"},
        "entries": {"feed_log": feeds}});
    let r = import(&app, &alice, &doc).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let out = export(&app, &alice, &baby.to_string()).await;
    let mut got: Vec<(String, String)> = out["entries"]["feed_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["notes"].as_str().unwrap().to_owned(),
                e["estimatedSource"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = notes
        .iter()
        .map(|n| (n.to_string(), n.chars().take(64).collect()))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

both!(
    any_text_survives_an_import,
    timers_fold_from_their_events_in_any_order,
    a_bad_entry_late_in_a_large_file_imports_nothing,
    round_trip,
    one_bad_entry_imports_nothing,
    gzip_bodies_and_the_import_limit,
);
