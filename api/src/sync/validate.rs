//! Parsing and validation of sync requests. A malformed envelope is a 400 for
//! the whole request; a malformed mutation inside a good envelope is only that
//! mutation's `rejected`/`invalid`.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::prelude::Uuid;
use serde_json::{Map, Value};

use super::records::{Kind, Record};
use crate::{error::ApiError, time::truncate};

/// A mutation's failure: its code (`invalid`, `forbidden`, `not_found`,
/// `conflict`), a message, and for conflicts the stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub code: &'static str,
    pub message: String,
    pub current: Option<Value>,
}

impl Rejection {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: "invalid",
            message: message.into(),
            current: None,
        }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            code: "forbidden",
            message: message.into(),
            current: None,
        }
    }
    pub fn not_found() -> Self {
        Self {
            code: "not_found",
            message: "no such record".into(),
            current: None,
        }
    }
    pub fn conflict(message: impl Into<String>, current: Option<Value>) -> Self {
        Self {
            code: "conflict",
            message: message.into(),
            current,
        }
    }
}

fn object(body: Value, what: &str) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::invalid(format!("{what} must be a JSON object"))),
    }
}

fn reject_unknown_keys(
    m: &Map<String, Value>,
    allowed: &[&str],
    prefix: &str,
) -> Result<(), ApiError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid_field(
            &format!("{prefix}{k}"),
            "unknown field",
        )),
        None => Ok(()),
    }
}

/// `protocolVersion` must be the number 1.
fn protocol_version(m: &Map<String, Value>) -> Result<(), ApiError> {
    match m.get("protocolVersion") {
        None => Err(ApiError::invalid_field("protocolVersion", "missing field")),
        Some(Value::Number(n)) if n.as_u64() == Some(1) => Ok(()),
        Some(Value::Number(_)) => Err(ApiError::UnsupportedProtocolVersion),
        Some(_) => Err(ApiError::invalid_field(
            "protocolVersion",
            "must be a number",
        )),
    }
}

fn client_id(m: &Map<String, Value>) -> Result<Uuid, ApiError> {
    match m.get("clientId") {
        None => Err(ApiError::invalid_field("clientId", "missing field")),
        Some(Value::String(s)) => {
            Uuid::parse_str(s).map_err(|_| ApiError::invalid_field("clientId", "must be a UUID"))
        }
        Some(_) => Err(ApiError::invalid_field("clientId", "must be a UUID string")),
    }
}

/// One mutation as it came, with its (checked) integer id.
#[derive(Debug, Clone)]
pub struct RawMutation {
    pub id: i64,
    pub body: Map<String, Value>,
}

#[derive(Debug)]
pub struct PushRequest {
    pub client_id: Uuid,
    pub mutations: Vec<RawMutation>,
}

/// Checks a push envelope: object, version, client id, and an array of
/// objects that each carry a positive integer `id`.
pub fn parse_push(body: Value, max_mutations: usize) -> Result<PushRequest, ApiError> {
    let mut m = object(body, "the request body")?;
    reject_unknown_keys(&m, &["protocolVersion", "clientId", "mutations"], "")?;
    protocol_version(&m)?;
    let client_id = client_id(&m)?;
    let list = match m.remove("mutations") {
        Some(Value::Array(list)) => list,
        Some(_) => return Err(ApiError::invalid_field("mutations", "must be an array")),
        None => return Err(ApiError::invalid_field("mutations", "missing field")),
    };
    if list.len() > max_mutations {
        return Err(ApiError::TooManyMutations {
            limit: max_mutations,
        });
    }
    let mut mutations = Vec::with_capacity(list.len());
    for (i, item) in list.into_iter().enumerate() {
        let Value::Object(body) = item else {
            return Err(ApiError::invalid_field(
                &format!("mutations[{i}]"),
                "must be an object with an integer id",
            ));
        };
        let id = match body.get("id") {
            Some(Value::Number(n)) => n.as_i64(),
            _ => None,
        };
        let Some(id) = id.filter(|id| *id >= 1) else {
            return Err(ApiError::invalid_field(
                &format!("mutations[{i}].id"),
                "must be a positive integer (at most 2^63-1)",
            ));
        };
        mutations.push(RawMutation {
            id,
            body: body.clone(),
        });
    }
    Ok(PushRequest {
        client_id,
        mutations,
    })
}

#[derive(Debug)]
pub struct PullRequest {
    pub client_id: Uuid,
    pub cursor: Option<String>,
    pub limit: u64,
}

pub const PULL_DEFAULT_LIMIT: u64 = 1000;
pub const PULL_MAX_LIMIT: u64 = 5000;

/// Checks a pull request; the cursor itself is decoded by the pull module.
pub fn parse_pull(body: Value) -> Result<PullRequest, ApiError> {
    let m = object(body, "the request body")?;
    reject_unknown_keys(&m, &["protocolVersion", "clientId", "cursor", "limit"], "")?;
    protocol_version(&m)?;
    let client_id = client_id(&m)?;
    let cursor = match m.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "cursor",
                "must be null or a cursor string from a previous pull",
            ));
        }
    };
    let limit = match m.get("limit") {
        None | Some(Value::Null) => PULL_DEFAULT_LIMIT,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(l) if (1..=PULL_MAX_LIMIT).contains(&l) => l,
            _ => {
                return Err(ApiError::invalid_field(
                    "limit",
                    format!("must be an integer from 1 to {PULL_MAX_LIMIT}"),
                ));
            }
        },
        Some(_) => return Err(ApiError::invalid_field("limit", "must be an integer")),
    };
    Ok(PullRequest {
        client_id,
        cursor,
        limit,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Delete,
}

/// The fields a mutation's `data` sets. Outer `None`: not given; inner
/// `None`: given as `null` (cleared).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Fields {
    pub baby_id: Option<Uuid>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<Option<DateTime<Utc>>>,
    pub notes: Option<Option<String>>,
    pub method: Option<String>,
    pub duration_minutes: Option<Option<i32>>,
    pub amount_ml: Option<Option<i32>>,
    pub is_estimated: Option<bool>,
    pub estimated_source: Option<Option<String>>,
    pub end_side: Option<Option<String>>,
    pub nappy_type: Option<Option<String>>,
    pub colour: Option<Option<String>>,
    pub consistency: Option<Option<String>>,
}

impl Fields {
    /// Writes the given fields onto `r`.
    pub fn apply(&self, r: &mut Record) {
        fn set<T: Clone>(dst: &mut T, src: &Option<T>) {
            if let Some(v) = src {
                *dst = v.clone();
            }
        }
        if let Some(v) = self.started_at {
            r.started_at = v;
        }
        if let Some(v) = &self.method {
            r.method = Some(v.clone());
        }
        if let Some(v) = self.is_estimated {
            r.is_estimated = v;
        }
        set(&mut r.ended_at, &self.ended_at);
        set(&mut r.notes, &self.notes);
        set(&mut r.duration_minutes, &self.duration_minutes);
        set(&mut r.amount_ml, &self.amount_ml);
        set(&mut r.estimated_source, &self.estimated_source);
        set(&mut r.end_side, &self.end_side);
        set(&mut r.nappy_type, &self.nappy_type);
        set(&mut r.colour, &self.colour);
        set(&mut r.consistency, &self.consistency);
    }
}

/// One parsed mutation.
#[derive(Debug, Clone)]
pub struct Mutation {
    pub kind: Kind,
    pub op: Op,
    pub record_id: Uuid,
    pub fields: Fields,
    pub base_version: Option<i64>,
}

const SERVER_FIELDS: [&str; 5] = [
    "loggedBy",
    "createdAt",
    "updatedAt",
    "archivedAt",
    "version",
];

fn allowed_fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Feed => &[
            "id",
            "babyId",
            "startedAt",
            "endedAt",
            "notes",
            "method",
            "durationMinutes",
            "amountMl",
            "isEstimated",
            "estimatedSource",
            "endSide",
        ],
        Kind::Sleep => &[
            "id",
            "babyId",
            "startedAt",
            "endedAt",
            "notes",
            "durationMinutes",
        ],
        Kind::Nappy => &[
            "id",
            "babyId",
            "startedAt",
            "notes",
            "type",
            "colour",
            "consistency",
        ],
    }
}

fn one_of(v: &Value, field: &str, options: &[&str]) -> Result<String, Rejection> {
    match v.as_str() {
        Some(s) if options.contains(&s) => Ok(s.to_owned()),
        _ => Err(Rejection::invalid(format!(
            "data.{field}: must be one of {}",
            options.join(", ")
        ))),
    }
}

fn nullable<T>(
    v: &Value,
    parse: impl FnOnce(&Value) -> Result<T, Rejection>,
) -> Result<Option<T>, Rejection> {
    if v.is_null() {
        Ok(None)
    } else {
        parse(v).map(Some)
    }
}

fn int_in(v: &Value, field: &str, max: i64) -> Result<i32, Rejection> {
    match v.as_i64() {
        Some(n) if (0..=max).contains(&n) => Ok(n as i32),
        _ => Err(Rejection::invalid(format!(
            "data.{field}: must be an integer from 0 to {max}"
        ))),
    }
}

fn text(v: &Value, field: &str, max_chars: usize) -> Result<String, Rejection> {
    match v.as_str() {
        Some(s) if s.contains('\0') => Err(Rejection::invalid(format!(
            "data.{field}: must not contain NUL"
        ))),
        Some(s) if s.chars().count() <= max_chars => Ok(s.to_owned()),
        Some(_) => Err(Rejection::invalid(format!(
            "data.{field}: at most {max_chars} characters"
        ))),
        None => Err(Rejection::invalid(format!(
            "data.{field}: must be a string"
        ))),
    }
}

fn uuid(v: &Value, field: &str) -> Result<Uuid, Rejection> {
    v.as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| Rejection::invalid(format!("data.{field}: must be a UUID")))
}

/// An RFC 3339 timestamp with an offset, from 1900 to 24 h after `now`,
/// kept to the millisecond.
fn timestamp(v: &Value, field: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, Rejection> {
    let bad = || {
        Rejection::invalid(format!(
            "data.{field}: must be an RFC 3339 timestamp with an offset"
        ))
    };
    let s = v.as_str().ok_or_else(bad)?;
    let t = DateTime::parse_from_rfc3339(s)
        .map_err(|_| bad())?
        .with_timezone(&Utc);
    // chrono keeps a leap second (`:60`) as a nanosecond count past 10⁹,
    // which databases would store as the next second: refused.
    if chrono::Timelike::nanosecond(&t) >= 1_000_000_000 {
        return Err(Rejection::invalid(format!(
            "data.{field}: a leap second (:60) is not accepted"
        )));
    }
    let earliest = DateTime::parse_from_rfc3339("1900-01-01T00:00:00Z")
        .expect("valid")
        .with_timezone(&Utc);
    if t < earliest || t > now + TimeDelta::hours(24) {
        return Err(Rejection::invalid(format!(
            "data.{field}: must not be before 1900 nor more than 24 h in the future"
        )));
    }
    Ok(truncate(t))
}

/// Parses one mutation of a well-formed envelope. Anything wrong with it is an
/// `invalid` rejection naming the field.
pub fn parse_mutation(raw: &RawMutation, now: DateTime<Utc>) -> Result<Mutation, Rejection> {
    let b = &raw.body;
    if let Some(k) = b
        .keys()
        .find(|k| !["id", "entity", "op", "data", "baseVersion"].contains(&k.as_str()))
    {
        return Err(Rejection::invalid(format!("{k}: unknown field")));
    }
    let kind = b
        .get("entity")
        .and_then(Value::as_str)
        .and_then(Kind::parse)
        .ok_or_else(|| Rejection::invalid("entity: must be feed_log, sleep_log or nappy_log"))?;
    let op = match b.get("op").and_then(Value::as_str) {
        Some("create") => Op::Create,
        Some("update") => Op::Update,
        Some("delete") => Op::Delete,
        _ => return Err(Rejection::invalid("op: must be create, update or delete")),
    };
    let base_version = match b.get("baseVersion") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| Rejection::invalid("baseVersion: must be an integer"))?,
        ),
    };
    if base_version.is_some() && op == Op::Create {
        return Err(Rejection::invalid(
            "baseVersion: only update and delete take one",
        ));
    }
    let data = match b.get("data") {
        Some(Value::Object(d)) => d,
        _ => return Err(Rejection::invalid("data: must be an object")),
    };
    let record_id = uuid(data.get("id").unwrap_or(&Value::Null), "id")?;
    let allowed = allowed_fields(kind);
    let mut f = Fields::default();
    for (key, v) in data {
        let key = key.as_str();
        if op == Op::Delete && !["id", "babyId"].contains(&key) {
            return Err(Rejection::invalid(format!(
                "data.{key}: a delete takes only id (and babyId)"
            )));
        }
        if SERVER_FIELDS.contains(&key) {
            return Err(Rejection::invalid(format!(
                "data.{key}: is set by the server"
            )));
        }
        if !allowed.contains(&key) {
            return Err(Rejection::invalid(format!(
                "data.{key}: unknown field for {}",
                kind.as_str()
            )));
        }
        match key {
            "id" => {}
            "babyId" => f.baby_id = Some(uuid(v, key)?),
            "startedAt" => f.started_at = Some(timestamp(v, key, now)?),
            "endedAt" => f.ended_at = Some(nullable(v, |v| timestamp(v, key, now))?),
            "notes" => f.notes = Some(nullable(v, |v| text(v, key, 2000))?),
            "method" => f.method = Some(one_of(v, key, &["breast", "bottle"])?),
            "durationMinutes" => {
                let max = if kind == Kind::Sleep { 2880 } else { 1440 };
                f.duration_minutes = Some(nullable(v, |v| int_in(v, key, max))?);
            }
            "amountMl" => f.amount_ml = Some(nullable(v, |v| int_in(v, key, 2000))?),
            "isEstimated" => {
                f.is_estimated = Some(match v {
                    Value::Bool(b) => *b,
                    Value::Null => false,
                    _ => {
                        return Err(Rejection::invalid(
                            "data.isEstimated: must be true or false",
                        ));
                    }
                })
            }
            "estimatedSource" => f.estimated_source = Some(nullable(v, |v| text(v, key, 64))?),
            "endSide" => f.end_side = Some(nullable(v, |v| one_of(v, key, &["left", "right"]))?),
            "type" => {
                f.nappy_type = Some(nullable(v, |v| {
                    one_of(v, key, &["wee", "poo", "mixed", "dry", "clean"])
                })?)
            }
            "colour" => {
                f.colour = Some(nullable(v, |v| {
                    one_of(
                        v,
                        key,
                        &["green", "yellow", "brown", "black", "red", "grey"],
                    )
                })?)
            }
            "consistency" => {
                f.consistency = Some(nullable(v, |v| {
                    one_of(
                        v,
                        key,
                        &["watery", "runny", "mushy", "pasty", "formed", "hardPellets"],
                    )
                })?)
            }
            _ => unreachable!("allowed_fields and this match agree"),
        }
    }
    if op == Op::Create {
        if f.baby_id.is_none() {
            return Err(Rejection::invalid("data.babyId: required to create"));
        }
        if f.started_at.is_none() {
            return Err(Rejection::invalid("data.startedAt: required to create"));
        }
        if kind == Kind::Feed && f.method.is_none() {
            return Err(Rejection::invalid(
                "data.method: required to create a feed_log",
            ));
        }
    }
    Ok(Mutation {
        kind,
        op,
        record_id,
        fields: f,
        base_version,
    })
}

/// Rules over the whole record after a change: `endedAt` ≥ `startedAt`.
pub fn check_record(r: &Record) -> Result<(), Rejection> {
    if let Some(end) = r.ended_at
        && end < r.started_at
    {
        return Err(Rejection::invalid(
            "data.endedAt: must not be before startedAt",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(v: Value) -> RawMutation {
        RawMutation {
            id: 1,
            body: v.as_object().unwrap().clone(),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn envelope_errors_are_400s() {
        let ok = json!({"protocolVersion": 1, "clientId": Uuid::nil(), "mutations": []});
        assert!(parse_push(ok, 10).is_ok());
        for bad in [
            json!([]),
            json!({"protocolVersion": 1, "clientId": "x", "mutations": []}),
            json!({"protocolVersion": 1, "clientId": Uuid::nil(), "mutations": {}}),
            json!({"protocolVersion": 1, "clientId": Uuid::nil(), "mutations": [{"id": "1"}]}),
            json!({"protocolVersion": 1, "clientId": Uuid::nil(), "mutations": [{"id": 1.5}]}),
            json!({"protocolVersion": 1, "clientId": Uuid::nil(), "mutations": [{"id": -1}]}),
            json!({"protocolVersion": 1, "clientId": Uuid::nil(), "mutations": [{"id": 0}]}),
            json!({"protocolVersion": 1, "clientId": Uuid::nil(), "mutations": [{"id": 18446744073709551615u64}]}),
            json!({"protocolVersion": 1, "clientId": Uuid::nil(), "mutations": [7]}),
            json!({"protocolVersion": 1, "clientId": Uuid::nil(), "mutations": [], "extra": 1}),
            json!({"protocolVersion": "1", "clientId": Uuid::nil(), "mutations": []}),
        ] {
            let e = parse_push(bad.clone(), 10).unwrap_err();
            assert_eq!(e.code(), "invalid_request", "{bad}");
        }
        let v2 = json!({"protocolVersion": 2, "clientId": Uuid::nil(), "mutations": []});
        assert_eq!(
            parse_push(v2, 10).unwrap_err().code(),
            "unsupported_protocol_version"
        );
        let many = json!({"protocolVersion": 1, "clientId": Uuid::nil(), "mutations": [{"id": 1}, {"id": 2}]});
        assert_eq!(
            parse_push(many, 1).unwrap_err().code(),
            "too_many_mutations"
        );
    }

    #[test]
    fn mutation_rules() {
        let id = Uuid::new_v4();
        let good = json!({"id": 1, "entity": "feed_log", "op": "create",
            "data": {"id": id, "babyId": id, "method": "bottle", "startedAt": "2026-01-01T10:00:00+01:00", "amountMl": 120}});
        let m = parse_mutation(&raw(good), now()).unwrap();
        assert_eq!(m.fields.amount_ml, Some(Some(120)));
        assert_eq!(
            m.fields.started_at.unwrap().to_rfc3339(),
            "2026-01-01T09:00:00+00:00"
        );
        let cases = [
            (
                json!({"id": 1, "entity": "bath_log", "op": "create", "data": {}}),
                "entity",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "upsert", "data": {}}),
                "op",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": []}),
                "data",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id}, "baseVersion": "7"}),
                "baseVersion",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id}, "extra": 1}),
                "extra",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": "nope"}}),
                "data.id",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id, "amountMl": 2001}}),
                "data.amountMl",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id, "amountMl": 12.5}}),
                "data.amountMl",
            ),
            (
                json!({"id": 1, "entity": "sleep_log", "op": "update", "data": {"id": id, "durationMinutes": 2881}}),
                "data.durationMinutes",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id, "durationMinutes": 1441}}),
                "data.durationMinutes",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id, "method": "spoon"}}),
                "data.method",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id, "method": null}}),
                "data.method",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id, "startedAt": null}}),
                "data.startedAt",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id, "startedAt": "2026-01-01 10:00"}}),
                "data.startedAt",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id, "startedAt": "2026-01-01T10:00:00"}}),
                "data.startedAt",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id, "startedAt": "1899-12-31T23:59:59Z"}}),
                "data.startedAt",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id, "notes": "x".repeat(2001)}}),
                "data.notes",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id, "estimatedSource": "x".repeat(65)}}),
                "data.estimatedSource",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id, "endSide": "middle"}}),
                "data.endSide",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id, "isEstimated": "yes"}}),
                "data.isEstimated",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id, "version": 3}}),
                "data.version",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id, "colour": "red"}}),
                "data.colour",
            ),
            (
                json!({"id": 1, "entity": "nappy_log", "op": "update", "data": {"id": id, "colour": "blue"}}),
                "data.colour",
            ),
            (
                json!({"id": 1, "entity": "nappy_log", "op": "update", "data": {"id": id, "consistency": "hard"}}),
                "data.consistency",
            ),
            (
                json!({"id": 1, "entity": "nappy_log", "op": "update", "data": {"id": id, "type": "wet"}}),
                "data.type",
            ),
            (
                json!({"id": 1, "entity": "nappy_log", "op": "delete", "data": {"id": id, "type": "wee"}}),
                "data.type",
            ),
            (
                json!({"id": 1, "entity": "sleep_log", "op": "create", "data": {"id": id, "startedAt": "2026-01-01T10:00:00Z"}}),
                "data.babyId",
            ),
            (
                json!({"id": 1, "entity": "sleep_log", "op": "create", "data": {"id": id, "babyId": id}}),
                "data.startedAt",
            ),
            (
                json!({"id": 1, "entity": "feed_log", "op": "create", "data": {"id": id, "babyId": id, "startedAt": "2026-01-01T10:00:00Z"}}),
                "data.method",
            ),
        ];
        for (m, field) in cases {
            let r = parse_mutation(&raw(m.clone()), now()).unwrap_err();
            assert_eq!(r.code, "invalid");
            assert!(
                r.message.starts_with(field),
                "{m} -> {} should name {field}",
                r.message
            );
        }
        let future = (now() + TimeDelta::hours(25)).to_rfc3339();
        let m = json!({"id": 1, "entity": "sleep_log", "op": "update", "data": {"id": id, "startedAt": future}});
        assert!(
            parse_mutation(&raw(m), now())
                .unwrap_err()
                .message
                .contains("24 h")
        );
        let soon = (now() + TimeDelta::hours(23)).to_rfc3339();
        let m = json!({"id": 1, "entity": "sleep_log", "op": "update", "data": {"id": id, "startedAt": soon}});
        assert!(parse_mutation(&raw(m), now()).is_ok());
    }

    #[test]
    fn leap_seconds_are_invalid() {
        let id = Uuid::new_v4();
        for at in [
            "2016-12-31T23:59:60.500Z",
            "2016-12-31T23:59:60Z",
            "2016-12-31T18:59:60-05:00",
        ] {
            let m = json!({"id": 1, "entity": "sleep_log", "op": "update", "data": {"id": id, "startedAt": at}});
            let err = parse_mutation(&raw(m), now()).unwrap_err();
            assert!(err.message.contains("leap second"), "{at}: {}", err.message);
        }
        let m = json!({"id": 1, "entity": "sleep_log", "op": "update", "data": {"id": id, "startedAt": "2016-12-31T23:59:59.999Z"}});
        assert!(parse_mutation(&raw(m), now()).is_ok());
    }

    #[test]
    fn ended_before_started_is_invalid() {
        let t = Utc::now();
        let mut r = Record::new(Kind::Sleep, Uuid::nil(), Uuid::nil(), "u", t);
        r.ended_at = Some(t - TimeDelta::minutes(1));
        assert_eq!(check_record(&r).unwrap_err().code, "invalid");
        r.ended_at = Some(t);
        assert!(check_record(&r).is_ok());
    }

    #[test]
    fn pull_requests() {
        let c = Uuid::nil();
        let p = parse_pull(json!({"protocolVersion": 1, "clientId": c})).unwrap();
        assert_eq!((p.cursor, p.limit), (None, 1000));
        for bad in [
            json!({"protocolVersion": 1, "clientId": c, "limit": 0}),
            json!({"protocolVersion": 1, "clientId": c, "limit": 5001}),
            json!({"protocolVersion": 1, "clientId": c, "cursor": 5}),
            json!({"protocolVersion": 1, "clientId": c, "since": 5}),
        ] {
            assert_eq!(parse_pull(bad).unwrap_err().code(), "invalid_request");
        }
    }
}
