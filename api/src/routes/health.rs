//! `/health/live` and `/health/ready`.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use serde::Serialize;

use crate::{
    AppState,
    error::{ApiError, ErrorDetail},
};

/// Remembers that every migration was seen applied (they are never unapplied
/// under a running server), so later probes only ping.
#[derive(Default)]
pub struct HealthState {
    migrations_applied: AtomicBool,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
}

/// A probe's answer: `{"status": "ok"}`, or `unavailable` with the error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

impl Health {
    const OK: Health = Health {
        status: "ok",
        error: None,
    };
}

/// Liveness: 200 while the process serves; touches no database.
#[utoipa::path(get, path = "/health/live", tag = "health", security(()),
    responses((status = 200, body = Health)))]
pub(crate) async fn live() -> Json<Health> {
    Json(Health::OK)
}

/// Readiness: 200 when the database answers and every migration is applied.
#[utoipa::path(get, path = "/health/ready", tag = "health", security(()),
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub(crate) async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let check = async {
        state.db.ping().await.map_err(|_| "database unreachable")?;
        if !state.health.migrations_applied.load(Ordering::Relaxed) {
            let applied = crate::db::migrations_applied(&state.db)
                .await
                .map_err(|_| "database unreachable")?;
            if !applied {
                return Err("migrations pending");
            }
            state
                .health
                .migrations_applied
                .store(true, Ordering::Relaxed);
        }
        Ok(())
    };
    match tokio::time::timeout(Duration::from_secs(3), check).await {
        Ok(Ok(())) => (StatusCode::OK, Json(Health::OK)),
        Ok(Err(reason)) => unavailable(reason),
        Err(_) => unavailable("database did not answer in time"),
    }
}

fn unavailable(reason: &str) -> (StatusCode, Json<Health>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(Health {
            status: "unavailable",
            error: Some(ApiError::Unavailable(reason.to_owned()).detail()),
        }),
    )
}
