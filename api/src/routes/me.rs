//! `GET /api/me`.

use axum::{Json, Router, extract::State, routing::get};
use sea_orm::EntityTrait;
use serde::Serialize;

use crate::{AppState, auth::AuthUser, error::ApiError};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/me", get(me))
}

/// The caller, created on first sight of a `sub`.
#[utoipa::path(get, path = "/api/me", tag = "babies",
    responses((status = 200, body = Me), crate::openapi::ApiErrors))]
pub(crate) async fn me(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Me>, ApiError> {
    let row = entity::users::Entity::find_by_id(user.id.clone())
        .one(&state.db)
        .await?
        .ok_or(ApiError::Internal)?;
    Ok(Json(Me {
        user_id: row.id,
        display_name: row.display_name,
    }))
}

/// `GET /api/me`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub user_id: String,
    pub display_name: Option<String>,
}
