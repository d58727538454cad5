use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{both, helpers::*};

async fn live_and_ready(backend: Backend) {
    let app = spawn_app(backend).await;
    let live = app.send(Method::GET, "/health/live", None, None).await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.body, json!({"status": "ok"}));
    let ready = app.send(Method::GET, "/health/ready", None, None).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body, json!({"status": "ok"}));
}

async fn ready_waits_for_migrations(backend: Backend) {
    let app = spawn_unmigrated_app(backend).await;
    let ready = app.send(Method::GET, "/health/ready", None, None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["status"], "unavailable");
    // live never looks at the database
    let live = app.send(Method::GET, "/health/live", None, None).await;
    assert_eq!(live.status, StatusCode::OK);

    api::db::migrate(&app.config, &app.db).await.unwrap();
    let ready = app.send(Method::GET, "/health/ready", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
}

async fn ready_fails_when_database_is_gone(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(
        app.send(Method::GET, "/health/ready", None, None)
            .await
            .status,
        StatusCode::OK
    );
    app.db.clone().close().await.unwrap();
    let ready = app.send(Method::GET, "/health/ready", None, None).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );
    assert_eq!(ready.body["status"], "unavailable");
    let live = app.send(Method::GET, "/health/live", None, None).await;
    assert_eq!(live.status, StatusCode::OK);
    // An /api route answers 503 `unavailable` in the error body, not 500.
    let me = app.get("/api/me", &app.token("newcomer")).await;
    me.assert_error(503, "unavailable");
}

async fn unknown_routes_and_methods_use_the_error_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.send(Method::GET, "/nope", None, None).await;
    r.assert_error(404, "not_found");
    let r = app.send(Method::POST, "/health/live", None, None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error_body(&r.body, "method_not_allowed");
}

async fn request_id_is_echoed_or_made(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .http
        .get(app.url("/health/live"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = app.http.get(app.url("/health/live")).send().await.unwrap();
    let made = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
}

both!(
    live_and_ready,
    ready_waits_for_migrations,
    ready_fails_when_database_is_gone,
    unknown_routes_and_methods_use_the_error_body,
    request_id_is_echoed_or_made,
);

async fn openapi_document_lists_every_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.send(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = &r.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/health/live", "get"),
        ("/health/ready", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/api/me", "get"),
        ("/api/babies", "post"),
        ("/api/babies", "get"),
        ("/api/babies/{id}", "get"),
        ("/api/babies/{id}", "patch"),
        ("/api/babies/{id}", "delete"),
        ("/api/babies/{id}/caregivers", "get"),
        ("/api/babies/{id}/caregivers/{user_id}", "put"),
        ("/api/babies/{id}/caregivers/{user_id}", "delete"),
        ("/api/babies/{id}/invites", "post"),
        ("/api/babies/{id}/invites", "get"),
        ("/api/babies/{id}/invites/{invite_id}", "delete"),
        ("/api/invites/accept", "post"),
        ("/api/babies/{id}/summary", "get"),
        ("/api/babies/{id}/export", "get"),
        ("/api/babies/import", "post"),
        ("/api/sync/push", "post"),
        ("/api/sync/pull", "post"),
        ("/api/sync/events", "get"),
    ];
    let ops: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        ops,
        expected.len(),
        "{}",
        serde_json::to_string_pretty(paths).unwrap()
    );
    for (path, method) in expected {
        let op = &paths[path][method];
        assert!(op.is_object(), "{method} {path} documented");
        let responses = op["responses"].as_object().unwrap();
        if path.starts_with("/api/") {
            for status in ["400", "401", "429", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} documents {status}"
                );
            }
            assert!(
                op.get("security").is_none(),
                "{method} {path} uses the global bearer scheme"
            );
        } else {
            assert_eq!(
                op["security"],
                serde_json::json!([{}]),
                "{method} {path} needs no token"
            );
        }
    }
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

both!(openapi_document_lists_every_route);
