//! `/health/live` and `/health/ready`.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use serde_json::{Value, json};

use crate::AppState;

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

/// Liveness: 200 while the process serves; touches no database.
#[utoipa::path(get, path = "/health/live", tag = "health", security(()),
    responses((status = 200, body = crate::openapi::Status)))]
pub(crate) async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: 200 when the database answers and every migration is applied.
#[utoipa::path(get, path = "/health/ready", tag = "health", security(()),
    responses((status = 200, body = crate::openapi::Status), (status = 503, body = crate::openapi::NotReady)))]
pub(crate) async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
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
        Ok(Ok(())) => (StatusCode::OK, Json(json!({"status": "ok"}))),
        Ok(Err(reason)) => unavailable(reason),
        Err(_) => unavailable("database did not answer in time"),
    }
}

fn unavailable(reason: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({
            "status": "unavailable",
            "error": {"code": "unavailable", "message": reason},
        })),
    )
}
