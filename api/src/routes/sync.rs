//! `/api/sync/push` and `/api/sync/pull`.

use axum::{
    Json, Router,
    extract::{Request, State},
    response::IntoResponse,
    routing::post,
};
use serde_json::{Value, json};

use crate::{
    AppState,
    auth::AuthUser,
    error::{ApiError, parse_json_strict, read_json_body},
    sync::{pull, push, validate},
};

/// A sync request's body: JSON within the body limit, no duplicate keys.
async fn sync_body(req: Request) -> Result<Value, ApiError> {
    parse_json_strict(&read_json_body(req, &()).await?)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/sync/push", post(push_handler))
        .route("/api/sync/pull", post(pull_handler))
}

/// Push a batch of mutations, applied exactly once in one transaction.
#[utoipa::path(post, path = "/api/sync/push", tag = "sync", request_body = crate::openapi::PushBody,
    responses((status = 200, body = crate::openapi::PushAnswer), (status = 403, description = "`clientId` of another user", body = crate::openapi::ErrorBody),
        (status = 409, description = "`out_of_order` (`details.expected`)", body = crate::openapi::ErrorBody), crate::openapi::ApiErrors))]
pub(crate) async fn push_handler(
    State(s): State<AppState>,
    user: AuthUser,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let request = validate::parse_push(sync_body(req).await?, s.config.push_max_mutations)?;
    let outcome = push::push(&s.db, &user.id, request).await?;
    for (entity, status) in &outcome.tally {
        crate::metrics::push_outcome(entity, status);
    }
    Ok(Json(
        json!({"lastMutationId": outcome.last_mutation_id, "results": outcome.results}),
    ))
}

/// Pull what changed since the cursor.
#[utoipa::path(post, path = "/api/sync/pull", tag = "sync", request_body = crate::openapi::PullBody,
    responses((status = 200, body = crate::openapi::PullAnswer), (status = 403, description = "`clientId` of another user", body = crate::openapi::ErrorBody), crate::openapi::ApiErrors))]
pub(crate) async fn pull_handler(
    State(s): State<AppState>,
    user: AuthUser,
    req: Request,
) -> Result<axum::response::Response, ApiError> {
    let request = validate::parse_pull(sync_body(req).await?)?;
    let key = s
        .cursor_key
        .get_or_try_init(|| pull::cursor_key(&s.db))
        .await?;
    let outcome = pull::pull(&s.db, key, &user.id, request).await?;
    crate::metrics::pull_entries(outcome.entries);
    Ok(Json(outcome.body).into_response())
}
