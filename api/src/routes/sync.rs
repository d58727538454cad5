//! `/api/sync/push` and `/api/sync/pull`.

use axum::{
    Json, Router,
    extract::{Request, State},
    routing::{get, post},
};
use serde_json::Value;

use crate::{
    AppState,
    auth::AuthUser,
    error::ApiError,
    extract::{parse_json_strict, read_json_body},
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

/// The live-update stream: behind [`crate::gate::gate_stream`], which does no
/// database work, so that every client reconnecting at once (after a deploy)
/// costs the pool nothing.
pub fn events_router() -> Router<AppState> {
    Router::new().route("/api/sync/events", get(events_handler))
}

/// Push a batch of mutations, applied exactly once in one transaction.
#[utoipa::path(post, path = "/api/sync/push", tag = "sync", request_body = crate::openapi::PushBody,
    responses((status = 200, body = crate::sync::push::PushAnswer), (status = 403, description = "`clientId` of another user", body = crate::error::ErrorBody),
        (status = 409, description = "`out_of_order` (`details.expected`)", body = crate::error::ErrorBody), crate::openapi::ApiErrors))]
pub(crate) async fn push_handler(
    State(s): State<AppState>,
    user: AuthUser,
    req: Request,
) -> Result<Json<push::PushAnswer>, ApiError> {
    let request = validate::parse_push(sync_body(req).await?, s.config.push_max_mutations)?;
    let answer = push::push(&s.db, &s.events, &user.id, request).await?;
    for (entity, status) in &answer.tally {
        crate::metrics::push_outcome(entity, status);
    }
    Ok(Json(answer))
}

/// Pull what changed since the cursor.
#[utoipa::path(post, path = "/api/sync/pull", tag = "sync", request_body = crate::openapi::PullRequestBody,
    responses((status = 200, body = crate::sync::pull::PullBody), (status = 403, description = "`clientId` of another user", body = crate::error::ErrorBody), crate::openapi::ApiErrors))]
pub(crate) async fn pull_handler(
    State(s): State<AppState>,
    user: AuthUser,
    req: Request,
) -> Result<axum::response::Response, ApiError> {
    let request = validate::parse_pull(sync_body(req).await?)?;
    // A few pulls per user, and pulls together on half the pool at most.
    let _mine = s.pulls.start(&user.id).ok_or(ApiError::RateLimited {
        retry_after_secs: 1,
    })?;
    let _slot = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        s.pull_slots.clone().acquire_owned(),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .ok_or_else(|| {
        ApiError::Unavailable("too many pulls are running; nothing was lost; retry later".into())
    })?;
    let key = s
        .cursor_key
        .get_or_try_init(|| pull::cursor_key(&s.db))
        .await?;
    let outcome = pull::pull(&s.db, key, &user.id, request).await?;
    crate::metrics::pull_entries(outcome.entries);
    outcome.into_response()
}

/// Live updates: a server-sent event stream. `ready` first (pull now), then
/// `poke` with the babies that changed (pull them), and `: keep-alive`
/// comments; it ends when the token expires. At most 10 per user.
#[utoipa::path(get, path = "/api/sync/events", tag = "sync",
    responses((status = 200, description = "`event: ready` / `data: {}`, then `event: poke` / `data: {\"babyIds\": [uuid]}`, and `: keep-alive` comments at least every 15 s", content_type = "text/event-stream", body = crate::events::StreamEvent),
        crate::openapi::ApiErrors))]
pub(crate) async fn events_handler(
    State(s): State<AppState>,
    user: AuthUser,
) -> Result<axum::response::Response, ApiError> {
    s.events.stream(&user.id, user.expires)
}
