//! The gate every `/api/*` request passes before its handler, cheapest check
//! first, so that no caller can hold what others need:
//!
//! 1. the bearer token is verified (no database work);
//! 2. the caller's rate limit is taken (a refused request does no database work);
//! 3. the body is read whole, within `BODY_TIMEOUT_SECS` (else 408) and
//!    `BODY_LIMIT_BYTES` of decompressed bytes (else 413), `gzip` decoded; a
//!    user sends at most [`crate::limits::BODIES_PER_USER`] bodies at once (else 429), so one
//!    caller's slow bodies hold a bounded amount of memory;
//! 4. only then one of the `MAX_CONCURRENT_REQUESTS` slots is taken (none
//!    free: 503 at once), so a slow body never holds a slot;
//! 5. the user row is created or refreshed, and the handler runs.

use std::io::Read;
use std::sync::Arc;

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body_util::BodyExt;
use tokio::sync::OwnedSemaphorePermit;

use crate::{
    AppState,
    auth::{AuthUser, Claims, bearer},
    error::ApiError,
    extract::BodyLimit,
};

pub async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match admit(&state, req).await {
        Ok((req, slot)) => {
            let response = next.run(req).await;
            drop(slot);
            response
        }
        Err(e) => e.into_response(),
    }
}

/// The route whose body limit is `IMPORT_BODY_LIMIT_BYTES`.
pub const IMPORT: &str = "/api/babies/import";

/// An import's turn: held by the request until it is answered.
#[derive(Clone)]
pub struct ImportTurn(#[allow(dead_code)] Arc<OwnedSemaphorePermit>);

async fn admit(
    state: &AppState,
    req: Request,
) -> Result<(Request, OwnedSemaphorePermit), ApiError> {
    let claims = identify(state, req.headers()).await?;
    let (mut parts, body) = req.into_parts();
    // An import carries a whole history: its own limit, and one at a time
    // (taken before its body is read, held until it is answered).
    let import = parts.method == axum::http::Method::POST && parts.uri.path() == IMPORT;
    let limit = if import {
        let turn = state
            .import_slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                ApiError::Unavailable(
                    "another import is running; nothing was written; retry later".into(),
                )
            })?;
        parts.extensions.insert(ImportTurn(Arc::new(turn)));
        state.config.import_body_limit_bytes
    } else {
        state.config.body_limit_bytes
    };
    let body = if http_body::Body::size_hint(&body).exact() == Some(0) {
        body
    } else {
        let _upload = state
            .uploads
            .start(&claims.sub)
            .ok_or(ApiError::RateLimited {
                retry_after_secs: 1,
            })?;
        read_body(&mut parts, body, limit, state.config.body_timeout_secs).await?
    };
    parts.extensions.insert(BodyLimit(limit));
    let slot = state.slots.clone().try_acquire_owned().map_err(|_| {
        ApiError::Unavailable("the server is at capacity; nothing was written; retry later".into())
    })?;
    let user = state.auth.remember(&state.db, claims).await?;
    parts.extensions.insert(user);
    Ok((Request::from_parts(parts, body), slot))
}

/// The gate of the event stream: the token and the rate limit, and nothing
/// that touches the database (a stream reads nothing of the user's row).
pub async fn gate_stream(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match admit_stream(&state, req.headers()).await {
        Ok(user) => {
            req.extensions_mut().insert(user);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// The caller's verified claims, once their rate limit is taken: no
/// database work, for every gate.
async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Claims, ApiError> {
    let claims = state.auth.verify(bearer(headers)?).await?;
    crate::record_user(&claims.sub);
    if let Err(wait) = state.limiter.check(&claims.sub) {
        return Err(ApiError::RateLimited {
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        });
    }
    Ok(claims)
}

async fn admit_stream(state: &AppState, headers: &HeaderMap) -> Result<AuthUser, ApiError> {
    let claims = identify(state, headers).await?;
    Ok(AuthUser {
        id: claims.sub,
        expires: claims.exp,
    })
}

enum Encoding {
    Identity,
    Gzip,
}

fn encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let mut out = Encoding::Identity;
    for value in headers.get_all(header::CONTENT_ENCODING) {
        let text = value.to_str().unwrap_or("?");
        for coding in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            match coding.to_ascii_lowercase().as_str() {
                "identity" => {}
                "gzip" | "x-gzip" if matches!(out, Encoding::Identity) => out = Encoding::Gzip,
                _ => {
                    return Err(ApiError::UnsupportedEncoding(
                        coding.chars().take(40).collect(),
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// The whole body, decoded, within the limit and the body timeout.
async fn read_body(
    parts: &mut Parts,
    body: Body,
    limit: usize,
    timeout_secs: u64,
) -> Result<Body, ApiError> {
    let encoding = encoding(&parts.headers)?;
    let too_large = ApiError::PayloadTooLarge { limit };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let timeout = std::time::Duration::from_secs(timeout_secs);
    if declared.is_some_and(|n| n > limit as u64) {
        // Read (and drop) what the client is sending before answering, so
        // that it reads the 413 instead of a reset connection.
        if declared.is_some_and(|n| n <= (limit + DRAIN_BYTES) as u64) {
            discard(body, DRAIN_BYTES + limit, timeout).await;
        }
        return Err(too_large);
    }
    let collect = async {
        let mut body = body;
        let mut buf: Vec<u8> = Vec::with_capacity(declared.unwrap_or(0) as usize);
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| ApiError::invalid(format!("could not read the request body: {e}")))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    let seen = buf.len() + data.len();
                    drop(buf);
                    discard(body, (limit + DRAIN_BYTES).saturating_sub(seen), timeout).await;
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf)
    };
    let raw = tokio::time::timeout(timeout, collect)
        .await
        .map_err(|_| ApiError::RequestTimeout { secs: timeout_secs })??;
    let bytes = match encoding {
        Encoding::Identity => raw,
        Encoding::Gzip => {
            parts.headers.remove(header::CONTENT_ENCODING);
            gunzip(&raw, limit)?
        }
    };
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Ok(Body::from(Bytes::from(bytes)))
}

/// How much of a body over the limit is read and dropped before the 413 (a
/// client still sending when the server answers and closes would get a reset
/// instead of the answer). Past it, the connection is closed at once.
const DRAIN_BYTES: usize = 4 * 1024 * 1024;

/// Reads and drops up to `max` bytes of `body`, for at most `timeout`.
async fn discard(mut body: Body, max: usize, timeout: std::time::Duration) {
    let drain = async {
        let mut seen = 0usize;
        while seen <= max {
            match body.frame().await {
                Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len()),
                _ => return,
            }
        }
    };
    let _ = tokio::time::timeout(timeout, drain).await;
}

/// Decompresses at most `limit + 1` bytes: a bomb is refused after `limit`.
fn gunzip(raw: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(raw)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| ApiError::invalid("the request body is not valid gzip"))?;
    if out.len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gunzip_stops_at_the_limit() {
        assert_eq!(gunzip(&gz(b"hello"), 5).unwrap(), b"hello");
        let bomb = gz(&vec![0u8; 10_000_000]);
        assert!(bomb.len() < 20_000);
        assert!(matches!(
            gunzip(&bomb, 1024),
            Err(ApiError::PayloadTooLarge { limit: 1024 })
        ));
        assert!(matches!(
            gunzip(b"not gzip", 1024),
            Err(ApiError::InvalidRequest { .. })
        ));
    }

    #[test]
    fn only_gzip_and_identity_are_taken() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_str(v).unwrap());
            encoding(&h)
        };
        assert!(matches!(with("gzip"), Ok(Encoding::Gzip)));
        assert!(matches!(with("identity"), Ok(Encoding::Identity)));
        assert!(matches!(with("GZIP"), Ok(Encoding::Gzip)));
        for bad in ["br", "deflate", "gzip, br", "gzip, gzip"] {
            assert!(
                matches!(with(bad), Err(ApiError::UnsupportedEncoding(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            encoding(&HeaderMap::new()),
            Ok(Encoding::Identity)
        ));
    }
}
