//! babysync: the sync backend for offline-first baby-tracking apps.
//!
//! [`build_app`] makes the router; [`serve`] runs it on a listener until a
//! shutdown future resolves, then drains in-flight requests within the grace
//! period. `cli` is what the `babysync` binary runs.

pub mod access;
pub mod auth;
pub mod babies;
pub mod cli;
pub mod config;
pub mod cors;
pub mod db;
pub mod docs;
pub mod error;
pub mod events;
pub mod export;
pub mod extract;
pub mod gate;
pub mod growth;
pub mod import;
pub mod invites;
pub mod kinds;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod summary;
pub mod sync;
pub mod time;
pub mod web;

use std::{future::Future, sync::Arc, time::Duration};

use crate::db::Db;
use axum::{
    Router,
    error_handling::HandleErrorLayer,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::HeaderName,
    middleware::{self, Next},
    response::IntoResponse,
};
use sea_orm::ConnectionTrait as _;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::CompressionLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{auth::Authenticator, config::Config, error::ApiError};

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub auth: Arc<Authenticator>,
    pub health: Arc<routes::health::HealthState>,
    /// The pull cursor signing key, loaded from the database on first use.
    pub cursor_key: Arc<tokio::sync::OnceCell<Vec<u8>>>,
    pub limiter: Arc<limits::RateLimiter>,
    /// `MAX_CONCURRENT_REQUESTS`: taken once a request's body is in.
    pub slots: Arc<tokio::sync::Semaphore>,
    /// Request bodies being received, per user.
    pub uploads: Arc<limits::InFlight>,
    /// Pulls running, per user.
    pub pulls: Arc<limits::InFlight>,
    /// Pulls running at once, process-wide: half the pool, so that pulls
    /// never take every connection from other requests.
    pub pull_slots: Arc<tokio::sync::Semaphore>,
    /// Exports streaming at once, process-wide: a quarter of the pool (each
    /// holds a connection while its client reads).
    pub export_slots: Arc<tokio::sync::Semaphore>,
    /// Imports at once, process-wide: one (each holds its body, its models
    /// and, while it writes, the database's write turn).
    pub import_slots: Arc<tokio::sync::Semaphore>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Live updates: open streams and how changes reach them.
    pub events: Arc<events::Events>,
}

impl AppState {
    pub fn new(db: Db, config: Config, auth: Authenticator) -> Self {
        let limiter = limits::RateLimiter::new(config.rate_limit_per_sec, config.rate_limit_burst);
        let events = events::Events::new(
            db.get_database_backend(),
            Duration::from_secs(config.events_keepalive_secs),
        );
        Self {
            events: Arc::new(events),
            limiter: Arc::new(limiter),
            slots: Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_requests)),
            uploads: Arc::new(limits::InFlight::new(limits::BODIES_PER_USER)),
            pulls: Arc::new(limits::InFlight::new(limits::PULLS_PER_USER)),
            export_slots: Arc::new(tokio::sync::Semaphore::new(
                (config.db_max_connections as usize / 4).max(1),
            )),
            import_slots: Arc::new(tokio::sync::Semaphore::new(1)),
            pull_slots: Arc::new(tokio::sync::Semaphore::new(
                (config.db_max_connections as usize / 2).max(1),
            )),
            metrics: metrics::handle(),
            db,
            config: Arc::new(config),
            auth: Arc::new(auth),
            health: Arc::default(),
            cursor_key: Arc::default(),
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP surface, with its middleware.
pub fn build_app(state: AppState) -> Router {
    let timeout = state.config.request_timeout();
    let cors = cors::layer(state.config.cors_allowed_origins.as_deref());
    let api = Router::new()
        .merge(routes::me::router())
        .merge(routes::babies::router())
        .merge(routes::sync::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), gate::gate))
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes));
    let streams = routes::sync::events_router().route_layer(middleware::from_fn_with_state(
        state.clone(),
        gate::gate_stream,
    ));

    Router::new()
        .merge(routes::health::router())
        .route("/metrics", axum::routing::get(metrics::render))
        .route("/openapi.json", axum::routing::get(openapi::openapi_json))
        .merge(docs::router())
        .merge(api)
        .merge(streams)
        .fallback_service(web::fallback(state.config.web_app_dir.clone()))
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed.into_response() })
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(middleware::from_fn(drop_bad_request_id))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(make_span)
                        .on_request(())
                        .on_response(log_response)
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(middleware::from_fn(metrics::track))
                .option_layer(cors)
                .layer(CompressionLayer::new().gzip(true).br(true))
                .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
                    tracing::error!("handler panicked");
                    ApiError::Internal.into_response()
                }))
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    ApiError::Unavailable(
                        "the request took too long and was abandoned; nothing was written; retry later".into(),
                    )
                }))
                .timeout(timeout),
        )
}

/// An `x-request-id` is taken from the request only when it is 1–128 visible
/// ASCII characters; otherwise a fresh one is made.
async fn drop_bad_request_id(mut req: Request, next: Next) -> axum::response::Response {
    let values = req.headers().get_all(&REQUEST_ID);
    let mut iter = values.iter();
    let acceptable = match (iter.next(), iter.next()) {
        (None, _) => true,
        (Some(v), None) => {
            let b = v.as_bytes();
            (1..=128).contains(&b.len()) && b.iter().all(|c| (0x21..=0x7e).contains(c))
        }
        _ => false,
    };
    if !acceptable {
        req.headers_mut().remove(&REQUEST_ID);
    }
    next.run(req).await
}

/// One line per request: 5xx at `error`, everything else (a client's
/// mistakes included) at `info`.
fn log_response(res: &axum::response::Response, latency: Duration, _: &tracing::Span) {
    let status = res.status().as_u16();
    let latency = format_args!("{} ms", latency.as_millis());
    if status >= 500 {
        tracing::error!(status, %latency, "request failed");
    } else {
        tracing::info!(status, %latency, "finished processing request");
    }
}

/// Records the caller on the request's span (control characters escaped, so
/// no `sub` can forge a log line).
pub fn record_user(id: &str) {
    let span = tracing::Span::current();
    if id.chars().any(char::is_control) {
        span.record("user_id", id.escape_default().to_string().as_str());
    } else {
        span.record("user_id", id);
    }
}

fn make_span(req: &Request) -> tracing::Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str())
        .unwrap_or("unmatched");
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = metrics::method_label(req.method()),
        route = %route,
        request_id = %request_id,
        user_id = tracing::field::Empty,
    )
}

/// Serves the app for `state` on `listener` until `shutdown` resolves, drains,
/// then closes the database pool.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = state.config.shutdown_grace();
    let c = &state.config;
    let limits = server::ConnectionLimits {
        max_connections: server::fit_connections(
            c.max_connections,
            c.db_max_connections as usize + 64,
        ),
        header_timeout: Duration::from_secs(c.http_header_timeout_secs),
        idle_timeout: Duration::from_secs(c.http_idle_timeout_secs),
    };
    let db = state.db.clone();
    let events = state.events.clone();
    // One listening connection per instance on PostgreSQL.
    let listening = (db.get_database_backend() == sea_orm::DbBackend::Postgres).then(|| {
        tokio::spawn(events::listen(
            // A session of its own: past any transaction-mode pooler.
            state.config.direct_url().to_owned(),
            events.hub.clone(),
        ))
    });
    let shutdown = async move {
        shutdown.await;
        events.close_all();
    };
    let result = server::serve(listener, build_app(state), limits, shutdown, grace).await;
    if let Some(task) = listening {
        task.abort();
    }
    if let Err(e) = db.close().await {
        tracing::warn!(error = %e, "closing the database pool");
    }
    result
}
