//! `/api/babies/…`: babies, their caregivers and their invites.

use axum::{
    Json, Router,
    extract::{RawQuery, State},
    http::StatusCode,
    routing::{delete, get, post, put},
};
use sea_orm::prelude::Uuid;
use serde::Deserialize;

use crate::{
    AppState,
    access::Level,
    auth::AuthUser,
    babies::{self, BabyPatch, BabyView, CaregiverView, NewBaby},
    db::begin_read,
    error::ApiError,
    extract::{ApiJson, ApiPath},
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
        .route("/api/babies/{id}/summary", get(summary))
        .route("/api/babies/{id}/export", get(export))
        .route(crate::gate::IMPORT, post(import))
}

/// Create a baby; the caller becomes its owner. The same `id` again is a safe retry (200).
#[utoipa::path(post, path = "/api/babies", tag = "babies", request_body = NewBaby,
    responses((status = 201, body = BabyView), (status = 200, description = "Retry: the existing baby", body = BabyView),
        (status = 409, description = "`conflict`: id used by a baby the caller cannot see; `limit_reached`: `babies_per_user`", body = crate::error::ErrorBody), crate::openapi::ApiErrors))]
pub(crate) async fn create(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<NewBaby>,
) -> Result<(StatusCode, Json<BabyView>), ApiError> {
    let (baby, created) = babies::create(
        &s.db,
        &s.events,
        &user.id,
        body,
        s.config.max_babies_per_user,
    )
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(baby)))
}

/// Every baby the caller can access, archived ones included.
#[utoipa::path(get, path = "/api/babies", tag = "babies",
    responses((status = 200, body = babies::BabyList), crate::openapi::ApiErrors))]
pub(crate) async fn list(
    State(s): State<AppState>,
    user: AuthUser,
) -> Result<Json<babies::BabyList>, ApiError> {
    let txn = begin_read(&s.db, "babies").await?;
    let out = babies::list(&txn, &user.id).await?;
    txn.commit().await?;
    Ok(Json(out))
}

/// One baby.
#[utoipa::path(get, path = "/api/babies/{id}", tag = "babies", params(("id" = Uuid, Path)),
    responses((status = 200, body = BabyView), (status = 404, body = crate::error::ErrorBody), crate::openapi::ApiErrors))]
pub(crate) async fn show(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<BabyView>, ApiError> {
    let txn = begin_read(&s.db, "baby").await?;
    let out = babies::get(&txn, &user.id, id).await?;
    txn.commit().await?;
    Ok(Json(out))
}

/// Edit a baby (owner, editor).
#[utoipa::path(patch, path = "/api/babies/{id}", tag = "babies", params(("id" = Uuid, Path)), request_body = BabyPatch,
    responses((status = 200, body = BabyView), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, description = "archived", body = crate::error::ErrorBody), crate::openapi::ApiErrors))]
pub(crate) async fn update(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(patch): ApiJson<BabyPatch>,
) -> Result<Json<BabyView>, ApiError> {
    Ok(Json(
        babies::update(&s.db, &s.events, &user.id, id, patch).await?,
    ))
}

/// Archive a baby (owner): a soft delete; its logs stay.
#[utoipa::path(delete, path = "/api/babies/{id}", tag = "babies", params(("id" = Uuid, Path)),
    responses((status = 200, body = BabyView), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), crate::openapi::ApiErrors))]
pub(crate) async fn archive(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<BabyView>, ApiError> {
    Ok(Json(babies::archive(&s.db, &s.events, &user.id, id).await?))
}

/// Who may see the baby (any level).
#[utoipa::path(get, path = "/api/babies/{id}/caregivers", tag = "babies", params(("id" = Uuid, Path)),
    responses((status = 200, body = babies::CaregiverList), (status = 404, body = crate::error::ErrorBody), crate::openapi::ApiErrors))]
pub(crate) async fn caregivers(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<babies::CaregiverList>, ApiError> {
    let txn = begin_read(&s.db, "caregivers").await?;
    let caregivers = babies::caregivers(&txn, &user.id, id).await?;
    txn.commit().await?;
    Ok(Json(babies::CaregiverList { caregivers }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SetLevel {
    access_level: Level,
}

/// Change a caregiver's level (owner).
#[utoipa::path(put, path = "/api/babies/{id}/caregivers/{user_id}", tag = "babies",
    params(("id" = Uuid, Path), ("user_id" = String, Path)), request_body = SetLevel,
    responses((status = 200, body = CaregiverView), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, description = "`last_owner`", body = crate::error::ErrorBody), crate::openapi::ApiErrors))]
pub(crate) async fn set_caregiver(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath((id, target)): ApiPath<(Uuid, String)>,
    ApiJson(body): ApiJson<SetLevel>,
) -> Result<Json<CaregiverView>, ApiError> {
    Ok(Json(
        babies::set_caregiver(&s.db, &s.events, &user.id, id, &target, body.access_level).await?,
    ))
}

/// Remove a caregiver (owner), or leave.
#[utoipa::path(delete, path = "/api/babies/{id}/caregivers/{user_id}", tag = "babies",
    params(("id" = Uuid, Path), ("user_id" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, description = "`last_owner`", body = crate::error::ErrorBody), crate::openapi::ApiErrors))]
pub(crate) async fn remove_caregiver(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath((id, target)): ApiPath<(Uuid, String)>,
) -> Result<StatusCode, ApiError> {
    babies::remove_caregiver(&s.db, &s.events, &user.id, id, &target).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Make an invite (owner); its token is shown this once.
#[utoipa::path(post, path = "/api/babies/{id}/invites", tag = "babies", params(("id" = Uuid, Path)), request_body = NewInvite,
    responses((status = 201, body = InviteCreated), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "`limit_reached`: `open_invites_per_baby`", body = crate::error::ErrorBody), crate::openapi::ApiErrors))]
pub(crate) async fn create_invite(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<NewInvite>,
) -> Result<(StatusCode, Json<InviteCreated>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(
            invites::create(
                &s.db,
                &user.id,
                id,
                body,
                s.config.max_open_invites_per_baby,
            )
            .await?,
        ),
    ))
}

/// The baby's invites, without tokens (owner).
#[utoipa::path(get, path = "/api/babies/{id}/invites", tag = "babies", params(("id" = Uuid, Path)),
    responses((status = 200, body = invites::InviteList), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), crate::openapi::ApiErrors))]
pub(crate) async fn list_invites(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<invites::InviteList>, ApiError> {
    let txn = begin_read(&s.db, "invites").await?;
    let invites = invites::list(&txn, &user.id, id).await?;
    txn.commit().await?;
    Ok(Json(invites::InviteList { invites }))
}

/// Revoke an invite (owner).
#[utoipa::path(delete, path = "/api/babies/{id}/invites/{invite_id}", tag = "babies",
    params(("id" = Uuid, Path), ("invite_id" = Uuid, Path)),
    responses((status = 204, description = "Revoked"), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), crate::openapi::ApiErrors))]
pub(crate) async fn revoke_invite(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath((id, invite_id)): ApiPath<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    invites::revoke(&s.db, &user.id, id, invite_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accept an invite.
#[utoipa::path(post, path = "/api/invites/accept", tag = "babies", request_body = AcceptInvite,
    responses((status = 200, body = Accepted), (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "`limit_reached`: `babies_per_user`", body = crate::error::ErrorBody),
        (status = 410, description = "`invite_unusable`", body = crate::error::ErrorBody), crate::openapi::ApiErrors))]
pub(crate) async fn accept_invite(
    State(s): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<AcceptInvite>,
) -> Result<Json<Accepted>, ApiError> {
    Ok(Json(
        invites::accept(
            &s.db,
            &s.events,
            &user.id,
            body,
            s.config.max_babies_per_user,
        )
        .await?,
    ))
}

/// What a tired parent asks (any level): days in a time zone, the latest
/// entries, running timers, medication doses, growth percentiles.
#[utoipa::path(get, path = "/api/babies/{id}/summary", tag = "babies",
    params(("id" = Uuid, Path),
        ("from" = Option<String>, Query, format = Date, description = "First date in `tz` (default today there)"),
        ("to" = Option<String>, Query, format = Date, description = "Last date in `tz` (default today there); at most 91 days after `from`"),
        ("tz" = Option<String>, Query, description = "IANA time-zone name (default UTC)")),
    responses((status = 200, body = crate::summary::Summary), (status = 404, body = crate::error::ErrorBody), crate::openapi::ApiErrors))]
pub(crate) async fn summary(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    RawQuery(query): RawQuery,
) -> Result<Json<crate::summary::Summary>, ApiError> {
    let now = crate::time::now();
    let range = crate::summary::Range::parse(query.as_deref(), now)?;
    let txn = begin_read(&s.db, "summary").await?;
    let baby = babies::get(&txn, &user.id, id).await?;
    let baby = crate::summary::Baby {
        id,
        birth_date: baby.birth_date,
        gender: baby.gender,
    };
    let out = crate::summary::summarize(&txn, &baby, &range, now).await?;
    txn.commit().await?;
    Ok(Json(out))
}

/// The baby's whole history (any level): JSON (every kind, archived entries
/// included, each as pull sends it), or one kind as CSV in a time zone.
/// Streamed.
#[utoipa::path(get, path = "/api/babies/{id}/export", tag = "babies",
    params(("id" = Uuid, Path),
        ("format" = Option<String>, Query, description = "`json` (default) or `csv`"),
        ("kind" = Option<String>, Query, description = "With `csv`: the kind"),
        ("tz" = Option<String>, Query, description = "With `csv`: IANA time-zone name of the timestamps (default UTC)")),
    responses(
        (status = 200, description = "The export document (`application/json`) or one kind's entries (`text/csv; charset=utf-8`), as an attachment",
            content((crate::export::ExportDoc = "application/json"), (String = "text/csv; charset=utf-8"))),
        (status = 404, body = crate::error::ErrorBody), crate::openapi::ApiErrors))]
pub(crate) async fn export(
    State(s): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    RawQuery(query): RawQuery,
) -> Result<axum::response::Response, ApiError> {
    let format = crate::export::Format::parse(query.as_deref())?;
    let slot = s.export_slots.clone().try_acquire_owned().map_err(|_| {
        ApiError::Unavailable("the server is at capacity for exports; retry later".into())
    })?;
    let txn = begin_read(&s.db, "export").await?;
    let baby = babies::get(&txn, &user.id, id).await?;
    crate::export::respond(txn, baby, format, slot)
}

/// Restore a baby from an export document (gzip welcome), in one
/// transaction: a new baby (201; the caller its owner), or one the caller
/// owns (200; entries missing are added, the rest left as they are).
#[utoipa::path(post, path = "/api/babies/import", tag = "babies",
    request_body(content = crate::export::ExportDoc, content_type = "application/json"),
    responses((status = 201, body = crate::import::Imported), (status = 200, description = "Into a baby the caller owns", body = crate::import::Imported),
        (status = 409, description = "`conflict`: the baby exists and the caller does not own it, or an entry id is used in another baby (`details.field`); `limit_reached`: `babies_per_user`", body = crate::error::ErrorBody),
        crate::openapi::ApiErrors))]
pub(crate) async fn import(
    State(s): State<AppState>,
    user: AuthUser,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<crate::import::Imported>), ApiError> {
    if !crate::extract::is_json_content_type(&headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let limit = s.config.import_body_limit_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })?;
    let (created, out) = crate::import::import(
        &s.db,
        &s.events,
        &user.id,
        bytes,
        s.config.max_babies_per_user,
    )
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(out)))
}
