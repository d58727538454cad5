//! Issue 21's benchmarks: a baby with years of history, and what a family
//! reads from it.
//!
//! - **history-seed**: one user, a baby born `years` ago with exactly
//!   `entries` entries through push (batches of 1000 from a few clients, a
//!   client a stretch of whole days), every kind in a daily mix a tracking
//!   family writes (see [`day`]), timers folded from their events; and a
//!   second, empty baby of the same owner for `scripts/seed_copies.py` to fill.
//! - **summary**: `requests` sequential summaries of `days` dates each, their
//!   ranges spread evenly over the history, in a time zone; latency
//!   percentiles, overall and per fifth of the history.
//! - **export**: one JSON export, read as it streams (entries counted as
//!   they pass, optionally saved to a file), with the server's RSS sampled
//!   every 20 ms throughout and its peak (`VmHWM`, reset first).
//! - **import**: a saved export posted as a new user, with the server's RSS
//!   sampled and its peak against the body's size.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Duration as Span, NaiveDate, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Target, client, mark_load_done, percentile, proc_status_kib, push};

/// A small deterministic generator (xorshift64*), so every run seeds the same mix.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// In `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

fn wire(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The mutations' data of one day, in the order they are pushed: each entry
/// followed by its timer events.
struct Day {
    /// (entity, data)
    items: Vec<(&'static str, Value)>,
    cutoff: DateTime<Utc>,
    baby: String,
}

impl Day {
    /// Adds an entry (not after the cutoff); its id.
    fn entry(&mut self, entity: &'static str, at: DateTime<Utc>, mut data: Value) -> Option<Uuid> {
        let end = data
            .get("endedAt")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
        if at > self.cutoff || end.is_some_and(|e| e > self.cutoff) {
            return None;
        }
        let id = Uuid::now_v7();
        data["id"] = json!(id);
        data["babyId"] = json!(self.baby);
        data["startedAt"] = json!(wire(at));
        self.items.push((entity, data));
        Some(id)
    }

    /// Adds a timer event (not after the cutoff: the timer stays as it is).
    fn event(
        &mut self,
        entity: &str,
        entry: Uuid,
        at: DateTime<Utc>,
        action: &str,
        side: Option<&str>,
    ) {
        if at > self.cutoff {
            return;
        }
        let mut data = json!({"id": Uuid::now_v7(), "babyId": self.baby, "entryEntity": entity,
            "entryId": entry, "startedAt": wire(at), "action": action});
        if let Some(s) = side {
            data["side"] = json!(s);
        }
        self.items.push(("timer_event", data));
    }
}

fn other(side: &str) -> &'static str {
    if side == "left" { "right" } else { "left" }
}

/// About the WHO median for a girl: (age in days, value) of each measure.
const GROWTH: [(&str, &[(f64, f64)]); 3] = [
    (
        "weightGrams",
        &[
            (0.0, 3200.0),
            (182.0, 7300.0),
            (365.0, 8900.0),
            (730.0, 11500.0),
            (1095.0, 13900.0),
            (1461.0, 16100.0),
            (1826.0, 18200.0),
        ],
    ),
    (
        "lengthMm",
        &[
            (0.0, 491.0),
            (182.0, 657.0),
            (365.0, 740.0),
            (730.0, 864.0),
            (1095.0, 951.0),
            (1461.0, 1027.0),
            (1826.0, 1094.0),
        ],
    ),
    (
        "headCircumferenceMm",
        &[
            (0.0, 339.0),
            (182.0, 420.0),
            (365.0, 449.0),
            (730.0, 475.0),
            (1095.0, 487.0),
            (1461.0, 495.0),
            (1826.0, 502.0),
        ],
    ),
];

/// Piecewise-linear between (age in days, value) points.
fn by_age(points: &[(f64, f64)], age: f64) -> i64 {
    let mut prev = points[0];
    for &p in points {
        if age <= p.0 {
            let f = if p.0 > prev.0 {
                (age - prev.0) / (p.0 - prev.0)
            } else {
                0.0
            };
            return (prev.1 + f * (p.1 - prev.1)).round() as i64;
        }
        prev = p;
    }
    prev.1.round() as i64
}

/// One day of a family that logs everything, about 55 entries (100,000
/// entries are five years):
///
/// | kind | a day |
/// |---|---|
/// | feed_log | 8: 5 breast feeds as timers, 3 bottles |
/// | timer_event | about 25: a breast feed 2 side switches, a stop and one time in four a pause and resume; a sleep timer a stop and one time in two a pause and resume; a tummy time a stop |
/// | nappy_log | 7 |
/// | sleep_log | 5: the night (over midnight) and 3 naps as timers, 1 nap written after |
/// | pumping_log | 2 |
/// | solids_log | 3 |
/// | activity_log | 2: tummy time as a timer, a bath |
/// | medication_log | 1, paracetamol and ibuprofen in turn |
/// | temperature_log | 1 every third day or so |
/// | growth_log | 1 a week: weight, length and head circumference |
/// `n` numbers the day (weekly and alternating choices).
fn day(rng: &mut Rng, day: &mut Day, date: NaiveDate, n: i64) {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let at = |minutes: i64| midnight + Span::minutes(minutes);
    let j = |rng: &mut Rng, n: i64| rng.range(0, n);
    // Feeds every three hours.
    for i in 0..8 {
        let start = at(30 + i * 180 + j(rng, 40)) + Span::seconds(j(rng, 59));
        if [1, 4, 6].contains(&i) {
            let ml = rng.range(6, 24) * 10;
            day.entry(
                "feed_log",
                start,
                json!({"method": "bottle", "amountMl": ml, "endedAt": wire(start + Span::minutes(15))}),
            );
            continue;
        }
        let side = rng.pick(&["left", "right"]);
        let Some(id) = day.entry(
            "feed_log",
            start,
            json!({"method": "breast", "startSide": side, "timerState": "running"}),
        ) else {
            continue;
        };
        let len = rng.range(12, 36);
        let mut t = start + Span::minutes(len / 3);
        day.event("feed_log", id, t, "switchSide", Some(other(side)));
        if rng.chance(0.25) {
            day.event("feed_log", id, t + Span::minutes(2), "pause", None);
            t += Span::minutes(5);
            day.event("feed_log", id, t, "resume", None);
        }
        t += Span::minutes(len / 3);
        day.event("feed_log", id, t, "switchSide", Some(side));
        day.event("feed_log", id, t + Span::minutes(len / 3), "stop", None);
    }
    // Nappies.
    for i in 0..7 {
        let start = at(60 + i * 200 + j(rng, 30));
        let kind = match rng.range(0, 19) {
            0..=9 => "wee",
            10..=13 => "poo",
            14..=17 => "mixed",
            18 => "dry",
            _ => "clean",
        };
        let mut data = json!({"type": kind});
        if matches!(kind, "poo" | "mixed") {
            data["colour"] = json!(rng.pick(&["yellow", "yellow", "brown", "green"]));
            data["consistency"] = json!(rng.pick(&["mushy", "runny", "pasty", "formed"]));
        }
        day.entry("nappy_log", start, data);
    }
    // Sleeps: three naps and the night as timers, one nap written after.
    for (from, lo, hi) in [
        (600, 40, 100),
        (780, 40, 120),
        (960, 30, 60),
        (1170, 540, 630),
    ] {
        let start = at(from + j(rng, 20));
        let Some(id) = day.entry("sleep_log", start, json!({"timerState": "running"})) else {
            continue;
        };
        let len = rng.range(lo, hi);
        let mut end = start + Span::minutes(len);
        if rng.chance(0.5) {
            let p = start + Span::minutes(len / 2);
            day.event("sleep_log", id, p, "pause", None);
            day.event("sleep_log", id, p + Span::minutes(8), "resume", None);
            end += Span::minutes(8);
        }
        day.event("sleep_log", id, end, "stop", None);
    }
    let nap = at(450 + j(rng, 30));
    let len = rng.range(30, 60);
    day.entry(
        "sleep_log",
        nap,
        json!({"endedAt": wire(nap + Span::minutes(len)), "durationMinutes": len}),
    );
    // Pumping.
    for from in [480, 1230] {
        let start = at(from + j(rng, 30));
        let len = rng.range(12, 25);
        day.entry(
            "pumping_log",
            start,
            json!({"leftMl": rng.range(2, 12) * 10, "rightMl": rng.range(2, 12) * 10,
                "startSide": rng.pick(&["left", "right"]),
                "endedAt": wire(start + Span::minutes(len)), "durationMinutes": len}),
        );
    }
    // Solids.
    for from in [420, 720, 1050] {
        let mut data = json!({"food": rng.pick(&["banana", "porridge", "sweet potato", "avocado", "pear", "rice cake", "scrambled egg", "yoghurt"]),
            "reaction": rng.pick(&["loved", "liked", "neutral", "disliked"])});
        if rng.chance(0.2) {
            data["allergens"] = json!(["egg", "milk"]);
        }
        day.entry("solids_log", at(from + j(rng, 30)), data);
    }
    // Tummy time as a timer, and a bath.
    let start = at(660 + j(rng, 30));
    if let Some(id) = day.entry(
        "activity_log",
        start,
        json!({"type": "tummyTime", "timerState": "running"}),
    ) {
        day.event(
            "activity_log",
            id,
            start + Span::minutes(rng.range(5, 20)),
            "stop",
            None,
        );
    }
    let start = at(1110 + j(rng, 20));
    day.entry(
        "activity_log",
        start,
        json!({"type": "bath", "endedAt": wire(start + Span::minutes(15)), "durationMinutes": 15}),
    );
    // A dose a day, the two medicines in turn.
    let dose = if n % 2 == 0 {
        json!({"name": "Paracetamol", "dose": 2.5, "doseUnit": "ml", "minIntervalMinutes": 240, "maxDosesPer24h": 4})
    } else {
        json!({"name": "Ibuprofen", "dose": 2.5, "doseUnit": "ml", "minIntervalMinutes": 360, "maxDosesPer24h": 3})
    };
    day.entry("medication_log", at(510 + j(rng, 600)), dose);
    if rng.chance(0.3) {
        let c = rng.range(364, 389) as f64 / 10.0;
        day.entry(
            "temperature_log",
            at(j(rng, 1400)),
            json!({"celsius": c, "site": rng.pick(&["ear", "armpit", "forehead"])}),
        );
    }
    if n % 7 == 0 {
        // Measures for the age, set once the first day is known (`set_ages`).
        day.entry("growth_log", at(600), json!({"weightGrams": 3200}));
    }
}

/// Exactly `entries` mutations' data for `baby`, the days before today and
/// today up to an hour ago, filled from the most recent day backwards: days
/// (oldest first), each a list of (entity, data).
pub fn plan(baby: &str, entries: u64, now: DateTime<Utc>) -> Vec<Vec<(&'static str, Value)>> {
    let today = now.date_naive();
    let mut days = vec![];
    let mut total = 0u64;
    let mut back = 0i64;
    let mut rng = Rng(0x5eed_2100_0000_0021);
    while total < entries {
        let date = today - Span::days(back);
        let mut d = Day {
            items: vec![],
            cutoff: now - Span::hours(1),
            baby: baby.to_owned(),
        };
        // Ages count from the first day, not known yet: see `set_ages`.
        day(&mut rng, &mut d, date, back);
        let mut items = d.items;
        let room = (entries - total) as usize;
        if items.len() > room {
            // The oldest day is cut to fit: its entries without events
            // (the timers' events would follow them otherwise).
            items.retain(|(e, v)| *e != "timer_event" && v.get("timerState").is_none());
            items.truncate(room);
            while items.len() < room {
                let mut n = json!({"type": "wee", "id": Uuid::now_v7(), "babyId": baby});
                n["startedAt"] = json!(wire(
                    date.and_hms_opt(23, 0, 0).expect("time").and_utc()
                        + Span::seconds(items.len() as i64)
                ));
                items.push(("nappy_log", n));
            }
        }
        total += items.len() as u64;
        days.push((date, items));
        back += 1;
    }
    days.reverse();
    set_ages(&mut days);
    days.into_iter().map(|(_, items)| items).collect()
}

/// Growth entries get measures for their age from the first day.
fn set_ages(days: &mut [(NaiveDate, Vec<(&'static str, Value)>)]) {
    let Some(first) = days.first().map(|d| d.0) else {
        return;
    };
    for (date, items) in days.iter_mut() {
        let age = (*date - first).num_days() as f64;
        for (entity, v) in items.iter_mut() {
            if *entity == "growth_log" {
                for (key, points) in GROWTH {
                    v[key] = json!(by_age(points, age));
                }
            }
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SeedReport {
    pub user: String,
    pub baby: String,
    /// A second baby of the same owner, empty, for `scripts/seed_copies.py`.
    pub copy_baby: String,
    pub first_date: String,
    pub last_date: String,
    pub days: usize,
    pub entries: u64,
    pub by_kind: std::collections::BTreeMap<String, u64>,
    pub rejected: u64,
    pub seed_seconds: f64,
    pub entries_per_sec: f64,
}

/// Seeds the history baby of `user`; see the module's notes.
pub async fn run_seed(
    t: &Target,
    user: &str,
    entries: u64,
    clients: usize,
    batch: usize,
) -> Result<SeedReport, String> {
    let c = t.client();
    let token = t.token(user);
    let now = Utc::now();
    let baby_id = Uuid::now_v7().to_string();
    let days = plan(&baby_id, entries, now);
    let first = now.date_naive() - Span::days(days.len() as i64 - 1);
    client::try_create_baby(
        &c,
        &token,
        &json!({"id": baby_id, "name": "Five years", "birthDate": first, "gender": "female"}),
    )
    .await?;
    let copy_baby = client::try_baby_id(&c, &token, "A million").await?;
    let mut by_kind = std::collections::BTreeMap::new();
    for (e, _) in days.iter().flatten() {
        *by_kind.entry(e.to_string()).or_insert(0u64) += 1;
    }
    let total: u64 = by_kind.values().sum();
    // Contiguous stretches of whole days, one per client: a timer's events
    // always go after it, from the same client.
    let per = total.div_ceil(clients as u64);
    let mut stretches: Vec<Vec<(&'static str, Value)>> = vec![vec![]];
    for d in days {
        if stretches.last().is_some_and(|s| s.len() as u64 >= per) {
            stretches.push(vec![]);
        }
        stretches.last_mut().expect("a stretch").extend(d);
    }
    let rejected = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut seeders = vec![];
    for stretch in stretches {
        let (c, token, rejected) = (c.clone(), token.clone(), rejected.clone());
        seeders.push(tokio::spawn(async move {
            let id = Uuid::new_v4();
            let mut mid = 0i64;
            let mut stretch = stretch.into_iter().peekable();
            while stretch.peek().is_some() {
                let mutations: Vec<Value> = stretch
                    .by_ref()
                    .take(batch)
                    .map(|(e, d)| {
                        mid += 1;
                        client::create(mid, e, d)
                    })
                    .collect();
                let answer = push(&c, &token, id, mutations).await?;
                for r in answer["results"].as_array().into_iter().flatten() {
                    if r["status"] != "applied" && rejected.fetch_add(1, Ordering::Relaxed) < 5 {
                        eprintln!("rejected: {r}");
                    }
                }
            }
            Ok::<_, String>(())
        }));
    }
    for s in seeders {
        s.await.map_err(|e| e.to_string())??;
    }
    let seed_seconds = started.elapsed().as_secs_f64();
    mark_load_done();
    Ok(SeedReport {
        user: user.to_owned(),
        baby: baby_id,
        copy_baby,
        first_date: first.to_string(),
        last_date: now.date_naive().to_string(),
        days: (now.date_naive() - first).num_days() as usize + 1,
        entries: total,
        by_kind,
        rejected: rejected.load(Ordering::Relaxed),
        seed_seconds,
        entries_per_sec: total as f64 / seed_seconds,
    })
}

#[derive(Debug, Serialize)]
pub struct SummaryReport {
    pub days: i64,
    pub tz: String,
    pub requests: usize,
    pub warmup: usize,
    pub errors: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// p50 and p99 of the requests whose range ends in each fifth of the
    /// history, oldest first: whether the cost follows the range's place.
    pub by_fifth: Vec<(f64, f64)>,
    /// Entries the answers' days count, on average (feeds, sleeps, nappies…).
    pub mean_counted: f64,
    pub response_bytes_mean: f64,
}

/// `requests` summaries of `days` dates, one after the other, their last
/// dates spread evenly from `first + days - 1` to `last`, after `warmup`
/// ones not counted.
#[allow(clippy::too_many_arguments)]
pub async fn run_summary(
    t: &Target,
    user: &str,
    baby: &str,
    first: NaiveDate,
    last: NaiveDate,
    days: i64,
    requests: usize,
    warmup: usize,
    tz: &str,
) -> Result<SummaryReport, String> {
    let c = t.client();
    let token = t.token(user);
    let lo = first + Span::days(days - 1);
    let span = (last - lo).num_days().max(0);
    let mut lat: Vec<(usize, f64)> = vec![];
    let (mut errors, mut counted, mut bytes) = (0u64, 0u64, 0u64);
    for i in 0..warmup + requests {
        let k = i.saturating_sub(warmup);
        let to = lo + Span::days(span * k as i64 / (requests.max(2) - 1) as i64);
        let from = to - Span::days(days - 1);
        let url = c.url(&format!(
            "/api/babies/{baby}/summary?from={from}&to={to}&tz={}",
            tz.replace('/', "%2F")
        ));
        let t0 = Instant::now();
        let resp = c
            .http
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        if i < warmup {
            continue;
        }
        if status != 200 {
            errors += 1;
            if errors <= 3 {
                eprintln!("summary: {status}: {}", String::from_utf8_lossy(&body));
            }
            continue;
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let list = v["days"].as_array().ok_or("no days")?;
        if list.len() as i64 != days {
            return Err(format!("{} days, not {days}", list.len()));
        }
        for d in list {
            for k in [
                "feeds",
                "sleep",
                "nappies",
                "pumping",
                "solids",
                "activities",
                "medications",
            ] {
                counted += d[k]["count"].as_u64().unwrap_or(0);
            }
        }
        bytes += body.len() as u64;
        lat.push((k * 5 / requests, ms));
    }
    mark_load_done();
    let n = lat.len().max(1) as f64;
    let mut all: Vec<f64> = lat.iter().map(|l| l.1).collect();
    all.sort_by(f64::total_cmp);
    let by_fifth = (0..5)
        .map(|f| {
            let mut v: Vec<f64> = lat.iter().filter(|l| l.0 == f).map(|l| l.1).collect();
            v.sort_by(f64::total_cmp);
            (percentile(&v, 0.5), percentile(&v, 0.99))
        })
        .collect();
    Ok(SummaryReport {
        days,
        tz: tz.to_owned(),
        requests,
        warmup,
        errors,
        p50_ms: percentile(&all, 0.50),
        p90_ms: percentile(&all, 0.90),
        p99_ms: percentile(&all, 0.99),
        max_ms: all.last().copied().unwrap_or(0.0),
        mean_ms: all.iter().sum::<f64>() / n,
        by_fifth,
        mean_counted: counted as f64 / n,
        response_bytes_mean: bytes as f64 / n,
    })
}

/// Samples a process's `VmRSS` every 20 ms until stopped: the largest seen,
/// and how many samples.
struct RssSampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(u64, u64)>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let (mut max, mut n) = (0u64, 0u64);
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            while !flag.load(Ordering::Relaxed) {
                tick.tick().await;
                if let Ok(kib) = proc_status_kib(pid, "VmRSS:") {
                    max = max.max(kib);
                    n += 1;
                }
            }
            (max, n)
        });
        RssSampler { stop, task }
    }

    async fn finish(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

/// The server's memory around one measured request: before, reset of the peak.
async fn settle(pid: u32) -> Result<u64, String> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = proc_status_kib(pid, "VmRSS:")?;
    std::fs::write(format!("/proc/{pid}/clear_refs"), b"5").map_err(|e| e.to_string())?;
    Ok(before)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Counts the entries of an export document as its bytes pass: objects
/// directly in an array directly in the root's `entries` object.
#[derive(Default)]
pub struct EntryCounter {
    stack: Vec<u8>,
    in_string: bool,
    escaped: bool,
    /// The text of the string being read at the root (a key of the root).
    key: Vec<u8>,
    root_key: Vec<u8>,
    pub entries: u64,
}

impl EntryCounter {
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                    if self.stack.len() == 1 {
                        self.root_key = std::mem::take(&mut self.key);
                    }
                } else if self.stack.len() == 1 && self.key.len() < 16 {
                    self.key.push(b);
                }
                continue;
            }
            match b {
                b'"' => {
                    self.in_string = true;
                    self.key.clear();
                }
                b'{' | b'[' => {
                    if b == b'{' && self.stack == b"{{[" && self.root_key == b"entries" {
                        self.entries += 1;
                    }
                    self.stack.push(b);
                }
                b'}' | b']' => {
                    self.stack.pop();
                }
                _ => {}
            }
        }
    }

    /// The document ended where it should.
    pub fn complete(&self) -> bool {
        self.stack.is_empty() && !self.in_string
    }
}

#[derive(Debug, Serialize)]
pub struct ExportReport {
    pub entries: u64,
    pub bytes: u64,
    pub complete: bool,
    pub first_byte_ms: f64,
    pub seconds: f64,
    pub entries_per_sec: f64,
    pub mib_per_sec: f64,
    pub rss_before_mib: f64,
    /// The largest `VmRSS` of the samples taken during the export.
    pub rss_max_sampled_mib: f64,
    pub rss_samples: u64,
    /// `VmHWM` after the export, reset just before it.
    pub rss_peak_mib: f64,
}

/// One JSON export of `baby`, read as it streams; see the module's notes.
pub async fn run_export(
    t: &Target,
    user: &str,
    baby: &str,
    server_pid: u32,
    save: Option<&str>,
) -> Result<ExportReport, String> {
    use std::io::Write;
    let c = t.client();
    let token = t.token(user);
    let mut file = save
        .map(|p| std::fs::File::create(p).map(std::io::BufWriter::new))
        .transpose()
        .map_err(|e| e.to_string())?;
    let before = settle(server_pid).await?;
    let sampler = RssSampler::start(server_pid);
    let t0 = Instant::now();
    let mut resp = c
        .http
        .get(c.url(&format!("/api/babies/{baby}/export")))
        .bearer_auth(&token)
        .header("accept-encoding", "identity")
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status() != 200 {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return Err(format!("export answered {status}: {text}"));
    }
    let mut first_byte_ms = None;
    let mut counter = EntryCounter::default();
    let mut bytes = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        first_byte_ms.get_or_insert_with(|| t0.elapsed().as_secs_f64() * 1e3);
        bytes += chunk.len() as u64;
        counter.feed(&chunk);
        if let Some(f) = file.as_mut() {
            f.write_all(&chunk).map_err(|e| e.to_string())?;
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    let (max, samples) = sampler.finish().await;
    let peak = proc_status_kib(server_pid, "VmHWM:")?;
    mark_load_done();
    if let Some(mut f) = file {
        f.flush().map_err(|e| e.to_string())?;
    }
    Ok(ExportReport {
        entries: counter.entries,
        bytes,
        complete: counter.complete(),
        first_byte_ms: first_byte_ms.unwrap_or(0.0),
        seconds,
        entries_per_sec: counter.entries as f64 / seconds,
        mib_per_sec: bytes as f64 / seconds / 1048576.0,
        rss_before_mib: mib(before),
        rss_max_sampled_mib: mib(max),
        rss_samples: samples,
        rss_peak_mib: mib(peak),
    })
}

#[derive(Debug, Serialize)]
pub struct ImportReport {
    pub status: u16,
    pub body_bytes: u64,
    pub imported: u64,
    pub unchanged: u64,
    pub seconds: f64,
    pub entries_per_sec: f64,
    pub rss_before_mib: f64,
    pub rss_max_sampled_mib: f64,
    pub rss_samples: u64,
    pub rss_peak_mib: f64,
    /// Peak RSS over the body's size, and (peak − before) over it.
    pub peak_per_body: f64,
    pub extra_per_body: f64,
}

/// Posts the export document in `file` to `/api/babies/import` as `user`.
pub async fn run_import(
    t: &Target,
    user: &str,
    file: &str,
    server_pid: u32,
) -> Result<ImportReport, String> {
    let c = t.client();
    let token = t.token(user);
    let body = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
    let body_bytes = body.len() as u64;
    let before = settle(server_pid).await?;
    let sampler = RssSampler::start(server_pid);
    let t0 = Instant::now();
    let resp = c
        .http
        .post(c.url("/api/babies/import"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    let seconds = t0.elapsed().as_secs_f64();
    let (max, samples) = sampler.finish().await;
    let peak = proc_status_kib(server_pid, "VmHWM:")?;
    mark_load_done();
    if !status.is_success() {
        return Err(format!(
            "import answered {status}: {}",
            text.chars().take(500).collect::<String>()
        ));
    }
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let sum = |key: &str| -> u64 {
        v[key]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0)
    };
    let imported = sum("imported");
    Ok(ImportReport {
        status: status.as_u16(),
        body_bytes,
        imported,
        unchanged: sum("unchanged"),
        seconds,
        entries_per_sec: imported as f64 / seconds,
        rss_before_mib: mib(before),
        rss_max_sampled_mib: mib(max),
        rss_samples: samples,
        rss_peak_mib: mib(peak),
        peak_per_body: (peak * 1024) as f64 / body_bytes.max(1) as f64,
        extra_per_body: (peak.saturating_sub(before) * 1024) as f64 / body_bytes.max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_has_exactly_the_entries_asked_over_about_five_years() {
        let now = "2026-12-02T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let days = plan("b", 100_000, now);
        let n: usize = days.iter().map(Vec::len).sum();
        assert_eq!(n, 100_000);
        assert!((1780..1870).contains(&days.len()), "{} days", days.len());
        let kinds: std::collections::HashSet<&str> = days.iter().flatten().map(|e| e.0).collect();
        assert_eq!(kinds.len(), client::KINDS.len(), "every kind: {kinds:?}");
        // Every event follows its entry.
        let mut seen = std::collections::HashSet::new();
        for (e, v) in days.iter().flatten() {
            if *e == "timer_event" {
                assert!(seen.contains(v["entryId"].as_str().unwrap()), "{v}");
            }
            seen.insert(v["id"].as_str().unwrap().to_owned());
        }
    }

    #[test]
    fn the_counter_counts_entries_only() {
        let doc = br#"{"format":"babysync-export","baby":{"id":"x","tags":[{"a":1}]},"entries":{"feed_log":[{"id":"a","segments":[{"s":"{"}]},{"id":"b \"}{"}],"nappy_log":[],"sleep_log":[{"id":"c"}]}}"#;
        for split in [1, 7, doc.len()] {
            let mut c = EntryCounter::default();
            for part in doc.chunks(split) {
                c.feed(part);
            }
            assert_eq!(c.entries, 3);
            assert!(c.complete());
        }
    }
}
