//! `/api/sync/push` and `/api/sync/pull`.

use axum::{
    Json, Router,
    extract::{Request, State},
    routing::post,
};
use serde_json::{Value, json};

use crate::{
    AppState,
    auth::AuthUser,
    error::{ApiError, parse_json, read_json_body},
    sync::{pull, push, validate},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/sync/push", post(push_handler))
        .route("/api/sync/pull", post(pull_handler))
}

async fn push_handler(
    State(s): State<AppState>,
    user: AuthUser,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_json_body(req, &()).await?;
    let body: Value = parse_json(&bytes)?;
    let request = validate::parse_push(body, s.config.push_max_mutations)?;
    let outcome = push::push(&s.db, &user.id, request).await?;
    for (entity, status) in &outcome.tally {
        crate::metrics::push_outcome(entity, status);
    }
    Ok(Json(
        json!({"lastMutationId": outcome.last_mutation_id, "results": outcome.results}),
    ))
}

async fn pull_handler(
    State(s): State<AppState>,
    user: AuthUser,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_json_body(req, &()).await?;
    let body: Value = parse_json(&bytes)?;
    let request = validate::parse_pull(body)?;
    let key = s
        .cursor_key
        .get_or_try_init(|| pull::cursor_key(&s.db))
        .await?;
    let outcome = pull::pull(&s.db, key, &user.id, request).await?;
    crate::metrics::pull_entries(outcome.entries);
    Ok(Json(outcome.body))
}
