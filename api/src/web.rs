//! The web app, when `WEB_APP_DIR` names its built files: served on the same
//! origin as the API (so the app needs no CORS), `index.html` for any path
//! the app routes itself. Paths under `/api/`, `/health/` and `/metrics`
//! never fall through to the app: an unknown one there is a 404 in the error
//! shape.

use std::{convert::Infallible, path::PathBuf};

use axum::{
    extract::Request,
    response::{IntoResponse, Response},
};
use tower::{Service, ServiceExt, service_fn};
use tower_http::services::{ServeDir, ServeFile};

use crate::error::ApiError;

/// What answers a path no route matched.
pub fn fallback(
    dir: Option<PathBuf>,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send + 'static
{
    let files = dir.map(|dir| {
        ServeDir::new(&dir)
            .append_index_html_on_directories(true)
            .fallback(ServeFile::new(dir.join("index.html")))
    });
    service_fn(move |req: Request| {
        let files = files.clone();
        async move {
            let path = req.uri().path();
            let ours = ["/api/", "/api", "/health/", "/metrics", "/docs/"]
                .iter()
                .any(|p| path == *p || path.starts_with(p));
            match files {
                Some(files) if !ours => {
                    let Ok(res) = files.oneshot(req).await;
                    Ok(res.into_response())
                }
                _ => Ok(ApiError::NotFound("no such route".into()).into_response()),
            }
        }
    })
}
