//! The kinds of log entry, each described once.
//!
//! A kind is its entity (table, stored and wire form: the entity's `Model`
//! serialises to the protocol's Entry), its patch struct (the fields a client
//! writes beyond the common ones, parsed and checked with serde), and one
//! line in [`KINDS`]. Push, pull, validation, storage and the OpenAPI
//! document reach every kind through [`Kind`] and nothing else.
//!
//! Adding a kind: its entity in `entity/`, its migration in `migration/`, its
//! patch struct with `impl LogKind` in a file here, and its line in [`KINDS`].

pub mod feed;
pub mod fields;
pub mod nappy;
pub mod sleep;

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    hash::{Hash, Hasher},
    marker::PhantomData,
    pin::Pin,
    sync::OnceLock,
};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ColumnType, ConnectionTrait, DatabaseTransaction, DbErr,
    EntityTrait, IdenStatic, IntoActiveModel, Iterable, ModelTrait, prelude::Uuid,
    sea_query::SelectStatement,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};
use utoipa::{
    ToSchema,
    openapi::{RefOr, Schema},
};

use crate::{error::ApiError, sync::validate::Rejection};

use self::fields::{Change, Set, Text, Timestamp};

/// Every kind, in the order the protocol lists them.
pub static KINDS: &[Kind] = &[
    Kind(&Registered::<feed::Feed>(PhantomData)),
    Kind(&Registered::<sleep::Sleep>(PhantomData)),
    Kind(&Registered::<nappy::Nappy>(PhantomData)),
];

/// A kind of log entry: its entity and the struct of what a client writes.
pub trait LogKind:
    Default + Serialize + DeserializeOwned + ToSchema + Send + Sync + 'static
{
    /// The entity's name on the wire, and its table.
    const NAME: &'static str;
    /// The table; its `Model` serialises to the protocol's Entry (camelCase,
    /// timestamps in milliseconds) and deserialises from it.
    type Entity: EntityTrait<
            Model: Serialize
                       + DeserializeOwned
                       + ToSchema
                       + IntoActiveModel<<Self::Entity as EntityTrait>::ActiveModel>
                       + Send
                       + Sync,
            ActiveModel: ActiveModelTrait<Entity = Self::Entity> + Send,
        >;
}

/// The fields every kind's `data` may carry besides `id`.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = EntryCommonData)]
pub struct CommonData {
    /// The entry's baby: required to create, and never changes.
    #[serde(default, skip_serializing_if = "Set::is_keep")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub baby_id: Set<fields::Id>,
    /// Required to create.
    #[serde(default, skip_serializing_if = "Set::is_keep")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Set<Timestamp>,
    /// At most 2000 characters.
    #[serde(default, skip_serializing_if = "Change::is_keep")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub notes: Change<Text<2000>>,
}

/// The keys of [`CommonData`] and the mutation's `id`.
pub const COMMON_KEYS: [&str; 4] = ["id", "babyId", "startedAt", "notes"];
/// Keys only the server sets.
pub const SERVER_KEYS: [&str; 5] = [
    "loggedBy",
    "createdAt",
    "updatedAt",
    "archivedAt",
    "version",
];

/// One kind, as the rest of the code sees it. Cheap to copy; compared by name.
#[derive(Clone, Copy)]
pub struct Kind(&'static dyn KindOps);

impl Kind {
    pub fn parse(name: &str) -> Option<Kind> {
        KINDS.iter().copied().find(|k| k.name() == name)
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The kind's own field names (camelCase), as the patch struct declares them.
    pub fn own_fields(self) -> &'static [String] {
        static FIELDS: OnceLock<HashMap<&'static str, Vec<String>>> = OnceLock::new();
        FIELDS
            .get_or_init(|| {
                KINDS
                    .iter()
                    .map(|k| (k.name(), k.0.field_names()))
                    .collect()
            })
            .get(self.name())
            .map_or(&[], Vec::as_slice)
    }

    /// The entity names, for messages: `feed_log, sleep_log or nappy_log`.
    pub fn names_for_message() -> String {
        let names: Vec<&str> = KINDS.iter().map(|k| k.name()).collect();
        match names.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    /// Checks the kind's own fields of a mutation's `data` and returns them
    /// in wire form, only those given (a `null` clears).
    pub fn parse_own(self, own: Map<String, Value>) -> Result<Map<String, Value>, Rejection> {
        self.0.parse_own(own)
    }

    /// Checks a whole entry in wire form (required fields, value ranges, and
    /// `endedAt` ≥ `startedAt`) and returns it with its defaults filled in.
    pub fn complete(self, entry: Map<String, Value>) -> Result<Map<String, Value>, Rejection> {
        let entry = self.0.complete(entry)?;
        check_times(&entry)?;
        Ok(entry)
    }

    /// Columns that hold text (what makes an entry large).
    pub fn text_columns(self) -> Vec<&'static str> {
        self.0.text_columns()
    }

    /// The table's columns as the entity declares them: name, type, nullable.
    pub fn columns(self) -> Vec<(&'static str, ColumnType, bool)> {
        self.0.columns()
    }

    /// Runs `query` (a `SELECT *` from the kind's table) and reads its rows.
    pub async fn fetch(
        self,
        db: &DatabaseTransaction,
        query: &SelectStatement,
    ) -> Result<Vec<Record>, DbErr> {
        let entries = self.0.fetch(db, query).await?;
        entries
            .into_iter()
            .map(|entry| Record::from_entry(self, entry))
            .collect::<Result<_, _>>()
            .map_err(|e| DbErr::Type(format!("{}: {e}", self.name())))
    }

    /// Runs `query` (a `SELECT *` from the kind's table) and serialises each
    /// row straight to its wire JSON (no intermediate value): (id, JSON).
    pub async fn fetch_json(
        self,
        db: &DatabaseTransaction,
        query: &SelectStatement,
    ) -> Result<Vec<IdJson>, DbErr> {
        self.0.fetch_json(db, query).await
    }

    /// Inserts or updates these entries (in wire form) in one statement per chunk.
    pub async fn upsert(
        self,
        txn: &DatabaseTransaction,
        rows: Vec<Map<String, Value>>,
    ) -> Result<(), ApiError> {
        self.0.upsert(txn, rows).await
    }

    /// The OpenAPI schemas of the kind: its Entry, its patch, and what they use.
    pub fn schemas(self, out: &mut Vec<(String, RefOr<Schema>)>) {
        self.0.schemas(out)
    }

    /// The names of the kind's Entry and patch schemas.
    pub fn schema_names(self) -> (String, String) {
        self.0.schema_names()
    }
}

impl PartialEq for Kind {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}
impl Eq for Kind {}
impl Hash for Kind {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.name().hash(h)
    }
}
impl PartialOrd for Kind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Kind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name().cmp(other.name())
    }
}
impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `endedAt` ≥ `startedAt`, for kinds that have an end.
fn check_times(entry: &Map<String, Value>) -> Result<(), Rejection> {
    let time = |key: &str| {
        entry
            .get(key)
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    if let (Some(start), Some(end)) = (time("startedAt"), time("endedAt"))
        && end < start
    {
        return Err(Rejection::invalid(
            "data.endedAt: must not be before startedAt",
        ));
    }
    Ok(())
}

/// Turns a serde error at `path` into the protocol's `data.<field>: …`.
pub fn field_error(path: &str, message: &str) -> Rejection {
    let message = strip_position(message);
    if path.is_empty() || path == "." {
        Rejection::invalid(format!("data: {message}"))
    } else {
        Rejection::invalid(format!("data.{path}: {message}"))
    }
}

fn strip_position(msg: &str) -> &str {
    msg.find(" at line ").map_or(msg, |i| &msg[..i])
}

/// Deserialises `value` as `T`, naming the field at fault. The fast path
/// reads the value in place; only a refusal is read again to find its path.
pub fn parse_as<T: DeserializeOwned>(value: Value) -> Result<T, (String, String)> {
    match T::deserialize(&value) {
        Ok(v) => Ok(v),
        Err(_) => match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(v) => Ok(v),
            Err(e) => Err((e.path().to_string(), e.inner().to_string())),
        },
    }
}

/// One stored entry of any kind, in wire form, with its identity at hand.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub kind: Kind,
    pub id: Uuid,
    pub baby_id: Uuid,
    pub version: i64,
    pub archived: bool,
    /// The protocol's Entry: what pull sends and a conflict's `current`.
    pub entry: Map<String, Value>,
}

impl Record {
    fn from_entry(kind: Kind, entry: Map<String, Value>) -> Result<Self, String> {
        let uuid = |key: &str| {
            entry
                .get(key)
                .and_then(Value::as_str)
                .and_then(|s| Uuid::parse_str(s).ok())
                .ok_or_else(|| format!("entry without {key}"))
        };
        Ok(Self {
            kind,
            id: uuid("id")?,
            baby_id: uuid("babyId")?,
            version: entry.get("version").and_then(Value::as_i64).unwrap_or(0),
            archived: !entry.get("archivedAt").is_none_or(Value::is_null),
            entry,
        })
    }

    /// A new entry: the identifying and server-set fields, then `data`.
    pub fn create(
        kind: Kind,
        id: Uuid,
        baby_id: Uuid,
        logged_by: &str,
        now: DateTime<Utc>,
        data: &Map<String, Value>,
    ) -> Result<Self, Rejection> {
        let at = Value::String(crate::time::ts(&now));
        let mut entry = Map::new();
        entry.insert("id".into(), Value::String(id.to_string()));
        entry.insert("babyId".into(), Value::String(baby_id.to_string()));
        entry.insert("loggedBy".into(), Value::String(logged_by.to_owned()));
        entry.insert("createdAt".into(), at.clone());
        entry.insert("updatedAt".into(), at);
        entry.insert("archivedAt".into(), Value::Null);
        entry.insert("version".into(), Value::from(0));
        entry.extend(data.iter().map(|(k, v)| (k.clone(), v.clone())));
        let entry = kind.complete(entry)?;
        Record::from_entry(kind, entry).map_err(Rejection::invalid)
    }

    /// This entry with `data`'s fields written over it, checked whole.
    pub fn patched(&self, data: &Map<String, Value>) -> Result<Self, Rejection> {
        let mut entry = self.entry.clone();
        entry.extend(data.iter().map(|(k, v)| (k.clone(), v.clone())));
        let entry = self.kind.complete(entry)?;
        Record::from_entry(self.kind, entry).map_err(Rejection::invalid)
    }

    /// Gives the entry a new version, written at `now`.
    pub fn bump(&mut self, version: i64, now: DateTime<Utc>) {
        self.version = version;
        self.entry.insert("version".into(), Value::from(version));
        self.entry
            .insert("updatedAt".into(), Value::String(crate::time::ts(&now)));
    }

    /// Archives the entry (a soft delete) at `now`.
    pub fn archive(&mut self, now: DateTime<Utc>) {
        self.archived = true;
        self.entry
            .insert("archivedAt".into(), Value::String(crate::time::ts(&now)));
    }

    pub fn to_json(&self) -> Value {
        Value::Object(self.entry.clone())
    }
}

/// The PostgreSQL type of a column in `json_to_recordset`'s column list.
fn pg_type(t: &ColumnType) -> Option<&'static str> {
    Some(match t {
        ColumnType::Uuid => "uuid",
        ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_) => "text",
        ColumnType::TimestampWithTimeZone => "timestamptz",
        ColumnType::Integer => "int4",
        ColumnType::BigInteger => "int8",
        ColumnType::SmallInteger => "int2",
        ColumnType::Boolean => "bool",
        ColumnType::Date => "date",
        _ => return None,
    })
}

/// `started_at` → `startedAt`: a column's key in the wire form.
fn camel(column: &str) -> String {
    let mut out = String::with_capacity(column.len());
    let mut upper = false;
    for c in column.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The upsert of a kind on PostgreSQL: the rows go as one JSON array (the
/// entries in wire form, as they are), read by `json_to_recordset`. One
/// statement text per kind, whatever the number of rows, with one parameter:
/// cheap to plan even when every execution is planned afresh, where a
/// multi-row `VALUES` list with 16 parameters a row is not (see
/// docs/PERFORMANCE.md). An update only touches a row of the same baby.
fn upsert_json_sql<E: EntityTrait>() -> Result<String, ApiError> {
    let table = E::default().table_name().to_owned();
    let mut columns = vec![];
    let mut keys = vec![];
    let mut types = vec![];
    let mut updates = vec![];
    for c in E::Column::iter() {
        let name = IdenStatic::as_str(&c);
        let ty = pg_type(c.def().get_column_type()).ok_or_else(|| {
            tracing::error!(
                table,
                column = name,
                "a column type json_to_recordset does not know"
            );
            ApiError::Internal
        })?;
        columns.push(format!("\"{name}\""));
        keys.push(format!("x.\"{}\"", camel(name)));
        types.push(format!("\"{}\" {ty}", camel(name)));
        if !["id", "baby_id", "logged_by", "created_at"].contains(&name) {
            updates.push(format!("\"{name}\" = excluded.\"{name}\""));
        }
    }
    Ok(format!(
        "INSERT INTO \"{table}\" ({}) SELECT {} FROM json_to_recordset($1::json) AS x({}) \
         ON CONFLICT (\"id\") DO UPDATE SET {} WHERE \"{table}\".\"baby_id\" = excluded.\"baby_id\"",
        columns.join(", "),
        keys.join(", "),
        types.join(", "),
        updates.join(", "),
    ))
}

async fn upsert_json<E: EntityTrait>(
    txn: &DatabaseTransaction,
    rows: &[Map<String, Value>],
) -> Result<(), ApiError> {
    if rows.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_string(rows).map_err(|_| ApiError::Internal)?;
    let stmt = sea_orm::Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        upsert_json_sql::<E>()?,
        [sea_orm::Value::from(json)],
    );
    let written = txn.execute_raw(stmt).await?.rows_affected();
    if written != rows.len() as u64 {
        return Err(ApiError::Unavailable(
            "a concurrent write took one of these ids; nothing was written; retry".into(),
        ));
    }
    Ok(())
}

/// An entry's id and its wire JSON.
pub type IdJson = (Uuid, Vec<u8>);

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the rest of the code needs of a kind, object-safe; implemented once
/// for every [`LogKind`].
trait KindOps: Send + Sync {
    fn name(&self) -> &'static str;
    fn field_names(&self) -> Vec<String>;
    fn parse_own(&self, own: Map<String, Value>) -> Result<Map<String, Value>, Rejection>;
    fn complete(&self, entry: Map<String, Value>) -> Result<Map<String, Value>, Rejection>;
    fn text_columns(&self) -> Vec<&'static str>;
    fn columns(&self) -> Vec<(&'static str, ColumnType, bool)>;
    fn fetch<'a>(
        &'a self,
        db: &'a DatabaseTransaction,
        query: &'a SelectStatement,
    ) -> BoxFuture<'a, Result<Vec<Map<String, Value>>, DbErr>>;
    fn upsert<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        rows: Vec<Map<String, Value>>,
    ) -> BoxFuture<'a, Result<(), ApiError>>;
    fn fetch_json<'a>(
        &'a self,
        db: &'a DatabaseTransaction,
        query: &'a SelectStatement,
    ) -> BoxFuture<'a, Result<Vec<IdJson>, DbErr>>;
    fn schemas(&self, out: &mut Vec<(String, RefOr<Schema>)>);
    fn schema_names(&self) -> (String, String);
}

struct Registered<K>(PhantomData<fn() -> K>);

type Model<K> = <<K as LogKind>::Entity as EntityTrait>::Model;

fn as_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl<K: LogKind> KindOps for Registered<K> {
    fn name(&self) -> &'static str {
        K::NAME
    }

    fn field_names(&self) -> Vec<String> {
        match K::schema() {
            RefOr::T(Schema::Object(o)) => o.properties.keys().cloned().collect(),
            _ => vec![],
        }
    }

    fn parse_own(&self, own: Map<String, Value>) -> Result<Map<String, Value>, Rejection> {
        let patch: K = parse_as(Value::Object(own)).map_err(|(p, m)| field_error(&p, &m))?;
        serde_json::to_value(patch)
            .map(as_map)
            .map_err(|e| Rejection::invalid(format!("data: {e}")))
    }

    fn complete(&self, entry: Map<String, Value>) -> Result<Map<String, Value>, Rejection> {
        let model: Model<K> = match parse_as(Value::Object(entry)) {
            Ok(m) => m,
            Err((path, message)) => {
                return Err(match message.strip_prefix("missing field `") {
                    Some(rest) => Rejection::invalid(format!(
                        "data.{}: required to create a {}",
                        rest.trim_end_matches('`'),
                        K::NAME
                    )),
                    None => field_error(&path, &message),
                });
            }
        };
        serde_json::to_value(model)
            .map(as_map)
            .map_err(|e| Rejection::invalid(format!("data: {e}")))
    }

    fn text_columns(&self) -> Vec<&'static str> {
        <K::Entity as EntityTrait>::Column::iter()
            .filter(|c| {
                matches!(
                    c.def().get_column_type(),
                    ColumnType::Text | ColumnType::String(_)
                )
            })
            .map(|c| IdenStatic::as_str(&c))
            .collect()
    }

    fn columns(&self) -> Vec<(&'static str, ColumnType, bool)> {
        <K::Entity as EntityTrait>::Column::iter()
            .map(|c| {
                let def = c.def();
                (
                    IdenStatic::as_str(&c),
                    def.get_column_type().clone(),
                    def.is_null(),
                )
            })
            .collect()
    }

    fn fetch<'a>(
        &'a self,
        db: &'a DatabaseTransaction,
        query: &'a SelectStatement,
    ) -> BoxFuture<'a, Result<Vec<Map<String, Value>>, DbErr>> {
        Box::pin(async move {
            let stmt = db.get_database_backend().build(query);
            let models = K::Entity::find().from_raw_sql(stmt).all(db).await?;
            models
                .into_iter()
                .map(|m| {
                    serde_json::to_value(m)
                        .map(as_map)
                        .map_err(|e| DbErr::Type(e.to_string()))
                })
                .collect()
        })
    }

    fn upsert<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        rows: Vec<Map<String, Value>>,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
                return upsert_json::<K::Entity>(txn, &rows).await;
            }
            let models = rows
                .into_iter()
                .map(|entry| {
                    serde_json::from_value::<Model<K>>(Value::Object(entry))
                        .map(|m| m.into_active_model().reset_all())
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    tracing::error!(kind = K::NAME, error = %e, "an entry that does not fit its table");
                    ApiError::Internal
                })?;
            crate::sync::push::upsert::<K::Entity, _>(txn, models).await
        })
    }

    fn fetch_json<'a>(
        &'a self,
        db: &'a DatabaseTransaction,
        query: &'a SelectStatement,
    ) -> BoxFuture<'a, Result<Vec<IdJson>, DbErr>> {
        Box::pin(async move {
            let id = <K::Entity as EntityTrait>::Column::iter()
                .find(|c| IdenStatic::as_str(c) == "id")
                .ok_or_else(|| DbErr::Type(format!("{}: no id column", K::NAME)))?;
            use futures_util::TryStreamExt;
            let stmt = db.get_database_backend().build(query);
            // Row by row: only one row and its model are alive besides the JSON.
            let mut rows = K::Entity::find().from_raw_sql(stmt).stream(db).await?;
            let mut out = vec![];
            while let Some(m) = rows.try_next().await? {
                let sea_orm::Value::Uuid(Some(key)) = m.get(id) else {
                    return Err(DbErr::Type(format!("{}: an entry without id", K::NAME)));
                };
                let mut json = serde_json::to_vec(&m).map_err(|e| DbErr::Type(e.to_string()))?;
                // The buffer grew by doubling: give back what the entry did not use.
                json.shrink_to_fit();
                out.push((key, json));
            }
            Ok(out)
        })
    }

    fn schemas(&self, out: &mut Vec<(String, RefOr<Schema>)>) {
        <Model<K> as ToSchema>::schemas(out);
        out.push((
            <Model<K> as ToSchema>::name().into_owned(),
            <Model<K> as utoipa::PartialSchema>::schema(),
        ));
        K::schemas(out);
        out.push((K::name().into_owned(), K::schema()));
    }

    fn schema_names(&self) -> (String, String) {
        (
            <Model<K> as ToSchema>::name().into_owned(),
            K::name().into_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_is_registered_once_by_name() {
        let names: Vec<&str> = KINDS.iter().map(|k| k.name()).collect();
        assert_eq!(names, ["feed_log", "sleep_log", "nappy_log"]);
        for k in KINDS {
            assert_eq!(Kind::parse(k.name()), Some(*k));
            assert!(!k.own_fields().is_empty());
            assert!(k.text_columns().contains(&"notes"));
        }
        assert_eq!(
            Kind::names_for_message(),
            "feed_log, sleep_log or nappy_log"
        );
        assert_eq!(Kind::parse("growth_log"), None);
    }

    #[test]
    fn an_entry_is_completed_and_checked_whole() {
        let feed = Kind::parse("feed_log").unwrap();
        let now = Utc::now();
        let id = Uuid::new_v4();
        let data = feed
            .parse_own(as_map(json!({"method": "bottle", "amountMl": 120})))
            .unwrap();
        let mut common = as_map(json!({"startedAt": "2026-11-20T07:05:00.000Z"}));
        common.extend(data);
        let r = Record::create(feed, id, Uuid::nil(), "u", now, &common).unwrap();
        assert_eq!(
            r.entry["isEstimated"],
            json!(false),
            "defaults are filled in"
        );
        assert_eq!(r.entry["endSide"], Value::Null);
        let missing = Record::create(
            feed,
            id,
            Uuid::nil(),
            "u",
            now,
            &as_map(json!({"startedAt": "2026-11-20T07:05:00.000Z"})),
        );
        assert_eq!(
            missing.unwrap_err().message,
            "data.method: required to create a feed_log"
        );
        let backwards = r.patched(&as_map(json!({"endedAt": "2026-11-20T07:00:00.000Z"})));
        assert_eq!(
            backwards.unwrap_err().message,
            "data.endedAt: must not be before startedAt"
        );
        let err = feed
            .parse_own(as_map(json!({"amountMl": 2001})))
            .unwrap_err();
        assert_eq!(
            err.message,
            "data.amountMl: must be an integer from 0 to 2000"
        );
    }
}
