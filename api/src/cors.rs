//! CORS for browser apps (OPERATIONS.md): with `CORS_ALLOWED_ORIGINS` set,
//! preflights from an allowed origin are answered, and responses expose
//! `x-request-id` and `retry-after`. No credentials mode: tokens travel in
//! the `Authorization` header.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The allowed origins: `None` for `*`, else the list.
pub fn parse_origins(text: &str) -> Result<Option<Vec<HeaderValue>>, String> {
    let parts: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        return Err("CORS_ALLOWED_ORIGINS is set but names no origin".into());
    }
    if parts == ["*"] {
        return Ok(None);
    }
    parts
        .into_iter()
        .map(|origin| {
            let ok = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.ends_with('/')
                && origin.split("://").nth(1).is_some_and(|h| {
                    !h.is_empty() && !h.contains(['/', '?', '#', '*', ' '])
                });
            if !ok {
                return Err(format!(
                    "CORS_ALLOWED_ORIGINS: {origin:?} is not an origin like https://app.example.com (or `*` alone)"
                ));
            }
            HeaderValue::from_str(origin)
                .map_err(|_| format!("CORS_ALLOWED_ORIGINS: {origin:?} is not a valid header value"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The CORS layer for `CORS_ALLOWED_ORIGINS`, or `None` when it is unset.
pub fn layer(setting: Option<&str>) -> Option<CorsLayer> {
    let origins = parse_origins(setting?).ok()?;
    let allow = match origins {
        None => AllowOrigin::any(),
        Some(list) => AllowOrigin::list(list),
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::CONTENT_ENCODING,
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
            .max_age(Duration::from_secs(600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_parsed_strictly() {
        assert_eq!(parse_origins("*").unwrap(), None);
        assert_eq!(
            parse_origins("https://a.example, http://localhost:5173")
                .unwrap()
                .unwrap()
                .len(),
            2
        );
        for bad in [
            "",
            " , ",
            "a.example",
            "https://a.example/",
            "https://*.x",
            "*,https://a.b",
        ] {
            assert!(parse_origins(bad).is_err(), "{bad}");
        }
    }
}
