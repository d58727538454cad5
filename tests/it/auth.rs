use std::{
    path::Path,
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use jsonwebtoken::{Algorithm, EncodingKey, jwk::Jwk};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{both, helpers::*};

/// A key pair made by the openssl command line: (private PKCS#8 PEM, public PEM).
/// The public key is also written to `<dir>/<kind>-<n>.pub`, returned last.
pub(crate) fn keypair(dir: &Path, kind: &str) -> (Vec<u8>, Vec<u8>, std::path::PathBuf) {
    let stem = format!("{kind}-{}", uuid::Uuid::new_v4().simple());
    let private = dir.join(format!("{stem}.key"));
    let public = dir.join(format!("{stem}.pub"));
    let gen_args: &[&str] = match kind {
        "rsa" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        "ec" => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "ed" => &["-algorithm", "ed25519"],
        _ => unreachable!(),
    };
    let ok = Command::new("openssl")
        .arg("genpkey")
        .args(gen_args)
        .arg("-out")
        .arg(&private)
        .status()
        .expect("openssl installed")
        .success();
    assert!(ok, "openssl genpkey {kind}");
    let ok = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl pkey -pubout");
    (
        std::fs::read(private).unwrap(),
        std::fs::read(&public).unwrap(),
        public,
    )
}

#[track_caller]
fn assert_unauthorized(r: &Resp) {
    r.assert_error(401, "unauthorized");
    assert_eq!(r.headers["www-authenticate"], "Bearer", "WWW-Authenticate");
}

fn b64_json(v: &Value) -> String {
    B64.encode(serde_json::to_vec(v).unwrap())
}

async fn valid_token_reaches_me_and_refreshes_the_name(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app
        .get(
            "/api/me",
            &sign(TEST_SECRET, "alice", json!({"name": "Alice"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"userId": "alice", "displayName": "Alice"}));
    let r = app
        .get(
            "/api/me",
            &sign(
                TEST_SECRET,
                "alice",
                json!({"name": "Alice B", "email": "a@example.org"}),
            ),
        )
        .await;
    assert_eq!(r.body, json!({"userId": "alice", "displayName": "Alice B"}));
    // No name claim: the stored name stays.
    let r = app
        .get("/api/me", &sign(TEST_SECRET, "alice", json!({})))
        .await;
    assert_eq!(r.body, json!({"userId": "alice", "displayName": "Alice B"}));
    let rows = app
        .query("SELECT email FROM users WHERE id = 'alice'")
        .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0]
            .try_get::<Option<String>>("", "email")
            .unwrap()
            .as_deref(),
        Some("a@example.org")
    );
    // A user without a name claim at first sight has a null displayName.
    let r = app
        .get("/api/me", &sign(TEST_SECRET, "bob", json!({})))
        .await;
    assert_eq!(r.body, json!({"userId": "bob", "displayName": null}));
    // Scheme is case-insensitive.
    let r = app
        .http
        .get(app.url("/api/me"))
        .header("authorization", format!("bearer {}", app.token("carol")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn every_bad_token_is_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let now = chrono::Utc::now().timestamp();
    let missing = app.send(Method::GET, "/api/me", None, None).await;
    assert_unauthorized(&missing);

    let basic = app
        .http
        .get(app.url("/api/me"))
        .header("authorization", "Basic YWxpY2U6cHc=")
        .send()
        .await
        .unwrap();
    assert_unauthorized(&Client::read(basic).await);

    let none_token = format!(
        "{}.{}.",
        b64_json(&json!({"alg": "none", "typ": "JWT"})),
        b64_json(&claims("mallory"))
    );
    let cases: Vec<(&str, String)> = vec![
        ("garbage", "not-a-jwt".into()),
        ("three garbage parts", "aaa.bbb.ccc".into()),
        (
            "bad signature",
            sign_claims("another-secret-that-is-at-least-32-bytes", &claims("alice")),
        ),
        (
            "expired beyond leeway",
            sign_claims(TEST_SECRET, &json!({"sub": "alice", "exp": now - 120})),
        ),
        (
            "not yet valid",
            sign_claims(
                TEST_SECRET,
                &json!({"sub": "alice", "exp": now + 3600, "nbf": now + 600}),
            ),
        ),
        ("alg none", none_token),
        (
            "alg none, signed",
            format!(
                "{}.{}.{}",
                b64_json(&json!({"alg": "none"})),
                b64_json(&claims("m")),
                "c2ln"
            ),
        ),
        (
            "wrong algorithm HS384",
            encode(
                Algorithm::HS384,
                &EncodingKey::from_secret(TEST_SECRET.as_bytes()),
                None,
                &claims("alice"),
            ),
        ),
        (
            "missing sub",
            sign_claims(TEST_SECRET, &json!({"exp": now + 3600})),
        ),
        (
            "empty sub",
            sign_claims(TEST_SECRET, &json!({"sub": "", "exp": now + 3600})),
        ),
        (
            "sub not a string",
            sign_claims(TEST_SECRET, &json!({"sub": 42, "exp": now + 3600})),
        ),
        (
            "missing exp",
            sign_claims(TEST_SECRET, &json!({"sub": "alice"})),
        ),
        (
            "oversized",
            sign_claims(
                TEST_SECRET,
                &json!({"sub": "alice", "exp": now + 3600, "pad": "x".repeat(9000)}),
            ),
        ),
    ];
    for (what, token) in cases {
        let r = app.get("/api/me", &token).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text);
        assert_unauthorized(&r);
    }
    // 30 s past exp is inside the 60 s leeway.
    let r = app
        .get(
            "/api/me",
            &sign_claims(TEST_SECRET, &json!({"sub": "alice", "exp": now - 30})),
        )
        .await;
    assert_eq!(r.status, 200, "leeway: {}", r.text);
    // Nobody was created by the refused tokens.
    let rows = app.query("SELECT id FROM users").await;
    let ids: Vec<String> = rows.iter().map(|r| r.try_get("", "id").unwrap()).collect();
    assert_eq!(ids, vec!["alice".to_owned()]);
}

async fn issuer_and_audience_are_enforced(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.jwt_issuer = Some("https://id.example".into());
        c.jwt_audience = Some("babysync".into());
    })
    .await;
    let good = sign(
        TEST_SECRET,
        "alice",
        json!({"iss": "https://id.example", "aud": "babysync"}),
    );
    assert_eq!(app.get("/api/me", &good).await.status, 200);
    let aud_list = sign(
        TEST_SECRET,
        "alice",
        json!({"iss": "https://id.example", "aud": ["other", "babysync"]}),
    );
    assert_eq!(app.get("/api/me", &aud_list).await.status, 200);
    for (what, extra) in [
        (
            "wrong iss",
            json!({"iss": "https://evil.example", "aud": "babysync"}),
        ),
        (
            "wrong aud",
            json!({"iss": "https://id.example", "aud": "other"}),
        ),
        ("missing iss", json!({"aud": "babysync"})),
        ("missing aud", json!({"iss": "https://id.example"})),
    ] {
        let r = app.get("/api/me", &sign(TEST_SECRET, "alice", extra)).await;
        assert_eq!(r.status, 401, "{what}");
        assert_unauthorized(&r);
    }
}

async fn pem_public_keys(backend: Backend) {
    let keys = tempfile::tempdir().unwrap();
    for (kind, alg) in [
        ("rsa", Algorithm::RS256),
        ("ec", Algorithm::ES256),
        ("ed", Algorithm::EdDSA),
    ] {
        let (private, public, pub_path) = keypair(keys.path(), kind);
        let app = spawn_app_with(backend, |c| {
            c.jwt_secret = None;
            c.jwt_public_key_file = Some(pub_path.clone());
        })
        .await;
        let enc = match kind {
            "rsa" => EncodingKey::from_rsa_pem(&private).unwrap(),
            "ec" => EncodingKey::from_ec_pem(&private).unwrap(),
            _ => EncodingKey::from_ed_pem(&private).unwrap(),
        };
        let r = app
            .get("/api/me", &encode(alg, &enc, None, &claims("alice")))
            .await;
        assert_eq!(r.status, 200, "{kind}: {}", r.text);
        assert_eq!(r.body["userId"], "alice");

        // Key confusion: the public key used as an HMAC secret.
        let confused = encode(
            Algorithm::HS256,
            &EncodingKey::from_secret(&public),
            None,
            &claims("mallory"),
        );
        assert_unauthorized(&app.get("/api/me", &confused).await);
        // The configured secret-less verifier never takes HS256 at all.
        assert_unauthorized(&app.get("/api/me", &app.token("mallory")).await);
        // Another key of the same type.
        let (other_private, _, _) = keypair(keys.path(), kind);
        let other = match kind {
            "rsa" => EncodingKey::from_rsa_pem(&other_private).unwrap(),
            "ec" => EncodingKey::from_ec_pem(&other_private).unwrap(),
            _ => EncodingKey::from_ed_pem(&other_private).unwrap(),
        };
        assert_unauthorized(
            &app.get("/api/me", &encode(alg, &other, None, &claims("mallory")))
                .await,
        );
    }
}

/// A JWKS endpoint on 127.0.0.1:0 whose key set the test can swap, counting fetches.
pub(crate) struct JwksServer {
    pub url: String,
    pub keys: Arc<Mutex<Value>>,
    pub hits: Arc<AtomicUsize>,
    /// How long each answer takes, in milliseconds (a slow identity provider).
    pub delay_ms: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    pub async fn start(keys: Value) -> Self {
        let keys = Arc::new(Mutex::new(keys));
        let hits = Arc::new(AtomicUsize::new(0));
        let delay_ms = Arc::new(AtomicUsize::new(0));
        let (k, h, d) = (keys.clone(), hits.clone(), delay_ms.clone());
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let (k, h, d) = (k.clone(), h.clone(), d.clone());
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    let delay = d.load(Ordering::SeqCst) as u64;
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    axum::Json(k.lock().unwrap().clone())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            keys,
            hits,
            delay_ms,
            _task: task,
        }
    }

    /// An app that trusts only this key set, refetching it at most once a second.
    pub async fn app(&self, backend: Backend) -> TestApp {
        let url = self.url.clone();
        spawn_app_with(backend, |c| {
            c.jwt_secret = None;
            c.jwt_jwks_url = Some(url);
            c.jwt_jwks_refetch_secs = 1;
        })
        .await
    }
}

/// A new Ed25519 key made in `dir`, and its JWK named `kid`.
pub(crate) fn jwk_for(dir: &Path, kid: &str) -> (EncodingKey, Value) {
    let (private, _, _) = keypair(dir, "ed");
    let enc = EncodingKey::from_ed_pem(&private).unwrap();
    let mut jwk = Jwk::from_encoding_key(&enc, Algorithm::EdDSA).unwrap();
    jwk.common.key_id = Some(kid.to_owned());
    (enc, serde_json::to_value(jwk).unwrap())
}

async fn jwks_with_key_rotation(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (k1, jwk1) = jwk_for(dir.path(), "k1");
    let (k2, jwk2) = jwk_for(dir.path(), "k2");
    let (k3, _) = jwk_for(dir.path(), "k3");

    let jwks = JwksServer::start(json!({"keys": [jwk1]})).await;
    let app = jwks.app(backend).await;
    let ed = |k: &EncodingKey, kid: &str| encode(Algorithm::EdDSA, k, Some(kid), &claims("alice"));

    let r = app.get("/api/me", &ed(&k1, "k1")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        jwks.hits.load(Ordering::SeqCst),
        1,
        "first use fetches the set"
    );
    assert_eq!(app.get("/api/me", &ed(&k1, "k1")).await.status, 200);
    assert_eq!(
        jwks.hits.load(Ordering::SeqCst),
        1,
        "known kid is served from the cache"
    );

    // A kid in the header but signed by another key.
    assert_unauthorized(&app.get("/api/me", &ed(&k2, "k1")).await);
    // No kid at all.
    assert_unauthorized(
        &app.get(
            "/api/me",
            &encode(Algorithm::EdDSA, &k1, None, &claims("alice")),
        )
        .await,
    );

    // The provider rotates to k2.
    *jwks.keys.lock().unwrap() = json!({"keys": [jwk2]});
    // Within the refetch interval an unknown kid does not refetch.
    assert_unauthorized(&app.get("/api/me", &ed(&k2, "k2")).await);
    assert_eq!(
        jwks.hits.load(Ordering::SeqCst),
        1,
        "no refetch within the interval"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = app.get("/api/me", &ed(&k2, "k2")).await;
    assert_eq!(r.status, 200, "after rotation: {}", r.text);
    assert_eq!(
        jwks.hits.load(Ordering::SeqCst),
        2,
        "unknown kid refetched once"
    );
    // The rotated-out key is gone, and more unknown kids do not hammer the provider.
    assert_unauthorized(&app.get("/api/me", &ed(&k1, "k1")).await);
    assert_unauthorized(&app.get("/api/me", &ed(&k3, "k3")).await);
    assert_unauthorized(&app.get("/api/me", &ed(&k3, "../../etc/passwd")).await);
    assert_eq!(
        jwks.hits.load(Ordering::SeqCst),
        2,
        "refetches are rate limited"
    );
    assert_eq!(app.auth.jwks_fetches(), 2);
    // HS256 with anything is never accepted under a JWKS.
    assert_unauthorized(&app.get("/api/me", &app.token("mallory")).await);
}

both!(
    valid_token_reaches_me_and_refreshes_the_name,
    every_bad_token_is_401,
    issuer_and_audience_are_enforced,
    pem_public_keys,
    jwks_with_key_rotation,
);
