//! Faults: a crash, a graceful stop and a database outage under load lose
//! nothing answered and double nothing; hostile input is a 4xx; text that
//! looks like SQL is stored verbatim; odd tokens are 401, never 5xx.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use reqwest::Method;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{both, helpers::*};

/// One worker's batches: those answered 200, and the one left unanswered.
#[derive(Default, Debug)]
struct Worker {
    client: Uuid,
    answered: Vec<Vec<Uuid>>,
    unanswered: Option<(Value, Vec<Uuid>)>,
}

fn batch(first_mid: i64, baby: &str, n: i64) -> (Vec<Value>, Vec<Uuid>) {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let mutations: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let data = match i % 3 {
                0 => json!({"id": id, "babyId": baby, "method": "bottle", "startedAt": T0}),
                1 => json!({"id": id, "babyId": baby, "startedAt": T0}),
                _ => json!({"id": id, "babyId": baby, "startedAt": T0, "type": "wee"}),
            };
            create(first_mid + i as i64, KINDS[i % 3], data)
        })
        .collect();
    (mutations, ids)
}

/// Pushes batches of 10 until a request is not answered 200.
async fn push_until_refused(
    base: String,
    token: String,
    baby: String,
    answered: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Worker {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let c = Client::with_http(base, http);
    let mut w = Worker {
        client: Uuid::new_v4(),
        ..Default::default()
    };
    let mut mid = 1;
    loop {
        let (mutations, ids) = batch(mid, &baby, 10);
        let body = push_body(w.client, mutations);
        match c
            .try_send(Method::POST, PUSH, Some(&token), Some(&body))
            .await
        {
            Ok(r) if r.status == 200 => {
                let v = r.body;
                assert!(
                    v["results"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|x| x["status"] == "applied"),
                    "{v}"
                );
                w.answered.push(ids);
                answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                mid += 10;
            }
            Ok(r) => {
                let (status, v) = (r.status.as_u16(), r.body);
                assert!(
                    status == 503,
                    "only 503 while stopping or unavailable: {status} {v}"
                );
                assert_error_body(&v, "unavailable");
                w.unanswered = Some((body, ids));
                return w;
            }
            Err(_) => {
                w.unanswered = Some((body, ids));
                return w;
            }
        }
    }
}

/// Every answered entry once, every re-sent entry once, nothing else; versions
/// unique per baby.
async fn check_stored(db: &TestDb, workers: &[Worker], resent: &[Vec<Uuid>]) {
    let conn = db.connect().await;
    let mut seen: HashSet<Uuid> = HashSet::new();
    let mut versions: HashMap<Uuid, HashSet<i64>> = HashMap::new();
    for (_, id, baby, version, _) in stored_rows(&conn).await {
        assert!(seen.insert(id), "{id} stored once");
        assert!(
            versions.entry(baby).or_default().insert(version),
            "version {version} unique in its baby"
        );
    }
    let mut expected: HashSet<Uuid> = workers
        .iter()
        .flat_map(|w| w.answered.iter().flatten().copied())
        .collect();
    expected.extend(resent.iter().flatten().copied());
    assert_eq!(
        seen, expected,
        "exactly the answered and the re-sent entries"
    );
}

async fn setup(c: &Client, n: usize) -> Vec<(String, String)> {
    let mut out = vec![];
    for i in 0..n {
        let token = sign(TEST_SECRET, &format!("parent-{i}"), json!({}));
        let baby = baby_id(c, &token, "Ada").await;
        out.push((token, baby));
    }
    out
}

/// Re-sends each unanswered batch to `c`: only `applied` or `duplicate`.
async fn resend(c: &Client, users: &[(String, String)], workers: &[Worker]) -> Vec<Vec<Uuid>> {
    let mut resent = vec![];
    for (i, w) in workers.iter().enumerate() {
        if let Some((body, ids)) = &w.unanswered {
            let r = c.post(PUSH, &users[i].0, body.clone()).await;
            assert_eq!(r.status, 200, "{}", r.text);
            for x in r.body["results"].as_array().unwrap() {
                assert!(
                    x["status"] == "applied" || x["status"] == "duplicate",
                    "{x}"
                );
            }
            resent.push(ids.clone());
        }
    }
    resent
}

/// Runs one pusher per user against `server`, sends `signal` once every
/// pusher has had a push answered and 800 ms of load have passed, and returns
/// what each pusher saw once the server stopped answering.
async fn signal_mid_load(
    server: &ServerProcess,
    users: &[(String, String)],
    signal: i32,
) -> Vec<Worker> {
    let counters: Vec<_> = users
        .iter()
        .map(|_| std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)))
        .collect();
    let workers: Vec<_> = users
        .iter()
        .zip(&counters)
        .map(|((t, b), n)| {
            tokio::spawn(push_until_refused(
                server.client.base.clone(),
                t.clone(),
                b.clone(),
                n.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while counters
        .iter()
        .any(|n| n.load(std::sync::atomic::Ordering::SeqCst) == 0)
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.signal(signal);
    let workers: Vec<Worker> = futures::future::join_all(workers)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(
        workers.iter().all(|w| !w.answered.is_empty()),
        "load was running"
    );
    workers
}

async fn sigkill_mid_load_loses_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = load_env(&db);
    let server = ServerProcess::start(db.dir.path(), &as_refs(&env));
    let users = setup(&server.client, 3).await;
    let workers = signal_mid_load(&server, &users, libc::SIGKILL).await;
    drop(server);
    let restarted = ServerProcess::start(db.dir.path(), &as_refs(&env));
    let resent = resend(&restarted.client, &users, &workers).await;
    check_stored(&db, &workers, &resent).await;
}

async fn sigterm_under_load_loses_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = load_env(&db);
    let mut server = ServerProcess::start(db.dir.path(), &as_refs(&env));
    let users = setup(&server.client, 3).await;
    let workers = signal_mid_load(&server, &users, libc::SIGTERM).await;
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("exits after draining");
    assert!(status.success(), "exit 0: {status:?}");
    assert!(
        std::net::TcpStream::connect_timeout(&server.addr, Duration::from_millis(500)).is_err(),
        "new connections are refused"
    );
    let restarted = ServerProcess::start(db.dir.path(), &as_refs(&env));
    let resent = resend(&restarted.client, &users, &workers).await;
    check_stored(&db, &workers, &resent).await;
}

/// PostgreSQL only: the embedded database cannot be out of reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_is_503_then_recovers_postgres() {
    let db = TestDb::new(Backend::Postgres).await;
    let name = db.pg_name().unwrap().to_owned();
    let env = db_env(&db);
    let server = ServerProcess::start(db.dir.path(), &as_refs(&env));
    let c = &server.client;
    let alice = sign(TEST_SECRET, "alice", json!({}));
    let baby = baby_id(c, &alice, "Ada").await;
    let client = Uuid::new_v4();
    let (m1, ids1) = batch(1, &baby, 10);
    assert_eq!(push(c, &alice, client, m1.clone()).await.status, 200);

    let admin = Database::connect(admin_url()).await.unwrap();
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS false"
        ))
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await
        .unwrap();
    let (m2, ids2) = batch(11, &baby, 10);
    for _ in 0..3 {
        let started = Instant::now();
        let r = push(c, &alice, client, m2.clone()).await;
        r.assert_error(503, "unavailable");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "answered quickly, not hung: {:?}",
            started.elapsed()
        );
        let ready = c.send(Method::GET, "/health/ready", None, None).await;
        assert_eq!(ready.status, 503);
        let live = c.send(Method::GET, "/health/live", None, None).await;
        assert_eq!(live.status, 200);
    }

    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS true"
        ))
        .await
        .unwrap();
    let back = Instant::now();
    assert!(
        wait_ready(c, Duration::from_secs(10)).await,
        "recovers by itself within 10 s"
    );
    eprintln!("recovered in {:?}", back.elapsed());
    let r = push(c, &alice, client, m2.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == "applied")
    );
    let r = push(c, &alice, client, m2.clone()).await;
    assert!(
        r.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["status"] == "duplicate")
    );
    let got = entries(&pull(c, &alice, Uuid::new_v4(), None, None).await);
    let got: HashSet<String> = got
        .iter()
        .map(|(_, e)| e["id"].as_str().unwrap().to_owned())
        .collect();
    let want: HashSet<String> = ids1.iter().chain(&ids2).map(Uuid::to_string).collect();
    assert_eq!(got, want, "nothing lost, nothing doubled");
}

async fn hostile_input_is_4xx(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let client = Uuid::new_v4();
    let baby = baby_id(&app, &alice, "Ada").await;
    let raw = |body: Vec<u8>| {
        let (http, base, alice) = (app.http.clone(), app.base.clone(), alice.clone());
        async move {
            let r = http
                .post(format!("{base}/api/sync/push"))
                .bearer_auth(alice)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            Client::read(r).await
        }
    };
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("deep nesting", deep.into_bytes()),
        ("huge number", format!(r#"{{"protocolVersion": 1, "clientId": "{client}", "mutations": [{{"id": 1e999}}]}}"#).into_bytes()),
        ("invalid UTF-8", b"{\"protocolVersion\": 1, \"clientId\": \"\xc3\x28\", \"mutations\": []}".to_vec()),
        ("duplicate keys", format!(r#"{{"protocolVersion": 1, "clientId": "{client}", "clientId": "{client}", "mutations": []}}"#).into_bytes()),
        ("duplicate mutation keys", format!(r#"{{"protocolVersion": 1, "clientId": "{client}", "mutations": [{{"id": 1, "id": 1}}]}}"#).into_bytes()),
        ("NUL outside strings", b"{\"protocolVersion\": 1\0}".to_vec()),
        ("negative id", format!(r#"{{"protocolVersion": 1, "clientId": "{client}", "mutations": [{{"id": -1}}]}}"#).into_bytes()),
        ("overflowing id", format!(r#"{{"protocolVersion": 1, "clientId": "{client}", "mutations": [{{"id": 9223372036854775808}}]}}"#).into_bytes()),
        ("non-UUID client id", br#"{"protocolVersion": 1, "clientId": "1; DROP TABLE users", "mutations": []}"#.to_vec()),
        ("1 MiB client id", format!(r#"{{"protocolVersion": 1, "clientId": "{}", "mutations": []}}"#, "a".repeat(1 << 20)).into_bytes()),
    ];
    for (what, body) in cases {
        let r = raw(body).await;
        assert!(r.status.is_client_error(), "{what}: {}", r.status);
        assert_error_body(&r.body, r.body["error"]["code"].as_str().unwrap_or("?"));
        assert_eq!(r.body["error"]["code"], "invalid_request", "{what}");
    }
    // Inside a good envelope, bad data is a rejection, never a 5xx.
    let f = Uuid::new_v4();
    let r = push(&app, &alice, client, vec![
        json!({"id": 1, "entity": "feed_log", "op": "create", "data": {"id": f, "babyId": baby, "method": "bottle", "startedAt": T0, "notes": "a\u{0}b"}}),
        json!({"id": 2, "entity": "feed_log", "op": "create", "data": {"id": Uuid::new_v4(), "babyId": baby, "method": "bottle", "startedAt": T0, "notes": "x".repeat(1 << 20)}}),
        json!({"id": 3, "entity": "feed_log", "op": "update", "data": {"id": "not-a-uuid"}}),
        json!({"id": 4, "entity": "feed_log", "op": "create", "data": {"id": Uuid::new_v4(), "babyId": baby, "method": "bottle", "startedAt": T0, "amountMl": 1e300}}),
    ]).await;
    assert_eq!(
        r.status,
        200,
        "{}",
        r.text.chars().take(300).collect::<String>()
    );
    for x in r.body["results"].as_array().unwrap() {
        assert_eq!(
            (x["status"].as_str(), x["code"].as_str()),
            (Some("rejected"), Some("invalid")),
            "{x}"
        );
    }
    // NUL in other text: 400 / 404, not a database error.
    app.post("/api/babies", &alice, json!({"name": "A\u{0}"}))
        .await
        .assert_error(400, "invalid_request");
    app.put(
        &format!("/api/babies/{baby}/caregivers/bob%00"),
        &alice,
        json!({"accessLevel": "viewer"}),
    )
    .await
    .assert_error(404, "not_found");
    app.delete(&format!("/api/babies/{baby}/caregivers/x%00y"), &alice)
        .await
        .assert_error(404, "not_found");
    app.post("/api/invites/accept", &alice, json!({"token": "a\u{0}b"}))
        .await
        .assert_error(404, "not_found");
    let nul_sub = sign(TEST_SECRET, "eve\u{0}", json!({}));
    app.get("/api/me", &nul_sub)
        .await
        .assert_error(401, "unauthorized");
    let nul_name = sign(TEST_SECRET, "nelly", json!({"name": "N\u{0}elly"}));
    let r = app.get("/api/me", &nul_name).await;
    assert_eq!(
        r.body["displayName"], "Nelly",
        "NUL dropped from the name claim"
    );
    assert_eq!(
        app.send(Method::GET, "/health/ready", None, None)
            .await
            .status,
        200
    );
}

async fn sql_in_text_is_stored_verbatim(backend: Backend) {
    let app = spawn_app(backend).await;
    let evil = [
        "'; DROP TABLE feed_log; --",
        "Robert'); DROP TABLE babies;--",
        "\" OR \"1\"=\"1",
        "1' UNION SELECT token_hash FROM baby_invites --",
        "$$; SELECT pg_sleep(10); $$",
        "\\x00\\'\\\"%_*",
    ];
    let sub = "o'brien\"; DROP TABLE users;--";
    let token = sign(TEST_SECRET, sub, json!({"name": evil[1], "email": evil[2]}));
    let me = app.get("/api/me", &token).await;
    assert_eq!(me.body, json!({"userId": sub, "displayName": evil[1]}));
    let baby = try_create_baby(&app, &token, &json!({"name": evil[0]}))
        .await
        .unwrap();
    assert_eq!(baby["name"], evil[0]);
    let id = id_of(&baby);
    let client = Uuid::new_v4();
    let mut muts = vec![];
    for (i, text) in evil.iter().enumerate() {
        muts.push(json!({"id": i + 1, "entity": "feed_log", "op": "create", "data": {"id": Uuid::new_v4(), "babyId": id,
            "method": "breast", "startedAt": T0, "notes": text, "estimatedSource": &text[..text.len().min(64)]}}));
    }
    muts.push(json!({"id": evil.len() + 1, "entity": "sleep_log", "op": "create", "data": {"id": Uuid::new_v4(), "babyId": id, "startedAt": T0, "notes": evil[3]}}));
    muts.push(json!({"id": evil.len() + 2, "entity": "nappy_log", "op": "create", "data": {"id": Uuid::new_v4(), "babyId": id, "startedAt": T0, "notes": evil[4]}}));
    let r = push(&app, &token, client, muts).await;
    assert_all_applied(&r);
    let r = pull(&app, &token, client, None, None).await;
    let notes: Vec<&str> = r.body["changes"]["feed_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["notes"].as_str().unwrap())
        .collect();
    assert_eq!(notes, evil.to_vec());
    assert_eq!(r.body["changes"]["sleep_log"][0]["notes"], evil[3]);
    assert_eq!(r.body["changes"]["nappy_log"][0]["notes"], evil[4]);
    assert!(
        r.body["changes"]["feed_log"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["loggedBy"] == sub)
    );
    let cg = app
        .get(&format!("/api/babies/{id}/caregivers"), &token)
        .await;
    assert_eq!(cg.body["caregivers"][0]["userId"], sub);
    assert_eq!(cg.body["caregivers"][0]["displayName"], evil[1]);
    // Every table is still there.
    for t in ["users", "babies", "feed_log", "baby_invites"] {
        app.query(&format!("SELECT COUNT(*) AS n FROM {t}")).await;
    }
}

async fn a_deleted_users_token_is_never_a_5xx(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let client = Uuid::new_v4();
    assert_eq!(
        push(&app, &alice, client, vec![feed(1, Uuid::new_v4(), &baby)])
            .await
            .status,
        200
    );
    // An operator erases the user (their access and clients go with them).
    app.db
        .execute_unprepared("DELETE FROM users WHERE id = 'alice'")
        .await
        .unwrap();
    // The same token: the user is created again, with nothing.
    let me = app.get("/api/me", &alice).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["userId"], "alice");
    app.get(&format!("/api/babies/{baby}"), &alice)
        .await
        .assert_error(404, "not_found");
    let r = push(&app, &alice, client, vec![feed(1, Uuid::new_v4(), &baby)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["results"][0]["code"], "not_found");
    let created = app.post("/api/babies", &alice, json!({"name": "Bo"})).await;
    assert_eq!(created.status, 201, "{}", created.text);
}

both!(
    sigkill_mid_load_loses_nothing,
    sigterm_under_load_loses_nothing,
    hostile_input_is_4xx,
    sql_in_text_is_stored_verbatim,
    a_deleted_users_token_is_never_a_5xx,
);
