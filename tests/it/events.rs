//! Live updates: `GET /api/sync/events` pokes every caregiver of a baby when
//! it changes, through any instance on the same database (two processes on
//! PostgreSQL), the writer included, and nobody else; streams are capped per
//! user, end with the token, survive a lost listener with a `ready`, and do
//! not hold up SIGTERM.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{both, helpers::*};

/// An open event stream, read event by event.
struct Events {
    resp: reqwest::Response,
    buf: String,
}

impl Events {
    async fn open(c: &Client, token: &str) -> Events {
        let resp = c
            .http
            .get(c.url("/api/sync/events"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut events = Events {
            resp,
            buf: String::new(),
        };
        let first = events.next(Duration::from_secs(10)).await;
        assert_eq!(
            first,
            Some(("ready".into(), json!({}))),
            "ready comes first"
        );
        events
    }

    /// The next event (comments skipped), `None` if none came within `wait`
    /// or the stream ended.
    async fn next(&mut self, wait: Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event: ") {
                        event = Some(e.to_owned());
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data = serde_json::from_str(d).ok();
                    }
                }
                if let Some(event) = event {
                    return Some((event, data.unwrap_or(Value::Null)));
                }
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    /// Waits for a poke naming `baby` (other events in between are fine).
    async fn poked(&mut self, baby: &str) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while let Some((event, data)) = self.next(deadline - tokio::time::Instant::now()).await {
            if event == "poke"
                && data["babyIds"]
                    .as_array()
                    .is_some_and(|b| b.iter().any(|x| x == baby))
            {
                return true;
            }
        }
        false
    }

    /// Reads whatever comes in `wait`: the pokes among it.
    async fn pokes_within(&mut self, wait: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = vec![];
        while let Some((event, data)) = self.next(deadline - tokio::time::Instant::now()).await {
            if event == "poke" {
                out.push(data);
            }
        }
        out
    }
}

/// One instance on SQLite (an embedded database has one process), two on
/// PostgreSQL.
fn instances(
    backend: Backend,
    db: &TestDb,
    extra: &[(&'static str, String)],
) -> Vec<ServerProcess> {
    let mut env = load_env(db);
    env.extend(extra.iter().cloned());
    let n = if backend == Backend::Postgres { 2 } else { 1 };
    ServerProcess::start_many(n, db.dir.path(), &as_refs(&env))
}

async fn pokes_reach_every_caregiver_and_no_one_else(backend: Backend) {
    let db = TestDb::new(backend).await;
    let servers = instances(backend, &db, &[]);
    let (one, two) = (&servers[0].client, &servers[servers.len() - 1].client);
    let token = |sub: &str| sign(TEST_SECRET, sub, json!({}));
    let (alice, bob, carol, mallory) = (
        token("alice"),
        token("bob"),
        token("carol"),
        token("mallory"),
    );
    let baby = baby_id(one, &alice, "Ada").await;
    share(one, &alice, &baby, bob.clone(), "editor").await;
    let other = baby_id(two, &mallory, "Mo").await;

    let mut a = Events::open(one, &alice).await;
    let mut b = Events::open(two, &bob).await;
    let mut c = Events::open(one, &carol).await;
    let mut m = Events::open(two, &mallory).await;

    // A write through one instance reaches the writer and the other
    // caregiver on the other instance; nobody else.
    let r = write_a_feed(one, &alice, &baby).await;
    assert_eq!(r.status, 200);
    assert!(a.poked(&baby).await, "the writer's own stream");
    assert!(
        b.poked(&baby).await,
        "another caregiver, through the other instance"
    );
    assert!(
        m.pokes_within(Duration::from_millis(1500)).await.is_empty(),
        "a stranger hears nothing"
    );
    assert!(
        c.pokes_within(Duration::from_millis(200)).await.is_empty(),
        "not yet shared"
    );

    // Shared with carol: she is poked about the baby.
    share(two, &alice, &baby, carol.clone(), "viewer").await;
    assert!(c.poked(&baby).await, "the user the baby was shared with");

    // The baby edited: every caregiver.
    let r = one
        .patch(
            &format!("/api/babies/{baby}"),
            &alice,
            json!({"name": "Ada L."}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(b.poked(&baby).await && c.poked(&baby).await);

    // Bob's access changed, then revoked: he is poked each time, then hears
    // nothing more of the baby.
    let path = format!("/api/babies/{baby}/caregivers/bob");
    assert_eq!(
        one.put(&path, &alice, json!({"accessLevel": "viewer"}))
            .await
            .status,
        200
    );
    assert!(b.poked(&baby).await, "access changed");
    assert_eq!(one.delete(&path, &alice).await.status, 204);
    assert!(b.poked(&baby).await, "access revoked");
    let r = write_a_feed(two, &alice, &baby).await;
    assert_eq!(r.status, 200);
    assert!(c.poked(&baby).await);
    let late = b.pokes_within(Duration::from_millis(1500)).await;
    assert!(
        late.iter()
            .all(|p| !p["babyIds"].to_string().contains(&baby)),
        "{late:?}"
    );

    // A new baby: the creator's streams learn of it.
    let second = baby_id(two, &alice, "Bo").await;
    assert!(a.poked(&second).await, "a baby created on another device");

    // Open streams and pokes sent are on /metrics.
    let scrape = one
        .send(reqwest::Method::GET, "/metrics", None, None)
        .await
        .text;
    let streams = scrape
        .lines()
        .find(|l| l.starts_with("babysync_event_streams_open"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert!(streams.is_some_and(|n| n >= 2.0), "{scrape}");
    assert!(
        scrape.contains("babysync_event_pokes_sent_total"),
        "{scrape}"
    );

    // Mallory's own writes poke only her.
    let r = write_a_feed(two, &mallory, &other).await;
    assert_eq!(r.status, 200);
    assert!(m.poked(&other).await);
    assert!(
        a.pokes_within(Duration::from_millis(1000))
            .await
            .iter()
            .all(|p| !p.to_string().contains(&other))
    );
}

async fn streams_are_capped_kept_alive_and_end_with_the_token(backend: Backend) {
    let db = TestDb::new(backend).await;
    let servers = instances(backend, &db, &[("EVENTS_KEEPALIVE_SECS", "1".into())]);
    let c = &servers[0].client;
    let alice = sign(TEST_SECRET, "alice", json!({}));
    let mut open = vec![];
    for _ in 0..10 {
        open.push(Events::open(c, &alice).await);
    }
    let r = c.get("/api/sync/events", &alice).await;
    r.assert_error(429, "rate_limited");
    drop(open.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = Events::open(c, &alice).await;
    // A keep-alive comment comes at least every keep-alive period.
    let chunk = tokio::time::timeout(Duration::from_secs(5), again.resp.chunk()).await;
    let text = String::from_utf8_lossy(&chunk.unwrap().unwrap().unwrap()).into_owned();
    assert!(text.starts_with(": keep-alive"), "{text:?}");

    // A token whose leeway ran out earlier in this second (the token check
    // counts whole seconds) is refused, not given a stream that ends at once.
    while !(200..800).contains(&chrono::Utc::now().timestamp_subsec_millis()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let spent = sign(
        TEST_SECRET,
        "spent",
        json!({"exp": chrono::Utc::now().timestamp() - 60}),
    );
    c.get("/api/sync/events", &spent)
        .await
        .assert_error(401, "unauthorized");

    // A token past its expiry but within the 60 s leeway opens a stream that
    // ends when the leeway runs out.
    let now = chrono::Utc::now().timestamp();
    let late = sign(TEST_SECRET, "late", json!({"exp": now - 57}));
    let mut ending = Events::open(c, &late).await;
    let started = std::time::Instant::now();
    while ending.next(Duration::from_secs(15)).await.is_some() {}
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the stream ended with the token"
    );
}

/// PostgreSQL: the listening connection is terminated; once it is back,
/// every stream gets `ready`, and pokes flow again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_comes_back_with_ready_postgres() {
    use sea_orm::ConnectionTrait;
    let db = TestDb::new(Backend::Postgres).await;
    let servers = instances(Backend::Postgres, &db, &[]);
    let c = &servers[0].client;
    let alice = sign(TEST_SECRET, "alice", json!({}));
    let baby = baby_id(c, &alice, "Ada").await;
    let mut s = Events::open(c, &alice).await;
    let admin = sea_orm::Database::connect(admin_url()).await.unwrap();
    let killed = admin
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND application_name = 'babysync-listener'",
                db.pg_name().unwrap()
            ),
        ))
        .await
        .unwrap();
    assert_eq!(killed.len(), 2, "one listener per instance");
    let mut got_ready = false;
    while let Some((event, _)) = s.next(Duration::from_secs(15)).await {
        if event == "ready" {
            got_ready = true;
            break;
        }
    }
    assert!(got_ready, "ready after the listener came back");
    let r = write_a_feed(c, &alice, &baby).await;
    assert_eq!(r.status, 200);
    assert!(s.poked(&baby).await, "pokes flow again");
}

async fn open_streams_do_not_hold_up_sigterm(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut servers = instances(backend, &db, &[]);
    let server = servers.remove(0);
    let alice = sign(TEST_SECRET, "alice", json!({}));
    let mut streams = vec![];
    for _ in 0..5 {
        streams.push(Events::open(&server.client, &alice).await);
    }
    let started = std::time::Instant::now();
    let status = terminate(server, Duration::from_secs(8))
        .await
        .expect("exits within 8 s");
    assert!(status.success(), "{status:?}");
    for s in &mut streams {
        // A stream opened before the instance's listener was up gets a
        // second `ready` when it is (it may have missed a change); under
        // load that can come just before the end. Anything else may not.
        let mut next = s.next(Duration::from_secs(5)).await;
        if next.as_ref().is_some_and(|(e, _)| e == "ready") {
            next = s.next(Duration::from_secs(5)).await;
        }
        assert_eq!(next, None, "the stream ended");
    }
    eprintln!(
        "SIGTERM with 5 open streams: {} ms",
        started.elapsed().as_millis()
    );
}

/// CPU ticks (user + system) the process has used.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// An open stream is a request in flight: the idle timeout neither cuts it
/// nor makes the server spin while it is open.
async fn a_stream_outlives_the_idle_timeout_without_spinning(backend: Backend) {
    let db = TestDb::new(backend).await;
    let servers = instances(backend, &db, &[("HTTP_IDLE_TIMEOUT_SECS", "1".into())]);
    let server = &servers[0];
    let c = &server.client;
    let alice = sign(TEST_SECRET, "alice", json!({}));
    let baby = baby_id(c, &alice, "Ada").await;
    let mut s = Events::open(c, &alice).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = cpu_ticks(server.pid());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_ticks(server.pid()) - before;
    // A spinning connection loop burns a core: ~200 ticks in 2 s.
    assert!(used < 60, "{used} ticks in 2 s with one idle stream");
    let r = write_a_feed(c, &alice, &baby).await;
    assert_eq!(r.status, 200);
    assert!(
        s.poked(&baby).await,
        "the stream is still open past the idle timeout"
    );
}

/// A caregiver's tap on a shared timer pokes the other caregiver (through
/// the other instance on PostgreSQL), as any write does, and its undo too;
/// a rejected event pokes nobody.
async fn timer_events_poke_every_caregiver(backend: Backend) {
    let db = TestDb::new(backend).await;
    let servers = instances(backend, &db, &[]);
    let (one, two) = (&servers[0].client, &servers[servers.len() - 1].client);
    let token = |sub: &str| sign(TEST_SECRET, sub, json!({}));
    let (alice, bob) = (token("alice"), token("bob"));
    let baby = baby_id(one, &alice, "Ada").await;
    share(one, &alice, &baby, bob.clone(), "editor").await;
    let feed = uuid::Uuid::new_v4();
    let client = uuid::Uuid::new_v4();
    let r = push(
        one,
        &alice,
        client,
        vec![create(
            1,
            "feed_log",
            json!({"id": feed, "babyId": baby, "method": "breast",
            "startedAt": T0, "timerState": "running", "startSide": "left"}),
        )],
    )
    .await;
    assert_all_applied(&r);
    let mut b = Events::open(two, &bob).await;
    let stop = uuid::Uuid::new_v4();
    let event = |action: &str| {
        json!({"id": stop, "babyId": baby, "startedAt": "2026-11-20T07:25:00.000Z",
            "entryEntity": "feed_log", "entryId": feed, "action": action})
    };
    let r = push(
        one,
        &alice,
        client,
        vec![create(2, "timer_event", event("stop"))],
    )
    .await;
    assert_all_applied(&r);
    assert!(
        b.poked(&baby).await,
        "the other caregiver hears of the stop"
    );
    let r = push(
        one,
        &alice,
        client,
        vec![create(3, "timer_event", event("pause"))],
    )
    .await;
    assert_eq!(r.body["results"][0]["code"], "conflict", "{}", r.text);
    assert!(
        b.pokes_within(Duration::from_millis(1500)).await.is_empty(),
        "a rejected event pokes nobody"
    );
    let r = push(one, &alice, client, vec![delete(4, "timer_event", stop)]).await;
    assert_all_applied(&r);
    assert!(b.poked(&baby).await, "and of its undo");
}

both!(
    timer_events_poke_every_caregiver,
    a_stream_outlives_the_idle_timeout_without_spinning,
    pokes_reach_every_caregiver_and_no_one_else,
    streams_are_capped_kept_alive_and_end_with_the_token,
    open_streams_do_not_hold_up_sigterm,
);
