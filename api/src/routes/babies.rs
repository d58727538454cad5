//! `/api/babies/…`: babies, their caregivers and their invites.

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{delete, get, post, put},
};
use sea_orm::prelude::Uuid;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    AppState,
    access::Level,
    auth::AuthUser,
    babies::{self, BabyPatch, BabyView, CaregiverView, NewBaby},
    error::{ApiError, ApiJson, ApiPath},
    invites::{self, AcceptInvite, Accepted, InviteCreated, NewInvite},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/babies", post(create).get(list))
        .route("/api/babies/{id}", get(show).patch(update).delete(archive))
        .route("/api/babies/{id}/caregivers", get(caregivers))
        .route(
            "/api/babies/{id}/caregivers/{user_id}",
            put(set_caregiver).delete(remove_caregiver),
        )
        .route(
            "/api/babies/{id}/invites",
            post(create_invite).get(list_invites),
        )
        .route(
            "/api/babies/{id}/invites/{invite_id}",
            delete(revoke_invite),
        )
        .route("/api/invites/accept", post(accept_invite))
}

async fn create(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<NewBaby>,
) -> Result<(StatusCode, Json<BabyView>), ApiError> {
    let (baby, created) = babies::create(&s.db, &user.id, body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(baby)))
}

async fn list(State(s): State<AppState>, user: AuthUser) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "babies": babies::list(&s.db, &user.id).await? }),
    ))
}

async fn show(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<BabyView>, ApiError> {
    Ok(Json(babies::get(&s.db, &user.id, id).await?))
}

async fn update(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(patch): ApiJson<BabyPatch>,
) -> Result<Json<BabyView>, ApiError> {
    Ok(Json(babies::update(&s.db, &user.id, id, patch).await?))
}

async fn archive(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<BabyView>, ApiError> {
    Ok(Json(babies::archive(&s.db, &user.id, id).await?))
}

async fn caregivers(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "caregivers": babies::caregivers(&s.db, &user.id, id).await? }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SetLevel {
    access_level: Level,
}

async fn set_caregiver(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath((id, target)): ApiPath<(Uuid, String)>,
    ApiJson(body): ApiJson<SetLevel>,
) -> Result<Json<CaregiverView>, ApiError> {
    Ok(Json(
        babies::set_caregiver(&s.db, &user.id, id, &target, body.access_level).await?,
    ))
}

async fn remove_caregiver(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath((id, target)): ApiPath<(Uuid, String)>,
) -> Result<StatusCode, ApiError> {
    babies::remove_caregiver(&s.db, &user.id, id, &target).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create_invite(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<NewInvite>,
) -> Result<(StatusCode, Json<InviteCreated>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(invites::create(&s.db, &user.id, id, body).await?),
    ))
}

async fn list_invites(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "invites": invites::list(&s.db, &user.id, id).await? }),
    ))
}

async fn revoke_invite(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath((id, invite_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    invites::revoke(&s.db, &user.id, id, invite_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn accept_invite(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<AcceptInvite>,
) -> Result<Json<Accepted>, ApiError> {
    Ok(Json(invites::accept(&s.db, &user.id, body).await?))
}
