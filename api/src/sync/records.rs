//! The three log kinds as one in-memory record, with conversions to and from
//! their SeaORM models and the protocol's Entry form.

use chrono::{DateTime, Utc};
use entity::{feed_log, nappy_log, sleep_log};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, prelude::Uuid, sea_query::SelectStatement};
use serde_json::{Map, Value, json};

use crate::time::{ts, ts_opt};

/// Which table a mutation or entry belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Feed,
    Sleep,
    Nappy,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Feed, Kind::Sleep, Kind::Nappy];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "feed_log" => Some(Kind::Feed),
            "sleep_log" => Some(Kind::Sleep),
            "nappy_log" => Some(Kind::Nappy),
            _ => None,
        }
    }

    /// The kind's free-text columns (what makes an entry large).
    pub fn text_columns(self) -> &'static [&'static str] {
        match self {
            Kind::Feed => &["notes", "estimated_source"],
            Kind::Sleep | Kind::Nappy => &["notes"],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Feed => "feed_log",
            Kind::Sleep => "sleep_log",
            Kind::Nappy => "nappy_log",
        }
    }
}

/// Runs `query` (a `SELECT *` from `kind`'s table) and reads its rows.
pub async fn fetch<C: ConnectionTrait>(
    db: &C,
    kind: Kind,
    query: &SelectStatement,
) -> Result<Vec<Record>, DbErr> {
    let stmt = db.get_database_backend().build(query);
    Ok(match kind {
        Kind::Feed => feed_log::Entity::find()
            .from_raw_sql(stmt)
            .all(db)
            .await?
            .into_iter()
            .map(Record::from)
            .collect(),
        Kind::Sleep => sleep_log::Entity::find()
            .from_raw_sql(stmt)
            .all(db)
            .await?
            .into_iter()
            .map(Record::from)
            .collect(),
        Kind::Nappy => nappy_log::Entity::find()
            .from_raw_sql(stmt)
            .all(db)
            .await?
            .into_iter()
            .map(Record::from)
            .collect(),
    })
}

/// One log entry of any kind. Fields a kind does not have stay `None`/false.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub kind: Kind,
    pub id: Uuid,
    pub baby_id: Uuid,
    pub logged_by: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub notes: Option<String>,
    // feed_log
    pub method: Option<String>,
    pub duration_minutes: Option<i32>,
    pub amount_ml: Option<i32>,
    pub is_estimated: bool,
    pub estimated_source: Option<String>,
    pub end_side: Option<String>,
    // nappy_log
    pub nappy_type: Option<String>,
    pub colour: Option<String>,
    pub consistency: Option<String>,
    // set by the server
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
    pub version: i64,
}

impl Record {
    /// A fresh record with only the identifying fields set.
    pub fn new(kind: Kind, id: Uuid, baby_id: Uuid, logged_by: &str, at: DateTime<Utc>) -> Self {
        Self {
            kind,
            id,
            baby_id,
            logged_by: logged_by.to_owned(),
            started_at: at,
            ended_at: None,
            notes: None,
            method: None,
            duration_minutes: None,
            amount_ml: None,
            is_estimated: false,
            estimated_source: None,
            end_side: None,
            nappy_type: None,
            colour: None,
            consistency: None,
            created_at: at,
            updated_at: at,
            archived_at: None,
            version: 0,
        }
    }

    /// The protocol's Entry: what pull sends and a conflict's `current`.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("babyId".into(), json!(self.baby_id));
        m.insert("startedAt".into(), json!(ts(&self.started_at)));
        match self.kind {
            Kind::Feed => {
                m.insert("method".into(), json!(self.method));
                m.insert("endedAt".into(), json!(ts_opt(&self.ended_at)));
                m.insert("durationMinutes".into(), json!(self.duration_minutes));
                m.insert("amountMl".into(), json!(self.amount_ml));
                m.insert("isEstimated".into(), json!(self.is_estimated));
                m.insert("estimatedSource".into(), json!(self.estimated_source));
                m.insert("endSide".into(), json!(self.end_side));
            }
            Kind::Sleep => {
                m.insert("endedAt".into(), json!(ts_opt(&self.ended_at)));
                m.insert("durationMinutes".into(), json!(self.duration_minutes));
            }
            Kind::Nappy => {
                m.insert("type".into(), json!(self.nappy_type));
                m.insert("colour".into(), json!(self.colour));
                m.insert("consistency".into(), json!(self.consistency));
            }
        }
        m.insert("notes".into(), json!(self.notes));
        m.insert("loggedBy".into(), json!(self.logged_by));
        m.insert("createdAt".into(), json!(ts(&self.created_at)));
        m.insert("updatedAt".into(), json!(ts(&self.updated_at)));
        m.insert("archivedAt".into(), json!(ts_opt(&self.archived_at)));
        m.insert("version".into(), json!(self.version));
        Value::Object(m)
    }
}

impl From<feed_log::Model> for Record {
    fn from(m: feed_log::Model) -> Self {
        Self {
            method: Some(m.method),
            duration_minutes: m.duration_minutes,
            amount_ml: m.amount_ml,
            is_estimated: m.is_estimated,
            estimated_source: m.estimated_source,
            end_side: m.end_side,
            ended_at: m.ended_at,
            notes: m.notes,
            created_at: m.created_at,
            updated_at: m.updated_at,
            archived_at: m.archived_at,
            version: m.version,
            ..Record::new(Kind::Feed, m.id, m.baby_id, &m.logged_by, m.started_at)
        }
    }
}

impl From<sleep_log::Model> for Record {
    fn from(m: sleep_log::Model) -> Self {
        Self {
            ended_at: m.ended_at,
            duration_minutes: m.duration_minutes,
            notes: m.notes,
            created_at: m.created_at,
            updated_at: m.updated_at,
            archived_at: m.archived_at,
            version: m.version,
            ..Record::new(Kind::Sleep, m.id, m.baby_id, &m.logged_by, m.started_at)
        }
    }
}

impl From<nappy_log::Model> for Record {
    fn from(m: nappy_log::Model) -> Self {
        Self {
            nappy_type: m.nappy_type,
            colour: m.colour,
            consistency: m.consistency,
            notes: m.notes,
            created_at: m.created_at,
            updated_at: m.updated_at,
            archived_at: m.archived_at,
            version: m.version,
            ..Record::new(Kind::Nappy, m.id, m.baby_id, &m.logged_by, m.started_at)
        }
    }
}

impl Record {
    pub fn into_feed(self) -> feed_log::ActiveModel {
        use sea_orm::Set;
        feed_log::ActiveModel {
            id: Set(self.id),
            baby_id: Set(self.baby_id),
            logged_by: Set(self.logged_by),
            method: Set(self.method.unwrap_or_default()),
            started_at: Set(self.started_at),
            ended_at: Set(self.ended_at),
            duration_minutes: Set(self.duration_minutes),
            amount_ml: Set(self.amount_ml),
            is_estimated: Set(self.is_estimated),
            estimated_source: Set(self.estimated_source),
            end_side: Set(self.end_side),
            notes: Set(self.notes),
            created_at: Set(self.created_at),
            updated_at: Set(self.updated_at),
            archived_at: Set(self.archived_at),
            version: Set(self.version),
        }
    }

    pub fn into_sleep(self) -> sleep_log::ActiveModel {
        use sea_orm::Set;
        sleep_log::ActiveModel {
            id: Set(self.id),
            baby_id: Set(self.baby_id),
            logged_by: Set(self.logged_by),
            started_at: Set(self.started_at),
            ended_at: Set(self.ended_at),
            duration_minutes: Set(self.duration_minutes),
            notes: Set(self.notes),
            created_at: Set(self.created_at),
            updated_at: Set(self.updated_at),
            archived_at: Set(self.archived_at),
            version: Set(self.version),
        }
    }

    pub fn into_nappy(self) -> nappy_log::ActiveModel {
        use sea_orm::Set;
        nappy_log::ActiveModel {
            id: Set(self.id),
            baby_id: Set(self.baby_id),
            logged_by: Set(self.logged_by),
            started_at: Set(self.started_at),
            nappy_type: Set(self.nappy_type),
            colour: Set(self.colour),
            consistency: Set(self.consistency),
            notes: Set(self.notes),
            created_at: Set(self.created_at),
            updated_at: Set(self.updated_at),
            archived_at: Set(self.archived_at),
            version: Set(self.version),
        }
    }
}
