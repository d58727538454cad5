//! `GET /api/me`.

use axum::{Json, Router, extract::State, routing::get};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::{AppState, auth::AuthUser, error::ApiError};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/me", get(me))
}

/// The caller, created on first sight of a `sub`.
#[utoipa::path(get, path = "/api/me", tag = "babies",
    responses((status = 200, body = crate::openapi::Me), crate::openapi::ApiErrors))]
pub(crate) async fn me(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Value>, ApiError> {
    let row = entity::users::Entity::find_by_id(user.id.clone())
        .one(&state.db)
        .await?
        .ok_or(ApiError::Internal)?;
    Ok(Json(
        json!({"userId": row.id, "displayName": row.display_name}),
    ))
}
