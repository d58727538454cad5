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
        .get(format!("{}/health/live", app.base))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = app
        .http
        .get(format!("{}/health/live", app.base))
        .send()
        .await
        .unwrap();
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
