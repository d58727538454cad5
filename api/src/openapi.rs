//! The OpenAPI 3.1 document of every route, generated from the handlers'
//! annotations and the very types they take and give; served at
//! `/openapi.json`. Log kinds come from [`crate::kinds::KINDS`]: each kind's
//! Entry and patch schemas, `entity` as an enum of their names, and `data`
//! as a `oneOf` per kind.

use axum::{Json, response::IntoResponse};
use utoipa::{
    IntoResponses, Modify, OpenApi, ToSchema,
    openapi::{
        AllOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, Ref, RefOr, Schema, Type,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use crate::{
    access::Level,
    babies::{BabyList, BabyPatch, BabyView, CaregiverList, CaregiverView, Gender, NewBaby},
    error::{ErrorBody, ErrorDetail},
    invites::{AcceptInvite, Accepted, InviteCreated, InviteList, InviteView, NewInvite},
    kinds::{CommonData, KINDS},
    routes::{self, babies::SetLevel, health::Health, me::Me},
    sync::{
        plan::{MutationResult, RejectCode},
        pull::PullBody,
        push::PushAnswer,
        validate::Op,
    },
};

/// One client mutation, as sent. Push reads it by hand (a mutation whose
/// `entity`, `op` or `data` is wrong is answered `rejected`/`invalid`, not a
/// 400; only its `id` must be right), so this type only documents it.
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct MutationIn {
    /// Consecutive per client, from 1.
    #[schema(minimum = 1)]
    id: i64,
    #[schema(schema_with = entity_names)]
    entity: String,
    op: Op,
    /// The entry's `id`, and for `create` its `babyId` and `startedAt`; the
    /// fields of the mutation's entity.
    #[schema(schema_with = mutation_data)]
    data: serde_json::Value,
    /// `update` and `delete` only.
    base_version: Option<i64>,
}

/// `POST /api/sync/push`, as sent (read by hand, see [`MutationIn`]).
#[allow(dead_code)]
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

/// `POST /api/sync/pull`, as sent (read by hand to name a bad cursor).
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct PullRequestBody {
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

fn entry_ref(name: String) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

/// `entity`: the name of one of the kinds.
pub fn entity_names() -> Schema {
    let names: Vec<&str> = KINDS.iter().map(|k| k.name()).collect();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names))
        .into()
}

/// A mutation's `data`: one of the kinds' fields, with the common ones.
pub fn mutation_data() -> Schema {
    let mut one_of = OneOfBuilder::new();
    for kind in KINDS {
        let (_, data) = kind.schema_names();
        one_of = one_of.item(
            AllOfBuilder::new()
                .item(entry_ref(CommonData::name().into_owned()))
                .item(entry_ref(data))
                .item(
                    ObjectBuilder::new()
                        .property(
                            "id",
                            ObjectBuilder::new().schema_type(Type::String).format(Some(
                                utoipa::openapi::SchemaFormat::KnownFormat(
                                    utoipa::openapi::KnownFormat::Uuid,
                                ),
                            )),
                        )
                        .required("id"),
                ),
        );
    }
    one_of.into()
}

/// An entry of any kind, as pull sends it.
pub fn any_entry() -> Schema {
    let mut one_of = OneOfBuilder::new();
    for kind in KINDS {
        one_of = one_of.item(entry_ref(kind.schema_names().0));
    }
    one_of.into()
}

/// Pull's `changes`: per kind, its entries.
pub fn changes() -> Schema {
    let mut object = ObjectBuilder::new();
    for kind in KINDS {
        object = object
            .property(
                kind.name(),
                ArrayBuilder::new().items(entry_ref(kind.schema_names().0)),
            )
            .required(kind.name());
    }
    object.into()
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
        // Every kind's Entry and patch, and what they use.
        let mut schemas = vec![];
        for kind in KINDS {
            kind.schemas(&mut schemas);
        }
        components.schemas.extend(schemas);
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
        routes::babies::summary,
        routes::babies::export,
        routes::babies::import,
        routes::sync::push_handler,
        routes::sync::pull_handler,
        routes::sync::events_handler,
    ),
    components(schemas(
        ErrorBody, ErrorDetail, Health, Me, BabyList, CaregiverList, InviteList,
        BabyView, NewBaby, BabyPatch, Gender, Level, CaregiverView, SetLevel, NewInvite, InviteCreated,
        InviteView, AcceptInvite, Accepted, PushBody, MutationIn, Op, PushAnswer, MutationResult,
        RejectCode, PullRequestBody, PullBody, CommonData,
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
