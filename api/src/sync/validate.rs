//! Parsing and validation of sync requests. A malformed envelope is a 400 for
//! the whole request; a malformed mutation inside a good envelope is only that
//! mutation's `rejected`/`invalid`.

use sea_orm::prelude::Uuid;
use serde_json::{Map, Value};

use super::plan::RejectCode;
use crate::{
    error::ApiError,
    kinds::{
        COMMON_KEYS, CommonData, Kind, Record, SERVER_KEYS, field_error,
        fields::{Id, Set},
        parse_as, timer,
    },
};

/// A mutation's failure: its code (`invalid`, `forbidden`, `not_found`,
/// `conflict`), a message, and for conflicts the stored record.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub code: RejectCode,
    pub message: String,
    pub current: Option<Value>,
}

impl Rejection {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: RejectCode::Invalid,
            message: message.into(),
            current: None,
        }
    }
    /// The same rejection of the mutation at `index` in the push: a message
    /// that begins with a field (`data.amountMl: …`) names it by its path
    /// in the request (`mutations/3/data/amountMl: …`).
    pub fn at(mut self, index: usize) -> Self {
        if let Some((field, rest)) = self.message.split_once(": ")
            && !field.is_empty()
            && !field.contains(' ')
        {
            self.message = format!("mutations/{index}/{}: {rest}", field.replace('.', "/"));
        }
        self
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            code: RejectCode::Forbidden,
            message: message.into(),
            current: None,
        }
    }
    pub fn not_found() -> Self {
        Self {
            code: RejectCode::NotFound,
            message: "no such record".into(),
            current: None,
        }
    }
    pub fn conflict(message: impl Into<String>, current: Option<Value>) -> Self {
        Self {
            code: RejectCode::Conflict,
            message: message.into(),
            current,
        }
    }
}

fn object(body: Value, what: &str) -> Result<Map<String, Value>, ApiError> {
    match body {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::invalid(format!(
            "{what} must be a JSON object ({{…}})"
        ))),
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
                &format!("mutations/{i}"),
                "must be an object with an integer id",
            ));
        };
        let id = match body.get("id") {
            Some(Value::Number(n)) => n.as_i64(),
            _ => None,
        };
        let Some(id) = id.filter(|id| *id >= 1) else {
            return Err(ApiError::invalid_field(
                &format!("mutations/{i}/id"),
                "must be a positive integer (at most 2^63-1)",
            ));
        };
        mutations.push(RawMutation { id, body });
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Create,
    Update,
    Delete,
}

/// One parsed mutation.
#[derive(Debug, Clone)]
pub struct Mutation {
    pub kind: Kind,
    pub op: Op,
    pub record_id: Uuid,
    /// `data.babyId`, when given.
    pub baby_id: Option<Uuid>,
    /// The fields `data` sets, checked, in wire form (not `id` nor `babyId`).
    pub data: Map<String, Value>,
    pub base_version: Option<i64>,
    /// For a `create`: the new record, whole and checked.
    pub created: Option<Record>,
}

/// `data.amount_ml: unknown field for feed_log (did you mean amountMl?)`.
fn unknown_field(key: &str, kind: Kind) -> Rejection {
    let camel: String = key
        .split('_')
        .enumerate()
        .map(|(i, part)| {
            let mut chars = part.chars();
            match chars.next() {
                Some(c) if i > 0 => c.to_uppercase().chain(chars).collect(),
                Some(c) => std::iter::once(c).chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect();
    let known = kind.own_fields().contains(&camel) || COMMON_KEYS.contains(&camel.as_str());
    if key.contains('_') && known {
        Rejection::invalid(format!(
            "data.{key}: unknown field for {} (did you mean {camel}?)",
            kind.name()
        ))
    } else {
        Rejection::invalid(format!("data.{key}: unknown field for {}", kind.name()))
    }
}

/// Parses one mutation of a well-formed envelope. Anything wrong with it is an
/// `invalid` rejection naming the field.
pub fn parse_mutation(
    raw: RawMutation,
    user: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Mutation, Rejection> {
    let mut b = raw.body;
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
        .ok_or_else(|| {
            Rejection::invalid(format!("entity: must be {}", Kind::names_for_message()))
        })?;
    let op = match b.get("op").and_then(Value::as_str) {
        Some("create") => Op::Create,
        Some("update") => Op::Update,
        Some("delete") => Op::Delete,
        _ => return Err(Rejection::invalid("op: must be create, update or delete")),
    };
    if op == Op::Update && !kind.updatable() {
        return Err(Rejection::invalid(format!(
            "op: a {} takes create and delete only",
            kind.name()
        )));
    }
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
    let data = match b.remove("data") {
        Some(Value::Object(d)) => d,
        _ => return Err(Rejection::invalid("data: must be an object")),
    };
    let record_id = parse_as::<Id>(data.get("id").cloned().unwrap_or(Value::Null))
        .map_err(|(_, m)| field_error("id", &m))?
        .0;
    let mut common = Map::new();
    let mut own = Map::new();
    for (name, v) in data {
        let key = name.as_str();
        if op == Op::Delete && !["id", "babyId"].contains(&key) {
            return Err(Rejection::invalid(format!(
                "data.{key}: a delete takes only id (and babyId)"
            )));
        }
        if SERVER_KEYS.contains(&key) || (key == "segments" && kind.has_timer()) {
            return Err(Rejection::invalid(format!(
                "data.{key}: is set by the server"
            )));
        }
        if COMMON_KEYS.contains(&key) {
            if key != "id" {
                common.insert(name, v);
            }
        } else if kind.own_fields().iter().any(|f| f == key) {
            own.insert(name, v);
        } else {
            return Err(unknown_field(key, kind));
        }
    }
    let common: CommonData =
        parse_as(Value::Object(common)).map_err(|(p, m)| field_error(&p, &m))?;
    let baby_id = match &common.baby_id {
        Set::To(id) => Some(id.0),
        Set::Keep => None,
    };
    let mut fields = match serde_json::to_value(&common) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    fields.remove("babyId");
    fields.extend(kind.parse_own(own)?);
    if op == Op::Create && kind.has_timer() {
        timer::check_create(&mut fields)?;
    }
    let created = if op == Op::Create {
        let Some(baby) = baby_id else {
            return Err(Rejection::invalid("data.babyId: required to create"));
        };
        if common.started_at.is_keep() {
            return Err(Rejection::invalid("data.startedAt: required to create"));
        }
        // Whatever else the kind requires, checked before anything is looked up.
        let mut record = Record::create(kind, record_id, baby, user, now, &fields)?;
        if timer::is_timer(&record) {
            // A new timer has no events yet.
            timer::settle(&mut record, &[])
                .map_err(|e| Rejection::invalid(format!("data: {e}")))?;
        }
        Some(record)
    } else {
        None
    };
    Ok(Mutation {
        kind,
        op,
        record_id,
        baby_id,
        data: fields,
        base_version,
        created,
    })
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

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
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
        let m = parse_mutation(raw(good), "u", now()).unwrap();
        assert_eq!(m.data["amountMl"], json!(120));
        assert_eq!(m.data["startedAt"], json!("2026-01-01T09:00:00.000Z"));
        assert_eq!(m.baby_id, Some(id));
        assert!(!m.data.contains_key("babyId") && !m.data.contains_key("id"));
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
            let r = parse_mutation(raw(m.clone()), "u", now()).unwrap_err();
            assert_eq!(r.code, "invalid");
            assert!(
                r.message.starts_with(field),
                "{m} -> {} should name {field}",
                r.message
            );
        }
        let future = (now() + chrono::TimeDelta::hours(25)).to_rfc3339();
        let m = json!({"id": 1, "entity": "sleep_log", "op": "update", "data": {"id": id, "startedAt": future}});
        assert!(
            parse_mutation(raw(m), "u", now())
                .unwrap_err()
                .message
                .contains("24 h")
        );
        let soon = (now() + chrono::TimeDelta::hours(23)).to_rfc3339();
        let m = json!({"id": 1, "entity": "sleep_log", "op": "update", "data": {"id": id, "startedAt": soon}});
        assert!(parse_mutation(raw(m), "u", now()).is_ok());
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
            let err = parse_mutation(raw(m), "u", now()).unwrap_err();
            assert!(err.message.contains("leap second"), "{at}: {}", err.message);
        }
        let m = json!({"id": 1, "entity": "sleep_log", "op": "update", "data": {"id": id, "startedAt": "2016-12-31T23:59:59.999Z"}});
        assert!(parse_mutation(raw(m), "u", now()).is_ok());
    }

    #[test]
    fn ended_before_started_is_invalid() {
        let id = Uuid::new_v4();
        let m = json!({"id": 1, "entity": "sleep_log", "op": "create", "data": {"id": id, "babyId": id,
            "startedAt": "2026-01-01T10:00:00Z", "endedAt": "2026-01-01T09:59:00Z"}});
        let err = parse_mutation(raw(m), "u", now()).unwrap_err();
        assert_eq!(err.message, "data.endedAt: must not be before startedAt");
        let m = json!({"id": 1, "entity": "sleep_log", "op": "create", "data": {"id": id, "babyId": id,
            "startedAt": "2026-01-01T10:00:00Z", "endedAt": "2026-01-01T10:00:00Z"}});
        assert!(parse_mutation(raw(m), "u", now()).is_ok());
    }

    #[test]
    fn a_snake_case_field_gets_a_hint() {
        let id = Uuid::new_v4();
        let m = json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id, "amount_ml": 5}});
        assert_eq!(
            parse_mutation(raw(m), "u", now()).unwrap_err().message,
            "data.amount_ml: unknown field for feed_log (did you mean amountMl?)"
        );
        let m = json!({"id": 1, "entity": "feed_log", "op": "update", "data": {"id": id, "started_at": "x"}});
        assert!(
            parse_mutation(raw(m), "u", now())
                .unwrap_err()
                .message
                .ends_with("(did you mean startedAt?)")
        );
        let m = json!({"id": 1, "entity": "sleep_log", "op": "update", "data": {"id": id, "amount_ml": 5}});
        assert_eq!(
            parse_mutation(raw(m), "u", now()).unwrap_err().message,
            "data.amount_ml: unknown field for sleep_log"
        );
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
