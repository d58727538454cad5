//! The babysync load generator. Against a running server it:
//!
//! - **push**: creates `users` users with a baby each, then runs
//!   `concurrency` workers, each with its own `clientId`, pushing batches of
//!   `batch` creates (feed, sleep and nappy mixed) for `seconds`, optionally
//!   paced to a target rate; reports mutations/s, requests/s, latency
//!   percentiles and errors; then verifies through pull that every
//!   acknowledged entry is stored exactly once.
//! - **pull**: seeds one baby with `entries` entries, then times its first
//!   sync in pages of `page`.
//! - **pull-memory**: seeds one baby with entries of long notes, then reads
//!   the server's peak RSS over repeated first pages against the page's size.
//! - **history-seed**, **summary**, **export**, **import**: a baby with years
//!   of history, its summaries, its export and its import (see [`history`]).

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

pub mod client;
pub mod events;
pub mod history;

use client::Client;

/// What to run against, and who signs the tokens.
#[derive(Clone, Debug)]
pub struct Target {
    pub base_url: String,
    pub jwt_secret: String,
}

impl Target {
    /// A token for `sub`, named `sub`, valid for a day.
    pub fn token(&self, sub: &str) -> String {
        let exp = chrono::Utc::now().timestamp() + 24 * 3600;
        client::sign(&self.jwt_secret, sub, json!({"name": sub, "exp": exp}))
    }

    /// A client of the target through [`http`].
    pub fn client(&self) -> Client {
        Client::with_http(self.base_url.clone(), http())
    }
}

pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// A push of `mutations` from `client`: its results, or an error unless 200.
async fn push(
    c: &Client,
    token: &str,
    client: Uuid,
    mutations: Vec<Value>,
) -> Result<Value, String> {
    let r = client::try_push(c, token, client, mutations).await?;
    Ok(r.expect_json("POST /api/sync/push", 200)?.body)
}

/// The body of a push of `ids.len()` creates numbered from `first`, written
/// as text: the load generator spends its time on requests, not on building
/// JSON values (the same mutations as [`client::any_kind`]).
pub fn push_text(client: Uuid, first: u64, ids: &[Uuid], baby: &str) -> String {
    use std::fmt::Write;
    let t0 = client::T0;
    let mut out = String::with_capacity(80 + ids.len() * 260);
    let _ = write!(
        out,
        r#"{{"protocolVersion":1,"clientId":"{client}","mutations":["#
    );
    for (i, id) in ids.iter().enumerate() {
        let n = first + i as u64;
        if i > 0 {
            out.push(',');
        }
        let _ = match n % 3 {
            0 => write!(
                out,
                r#"{{"id":{n},"entity":"feed_log","op":"create","data":{{"id":"{id}","babyId":"{baby}","method":"bottle","startedAt":"{t0}","amountMl":120}}}}"#
            ),
            1 => write!(
                out,
                r#"{{"id":{n},"entity":"sleep_log","op":"create","data":{{"id":"{id}","babyId":"{baby}","startedAt":"{t0}","endedAt":"2026-11-20T09:00:00.000Z","durationMinutes":115}}}}"#
            ),
            _ => write!(
                out,
                r#"{{"id":{n},"entity":"nappy_log","op":"create","data":{{"id":"{id}","babyId":"{baby}","startedAt":"{t0}","type":"poo","colour":"yellow","consistency":"mushy"}}}}"#
            ),
        };
    }
    out.push_str("]}");
    out
}

#[derive(serde::Deserialize)]
struct PushAnswer {
    results: Vec<PushResult>,
}

#[derive(serde::Deserialize)]
struct PushResult {
    status: String,
}

/// [`push`] of a body written by [`push_text`], reading only the statuses.
async fn push_fast(c: &Client, token: &str, body: String) -> Result<PushAnswer, String> {
    let resp = c
        .http
        .post(c.url(client::PUSH))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("POST /api/sync/push: {e}"))?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!(
            "POST /api/sync/push: {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("POST /api/sync/push: {e}"))
}

#[derive(Clone, Debug)]
pub struct PushConfig {
    pub users: usize,
    pub concurrency: usize,
    pub batch: usize,
    pub duration: Duration,
    /// Target mutations per second over all workers; `None`: as fast as it goes.
    pub rate: Option<f64>,
    pub verify: bool,
}

#[derive(Debug, Serialize)]
pub struct PushReport {
    pub users: usize,
    pub concurrency: usize,
    pub batch: usize,
    pub seconds: f64,
    pub target_rate: Option<f64>,
    pub requests: u64,
    pub mutations: u64,
    pub errors: u64,
    pub rejected: u64,
    pub mutations_per_sec: f64,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Every acknowledged entry found exactly once through pull (None: not checked).
    pub verified: Option<bool>,
    pub verify_detail: String,
    pub generator_cpu_secs: f64,
}

/// Tells a process sampler (see `scripts/procstat.py`) that the measured load
/// is over, by creating the file `BENCH_MARK_FILE` names, if any.
fn mark_load_done() {
    if let Some(path) = std::env::var_os("BENCH_MARK_FILE") {
        let _ = std::fs::write(path, b"done");
    }
}

/// CPU seconds (user + system) this process has used.
pub fn cpu_secs() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Makes `users` users, each with a baby; returns (token, baby id) per user.
pub async fn setup_users(
    c: &Client,
    t: &Target,
    users: usize,
    tag: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut out = vec![];
    for u in 0..users {
        let token = t.token(&format!("bench-{tag}-{u}"));
        let baby = client::try_baby_id(c, &token, &format!("Bench {u}")).await?;
        out.push((token, baby));
    }
    Ok(out)
}

pub async fn run_push(t: &Target, cfg: &PushConfig) -> Result<PushReport, String> {
    let c = t.client();
    let tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let users = setup_users(&c, t, cfg.users, &tag).await?;
    let acked: Arc<Mutex<HashMap<usize, Vec<Uuid>>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let (requests, errors, rejected) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let cpu_before = cpu_secs();
    let started = Instant::now();
    let interval = cfg
        .rate
        .map(|r| Duration::from_secs_f64(cfg.batch as f64 * cfg.concurrency as f64 / r));
    let mut workers = vec![];
    for w in 0..cfg.concurrency {
        let (c, cfg) = (c.clone(), cfg.clone());
        let user = w % users.len();
        let (token, baby) = users[user].clone();
        let (acked, latencies) = (acked.clone(), latencies.clone());
        let (requests, errors, rejected) = (requests.clone(), errors.clone(), rejected.clone());
        workers.push(tokio::spawn(async move {
            let client = Uuid::new_v4();
            let mut next_id = 1u64;
            let mut sent = 0u32;
            // Stagger paced workers over one interval.
            let offset = interval
                .map(|i| i.mul_f64(w as f64 / cfg.concurrency as f64))
                .unwrap_or_default();
            let mut mine = vec![];
            while started.elapsed() < cfg.duration {
                if let Some(i) = interval {
                    let due = started + offset + i * sent;
                    if due > Instant::now() {
                        tokio::time::sleep_until(due.into()).await;
                    }
                    if started.elapsed() >= cfg.duration {
                        break;
                    }
                }
                sent += 1;
                let ids: Vec<Uuid> = (0..cfg.batch).map(|_| Uuid::now_v7()).collect();
                let body = push_text(client, next_id, &ids, &baby);
                let t0 = Instant::now();
                let result = push_fast(&c, &token, body).await;
                latencies
                    .lock()
                    .unwrap()
                    .push(t0.elapsed().as_secs_f64() * 1e3);
                requests.fetch_add(1, Ordering::Relaxed);
                match result {
                    Ok(r) => {
                        for (id, res) in ids.iter().zip(r.results) {
                            if res.status == "applied" {
                                mine.push(*id);
                            } else {
                                rejected.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        next_id += cfg.batch as u64;
                    }
                    Err(e) => {
                        // The same batch goes again (ids stay consecutive).
                        if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("push error: {e}");
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            acked.lock().unwrap().entry(user).or_default().extend(mine);
        }));
    }
    for w in workers {
        w.await.map_err(|e| e.to_string())?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    mark_load_done();
    let generator_cpu_secs = cpu_secs() - cpu_before;
    let acked = Arc::try_unwrap(acked)
        .map_err(|_| "acked")?
        .into_inner()
        .unwrap();
    let mutations: u64 = acked.values().map(|v| v.len() as u64).sum();
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort_by(f64::total_cmp);
    let (verified, verify_detail) = if cfg.verify {
        let (ok, detail) = verify(&c, &users, &acked).await?;
        (Some(ok), detail)
    } else {
        (None, String::new())
    };
    Ok(PushReport {
        users: cfg.users,
        concurrency: cfg.concurrency,
        batch: cfg.batch,
        seconds: elapsed,
        target_rate: cfg.rate,
        requests: requests.load(Ordering::Relaxed),
        mutations,
        errors: errors.load(Ordering::Relaxed),
        rejected: rejected.load(Ordering::Relaxed),
        mutations_per_sec: mutations as f64 / elapsed,
        requests_per_sec: requests.load(Ordering::Relaxed) as f64 / elapsed,
        p50_ms: percentile(&lat, 0.50),
        p95_ms: percentile(&lat, 0.95),
        p99_ms: percentile(&lat, 0.99),
        max_ms: lat.last().copied().unwrap_or(0.0),
        verified,
        verify_detail,
        generator_cpu_secs,
    })
}

/// Pulls every page for `token` from a fresh client: (entries of each id, pages).
pub async fn pull_everything(
    c: &Client,
    token: &str,
    page: u64,
) -> Result<(HashMap<String, u32>, u64), String> {
    let mut seen: HashMap<String, u32> = HashMap::new();
    let count = |entries: Vec<(&str, &Value)>| {
        for (_, e) in entries {
            *seen
                .entry(e["id"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
    };
    let (_, pages) = client::try_pull_pages(c, token, Uuid::new_v4(), None, page, count).await?;
    Ok((seen, pages))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct PullPage {
    cursor: String,
    has_more: bool,
    changes: HashMap<String, Vec<IdOnly>>,
}

#[derive(serde::Deserialize)]
struct IdOnly {
    id: String,
}

/// [`pull_everything`] for the first-sync timing: reads each page's ids
/// only, so that the generator's own parsing weighs little in the figure.
async fn pull_ids(
    c: &Client,
    token: &str,
    page: u64,
) -> Result<(HashMap<String, u32>, u64), String> {
    let client = Uuid::new_v4();
    let mut cursor: Option<String> = None;
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut pages = 0u64;
    loop {
        let body =
            json!({"protocolVersion": 1, "clientId": client, "cursor": cursor, "limit": page});
        let resp = c
            .http
            .post(c.url("/api/sync/pull"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!(
                "pull answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        let p: PullPage = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        for e in p.changes.into_values().flatten() {
            *seen.entry(e.id).or_default() += 1;
        }
        pages += 1;
        if !p.has_more {
            return Ok((seen, pages));
        }
        if pages >= 100_000 {
            return Err("paging must end".into());
        }
        cursor = Some(p.cursor);
    }
}

/// Every acknowledged entry is stored exactly once, and nothing else.
async fn verify(
    c: &Client,
    users: &[(String, String)],
    acked: &HashMap<usize, Vec<Uuid>>,
) -> Result<(bool, String), String> {
    let mut problems = vec![];
    let mut checked = 0;
    for (u, (token, _)) in users.iter().enumerate() {
        let (seen, _) = pull_everything(c, token, 1000).await?;
        let expected: HashSet<String> = acked
            .get(&u)
            .into_iter()
            .flatten()
            .map(|id| id.to_string())
            .collect();
        checked += expected.len();
        let missing = expected.iter().filter(|id| !seen.contains_key(*id)).count();
        let twice = seen.values().filter(|n| **n > 1).count();
        let extra = seen.keys().filter(|id| !expected.contains(*id)).count();
        if missing + twice + extra > 0 {
            problems.push(format!(
                "user {u}: {missing} missing, {twice} twice, {extra} unacknowledged"
            ));
        }
    }
    let ok = problems.is_empty();
    let detail = if ok {
        format!("{checked} acknowledged entries each stored exactly once")
    } else {
        problems.join("; ")
    };
    Ok((ok, detail))
}

#[derive(Debug, Serialize)]
pub struct PullReport {
    pub entries: u64,
    pub page: u64,
    pub pages: u64,
    pub seed_seconds: f64,
    pub sync_seconds: f64,
    pub entries_per_sec: f64,
    pub complete: bool,
}

/// Seeds one baby with `entries` entries (batches of 1000 from 4 clients),
/// then times its first sync in pages of `page`.
pub async fn run_pull(t: &Target, entries: u64, page: u64) -> Result<PullReport, String> {
    let c = t.client();
    let tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let users = setup_users(&c, t, 1, &tag).await?;
    let (token, baby) = users[0].clone();
    let seed_started = Instant::now();
    let clients = 4u64;
    let per_client = entries.div_ceil(clients);
    let mut seeders = vec![];
    for s in 0..clients {
        let (c, token, baby) = (c.clone(), token.clone(), baby.clone());
        let n = per_client.min(entries.saturating_sub(s * per_client));
        seeders.push(tokio::spawn(async move {
            let client = Uuid::new_v4();
            let mut done = 0u64;
            while done < n {
                let size = (n - done).min(1000);
                let mutations: Vec<Value> = (0..size)
                    .map(|i| {
                        client::any_kind(done + i, (done + i + 1) as i64, Uuid::now_v7(), &baby)
                    })
                    .collect();
                push(&c, &token, client, mutations).await?;
                done += size;
            }
            Ok::<_, String>(())
        }));
    }
    for s in seeders {
        s.await.map_err(|e| e.to_string())??;
    }
    let seed_seconds = seed_started.elapsed().as_secs_f64();
    let started = Instant::now();
    let (seen, pages) = pull_ids(&c, &token, page).await?;
    let sync_seconds = started.elapsed().as_secs_f64();
    mark_load_done();
    let got: u64 = seen.values().map(|n| u64::from(*n)).sum();
    Ok(PullReport {
        entries: got,
        page,
        pages,
        seed_seconds,
        sync_seconds,
        entries_per_sec: got as f64 / sync_seconds,
        complete: got == entries && seen.len() as u64 == entries,
    })
}

#[derive(Debug, Serialize)]
pub struct PullMemoryReport {
    pub entries: u64,
    pub note_chars: usize,
    pub pulls: u32,
    /// Entries in one page (the server's page byte budget may cut it short of the limit).
    pub page_entries: u64,
    /// One page's body, uncompressed.
    pub page_bytes: u64,
    pub rss_before_mib: f64,
    pub rss_peak_mib: f64,
    /// Peak minus before, over one page's bytes.
    pub extra_per_page: f64,
}

/// `VmRSS` or `VmHWM` of `pid`, in KiB.
fn proc_status_kib(pid: u32, field: &str) -> Result<u64, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no {field} for pid {pid}"))
}

/// Seeds one baby with `entries` entries whose notes are `note_chars` long,
/// settles, resets the server's peak RSS (`/proc/PID/clear_refs`), then pulls
/// the first page (`limit` 5000, uncompressed) `pulls` times, one after the
/// other, and reports the server's peak RSS over its RSS before, against the
/// page's size.
pub async fn run_pull_memory(
    t: &Target,
    entries: u64,
    note_chars: usize,
    pulls: u32,
    server_pid: u32,
) -> Result<PullMemoryReport, String> {
    let c = t.client();
    let tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let users = setup_users(&c, t, 1, &tag).await?;
    let (token, baby) = users[0].clone();
    let client_id = Uuid::new_v4();
    let mut done = 0u64;
    while done < entries {
        let size = (entries - done).min(100);
        let mutations: Vec<Value> = (0..size)
            .map(|i| {
                let n = done + i;
                let mut m = client::any_kind(n, (n + 1) as i64, Uuid::now_v7(), &baby);
                // Text that differs from entry to entry, as notes do.
                let note: String = format!("{n:08} ")
                    .chars()
                    .chain("the baby fed well and slept after; ".chars().cycle())
                    .take(note_chars)
                    .collect();
                m["data"]["notes"] = Value::String(note);
                m
            })
            .collect();
        push(&c, &token, client_id, mutations).await?;
        done += size;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = proc_status_kib(server_pid, "VmRSS:")?;
    std::fs::write(format!("/proc/{server_pid}/clear_refs"), b"5").map_err(|e| e.to_string())?;
    let http = http();
    let mut page_bytes = 0u64;
    let mut page_entries = 0u64;
    for _ in 0..pulls {
        let resp = http
            .post(format!("{}/api/sync/pull", t.base_url))
            .bearer_auth(&token)
            .header("accept-encoding", "identity")
            .json(&json!({"protocolVersion": 1, "clientId": Uuid::new_v4(), "cursor": null, "limit": 5000}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if resp.status() != 200 {
            return Err(format!("pull answered {}", resp.status()));
        }
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        page_bytes = body.len() as u64;
        let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        page_entries = v["changes"]
            .as_object()
            .map(|m| {
                m.values()
                    .filter_map(Value::as_array)
                    .map(|a| a.len() as u64)
                    .sum()
            })
            .unwrap_or(0);
    }
    let peak = proc_status_kib(server_pid, "VmHWM:")?;
    mark_load_done();
    let mib = |kib: u64| kib as f64 / 1024.0;
    Ok(PullMemoryReport {
        entries,
        note_chars,
        pulls,
        page_entries,
        page_bytes,
        rss_before_mib: mib(before),
        rss_peak_mib: mib(peak),
        extra_per_page: (peak.saturating_sub(before) * 1024) as f64 / page_bytes.max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_text_is_the_push_the_json_helpers_build() {
        let client = Uuid::new_v4();
        let ids: Vec<Uuid> = (0..7).map(|_| Uuid::now_v7()).collect();
        let text = push_text(client, 5, &ids, "b-1");
        let sent: Value = serde_json::from_str(&text).unwrap();
        let mutations = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let n = 5 + i as u64;
                client::any_kind(n, n as i64, *id, "b-1")
            })
            .collect();
        assert_eq!(sent, client::push_body(client, mutations));
    }
}
