//! Live updates under load: many idle event streams on one server, the
//! memory they cost it, and how long one write takes to poke all of them.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;
use serde_json::json;
use tokio::sync::{Barrier, Notify};
use uuid::Uuid;

use crate::{Target, client};

#[derive(Debug, Serialize)]
pub struct EventsReport {
    pub streams: usize,
    pub users: usize,
    /// Server RSS before the streams were opened and with all of them open.
    pub rss_before_mib: Option<f64>,
    pub rss_open_mib: Option<f64>,
    pub rss_per_stream_kib: Option<f64>,
    pub open_seconds: f64,
    /// From sending one write to each stream's poke.
    pub poked: usize,
    pub poke_p50_ms: f64,
    pub poke_p99_ms: f64,
    pub poke_max_ms: f64,
}

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Opens `per_user` streams for each of `users` caregivers of one baby, then
/// writes one entry and times the poke on every stream.
pub async fn run_events(
    t: &Target,
    users: usize,
    per_user: usize,
    opening: usize,
    server_pid: Option<u32>,
) -> Result<EventsReport, String> {
    let c = t.client();
    let owner = t.token("events-owner");
    let baby = client::try_create_baby(&c, &owner, &json!({"name": "Ada"})).await?;
    let baby = client::id_of(&baby);
    // Share the baby with every user: invites of 100 uses each.
    let mut tokens = vec![];
    for chunk in 0..users.div_ceil(100) {
        let invite = c
            .post(
                &format!("/api/babies/{baby}/invites"),
                &owner,
                json!({"accessLevel": "viewer", "maxUses": 100}),
            )
            .await;
        if invite.status != 201 {
            return Err(format!("invite: {} {}", invite.status, invite.text));
        }
        for i in chunk * 100..((chunk + 1) * 100).min(users) {
            let token = t.token(&format!("events-user-{i}"));
            let r = client::accept_invite(&c, &token, &invite.body["token"]).await;
            if r.status != 200 {
                return Err(format!("accept: {} {}", r.status, r.text));
            }
            tokens.push(token);
        }
    }
    let streams = users * per_user;
    let rss_before = server_pid.and_then(rss_mib);
    // Streams need a client with no overall timeout.
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| e.to_string())?;
    let opened = Arc::new(Barrier::new(streams + 1));
    // Open them `opening` at a time (all at once: a reconnect storm).
    let opening = Arc::new(tokio::sync::Semaphore::new(opening.max(1)));
    let stop = Arc::new(Notify::new());
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(streams);
    for token in tokens
        .iter()
        .flat_map(|t| std::iter::repeat_n(t.clone(), per_user))
    {
        let (http, url, opened, stop, baby, opening) = (
            http.clone(),
            format!("{}/api/sync/events", t.base_url),
            opened.clone(),
            stop.clone(),
            baby.clone(),
            opening.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let permit = opening.acquire_owned().await.expect("open");
            let mut resp = match http.get(url).bearer_auth(token).send().await {
                Ok(r) if r.status() == 200 => r,
                Ok(r) => {
                    opened.wait().await;
                    return Err(format!("events: {}", r.status()));
                }
                Err(e) => {
                    opened.wait().await;
                    return Err(e.to_string());
                }
            };
            let mut seen = String::new();
            while !seen.contains("event: ready") {
                match resp.chunk().await {
                    Ok(Some(b)) => seen.push_str(&String::from_utf8_lossy(&b)),
                    _ => {
                        opened.wait().await;
                        return Err("stream ended before ready".into());
                    }
                }
            }
            drop(permit);
            opened.wait().await;
            let mut seen = String::new();
            loop {
                tokio::select! {
                    chunk = resp.chunk() => match chunk {
                        Ok(Some(b)) => {
                            seen.push_str(&String::from_utf8_lossy(&b));
                            if seen.contains("event: poke") && seen.contains(baby.as_str()) {
                                let at = Instant::now();
                                stop.notified().await;
                                return Ok(Some(at));
                            }
                        }
                        _ => return Err("stream ended before the poke".into()),
                    },
                    () = stop.notified() => return Ok(None),
                }
            }
        }));
    }
    opened.wait().await;
    let open_seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await; // let the server settle
    let rss_open = server_pid.and_then(rss_mib);

    let sent = Instant::now();
    let r = client::try_push(
        &c,
        &owner,
        Uuid::new_v4(),
        vec![client::feed(1, Uuid::new_v4(), &baby)],
    )
    .await?;
    if r.status != 200 {
        return Err(format!("push: {} {}", r.status, r.text));
    }
    // Give every stream up to 30 s, then stop them all.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while tasks.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
        stop.notify_waiters();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.notify_waiters();
    let mut latencies = vec![];
    let mut errors = vec![];
    for task in tasks {
        match task.await.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(Some(at)) => latencies.push(at.duration_since(sent).as_secs_f64() * 1000.0),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(format!(
            "{} streams failed, first: {}",
            errors.len(),
            errors[0]
        ));
    }
    latencies.sort_by(f64::total_cmp);
    let per_stream = match (rss_before, rss_open) {
        (Some(a), Some(b)) => Some((b - a) * 1024.0 / streams as f64),
        _ => None,
    };
    Ok(EventsReport {
        streams,
        users,
        rss_before_mib: rss_before,
        rss_open_mib: rss_open,
        rss_per_stream_kib: per_stream,
        open_seconds,
        poked: latencies.len(),
        poke_p50_ms: percentile(&latencies, 0.5),
        poke_p99_ms: percentile(&latencies, 0.99),
        poke_max_ms: latencies.last().copied().unwrap_or(f64::NAN),
    })
}
