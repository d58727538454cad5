//! `GET /api/babies/{id}/summary` (PROTOCOL.md, "Summaries"): days in an
//! IANA time zone, minutes split at local midnight, latest entries, running
//! timers, medication doses and growth percentiles.
//!
//! What it reads is bounded by the range asked (at most 92 days) and not by
//! the baby's history: the entries of each kind that start within the range
//! (or up to 48 h before it, the longest a sleep may last, or end within
//! it), the running timers, 30 days of doses, and one latest entry per kind
//! and per measure, each found through the `(baby_id, started_at)` index.

use std::{
    cmp::{max, min},
    collections::BTreeMap,
};

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use entity::enums::Gender;
use sea_orm::{
    DatabaseTransaction,
    prelude::Uuid,
    sea_query::{Alias, Asterisk, Condition, Expr, ExprTrait, Order, Query, SelectStatement},
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::{
    error::ApiError,
    growth::{self, Indicator, Sex},
    kinds::{KINDS, Kind},
    time::ts,
};

/// The most dates one summary covers.
pub const MAX_DAYS: i64 = 92;
/// How far before the range an entry may start and still end within it
/// (the longest sleep, 2880 minutes).
const LOOKBACK_HOURS: i64 = 48;

/// A date written exactly `YYYY-MM-DD` (no sign, no short fields).
pub fn strict_date(v: &str) -> Option<NaiveDate> {
    let b = v.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shape {
        return None;
    }
    NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()
}

/// The query, checked.
pub struct Range {
    pub tz: Tz,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// A query string's parameters (unknown ones are ignored).
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: Option<&str>) -> Result<Params, ApiError> {
        serde_urlencoded::from_str(query.unwrap_or(""))
            .map(Params)
            .map_err(|e| ApiError::invalid(format!("the query string: {e}")))
    }

    /// The one value of `name`, if given; given twice is a 400.
    pub fn one(&self, name: &str) -> Result<Option<String>, ApiError> {
        let mut values = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        match (values.next(), values.next()) {
            (_, Some(_)) => Err(ApiError::invalid_field(name, "given more than once")),
            (v, None) => Ok(v.cloned()),
        }
    }

    /// `tz`: an IANA time-zone name, UTC when absent.
    pub fn tz(&self) -> Result<Tz, ApiError> {
        match self.one("tz")? {
            None => Ok(Tz::UTC),
            Some(name) => name.parse().map_err(|_| {
                ApiError::invalid_field(
                    "tz",
                    format!("must be an IANA time-zone name such as Europe/London (got {name:?})"),
                )
            }),
        }
    }
}

impl Range {
    /// From the raw query string, as of `now`: each bad value a 400 naming it.
    pub fn parse(query: Option<&str>, now: DateTime<Utc>) -> Result<Range, ApiError> {
        let params = Params::parse(query)?;
        let get = |name: &str| params.one(name);
        let tz = params.tz()?;
        let today = now.with_timezone(&tz).date_naive();
        let date = |name: &str| -> Result<Option<NaiveDate>, ApiError> {
            get(name)?
                .map(|v| {
                    strict_date(&v).ok_or_else(|| {
                        ApiError::invalid_field(
                            name,
                            format!("must be a date YYYY-MM-DD, such as 2026-01-31 (got {v:?})"),
                        )
                    })
                })
                .transpose()
        };
        let (from, to) = match (date("from")?, date("to")?) {
            (Some(f), Some(t)) => (f, t),
            (Some(f), None) => (f, today),
            (None, Some(t)) => (today, t),
            (None, None) => (today, today),
        };
        if to < from {
            return Err(ApiError::invalid_field("to", "must not be before from"));
        }
        if (to - from).num_days() >= MAX_DAYS {
            return Err(ApiError::invalid_field(
                "to",
                format!(
                    "at most {MAX_DAYS} dates: to - from must be at most {} days",
                    MAX_DAYS - 1
                ),
            ));
        }
        Ok(Range { tz, from, to })
    }

    /// The UTC instant of local midnight at the start of `date` (the first
    /// instant of the day where a change skips midnight).
    fn midnight(&self, date: NaiveDate) -> DateTime<Utc> {
        let start = date.and_hms_opt(0, 0, 0).expect("midnight");
        match self.tz.from_local_datetime(&start) {
            chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                t.with_timezone(&Utc)
            }
            chrono::LocalResult::None => {
                // No midnight that day: the day starts at the first instant
                // after the gap.
                (1..=180)
                    .find_map(|m| {
                        self.tz
                            .from_local_datetime(&(start + Duration::minutes(m)))
                            .earliest()
                    })
                    .map_or_else(|| Utc.from_utc_datetime(&start), |t| t.with_timezone(&Utc))
            }
        }
    }

    fn dates(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.from.iter_days().take_while(|d| *d <= self.to)
    }
}

#[derive(Serialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Feeds {
    count: u32,
    bottle_ml: i64,
    breast_minutes: i64,
    breast_left_minutes: i64,
    breast_right_minutes: i64,
}

#[derive(Serialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sleep {
    count: u32,
    minutes: i64,
    longest_minutes: i64,
}

#[derive(Serialize, Default, utoipa::ToSchema)]
pub struct Nappies {
    count: u32,
    wet: u32,
    dirty: u32,
}

#[derive(Serialize, Default, utoipa::ToSchema)]
pub struct Pumping {
    count: u32,
    ml: i64,
}

#[derive(Serialize, Default, utoipa::ToSchema)]
pub struct Count {
    count: u32,
}

#[derive(Serialize, Default, utoipa::ToSchema)]
pub struct Timed {
    count: u32,
    minutes: i64,
}

/// One date in the time zone.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Day {
    #[schema(value_type = String, format = Date)]
    date: NaiveDate,
    feeds: Feeds,
    sleep: Sleep,
    nappies: Nappies,
    pumping: Pumping,
    solids: Count,
    activities: Timed,
    medications: Count,
}

/// Milliseconds summed per day before they are rounded to minutes.
#[derive(Default)]
struct Millis {
    breast: i64,
    left: i64,
    right: i64,
    sleep: i64,
    activity: i64,
}

/// A running (or paused) timer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RunningTimer {
    entity: &'static str,
    #[schema(schema_with = crate::openapi::any_entry)]
    entry: Value,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Medication {
    name: String,
    last_given_at: String,
    doses_last24h: u32,
    max_doses_per24h: Option<i64>,
    next_allowed_at: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Growth {
    value: i64,
    /// `g` or `mm`.
    unit: &'static str,
    measured_at: String,
    age_days: Option<i64>,
    z: Option<f64>,
    percentile: Option<f64>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrowthSet {
    weight: Option<Growth>,
    length: Option<Growth>,
    head_circumference: Option<Growth>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    baby_id: Uuid,
    tz: String,
    as_of: String,
    days: Vec<Day>,
    /// Per kind but `timer_event`: the entry with the latest `startedAt`, or null.
    #[schema(value_type = Object)]
    latest: Map<String, Value>,
    running: Vec<RunningTimer>,
    medications: Vec<Medication>,
    growth: GrowthSet,
}

/// The baby as the summary needs it.
pub struct Baby {
    pub id: Uuid,
    pub birth_date: Option<NaiveDate>,
    pub gender: Option<Gender>,
}

/// An entry's wire form, with its times read.
pub(crate) struct Item {
    pub(crate) json: Map<String, Value>,
    started_at: DateTime<Utc>,
}

impl Item {
    fn of(json: Value) -> Option<Item> {
        let Value::Object(json) = json else {
            return None;
        };
        let started_at = time(json.get("startedAt"))?;
        Some(Item { json, started_at })
    }
    fn str(&self, key: &str) -> Option<&str> {
        self.json.get(key).and_then(Value::as_str)
    }
    fn int(&self, key: &str) -> Option<i64> {
        self.json.get(key).and_then(Value::as_i64)
    }
    /// The stretches of time the entry covers, with their side: its
    /// segments when it has them, else start..end, else its duration from
    /// its start; up to `as_of` while in progress. None for a moment.
    fn spans(&self, as_of: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>, Option<String>)> {
        let clip = |end: DateTime<Utc>| min(end, as_of);
        if let Some(Value::Array(segments)) = self.json.get("segments") {
            return segments
                .iter()
                .filter_map(|s| {
                    let start = time(s.get("startedAt"))?;
                    let end = time(s.get("endedAt")).unwrap_or(as_of);
                    let side = s.get("side").and_then(Value::as_str).map(str::to_owned);
                    Some((start, clip(end), side))
                })
                .collect();
        }
        let end = time(self.json.get("endedAt")).or_else(|| {
            self.int("durationMinutes")
                .map(|m| self.started_at + Duration::minutes(m))
        });
        match end {
            Some(end) => vec![(self.started_at, clip(end), None)],
            None => vec![],
        }
    }
}

fn time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v?.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn minutes(ms: i64) -> i64 {
    (ms + 30_000).div_euclid(60_000)
}

/// A kind's rows of `baby` that are not archived, as `SELECT *`.
pub(crate) fn rows(kind: Kind, baby: Uuid) -> SelectStatement {
    Query::select()
        .column(Asterisk)
        .from(Alias::new(kind.name()))
        .and_where(Expr::col(Alias::new("baby_id")).eq(baby))
        .and_where(Expr::col(Alias::new("archived_at")).is_null())
        .to_owned()
}

/// Rows read per statement: what a summary holds at once is a page, its
/// days and its running timers, whatever the range holds.
const PAGE_ROWS: u64 = 2000;

/// A query's rows a page at a time, by `started_at` then `id` (the
/// summary's reads and the CSV export).
pub(crate) struct Pages {
    kind: Kind,
    base: SelectStatement,
    after: Option<(DateTime<Utc>, Uuid)>,
    done: bool,
}

impl Pages {
    pub(crate) fn new(kind: Kind, base: SelectStatement) -> Self {
        Pages {
            kind,
            base,
            after: None,
            done: false,
        }
    }

    pub(crate) async fn next(
        &mut self,
        txn: &DatabaseTransaction,
    ) -> Result<Option<Vec<Item>>, ApiError> {
        if self.done {
            return Ok(None);
        }
        let mut q = self.base.clone();
        if let Some((t, id)) = self.after {
            q.cond_where(
                Condition::any()
                    .add(Expr::col(Alias::new("started_at")).gt(t))
                    .add(
                        Condition::all()
                            .add(Expr::col(Alias::new("started_at")).eq(t))
                            .add(Expr::col(Alias::new("id")).gt(id)),
                    ),
            );
        }
        q.order_by(Alias::new("started_at"), Order::Asc)
            .order_by(Alias::new("id"), Order::Asc)
            .limit(PAGE_ROWS);
        let records = self.kind.fetch(txn, &q).await?;
        self.done = (records.len() as u64) < PAGE_ROWS;
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            let id = r.id;
            if let Some(item) = Item::of(r.to_json()) {
                self.after = Some((item.started_at, id));
                out.push(item);
            }
        }
        Ok(Some(out))
    }
}

async fn items(
    txn: &DatabaseTransaction,
    kind: Kind,
    query: &SelectStatement,
) -> Result<Vec<Item>, ApiError> {
    let records = kind.fetch(txn, query).await?;
    Ok(records
        .into_iter()
        .filter_map(|r| Item::of(r.to_json()))
        .collect())
}

/// The summary of `baby` over `range`, as of `as_of`.
pub async fn summarize(
    txn: &DatabaseTransaction,
    baby: &Baby,
    range: &Range,
    as_of: DateTime<Utc>,
) -> Result<Summary, ApiError> {
    if sea_orm::ConnectionTrait::get_database_backend(txn) == sea_orm::DbBackend::Postgres {
        // Walks of the (baby_id, started_at) index that stop after what
        // they need, whatever the planner believes of the tables (they may
        // never have been analyzed), as pull does.
        sea_orm::ConnectionTrait::execute_unprepared(
            txn,
            "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off; SET LOCAL jit = off",
        )
        .await?;
    }
    let dates: Vec<NaiveDate> = range.dates().collect();
    let bounds: Vec<DateTime<Utc>> = dates
        .iter()
        .map(|d| range.midnight(*d))
        .chain(std::iter::once(
            range.midnight(range.to + Duration::days(1)),
        ))
        .collect();
    let (start, end) = (bounds[0], bounds[bounds.len() - 1]);
    let day_of = |t: DateTime<Utc>| -> Option<usize> {
        if t < start || t >= end {
            return None;
        }
        Some(bounds.partition_point(|b| *b <= t) - 1)
    };
    let mut days: Vec<Day> = dates
        .iter()
        .map(|d| Day {
            date: *d,
            feeds: Feeds::default(),
            sleep: Sleep::default(),
            nappies: Nappies::default(),
            pumping: Pumping::default(),
            solids: Count::default(),
            activities: Timed::default(),
            medications: Count::default(),
        })
        .collect();
    let mut ms: Vec<Millis> = dates.iter().map(|_| Millis::default()).collect();
    // Adds a span's milliseconds to each day it covers.
    let split = |from: DateTime<Utc>, to: DateTime<Utc>, add: &mut dyn FnMut(usize, i64)| {
        for (i, w) in bounds.windows(2).enumerate() {
            let (a, b) = (max(from, w[0]), min(to, w[1]));
            if b > a {
                add(i, (b - a).num_milliseconds());
            }
        }
    };
    let mut latest = Map::new();
    let mut running: Vec<(DateTime<Utc>, String, RunningTimer)> = vec![];
    for kind in KINDS.iter().copied().filter(|k| !k.is_timer_event()) {
        // Entries that start in the range, or end in it.
        let mut near = Condition::any()
            .add(Expr::col(Alias::new("started_at")).gte(start - Duration::hours(LOOKBACK_HOURS)));
        if kind.has_column("ended_at") {
            near = near.add(Expr::col(Alias::new("ended_at")).gte(start));
        }
        if kind.has_timer() {
            near = near.add(Expr::col(Alias::new("timer_state")).is_in(["running", "paused"]));
        }
        let query = rows(kind, baby.id)
            .and_where(Expr::col(Alias::new("started_at")).lt(end))
            .cond_where(near)
            .to_owned();
        let mut pages = Pages::new(kind, query);
        while let Some(page) = pages.next(txn).await? {
            for item in page {
                let counted = day_of(item.started_at);
                let spans = item.spans(as_of);
                let span_ms: i64 = spans
                    .iter()
                    .map(|(a, b, _)| max((*b - *a).num_milliseconds(), 0))
                    .sum();
                match kind.name() {
                    "feed_log" => {
                        let bottle = item.str("method") == Some("bottle");
                        if let Some(i) = counted {
                            days[i].feeds.count += 1;
                            if bottle {
                                days[i].feeds.bottle_ml += item.int("amountMl").unwrap_or(0);
                            }
                        }
                        if !bottle {
                            for (a, b, side) in &spans {
                                split(*a, *b, &mut |i, t| {
                                    ms[i].breast += t;
                                    match side.as_deref() {
                                        Some("left") => ms[i].left += t,
                                        Some("right") => ms[i].right += t,
                                        _ => {}
                                    }
                                });
                            }
                        }
                    }
                    "sleep_log" => {
                        if let Some(i) = counted {
                            days[i].sleep.count += 1;
                            days[i].sleep.longest_minutes =
                                max(days[i].sleep.longest_minutes, minutes(span_ms));
                        }
                        for (a, b, _) in &spans {
                            split(*a, *b, &mut |i, t| ms[i].sleep += t);
                        }
                    }
                    "nappy_log" => {
                        if let Some(i) = counted {
                            let n = &mut days[i].nappies;
                            n.count += 1;
                            let t = item.str("type");
                            n.wet += u32::from(matches!(t, Some("wee" | "mixed")));
                            n.dirty += u32::from(matches!(t, Some("poo" | "mixed")));
                        }
                    }
                    "pumping_log" => {
                        if let Some(i) = counted {
                            days[i].pumping.count += 1;
                            days[i].pumping.ml += item.int("totalMl").unwrap_or(0);
                        }
                    }
                    "solids_log" => {
                        if let Some(i) = counted {
                            days[i].solids.count += 1;
                        }
                    }
                    "activity_log" => {
                        if let Some(i) = counted {
                            days[i].activities.count += 1;
                        }
                        for (a, b, _) in &spans {
                            split(*a, *b, &mut |i, t| ms[i].activity += t);
                        }
                    }
                    "medication_log" => {
                        if let Some(i) = counted {
                            days[i].medications.count += 1;
                        }
                    }
                    _ => {}
                }
                if kind.has_timer() && matches!(item.str("timerState"), Some("running" | "paused"))
                {
                    let id = item.str("id").unwrap_or_default().to_owned();
                    running.push((
                        item.started_at,
                        id,
                        RunningTimer {
                            entity: kind.name(),
                            entry: Value::Object(item.json.clone()),
                        },
                    ));
                }
            }
        }
        // The latest entry of the kind, on any date.
        let mut query = rows(kind, baby.id);
        query
            .order_by(Alias::new("started_at"), Order::Desc)
            .order_by(Alias::new("id"), Order::Desc)
            .limit(1);
        let last = items(txn, kind, &query).await?.into_iter().next();
        latest.insert(
            kind.name().to_owned(),
            last.map_or(Value::Null, |i| Value::Object(i.json)),
        );
    }
    // Timers still running that started after the range (a range in the
    // past): the ones above started before its end.
    for kind in KINDS.iter().copied().filter(|k| k.has_timer()) {
        let query = rows(kind, baby.id)
            .and_where(Expr::col(Alias::new("timer_state")).is_in(["running", "paused"]))
            .and_where(Expr::col(Alias::new("started_at")).gte(end))
            .to_owned();
        for item in items(txn, kind, &query).await? {
            let id = item.str("id").unwrap_or_default().to_owned();
            running.push((
                item.started_at,
                id,
                RunningTimer {
                    entity: kind.name(),
                    entry: Value::Object(item.json),
                },
            ));
        }
    }
    running.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    for (day, m) in days.iter_mut().zip(&ms) {
        day.feeds.breast_minutes = minutes(m.breast);
        day.feeds.breast_left_minutes = minutes(m.left);
        day.feeds.breast_right_minutes = minutes(m.right);
        day.sleep.minutes = minutes(m.sleep);
        day.activities.minutes = minutes(m.activity);
    }
    Ok(Summary {
        baby_id: baby.id,
        tz: range.tz.name().to_owned(),
        as_of: ts(&as_of),
        days,
        latest,
        running: running.into_iter().map(|(_, _, r)| r).collect(),
        medications: medications(txn, baby.id, as_of).await?,
        growth: growth(txn, baby, range.tz).await?,
    })
}

/// One element per medication name (any letter case) given in the 30 days
/// before `as_of`.
async fn medications(
    txn: &DatabaseTransaction,
    baby: Uuid,
    as_of: DateTime<Utc>,
) -> Result<Vec<Medication>, ApiError> {
    let kind = Kind::parse("medication_log").ok_or(ApiError::Internal)?;
    let query = rows(kind, baby)
        .and_where(Expr::col(Alias::new("started_at")).gt(as_of - Duration::days(30)))
        .and_where(Expr::col(Alias::new("started_at")).lte(as_of))
        .to_owned();
    let mut by_name: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    for item in items(txn, kind, &query).await? {
        let name = item.str("name").unwrap_or_default().to_lowercase();
        by_name.entry(name).or_default().push(item);
    }
    let mut out = vec![];
    for (_, mut doses) in by_name {
        doses.sort_by_key(|d| d.started_at);
        let Some(last) = doses.last() else { continue };
        let recent: Vec<&Item> = doses
            .iter()
            .filter(|d| d.started_at > as_of - Duration::hours(24))
            .collect();
        let interval = last.int("minIntervalMinutes");
        let max_doses = last.int("maxDosesPer24h");
        let next = if interval.is_none() && max_doses.is_none() {
            None
        } else {
            let mut at = last.started_at + Duration::minutes(interval.unwrap_or(0));
            if let (Some(limit), Some(oldest)) = (max_doses, recent.first())
                && recent.len() as i64 >= limit
            {
                at = max(at, oldest.started_at + Duration::hours(24));
            }
            Some(ts(&at))
        };
        out.push(Medication {
            name: last.str("name").unwrap_or_default().to_owned(),
            last_given_at: ts(&last.started_at),
            doses_last24h: recent.len() as u32,
            max_doses_per24h: max_doses,
            next_allowed_at: next,
        });
    }
    out.sort_by_key(|m| m.name.to_lowercase());
    Ok(out)
}

/// The latest measurement of each kind, with WHO z-score and percentile.
async fn growth(txn: &DatabaseTransaction, baby: &Baby, tz: Tz) -> Result<GrowthSet, ApiError> {
    let kind = Kind::parse("growth_log").ok_or(ApiError::Internal)?;
    let sex = match baby.gender {
        Some(Gender::Male) => Some(Sex::Male),
        Some(Gender::Female) => Some(Sex::Female),
        _ => None,
    };
    let one = async |column: &str,
                     key: &str,
                     ind: Indicator,
                     unit: &'static str|
           -> Result<Option<Growth>, ApiError> {
        let mut query = rows(kind, baby.id)
            .and_where(Expr::col(Alias::new(column)).is_not_null())
            .to_owned();
        query
            .order_by(Alias::new("started_at"), Order::Desc)
            .order_by(Alias::new("id"), Order::Desc)
            .limit(1);
        let Some(item) = items(txn, kind, &query).await?.into_iter().next() else {
            return Ok(None);
        };
        let value = item.int(key).unwrap_or(0);
        let date = item.started_at.with_timezone(&tz).date_naive();
        let age_days = baby.birth_date.map(|b| (date - b).num_days());
        let z = match (sex, age_days) {
            (Some(sex), Some(age)) => growth::z_score(ind, sex, age, value as f64),
            _ => None,
        };
        Ok(Some(Growth {
            value,
            unit,
            measured_at: ts(&item.started_at),
            age_days,
            z: z.map(growth::round2),
            percentile: z.map(|z| growth::round1(growth::percentile(z))),
        }))
    };
    Ok(GrowthSet {
        weight: one("weight_grams", "weightGrams", Indicator::Weight, "g").await?,
        length: one("length_mm", "lengthMm", Indicator::Length, "mm").await?,
        head_circumference: one(
            "head_circumference_mm",
            "headCircumferenceMm",
            Indicator::HeadCircumference,
            "mm",
        )
        .await?,
    })
}
