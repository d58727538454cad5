//! The threat model in one place: each test plays one hostile or buggy
//! caller against a real server, on SQLite and PostgreSQL, and asserts that
//! another user is still served and that what the attacker can hold (memory,
//! connections, slots, database time) stays bounded. docs/RELIABILITY.md maps
//! each attack to its bound and to the test here that proves it.

use std::{
    io::{Read, Write},
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use uuid::Uuid;

use crate::{
    auth::{JwksServer, jwk_for},
    both,
    helpers::*,
};

/// Reads what the server sends until it closes the connection (or `limit`).
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut out = vec![];
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Made-up methods and paths would each add a metrics series; they all land
/// on `other` and `unmatched`, so a scrape stays small.
async fn metrics_labels_come_from_fixed_sets(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = app
        .send(Method::GET, "/metrics", None, None)
        .await
        .text
        .len();
    for i in 0..200 {
        let method = Method::from_bytes(format!("X{i}{}", "M".repeat(1000)).as_bytes()).unwrap();
        let r = app
            .http
            .request(method, app.url("/health/live"))
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() < 500);
        let path = format!("/nothing-{i}-{}", "p".repeat(500));
        assert_eq!(app.send(Method::GET, &path, None, None).await.status, 404);
    }
    let scrape = app.send(Method::GET, "/metrics", None, None).await.text;
    assert!(!scrape.contains("MMMM"), "no made-up method is a label");
    assert!(
        !scrape.contains("/nothing-"),
        "no unmatched path is a label"
    );
    assert!(scrape.contains("method=\"other\""), "{scrape}");
    assert!(scrape.contains("route=\"unmatched\""), "{scrape}");
    assert!(
        scrape.len() < before + 64 * 1024,
        "400 hostile requests grew the scrape from {before} to {} bytes",
        scrape.len()
    );
    let me = app.get("/api/me", &app.token("victim")).await;
    assert_eq!(me.status, 200);
}

/// A user with many babies: creating or accepting past `MAX_BABIES_PER_USER`
/// is 409, and a pull costs the same statements as for a user with one baby
/// (the old per-baby UNION failed on SQLite past 166 babies).
async fn many_babies_cost_a_pull_nothing(backend: Backend) {
    let (app, statements) = spawn_recording_app_with(backend, |c| {
        c.max_babies_per_user = 200;
        c.rate_limit_per_sec = 0.0;
    })
    .await;
    let mallory = app.token("mallory");
    let victim = app.token("victim");
    for i in 0..199 {
        baby_id(&app, &mallory, &format!("empty {i}")).await;
    }
    let full = baby_id(&app, &mallory, "full").await;
    let own = baby_id(&app, &victim, "own").await;
    for (token, baby) in [(&mallory, &full), (&victim, &own)] {
        let muts = (1..=3).map(|m| feed(m, Uuid::new_v4(), baby)).collect();
        assert_eq!(push(&app, token, Uuid::new_v4(), muts).await.status, 200);
    }

    let r = app
        .post("/api/babies", &mallory, json!({"name": "one too many"}))
        .await;
    r.assert_error(409, "limit_reached");
    assert_eq!(r.body["error"]["details"]["limit"], "babies_per_user");
    let retry = app
        .post("/api/babies", &mallory, json!({"id": full, "name": "full"}))
        .await;
    assert_eq!(
        retry.status, 200,
        "a retry of an existing baby is no new baby"
    );
    // Accepting an invite past the limit is refused too, and uses nothing.
    let invite = create_invite(&app, &victim, &own, "viewer").await;
    let r = accept_invite(&app, &mallory, &invite.body["token"]).await;
    r.assert_error(409, "limit_reached");
    let list = app
        .get(&format!("/api/babies/{own}/invites"), &victim)
        .await;
    assert_eq!(list.body["invites"][0]["usesCount"], 0);

    let mut cost = vec![];
    for token in [&mallory, &victim] {
        let client = Uuid::new_v4();
        pull(&app, token, client, None, None).await; // the cursor key is loaded once
        statements.lock().unwrap().clear();
        let r = pull(&app, token, client, None, None).await;
        assert_eq!(entries(&r).len(), 3);
        let first = statements.lock().unwrap().len();
        statements.lock().unwrap().clear();
        let cursor = r.body["cursor"].as_str().unwrap();
        let again = pull(&app, token, client, Some(cursor), None).await;
        assert_eq!(entries(&again).len(), 0);
        cost.push((
            r.body["babies"].as_array().unwrap().len(),
            first,
            statements.lock().unwrap().len(),
        ));
    }
    assert_eq!(cost[0].0, 200);
    assert_eq!(cost[1].0, 1);
    assert_eq!(
        (cost[0].1, cost[0].2),
        (cost[1].1, cost[1].2),
        "statements of a first and a later pull: 200 babies {cost:?} vs 1"
    );
}

/// Open invites per baby are capped; revoking one makes room.
async fn open_invites_are_capped(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.max_open_invites_per_baby = 2).await;
    let alice = app.token("alice");
    let baby = baby_id(&app, &alice, "Ada").await;
    let path = format!("/api/babies/{baby}/invites");
    let mut ids = vec![];
    for _ in 0..2 {
        let r = app
            .post(&path, &alice, json!({"accessLevel": "viewer"}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let r = app
        .post(&path, &alice, json!({"accessLevel": "viewer"}))
        .await;
    r.assert_error(409, "limit_reached");
    assert_eq!(r.body["error"]["details"]["limit"], "open_invites_per_baby");
    assert_eq!(
        app.get(&path, &alice).await.body["invites"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        app.delete(&format!("{path}/{}", ids[0]), &alice)
            .await
            .status,
        204
    );
    let r = app
        .post(&path, &alice, json!({"accessLevel": "viewer"}))
        .await;
    assert_eq!(r.status, 201, "a revoked invite is not open: {}", r.text);
}

/// A one-use owner invite raises one viewer, never several.
async fn a_one_use_invite_raises_one_caregiver(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let bob = share(&app, &alice, &baby, app.token("bob"), "viewer").await;
    let carol = share(&app, &alice, &baby, app.token("carol"), "viewer").await;
    let invite = app
        .post(
            &format!("/api/babies/{baby}/invites"),
            &alice,
            json!({"accessLevel": "owner", "maxUses": 1}),
        )
        .await;
    let token = json!({"token": invite.body["token"]});
    let r = app.post("/api/invites/accept", &bob, token.clone()).await;
    assert_eq!(r.body, json!({"babyId": baby, "accessLevel": "owner"}));
    let r = app.post("/api/invites/accept", &carol, token.clone()).await;
    r.assert_error(410, "invite_unusable");
    let r = app.post("/api/invites/accept", &bob, token.clone()).await;
    assert_eq!(
        r.body["accessLevel"], "owner",
        "accepting again keeps the level"
    );
    let cg = app
        .get(&format!("/api/babies/{baby}/caregivers"), &alice)
        .await;
    let level = |u: &str| {
        cg.body["caregivers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["userId"] == u)
            .map(|c| c["accessLevel"].clone())
    };
    assert_eq!(level("alice"), Some(json!("owner")));
    assert_eq!(level("bob"), Some(json!("owner")));
    assert_eq!(level("carol"), Some(json!("viewer")));
    let list = app
        .get(&format!("/api/babies/{baby}/invites"), &alice)
        .await;
    let used: Vec<&Value> = list.body["invites"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["accessLevel"] == "owner")
        .map(|i| &i["usesCount"])
        .collect();
    assert_eq!(used, vec![&json!(1)]);
}

/// Opens a push whose body stalls after its first bytes.
async fn stalled_push(addr: std::net::SocketAddr, token: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/sync/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"protocolVersion\":1,"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

/// Bodies that trickle hold no request slot: with 4 slots and 12 stalled
/// pushes (three accounts), another user's requests are served, and each
/// stalled push gets 408. One account sends at most 8 bodies at once.
async fn slow_bodies_hold_no_slot(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.max_concurrent_requests = 4;
        c.body_timeout_secs = 2;
    })
    .await;
    let victim = app.token("victim");
    let baby = baby_id(&app, &victim, "Ada").await;
    let mut stalled = vec![];
    for i in 0..12 {
        stalled.push(stalled_push(app.addr, &app.token(&format!("mallory-{}", i % 3))).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let r = push(
        &app,
        &victim,
        Uuid::new_v4(),
        vec![feed(1, Uuid::new_v4(), &baby)],
    )
    .await;
    assert_eq!(r.status, 200, "the victim is served: {}", r.text);
    assert_eq!(r.body["results"][0]["status"], "applied");
    assert_eq!(app.get("/api/babies", &victim).await.status, 200);
    let victim_ms = started.elapsed().as_millis();
    for mut s in stalled {
        let answer = read_until_closed(&mut s, Duration::from_secs(15))
            .await
            .expect("a stalled body is answered");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("\"request_timeout\""), "{answer}");
    }
    eprintln!("slow bodies: victim served in {victim_ms} ms while 12 bodies stalled");

    // One account: 8 bodies at once, the 9th is 429 at once.
    let oscar = app.token("oscar");
    let mut held = vec![];
    for _ in 0..8 {
        held.push(stalled_push(app.addr, &oscar).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ninth = stalled_push(app.addr, &oscar).await;
    let answer = read_until_closed(&mut ninth, Duration::from_secs(1)).await;
    let answer = answer.unwrap_or_default();
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    assert!(answer.contains("\"rate_limited\""), "{answer}");
    drop(held);
}

/// Slowloris and idle connections are closed; more than `MAX_CONNECTIONS`
/// wait at accept, and a newcomer is still served.
async fn slow_and_idle_connections_are_closed(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.http_header_timeout_secs = 1;
        c.http_idle_timeout_secs = 2;
        c.max_connections = 16;
    })
    .await;
    let mut lorises = vec![];
    for _ in 0..40 {
        let mut s = TcpStream::connect(app.addr).await.unwrap();
        let _ = s
            .write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await;
        lorises.push(s);
    }
    let started = Instant::now();
    let fresh = Client::new(app.addr);
    let r = fresh.get("/api/me", &app.token("victim")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let victim_ms = started.elapsed().as_millis();
    for mut s in lorises {
        let _ = s.write_all(b"a").await;
        assert!(
            read_until_closed(&mut s, Duration::from_secs(20))
                .await
                .is_some(),
            "a slowloris connection is closed"
        );
    }
    // A silent connection is closed by the header timeout too.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    assert!(
        read_until_closed(&mut silent, Duration::from_secs(10))
            .await
            .is_some()
    );
    // A keep-alive connection that goes idle after a request is closed.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let idle_from = Instant::now();
    let rest = read_until_closed(&mut idle, Duration::from_secs(10)).await;
    assert!(rest.is_some(), "an idle keep-alive connection is closed");
    assert!(
        idle_from.elapsed() >= Duration::from_millis(1500),
        "not before the idle timeout"
    );
    eprintln!("slowloris: victim served in {victim_ms} ms behind 40 slow connections (cap 16)");
}

/// Slow and idle connections do not hold up SIGTERM: the process exits 0
/// well within the header timeout (10 s by default).
async fn open_connections_do_not_hold_up_shutdown(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = db_env(&db);
    let server = ServerProcess::start(db.dir.path(), &as_refs(&env));
    let mut held = vec![];
    for _ in 0..20 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(idle.read(&mut buf).await.unwrap() > 0);
    let started = Instant::now();
    let status = terminate(server, Duration::from_secs(8))
        .await
        .expect("exits within 8 s");
    assert!(status.success(), "{status:?}");
    eprintln!(
        "shutdown with 21 open connections: {} ms",
        started.elapsed().as_millis()
    );
}

/// Big pulls are bounded in bytes (about 4 MiB of entries a page), compressed
/// when asked, complete across pages, and 24 at once leave the server's peak
/// memory bounded.
async fn big_pulls_are_bounded(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = load_env(&db);
    let server = ServerProcess::start(db.dir.path(), &as_refs(&env));
    let c = &server.client;
    let alice = sign(TEST_SECRET, "alice", json!({}));
    let baby = baby_id(c, &alice, "Ada").await;
    let client = Uuid::new_v4();
    let note = "n".repeat(2000);
    let total = 3000;
    for batch in 0..(total / 500) {
        let muts = (1..=500)
            .map(|i| {
                let mut m = feed(batch * 500 + i, Uuid::new_v4(), &baby);
                m["data"]["notes"] = json!(note);
                m
            })
            .collect();
        let r = push(c, &alice, client, muts).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let page = pull(c, &alice, client, None, Some(5000)).await;
    let got = entries(&page).len();
    assert!(
        page.body["hasMore"] == true && got < total as usize,
        "{got}"
    );
    assert!(
        page.text.len() <= 4 * 1024 * 1024 + 16 * 1024,
        "a page is bounded in bytes: {}",
        page.text.len()
    );
    let (_, pages) = pull_all(c, &alice, client, None, 5000).await;
    let mut ids: Vec<String> = pages
        .iter()
        .flatten()
        .map(|(_, e)| e["id"].as_str().unwrap().to_owned())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (n, ids.len()),
        (total as usize, total as usize),
        "every entry once"
    );

    // Compressed when asked.
    let body = json!({"protocolVersion": 1, "clientId": client, "cursor": null, "limit": 5000});
    let r = c
        .http
        .post(c.url(PULL))
        .bearer_auth(&alice)
        .header("accept-encoding", "gzip")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let zipped = r.bytes().await.unwrap();
    let plain = gunzip(&zipped);
    assert!(
        zipped.len() * 20 < plain.len(),
        "{} of {}",
        zipped.len(),
        plain.len()
    );
    let v: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(v["changes"]["feed_log"].as_array().unwrap().len(), got);

    // 24 big pulls at once from one account: 4 run at a time, the others
    // are 429 at once.
    let pulls = (0..24).map(|_| pull(c, &alice, Uuid::new_v4(), None, Some(5000)));
    let statuses: Vec<u16> = futures::future::join_all(pulls)
        .await
        .iter()
        .map(|r| r.status.as_u16())
        .collect();
    let served = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        served >= 1 && statuses.contains(&429) && statuses.iter().all(|s| [200, 429].contains(s)),
        "{statuses:?}"
    );

    // 24 accounts that see the baby pull it at once, while a victim asks for
    // something else: the pulls share half the pool and all finish; the
    // victim is served meanwhile.
    let mut readers = vec![];
    for i in 0..24 {
        let token = sign(TEST_SECRET, &format!("reader-{i}"), json!({}));
        readers.push(share(c, &alice, &baby, token, "viewer").await);
    }
    let before = server.rss_mib();
    let pulls = readers
        .iter()
        .map(|t| pull(c, t, Uuid::new_v4(), None, Some(5000)));
    let victim = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        let me = c
            .get("/api/me", &sign(TEST_SECRET, "victim", json!({})))
            .await;
        (me.status, started.elapsed().as_millis())
    };
    let (results, (victim_status, victim_ms)) =
        tokio::join!(futures::future::join_all(pulls), victim);
    for r in &results {
        assert_eq!(
            r.status,
            200,
            "{}",
            r.text.chars().take(300).collect::<String>()
        );
    }
    assert_eq!(victim_status, 200);
    let peak = server.peak_rss_mib();
    eprintln!(
        "big pulls: RSS {before:.1} MiB before, peak {peak:.1} MiB with 24 pulls of ~4 MiB pages; victim served in {victim_ms} ms"
    );
    assert!(peak < 320.0, "peak RSS {peak:.1} MiB");
    let me = c
        .get("/api/me", &sign(TEST_SECRET, "victim", json!({})))
        .await;
    assert_eq!(me.status, 200);

    // A reader that stops reading: two big pulls pipelined on one connection
    // with a tiny receive window, never read. The server drops the
    // connection once its response has waited `HTTP_IDLE_TIMEOUT_SECS`,
    // rather than holding it and its buffers for ever.
    let mut env = load_env(&db);
    env.push(("HTTP_IDLE_TIMEOUT_SECS", "2".into()));
    let strict = ServerProcess::start(db.dir.path(), &as_refs(&env));
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let mut conn = socket.connect(strict.addr).await.unwrap();
    let body =
        json!({"protocolVersion": 1, "clientId": Uuid::new_v4(), "cursor": null, "limit": 5000})
            .to_string();
    let request = format!(
        "POST /api/sync/pull HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {alice}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(format!("{request}{request}").as_bytes())
        .await
        .unwrap();
    let port = strict.addr.port();
    let started = Instant::now();
    while held_connections(port) == 0 && started.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        held_connections(port),
        1,
        "the server holds the unread connection at first"
    );
    while held_connections(port) > 0 && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        held_connections(port),
        0,
        "the server let go of a connection nobody reads"
    );
    eprintln!(
        "an unread response was dropped after {} ms",
        started.elapsed().as_millis()
    );
    drop(conn);
}

/// The server's own sockets on `port` that carry a connection (an open file
/// of the process: `/proc/net/tcp` shows an inode; the listener excluded).
fn held_connections(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 9 && f[1].ends_with(&local) && f[3] == "01" && f[9] != "0")
        .count()
}

/// Request bodies may come gzip-compressed; other encodings are 415; a gzip
/// bomb is 413 after the limit; nothing of a refused body is written.
async fn compressed_request_bodies(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let client = Uuid::new_v4();
    // Responses: by the client's Accept-Encoding, br or gzip; none unasked.
    for (asked, given) in [
        ("br", Some("br")),
        ("gzip", Some("gzip")),
        ("identity", None),
    ] {
        let r = app
            .http
            .get(app.url("/openapi.json"))
            .header("accept-encoding", asked)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let got = r
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(got.as_deref(), given, "asked {asked}");
    }
    let send = |encoding: &'static str, body: Vec<u8>| {
        let req = app
            .http
            .post(app.url(PUSH))
            .bearer_auth(&alice)
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(body);
        async move { Client::read(req.send().await.unwrap()).await }
    };
    let one = |mid: i64| {
        serde_json::to_vec(&json!({"protocolVersion": 1, "clientId": client,
            "mutations": [feed(mid, Uuid::new_v4(), &baby)]}))
        .unwrap()
    };
    let r = send("gzip", gzip(&one(1))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["results"][0]["status"], "applied");
    send("br", one(2))
        .await
        .assert_error(415, "unsupported_media_type");
    send("deflate", one(2))
        .await
        .assert_error(415, "unsupported_media_type");
    send("gzip", b"not gzip at all".to_vec())
        .await
        .assert_error(400, "invalid_request");
    // 64 MiB of spaces inside a valid document: about 64 KiB compressed.
    let mut doc = one(2);
    doc.splice(1..1, std::iter::repeat_n(b' ', 64 * 1024 * 1024));
    let bomb = gzip(&doc);
    assert!(bomb.len() < 1024 * 1024);
    let r = send("gzip", bomb).await;
    r.assert_error(413, "payload_too_large");
    let r = send("identity", one(2)).await;
    assert_eq!(r.body["results"][0]["status"], "applied", "{}", r.text);
    assert_eq!(
        r.body["lastMutationId"], 2,
        "refused bodies changed nothing"
    );
}

/// A rate-limited request is refused before any database work.
async fn the_rate_limit_comes_before_the_database(backend: Backend) {
    let (app, statements) = spawn_recording_app_with(backend, |c| {
        c.rate_limit_per_sec = 0.5;
        c.rate_limit_burst = 1;
    })
    .await;
    let mallory = app.token("mallory");
    assert_eq!(app.get("/api/me", &mallory).await.status, 200);
    statements.lock().unwrap().clear();
    for _ in 0..5 {
        let r = app.get("/api/babies", &mallory).await;
        r.assert_error(429, "rate_limited");
        assert!(r.headers.contains_key("retry-after"));
    }
    assert!(
        statements.lock().unwrap().is_empty(),
        "refused requests ran {:?}",
        statements.lock().unwrap()
    );
}

/// An identity provider that answers slowly stalls only the tokens with an
/// unknown `kid`, never a valid login.
async fn a_slow_jwks_refetch_stalls_no_valid_login(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (key, jwk) = jwk_for(dir.path(), "k1");
    let jwks = JwksServer::start(json!({"keys": [jwk]})).await;
    let app = jwks.app(backend).await;
    let token = |kid: &str, sub: &str| {
        encode(
            jsonwebtoken::Algorithm::EdDSA,
            &key,
            Some(kid),
            &claims(sub),
        )
    };
    assert_eq!(app.get("/api/me", &token("k1", "victim")).await.status, 200);
    jwks.delay_ms.store(3000, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let attacker = {
        let (c, t) = (app.client.clone(), token("unknown", "mallory"));
        tokio::spawn(async move { c.get("/api/me", &t).await })
    };
    while jwks.hits.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = app.get("/api/me", &token("k1", "victim")).await;
    assert_eq!(r.status, 200);
    assert!(
        !attacker.is_finished(),
        "the valid login was answered while the refetch was still running"
    );
    let a = attacker.await.unwrap();
    assert_eq!(a.status, 401);
}

/// A leap second is refused on both databases (PostgreSQL would store it as
/// the next second).
async fn leap_seconds_are_refused(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let mut m = feed(1, Uuid::new_v4(), &baby);
    m["data"]["startedAt"] = json!("2016-12-31T23:59:60.500Z");
    let mut n = feed(2, Uuid::new_v4(), &baby);
    n["data"]["startedAt"] = json!("2016-12-31T23:00:00.000Z");
    n["data"]["endedAt"] = json!("2016-12-31T23:59:60Z");
    let r = push(&app, &alice, Uuid::new_v4(), vec![m, n]).await;
    for i in 0..2 {
        assert_eq!(r.body["results"][i]["code"], "invalid", "{}", r.text);
        assert!(
            r.body["results"][i]["message"]
                .as_str()
                .unwrap()
                .contains("leap second")
        );
    }
    assert!(stored_rows(app.db.primary()).await.is_empty());
}

/// Request ids are taken only when short and visible; a client's mistakes
/// are never logged at ERROR.
async fn request_ids_and_log_levels(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = db_env(&db);
    let server = ServerProcess::start(db.dir.path(), &as_refs(&env));
    let c = &server.client;
    let alice = sign(TEST_SECRET, "alice", json!({}));
    let with_id = |id: String| {
        let req = c.http.get(c.url("/health/live")).header("x-request-id", id);
        async move {
            req.send().await.unwrap().headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(with_id("req-1".into()).await, "req-1");
    let long = "a".repeat(129);
    let made = with_id(long.clone()).await;
    assert_eq!(made.len(), 36, "a fresh id instead of {long}");
    assert_ne!(with_id("has space".into()).await, "has space");
    assert_eq!(with_id("x".repeat(128)).await, "x".repeat(128));

    let client = Uuid::new_v4();
    let baby = baby_id(c, &alice, "Ada").await;
    let r = push(c, &alice, client, vec![feed(5, Uuid::new_v4(), &baby)]).await;
    r.assert_error(409, "out_of_order");
    let r = pull(c, &alice, client, Some("garbage"), None).await;
    r.assert_error(400, "invalid_request");
    assert_eq!(
        push(c, &alice, client, vec![feed(1, Uuid::new_v4(), &baby)])
            .await
            .status,
        200
    );
    let bob = sign(TEST_SECRET, "bob", json!({}));
    pull(c, &bob, client, None, None)
        .await
        .assert_error(403, "forbidden");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = server.logs();
    assert!(
        !logs.iter().any(|l| l.contains(&long)),
        "a refused id is never logged"
    );
    for line in &logs {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_ne!(
            v["level"], "ERROR",
            "a client's mistake logged at ERROR: {line}"
        );
    }
    assert!(
        logs.iter().any(|l| l.contains("\"status\":409")),
        "{logs:?}"
    );
}

/// CORS as OPERATIONS.md says: preflights from an allowed origin are
/// answered, other origins get no CORS headers, and without the setting no
/// CORS header is ever sent.
async fn cors_follows_the_setting(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.cors_allowed_origins = Some("https://app.example, http://localhost:5173".into());
    })
    .await;
    let preflight = |origin: &'static str| {
        app.http
            .request(Method::OPTIONS, app.url(PUSH))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,content-encoding",
            )
            .send()
    };
    let r = preflight("https://app.example").await.unwrap();
    assert!(matches!(r.status().as_u16(), 200 | 204), "{}", r.status());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    let methods = h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_ascii_uppercase();
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(methods.contains(m), "{methods}");
    }
    let headers = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in [
        "authorization",
        "content-type",
        "content-encoding",
        "x-request-id",
    ] {
        assert!(headers.contains(name), "{headers}");
    }
    assert!(h.contains_key("access-control-max-age"));
    assert!(!h.contains_key("access-control-allow-credentials"));
    let r = preflight("https://evil.example").await.unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));

    let r = app
        .http
        .get(app.url("/api/me"))
        .bearer_auth(app.token("alice"))
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("x-request-id") && exposed.contains("retry-after"),
        "{exposed}"
    );

    let plain = spawn_app(backend).await;
    let r = plain
        .http
        .get(plain.url("/api/me"))
        .bearer_auth(plain.token("alice"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
}

/// Summaries, exports and imports, from an attacker's side: ranges beyond
/// 92 dates are refused before any database work; another family's baby is
/// a 404 to read and a 409 to import over (its entries are never shown);
/// an import over its limit, plainly or as a gzip bomb, is a 413 after the
/// limit's bytes and writes nothing.
async fn summaries_exports_and_imports_are_bounded(backend: Backend) {
    let app = spawn_app_with(backend, |c| c.import_body_limit_bytes = 256 * 1024).await;
    let (alice, mallory) = (app.token("alice"), app.token("mallory"));
    let baby = baby_id(&app, &alice, "Ada").await;
    let feed_id = Uuid::new_v4();
    assert_all_applied(&push(&app, &alice, Uuid::new_v4(), vec![feed(1, feed_id, &baby)]).await);
    for query in [
        "from=1900-01-01&to=2026-12-01",
        "from=2026-01-01&to=2026-04-03",
        "from=0001-01-01&to=9999-12-31",
    ] {
        let r = app
            .get(&format!("/api/babies/{baby}/summary?{query}"), &alice)
            .await;
        assert_eq!(r.status, 400, "{query}");
        assert_eq!(r.body["error"]["details"]["field"], "to");
    }
    for path in [
        format!("/api/babies/{baby}/summary"),
        format!("/api/babies/{baby}/export"),
        format!("/api/babies/{baby}/export?format=csv&kind=feed_log"),
    ] {
        let r = app.get(&path, &mallory).await;
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.text.contains(&feed_id.to_string()));
    }
    // Mallory's own export, rewritten to claim Alice's baby, or to slip
    // Alice's entry id into her own baby.
    let mine = baby_id(&app, &mallory, "Mo").await;
    let r = app
        .get(&format!("/api/babies/{mine}/export"), &mallory)
        .await;
    let mut doc = r.body.clone();
    doc["baby"]["id"] = json!(baby);
    let r = app.post("/api/babies/import", &mallory, doc).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_error_body(&r.body, "conflict");
    let mut doc = app
        .get(&format!("/api/babies/{mine}/export"), &mallory)
        .await
        .body;
    doc["entries"]["feed_log"] = json!([{"id": feed_id, "babyId": mine, "method": "bottle", "startedAt": T0, "amountMl": 1}]);
    let r = app.post("/api/babies/import", &mallory, doc).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["error"]["details"]["field"], "entries/feed_log/0/id");
    assert!(!r.text.contains("amountMl"), "nothing of Alice's entry");
    // An event in Mallory's file aimed at Alice's timer: refused, nothing
    // stored (an import adds events only to timers it adds).
    let timer = Uuid::new_v4();
    assert_all_applied(
        &push(
            &app,
            &alice,
            Uuid::new_v4(),
            vec![create(
                1,
                "sleep_log",
                json!({"id": timer, "babyId": baby, "startedAt": T0, "timerState": "running"}),
            )],
        )
        .await,
    );
    let mut doc = app
        .get(&format!("/api/babies/{mine}/export"), &mallory)
        .await
        .body;
    doc["entries"]["timer_event"] = json!([{"id": Uuid::new_v4(), "babyId": mine, "startedAt": T0,
        "entryEntity": "sleep_log", "entryId": timer, "action": "stop"}]);
    let r = app.post("/api/babies/import", &mallory, doc).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.body["error"]["details"]["field"],
        "entries/timer_event/0/entryId"
    );
    let r = app.get(&format!("/api/babies/{baby}/export"), &alice).await;
    assert_eq!(
        r.body["entries"]["sleep_log"][0]["timerState"], "running",
        "untouched"
    );
    let r = app.get(&format!("/api/babies/{baby}/export"), &alice).await;
    assert_eq!(
        r.body["entries"]["feed_log"][0]["amountMl"], 120,
        "untouched"
    );
    // Over the import's limit: plain, and a small gzip that inflates past it.
    let mut doc = app
        .get(&format!("/api/babies/{mine}/export"), &mallory)
        .await
        .body;
    doc["baby"]["name"] = json!("x".repeat(300 * 1024));
    let text = serde_json::to_vec(&doc).unwrap();
    let post = |body: Vec<u8>, gz: bool| {
        let mut req = app
            .http
            .post(app.url("/api/babies/import"))
            .bearer_auth(&mallory)
            .header("content-type", "application/json")
            .body(body);
        if gz {
            req = req.header("content-encoding", "gzip");
        }
        req.send()
    };
    let r = post(text.clone(), false).await.unwrap();
    assert_eq!(r.status(), 413);
    let bomb = gzip(&[text.clone(), vec![b' '; 64 * 1024 * 1024]].concat());
    assert!(bomb.len() < 1024 * 1024, "{}", bomb.len());
    let r = post(bomb, true).await.unwrap();
    assert_eq!(r.status(), 413);
    // Within the limit, a small gzip of a list of tiny values (each would
    // cost the server more than its two bytes): refused at the first one.
    let tiny = format!(
        r#"{{"format":"babysync-export","formatVersion":1,"exportedAt":"2026-12-01T00:00:00Z","baby":{{"id":"{}","name":"Tiny"}},"entries":{{"feed_log":[1{}]}}}}"#,
        Uuid::new_v4(),
        ",1".repeat(120 * 1024)
    );
    let tiny = gzip(tiny.as_bytes());
    assert!(tiny.len() < 4 * 1024, "{}", tiny.len());
    let r = post(tiny, true).await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["details"]["field"], "entries/feed_log/0");
    let r = app.get("/api/babies", &mallory).await;
    assert_eq!(
        r.body["babies"].as_array().unwrap().len(),
        1,
        "nothing imported"
    );
    // Other routes keep their own limit (2 MiB): the same body is read
    // there (and refused for what it says).
    let r = app
        .http
        .post(app.url("/api/babies"))
        .bearer_auth(&mallory)
        .header("content-type", "application/json")
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

both!(
    summaries_exports_and_imports_are_bounded,
    metrics_labels_come_from_fixed_sets,
    many_babies_cost_a_pull_nothing,
    open_invites_are_capped,
    a_one_use_invite_raises_one_caregiver,
    slow_bodies_hold_no_slot,
    slow_and_idle_connections_are_closed,
    open_connections_do_not_hold_up_shutdown,
    big_pulls_are_bounded,
    compressed_request_bodies,
    the_rate_limit_comes_before_the_database,
    a_slow_jwks_refetch_stalls_no_valid_login,
    leap_seconds_are_refused,
    request_ids_and_log_levels,
    cors_follows_the_setting,
);
