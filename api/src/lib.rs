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
pub mod db;
pub mod error;
pub mod invites;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod sync;
pub mod time;

use std::{future::Future, sync::Arc, time::Duration};

use axum::{
    Router,
    error_handling::HandleErrorLayer,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::HeaderName,
    middleware::{self, Next},
    response::IntoResponse,
};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    trace::{DefaultOnResponse, TraceLayer},
};
use tracing::Level;

use crate::{
    auth::Authenticator,
    config::Config,
    error::{ApiError, BodyLimit},
};

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub auth: Arc<Authenticator>,
    pub health: Arc<routes::health::HealthState>,
    /// The pull cursor signing key, loaded from the database on first use.
    pub cursor_key: Arc<tokio::sync::OnceCell<Vec<u8>>>,
    pub limiter: Arc<limits::RateLimiter>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

impl AppState {
    pub fn new(db: DatabaseConnection, config: Config, auth: Authenticator) -> Self {
        let limiter = limits::RateLimiter::new(config.rate_limit_per_sec, config.rate_limit_burst);
        Self {
            limiter: Arc::new(limiter),
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
    let body_limit = state.config.body_limit_bytes;
    let timeout = state.config.request_timeout();
    let shed = state.config.max_concurrent_requests;
    let api = Router::new()
        .merge(routes::me::router())
        .merge(routes::babies::router())
        .merge(routes::sync::router())
        .layer(middleware::from_fn(
            move |mut req: Request, next: Next| async move {
                req.extensions_mut().insert(BodyLimit(body_limit));
                next.run(req).await
            },
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        // Past `MAX_CONCURRENT_REQUESTS` (one semaphore for every route),
        // shed at once rather than queue.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    ApiError::Unavailable(
                        "the server is at capacity; nothing was written; retry later".into(),
                    )
                }))
                .load_shed()
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(shed)),
        );

    Router::new()
        .merge(routes::health::router())
        .route("/metrics", axum::routing::get(metrics::render))
        .route("/openapi.json", axum::routing::get(openapi::openapi_json))
        .merge(api)
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { error::MethodNotAllowed.into_response() })
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(make_span)
                        .on_request(())
                        .on_response(DefaultOnResponse::new().level(Level::INFO))
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(middleware::from_fn(metrics::track))
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

fn make_span(req: &Request) -> tracing::Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or_default()
        .to_owned();
    tracing::info_span!(
        "request",
        method = %req.method(),
        route = %route,
        request_id = %request_id,
        user_id = tracing::field::Empty,
    )
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting,
/// lets in-flight requests finish for up to `grace`, and returns.
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutdown signal received; draining in-flight requests");
        let _ = stopping_tx.send(());
    });
    let deadline = async move {
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server.into_future() => result,
        () = deadline => {
            tracing::warn!(grace_secs = grace.as_secs(), "grace period over; abandoning the requests still in flight");
            Ok(())
        }
    }
}

/// Serves the app for `state` on `listener` until `shutdown` resolves, drains,
/// then closes the database pool.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = state.config.shutdown_grace();
    let db = state.db.clone();
    let result = serve_router(listener, build_app(state), shutdown, grace).await;
    if let Err(e) = db.close().await {
        tracing::warn!(error = %e, "closing the database pool");
    }
    result
}
