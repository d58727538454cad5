//! What a developer reads when a request is wrong: every 400 names the field
//! in `details.field` (a path: `mutations/0/id`, `""` for the body as a
//! whole) and says what is expected; a push's rejections name the field by
//! its path in the request.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{both, helpers::*};

/// POSTs `raw` as JSON and returns the 400's (field, message).
async fn bad_request(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    raw: &str,
) -> (String, String) {
    let resp = app
        .client
        .http
        .request(method.clone(), app.client.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(raw.to_owned())
        .send()
        .await
        .expect("answered");
    let status = resp.status();
    let body: Value = resp.json().await.expect("a JSON body");
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{method} {path} {raw}: {body}"
    );
    bench::client::assert_error_body(&body, "invalid_request");
    let field = body["error"]["details"]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("no details.field in {body}"))
        .to_owned();
    let message = body["error"]["message"].as_str().unwrap().to_owned();
    (field, message)
}

async fn every_400_names_its_field_and_what_is_expected(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let cases: &[(Method, String, &str, &str, &[&str])] = &[
        // (method, path, body, field, words the message must hold)
        (
            Method::POST,
            "/api/babies".into(),
            r#"{"birthDate":"2026-01-01"}"#,
            "name",
            &["name: is required"],
        ),
        (
            Method::POST,
            "/api/babies".into(),
            r#"{"name":"Ada","birthDate":"01/02/2026"}"#,
            "birthDate",
            &["YYYY-MM-DD"],
        ),
        (
            Method::POST,
            "/api/babies".into(),
            r#"{"name":"Ada","gender":"x"}"#,
            "gender",
            &["one of", "female", "\"x\""],
        ),
        (
            Method::POST,
            "/api/babies".into(),
            r#"{"name":"Ada","nmae":1}"#,
            "nmae",
            &["not a field", "expected one of", "birthDate"],
        ),
        (
            Method::POST,
            "/api/babies".into(),
            r#"{"name":5}"#,
            "name",
            &["must be a string", "integer"],
        ),
        (
            Method::POST,
            "/api/babies".into(),
            r#"{"name":"Ada","#,
            "",
            &["malformed JSON", "line 1", "column"],
        ),
        (
            Method::PATCH,
            format!("/api/babies/{baby}"),
            r#"{"birthDate":"2026-13-01"}"#,
            "birthDate",
            &["YYYY-MM-DD"],
        ),
        (
            Method::POST,
            format!("/api/babies/{baby}/invites"),
            r#"{"accessLevel":"boss"}"#,
            "accessLevel",
            &["expected", "editor", "\"boss\""],
        ),
        (
            Method::POST,
            "/api/invites/accept".into(),
            r#"{"token":5}"#,
            "token",
            &["must be a string"],
        ),
        (
            Method::POST,
            "/api/sync/push".into(),
            r#"{"protocolVersion":1,"clientId":"nope","mutations":[]}"#,
            "clientId",
            &["UUID"],
        ),
        (
            Method::POST,
            "/api/sync/push".into(),
            &format!(
                r#"{{"protocolVersion":1,"clientId":"{}","mutations":[{{"id":1}},{{"id":"two"}}]}}"#,
                Uuid::new_v4()
            ),
            "mutations/1/id",
            &["positive integer"],
        ),
        (
            Method::POST,
            "/api/sync/push".into(),
            "[1]",
            "",
            &["JSON object"],
        ),
        (
            Method::POST,
            "/api/sync/pull".into(),
            &format!(
                r#"{{"protocolVersion":1,"clientId":"{}","limit":0}}"#,
                Uuid::new_v4()
            ),
            "limit",
            &["1 to 5000"],
        ),
    ];
    for (method, path, raw, field, words) in cases {
        let (got_field, message) = bad_request(&app, &alice, method.clone(), path, raw).await;
        assert_eq!(&got_field, field, "{method} {path} {raw}: {message}");
        for w in *words {
            assert!(
                message.contains(w),
                "{method} {path} {raw}: {message:?} lacks {w:?}"
            );
        }
        assert!(
            !message.contains("at line") || message.starts_with("malformed JSON"),
            "no parser positions outside malformed JSON: {message}"
        );
    }

    // A path parameter: named, with what it must be.
    let r = app.client.get("/api/babies/123", &alice).await;
    r.assert_error(400, "invalid_request");
    assert_eq!(r.body["error"]["details"]["field"], "id", "{}", r.text);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("id: must be a UUID") && message.contains("\"123\""),
        "{message}"
    );
    assert!(
        !message.contains("Invalid URL") && !message.contains("parsing failed"),
        "{message}"
    );

    // The protocol version: its field and the one expected.
    let r = app
        .client
        .post(
            "/api/sync/pull",
            &alice,
            json!({"protocolVersion": 2, "clientId": Uuid::new_v4()}),
        )
        .await;
    r.assert_error(400, "unsupported_protocol_version");
    assert_eq!(
        r.body["error"]["details"],
        json!({"field": "protocolVersion", "expected": 1})
    );

    // Nothing was written by any of them.
    let list = app.client.get("/api/babies", &alice).await;
    assert_eq!(
        list.body["babies"].as_array().unwrap().len(),
        1,
        "{}",
        list.text
    );
}

async fn push_rejections_name_the_field_by_its_path(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let at = "2026-11-21T07:05:00Z";
    let body = json!({
        "protocolVersion": 1,
        "clientId": Uuid::new_v4(),
        "mutations": [
            create(1, "feed_log", json!({"id": Uuid::new_v4(), "babyId": baby, "method": "bottle", "startedAt": at})),
            create(2, "feed_log", json!({"id": Uuid::new_v4(), "babyId": baby, "method": "bottle", "startedAt": at, "amountMl": 3000})),
            create(3, "nappy_log", json!({"id": Uuid::new_v4(), "babyId": baby, "startedAt": at, "type": "wet"})),
            create(4, "sleep_log", json!({"id": "not-a-uuid", "babyId": baby, "startedAt": at})),
            create(5, "sleep_log", json!({"id": Uuid::new_v4(), "babyId": baby, "startedAt": "yesterday"})),
            create(6, "feed_log", json!({"id": Uuid::new_v4(), "babyId": baby, "startedAt": at})),
        ]
    });
    let r = app.client.post("/api/sync/push", &alice, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], "applied");
    let expect: &[(usize, &str, &[&str])] = &[
        (1, "mutations/1/data/amountMl: ", &["0", "2000"]),
        (2, "mutations/2/data/type: ", &["one of", "wee", "poo"]),
        (3, "mutations/3/data/id: ", &["UUID"]),
        (4, "mutations/4/data/startedAt: ", &["RFC 3339"]),
        (5, "mutations/5/data/method: ", &["required"]),
    ];
    for (i, prefix, words) in expect {
        let res = &results[*i];
        assert_eq!(res["status"], "rejected", "{res}");
        assert_eq!(res["code"], "invalid", "{res}");
        let message = res["message"].as_str().unwrap();
        assert!(
            message.starts_with(prefix),
            "{message:?} should start with {prefix:?}"
        );
        for w in *words {
            assert!(message.contains(w), "{message:?} lacks {w:?}");
        }
    }
    // Only the good one was stored.
    assert_eq!(app.stored().await.len(), 1);
}

both!(
    every_400_names_its_field_and_what_is_expected,
    push_rejections_name_the_field_by_its_path
);
