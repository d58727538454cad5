//! `GET /docs`: a page that reads `/openapi.json` and shows every route, its
//! bodies and its errors (RapiDoc 9.3.8, vendored in `api/assets/`: nothing
//! is fetched from elsewhere, by the build or by the browser).

use std::sync::OnceLock;

use axum::{
    Router,
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};

/// RapiDoc's script as npm ships it, gzip-compressed.
const RAPIDOC_GZ: &[u8] = include_bytes!("../assets/rapidoc-9.3.8-min.js.gz");
/// SHA-256 of the decompressed script (`dist/rapidoc-min.js` of `rapidoc@9.3.8`).
pub const RAPIDOC_SHA256: &str = "affbd173a65e870e18f392cca963113bcdafb6e50e88cd2f6a834a65b22db94d";
/// Where the page loads it from; the version in the path, so it can be cached for good.
pub const RAPIDOC_PATH: &str = "/docs/rapidoc-9.3.8.js";

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>babysync API reference</title>
<link rel="icon" href="data:,">
<script type="module" src="/docs/rapidoc-9.3.8.js"></script>
</head>
<body>
<rapi-doc spec-url="/openapi.json" render-style="read" theme="light"
  show-header="false" allow-authentication="true" allow-server-selection="false"
  load-fonts="false" regular-font="system-ui, sans-serif" mono-font="ui-monospace, monospace">
  <p slot="overview">The wire contract, with what each field means and every
  rule, is <code>docs/PROTOCOL.md</code>; this page is generated from
  <a href="/openapi.json">/openapi.json</a>. Try a request with a bearer token
  (<code>babysync token --sub alice</code>).</p>
</rapi-doc>
</body>
</html>
"#;

/// Scripts only from here; no fonts, images or requests to other origins.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/docs", get(page))
        .route(RAPIDOC_PATH, get(script))
}

/// The API reference page.
async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
        .into_response()
}

/// The script: sent compressed as stored to clients that take gzip (all
/// browsers), else decompressed once and kept.
async fn script(headers: HeaderMap) -> Response {
    let takes_gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        });
    let mut response = if takes_gzip {
        let mut r = RAPIDOC_GZ.into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        plain().into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

/// The script decompressed (for a client that takes no gzip).
pub fn plain() -> &'static [u8] {
    static PLAIN: OnceLock<Vec<u8>> = OnceLock::new();
    PLAIN.get_or_init(|| {
        use std::io::Read;
        let mut out = Vec::with_capacity(RAPIDOC_GZ.len() * 4);
        // The file is part of the binary and checked by a test: it decompresses.
        let _ = flate2::read::GzDecoder::new(RAPIDOC_GZ).read_to_end(&mut out);
        out
    })
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    #[test]
    fn the_vendored_script_is_the_pinned_one() {
        let digest = hex::encode(Sha256::digest(super::plain()));
        assert_eq!(digest, super::RAPIDOC_SHA256);
        assert!(super::PAGE.contains(super::RAPIDOC_PATH));
    }
}
