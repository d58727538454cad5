//! `GET /api/babies/{id}/summary` (PROTOCOL.md, "Summaries"), on both
//! databases: days in a time zone (23 and 25 hours across daylight-saving
//! changes), minutes split at local midnight, per-side breast minutes from
//! timer segments, entries in progress up to `asOf`, latest per kind,
//! running timers, medication doses, growth percentiles, and its 400s.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{both, helpers::*};

async fn summary(app: &TestApp, token: &str, baby: &str, query: &str) -> Resp {
    app.get(&format!("/api/babies/{baby}/summary?{query}"), token)
        .await
}

fn entry(kind: &str, data: Value) -> (String, Value) {
    let mut data = data;
    data["id"] = json!(Uuid::new_v4());
    (kind.to_owned(), data)
}

async fn log(app: &TestApp, token: &str, baby: &str, entries: Vec<(String, Value)>) {
    let mutations = entries
        .into_iter()
        .enumerate()
        .map(|(i, (kind, mut data))| {
            data["babyId"] = json!(baby);
            create(i as i64 + 1, &kind, data)
        })
        .collect();
    let r = push(app, token, Uuid::new_v4(), mutations).await;
    assert_all_applied(&r);
}

/// Days run from local midnight to local midnight: London's spring day has
/// 23 hours and its autumn day 25; time is split at midnight.
async fn days_follow_the_time_zone(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    log(
        &app,
        &alice,
        &baby,
        vec![
            // 22:00 GMT to 06:00 BST: 120 minutes on the 28th, 300 on the 29th.
            entry("sleep_log", json!({"startedAt": "2026-03-28T22:00:00Z", "endedAt": "2026-03-29T05:00:00Z"})),
            // The whole 25th of October in London (25 hours) and an hour of the 26th.
            entry("sleep_log", json!({"startedAt": "2026-10-24T23:00:00+01:00", "endedAt": "2026-10-26T01:00:00+00:00"})),
            // 22:00 to 06:00 UTC: the contract's example.
            entry("sleep_log", json!({"startedAt": "2026-11-01T22:00:00Z", "durationMinutes": 480})),
        ],
    )
    .await;
    let r = summary(
        &app,
        &alice,
        &baby,
        "from=2026-03-28&to=2026-03-29&tz=Europe/London",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let days = &r.body["days"];
    assert_eq!(days[0]["date"], "2026-03-28");
    assert_eq!(
        (&days[0]["sleep"]["minutes"], &days[1]["sleep"]["minutes"]),
        (&json!(120), &json!(300))
    );
    assert_eq!(days[0]["sleep"]["count"], 1);
    assert_eq!(
        days[0]["sleep"]["longestMinutes"], 420,
        "the whole sleep, to the day it started"
    );
    assert_eq!(days[1]["sleep"]["longestMinutes"], 0);
    let r = summary(
        &app,
        &alice,
        &baby,
        "from=2026-10-24&to=2026-10-26&tz=Europe/London",
    )
    .await;
    let days = &r.body["days"];
    let minutes: Vec<&Value> = (0..3).map(|i| &days[i]["sleep"]["minutes"]).collect();
    assert_eq!(
        minutes,
        [&json!(60), &json!(1500), &json!(60)],
        "{}",
        r.text
    );
    let r = summary(&app, &alice, &baby, "from=2026-11-01&to=2026-11-02").await;
    assert_eq!(r.body["tz"], "UTC");
    let days = &r.body["days"];
    assert_eq!(
        (&days[0]["sleep"]["minutes"], &days[1]["sleep"]["minutes"]),
        (&json!(120), &json!(360))
    );
    // Zeros where nothing happened, one element per date.
    let r = summary(
        &app,
        &alice,
        &baby,
        "from=2026-01-01&to=2026-04-01&tz=Asia/Tokyo",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["days"].as_array().unwrap().len(), 91);
    assert_eq!(
        r.body["days"][0],
        json!({"date": "2026-01-01", "feeds": {"count": 0, "bottleMl": 0, "breastMinutes": 0, "breastLeftMinutes": 0, "breastRightMinutes": 0},
               "sleep": {"count": 0, "minutes": 0, "longestMinutes": 0}, "nappies": {"count": 0, "wet": 0, "dirty": 0},
               "pumping": {"count": 0, "ml": 0}, "solids": {"count": 0}, "activities": {"count": 0, "minutes": 0},
               "medications": {"count": 0}})
    );
}

/// Each day's counts and sums, breast minutes per side from a timer's
/// segments, and a timer in progress counted up to `asOf`.
async fn a_day_adds_up(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let feed = Uuid::new_v4();
    let day = "2026-11-20";
    let at = |hm: &str| format!("{day}T{hm}:00.000Z");
    let mut entries = vec![
        entry(
            "feed_log",
            json!({"startedAt": at("01:00"), "method": "bottle", "amountMl": 120}),
        ),
        entry(
            "feed_log",
            json!({"startedAt": at("04:00"), "method": "bottle", "amountMl": 90, "notes": "x"}),
        ),
        entry(
            "feed_log",
            json!({"startedAt": at("06:00"), "method": "breast", "durationMinutes": 15, "startSide": "left"}),
        ),
        entry(
            "nappy_log",
            json!({"startedAt": at("02:00"), "type": "wee"}),
        ),
        entry(
            "nappy_log",
            json!({"startedAt": at("03:00"), "type": "mixed"}),
        ),
        entry(
            "nappy_log",
            json!({"startedAt": at("05:00"), "type": "poo"}),
        ),
        entry(
            "nappy_log",
            json!({"startedAt": at("05:30"), "type": "dry"}),
        ),
        entry(
            "pumping_log",
            json!({"startedAt": at("07:00"), "leftMl": 60, "rightMl": 70}),
        ),
        entry(
            "solids_log",
            json!({"startedAt": at("12:00"), "food": "pear"}),
        ),
        entry(
            "activity_log",
            json!({"startedAt": at("10:00"), "type": "bath", "durationMinutes": 20}),
        ),
        entry(
            "medication_log",
            json!({"startedAt": at("09:00"), "name": "Vitamin D"}),
        ),
    ];
    entries.push((
        "feed_log".into(),
        json!({"id": feed, "startedAt": at("08:00"), "method": "breast", "startSide": "left", "timerState": "running"}),
    ));
    log(&app, &alice, &baby, entries).await;
    let tap = |min: &str, action: &str, side: Option<&str>| {
        let mut e = json!({"id": Uuid::new_v4(), "babyId": baby, "startedAt": at(min),
            "entryEntity": "feed_log", "entryId": feed, "action": action});
        if let Some(s) = side {
            e["side"] = json!(s);
        }
        e
    };
    let r = push(
        &app,
        &alice,
        Uuid::new_v4(),
        vec![
            create(1, "timer_event", tap("08:10", "switchSide", Some("right"))),
            create(2, "timer_event", tap("08:25", "stop", None)),
        ],
    )
    .await;
    assert_all_applied(&r);
    // A sleep in progress since 30 minutes ago.
    let now = chrono::Utc::now();
    let since = now - chrono::Duration::minutes(30);
    let sleep = Uuid::new_v4();
    log(
        &app,
        &alice,
        &baby,
        vec![(
            "sleep_log".into(),
            json!({"id": sleep, "startedAt": since.to_rfc3339(), "timerState": "running"}),
        )],
    )
    .await;
    let r = summary(&app, &alice, &baby, &format!("from={day}&to={day}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["days"][0],
        json!({"date": day, "feeds": {"count": 4, "bottleMl": 210, "breastMinutes": 40, "breastLeftMinutes": 10, "breastRightMinutes": 15},
               "sleep": {"count": 0, "minutes": 0, "longestMinutes": 0}, "nappies": {"count": 4, "wet": 2, "dirty": 2},
               "pumping": {"count": 1, "ml": 130}, "solids": {"count": 1}, "activities": {"count": 1, "minutes": 20},
               "medications": {"count": 1}})
    );
    // Today: the sleep counts up to asOf.
    let r = summary(&app, &alice, &baby, "").await;
    let as_of: chrono::DateTime<chrono::Utc> = r.body["asOf"].as_str().unwrap().parse().unwrap();
    let want = ((as_of - since).num_milliseconds() + 30_000).div_euclid(60_000);
    let today = &r.body["days"][0];
    if since.date_naive() == as_of.date_naive() {
        assert_eq!(today["sleep"]["minutes"], want, "{}", r.text);
        assert_eq!(today["sleep"]["count"], 1);
    }
    assert_eq!(r.body["running"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["running"][0]["entity"], "sleep_log");
    assert_eq!(r.body["running"][0]["entry"]["id"], json!(sleep));
    // Latest per kind (timer_event has no key), on any date.
    let latest = r.body["latest"].as_object().unwrap();
    assert_eq!(latest.len(), 9, "{latest:?}");
    assert!(!latest.contains_key("timer_event"));
    assert_eq!(latest["feed_log"]["id"], json!(feed));
    assert_eq!(latest["sleep_log"]["id"], json!(sleep));
    assert_eq!(latest["growth_log"], Value::Null);
}

/// Doses: one element per name in any letter case, the interval and the
/// daily maximum both moving `nextAllowedAt`.
async fn medication_doses(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let now = chrono::Utc::now();
    let ago = |h: i64| {
        (now - chrono::Duration::hours(h)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    log(
        &app,
        &alice,
        &baby,
        vec![
            entry(
                "medication_log",
                json!({"startedAt": ago(20), "name": "paracetamol", "dose": 2.5, "doseUnit": "ml"}),
            ),
            entry(
                "medication_log",
                json!({"startedAt": ago(2), "name": "Paracetamol", "dose": 2.5, "doseUnit": "ml",
                "minIntervalMinutes": 240, "maxDosesPer24h": 2}),
            ),
            entry(
                "medication_log",
                json!({"startedAt": ago(30), "name": "ibuprofen", "minIntervalMinutes": 360}),
            ),
            entry(
                "medication_log",
                json!({"startedAt": ago(1), "name": "Vitamin D"}),
            ),
            entry(
                "medication_log",
                json!({"startedAt": ago(24 * 31), "name": "Old"}),
            ),
        ],
    )
    .await;
    let r = summary(&app, &alice, &baby, "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let meds = r.body["medications"].as_array().unwrap();
    let names: Vec<&str> = meds.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ibuprofen", "Paracetamol", "Vitamin D"]);
    assert_eq!(
        meds[1],
        json!({"name": "Paracetamol", "lastGivenAt": ago(2), "dosesLast24h": 2, "maxDosesPer24h": 2,
               "nextAllowedAt": ago(20 - 24)}),
        "the daily maximum is reached: the oldest dose's 24 h are later than the interval"
    );
    assert_eq!(meds[0]["nextAllowedAt"], json!(ago(30 - 6)));
    assert_eq!(meds[0]["dosesLast24h"], 0);
    assert_eq!(meds[2]["nextAllowedAt"], Value::Null, "sets neither");
}

/// The latest measurement of each kind, its age in the time zone, and the
/// WHO z-score and percentile; none without a gender the tables have.
async fn growth_percentiles(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.token("alice");
    let baby = Uuid::new_v4();
    let r = app
        .post(
            "/api/babies",
            &alice,
            json!({"id": baby, "name": "Ada", "birthDate": "2026-09-20", "gender": "female"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let baby = baby.to_string();
    log(
        &app,
        &alice,
        &baby,
        vec![
            entry(
                "growth_log",
                json!({"startedAt": "2026-11-10T10:00:00Z", "weightGrams": 4800, "lengthMm": 540}),
            ),
            // 61 days in Auckland, 60 in UTC.
            entry(
                "growth_log",
                json!({"startedAt": "2026-11-19T20:00:00Z", "weightGrams": 5230}),
            ),
            entry(
                "growth_log",
                json!({"startedAt": "2026-11-01T10:00:00Z", "headCircumferenceMm": 380}),
            ),
        ],
    )
    .await;
    let r = summary(&app, &alice, &baby, "tz=Pacific/Auckland").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let g = &r.body["growth"];
    let z = api::growth::z_score(
        api::growth::Indicator::Weight,
        api::growth::Sex::Female,
        61,
        5230.0,
    )
    .unwrap();
    assert_eq!(
        g["weight"],
        json!({"value": 5230, "unit": "g", "measuredAt": "2026-11-19T20:00:00.000Z", "ageDays": 61,
               "z": api::growth::round2(z), "percentile": api::growth::round1(api::growth::percentile(z))})
    );
    assert_eq!(g["length"]["value"], 540);
    assert_eq!(g["length"]["unit"], "mm");
    assert_eq!(g["headCircumference"]["ageDays"], 42);
    assert!(
        g["headCircumference"]["percentile"]
            .as_f64()
            .is_some_and(|p| (0.0..=100.0).contains(&p))
    );
    let r = summary(&app, &alice, &baby, "").await;
    assert_eq!(
        r.body["growth"]["weight"]["ageDays"], 60,
        "the measurement's date in UTC"
    );
    let r = app
        .patch(
            &format!("/api/babies/{baby}"),
            &alice,
            json!({"gender": "unknown"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = summary(&app, &alice, &baby, "").await;
    assert_eq!(
        (
            &r.body["growth"]["weight"]["z"],
            &r.body["growth"]["weight"]["percentile"]
        ),
        (&Value::Null, &Value::Null)
    );
}

/// Bad values are 400s naming them; another family's baby is 404.
async fn bad_queries_and_strangers(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    for (query, field) in [
        ("tz=Mars/Olympus", "tz"),
        ("tz=", "tz"),
        ("from=2026-13-01", "from"),
        ("from=2026-1-1", "from"),
        ("to=yesterday", "to"),
        ("from=2026-11-02&to=2026-11-01", "to"),
        ("from=2026-01-01&to=2026-04-03", "to"),
        ("tz=UTC&tz=Europe/London", "tz"),
    ] {
        let r = summary(&app, &alice, &baby, query).await;
        assert_eq!(r.status, 400, "{query}: {}", r.text);
        assert_error_body(&r.body, "invalid_request");
        assert_eq!(r.body["error"]["details"]["field"], field, "{query}");
    }
    let r = summary(&app, &alice, &baby, "from=2026-01-01&to=2026-04-02").await;
    assert_eq!(r.status, 200, "92 dates: {}", r.text);
    assert_eq!(r.body["days"].as_array().unwrap().len(), 92);
    let mallory = app.token("mallory");
    let r = summary(&app, &mallory, &baby, "").await;
    assert_eq!(r.status, 404);
    assert_error_body(&r.body, "not_found");
    let r = summary(&app, &alice, &Uuid::new_v4().to_string(), "").await;
    assert_eq!(r.status, 404);
}

/// A range is read in pages of 2,000 rows: a day with 2,100 nappies counts
/// every one of them.
async fn a_busy_day_is_read_in_pages(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let client = Uuid::new_v4();
    let mut mid = 0;
    for n in [1000, 1000, 100] {
        let batch = (0..n)
            .map(|i| {
                mid += 1;
                let t = format!(
                    "2026-11-20T{:02}:{:02}:{:02}.000Z",
                    i % 24,
                    (i / 24) % 60,
                    i % 60
                );
                create(
                    mid,
                    "nappy_log",
                    json!({"id": Uuid::new_v4(), "babyId": baby, "startedAt": t, "type": "wee"}),
                )
            })
            .collect();
        assert_all_applied(&push(&app, &alice, client, batch).await);
    }
    let r = summary(&app, &alice, &baby, "from=2026-11-20&to=2026-11-20").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["days"][0]["nappies"],
        json!({"count": 2100, "wet": 2100, "dirty": 0})
    );
}

/// What began long before a range still counts in it: an entry of days
/// (read through the index of entries longer than 24 hours), one of 30
/// hours (within the 48-hour lookback), and a timer still running (read
/// through the index of timers in progress, which also lists it for a
/// range that ends before it started).
async fn what_began_long_before_the_range_counts(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let timer = Uuid::new_v4();
    log(
        &app,
        &alice,
        &baby,
        vec![
            entry("sleep_log", json!({"startedAt": "2026-11-01T00:00:00Z", "endedAt": "2026-11-05T00:00:00Z"})),
            entry("activity_log", json!({"type": "outdoorPlay", "startedAt": "2026-11-01T00:00:00Z", "endedAt": "2026-11-04T12:00:00Z"})),
            entry("sleep_log", json!({"startedAt": "2026-11-20T00:00:00Z", "endedAt": "2026-11-21T06:00:00Z"})),
            (
                "sleep_log".into(),
                json!({"id": timer, "startedAt": "2026-11-10T00:00:00Z", "timerState": "running"}),
            ),
        ],
    )
    .await;
    let day = |r: &Resp| {
        let d = &r.body["days"][0];
        (
            d["sleep"]["minutes"].clone(),
            d["sleep"]["count"].clone(),
            d["activities"]["minutes"].clone(),
        )
    };
    let r = summary(&app, &alice, &baby, "from=2026-11-04&to=2026-11-04").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(day(&r), (json!(1440), json!(0), json!(720)), "{}", r.text);
    let r = summary(&app, &alice, &baby, "from=2026-11-15&to=2026-11-15").await;
    assert_eq!(day(&r), (json!(1440), json!(0), json!(0)), "{}", r.text);
    assert_eq!(r.body["running"][0]["entry"]["id"], json!(timer));
    let r = summary(&app, &alice, &baby, "from=2026-11-21&to=2026-11-21").await;
    assert_eq!(
        day(&r),
        (json!(1440 + 360), json!(0), json!(0)),
        "the timer's whole day and the 30-hour sleep's last 6 hours: {}",
        r.text
    );
    // A range before the timer started: not counted, but listed as running.
    let r = summary(&app, &alice, &baby, "from=2026-11-05&to=2026-11-06").await;
    assert_eq!(r.body["days"][1]["sleep"]["minutes"], 0, "{}", r.text);
    assert_eq!(r.body["running"].as_array().unwrap().len(), 1, "{}", r.text);
    assert_eq!(r.body["running"][0]["entry"]["id"], json!(timer));
}

/// Thirty days of doses are read in pages of 2,000 too: 2,100 doses of
/// one medicine, the latest of them read last.
async fn many_doses_are_read_in_pages(backend: Backend) {
    let (app, alice, baby) = spawn_with_baby(backend).await;
    let client = Uuid::new_v4();
    let first = chrono::Utc::now() - chrono::Duration::days(10);
    let mut mid = 0;
    let mut last = String::new();
    for n in [1000, 1000, 100] {
        let batch = (0..n)
            .map(|_| {
                mid += 1;
                last = (first + chrono::Duration::minutes(mid))
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                create(
                    mid,
                    "medication_log",
                    json!({"id": Uuid::new_v4(), "babyId": baby, "startedAt": last,
                           "name": if mid % 2 == 0 { "Vitamin D" } else { "vitamin d" },
                           "minIntervalMinutes": 60}),
                )
            })
            .collect();
        assert_all_applied(&push(&app, &alice, client, batch).await);
    }
    let r = summary(&app, &alice, &baby, "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let meds = r.body["medications"].as_array().unwrap();
    assert_eq!(meds.len(), 1, "{}", r.text);
    assert_eq!(meds[0]["name"], "Vitamin D", "the latest dose's spelling");
    assert_eq!(meds[0]["lastGivenAt"], json!(last));
    assert_eq!(meds[0]["dosesLast24h"], 0);
}

both!(
    many_doses_are_read_in_pages,
    what_began_long_before_the_range_counts,
    a_busy_day_is_read_in_pages,
    days_follow_the_time_zone,
    a_day_adds_up,
    medication_doses,
    growth_percentiles,
    bad_queries_and_strangers,
);
