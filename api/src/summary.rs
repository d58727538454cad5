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
use migration::log_table;
use sea_orm::{
    DatabaseTransaction, DbBackend,
    prelude::Uuid,
    sea_query::{
        Alias, Asterisk, Condition, Expr, ExprTrait, Order, Query, SelectStatement, UnionType,
    },
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
    id: Uuid,
}

impl Item {
    fn of(json: Map<String, Value>) -> Option<Item> {
        let started_at = time(json.get("startedAt"))?;
        let id = json
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())?;
        Some(Item {
            json,
            started_at,
            id,
        })
    }

    /// The entry of `kind` from its row text (see `RowFormat`).
    fn read(kind: Kind, backend: DbBackend, text: &str) -> Result<Item, ApiError> {
        let (_, format) = kind.row_text(backend)?;
        let mut json = Vec::with_capacity(text.len() + text.len() / 2);
        let unreadable = |e: &dyn std::fmt::Display| {
            tracing::error!(kind = kind.name(), error = %e, "a stored entry the model cannot read");
            ApiError::Internal
        };
        format
            .write_json(text, &mut json)
            .map_err(|e| unreadable(&e))?;
        let map = serde_json::from_slice(&json).map_err(|e| unreadable(&e))?;
        Item::of(map).ok_or_else(|| unreadable(&"no startedAt or id"))
    }

    fn key(&self) -> Key {
        (self.started_at, self.id)
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

/// `query` (rows of a kind) ordered by `started_at` then `id`, up or down.
fn ordered(mut query: SelectStatement, order: Order) -> SelectStatement {
    query
        .order_by(Alias::new("started_at"), order.clone())
        .order_by(Alias::new("id"), order)
        .to_owned()
}

/// `query` (rows of a kind, with their order and limit) selecting each
/// row's text (see `RowFormat`) as `r`.
fn as_texts(
    kind: Kind,
    backend: DbBackend,
    mut query: SelectStatement,
) -> Result<SelectStatement, ApiError> {
    let (row_sql, _) = kind.row_text(backend)?;
    query.clear_selects();
    Ok(query
        .expr_as(Expr::cust(row_sql), Alias::new("r"))
        .to_owned())
}

/// The settings a summary's (or CSV export's) reads need on PostgreSQL:
/// the ISO timestamps of row texts, and walks of the `(baby_id,
/// started_at)` index that stop after what they need, whatever the
/// planner believes of the tables (they may never have been analyzed), as
/// pull does. The plan is the prepared statement's generic one, made once
/// per connection: the summary's statement has some forty branches, and
/// planning them for each request took longer than running them.
pub(crate) async fn read_settings(txn: &DatabaseTransaction) -> Result<(), ApiError> {
    if sea_orm::ConnectionTrait::get_database_backend(txn) == DbBackend::Postgres {
        sea_orm::ConnectionTrait::execute_unprepared(
            txn,
            "SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL enable_bitmapscan = off; \
             SET LOCAL enable_sort = off; SET LOCAL jit = off; \
             SET LOCAL plan_cache_mode = force_generic_plan",
        )
        .await?;
    }
    Ok(())
}

/// A query's rows a page at a time, by `started_at` then `id` (the
/// summary's reads and the CSV export; see [`read_settings`]).
pub(crate) struct Pages {
    kind: Kind,
    base: SelectStatement,
    after: Option<Key>,
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

    /// The rows after `key` (by `started_at`, then `id`).
    fn after(kind: Kind, base: SelectStatement, key: Key) -> Self {
        Pages {
            after: Some(key),
            ..Pages::new(kind, base)
        }
    }

    pub(crate) async fn next(
        &mut self,
        txn: &DatabaseTransaction,
    ) -> Result<Option<Vec<Item>>, ApiError> {
        if self.done {
            return Ok(None);
        }
        let backend = sea_orm::ConnectionTrait::get_database_backend(txn);
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
        let q = as_texts(
            self.kind,
            backend,
            ordered(q, Order::Asc).limit(PAGE_ROWS).to_owned(),
        )?;
        let rows = sea_orm::ConnectionTrait::query_all_raw(txn, backend.build(&q)).await?;
        self.done = (rows.len() as u64) < PAGE_ROWS;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let text: String = row.try_get("", "r")?;
            let item = Item::read(self.kind, backend, &text)?;
            self.after = Some(item.key());
            out.push(item);
        }
        Ok(Some(out))
    }
}

/// What a summary adds up, day by day.
struct Tally {
    /// Local midnights: day `i` is `bounds[i]..bounds[i + 1]`.
    bounds: Vec<DateTime<Utc>>,
    days: Vec<Day>,
    ms: Vec<Millis>,
    as_of: DateTime<Utc>,
}

impl Tally {
    fn new(range: &Range, as_of: DateTime<Utc>) -> Tally {
        let dates: Vec<NaiveDate> = range.dates().collect();
        let bounds = dates
            .iter()
            .map(|d| range.midnight(*d))
            .chain(std::iter::once(
                range.midnight(range.to + Duration::days(1)),
            ))
            .collect();
        Tally {
            bounds,
            ms: dates.iter().map(|_| Millis::default()).collect(),
            days: dates
                .into_iter()
                .map(|date| Day {
                    date,
                    feeds: Feeds::default(),
                    sleep: Sleep::default(),
                    nappies: Nappies::default(),
                    pumping: Pumping::default(),
                    solids: Count::default(),
                    activities: Timed::default(),
                    medications: Count::default(),
                })
                .collect(),
            as_of,
        }
    }

    fn start(&self) -> DateTime<Utc> {
        self.bounds[0]
    }

    fn end(&self) -> DateTime<Utc> {
        self.bounds[self.bounds.len() - 1]
    }

    /// The day `t` falls on, if within the range.
    fn day_of(&self, t: DateTime<Utc>) -> Option<usize> {
        if t < self.start() || t >= self.end() {
            return None;
        }
        Some(self.bounds.partition_point(|b| *b <= t) - 1)
    }

    /// Adds the milliseconds of `from..to` to each day it covers.
    fn split(
        bounds: &[DateTime<Utc>],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        mut add: impl FnMut(usize, i64),
    ) {
        let first = bounds.partition_point(|b| *b <= from).saturating_sub(1);
        for (i, w) in bounds.windows(2).enumerate().skip(first) {
            if w[0] >= to {
                break;
            }
            let (a, b) = (max(from, w[0]), min(to, w[1]));
            if b > a {
                add(i, (b - a).num_milliseconds());
            }
        }
    }

    /// Counts `item` of `kind` on the day it starts and its time on the
    /// days it covers.
    fn add(&mut self, kind: Kind, item: &Item) {
        let counted = self.day_of(item.started_at);
        let spans = item.spans(self.as_of);
        let (bounds, days, ms) = (&self.bounds, &mut self.days, &mut self.ms);
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
                        Tally::split(bounds, *a, *b, |i, t| {
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
                    let whole: i64 = spans
                        .iter()
                        .map(|(a, b, _)| max((*b - *a).num_milliseconds(), 0))
                        .sum();
                    days[i].sleep.count += 1;
                    days[i].sleep.longest_minutes =
                        max(days[i].sleep.longest_minutes, minutes(whole));
                }
                for (a, b, _) in &spans {
                    Tally::split(bounds, *a, *b, |i, t| ms[i].sleep += t);
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
                    Tally::split(bounds, *a, *b, |i, t| ms[i].activity += t);
                }
            }
            "medication_log" => {
                if let Some(i) = counted {
                    days[i].medications.count += 1;
                }
            }
            _ => {}
        }
    }

    fn days(mut self) -> Vec<Day> {
        for (day, m) in self.days.iter_mut().zip(&self.ms) {
            day.feeds.breast_minutes = minutes(m.breast);
            day.feeds.breast_left_minutes = minutes(m.left);
            day.feeds.breast_right_minutes = minutes(m.right);
            day.sleep.minutes = minutes(m.sleep);
            day.activities.minutes = minutes(m.activity);
        }
        self.days
    }
}

/// Where a row stands in a kind's order: `started_at`, then `id`.
type Key = (DateTime<Utc>, Uuid);

/// What a branch of the summary's statement reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// A kind's first page of entries that start in the range or up to 48
    /// hours before it.
    Range,
    /// A lasting kind's timers in progress, and its entries of more than 24
    /// hours that began before the lookback and end in the range.
    Extra,
    /// A kind's latest entry.
    Latest,
    /// The first page of 30 days of doses.
    Doses,
    /// The latest measurement of a growth indicator.
    Growth(Indicator),
}

const PARTS: [Part; 7] = [
    Part::Range,
    Part::Extra,
    Part::Latest,
    Part::Doses,
    Part::Growth(Indicator::Weight),
    Part::Growth(Indicator::Length),
    Part::Growth(Indicator::HeadCircumference),
];

/// `query` (rows of the `k`th kind, with order and limit) as a branch of
/// the summary's one statement: `k`, `p` (the part) and each row's text.
fn branch(
    backend: DbBackend,
    k: usize,
    part: Part,
    query: SelectStatement,
) -> Result<SelectStatement, ApiError> {
    let kind = *KINDS.get(k).ok_or(ApiError::Internal)?;
    let p = PARTS
        .iter()
        .position(|x| *x == part)
        .ok_or(ApiError::Internal)?;
    let mut inner = as_texts(kind, backend, query)?;
    inner
        .expr_as(Expr::cust(k.to_string()), Alias::new("k"))
        .expr_as(Expr::cust(p.to_string()), Alias::new("p"));
    // A subquery, so that its order and limit stay its own (SQLite takes
    // neither in a compound's members).
    Ok(Query::select()
        .column(Asterisk)
        .from_subquery(inner, Alias::new(format!("b{k}_{p}")))
        .to_owned())
}

/// The summary of `baby` over `range`, as of `as_of`, in one statement
/// when no kind has more than a page in the range (see [`Part`]).
///
/// Each kind's entries that start in the range or up to 48 hours before it
/// are read by `started_at`; of a lasting kind, the timers in progress and
/// the entries of more than 24 hours that began earlier and end in the
/// range are read through their own small partial indexes
/// (`log_table::lasting_indexes`). No entry that starts more than 48 hours
/// before the range and is not one of those can reach into it: a finished
/// entry's time is its segments within `startedAt..endedAt`, or at most
/// 2880 minutes of `durationMinutes`.
pub async fn summarize(
    txn: &DatabaseTransaction,
    baby: &Baby,
    range: &Range,
    as_of: DateTime<Utc>,
) -> Result<Summary, ApiError> {
    let backend = sea_orm::ConnectionTrait::get_database_backend(txn);
    read_settings(txn).await?;
    let mut tally = Tally::new(range, as_of);
    let (start, end) = (tally.start(), tally.end());
    let lookback = start - Duration::hours(LOOKBACK_HOURS);
    let in_range = |kind: Kind| {
        rows(kind, baby.id)
            .and_where(Expr::col(Alias::new("started_at")).gte(lookback))
            .and_where(Expr::col(Alias::new("started_at")).lt(end))
            .to_owned()
    };
    let index = |name: &str| KINDS.iter().position(|k| k.name() == name);
    let (med, growth_k) = (
        index("medication_log").ok_or(ApiError::Internal)?,
        index("growth_log").ok_or(ApiError::Internal)?,
    );
    let doses = rows(KINDS[med], baby.id)
        .and_where(Expr::col(Alias::new("started_at")).gt(as_of - Duration::days(30)))
        .and_where(Expr::col(Alias::new("started_at")).lte(as_of))
        .to_owned();

    let mut parts = vec![];
    for (k, kind) in KINDS.iter().copied().enumerate() {
        if kind.is_timer_event() {
            continue;
        }
        let page = ordered(in_range(kind), Order::Asc)
            .limit(PAGE_ROWS)
            .to_owned();
        parts.push(branch(backend, k, Part::Range, page)?);
        if kind.has_timer() {
            let q = rows(kind, baby.id)
                .and_where(Expr::cust(log_table::IN_PROGRESS))
                .to_owned();
            parts.push(branch(backend, k, Part::Extra, q)?);
        }
        if kind.has_column("ended_at") {
            let q = rows(kind, baby.id)
                .and_where(Expr::cust(log_table::long_sql(backend)))
                .and_where(Expr::col(Alias::new("ended_at")).gte(start))
                .and_where(Expr::col(Alias::new("started_at")).lt(lookback))
                .to_owned();
            parts.push(branch(backend, k, Part::Extra, q)?);
        }
        let last = ordered(rows(kind, baby.id), Order::Desc)
            .limit(1)
            .to_owned();
        parts.push(branch(backend, k, Part::Latest, last)?);
    }
    let page = ordered(doses.clone(), Order::Asc)
        .limit(PAGE_ROWS)
        .to_owned();
    parts.push(branch(backend, med, Part::Doses, page)?);
    for ind in [
        Indicator::Weight,
        Indicator::Length,
        Indicator::HeadCircumference,
    ] {
        let q = rows(KINDS[growth_k], baby.id)
            .and_where(Expr::col(Alias::new(growth_column(ind).0)).is_not_null())
            .to_owned();
        let q = ordered(q, Order::Desc).limit(1).to_owned();
        parts.push(branch(backend, growth_k, Part::Growth(ind), q)?);
    }
    let mut parts = parts.into_iter();
    let mut query = parts.next().ok_or(ApiError::Internal)?;
    for part in parts {
        query.union(UnionType::All, part);
    }

    let mut latest = Map::new();
    for kind in KINDS.iter().filter(|k| !k.is_timer_event()) {
        latest.insert(kind.name().to_owned(), Value::Null);
    }
    let mut running: Vec<(DateTime<Utc>, Uuid, RunningTimer)> = vec![];
    let mut medications = Doses::new(as_of);
    let mut growth = GrowthSet {
        weight: None,
        length: None,
        head_circumference: None,
    };
    // Per kind, how many of its range it read and where the page ended.
    let mut pages: BTreeMap<(usize, bool), (u64, Key)> = BTreeMap::new();
    let mut page_end = |k: usize, doses: bool, item: &Item| {
        let e = pages.entry((k, doses)).or_insert((0, item.key()));
        e.0 += 1;
        e.1 = max(e.1, item.key());
    };
    let rows = sea_orm::ConnectionTrait::query_all_raw(txn, backend.build(&query)).await?;
    for row in rows {
        let k: i32 = row.try_get("", "k")?;
        let p: i32 = row.try_get("", "p")?;
        let text: String = row.try_get("", "r")?;
        drop(row);
        let k = usize::try_from(k).map_err(|_| ApiError::Internal)?;
        let kind = *KINDS.get(k).ok_or(ApiError::Internal)?;
        let part = usize::try_from(p)
            .ok()
            .and_then(|p| PARTS.get(p))
            .ok_or(ApiError::Internal)?;
        let item = Item::read(kind, backend, &text)?;
        match part {
            Part::Range => {
                page_end(k, false, &item);
                tally.add(kind, &item);
            }
            Part::Extra => {
                // In the range's read already, but for the `running` list.
                if item.started_at < lookback || item.started_at >= end {
                    tally.add(kind, &item);
                }
                if matches!(item.str("timerState"), Some("running" | "paused")) {
                    running.push((
                        item.started_at,
                        item.id,
                        RunningTimer {
                            entity: kind.name(),
                            entry: Value::Object(item.json),
                        },
                    ));
                }
            }
            Part::Latest => {
                latest.insert(kind.name().to_owned(), Value::Object(item.json));
            }
            Part::Doses => {
                page_end(k, true, &item);
                medications.add(item);
            }
            Part::Growth(ind) => {
                let g = measurement(*ind, &item, baby, range.tz);
                match ind {
                    Indicator::Weight => growth.weight = Some(g),
                    Indicator::Length => growth.length = Some(g),
                    Indicator::HeadCircumference => growth.head_circumference = Some(g),
                }
            }
        }
    }
    // The rest of a range (or of the doses) beyond its first page.
    for ((k, doses_page), (n, key)) in pages {
        if n < PAGE_ROWS {
            continue;
        }
        let kind = KINDS[k];
        let base = if doses_page {
            doses.clone()
        } else {
            in_range(kind)
        };
        let mut rest = Pages::after(kind, base, key);
        while let Some(page) = rest.next(txn).await? {
            for item in page {
                if doses_page {
                    medications.add(item);
                } else {
                    tally.add(kind, &item);
                }
            }
        }
    }
    running.sort_by_key(|r| (r.0, r.1));
    Ok(Summary {
        baby_id: baby.id,
        tz: range.tz.name().to_owned(),
        as_of: ts(&as_of),
        days: tally.days(),
        latest,
        running: running.into_iter().map(|(_, _, r)| r).collect(),
        medications: medications.finish(),
        growth,
    })
}

/// A name's doses so far.
struct Given {
    last: Item,
    last24h: u32,
    oldest24h: Option<DateTime<Utc>>,
}

/// One element per medication name (any letter case) given in the 30 days
/// before `as_of`, from its doses in any order: what it holds is one
/// element per name, whatever the number of doses.
struct Doses {
    day_ago: DateTime<Utc>,
    by_name: BTreeMap<String, Given>,
}

impl Doses {
    fn new(as_of: DateTime<Utc>) -> Doses {
        Doses {
            day_ago: as_of - Duration::hours(24),
            by_name: BTreeMap::new(),
        }
    }

    fn add(&mut self, item: Item) {
        let name = item.str("name").unwrap_or_default().to_lowercase();
        let at = item.started_at;
        let recent = at > self.day_ago;
        match self.by_name.get_mut(&name) {
            None => {
                self.by_name.insert(
                    name,
                    Given {
                        last: item,
                        last24h: u32::from(recent),
                        oldest24h: recent.then_some(at),
                    },
                );
            }
            Some(given) => {
                if recent {
                    given.last24h += 1;
                    given.oldest24h = Some(given.oldest24h.map_or(at, |o| min(o, at)));
                }
                if item.key() > given.last.key() {
                    given.last = item;
                }
            }
        }
    }

    fn finish(self) -> Vec<Medication> {
        let mut out = vec![];
        for given in self.by_name.into_values() {
            let last = &given.last;
            let interval = last.int("minIntervalMinutes");
            let max_doses = last.int("maxDosesPer24h");
            let next = if interval.is_none() && max_doses.is_none() {
                None
            } else {
                let mut at = last.started_at + Duration::minutes(interval.unwrap_or(0));
                if let (Some(limit), Some(oldest)) = (max_doses, given.oldest24h)
                    && i64::from(given.last24h) >= limit
                {
                    at = max(at, oldest + Duration::hours(24));
                }
                Some(ts(&at))
            };
            out.push(Medication {
                name: last.str("name").unwrap_or_default().to_owned(),
                last_given_at: ts(&last.started_at),
                doses_last24h: given.last24h,
                max_doses_per24h: max_doses,
                next_allowed_at: next,
            });
        }
        out.sort_by_key(|m| m.name.to_lowercase());
        out
    }
}

/// A growth indicator's column, wire key and unit.
fn growth_column(ind: Indicator) -> (&'static str, &'static str, &'static str) {
    match ind {
        Indicator::Weight => ("weight_grams", "weightGrams", "g"),
        Indicator::Length => ("length_mm", "lengthMm", "mm"),
        Indicator::HeadCircumference => ("head_circumference_mm", "headCircumferenceMm", "mm"),
    }
}

/// A measurement of `ind` (the latest), with its WHO z-score and
/// percentile.
fn measurement(ind: Indicator, item: &Item, baby: &Baby, tz: Tz) -> Growth {
    let (_, key, unit) = growth_column(ind);
    let sex = match baby.gender {
        Some(Gender::Male) => Some(Sex::Male),
        Some(Gender::Female) => Some(Sex::Female),
        _ => None,
    };
    let value = item.int(key).unwrap_or(0);
    let date = item.started_at.with_timezone(&tz).date_naive();
    let age_days = baby.birth_date.map(|b| (date - b).num_days());
    let z = match (sex, age_days) {
        (Some(sex), Some(age)) => growth::z_score(ind, sex, age, value as f64),
        _ => None,
    };
    Growth {
        value,
        unit,
        measured_at: ts(&item.started_at),
        age_days,
        z: z.map(growth::round2),
        percentile: z.map(|z| growth::round1(growth::percentile(z))),
    }
}
