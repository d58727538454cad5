//! Property tests over the parsing and validation of sync requests: whatever
//! the bytes or the JSON, nothing panics, and every refusal is a 4xx.

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use utoipa::openapi::{RefOr, Schema};

use super::{cursor, validate};
use crate::{
    error::ApiError,
    extract::parse_json_strict,
    kinds::{COMMON_KEYS, KINDS, SERVER_KEYS},
};

/// Keys the parsers look for (every kind's fields among them), plus noise,
/// so that generated objects often reach deep into validation.
fn keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "protocolVersion",
        "clientId",
        "mutations",
        "cursor",
        "limit",
        "id",
        "entity",
        "op",
        "data",
        "baseVersion",
        "x",
        "",
    ]
    .iter()
    .chain(COMMON_KEYS.iter())
    .chain(SERVER_KEYS.iter())
    .map(|k| (*k).to_owned())
    .collect();
    for kind in KINDS {
        keys.extend(kind.own_fields().iter().cloned());
    }
    keys.sort();
    keys.dedup();
    keys
}

/// Values the parsers look for (every kind's name and enum values among
/// them), plus hostile text.
fn strings() -> Vec<String> {
    let mut out: Vec<String> = [
        "create",
        "update",
        "delete",
        "2026-11-20T07:05:00Z",
        "2026-11-20T07:05:00+14:00",
        "2016-12-31T23:59:60Z",
        "1899-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "00000000-0000-0000-0000-000000000000",
        "6f1c7a8e-0b1d-4e0a-9a5e-0c2b7d9e8f01",
        "",
        "\u{0}",
        "'; DROP TABLE feed_log; --",
        "é🍼",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut schemas = vec![];
    for kind in KINDS {
        out.push(kind.name().to_owned());
        kind.schemas(&mut schemas);
    }
    for (_, schema) in schemas {
        if let RefOr::T(Schema::Object(o)) = schema {
            for v in o.enum_values.unwrap_or_default() {
                out.extend(v.as_str().map(str::to_owned));
            }
        }
    }
    out
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(strings()).prop_map(Value::String),
        ".{0,40}".prop_map(Value::String),
        (1i64..5).prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(keys()), inner), 0..8)
                .prop_map(|kvs| Value::Object(kvs.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// A push envelope that is often well-formed, with arbitrary mutations.
fn push_body() -> impl Strategy<Value = Value> {
    (json_value(), prop::collection::vec(json_value(), 0..6), any::<bool>()).prop_map(|(noise, muts, proper)| {
        if proper {
            let mutations: Vec<Value> = muts
                .into_iter()
                .enumerate()
                .map(|(i, m)| match m {
                    Value::Object(mut o) => {
                        o.insert("id".into(), json!(i + 1));
                        Value::Object(o)
                    }
                    other => json!({"id": i + 1, "entity": "feed_log", "op": "create", "data": other}),
                })
                .collect();
            json!({"protocolVersion": 1, "clientId": "6f1c7a8e-0b1d-4e0a-9a5e-0c2b7d9e8f01", "mutations": mutations})
        } else {
            noise
        }
    })
}

fn is_4xx(e: &ApiError) -> bool {
    e.status().is_client_error()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_parse_or_are_refused_with_a_4xx(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        match parse_json_strict(&bytes) {
            Ok(v) => {
                if let Err(e) = validate::parse_push(v.clone(), 1000) { prop_assert!(is_4xx(&e)); }
                if let Err(e) = validate::parse_pull(v) { prop_assert!(is_4xx(&e)); }
            }
            Err(e) => prop_assert!(is_4xx(&e)),
        }
    }

    #[test]
    fn any_push_body_validates_without_panicking(body in push_body()) {
        match validate::parse_push(body, 1000) {
            Ok(req) => {
                for m in req.mutations {
                    if let Err(r) = validate::parse_mutation(m, "u", chrono::Utc::now()) {
                        prop_assert!(["invalid", "forbidden", "not_found", "conflict"].iter().any(|c| r.code == *c));
                        prop_assert!(!r.message.is_empty());
                    }
                }
            }
            Err(e) => prop_assert!(is_4xx(&e)),
        }
    }

    #[test]
    fn any_pull_body_validates_without_panicking(body in json_value(), cursor in ".{0,200}") {
        if let Err(e) = validate::parse_pull(body) { prop_assert!(is_4xx(&e)); }
        if let Err(e) = cursor::decode(b"k", "user", &cursor) { prop_assert!(is_4xx(&e)); }
    }
}

#[test]
fn hostile_documents_are_4xx() {
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<Vec<u8>> = vec![
        deep.into_bytes(),
        br#"{"protocolVersion": 1e400, "clientId": "x", "mutations": []}"#.to_vec(),
        b"{\"protocolVersion\": 1, \"clientId\": \"\xff\xfe\", \"mutations\": []}".to_vec(),
        br#"{"protocolVersion": 1, "protocolVersion": 1, "clientId": "6f1c7a8e-0b1d-4e0a-9a5e-0c2b7d9e8f01", "mutations": []}"#.to_vec(),
        br#"{"protocolVersion": 1, "clientId": "6f1c7a8e-0b1d-4e0a-9a5e-0c2b7d9e8f01", "mutations": [{"id": 1, "id": 2}]}"#.to_vec(),
        br#"{"protocolVersion": 1, "clientId": "6f1c7a8e-0b1d-4e0a-9a5e-0c2b7d9e8f01", "mutations": [{"id": 99999999999999999999999}]}"#.to_vec(),
        br#"{"protocolVersion": 1, "clientId": "6f1c7a8e-0b1d-4e0a-9a5e-0c2b7d9e8f01", "mutations": [{"id": -5}]}"#.to_vec(),
        b"\0".to_vec(),
    ];
    for bytes in cases {
        let refused =
            parse_json_strict(&bytes).and_then(|v| validate::parse_push(v, 1000).map(|_| ()));
        let e = refused.expect_err(&String::from_utf8_lossy(&bytes[..bytes.len().min(80)]));
        assert!(is_4xx(&e), "{e:?}");
    }
}
