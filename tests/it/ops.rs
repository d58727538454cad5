//! What operators rely on: metrics, request ids in logs, the request timeout,
//! the per-user rate limit and load shedding.

use std::time::{Duration, Instant};

use reqwest::Method;
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{both, helpers::*};

/// The value of the sample `name{labels…}` in a Prometheus text page (0 if absent).
pub fn sample(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn metrics_page(c: &Client) -> String {
    let r = c.send(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    r.text
}

async fn metrics_appear_and_move(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let baby = create_baby_id(&app, &alice, "Ada").await;
    let before = metrics_page(&app).await;
    let push_ok = [
        ("route", "/api/sync/push"),
        ("status", "200"),
        ("method", "POST"),
    ];
    let mut bad = feed(2, Uuid::new_v4(), &baby);
    bad["data"]["amountMl"] = json!(-5);
    let client = Uuid::new_v4();
    push(
        &app,
        &alice,
        client,
        vec![
            feed(1, Uuid::new_v4(), &baby),
            bad,
            feed(3, Uuid::new_v4(), &baby),
        ],
    )
    .await;
    push(&app, &alice, client, vec![feed(3, Uuid::new_v4(), &baby)]).await;
    pull(&app, &alice, client, None, None).await;
    app.get("/api/me", "garbage").await;
    let after = metrics_page(&app).await;

    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    assert_eq!(
        delta("babysync_http_requests_total", &push_ok),
        2.0,
        "{after}"
    );
    assert_eq!(
        delta(
            "babysync_http_requests_total",
            &[("route", "/api/me"), ("status", "401")]
        ),
        1.0
    );
    assert_eq!(
        delta("babysync_http_request_duration_seconds_count", &push_ok),
        2.0
    );
    assert!(
        after.contains("babysync_http_request_duration_seconds_bucket{"),
        "a latency histogram"
    );
    assert_eq!(
        delta(
            "babysync_push_mutations_total",
            &[("entity", "feed_log"), ("outcome", "applied")]
        ),
        2.0
    );
    assert_eq!(
        delta(
            "babysync_push_mutations_total",
            &[("entity", "feed_log"), ("outcome", "rejected")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "babysync_push_mutations_total",
            &[("entity", "feed_log"), ("outcome", "duplicate")]
        ),
        1.0
    );
    assert_eq!(delta("babysync_pull_entries_total", &[]), 2.0);
    assert!(
        sample(&after, "babysync_db_pool_connections", &[]) >= 1.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, "babysync_db_pool_max_connections", &[]),
        16.0
    );
    assert!(after.contains("babysync_db_pool_in_use_connections"));
}

async fn request_ids_and_users_are_logged_never_tokens(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = db_env(&db);
    let server = ServerProcess::start(db.dir.path(), &as_refs(&env));
    let token = sign(TEST_SECRET, "alice", json!({"name": "Alice"}));
    let r = server
        .client
        .http
        .get(server.client.url("/api/me"))
        .bearer_auth(&token)
        .header("x-request-id", "req-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-abc-123");
    let made = server
        .client
        .http
        .get(server.client.url("/health/live"))
        .send()
        .await
        .unwrap();
    let made_id = made.headers()["x-request-id"].to_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = server.logs();
    let lines: Vec<Value> = logs
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(
        lines.len(),
        logs.len(),
        "LOG_FORMAT=json: every line is one JSON object"
    );
    let line = lines
        .iter()
        .find(|l| l.to_string().contains("req-abc-123"))
        .unwrap_or_else(|| panic!("request id logged:\n{}", logs.join("\n")));
    let span = &line["span"];
    assert_eq!(span["route"], "/api/me");
    assert_eq!(span["method"], "GET");
    assert_eq!(span["user_id"], "alice");
    assert_eq!(line["status"], 200);
    assert!(
        line["latency"].is_string() || line["latency"].is_number(),
        "{line}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["span"]["request_id"] == made_id.as_str()),
        "a made id is logged too"
    );
    let all = logs.join("\n");
    assert!(!all.contains(&token), "a token never reaches the logs");
    assert!(!all.contains(TEST_SECRET), "nor the secret");
    let per_request = lines
        .iter()
        .filter(|l| l["span"]["request_id"] == "req-abc-123")
        .count();
    assert_eq!(per_request, 1, "one line per request");
}

/// Holds the write lock on `baby` (PostgreSQL: its row; SQLite: the database
/// and this process's turn to write, which goes with the returned guard).
async fn hold_baby(app: &TestApp, baby: &str) -> (api::db::WriteTurn, DatabaseTransaction) {
    let (turn, txn) = api::db::begin_write(&app.db).await.unwrap();
    let sql = match app.backend() {
        Backend::Postgres => format!("SELECT id FROM babies WHERE id = '{baby}' FOR UPDATE"),
        Backend::Sqlite => "UPDATE babies SET name = name".to_owned(),
    };
    txn.execute_unprepared(&sql).await.unwrap();
    (turn, txn)
}

async fn a_request_over_the_timeout_is_503_and_commits_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.request_timeout_secs = 1).await;
    let alice = app.token("alice");
    let baby = create_baby_id(&app, &alice, "Ada").await;
    let client = Uuid::new_v4();
    let (turn, lock) = hold_baby(&app, &baby).await;
    let started = Instant::now();
    let r = push(&app, &alice, client, vec![feed(1, Uuid::new_v4(), &baby)]).await;
    r.assert_error(503, "unavailable");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too long")
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    lock.rollback().await.unwrap();
    drop(turn);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = push(&app, &alice, client, vec![]).await;
    assert_eq!(
        r.body["lastMutationId"], 0,
        "nothing of the abandoned push was committed"
    );
    let r = pull(&app, &alice, client, None, None).await;
    assert_eq!(r.body["changes"]["feed_log"], json!([]));
    // The retry goes through.
    let r = push(&app, &alice, client, vec![feed(1, Uuid::new_v4(), &baby)]).await;
    assert_eq!(r.body["results"][0]["status"], "applied");
}

async fn the_rate_limit_answers_429_and_recovers(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.rate_limit_per_sec = 2.0;
        c.rate_limit_burst = 3;
    })
    .await;
    let alice = app.token("alice");
    for _ in 0..3 {
        assert_eq!(app.get("/api/me", &alice).await.status, 200);
    }
    let r = app.get("/api/me", &alice).await;
    r.assert_error(429, "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(
        app.get("/api/me", &app.token("bob")).await.status,
        200,
        "per user"
    );
    assert_eq!(
        app.send(Method::GET, "/health/live", None, None)
            .await
            .status,
        200,
        "probes are not limited"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.get("/api/me", &alice).await.status, 200, "recovers");
}

async fn overload_is_shed_with_503(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.max_concurrent_requests = 1).await;
    let alice = app.token("alice");
    let baby = create_baby_id(&app, &alice, "Ada").await;
    let (turn, lock) = hold_baby(&app, &baby).await;
    let held = {
        let (c, t, baby) = (app.client.clone(), alice.clone(), baby.clone());
        tokio::spawn(async move {
            push(&c, &t, Uuid::new_v4(), vec![feed(1, Uuid::new_v4(), &baby)]).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let r = app.get("/api/me", &alice).await;
    r.assert_error(503, "unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shed at once, not queued"
    );
    assert_eq!(
        app.send(Method::GET, "/health/live", None, None)
            .await
            .status,
        200,
        "probes are not shed"
    );
    lock.rollback().await.unwrap();
    drop(turn);
    assert_eq!(held.await.unwrap().status, 200);
    assert_eq!(app.get("/api/me", &alice).await.status, 200);
}

both!(
    metrics_appear_and_move,
    request_ids_and_users_are_logged_never_tokens,
    a_request_over_the_timeout_is_503_and_commits_nothing,
    the_rate_limit_answers_429_and_recovers,
    overload_is_shed_with_503,
);
