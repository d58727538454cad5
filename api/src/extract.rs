//! Extractors whose every rejection is an [`ApiError`], and the strict JSON
//! reader: 415 for a body that is not JSON, 413 over the limit, 400 naming
//! the field at fault, duplicate keys refused.

use axum::{
    extract::{FromRequest, Request, rejection::BytesRejection},
    http::{StatusCode, header},
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// A JSON body extractor whose every rejection is an [`ApiError`]: 415 for a
/// body that is not JSON, 413 over the limit, 400 naming the offending field.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_json_body(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Checks the content type and buffers the body within the configured limit.
pub async fn read_json_body<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<axum::body::Bytes, ApiError> {
    if !is_json_content_type(req.headers()) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map(|l| l.0)
        .unwrap_or(usize::MAX);
    axum::body::Bytes::from_request(req, state)
        .await
        .map_err(|rejection: BytesRejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge { limit }
            } else {
                ApiError::invalid(format!("could not read the request body: {rejection}"))
            }
        })
}

/// Parses JSON, naming the field at fault in the message and in
/// `details.field` (a path such as `invites/0/maxUses`), with what is expected.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = pointer(e.path());
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::invalid(format!(
                "malformed JSON at line {}, column {}: {}",
                inner.line(),
                inner.column(),
                strip_position(&inner.to_string())
            ))
        } else {
            field_error(&path, &strip_position(&inner.to_string()))
        }
    })?;
    Ok(value)
}

/// A serde path as `details.field` writes it: names and indices joined by
/// `/` (`mutations/3/data/amountMl`), `""` for the body as a whole.
pub fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        let part = match segment {
            Segment::Seq { index } => index.to_string(),
            Segment::Map { key } => key.clone(),
            Segment::Enum { variant } => variant.clone(),
            Segment::Unknown => "?".into(),
        };
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(&part);
    }
    out
}

/// Joins a field's path and a name inside it (serde's path of an unknown
/// field already ends with it).
fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else if path == name || path.ends_with(&format!("/{name}")) {
        path.to_owned()
    } else {
        format!("{path}/{name}")
    }
}

/// What serde said about `path`, as a person reads it: the field, and what
/// it must be.
pub fn field_error(path: &str, serde_message: &str) -> ApiError {
    let (field, what) = describe(path, serde_message);
    ApiError::invalid_field(&field, what)
}

/// The field a serde error at `path` is about (an unknown or missing field
/// is one level down) and what it must be.
pub fn describe(path: &str, serde_message: &str) -> (String, String) {
    let ticked =
        |m: &str| -> Vec<String> { m.split('`').skip(1).step_by(2).map(str::to_owned).collect() };
    if let Some(rest) = serde_message.strip_prefix("missing field ") {
        let name = ticked(rest).into_iter().next().unwrap_or_default();
        return (join(path, &name), "is required".to_owned());
    }
    if let Some(rest) = serde_message.strip_prefix("unknown field ") {
        let mut names = ticked(rest).into_iter();
        let name = names.next().unwrap_or_default();
        let allowed: Vec<String> = names.collect();
        let message = if allowed.is_empty() {
            "is not a field here; this object takes none".to_owned()
        } else {
            format!(
                "is not a field here; expected one of {}",
                allowed.join(", ")
            )
        };
        return (join(path, &name), message);
    }
    let what = if let Some(rest) = serde_message.strip_prefix("unknown variant ") {
        let mut names = ticked(rest).into_iter();
        let got = names.next().unwrap_or_default();
        let allowed: Vec<String> = names.collect();
        format!("must be one of {} (got {got:?})", allowed.join(", "))
    } else if let Some((got, expected)) = ["invalid type: ", "invalid value: "]
        .iter()
        .find_map(|prefix| serde_message.strip_prefix(prefix))
        .and_then(|rest| rest.split_once(", expected "))
    {
        format!("must be {expected} (got {got})")
    } else if serde_message.contains("UUID") {
        UUID_EXPECTED.to_owned()
    } else if CHRONO_MESSAGES.contains(&serde_message) {
        let last = path.rsplit('/').next().unwrap_or_default();
        if last.ends_with("Date") {
            "must be a date YYYY-MM-DD, such as 2026-01-31".to_owned()
        } else {
            "must be an RFC 3339 timestamp with an offset, such as 2026-11-21T07:05:00Z".to_owned()
        }
    } else {
        serde_message.to_owned()
    };
    (path.to_owned(), what)
}

const UUID_EXPECTED: &str = "must be a UUID such as 0192f7a4-5c1e-7d3a-9b2c-1f4e8a6b3c5d";

/// What chrono says of a date or timestamp it cannot read (its `ParseError`s).
const CHRONO_MESSAGES: &[&str] = &[
    "input contains invalid characters",
    "premature end of input",
    "trailing input",
    "input is out of range",
    "input is not enough for unique date and time",
    "no possible date and time matching input",
    "bad or unsupported format string",
    "input is impossible",
];

/// Parses a JSON document into a `Value`, refusing duplicate object keys
/// (which `serde_json` would otherwise resolve silently, last one winning).
pub fn parse_json_strict(bytes: &[u8]) -> Result<Value, ApiError> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    value.map_err(|e| {
        ApiError::invalid(format!(
            "malformed JSON at line {}, column {}: {}",
            e.line(),
            e.column(),
            strip_position(&e.to_string())
        ))
    })
}

struct StrictValue;

impl<'de> serde::de::DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictValue)
    }
}

impl<'de> serde::de::Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictValue)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("duplicate key {key:?}")));
            }
            let v = map.next_value_seed(StrictValue)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

fn strip_position(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

pub(crate) fn is_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// A path extractor whose rejection is a 400 in the error shape.
pub struct ApiPath<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        // Nothing is named with a NUL (and PostgreSQL text cannot hold one).
        if parts.uri.path().contains("%00") {
            return Err(ApiError::NotFound("nothing has that name".into()));
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(path_error)
    }
}

/// The body limit in force, put in request extensions so rejections can name it.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// A path parameter that does not parse: named, with what it must be.
fn path_error(e: axum::extract::rejection::PathRejection) -> ApiError {
    use axum::extract::path::ErrorKind;
    use axum::extract::rejection::PathRejection;
    let PathRejection::FailedToDeserializePathParams(e) = e else {
        return ApiError::invalid(format!("bad path: {}", e.body_text()));
    };
    match e.into_kind() {
        ErrorKind::ParseErrorAtKey {
            key,
            value,
            expected_type,
        } => {
            let what = if expected_type.contains("Uuid") {
                UUID_EXPECTED.to_owned()
            } else {
                format!("must be a {expected_type}")
            };
            ApiError::invalid_field(&key, format!("{what} (got {value:?})"))
        }
        ErrorKind::DeserializeError {
            key,
            value,
            message,
        } => {
            let what = if message.contains("UUID") {
                UUID_EXPECTED.to_owned()
            } else {
                format!("cannot be read: {message}")
            };
            ApiError::invalid_field(&key, format!("{what} (got {value:?})"))
        }
        ErrorKind::ParseErrorAtIndex { index, value, .. } => {
            ApiError::invalid_field(&index.to_string(), format!("cannot be {value:?}"))
        }
        ErrorKind::InvalidUtf8InPathParam { key } => {
            ApiError::invalid_field(&key, "must be valid UTF-8")
        }
        other => ApiError::invalid(format!("bad path: {other}")),
    }
}
