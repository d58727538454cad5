//! The web app on the same origin (`WEB_APP_DIR`): its files, `index.html`
//! for the paths it routes itself, and never a page where the API answers.

use reqwest::Method;

use crate::{both, helpers::*};

async fn the_web_app_is_served_beside_the_api(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><title>babysync</title>",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("assets")).unwrap();
    std::fs::write(dir.path().join("assets/app.js"), "console.log('babysync')").unwrap();
    let path = dir.path().to_owned();
    let app = spawn_app_with(backend, |c| c.web_app_dir = Some(path)).await;

    let get = |p: &'static str| app.send(Method::GET, p, None, None);
    let index = get("/").await;
    assert_eq!(index.status, 200);
    assert!(
        index.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(index.text.contains("<title>babysync</title>"));
    let js = get("/assets/app.js").await;
    assert_eq!(js.status, 200);
    assert!(
        js.headers["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    let routed = get("/babies/some-baby").await;
    assert_eq!(routed.status, 200, "the app routes its own paths");
    assert_eq!(routed.text, index.text);
    get("/../../etc/passwd").await; // never outside the folder:
    assert!(
        !get("/%2e%2e/%2e%2e/etc/passwd")
            .await
            .text
            .contains("root:")
    );

    // The API and the probes are never the app.
    get("/api/no-such-route")
        .await
        .assert_error(404, "not_found");
    get("/api").await.assert_error(404, "not_found");
    assert_eq!(get("/health/live").await.body["status"], "ok");
    assert_eq!(app.get("/api/me", &app.token("alice")).await.status, 200);

    // Without WEB_APP_DIR, no app: a 404 in the error shape.
    let plain = spawn_app(backend).await;
    plain
        .send(Method::GET, "/", None, None)
        .await
        .assert_error(404, "not_found");
}

/// `/docs`: the API reference page, and the vendored script it loads,
/// compressed or not, the one pinned; with or without the web app.
async fn the_api_reference_is_served_at_docs(backend: Backend) {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><title>app</title>",
    )
    .unwrap();
    let path = dir.path().to_owned();
    let app = spawn_app_with(backend, |c| c.web_app_dir = Some(path)).await;

    let page = app.send(Method::GET, "/docs", None, None).await;
    assert_eq!(page.status, 200);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.text.contains("spec-url=\"/openapi.json\""),
        "{}",
        page.text
    );
    assert!(page.text.contains(api::docs::RAPIDOC_PATH));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");

    // The script, as sent for an Accept-Encoding (not decoded on the way).
    let script = |accept: &'static str| {
        reqwest::Client::builder()
            .no_gzip()
            .build()
            .unwrap()
            .get(app.client.url(api::docs::RAPIDOC_PATH))
            .header("accept-encoding", accept)
            .send()
    };
    // Without gzip: the script itself.
    let plain = script("identity").await.unwrap();
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    assert!(
        plain.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    let body = plain.bytes().await.unwrap();
    assert_eq!(
        hex::encode(Sha256::digest(&body)),
        api::docs::RAPIDOC_SHA256
    );
    // With gzip: the stored bytes, compressed once, decompressing to the same.
    let zipped = script("gzip, br").await.unwrap();
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let raw = zipped.bytes().await.unwrap();
    assert!(raw.len() < body.len() / 2, "sent compressed");
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut unzipped).unwrap();
    assert_eq!(unzipped, body.to_vec());

    // Under /docs/ nothing else, even with a web app: a 404, not its page.
    let other = app.send(Method::GET, "/docs/other.js", None, None).await;
    other.assert_error(404, "not_found");
}

both!(
    the_web_app_is_served_beside_the_api,
    the_api_reference_is_served_at_docs
);
