//! A babysync protocol client, shared by the load generator and the
//! integration tests: one HS256 signer, one HTTP client bound to a server, and
//! helpers for the protocol's requests (babies, invites, push, pull) and for
//! building mutations.
//!
//! The plain helpers (`create_baby`, `push`, `pull`, …) panic on an answer
//! they do not expect, as tests want; the `try_` ones return an error instead,
//! for the load generator, which reports errors and goes on.

use std::net::SocketAddr;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

pub const PUSH: &str = "/api/sync/push";
pub const PULL: &str = "/api/sync/pull";
pub const ACCEPT: &str = "/api/invites/accept";

/// The kinds of log entry, in the order a pull answer lists them.
pub const KINDS: [&str; 10] = [
    "feed_log",
    "sleep_log",
    "nappy_log",
    "pumping_log",
    "growth_log",
    "medication_log",
    "temperature_log",
    "solids_log",
    "activity_log",
    "timer_event",
];

/// The `startedAt` of every entry the mutation builders make.
pub const T0: &str = "2026-11-20T07:05:00.000Z";

// ----- tokens -----

/// The claims of a token for `sub`: issued now, expiring in an hour.
pub fn claims(sub: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": sub, "iat": now, "exp": now + 3600})
}

/// Signs `claims` with `alg` and `key`, naming `kid` in the header if given.
pub fn encode(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

/// An HS256 token signed with `secret` for `sub` ([`claims`]), with the
/// claims of `extra` merged in (a null one removes that claim).
pub fn sign(secret: &str, sub: &str, extra: Value) -> String {
    let mut claims = claims(sub);
    if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
    }
    sign_claims(secret, &claims)
}

/// An HS256 token of exactly `claims`, signed with `secret`.
pub fn sign_claims(secret: &str, claims: &Value) -> String {
    encode(
        Algorithm::HS256,
        &EncodingKey::from_secret(secret.as_bytes()),
        None,
        claims,
    )
}

// ----- HTTP -----

/// A response, its body parsed as JSON (`Value::Null` when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    /// Asserts the PROTOCOL.md error shape and the status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "status; body: {}", self.text);
        assert_error_body(&self.body, code);
    }

    /// This response if its status is `status` and its body JSON; otherwise
    /// an error naming `what`, the status and the start of the body.
    pub fn expect_json(self, what: &str, status: u16) -> Result<Resp, String> {
        if self.status != status {
            return Err(format!(
                "{what}: {}: {}",
                self.status,
                self.text.chars().take(300).collect::<String>()
            ));
        }
        serde_json::from_str::<Value>(&self.text).map_err(|e| format!("{what}: {e}"))?;
        Ok(self)
    }
}

#[track_caller]
pub fn assert_error_body(body: &Value, code: &str) {
    let obj = body
        .as_object()
        .unwrap_or_else(|| panic!("error body is not an object: {body}"));
    assert_eq!(obj.len(), 1, "error body has only `error`: {body}");
    let err = obj["error"]
        .as_object()
        .unwrap_or_else(|| panic!("no error object: {body}"));
    assert_eq!(err["code"], code, "error code in {body}");
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message in {body}"
    );
    for key in err.keys() {
        assert!(
            ["code", "message", "details"].contains(&key.as_str()),
            "unexpected key {key} in {body}"
        );
    }
    if let Some(d) = err.get("details") {
        assert!(d.is_object(), "details is an object: {body}");
    }
}

/// An HTTP client bound to one server.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
}

impl Client {
    /// A client of the server at `addr`, with no proxy.
    pub fn new(addr: SocketAddr) -> Self {
        Self::with_http(
            format!("http://{addr}"),
            reqwest::Client::builder().no_proxy().build().unwrap(),
        )
    }

    /// A client of the server at `base` (`http://host:port`) through `http`.
    pub fn with_http(base: impl Into<String>, http: reqwest::Client) -> Self {
        Self {
            base: base.into(),
            http,
        }
    }

    /// The absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends one request; an error only if no answer came.
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Resp, String> {
        let mut req = self.http.request(method.clone(), self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        match req.send().await {
            Ok(r) => Ok(Self::read(r).await),
            Err(e) => Err(format!("{method} {path}: {e}")),
        }
    }

    /// Sends one request; panics if no answer came.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        self.try_send(method, path, token, body.as_ref())
            .await
            .expect("request sent")
    }

    pub async fn read(resp: reqwest::Response) -> Resp {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.send(Method::DELETE, path, Some(token), None).await
    }
}

// ----- babies and invites -----

/// Creates a baby from `body`; its stored form, or an error unless 201.
pub async fn try_create_baby(c: &Client, token: &str, body: &Value) -> Result<Value, String> {
    let r = c
        .try_send(Method::POST, "/api/babies", Some(token), Some(body))
        .await?;
    Ok(r.expect_json("POST /api/babies", 201)?.body)
}

/// Creates a baby named `name` under an id made here; its stored form.
pub async fn create_baby(c: &Client, token: &str, name: &str) -> Value {
    try_create_baby(c, token, &json!({"id": Uuid::new_v4(), "name": name}))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Creates a baby named `name` under an id the server makes; that id.
pub async fn try_baby_id(c: &Client, token: &str, name: &str) -> Result<String, String> {
    let baby = try_create_baby(c, token, &json!({"name": name})).await?;
    Ok(id_of(&baby))
}

/// [`try_baby_id`], panicking on an error.
pub async fn baby_id(c: &Client, token: &str, name: &str) -> String {
    try_baby_id(c, token, name)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// [`create_baby`]'s id (made here).
pub async fn create_baby_id(c: &Client, token: &str, name: &str) -> String {
    id_of(&create_baby(c, token, name).await)
}

/// The string `id` of a stored object.
pub fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

/// Asks for an invite to `baby` at `level` as `owner`.
pub async fn create_invite(c: &Client, owner: &str, baby: &str, level: &str) -> Resp {
    c.post(
        &format!("/api/babies/{baby}/invites"),
        owner,
        json!({"accessLevel": level}),
    )
    .await
}

/// Accepts the invite whose token is `invite_token` as `guest`.
pub async fn accept_invite(c: &Client, guest: &str, invite_token: impl Serialize) -> Resp {
    c.post(ACCEPT, guest, json!({"token": invite_token})).await
}

/// Shares `baby` with the holder of the token `guest` at `level`, through an
/// invite `owner` makes and `guest` accepts; returns `guest`.
pub async fn share(c: &Client, owner: &str, baby: &str, guest: String, level: &str) -> String {
    let invite = create_invite(c, owner, baby, level).await;
    assert_eq!(invite.status, 201, "{}", invite.text);
    let r = accept_invite(c, &guest, &invite.body["token"]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    guest
}

// ----- mutations -----

/// A create mutation numbered `mid`.
pub fn create(mid: i64, entity: &str, data: Value) -> Value {
    json!({"id": mid, "entity": entity, "op": "create", "data": data})
}

/// An update mutation numbered `mid`.
pub fn update(mid: i64, entity: &str, data: Value) -> Value {
    json!({"id": mid, "entity": entity, "op": "update", "data": data})
}

/// A delete mutation numbered `mid`.
pub fn delete(mid: i64, entity: &str, id: Uuid) -> Value {
    json!({"id": mid, "entity": entity, "op": "delete", "data": {"id": id}})
}

/// Creates a bottle feed of 120 ml at [`T0`].
pub fn feed(mid: i64, id: Uuid, baby: &str) -> Value {
    create(
        mid,
        "feed_log",
        json!({"id": id, "babyId": baby, "method": "bottle", "startedAt": T0, "amountMl": 120}),
    )
}

/// Creates a sleep of 115 minutes from [`T0`].
pub fn sleep(mid: i64, id: Uuid, baby: &str) -> Value {
    create(
        mid,
        "sleep_log",
        json!({"id": id, "babyId": baby, "startedAt": T0, "endedAt": "2026-11-20T09:00:00.000Z", "durationMinutes": 115}),
    )
}

/// Creates a nappy change at [`T0`].
pub fn nappy(mid: i64, id: Uuid, baby: &str) -> Value {
    create(
        mid,
        "nappy_log",
        json!({"id": id, "babyId": baby, "startedAt": T0, "type": "poo", "colour": "yellow", "consistency": "mushy"}),
    )
}

/// [`feed`], [`sleep`] or [`nappy`], as `i % 3` picks.
pub fn any_kind(i: u64, mid: i64, id: Uuid, baby: &str) -> Value {
    [feed, sleep, nappy][(i % 3) as usize](mid, id, baby)
}

// ----- sync -----

/// The body of a push of `mutations` from `client`.
pub fn push_body(client: Uuid, mutations: Vec<Value>) -> Value {
    json!({"protocolVersion": 1, "clientId": client, "mutations": mutations})
}

/// Pushes `mutations` from `client`; an error only if no answer came.
pub async fn try_push(
    c: &Client,
    token: &str,
    client: Uuid,
    mutations: Vec<Value>,
) -> Result<Resp, String> {
    c.try_send(
        Method::POST,
        PUSH,
        Some(token),
        Some(&push_body(client, mutations)),
    )
    .await
}

/// Pushes `mutations` from `client`.
/// One feed written to `baby` by a fresh client (its mutation 1).
pub async fn write_a_feed(c: &Client, token: &str, baby: &str) -> Resp {
    push(
        c,
        token,
        Uuid::new_v4(),
        vec![feed(1, Uuid::new_v4(), baby)],
    )
    .await
}

pub async fn push(c: &Client, token: &str, client: Uuid, mutations: Vec<Value>) -> Resp {
    c.post(PUSH, token, push_body(client, mutations)).await
}

/// The body of a pull for `client` from `cursor`, pages of `limit` if given.
pub fn pull_body(client: Uuid, cursor: Option<&str>, limit: Option<u64>) -> Value {
    let mut body = json!({"protocolVersion": 1, "clientId": client, "cursor": cursor});
    if let Some(l) = limit {
        body["limit"] = json!(l);
    }
    body
}

/// Pulls one page for `client` from `cursor`.
pub async fn pull(
    c: &Client,
    token: &str,
    client: Uuid,
    cursor: Option<&str>,
    limit: Option<u64>,
) -> Resp {
    c.post(PULL, token, pull_body(client, cursor, limit)).await
}

/// Every entry of a pull answer as (entity, entry), borrowed from it; an
/// error unless it is a 200 with a list of changes for every kind.
pub fn try_entries(r: &Resp) -> Result<Vec<(&'static str, &Value)>, String> {
    if r.status != 200 {
        return Err(format!("pull: {}: {}", r.status, r.text));
    }
    let mut out = vec![];
    for kind in KINDS {
        let list = r.body["changes"][kind]
            .as_array()
            .ok_or_else(|| format!("changes.{kind}: {}", r.text))?;
        out.extend(list.iter().map(|e| (kind, e)));
    }
    Ok(out)
}

/// Every entry of a pull answer as (entity, entry), asserting it is a 200.
pub fn entries(r: &Resp) -> Vec<(String, Value)> {
    owned(try_entries(r).unwrap_or_else(|e| panic!("{e}")))
}

fn owned(entries: Vec<(&'static str, &Value)>) -> Vec<(String, Value)> {
    entries
        .into_iter()
        .map(|(k, e)| (k.to_owned(), e.clone()))
        .collect()
}

/// Pulls in pages of `limit` until `hasMore` is false, handing each page's
/// entries to `page`; the last cursor, and how many pages there were.
pub async fn try_pull_pages(
    c: &Client,
    token: &str,
    client: Uuid,
    mut cursor: Option<String>,
    limit: u64,
    mut page: impl FnMut(Vec<(&'static str, &Value)>),
) -> Result<(String, u64), String> {
    let mut pages = 0;
    loop {
        let body = pull_body(client, cursor.as_deref(), Some(limit));
        let r = c
            .try_send(Method::POST, PULL, Some(token), Some(&body))
            .await?;
        let entries = try_entries(&r)?;
        if entries.len() as u64 > limit {
            return Err(format!(
                "a page of {} over the limit {limit}",
                entries.len()
            ));
        }
        page(entries);
        pages += 1;
        let next = r.body["cursor"]
            .as_str()
            .ok_or_else(|| format!("no cursor: {}", r.text))?;
        cursor = Some(next.to_owned());
        if r.body["hasMore"] == false {
            return Ok((next.to_owned(), pages));
        }
        if pages >= 10_000 {
            return Err("paging must end".into());
        }
    }
}

/// Pulls until `hasMore` is false; returns the cursor and every page's entries.
pub async fn pull_all(
    c: &Client,
    token: &str,
    client: Uuid,
    cursor: Option<String>,
    limit: u64,
) -> (String, Vec<Vec<(String, Value)>>) {
    let mut pages = vec![];
    let (cursor, _) = try_pull_pages(c, token, client, cursor, limit, |p| pages.push(owned(p)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (cursor, pages)
}
