//! The OpenAPI 3.1 document of every route, generated from the handlers'
//! annotations and the types they take and give; served at `/openapi.json`.
//! The schemas below describe bodies the code builds as JSON values.
#![allow(dead_code)]

use axum::{Json, response::IntoResponse};
use serde_json::Value;
use utoipa::{
    IntoResponses, Modify, OpenApi, ToSchema,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::{
    access::Level,
    babies::{BabyPatch, BabyView, CaregiverView, Gender, NewBaby},
    invites::{AcceptInvite, Accepted, InviteCreated, InviteView, NewInvite},
    routes::{self, babies::SetLevel},
};

/// The error body of every non-2xx response.
#[derive(ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    /// `invalid_request`, `unsupported_protocol_version`, `unauthorized`,
    /// `forbidden`, `not_found`, `out_of_order`, `last_owner`, `conflict`,
    /// `invite_unusable`, `payload_too_large`, `too_many_mutations`,
    /// `unsupported_media_type`, `rate_limited`, `unavailable`, `internal`,
    /// `method_not_allowed`.
    code: String,
    /// What went wrong, for a person.
    message: String,
    #[schema(value_type = Option<Object>)]
    details: Option<Value>,
}

/// `{"status": "ok"}`.
#[derive(ToSchema)]
pub struct Status {
    status: String,
}

/// `/health/ready` when the database is out of reach or migrations are pending.
#[derive(ToSchema)]
pub struct NotReady {
    /// `unavailable`.
    status: String,
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct Me {
    user_id: String,
    display_name: Option<String>,
}

#[derive(ToSchema)]
pub struct BabyList {
    babies: Vec<BabyView>,
}

#[derive(ToSchema)]
pub struct CaregiverList {
    caregivers: Vec<CaregiverView>,
}

#[derive(ToSchema)]
pub struct InviteList {
    invites: Vec<InviteView>,
}

/// One client mutation. A mutation whose `entity`, `op` or `data` is wrong is
/// answered `rejected`/`invalid` (not a 400); only its `id` must be right.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct MutationIn {
    /// Consecutive per client, from 1.
    #[schema(minimum = 1)]
    id: i64,
    /// `feed_log`, `sleep_log` or `nappy_log`.
    entity: String,
    /// `create`, `update` or `delete`.
    op: String,
    /// The entry's fields (camelCase), with its `id` (and `babyId` to create).
    #[schema(value_type = Object)]
    data: Value,
    base_version: Option<i64>,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct PushBody {
    /// Must be 1.
    #[schema(minimum = 1, maximum = 1)]
    protocol_version: i64,
    #[schema(value_type = String, format = Uuid)]
    client_id: uuid::Uuid,
    mutations: Vec<MutationIn>,
}

/// A mutation's outcome.
#[derive(ToSchema)]
pub struct MutationResult {
    id: i64,
    /// `applied`, `duplicate` or `rejected`.
    status: String,
    /// The record's version after an `applied` mutation.
    version: Option<i64>,
    /// For `rejected`: `invalid`, `forbidden`, `not_found` or `conflict`.
    code: Option<String>,
    message: Option<String>,
    /// For a `conflict`: the stored record, as pull sends it.
    #[schema(value_type = Option<Object>)]
    current: Option<Value>,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct PushAnswer {
    last_mutation_id: i64,
    results: Vec<MutationResult>,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct PullBody {
    /// Must be 1.
    #[schema(minimum = 1, maximum = 1)]
    protocol_version: i64,
    #[schema(value_type = String, format = Uuid)]
    client_id: uuid::Uuid,
    /// `null` for the first sync, else the `cursor` of the previous pull.
    cursor: Option<String>,
    #[schema(minimum = 1, maximum = 5000)]
    limit: Option<i64>,
}

/// Fields every log entry has.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct FeedEntry {
    #[schema(value_type = String, format = Uuid)]
    id: uuid::Uuid,
    #[schema(value_type = String, format = Uuid)]
    baby_id: uuid::Uuid,
    started_at: String,
    /// `breast` or `bottle`.
    method: String,
    ended_at: Option<String>,
    duration_minutes: Option<i32>,
    amount_ml: Option<i32>,
    is_estimated: bool,
    estimated_source: Option<String>,
    end_side: Option<String>,
    notes: Option<String>,
    logged_by: String,
    created_at: String,
    updated_at: String,
    archived_at: Option<String>,
    version: i64,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct SleepEntry {
    #[schema(value_type = String, format = Uuid)]
    id: uuid::Uuid,
    #[schema(value_type = String, format = Uuid)]
    baby_id: uuid::Uuid,
    started_at: String,
    ended_at: Option<String>,
    duration_minutes: Option<i32>,
    notes: Option<String>,
    logged_by: String,
    created_at: String,
    updated_at: String,
    archived_at: Option<String>,
    version: i64,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct NappyEntry {
    #[schema(value_type = String, format = Uuid)]
    id: uuid::Uuid,
    #[schema(value_type = String, format = Uuid)]
    baby_id: uuid::Uuid,
    started_at: String,
    /// `wee`, `poo`, `mixed`, `dry` or `clean`.
    r#type: Option<String>,
    colour: Option<String>,
    consistency: Option<String>,
    notes: Option<String>,
    logged_by: String,
    created_at: String,
    updated_at: String,
    archived_at: Option<String>,
    version: i64,
}

#[derive(ToSchema)]
pub struct Changes {
    feed_log: Vec<FeedEntry>,
    sleep_log: Vec<SleepEntry>,
    nappy_log: Vec<NappyEntry>,
}

#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct PullAnswer {
    cursor: String,
    has_more: bool,
    last_mutation_id: i64,
    babies: Vec<BabyView>,
    #[schema(value_type = Vec<String>)]
    revoked_baby_ids: Vec<uuid::Uuid>,
    changes: Changes,
}

/// Errors any `/api/*` route can answer.
#[derive(IntoResponses)]
pub enum ApiErrors {
    /// `invalid_request` (or `unsupported_protocol_version` on sync)
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorBody),
    /// `unauthorized`: no token, or a bad one
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// `request_timeout`: the body did not arrive within the body timeout
    #[response(status = 408)]
    RequestTimeout(ErrorBody),
    /// `payload_too_large` / `too_many_mutations`
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// `unsupported_media_type`
    #[response(status = 415)]
    MediaType(ErrorBody),
    /// `rate_limited`, with `Retry-After`
    #[response(status = 429)]
    RateLimited(ErrorBody),
    /// `internal`: a bug; nothing was committed
    #[response(status = 500)]
    Internal(ErrorBody),
    /// `unavailable`: database unreachable, over capacity or too slow; nothing was committed
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "babysync", description = "Sync backend for offline-first baby-tracking apps (protocol version 1)."),
    paths(
        routes::health::live,
        routes::health::ready,
        crate::metrics::render,
        openapi_json,
        routes::me::me,
        routes::babies::create,
        routes::babies::list,
        routes::babies::show,
        routes::babies::update,
        routes::babies::archive,
        routes::babies::caregivers,
        routes::babies::set_caregiver,
        routes::babies::remove_caregiver,
        routes::babies::create_invite,
        routes::babies::list_invites,
        routes::babies::revoke_invite,
        routes::babies::accept_invite,
        routes::sync::push_handler,
        routes::sync::pull_handler,
    ),
    components(schemas(
        ErrorBody, ErrorDetail, Status, NotReady, Me, BabyList, CaregiverList, InviteList,
        BabyView, NewBaby, BabyPatch, Gender, Level, CaregiverView, SetLevel, NewInvite, InviteCreated,
        InviteView, AcceptInvite, Accepted, PushBody, MutationIn, PushAnswer, MutationResult, PullBody,
        PullAnswer, Changes, FeedEntry, SleepEntry, NappyEntry,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "health", description = "Probes and metrics"),
        (name = "babies", description = "Babies, caregivers and invites"),
        (name = "sync", description = "Push and pull"),
    )
)]
pub struct ApiDoc;

/// `GET /openapi.json`.
#[utoipa::path(get, path = "/openapi.json", tag = "health", security(()),
    responses((status = 200, description = "This document", content_type = "application/json")))]
pub async fn openapi_json() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}
