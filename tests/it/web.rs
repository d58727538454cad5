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

both!(the_web_app_is_served_beside_the_api);
