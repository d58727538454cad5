//! One error type for every route, rendered as the PROTOCOL.md error body:
//! `{"error": {"code", "message", "details"?}}`. Every error body (405 and
//! readiness included) is made here.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use sea_orm::{DbErr, RuntimeErr};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    InvalidRequest {
        message: String,
        details: Option<Value>,
    },
    #[error("protocolVersion must be 1")]
    UnsupportedProtocolVersion,
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("first new mutation id must be {expected}")]
    OutOfOrder { expected: i64 },
    #[error("{0}")]
    LastOwner(String),
    #[error("{0}")]
    Conflict(String),
    /// A conflict over one field of the request (`details.field`).
    #[error("{message}")]
    ConflictAt { message: String, field: String },
    #[error("{0}")]
    InviteUnusable(String),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("a push may carry at most {limit} mutations")]
    TooManyMutations { limit: usize },
    #[error("request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("Content-Encoding {0:?} is not accepted; send gzip or identity")]
    UnsupportedEncoding(String),
    #[error("the request body did not arrive within {secs} s")]
    RequestTimeout { secs: u64 },
    #[error("{message}")]
    LimitReached {
        limit: &'static str,
        message: String,
    },
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
    #[error("this route does not take that method")]
    MethodNotAllowed,
    #[error("internal error")]
    Internal,
}

/// The body of every non-2xx response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// `invalid_request`, `unsupported_protocol_version`, `unauthorized`,
    /// `forbidden`, `not_found`, `method_not_allowed`, `request_timeout`,
    /// `out_of_order`, `last_owner`, `conflict`, `limit_reached`,
    /// `invite_unusable`, `payload_too_large`, `too_many_mutations`,
    /// `unsupported_media_type`, `rate_limited`, `unavailable`, `internal`.
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

impl ApiError {
    /// A 400 about the body as a whole (`details.field` is `""`).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            details: Some(json!({ "field": "" })),
        }
    }

    /// A 400 for one field, naming it in the message and in `details.field`
    /// (a path: `mutations/3/id`).
    pub fn invalid_field(field: &str, message: impl std::fmt::Display) -> Self {
        if field.is_empty() {
            return Self::invalid(format!("the request body: {message}"));
        }
        Self::InvalidRequest {
            message: format!("{field}: {message}"),
            details: Some(json!({ "field": field })),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest { .. } | Self::UnsupportedProtocolVersion => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::OutOfOrder { .. }
            | Self::LastOwner(_)
            | Self::Conflict(_)
            | Self::ConflictAt { .. }
            | Self::LimitReached { .. } => StatusCode::CONFLICT,
            Self::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::InviteUnusable(_) => StatusCode::GONE,
            Self::PayloadTooLarge { .. } | Self::TooManyMutations { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::UnsupportedMediaType | Self::UnsupportedEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => "invalid_request",
            Self::UnsupportedProtocolVersion => "unsupported_protocol_version",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::OutOfOrder { .. } => "out_of_order",
            Self::LastOwner(_) => "last_owner",
            Self::Conflict(_) | Self::ConflictAt { .. } => "conflict",
            Self::InviteUnusable(_) => "invite_unusable",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::TooManyMutations { .. } => "too_many_mutations",
            Self::UnsupportedMediaType | Self::UnsupportedEncoding(_) => "unsupported_media_type",
            Self::RequestTimeout { .. } => "request_timeout",
            Self::LimitReached { .. } => "limit_reached",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Internal => "internal",
        }
    }

    fn details(&self) -> Option<Value> {
        match self {
            Self::InvalidRequest { details, .. } => details.clone(),
            Self::UnsupportedProtocolVersion => {
                Some(json!({ "field": "protocolVersion", "expected": 1 }))
            }
            Self::OutOfOrder { expected } => Some(json!({ "expected": expected })),
            Self::PayloadTooLarge { limit } | Self::TooManyMutations { limit } => {
                Some(json!({ "limit": limit }))
            }
            Self::RateLimited { retry_after_secs } => {
                Some(json!({ "retryAfter": retry_after_secs }))
            }
            Self::LimitReached { limit, .. } => Some(json!({ "limit": limit })),
            Self::ConflictAt { field, .. } => Some(json!({ "field": field })),
            _ => None,
        }
    }

    /// What goes in the error body's `error`.
    pub fn detail(&self) -> ErrorDetail {
        ErrorDetail {
            code: self.code(),
            message: self.to_string(),
            details: self.details(),
        }
    }

    /// The PROTOCOL.md error body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.detail(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(self.body())).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::RequestTimeout { .. } => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

/// Is this database error the database being out of reach (as opposed to a bug)?
pub fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            sqlx_unavailable(e)
        }
        _ => false,
    }
}

fn sqlx_unavailable(e: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as E;
    match e {
        E::Io(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed | E::Tls(_) => true,
        E::Protocol(_) => true,
        E::Database(db) => {
            // PostgreSQL: class 08 (connection exception), 57P01..57P03 (admin
            // shutdown, crash shutdown, cannot connect now), 40001 and 40P01
            // (a serialization failure or deadlock, and a read replica's
            // recovery conflict: the transaction was rolled back, a retry
            // may pass). SQLite: busy/locked.
            let code = db.code().unwrap_or_default();
            code.starts_with("08")
                || matches!(
                    code.as_ref(),
                    "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "5" | "6" | "517"
                )
        }
        _ => false,
    }
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) {
            tracing::warn!(error = %err, "database unavailable");
            Self::Unavailable(
                "the database is unreachable; nothing was written; retry later".into(),
            )
        } else {
            tracing::error!(error = %err, "database error");
            Self::Internal
        }
    }
}

impl From<sea_orm::TransactionError<ApiError>> for ApiError {
    fn from(err: sea_orm::TransactionError<ApiError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(e) => e.into(),
            sea_orm::TransactionError::Transaction(e) => e,
        }
    }
}
