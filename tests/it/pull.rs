//! Pull: first sync, incremental sync, paging, tombstones, revocation, newly
//! shared babies, bad cursors, and never skipping a concurrent write.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{both, helpers::*};

fn ids(es: &[(String, Value)]) -> HashSet<(String, String)> {
    es.iter()
        .map(|(k, e)| (k.clone(), e["id"].as_str().unwrap().to_owned()))
        .collect()
}

async fn first_sync_sends_everything(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let b1 = create_baby(&app, &alice, "Ada").await;
    let b2 = create_baby(&app, &alice, "Bo").await;
    let (one, two) = (b1["id"].as_str().unwrap(), b2["id"].as_str().unwrap());
    let client = Uuid::new_v4();
    let (f, s, n) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut full = feed(1, f, one);
    full["data"]["endedAt"] = json!("2026-11-20T07:25:00+00:00");
    full["data"]["durationMinutes"] = json!(20);
    full["data"]["isEstimated"] = json!(true);
    full["data"]["estimatedSource"] = json!("scale");
    full["data"]["endSide"] = json!("left");
    full["data"]["notes"] = json!("good feed");
    push(
        &app,
        &alice,
        client,
        vec![full, sleep(2, s, one), nappy(3, n, two)],
    )
    .await;

    let r = pull(&app, &alice, client, None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b = &r.body;
    assert_eq!(b["hasMore"], false);
    assert_eq!(b["lastMutationId"], 3);
    assert_eq!(b["revokedBabyIds"], json!([]));
    assert_eq!(b["babies"], json!([b1, b2]));
    assert!(b["cursor"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(
        b["changes"]["feed_log"][0],
        json!({"id": f, "babyId": one, "startedAt": "2026-11-20T07:05:00.000Z", "method": "bottle",
               "endedAt": "2026-11-20T07:25:00.000Z", "durationMinutes": 20, "amountMl": 120,
               "isEstimated": true, "estimatedSource": "scale", "endSide": "left", "notes": "good feed",
               "startSide": null, "timerState": null, "segments": null,
               "loggedBy": "alice", "createdAt": b["changes"]["feed_log"][0]["createdAt"],
               "updatedAt": b["changes"]["feed_log"][0]["createdAt"], "archivedAt": null, "version": 1})
    );
    let sl = &b["changes"]["sleep_log"][0];
    let mut keys: Vec<&str> = sl.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "archivedAt",
            "babyId",
            "createdAt",
            "durationMinutes",
            "endedAt",
            "id",
            "loggedBy",
            "notes",
            "segments",
            "startedAt",
            "timerState",
            "updatedAt",
            "version"
        ]
    );
    assert_eq!(
        (sl["version"].as_i64(), sl["durationMinutes"].as_i64()),
        (Some(2), Some(115))
    );
    let np = &b["changes"]["nappy_log"][0];
    assert_eq!(
        (
            np["type"].as_str(),
            np["colour"].as_str(),
            np["consistency"].as_str()
        ),
        (Some("poo"), Some("yellow"), Some("mushy"))
    );
    assert_eq!(np["version"], 1, "versions are per baby");

    // Nothing new: an empty page, the same babies.
    let again = pull(&app, &alice, client, b["cursor"].as_str(), None).await;
    assert!(entries(&again).is_empty());
    assert_eq!(again.body["babies"].as_array().unwrap().len(), 2);
    // A client the server has not seen: lastMutationId 0; another user's: 403.
    assert_eq!(
        pull(&app, &alice, Uuid::new_v4(), None, None).await.body["lastMutationId"],
        0
    );
    pull(&app, &app.token("bob"), client, None, None)
        .await
        .assert_error(403, "forbidden");
    // Bob sees none of it.
    let r = pull(&app, &app.token("bob"), Uuid::new_v4(), None, None).await;
    assert!(entries(&r).is_empty());
    assert_eq!(r.body["babies"], json!([]));
}

async fn incremental_sync_after_another_caregivers_pushes(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let baby = create_baby_id(&app, &alice, "Ada").await;
    let bob = share(&app, &alice, &baby, app.token("bob"), "editor").await;
    let (ca, cb) = (Uuid::new_v4(), Uuid::new_v4());
    let f = Uuid::new_v4();
    push(&app, &alice, ca, vec![feed(1, f, &baby)]).await;
    let first = pull(&app, &alice, ca, None, None).await;
    assert_eq!(entries(&first).len(), 1);
    let cursor = first.body["cursor"].as_str().unwrap().to_owned();

    let s = Uuid::new_v4();
    push(
        &app,
        &bob,
        cb,
        vec![
            sleep(1, s, &baby),
            update(2, "feed_log", json!({"id": f, "amountMl": 60})),
        ],
    )
    .await;
    let r = pull(&app, &alice, ca, Some(&cursor), None).await;
    let es = entries(&r);
    assert_eq!(
        ids(&es),
        HashSet::from([
            ("feed_log".into(), f.to_string()),
            ("sleep_log".into(), s.to_string())
        ])
    );
    assert_eq!(r.body["changes"]["sleep_log"][0]["loggedBy"], "bob");
    assert_eq!(r.body["changes"]["feed_log"][0]["amountMl"], 60);
    assert_eq!(
        r.body["changes"]["feed_log"][0]["loggedBy"], "alice",
        "loggedBy is the creator"
    );
    assert_eq!(r.body["changes"]["feed_log"][0]["version"], 3);
    assert_eq!(r.body["lastMutationId"], 1, "alice's own client");
}

async fn paging_with_a_small_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let client = Uuid::new_v4();
    let mut expected = HashSet::new();
    let mut next = 1;
    for name in ["A", "B", "C"] {
        let baby = create_baby_id(&app, &alice, name).await;
        let batch: Vec<Value> = (0..40)
            .map(|i| {
                let id = Uuid::new_v4();
                let (m, kind) = match i % 3 {
                    0 => (feed(next + i, id, &baby), "feed_log"),
                    1 => (sleep(next + i, id, &baby), "sleep_log"),
                    _ => (nappy(next + i, id, &baby), "nappy_log"),
                };
                expected.insert((kind.to_owned(), id.to_string()));
                m
            })
            .collect();
        next += 40;
        assert_eq!(push(&app, &alice, client, batch).await.status, 200);
    }
    let (cursor, pages) = pull_all(&app, &alice, client, None, 7).await;
    assert_eq!(pages.len(), 18, "120 entries in pages of 7");
    assert!(pages[..17].iter().all(|p| p.len() == 7));
    // Within a page each kind's list is in version order per baby; every
    // page starts above where the one before ended, per baby.
    let mut high: HashMap<String, i64> = HashMap::new();
    for page in &pages {
        let mut page_high: HashMap<String, i64> = HashMap::new();
        let mut kind_last: HashMap<(String, String), i64> = HashMap::new();
        for (kind, e) in page {
            let (baby, v) = (
                e["babyId"].as_str().unwrap().to_owned(),
                e["version"].as_i64().unwrap(),
            );
            let prev = kind_last.insert((kind.clone(), baby.clone()), v);
            assert!(prev.is_none_or(|p| p < v), "version order within {kind}");
            assert!(
                high.get(&baby).is_none_or(|h| *h < v),
                "no version at or below an earlier page's"
            );
            let h = page_high.entry(baby).or_insert(v);
            *h = (*h).max(v);
        }
        high.extend(page_high);
    }
    let all: Vec<(String, Value)> = pages.into_iter().flatten().collect();
    let got = ids(&all);
    assert_eq!(all.len(), got.len(), "no entry twice");
    assert_eq!(got, expected, "none missing");
    let r = pull(&app, &alice, client, Some(&cursor), Some(7)).await;
    assert!(entries(&r).is_empty());
    assert_eq!(r.body["hasMore"], false);
    // limit 1 pages one entry at a time; default limit takes everything.
    let r = pull(&app, &alice, client, None, Some(1)).await;
    assert_eq!(
        (entries(&r).len(), r.body["hasMore"].as_bool()),
        (1, Some(true))
    );
    let r = pull(&app, &alice, client, None, None).await;
    assert_eq!(
        (entries(&r).len(), r.body["hasMore"].as_bool()),
        (120, Some(false))
    );
}

async fn deletes_come_as_tombstones(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let baby = create_baby_id(&app, &alice, "Ada").await;
    let client = Uuid::new_v4();
    let f = Uuid::new_v4();
    push(&app, &alice, client, vec![feed(1, f, &baby)]).await;
    let c = pull(&app, &alice, client, None, None).await.body["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    push(&app, &alice, client, vec![delete(2, "feed_log", f)]).await;
    let r = pull(&app, &alice, client, Some(&c), None).await;
    let tomb = &r.body["changes"]["feed_log"][0];
    assert_eq!(tomb["id"], f.to_string());
    assert!(tomb["archivedAt"].is_string());
    assert_eq!(tomb["version"], 2);
    // A first sync includes tombstones too.
    let r = pull(&app, &alice, Uuid::new_v4(), None, None).await;
    assert!(r.body["changes"]["feed_log"][0]["archivedAt"].is_string());
}

async fn revoked_babies_are_named_once_and_never_sent_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let baby = create_baby_id(&app, &alice, "Ada").await;
    let bob = share(&app, &alice, &baby, app.token("bob"), "viewer").await;
    let own = create_baby_id(&app, &bob, "Bob's").await;
    let (ca, cb) = (Uuid::new_v4(), Uuid::new_v4());
    push(&app, &alice, ca, vec![feed(1, Uuid::new_v4(), &baby)]).await;
    let r = pull(&app, &bob, cb, None, None).await;
    assert_eq!(entries(&r).len(), 1);
    let cursor = r.body["cursor"].as_str().unwrap().to_owned();

    assert_eq!(
        app.delete(&format!("/api/babies/{baby}/caregivers/bob"), &alice)
            .await
            .status,
        204
    );
    push(&app, &alice, ca, vec![feed(2, Uuid::new_v4(), &baby)]).await;
    let r = pull(&app, &bob, cb, Some(&cursor), None).await;
    assert_eq!(r.body["revokedBabyIds"], json!([baby]));
    assert!(entries(&r).is_empty(), "{}", r.text);
    let listed: Vec<&str> = r.body["babies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [own.as_str()]);
    let cursor = r.body["cursor"].as_str().unwrap().to_owned();
    push(&app, &alice, ca, vec![feed(3, Uuid::new_v4(), &baby)]).await;
    let r = pull(&app, &bob, cb, Some(&cursor), None).await;
    assert_eq!(r.body["revokedBabyIds"], json!([]), "named once");
    assert!(entries(&r).is_empty());
    assert!(
        !r.text.contains(&baby),
        "nothing of that baby is sent again"
    );
}

async fn a_newly_shared_baby_arrives_with_its_history(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, bob) = (app.token("alice"), app.token("bob"));
    let baby = create_baby_id(&app, &alice, "Ada").await;
    let own = create_baby_id(&app, &bob, "Bob's").await;
    let (ca, cb) = (Uuid::new_v4(), Uuid::new_v4());
    let history: Vec<Value> = (1..=10).map(|i| feed(i, Uuid::new_v4(), &baby)).collect();
    push(&app, &alice, ca, history).await;
    push(&app, &bob, cb, vec![sleep(1, Uuid::new_v4(), &own)]).await;
    let r = pull(&app, &bob, cb, None, None).await;
    assert_eq!(entries(&r).len(), 1);
    let cursor = r.body["cursor"].as_str().unwrap().to_owned();
    share(&app, &alice, &baby, app.token("bob"), "viewer").await;
    let r = pull(&app, &bob, cb, Some(&cursor), None).await;
    let es = entries(&r);
    assert_eq!(es.len(), 10, "the whole history of the new baby");
    assert!(es.iter().all(|(_, e)| e["babyId"] == baby));
    assert_eq!(r.body["babies"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["babies"][1]["accessLevel"], "viewer");
}

async fn bad_cursors_and_requests_are_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, bob) = (app.token("alice"), app.token("bob"));
    let baby = create_baby_id(&app, &alice, "Ada").await;
    let client = Uuid::new_v4();
    push(&app, &alice, client, vec![feed(1, Uuid::new_v4(), &baby)]).await;
    let good = pull(&app, &alice, client, None, None).await.body["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut tampered: Vec<char> = good.chars().collect();
    tampered[5] = if tampered[5] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    use base64::Engine;
    let other_encoding = base64::engine::general_purpose::STANDARD
        .encode(json!({"babies": {baby.clone(): 0}}).to_string());
    for cursor in [
        json!(""),
        json!("garbage"),
        json!(tampered),
        json!(other_encoding),
        json!(42),
        json!({"v": 1}),
        json!(["x"]),
    ] {
        let r = app
            .post(
                "/api/sync/pull",
                &alice,
                json!({"protocolVersion": 1, "clientId": client, "cursor": cursor}),
            )
            .await;
        r.assert_error(400, "invalid_request");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("cursor"),
            "{}",
            r.text
        );
    }
    // Alice's cursor is not bob's.
    pull(&app, &bob, Uuid::new_v4(), Some(&good), None)
        .await
        .assert_error(400, "invalid_request");
    for body in [
        json!({"protocolVersion": 1, "clientId": client, "limit": 0}),
        json!({"protocolVersion": 1, "clientId": client, "limit": 5001}),
        json!({"protocolVersion": 1, "clientId": client, "limit": "10"}),
        json!({"protocolVersion": 1, "clientId": "nope"}),
        json!({"protocolVersion": 1, "clientId": client, "since": 0}),
        json!({"clientId": client}),
    ] {
        app.post("/api/sync/pull", &alice, body)
            .await
            .assert_error(400, "invalid_request");
    }
    app.post(
        "/api/sync/pull",
        &alice,
        json!({"protocolVersion": 2, "clientId": client}),
    )
    .await
    .assert_error(400, "unsupported_protocol_version");
    let r = pull(&app, &alice, client, None, Some(5000)).await;
    assert_eq!(r.status, 200);
}

/// Writers push through one server process while a reader pulls incrementally
/// through another: the reader ends with exactly the acknowledged entries.
async fn never_skips_a_concurrent_write(backend: Backend) {
    let db = TestDb::new(backend).await;
    let env = load_env(&db);
    let servers = ServerProcess::start_many(2, db.dir.path(), &as_refs(&env));
    let (writer_srv, reader_srv) = (servers[0].client.clone(), servers[1].client.clone());
    let token = |sub: &str| sign(TEST_SECRET, sub, json!({}));
    let alice = token("alice");
    let baby = baby_id(&writer_srv, &alice, "Ada").await;
    for sub in ["w1", "w2"] {
        let inv = create_invite(&writer_srv, &alice, &baby, "editor").await;
        accept_invite(&writer_srv, &token(sub), &inv.body["token"]).await;
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers = ["alice", "w1", "w2"].map(|sub| {
        let (c, t, baby) = (writer_srv.clone(), token(sub), baby.clone());
        tokio::spawn(async move {
            let client = Uuid::new_v4();
            let mut acked: HashMap<Uuid, i64> = HashMap::new();
            let mut mine: Vec<Uuid> = vec![];
            for round in 0..12i64 {
                let mut batch = vec![];
                for i in 0..8i64 {
                    let id = Uuid::new_v4();
                    mine.push(id);
                    batch.push(feed(round * 10 + i + 1, id, &baby));
                }
                // Updates of earlier entries make new versions of old ids.
                let old = mine[(round as usize * 5) % mine.len()];
                batch.push(update(
                    round * 10 + 9,
                    "feed_log",
                    json!({"id": old, "notes": format!("r{round}")}),
                ));
                batch.push(delete(
                    round * 10 + 10,
                    "feed_log",
                    mine[(round as usize * 3) % mine.len()],
                ));
                let r = push(&c, &t, client, batch.clone()).await;
                assert_eq!(r.status, 200, "{}", r.text);
                for (m, res) in batch.iter().zip(r.body["results"].as_array().unwrap()) {
                    if res["status"] == "applied" {
                        let id = Uuid::parse_str(m["data"]["id"].as_str().unwrap()).unwrap();
                        let v = res["version"].as_i64().unwrap();
                        let e = acked.entry(id).or_insert(v);
                        *e = (*e).max(v);
                    }
                }
            }
            acked
        })
    });
    let reader = {
        let (c, t, done) = (reader_srv.clone(), token("w1"), done.clone());
        tokio::spawn(async move {
            let client = Uuid::new_v4();
            let mut cursor: Option<String> = None;
            let mut seen: Vec<(Uuid, i64)> = vec![];
            let mut finished_passes = 0;
            loop {
                let stop = done.load(std::sync::atomic::Ordering::SeqCst);
                let r = pull(&c, &t, client, cursor.as_deref(), Some(25)).await;
                for (_, e) in entries(&r) {
                    seen.push((
                        Uuid::parse_str(e["id"].as_str().unwrap()).unwrap(),
                        e["version"].as_i64().unwrap(),
                    ));
                }
                cursor = Some(r.body["cursor"].as_str().unwrap().to_owned());
                if stop && r.body["hasMore"] == false {
                    finished_passes += 1;
                    if finished_passes == 2 {
                        return seen;
                    }
                }
            }
        })
    };
    let mut acked: HashMap<Uuid, i64> = HashMap::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.await.unwrap();

    let mut prev = 0;
    for (_, v) in &seen {
        assert!(
            *v > prev,
            "versions of one baby come strictly increasing: {v} after {prev}"
        );
        prev = *v;
    }
    let mut latest: BTreeMap<Uuid, i64> = BTreeMap::new();
    for (id, v) in &seen {
        latest.insert(*id, *v);
    }
    let acked: BTreeMap<Uuid, i64> = acked.into_iter().collect();
    assert_eq!(
        latest.len(),
        acked.len(),
        "the reader has exactly the acknowledged entries"
    );
    assert_eq!(latest, acked, "…each at its last acknowledged version");
}

/// Pull reads with a fixed number of statements whatever the number of
/// babies, and every log table is read through its (baby_id, version) index.
async fn pull_uses_the_version_index(backend: Backend) {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
    let (app, statements) = spawn_recording_app(backend).await;
    let alice = app.token("alice");
    let client = Uuid::new_v4();
    pull(&app, &alice, client, None, None).await; // loads the cursor key once
    // One baby with entries, then five more that have none: a pull's cost
    // grows with what it returns, not with how many babies the user has.
    let baby = create_baby_id(&app, &alice, "A").await;
    push(
        &app,
        &alice,
        client,
        vec![
            feed(1, Uuid::new_v4(), &baby),
            nappy(2, Uuid::new_v4(), &baby),
        ],
    )
    .await;
    let mut counts = vec![];
    for empty in [0, 5] {
        for _ in 0..empty {
            create_baby(&app, &alice, "Empty").await;
        }
        statements.lock().unwrap().clear();
        let r = pull(&app, &alice, client, None, None).await;
        assert_eq!(r.status, 200);
        assert_eq!(entries(&r).len(), 2);
        counts.push(statements.lock().unwrap().len());
    }
    assert_eq!(counts[0], counts[1], "{counts:?}");
    let recorded = statements.lock().unwrap().clone();
    let walks = recorded
        .iter()
        .filter(|s| s.sql.contains("\"version\" >") && !s.sql.contains("\"version\" >="))
        .count();
    assert_eq!(
        walks, 1,
        "one walk of the kinds' indexes for the one baby that changed"
    );
    // The page's rows are then read by (baby_id, version) ranges: one
    // statement for the page's window, with a part per kind it holds (a
    // feed and a nappy).
    let reads: Vec<Statement> = recorded
        .iter()
        .filter(|s| s.sql.contains("\"version\" >="))
        .cloned()
        .collect();
    assert_eq!(reads.len(), 1, "one range read for the page");
    assert!(
        reads[0].sql.contains("\"feed_log\"")
            && reads[0].sql.contains("\"nappy_log\"")
            && !reads[0].sql.contains("\"sleep_log\""),
        "{}",
        reads[0].sql
    );
    let scans = recorded
        .iter()
        .filter(|s| s.sql.contains("\"version\" >") && !s.sql.contains("\"version\" >="))
        .cloned()
        .chain(reads);
    for scan in scans {
        let txn = app.db.begin().await.unwrap();
        let backend = txn.get_database_backend();
        let explain = match backend {
            sea_orm::DbBackend::Postgres => {
                // The walk's settings: a page of one baby's rows is read
                // under them too.
                txn.execute_unprepared(
                    "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; \
                     SET LOCAL enable_sort = off",
                )
                .await
                .unwrap();
                format!("EXPLAIN {}", scan.sql)
            }
            _ => format!("EXPLAIN QUERY PLAN {}", scan.sql),
        };
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                explain,
                scan.values.clone().unwrap(),
            ))
            .await
            .unwrap();
        let plan: Vec<String> = rows
            .iter()
            .map(|r| {
                r.try_get::<String>("", "QUERY PLAN")
                    .or_else(|_| r.try_get::<String>("", "detail"))
                    .unwrap()
            })
            .collect();
        let plan = plan.join("\n");
        for table in ["feed_log", "nappy_log"]
            .iter()
            .filter(|t| scan.sql.contains(&format!("FROM \"{t}\"")))
        {
            assert!(
                plan.contains(&format!("{table}_baby_version")),
                "{table} is read by its (baby_id, version) index:\n{}\n{plan}",
                scan.sql
            );
        }
        assert!(
            plan.contains("_baby_version"),
            "the (baby_id, version) index is used:\n{}\n{plan}",
            scan.sql
        );
    }
}

/// Mutations 1.. for `baby` that between them write every kind, every enum
/// value, nulls, bounds (1900, 0, 2000), hostile free text, other offsets,
/// then an update that clears fields and a delete (the last two).
pub fn every_kind_of_value(baby: &str) -> Vec<Value> {
    use entity::enums::{FeedMethod, NappyColour, NappyConsistency, NappyType, Side};

    let hostile =
        "quote \" back \\ slash / new\nline\ttab \u{1}\u{1e}\u{1f}\u{7f} é 😀 \u{2028} null";
    let mut mutations = vec![];
    let mut mid = 0;
    let mut next = |kind: &str, data: Value| {
        mid += 1;
        let id = Uuid::new_v4();
        let mut data = data;
        data["id"] = json!(id);
        data["babyId"] = json!(baby);
        create(mid, kind, data)
    };
    for (i, m) in FeedMethod::NAMES.iter().enumerate() {
        mutations.push(next(
            "feed_log",
            json!({"method": m, "startedAt": "1900-01-01T00:00:00.000Z"}),
        ));
        mutations.push(next("feed_log", json!({
            "method": m, "startedAt": "2026-11-20T12:35:00.999+05:30",
            "endedAt": "2026-11-20T07:25:00.1Z", "durationMinutes": i, "amountMl": ([0, 2000, 7][i % 3]),
            "isEstimated": i % 2 == 0, "estimatedSource": hostile, "endSide": Side::NAMES[i % Side::NAMES.len()],
            "notes": hostile,
        })));
    }
    mutations.push(next("sleep_log", json!({"startedAt": T0})));
    mutations.push(next("sleep_log", json!({"startedAt": T0, "endedAt": "2026-11-20T09:00:00.010Z", "durationMinutes": 0, "notes": ""})));
    for (i, t) in NappyType::NAMES.iter().enumerate() {
        mutations.push(next("nappy_log", json!({
            "startedAt": T0, "type": t, "colour": NappyColour::NAMES[i % NappyColour::NAMES.len()],
            "consistency": NappyConsistency::NAMES[i % NappyConsistency::NAMES.len()], "notes": "null",
        })));
    }
    for (i, c) in NappyColour::NAMES
        .iter()
        .chain(NappyConsistency::NAMES)
        .enumerate()
    {
        let mut data =
            json!({"startedAt": T0, "type": NappyType::NAMES[i % NappyType::NAMES.len()]});
        data[if NappyColour::NAMES.contains(c) {
            "colour"
        } else {
            "consistency"
        }] = json!(c);
        mutations.push(next("nappy_log", data));
    }
    the_new_kinds(&mut next, hostile, &mut mutations);
    // An update that clears fields, and a delete (a tombstone).
    let first = Uuid::parse_str(mutations[1]["data"]["id"].as_str().unwrap()).unwrap();
    let n = mutations.len() as i64;
    mutations.push(update(
        n + 1,
        "feed_log",
        json!({"id": first, "notes": null, "endSide": null, "amountMl": 1}),
    ));
    let gone = Uuid::parse_str(mutations[0]["data"]["id"].as_str().unwrap()).unwrap();
    mutations.push(delete(n + 2, "feed_log", gone));
    mutations
}

/// Every value of the six kinds of issue 20, and timers with their events.
fn the_new_kinds(next: &mut impl FnMut(&str, Value) -> Value, hostile: &str, out: &mut Vec<Value>) {
    use entity::enums::{
        ActivityType, Allergen, DoseUnit, Reaction, Side, TemperatureSite, TimerAction,
    };
    for (i, (l, r)) in [
        (Some(0), None),
        (None, Some(1000)),
        (Some(1000), Some(1000)),
        (None, None),
    ]
    .into_iter()
    .enumerate()
    {
        let mut d = json!({"startedAt": T0, "endedAt": "2026-11-20T07:25:00.000Z", "durationMinutes": 1440, "startSide": Side::NAMES[i % 2]});
        if let Some(l) = l {
            d["leftMl"] = json!(l);
        }
        if let Some(r) = r {
            d["rightMl"] = json!(r);
        }
        if l.is_none() && r.is_none() {
            d["totalMl"] = json!(2000);
        }
        out.push(next("pumping_log", d));
    }
    out.push(next(
        "growth_log",
        json!({"startedAt": T0, "weightGrams": 300}),
    ));
    out.push(next("growth_log", json!({"startedAt": T0, "weightGrams": 40000, "lengthMm": 1300, "headCircumferenceMm": 650})));
    out.push(next(
        "growth_log",
        json!({"startedAt": T0, "lengthMm": 300, "headCircumferenceMm": 200, "notes": hostile}),
    ));
    for (i, unit) in DoseUnit::NAMES.iter().enumerate() {
        let dose = [0.001, 10000.0, 2.5, 5.0, 1.005, 120.125, 7.0][i % 7];
        out.push(next("medication_log", json!({
            "startedAt": T0, "name": hostile.chars().take(100).collect::<String>(), "dose": dose, "doseUnit": unit,
            "minIntervalMinutes": ([0, 10080, 240][i % 3]), "maxDosesPer24h": ([1, 24, 4][i % 3]),
        })));
    }
    out.push(next(
        "medication_log",
        json!({"startedAt": T0, "name": "x"}),
    ));
    for (i, site) in TemperatureSite::NAMES.iter().enumerate() {
        let celsius = [30.0, 45.0, 37.2, 38.5, 36.9][i % 5];
        out.push(next(
            "temperature_log",
            json!({"startedAt": T0, "celsius": celsius, "site": site}),
        ));
    }
    out.push(next(
        "temperature_log",
        json!({"startedAt": T0, "celsius": 37}),
    ));
    for (i, reaction) in Reaction::NAMES.iter().enumerate() {
        let allergens: Vec<&str> = Allergen::NAMES.iter().skip(i).step_by(2).copied().collect();
        out.push(next(
            "solids_log",
            json!({"startedAt": T0, "food": "pear", "reaction": reaction, "allergens": allergens}),
        ));
    }
    out.push(next(
        "solids_log",
        json!({"startedAt": T0, "food": "rice", "allergens": Allergen::NAMES}),
    ));
    out.push(next(
        "solids_log",
        json!({"startedAt": T0, "food": "🍐", "allergens": []}),
    ));
    for t in ActivityType::NAMES {
        out.push(next("activity_log", json!({"startedAt": T0, "type": t, "endedAt": "2026-11-20T08:05:00.000Z", "durationMinutes": 60})));
    }
    // Timers of each kind, with an event of every action.
    for (kind, extra) in [
        ("feed_log", json!({"method": "breast", "startSide": "left"})),
        ("sleep_log", json!({})),
        ("pumping_log", json!({"startSide": "right", "leftMl": 20})),
        ("activity_log", json!({"type": "tummyTime"})),
    ] {
        let mut d = extra;
        d["startedAt"] = json!(T0);
        d["timerState"] = json!("running");
        let timer = next(kind, d);
        let entry = timer["data"]["id"].clone();
        out.push(timer);
        let sided = kind == "feed_log" || kind == "pumping_log";
        for (i, action) in TimerAction::NAMES.iter().enumerate() {
            if *action == "switchSide" && !sided {
                continue;
            }
            let mut e = json!({
                "startedAt": format!("2026-11-20T07:{:02}:30.5Z", 10 + i),
                "entryEntity": kind, "entryId": entry, "action": action,
            });
            if *action == "switchSide" {
                e["side"] = json!("right");
            }
            out.push(next("timer_event", e));
        }
    }
}

/// The entries a pull sends are written by the server from each row's text
/// (not from the entity's model): they are exactly what serde makes of the
/// model read from the same row, for every kind, every enum value, nulls,
/// bounds, hostile text, other offsets, updates and deletes.
async fn pulled_entries_are_what_the_models_serialise(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let mutations = every_kind_of_value(&baby);
    let count = mutations.len();
    let r = push(&app, &alice, Uuid::new_v4(), mutations).await;
    assert_all_applied(&r);

    let r = pull(&app, &alice, Uuid::new_v4(), None, Some(5000)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut compared = 0;
    for (kind, entry) in try_entries(&r).unwrap() {
        let id = Uuid::parse_str(entry["id"].as_str().unwrap()).unwrap();
        // The registry's reading of the row: the kind's Model, by SeaORM.
        use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait, Query};
        let registered = api::kinds::Kind::parse(kind).unwrap();
        let query = Query::select()
            .column(Asterisk)
            .from(Alias::new(kind))
            .and_where(Expr::col(Alias::new("id")).eq(id))
            .to_owned();
        let txn = sea_orm::TransactionTrait::begin(app.db.primary())
            .await
            .unwrap();
        let model = registered
            .fetch(&txn, &query)
            .await
            .unwrap()
            .remove(0)
            .to_json();
        assert_eq!(entry, &model, "{kind}");
        compared += 1;
    }
    assert_eq!(
        compared,
        count - 2,
        "every entry once (the update and the delete change two)"
    );
    for (value, wire) in [
        ("dose", "0.001"),
        ("dose", "10000.0"),
        ("dose", "1.005"),
        ("celsius", "37.0"),
        ("celsius", "37.2"),
    ] {
        assert!(
            r.text.contains(&format!("\"{value}\":{wire}")),
            "{value} {wire}"
        );
    }
    assert!(r.text.contains(r#""allergens":[]"#));
    assert!(r.text.contains(r#""timerState":"stopped","segments":[{"endedAt":"2026-11-20T07:10:30.500Z","side":"left","startedAt":"2026-11-20T07:05:00.000Z"}"#));
    let text = r.text.as_str();
    assert!(
        text.contains(r#""startedAt":"2026-11-20T07:05:00.999Z""#),
        "offsets become UTC, milliseconds kept"
    );
    assert!(text.contains(r#""startedAt":"1900-01-01T00:00:00.000Z""#));
    assert!(text.contains(r#""endedAt":"2026-11-20T07:25:00.100Z""#));
    assert!(text.contains(r#""notes":"null""#) && text.contains(r#""notes":"""#));
}

both!(
    pulled_entries_are_what_the_models_serialise,
    pull_uses_the_version_index,
    first_sync_sends_everything,
    incremental_sync_after_another_caregivers_pushes,
    paging_with_a_small_limit,
    deletes_come_as_tombstones,
    revoked_babies_are_named_once_and_never_sent_again,
    a_newly_shared_baby_arrives_with_its_history,
    bad_cursors_and_requests_are_400,
    never_skips_a_concurrent_write,
);
