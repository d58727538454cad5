//! Prometheus metrics: requests by route and status with a latency histogram,
//! push mutations by entity and outcome, pull entries served, and the
//! database pool's size and use. Served at `GET /metrics`.

use std::{sync::OnceLock, time::Instant};

use crate::db::Db;
use axum::{
    extract::{MatchedPath, Request, State},
    http::{Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::DbBackend;

use crate::AppState;

pub const REQUESTS: &str = "babysync_http_requests_total";
pub const LATENCY: &str = "babysync_http_request_duration_seconds";
pub const MUTATIONS: &str = "babysync_push_mutations_total";
pub const PULL_ENTRIES: &str = "babysync_pull_entries_total";
pub const READS: &str = "babysync_reads_total";
pub const POOL_SIZE: &str = "babysync_db_pool_connections";
pub const POOL_IN_USE: &str = "babysync_db_pool_in_use_connections";
pub const POOL_MAX: &str = "babysync_db_pool_max_connections";
pub const STREAMS: &str = "babysync_event_streams_open";
pub const POKES: &str = "babysync_event_pokes_sent_total";
pub const LISTENER_UP: &str = "babysync_event_listener_up";

/// The process-wide recorder (one per process, shared by every app in it).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(LATENCY.into()), &buckets)
                .expect("non-empty buckets");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests); ours still renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The method as a label: one of the standard methods, else `other`, so no
/// request can add a series.
pub fn method_label(method: &Method) -> &'static str {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    STANDARD
        .iter()
        .find(|m| *m == method)
        .map_or("other", Method::as_str)
}

/// Counts and times every request under its matched route (one label for
/// every unmatched path).
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", status),
    ];
    metrics::counter!(REQUESTS, &labels).increment(1);
    metrics::histogram!(LATENCY, &labels).record(started.elapsed().as_secs_f64());
    response
}

pub fn push_outcome(entity: &'static str, outcome: &'static str) {
    metrics::counter!(MUTATIONS, "entity" => entity, "outcome" => outcome).increment(1);
}

/// Event streams opened (+1) or closed (-1).
pub fn streams_opened(delta: i64) {
    metrics::gauge!(STREAMS).increment(delta as f64);
}

/// Whether this instance's PostgreSQL listener is connected (1) or not (0).
pub fn listener_up(up: bool) {
    metrics::gauge!(LISTENER_UP).set(if up { 1.0 } else { 0.0 });
}

pub fn poke_sent() {
    metrics::counter!(POKES).increment(1);
}

/// A read snapshot begun for `route`, and where: `primary` or `replica`.
pub fn read_on(route: &'static str, on: crate::db::ReadOn) {
    metrics::counter!(READS, "route" => route, "on" => on.label()).increment(1);
}

pub fn pull_entries(n: usize) {
    metrics::counter!(PULL_ENTRIES).increment(n as u64);
}

fn record_pool(db: &Db, max: u32) {
    let db = db.primary();
    let (size, idle) = match db.get_database_backend() {
        DbBackend::Postgres => {
            let p = db.get_postgres_connection_pool();
            (p.size(), p.num_idle() as u32)
        }
        _ => {
            let p = db.get_sqlite_connection_pool();
            (p.size(), p.num_idle() as u32)
        }
    };
    metrics::gauge!(POOL_SIZE).set(size as f64);
    metrics::gauge!(POOL_IN_USE).set(size.saturating_sub(idle) as f64);
    metrics::gauge!(POOL_MAX).set(max as f64);
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "health", security(()),
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    record_pool(&state.db, state.config.db_max_connections);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
