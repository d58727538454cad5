//! Bearer JWT authentication: key loading (HS256 secret, PEM public key, or a
//! cached JWKS) and the [`AuthUser`] extractor.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use crate::db::Db;
use axum::{extract::FromRequestParts, http::request::Parts};
use jsonwebtoken::{
    Algorithm, AlgorithmFamily, DecodingKey, Validation, decode, decode_header,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet},
};
use sea_orm::{EntityTrait, Set, sea_query::OnConflict};
use serde::Deserialize;

use crate::{config::Config, error::ApiError};

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Longest `sub` accepted as a user id.
pub const MAX_SUB_CHARS: usize = 255;

/// The authenticated caller of an `/api/*` route.
#[derive(Clone, Debug)]
pub struct AuthUser {
    pub id: String,
    /// The token's `exp` (Unix seconds), when it has one.
    pub expires: Option<i64>,
}

/// Seconds of leeway on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;

/// The claims of a verified token.
#[derive(Debug, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub exp: Option<i64>,
    #[serde(default)]
    name: Option<serde_json::Value>,
    #[serde(default)]
    email: Option<serde_json::Value>,
}

enum Keys {
    Static {
        key: DecodingKey,
        algorithms: Vec<Algorithm>,
    },
    Jwks(Jwks),
}

struct Jwks {
    url: String,
    client: reqwest::Client,
    min_refetch: Duration,
    state: std::sync::RwLock<JwksState>,
    /// Held by the one refetch in progress.
    fetching: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

#[derive(Default)]
struct JwksState {
    keys: HashMap<String, (DecodingKey, Vec<Algorithm>)>,
    last_fetch: Option<Instant>,
}

/// Verifies tokens and keeps user rows in step with their claims.
pub struct Authenticator {
    keys: Keys,
    issuer: Option<String>,
    audience: Option<String>,
}

fn family_algorithms(family: AlgorithmFamily) -> Vec<Algorithm> {
    match family {
        AlgorithmFamily::Hmac => vec![Algorithm::HS256],
        AlgorithmFamily::Rsa => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmFamily::Ec => vec![Algorithm::ES256, Algorithm::ES384],
        AlgorithmFamily::Ed => vec![Algorithm::EdDSA],
    }
}

/// Loads a PEM public key, picking the algorithm family from the key's type.
pub fn load_pem(pem: &[u8]) -> Result<(DecodingKey, Vec<Algorithm>), String> {
    if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
        return Ok((k, family_algorithms(AlgorithmFamily::Rsa)));
    }
    if let Ok(k) = DecodingKey::from_ec_pem(pem) {
        return Ok((k, family_algorithms(AlgorithmFamily::Ec)));
    }
    if let Ok(k) = DecodingKey::from_ed_pem(pem) {
        return Ok((k, family_algorithms(AlgorithmFamily::Ed)));
    }
    Err("not an RSA, EC (P-256/P-384) or Ed25519 public key in PEM form".into())
}

fn jwk_key(jwk: &Jwk) -> Option<(DecodingKey, Vec<Algorithm>)> {
    let algorithms = match (&jwk.common.key_algorithm, &jwk.algorithm) {
        (_, AlgorithmParameters::OctetKey(_)) => return None, // never trust shared secrets from a JWKS
        (Some(ka), _) => vec![Algorithm::try_from(*ka).ok()?],
        (None, AlgorithmParameters::RSA(_)) => family_algorithms(AlgorithmFamily::Rsa),
        (None, AlgorithmParameters::EllipticCurve(p)) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return None,
        },
        (None, AlgorithmParameters::OctetKeyPair(_)) => vec![Algorithm::EdDSA],
        _ => return None,
    };
    if algorithms
        .iter()
        .any(|a| AlgorithmFamily::Hmac.algorithms().contains(a))
    {
        return None;
    }
    Some((DecodingKey::from_jwk(jwk).ok()?, algorithms))
}

impl Jwks {
    async fn fetch(&self) -> Result<HashMap<String, (DecodingKey, Vec<Algorithm>)>, String> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let set: JwkSet = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("JWKS fetch failed: {e}"))?
            .json()
            .await
            .map_err(|e| format!("JWKS is not a valid key set: {e}"))?;
        Ok(set
            .keys
            .iter()
            .filter_map(|jwk| Some((jwk.common.key_id.clone()?, jwk_key(jwk)?)))
            .collect())
    }

    /// The key for `kid`, refetching the set when the kid is unknown (the
    /// first time, then at most once per `min_refetch`). Known kids never
    /// wait: the key set is only locked to read or swap it, never across a
    /// fetch, and one fetch at a time runs while the callers with unknown
    /// kids wait for it alone.
    async fn key(&self, kid: &str) -> Option<(DecodingKey, Vec<Algorithm>)> {
        let known = |state: &JwksState| -> Result<Option<_>, ()> {
            if let Some(k) = state.keys.get(kid) {
                return Ok(Some(k.clone()));
            }
            if state
                .last_fetch
                .is_some_and(|t| t.elapsed() < self.min_refetch)
            {
                return Ok(None);
            }
            Err(())
        };
        if let Ok(found) = known(&self.state.read().expect("jwks state")) {
            return found;
        }
        let _fetching = self.fetching.lock().await;
        if let Ok(found) = known(&self.state.read().expect("jwks state")) {
            return found;
        }
        self.state.write().expect("jwks state").last_fetch = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "JWKS fetched");
                let mut state = self.state.write().expect("jwks state");
                state.keys = keys;
                state.keys.get(kid).cloned()
            }
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        }
    }
}

impl Authenticator {
    /// Builds the verifier from the configuration. `local_secret` is the
    /// generated secret of the embedded database, used when no `JWT_*` is set.
    pub fn from_config(config: &Config, local_secret: Option<&[u8]>) -> Result<Self, String> {
        let keys = if let Some(secret) = &config.jwt_secret {
            Keys::Static {
                key: DecodingKey::from_secret(secret.expose().as_bytes()),
                algorithms: vec![Algorithm::HS256],
            }
        } else if let Some(path) = &config.jwt_public_key_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("JWT_PUBLIC_KEY_FILE {}: {e}", path.display()))?;
            let (key, algorithms) = load_pem(&pem)
                .map_err(|e| format!("JWT_PUBLIC_KEY_FILE {}: {e}", path.display()))?;
            Keys::Static { key, algorithms }
        } else if let Some(url) = &config.jwt_jwks_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!("JWT_JWKS_URL must be an http(s) URL, got {url:?}"));
            }
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| format!("cannot build the JWKS client: {e}"))?;
            Keys::Jwks(Jwks {
                url: url.clone(),
                client,
                min_refetch: Duration::from_secs(config.jwt_jwks_refetch_secs),
                state: std::sync::RwLock::new(JwksState::default()),
                fetching: tokio::sync::Mutex::new(()),
                fetches: AtomicU64::new(0),
            })
        } else if let Some(secret) = local_secret {
            Keys::Static {
                key: DecodingKey::from_secret(secret),
                algorithms: vec![Algorithm::HS256],
            }
        } else {
            return Err("no JWT key configured".into());
        };
        Ok(Self {
            keys,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
        })
    }

    /// How many times the JWKS was fetched (0 without a JWKS).
    pub fn jwks_fetches(&self) -> u64 {
        match &self.keys {
            Keys::Jwks(j) => j.fetches.load(Ordering::Relaxed),
            Keys::Static { .. } => 0,
        }
    }

    fn validation(&self, algorithms: Vec<Algorithm>) -> Validation {
        let mut v = Validation::new(Algorithm::HS256);
        v.algorithms = algorithms;
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        match &self.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                required.push("aud");
            }
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&required);
        v
    }

    /// Verifies a token and returns its claims; touches no database.
    pub async fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let bad = |m: &str| ApiError::Unauthorized(m.to_owned());
        if token.len() > MAX_TOKEN_BYTES {
            return Err(bad("token too large"));
        }
        let header = decode_header(token).map_err(|_| bad("malformed token"))?;
        let (key, algorithms) = match &self.keys {
            Keys::Static { key, algorithms } => (key.clone(), algorithms.clone()),
            Keys::Jwks(jwks) => {
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or_else(|| bad("token has no kid"))?;
                if kid.is_empty() || kid.len() > 256 {
                    return Err(bad("unknown signing key"));
                }
                jwks.key(kid)
                    .await
                    .ok_or_else(|| bad("unknown signing key"))?
            }
        };
        if !algorithms.contains(&header.alg) {
            return Err(bad("token algorithm not accepted"));
        }
        let data = decode::<Claims>(token, &key, &self.validation(algorithms)).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            let why = match e.kind() {
                K::ExpiredSignature => "token expired",
                K::ImmatureSignature => "token not yet valid",
                K::InvalidIssuer => "wrong token issuer",
                K::InvalidAudience => "wrong token audience",
                K::InvalidSignature => "bad token signature",
                K::MissingRequiredClaim(_) => "token lacks a required claim",
                K::InvalidAlgorithm => "token algorithm not accepted",
                _ => "invalid token",
            };
            bad(why)
        })?;
        let claims = data.claims;
        if claims.sub.is_empty()
            || claims.sub.chars().count() > MAX_SUB_CHARS
            || claims.sub.contains('\0')
        {
            return Err(bad(
                "token subject must be 1 to 255 characters, without NUL",
            ));
        }
        Ok(claims)
    }

    /// Creates or refreshes the user row of verified `claims`. The row is
    /// read on every request (one primary-key lookup), so a user deleted from
    /// the database is simply created again on its next request.
    pub async fn remember(&self, db: &Db, claims: Claims) -> Result<AuthUser, ApiError> {
        let text = |v: &Option<serde_json::Value>, max: usize| {
            v.as_ref().and_then(|v| v.as_str()).map(|s| {
                s.chars()
                    .filter(|c| *c != '\0')
                    .take(max)
                    .collect::<String>()
            })
        };
        let name = text(&claims.name, 200);
        let email = text(&claims.email, 320);
        let stored = entity::users::Entity::find_by_id(claims.sub.clone())
            .one(db)
            .await?;
        let stale = match &stored {
            None => true,
            Some(u) => {
                (name.is_some() && u.display_name != name) || (email.is_some() && u.email != email)
            }
        };
        if stale {
            upsert_user(db, &claims.sub, name, email).await?;
        }
        Ok(AuthUser {
            id: claims.sub,
            expires: claims.exp,
        })
    }
}

/// Creates the user on first sight; refreshes name and email from the claims
/// that are present.
async fn upsert_user(
    db: &Db,
    id: &str,
    name: Option<String>,
    email: Option<String>,
) -> Result<(), ApiError> {
    use entity::users;
    let now = chrono::Utc::now();
    let mut update = vec![];
    if name.is_some() {
        update.push(users::Column::DisplayName);
    }
    if email.is_some() {
        update.push(users::Column::Email);
    }
    let mut on_conflict = OnConflict::column(users::Column::Id);
    if update.is_empty() {
        on_conflict.do_nothing();
    } else {
        update.push(users::Column::UpdatedAt);
        on_conflict.update_columns(update);
    }
    users::Entity::insert(users::ActiveModel {
        id: Set(id.to_owned()),
        display_name: Set(name),
        email: Set(email),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(on_conflict)
    .try_insert()
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The bearer token of a request's `Authorization` header.
pub fn bearer(headers: &axum::http::HeaderMap) -> Result<&str, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
    let value = header
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
        _ => Err(ApiError::Unauthorized(
            "Authorization must be a Bearer token".into(),
        )),
    }
}

/// The caller, admitted by [`crate::gate`] (which authenticates every
/// `/api/*` request before its handler runs).
impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<AuthUser>().cloned().ok_or_else(|| {
            tracing::error!("an /api route outside the gate");
            ApiError::Internal
        })
    }
}

/// Makes the local-use HS256 token of `babysync token`.
pub fn sign_hs256(
    secret: &[u8],
    sub: &str,
    name: Option<&str>,
    ttl: Duration,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Result<String, String> {
    let now = chrono::Utc::now().timestamp();
    let mut claims = serde_json::json!({
        "sub": sub,
        "iat": now,
        "exp": now + ttl.as_secs() as i64,
    });
    if let Some(name) = name {
        claims["name"] = name.into();
    }
    if let Some(iss) = issuer {
        claims["iss"] = iss.into();
    }
    if let Some(aud) = audience {
        claims["aud"] = aud.into();
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .map_err(|e| format!("cannot sign the token: {e}"))
}
