//! The value types a log entry's fields are made of, each parsed with serde
//! into its checked form, with the protocol's messages (`must be an integer
//! from 0 to 2000`); the caller prefixes the field's path (`data.amountMl: …`).

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use sea_orm::prelude::Uuid;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};
use serde_json::Value;

/// A field a patch may set or clear: absent (keep), `null` (clear), or a value.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Change<T> {
    #[default]
    Keep,
    Clear,
    To(T),
}

impl<T> Change<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, Change::Keep)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Change<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            None => Change::Clear,
            Some(v) => Change::To(v),
        })
    }
}

impl<T: Serialize> Serialize for Change<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Change::To(v) => v.serialize(s),
            _ => s.serialize_none(),
        }
    }
}

/// A field a patch may set but never clear: absent (keep) or a value (`null`
/// is refused by the value's own type).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Set<T> {
    #[default]
    Keep,
    To(T),
}

impl<T> Set<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, Set::Keep)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Set<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Set::To)
    }
}

impl<T: Serialize> Serialize for Set<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Set::To(v) => v.serialize(s),
            Set::Keep => s.serialize_none(),
        }
    }
}

/// An integer from `MIN` to `MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Between<const MIN: i64, const MAX: i64>(pub i32);

/// An integer from 0 to `MAX`.
pub type UpTo<const MAX: i64> = Between<0, MAX>;

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Between<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)?.as_i64() {
            Some(n) if (MIN..=MAX).contains(&n) => Ok(Between(n as i32)),
            _ => Err(D::Error::custom(format!(
                "must be an integer from {MIN} to {MAX}"
            ))),
        }
    }
}

/// A number with at most `PLACES` decimals, above 0 (`POSITIVE`) or from
/// `MIN_TENTHS`/10, and at most `MAX_TENTHS`/10. Stored as a double: every
/// such number reads back as the same shortest decimal.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Decimal<const PLACES: u32, const MIN_TENTHS: i64, const MAX_TENTHS: i64>(pub f64);

/// A dose: more than 0, at most 10000, at most 3 decimals (`MIN_TENTHS` 0
/// here means "more than 0").
pub type Dose = Decimal<3, 0, 100_000>;
/// Degrees Celsius, 30.0 to 45.0, at most 1 decimal.
pub type Celsius = Decimal<1, 300, 450>;

impl<'de, const PLACES: u32, const MIN_TENTHS: i64, const MAX_TENTHS: i64> Deserialize<'de>
    for Decimal<PLACES, MIN_TENTHS, MAX_TENTHS>
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (min, max) = (MIN_TENTHS as f64 / 10.0, MAX_TENTHS as f64 / 10.0);
        let range = if MIN_TENTHS == 0 {
            format!("more than 0 and at most {max}")
        } else {
            format!("from {min:.1} to {max:.1}")
        };
        let places = if PLACES == 1 { "decimal" } else { "decimals" };
        let bad = || {
            D::Error::custom(format!(
                "must be a number {range}, at most {PLACES} {places}"
            ))
        };
        let x = Value::deserialize(d)?.as_f64().ok_or_else(bad)?;
        let in_range = if MIN_TENTHS == 0 { x > 0.0 } else { x >= min } && x <= max;
        // At most PLACES decimals: the nearest double to the scaled
        // integer's decimal is the number itself (exact for any number
        // written with PLACES decimals, false for any other).
        let scale = 10f64.powi(PLACES as i32);
        if !in_range || (x * scale).round() / scale != x {
            return Err(bad());
        }
        Ok(Decimal(x))
    }
}

/// Text of 1 to `MAX` characters, without NUL.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Name<const MAX: usize>(pub String);

impl<'de, const MAX: usize> Deserialize<'de> for Name<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Text::<MAX>::deserialize(d) {
            Ok(Text(s)) if s.is_empty() => {
                Err(D::Error::custom(format!("must be 1 to {MAX} characters")))
            }
            Ok(Text(s)) => Ok(Name(s)),
            Err(e) => Err(e),
        }
    }
}

/// A set of distinct values of a stored enum, as a JSON array.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Distinct<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de> + PartialEq> Deserialize<'de> for Distinct<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Value::Array(items) = Value::deserialize(d)? else {
            return Err(D::Error::custom("must be an array"));
        };
        let mut out: Vec<T> = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let v = T::deserialize(item).map_err(|e| D::Error::custom(format!("item {i}: {e}")))?;
            if out.contains(&v) {
                return Err(D::Error::custom(format!(
                    "item {i}: repeats an earlier one"
                )));
            }
            out.push(v);
        }
        Ok(Distinct(out))
    }
}

/// Text of at most `MAX` characters (Unicode scalar values), without NUL.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Text<const MAX: usize>(pub String);

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) if s.contains('\0') => Err(D::Error::custom("must not contain NUL")),
            Value::String(s) if s.chars().count() <= MAX => Ok(Text(s)),
            Value::String(_) => Err(D::Error::custom(format!("at most {MAX} characters"))),
            _ => Err(D::Error::custom("must be a string")),
        }
    }
}

/// A flag: `true` or `false` (`null` is `false`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Flag(pub bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(b) => Ok(Flag(b)),
            Value::Null => Ok(Flag(false)),
            _ => Err(D::Error::custom("must be true or false")),
        }
    }
}

/// `timerState` as a client sends it, on create only: `running` (the
/// server sets `paused` and `stopped` from the timer's events).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub enum Running {
    #[serde(rename = "running")]
    #[schema(rename = "running")]
    Running,
}

impl<'de> Deserialize<'de> for Running {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) if s == "running" => Ok(Running::Running),
            _ => Err(D::Error::custom(
                "must be running (paused and stopped follow the timer's events)",
            )),
        }
    }
}

/// A UUID.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Id(pub Uuid);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d)?
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .map(Id)
            .ok_or_else(|| D::Error::custom("must be a UUID"))
    }
}

/// An RFC 3339 timestamp with an offset, from 1900 to 24 h after now, no
/// leap second, kept to the millisecond.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timestamp(pub DateTime<Utc>);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::time::ts(&self.0))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        let now = NOW.get().unwrap_or_else(Utc::now);
        parse_timestamp(&value, now).map_err(D::Error::custom)
    }
}

thread_local! {
    /// The moment "24 h after now" counts from, when not the clock's.
    static NOW: std::cell::Cell<Option<DateTime<Utc>>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with timestamps checked against `now` instead of the clock (an
/// import checks its entries against the export's time). `f` must not
/// await: the setting is the thread's.
pub fn with_now<T>(now: DateTime<Utc>, f: impl FnOnce() -> T) -> T {
    /// Puts the thread's setting back, even if `f` panics.
    struct Restore(Option<DateTime<Utc>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            NOW.set(self.0);
        }
    }
    let _restore = Restore(NOW.replace(Some(now)));
    f()
}

/// The checks of [`Timestamp`], against a given `now`.
pub fn parse_timestamp(v: &Value, now: DateTime<Utc>) -> Result<Timestamp, &'static str> {
    let bad = "must be an RFC 3339 timestamp with an offset";
    let t = DateTime::parse_from_rfc3339(v.as_str().ok_or(bad)?)
        .map_err(|_| bad)?
        .with_timezone(&Utc);
    // chrono keeps a leap second (`:60`) as a nanosecond count past 10⁹,
    // which databases would store as the next second: refused.
    if t.nanosecond() >= 1_000_000_000 {
        return Err("a leap second (:60) is not accepted");
    }
    let earliest = DateTime::parse_from_rfc3339("1900-01-01T00:00:00Z")
        .expect("valid")
        .with_timezone(&Utc);
    if t < earliest || t > now + TimeDelta::hours(24) {
        return Err("must not be before 1900 nor more than 24 h in the future");
    }
    Ok(Timestamp(crate::time::truncate(t)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg<T: for<'de> Deserialize<'de> + std::fmt::Debug>(v: Value) -> String {
        serde_json::from_value::<T>(v).unwrap_err().to_string()
    }

    #[test]
    fn values_are_checked_with_the_protocols_messages() {
        assert_eq!(
            serde_json::from_value::<UpTo<2000>>(json!(120)).unwrap(),
            Between(120)
        );
        assert_eq!(
            msg::<UpTo<2000>>(json!(2001)),
            "must be an integer from 0 to 2000"
        );
        assert_eq!(
            msg::<UpTo<2000>>(json!("1")),
            "must be an integer from 0 to 2000"
        );
        assert_eq!(
            msg::<Between<300, 40000>>(json!(299)),
            "must be an integer from 300 to 40000"
        );
        assert_eq!(
            serde_json::from_value::<Dose>(json!(0.125)).unwrap().0,
            0.125
        );
        assert_eq!(
            serde_json::from_value::<Dose>(json!(10000)).unwrap().0,
            10000.0
        );
        assert_eq!(
            serde_json::from_value::<Dose>(json!(1.005)).unwrap().0,
            1.005
        );
        for bad in [
            json!(0),
            json!(-1),
            json!(10000.001),
            json!(0.0005),
            json!("1"),
        ] {
            assert_eq!(
                msg::<Dose>(bad),
                "must be a number more than 0 and at most 10000, at most 3 decimals"
            );
        }
        assert_eq!(
            serde_json::from_value::<Celsius>(json!(37.2)).unwrap().0,
            37.2
        );
        assert_eq!(
            serde_json::from_value::<Celsius>(json!(30)).unwrap().0,
            30.0
        );
        for bad in [json!(29.9), json!(45.1), json!(37.25)] {
            assert_eq!(
                msg::<Celsius>(bad),
                "must be a number from 30.0 to 45.0, at most 1 decimal"
            );
        }
        assert_eq!(msg::<Name<3>>(json!("")), "must be 1 to 3 characters");
        assert_eq!(msg::<Name<3>>(json!("abcd")), "at most 3 characters");
        assert_eq!(
            msg::<Distinct<entity::enums::Allergen>>(json!(["egg", "egg"])),
            "item 1: repeats an earlier one"
        );
        assert_eq!(
            msg::<Distinct<entity::enums::Allergen>>(json!(["nut"])),
            "item 0: must be one of milk, egg, peanut, treeNut, soy, wheat, fish, shellfish, sesame"
        );
        assert_eq!(msg::<Text<3>>(json!("abcd")), "at most 3 characters");
        assert_eq!(msg::<Text<3>>(json!("a\u{0}")), "must not contain NUL");
        assert_eq!(msg::<Text<3>>(json!(1)), "must be a string");
        assert!(
            serde_json::from_value::<Text<2>>(json!("éé")).is_ok(),
            "characters, not bytes"
        );
        assert_eq!(
            serde_json::from_value::<Flag>(json!(null)).unwrap(),
            Flag(false)
        );
        assert_eq!(msg::<Flag>(json!(1)), "must be true or false");
        assert_eq!(msg::<Id>(json!("x")), "must be a UUID");
        assert_eq!(
            msg::<Timestamp>(json!("2016-12-31T23:59:60.500Z")),
            "a leap second (:60) is not accepted"
        );
        assert_eq!(
            msg::<Timestamp>(json!("1899-12-31T23:59:59Z")),
            "must not be before 1900 nor more than 24 h in the future"
        );
        assert_eq!(
            serde_json::to_value(
                serde_json::from_value::<Timestamp>(json!("2026-11-21T08:05:00.123456+01:00"))
                    .unwrap()
            )
            .unwrap(),
            json!("2026-11-21T07:05:00.123Z")
        );
    }

    #[test]
    fn changes_tell_keep_clear_and_set_apart() {
        #[derive(Deserialize, Serialize, Default)]
        struct P {
            #[serde(default, skip_serializing_if = "Change::is_keep")]
            a: Change<UpTo<5>>,
            #[serde(default, skip_serializing_if = "Set::is_keep")]
            b: Set<Flag>,
        }
        let p: P = serde_json::from_value(json!({"a": null})).unwrap();
        assert_eq!(p.a, Change::Clear);
        assert!(p.b.is_keep());
        assert_eq!(serde_json::to_value(&p).unwrap(), json!({"a": null}));
        let p: P = serde_json::from_value(json!({"a": 3, "b": true})).unwrap();
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"a": 3, "b": true})
        );
        assert_eq!(serde_json::to_value(P::default()).unwrap(), json!({}));
    }
}
