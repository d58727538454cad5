//! Entries read for a pull as text: the database sends each row as one
//! text of its raw column values (a page's rows aggregated into one value
//! per statement), and the server writes each row's wire JSON from it: the
//! same JSON, key for key and value for value, that serde makes of the
//! kind's `Model`. A row then costs the server neither a database value per
//! column (nor, on SQLite, a hand-over between threads), nor a model, nor a
//! serialisation (docs/PERFORMANCE.md, "Issue 16").
//!
//! The format is derived from the entity's columns (order, names in
//! camelCase, types) and, for columns of a stored enum, the enum's values as
//! the OpenAPI schema of the Model lists them: a kind gets it by being
//! registered. A stored value the Model would refuse to read (a text outside
//! its enum, a timestamp that does not parse, a wrong storage class on
//! SQLite) is an error, reported as a 500 like the Model's own decoding.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{
    ColumnTrait, ColumnType, DbBackend, EntityTrait, IdenStatic, Iterable, prelude::Uuid,
};
use serde_json::Value;
use utoipa::{PartialSchema, ToSchema};

use super::camel;

/// Between two columns of a row's text: never in a column's text (the free
/// text is JSON-quoted by the database, which escapes control characters).
pub const FIELD_SEP: char = '\u{1f}';

/// How a column travels in a row's text and what its JSON is.
#[derive(Debug)]
enum Wire {
    /// 32 hex digits (SQLite's blob) or the hyphenated form (PostgreSQL).
    Uuid,
    /// A timestamp: RFC 3339 with an offset (as stored on SQLite) or UTC
    /// without one (PostgreSQL's ISO output): JSON in UTC with milliseconds.
    Timestamp,
    /// An integer that fits in this many bits.
    Int(u32),
    /// `1`/`0` (SQLite), `t`/`f` (PostgreSQL).
    Bool,
    /// Already a JSON string, quoted by the database.
    Text,
    /// One of these words, as it is.
    Enum(Vec<String>),
    /// A double, as the database writes it (`5.0` on SQLite, `5` on
    /// PostgreSQL): JSON as serde writes an `f64`.
    Double,
    /// A JSON text (an array), stored as serde wrote it: as it is.
    Json,
}

/// One column of a row's text.
#[derive(Debug)]
struct Column {
    /// In the table.
    name: &'static str,
    /// `"key":`, with the comma before all but the first.
    key: String,
    wire: Wire,
    /// Whether it may be NULL (an empty field).
    nullable: bool,
}

/// A kind's row text: the SQL that makes it and how it becomes JSON.
#[derive(Debug)]
pub struct RowFormat {
    columns: Vec<Column>,
    baby: usize,
    version: usize,
}

impl RowFormat {
    pub fn of<E>() -> Result<Self, String>
    where
        E: EntityTrait,
        E::Model: ToSchema,
    {
        let enums = enum_values::<E::Model>();
        let mut columns = vec![];
        let (mut baby, mut version) = (None, None);
        for (i, c) in E::Column::iter().enumerate() {
            let name = IdenStatic::as_str(&c);
            let key = camel(name);
            let wire = match c.def().get_column_type() {
                ColumnType::Uuid => Wire::Uuid,
                ColumnType::TimestampWithTimeZone => Wire::Timestamp,
                ColumnType::SmallInteger => Wire::Int(16),
                ColumnType::Integer => Wire::Int(32),
                ColumnType::BigInteger => Wire::Int(64),
                ColumnType::Boolean => Wire::Bool,
                ColumnType::Double => Wire::Double,
                ColumnType::Json => Wire::Json,
                ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_) => {
                    match enums.get(&key) {
                        Some(names) => Wire::Enum(names.clone()),
                        None => Wire::Text,
                    }
                }
                other => return Err(format!("column {name}: no wire form for {other:?}")),
            };
            match name {
                "baby_id" => baby = Some(i),
                "version" => version = Some(i),
                _ => {}
            }
            let sep = if i == 0 { "{" } else { "," };
            columns.push(Column {
                name,
                key: format!("{sep}\"{key}\":"),
                wire,
                nullable: c.def().is_null(),
            });
        }
        Ok(RowFormat {
            columns,
            baby: baby.ok_or("no baby_id column")?,
            version: version.ok_or("no version column")?,
        })
    }

    /// The SQL expression of a row's text, for `backend` (the table's
    /// column names, unqualified).
    pub fn sql(&self, backend: DbBackend) -> String {
        let pg = backend == DbBackend::Postgres;
        let mut parts = vec![];
        for Column { name, wire, .. } in &self.columns {
            let c = format!("\"{name}\"");
            parts.push(match (wire, pg) {
                (Wire::Uuid, false) => format!("hex({c})"),
                (Wire::Text, false) => format!("json_quote({c})"),
                (Wire::Text, true) => format!("to_json({c})"),
                // `YYYY-MM-DD HH:MM:SS[.f…]` (the pull sets DateStyle ISO).
                (Wire::Timestamp, true) => format!("({c} AT TIME ZONE 'UTC')"),
                // As they are (an enum's value is a plain word, checked
                // here); NULL is an empty text in `concat`.
                _ => c,
            });
        }
        let sep = if pg { "chr(31)" } else { "char(31)" };
        format!("concat({})", parts.join(&format!(", {sep}, ")))
    }

    /// Appends the wire JSON of `row` (a text made by [`RowFormat::sql`])
    /// to `out`; returns the row's baby and version.
    pub fn write_json(&self, row: &str, out: &mut Vec<u8>) -> Result<(Uuid, i64), String> {
        let mut fields = row.split(FIELD_SEP);
        let (mut baby, mut version) = (None, None);
        for (
            i,
            Column {
                key,
                wire,
                nullable,
                ..
            },
        ) in self.columns.iter().enumerate()
        {
            let field = fields.next().ok_or("too few columns")?;
            out.extend_from_slice(key.as_bytes());
            let bad = || format!("{key} {field:?} is not a {wire:?}");
            // NULL: an empty field (`concat`), or `null` from `json_quote`.
            // An empty text in an enum or id column reads as NULL too.
            if field.is_empty() || (field == "null" && matches!(wire, Wire::Text)) {
                if !nullable {
                    return Err(bad());
                }
                out.extend_from_slice(b"null");
                continue;
            }
            match wire {
                Wire::Uuid => {
                    let id = Uuid::try_parse(field).map_err(|_| bad())?;
                    if i == self.baby {
                        baby = Some(id);
                    }
                    out.push(b'"');
                    out.extend_from_slice(
                        id.hyphenated()
                            .encode_lower(&mut Uuid::encode_buffer())
                            .as_bytes(),
                    );
                    out.push(b'"');
                }
                Wire::Timestamp => {
                    out.push(b'"');
                    write_timestamp(field, out).ok_or_else(bad)?;
                    out.push(b'"');
                }
                Wire::Int(bits) => {
                    let n: i64 = field.parse().map_err(|_| bad())?;
                    if *bits < 64 && !(-(1i64 << (bits - 1))..(1i64 << (bits - 1))).contains(&n) {
                        return Err(bad());
                    }
                    if i == self.version {
                        version = Some(n);
                    }
                    out.extend_from_slice(n.to_string().as_bytes());
                }
                // As the model reads it: any integer but 0 is true.
                Wire::Bool => out.extend_from_slice(match field {
                    "t" => b"true",
                    "f" => b"false",
                    n => match n.parse::<i64>() {
                        Ok(0) => b"false",
                        Ok(_) => b"true",
                        Err(_) => return Err(bad()),
                    },
                }),
                Wire::Text => {
                    if !(field.len() >= 2 && field.starts_with('"') && field.ends_with('"')) {
                        return Err(bad());
                    }
                    out.extend_from_slice(field.as_bytes());
                }
                Wire::Double => {
                    let x: f64 = field.parse().map_err(|_| bad())?;
                    if !x.is_finite() {
                        return Err(bad());
                    }
                    serde_json::to_writer(&mut *out, &x).map_err(|_| bad())?;
                }
                Wire::Json => {
                    if !(field.starts_with('[') || field.starts_with('{')) {
                        return Err(bad());
                    }
                    out.extend_from_slice(field.as_bytes());
                }
                Wire::Enum(names) => {
                    if !names.iter().any(|n| n == field) {
                        return Err(bad());
                    }
                    out.push(b'"');
                    out.extend_from_slice(field.as_bytes());
                    out.push(b'"');
                }
            }
        }
        if fields.next().is_some() {
            return Err("too many columns".into());
        }
        out.push(b'}');
        Ok((baby.ok_or("no baby")?, version.ok_or("no version")?))
    }
}

/// Writes `t`, as stored on SQLite (`2026-11-20T07:05:00.5+00:00`) or
/// sent by PostgreSQL in UTC (`2026-11-20 07:05:00.5`), in the protocol's
/// form (`2026-11-20T07:05:00.500Z`, milliseconds truncated as chrono
/// does). Other offsets (and leap seconds) go through chrono; None if it is
/// not a timestamp.
fn write_timestamp(t: &str, out: &mut Vec<u8>) -> Option<()> {
    let b = t.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:dd";
    let fast = b.len() >= shape.len()
        && shape.iter().zip(b).all(|(s, c)| match s {
            b'd' => c.is_ascii_digit(),
            b'T' => *c == b'T' || *c == b' ',
            s => s == c,
        });
    if fast {
        let mut rest = &b[shape.len()..];
        let mut millis = [b'0'; 3];
        if let Some(frac) = rest.strip_prefix(b".") {
            let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 {
                return None;
            }
            for (m, d) in millis.iter_mut().zip(&frac[..digits]) {
                *m = *d;
            }
            rest = &frac[digits..];
        }
        let num =
            |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
        let valid = chrono::NaiveDate::from_ymd_opt(num(0..4) as i32, num(5..7), num(8..10))
            .is_some()
            && chrono::NaiveTime::from_hms_opt(num(11..13), num(14..16), num(17..19)).is_some();
        if valid && matches!(rest, b"" | b"Z" | b"+00:00") {
            out.extend_from_slice(&b[..10]);
            out.push(b'T');
            out.extend_from_slice(&b[11..19]);
            out.push(b'.');
            out.extend_from_slice(&millis);
            out.push(b'Z');
            return Some(());
        }
    }
    let t = DateTime::parse_from_rfc3339(t).ok()?;
    out.extend_from_slice(
        t.with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::Millis, true)
            .as_bytes(),
    );
    Some(())
}

/// Per property (camelCase) of `M`'s schema that is a closed set of
/// strings (inline or through a `$ref`, nullable or not): its values.
fn enum_values<M: ToSchema>() -> HashMap<String, Vec<String>> {
    let mut named = vec![];
    M::schemas(&mut named);
    let named: HashMap<String, Value> = named
        .into_iter()
        .filter_map(|(name, s)| Some((name, serde_json::to_value(s).ok()?)))
        .collect();
    let model = serde_json::to_value(<M as PartialSchema>::schema()).unwrap_or_default();
    let mut out = HashMap::new();
    if let Some(props) = model.get("properties").and_then(Value::as_object) {
        for (key, schema) in props {
            if let Some(names) = find_enum(schema, &named, 0) {
                out.insert(key.clone(), names);
            }
        }
    }
    out
}

fn find_enum(s: &Value, named: &HashMap<String, Value>, depth: u8) -> Option<Vec<String>> {
    if depth > 8 {
        return None;
    }
    match s {
        Value::Object(o) => {
            if let Some(Value::Array(values)) = o.get("enum") {
                let names: Vec<String> = values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect();
                if !names.is_empty() {
                    return Some(names);
                }
            }
            if let Some(target) = o.get("$ref").and_then(Value::as_str) {
                let name = target.rsplit('/').next().unwrap_or_default();
                return named.get(name).and_then(|t| find_enum(t, named, depth + 1));
            }
            o.values().find_map(|v| find_enum(v, named, depth + 1))
        }
        Value::Array(items) => items.iter().find_map(|v| find_enum(v, named, depth + 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::KINDS;

    fn ts(t: &str) -> Option<String> {
        let mut out = vec![];
        write_timestamp(t, &mut out).map(|_| String::from_utf8(out).unwrap())
    }

    #[test]
    fn timestamps_as_either_database_sends_them() {
        let cases = [
            // SQLite, as sqlx stores them.
            ("2026-11-20T07:05:00+00:00", "2026-11-20T07:05:00.000Z"),
            ("2026-11-20T07:05:00.123+00:00", "2026-11-20T07:05:00.123Z"),
            (
                "2026-11-20T07:05:00.123456+00:00",
                "2026-11-20T07:05:00.123Z",
            ),
            // PostgreSQL, in UTC with trailing zeros dropped.
            ("2026-11-20 07:05:00", "2026-11-20T07:05:00.000Z"),
            ("2026-11-20 07:05:00.1", "2026-11-20T07:05:00.100Z"),
            ("1900-01-01 00:00:00.99", "1900-01-01T00:00:00.990Z"),
            // Anything else that chrono reads.
            ("2026-11-20T12:35:00.999+05:30", "2026-11-20T07:05:00.999Z"),
        ];
        for (stored, wire) in cases {
            assert_eq!(ts(stored).as_deref(), Some(wire), "{stored}");
            // chrono agrees wherever it reads the form.
            if let Ok(t) = DateTime::parse_from_rfc3339(stored) {
                assert_eq!(
                    t.with_timezone(&Utc)
                        .to_rfc3339_opts(SecondsFormat::Millis, true),
                    wire
                );
            }
        }
        // A leap second, as chrono writes it.
        assert_eq!(
            ts("2016-12-31T23:59:60+00:00").as_deref(),
            Some("2016-12-31T23:59:60.000Z")
        );
        for bad in [
            "",
            "2026-11-20",
            "2026-02-30T07:05:00+00:00",
            "2026-11-20 25:05:00",
            "2026-11-20T07:61:00+00:00",
            "2026-11-20T07:05:00.+00:00",
            "2026-11-20T07:05:00+01",
            "2026-11-20X07:05:00",
            "yesterday",
        ] {
            assert_eq!(ts(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_kind_has_a_row_text_and_its_enums() {
        for kind in KINDS {
            let (sqlite, format) = kind.row_text(DbBackend::Sqlite).unwrap();
            let (pg, _) = kind.row_text(DbBackend::Postgres).unwrap();
            assert!(sqlite.starts_with("concat(") && pg.starts_with("concat("));
            assert!(format.columns.len() > 5);
        }
        let feed = crate::kinds::Kind::parse("feed_log").unwrap();
        let (_, format) = feed.row_text(DbBackend::Sqlite).unwrap();
        let wires: Vec<String> = format
            .columns
            .iter()
            .map(|c| format!("{}{:?}", c.key, c.wire))
            .collect();
        assert!(
            wires
                .iter()
                .any(|w| w.starts_with(",\"method\":Enum([\"breast\"")),
            "{wires:?}"
        );
        assert!(
            wires.iter().any(|w| w.starts_with(",\"endSide\":Enum(")),
            "{wires:?}"
        );
        assert!(wires.contains(&",\"notes\":Text".to_owned()), "{wires:?}");
        assert!(wires.contains(&"{\"id\":Uuid".to_owned()), "{wires:?}");
    }

    #[test]
    fn a_row_is_checked_field_by_field() {
        let sleep = crate::kinds::Kind::parse("sleep_log").unwrap();
        let (_, format) = sleep.row_text(DbBackend::Sqlite).unwrap();
        // id, babyId, loggedBy, startedAt, endedAt, durationMinutes,
        // timerState, segments, notes, createdAt, updatedAt, archivedAt, version
        let row = |f: [&str; 13]| f.join("\u{1f}");
        let good = [
            "0190A23066B170756180DF5E0B4640FB",
            "0190a230-66b1-7075-6180-df5e0b4640fc",
            "\"alice\"",
            "2026-11-20T07:05:00+00:00",
            "",
            "12",
            "",
            "",
            "null",
            "2026-11-20 07:05:00.5",
            "2026-11-20 07:05:00.5",
            "",
            "7",
        ];
        let mut out = vec![];
        let (baby, version) = format.write_json(&row(good), &mut out).unwrap();
        assert_eq!(
            (baby.to_string().as_str(), version),
            ("0190a230-66b1-7075-6180-df5e0b4640fc", 7)
        );
        let json: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["id"], "0190a230-66b1-7075-6180-df5e0b4640fb");
        assert_eq!(json["endedAt"], Value::Null);
        assert_eq!(json["notes"], Value::Null);
        assert_eq!(json["durationMinutes"], 12);
        assert_eq!(json["createdAt"], "2026-11-20T07:05:00.500Z");
        for (i, bad) in [
            (0, "not-a-uuid"),
            (2, "alice"),
            (3, "soon"),
            (5, "12.5"),
            (5, "\"12\""),
            (5, "3000000000"),
            (6, "idle"),
            (7, "\"x\""),
            (12, "x"),
            // NULL where the column may not be.
            (0, ""),
            (3, ""),
            (12, ""),
        ] {
            let mut fields = good;
            fields[i] = bad;
            assert!(
                format.write_json(&row(fields), &mut vec![]).is_err(),
                "{i}: {bad}"
            );
        }
        assert!(
            format
                .write_json(&good[..12].join("\u{1f}"), &mut vec![])
                .is_err()
        );
        assert!(
            format
                .write_json(&format!("{}\u{1f}", row(good)), &mut vec![])
                .is_err()
        );
    }

    #[test]
    fn doubles_and_json_read_as_serde_writes_them() {
        let kind = |name| {
            crate::kinds::Kind::parse(name)
                .unwrap()
                .row_text(DbBackend::Postgres)
                .unwrap()
                .1
        };
        let common = |own: &[&str]| {
            let mut f = vec![
                "0190a230-66b1-7075-6180-df5e0b4640fb",
                "0190a230-66b1-7075-6180-df5e0b4640fc",
                "\"alice\"",
                "2026-11-20 07:05:00",
            ];
            f.extend(own);
            f.extend([
                "null",
                "2026-11-20 07:05:00",
                "2026-11-20 07:05:00",
                "",
                "3",
            ]);
            f.join("\u{1f}")
        };
        let json = |format: &RowFormat, row: String| {
            let mut out = vec![];
            format
                .write_json(&row, &mut out)
                .map(|_| String::from_utf8(out).unwrap())
        };
        let temperature = kind("temperature_log");
        for (stored, wire) in [("37", "37.0"), ("37.0", "37.0"), ("37.2", "37.2")] {
            let out = json(temperature, common(&[stored, "ear"])).unwrap();
            assert!(out.contains(&format!("\"celsius\":{wire},")), "{out}");
            let model: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(
                out,
                serde_json::to_string(
                    &serde_json::from_value::<entity::temperature_log::Model>(model).unwrap()
                )
                .unwrap()
            );
        }
        for bad in ["", "warm", "NaN", "inf"] {
            assert!(json(temperature, common(&[bad, "ear"])).is_err(), "{bad}");
        }
        let solids = kind("solids_log");
        let out = json(solids, common(&["\"egg\"", "loved", "[\"egg\",\"milk\"]"])).unwrap();
        assert!(out.contains("\"allergens\":[\"egg\",\"milk\"]"), "{out}");
        let out = json(solids, common(&["\"egg\"", "", ""])).unwrap();
        assert!(out.contains("\"allergens\":null"), "{out}");
        assert!(json(solids, common(&["\"egg\"", "", "\"egg\""])).is_err());
    }

    #[test]
    fn enums_and_booleans_read_as_the_model_reads_them() {
        let feed = crate::kinds::Kind::parse("feed_log").unwrap();
        let (_, format) = feed.row_text(DbBackend::Sqlite).unwrap();
        let row = |method: &str, estimated: &str, side: &str| {
            [
                "0190A23066B170756180DF5E0B4640FB",
                "0190A23066B170756180DF5E0B4640FC",
                "\"alice\"",
                method,
                "2026-11-20T07:05:00+00:00",
                "",
                "",
                "120",
                estimated,
                "null",
                "",
                side,
                "",
                "",
                "null",
                "2026-11-20T07:05:00+00:00",
                "2026-11-20T07:05:00+00:00",
                "",
                "3",
            ]
            .join("\u{1f}")
        };
        let json = |r: String| {
            let mut out = vec![];
            format
                .write_json(&r, &mut out)
                .map(|_| serde_json::from_slice::<Value>(&out).unwrap())
        };
        let ok = json(row("bottle", "2", "left")).unwrap();
        assert_eq!(
            (&ok["method"], &ok["isEstimated"], &ok["endSide"]),
            (
                &Value::from("bottle"),
                &Value::from(true),
                &Value::from("left")
            )
        );
        assert_eq!(json(row("breast", "f", "")).unwrap()["isEstimated"], false);
        assert_eq!(
            json(row("breast", "0", "")).unwrap()["endSide"],
            Value::Null
        );
        for (method, estimated, side) in [
            ("cup", "0", ""),
            ("", "0", ""),
            ("bottle", "yes", ""),
            ("bottle", "", ""),
            ("bottle", "0", "middle"),
            ("\"bottle\"", "0", ""),
        ] {
            assert!(
                json(row(method, estimated, side)).is_err(),
                "{method:?} {estimated:?} {side:?}"
            );
        }
    }
}
