//! Timestamps as the protocol wants them: stored and returned in UTC with
//! millisecond precision (`2026-11-21T07:05:00.000Z`).

use chrono::{DateTime, DurationRound, SecondsFormat, TimeDelta, Utc};

/// Now, truncated to the millisecond so that both databases store and return
/// exactly the same value.
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

pub fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(t)
}

/// The wire form of a timestamp.
pub fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn ts_opt(t: &Option<DateTime<Utc>>) -> Option<String> {
    t.as_ref().map(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form_is_utc_millis() {
        let t = DateTime::parse_from_rfc3339("2026-11-21T08:05:00.123456+01:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(ts(&truncate(t)), "2026-11-21T07:05:00.123Z");
        assert_eq!(ts(&now()).len(), "2026-11-21T07:05:00.000Z".len());
    }
}
