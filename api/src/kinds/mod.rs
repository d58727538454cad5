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

pub mod activity;
pub mod feed;
pub mod fields;
pub mod growth;
pub mod medication;
pub mod nappy;
pub mod pumping;
pub mod sleep;
pub mod solids;
pub mod temperature;
pub mod timer;
pub mod timer_event;
pub mod wire_sql;

use std::{
    any::Any,
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
    ActiveModelTrait, ColumnTrait, ColumnType, ConnectionTrait, DatabaseTransaction, DbBackend,
    DbErr, EntityTrait, IdenStatic, IntoActiveModel, Iterable, ModelTrait, prelude::Uuid,
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
pub use self::wire_sql::RowFormat;

/// Every kind, in the order the protocol lists them.
pub static KINDS: &[Kind] = &[
    Kind(&Registered::<feed::Feed>(PhantomData)),
    Kind(&Registered::<sleep::Sleep>(PhantomData)),
    Kind(&Registered::<nappy::Nappy>(PhantomData)),
    Kind(&Registered::<pumping::Pumping>(PhantomData)),
    Kind(&Registered::<growth::Growth>(PhantomData)),
    Kind(&Registered::<medication::Medication>(PhantomData)),
    Kind(&Registered::<temperature::Temperature>(PhantomData)),
    Kind(&Registered::<solids::Solids>(PhantomData)),
    Kind(&Registered::<activity::Activity>(PhantomData)),
    Kind(&Registered::<timer_event::TimerEvent>(PhantomData)),
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

    /// Whether a stored entry takes `update` (a `timer_event` takes only
    /// `create` and `delete`).
    const UPDATABLE: bool = true;

    /// Checks across fields, and sets the fields the server derives, on the
    /// whole entry about to be stored; `sent` holds the fields this write
    /// gives, in wire form. Each field's own range is checked by the patch
    /// struct before.
    fn settle(_entry: &mut Model<Self>, _sent: &Map<String, Value>) -> Result<(), Rejection> {
        Ok(())
    }
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

    /// Whether a stored entry takes `update`.
    pub fn updatable(self) -> bool {
        self.0.updatable()
    }

    /// Whether the kind's table has this column.
    pub fn has_column(self, column: &str) -> bool {
        self.columns().iter().any(|(c, _, _)| *c == column)
    }

    /// Checks a whole entry in wire form (required fields, value ranges, the
    /// kind's own checks across fields with `sent` the fields this write
    /// gives, and `endedAt` ≥ `startedAt`) and returns its model, defaults
    /// filled in and derived fields set.
    pub fn complete(
        self,
        entry: Map<String, Value>,
        sent: &Map<String, Value>,
    ) -> Result<Box<dyn Entry>, Rejection> {
        let entry = self.0.complete(entry, sent)?;
        check_times(entry.as_ref())?;
        Ok(entry)
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
            .map(|entry| Record::from_model(self, entry))
            .collect::<Result<_, _>>()
            .map_err(|e| DbErr::Type(format!("{}: {e}", self.name())))
    }

    /// How the kind's rows are read for a pull, as one text each (see
    /// [`wire_sql`]): the SQL expression for `backend`, and the format that
    /// turns such a text into the entry's wire JSON.
    pub fn row_text(
        self,
        backend: DbBackend,
    ) -> Result<(&'static str, &'static RowFormat), ApiError> {
        type Made = Result<(RowFormat, [String; 2]), String>;
        static ALL: OnceLock<HashMap<&'static str, Made>> = OnceLock::new();
        let all = ALL.get_or_init(|| KINDS.iter().map(|k| (k.name(), k.0.row_text())).collect());
        match all.get(self.name()) {
            Some(Ok((format, [sqlite, pg]))) => Ok((
                if backend == DbBackend::Postgres {
                    pg
                } else {
                    sqlite
                },
                format,
            )),
            Some(Err(e)) => {
                tracing::error!(kind = self.name(), error = %e, "no row text for the kind");
                Err(ApiError::Internal)
            }
            None => Err(ApiError::Internal),
        }
    }

    /// The kind's upsert of the rows given as one JSON array: on PostgreSQL
    /// in parameter `$param`, the entries' wire form (see
    /// [`upsert_json_sql`]); on SQLite in its one parameter `?` (`param` is
    /// not used), each row's stored values (see [`upsert_sqlite_sql`] and
    /// [`Entry::write_stored`]).
    pub fn upsert_sql(self, backend: DbBackend, param: usize) -> Result<String, ApiError> {
        self.0.upsert_sql(backend, param)
    }

    /// The kind's upsert (see [`Kind::upsert_sql`]) but leaving a row whose
    /// id exists as it is: it inserts the rows whose ids are new.
    pub fn insert_new_sql(self, backend: DbBackend, param: usize) -> Result<String, ApiError> {
        let upsert = self.upsert_sql(backend, param)?;
        let (insert, _) = upsert
            .split_once(ON_CONFLICT_UPDATE)
            .ok_or(ApiError::Internal)?;
        Ok(format!("{insert} ON CONFLICT (\"id\") DO NOTHING"))
    }

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
fn check_times(entry: &dyn Entry) -> Result<(), Rejection> {
    let time = |column: &str| match entry.get(column) {
        Some(sea_orm::Value::ChronoDateTimeUtc(Some(t))) => Some(t),
        _ => None,
    };
    if let (Some(start), Some(end)) = (time("started_at"), time("ended_at"))
        && end < start
    {
        return Err(Rejection::invalid(
            "data.endedAt: must not be before startedAt",
        ));
    }
    Ok(())
}

/// Turns a serde error at `path` into `data.<field>: …`, saying what the
/// field must be (the push names the mutation: see [`Rejection::at`]).
pub fn field_error(path: &str, message: &str) -> Rejection {
    let path = if path == "." { "" } else { path };
    let (field, what) = crate::extract::describe(&path.replace('.', "/"), strip_position(message));
    if field.is_empty() {
        Rejection::invalid(format!("data: {what}"))
    } else {
        Rejection::invalid(format!("data.{field}: {what}"))
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

/// A stored entry's model, whatever its kind: the entity's `Model`, which
/// serialises to the protocol's Entry.
pub trait Entry: Send + Sync + fmt::Debug + Any {
    fn clone_box(&self) -> Box<dyn Entry>;
    /// The wire form, as a map (conflicts' `current`, patches).
    fn to_map(&self) -> Map<String, Value>;
    /// Appends the wire form's JSON to `out`.
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()>;
    /// A column's value, by its name.
    fn get(&self, column: &str) -> Option<sea_orm::Value>;
    /// Sets a column, by its name.
    fn set(&mut self, column: &str, value: sea_orm::Value) -> Result<(), DbErr>;
    /// Appends the row as SQLite stores it: a JSON array of its column
    /// values, in the entity's column order (see [`upsert_sqlite_sql`]).
    fn write_stored(&self, out: &mut Vec<u8>) -> Result<(), String>;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<M> Entry for M
where
    M: ModelTrait + Serialize + Clone + fmt::Debug + Send + Sync + 'static,
{
    fn clone_box(&self) -> Box<dyn Entry> {
        Box::new(self.clone())
    }

    fn to_map(&self) -> Map<String, Value> {
        serde_json::to_value(self).map(as_map).unwrap_or_default()
    }

    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }

    fn get(&self, column: &str) -> Option<sea_orm::Value> {
        <M::Entity as EntityTrait>::Column::iter()
            .find(|c| IdenStatic::as_str(c) == column)
            .map(|c| ModelTrait::get(self, c))
    }

    fn set(&mut self, column: &str, value: sea_orm::Value) -> Result<(), DbErr> {
        let c = <M::Entity as EntityTrait>::Column::iter()
            .find(|c| IdenStatic::as_str(c) == column)
            .ok_or_else(|| DbErr::Type(format!("no column {column}")))?;
        self.try_set(c, value)
    }

    fn write_stored(&self, out: &mut Vec<u8>) -> Result<(), String> {
        out.push(b'[');
        for (i, c) in <M::Entity as EntityTrait>::Column::iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_stored_value(ModelTrait::get(self, c), out)?;
        }
        out.push(b']');
        Ok(())
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// One stored entry of any kind, its model, with its identity at hand.
#[derive(Debug)]
pub struct Record {
    pub kind: Kind,
    pub id: Uuid,
    pub baby_id: Uuid,
    pub version: i64,
    pub archived: bool,
    /// The entity's model: what pull sends and a conflict's `current`.
    pub entry: Box<dyn Entry>,
}

impl Clone for Record {
    fn clone(&self) -> Self {
        Self {
            kind: self.kind,
            id: self.id,
            baby_id: self.baby_id,
            version: self.version,
            archived: self.archived,
            entry: self.entry.clone_box(),
        }
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.id == other.id && self.to_json() == other.to_json()
    }
}

impl Record {
    pub fn from_model(kind: Kind, entry: Box<dyn Entry>) -> Result<Self, String> {
        let uuid = |column: &str| match entry.get(column) {
            Some(sea_orm::Value::Uuid(Some(u))) => Ok(u),
            _ => Err(format!("entry without {column}")),
        };
        Ok(Self {
            kind,
            id: uuid("id")?,
            baby_id: uuid("baby_id")?,
            version: match entry.get("version") {
                Some(sea_orm::Value::BigInt(Some(v))) => v,
                _ => 0,
            },
            archived: !matches!(
                entry.get("archived_at"),
                None | Some(sea_orm::Value::ChronoDateTimeUtc(None))
            ),
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
        let entry = kind.complete(entry, data)?;
        Record::from_model(kind, entry).map_err(Rejection::invalid)
    }

    /// This entry with `data`'s fields written over it, checked whole.
    pub fn patched(&self, data: &Map<String, Value>) -> Result<Self, Rejection> {
        let mut entry = self.entry.to_map();
        entry.extend(data.iter().map(|(k, v)| (k.clone(), v.clone())));
        let entry = self.kind.complete(entry, data)?;
        Record::from_model(self.kind, entry).map_err(Rejection::invalid)
    }

    /// Gives the entry a new version, written at `now`.
    pub fn bump(&mut self, version: i64, now: DateTime<Utc>) {
        self.version = version;
        let _ = self.entry.set("version", version.into());
        let _ = self.entry.set("updated_at", now.into());
    }

    /// Archives the entry (a soft delete) at `now`.
    pub fn archive(&mut self, now: DateTime<Utc>) {
        self.archived = true;
        let _ = self.entry.set("archived_at", Some(now).into());
    }

    pub fn to_json(&self) -> Value {
        Value::Object(self.entry.to_map())
    }
}

/// The PostgreSQL type of a column in `json_to_recordset`'s column list.
pub(crate) fn pg_type(t: &ColumnType) -> Option<&'static str> {
    Some(match t {
        ColumnType::Uuid => "uuid",
        ColumnType::String(_) | ColumnType::Text | ColumnType::Char(_) => "text",
        ColumnType::TimestampWithTimeZone => "timestamptz",
        ColumnType::Integer => "int4",
        ColumnType::BigInteger => "int8",
        ColumnType::SmallInteger => "int2",
        ColumnType::Boolean => "bool",
        ColumnType::Date => "date",
        ColumnType::Double => "float8",
        ColumnType::Json => "json",
        _ => return None,
    })
}

/// `started_at` → `startedAt`: a column's key in the wire form.
pub fn camel(column: &str) -> String {
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
fn upsert_json_sql<E: EntityTrait>(param: usize) -> Result<String, ApiError> {
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
        if !KEPT_FOR_LIFE.contains(&name) {
            updates.push(format!("\"{name}\" = excluded.\"{name}\""));
        }
    }
    Ok(format!(
        "INSERT INTO \"{table}\" ({}) SELECT {} FROM json_to_recordset(${param}::json) AS x({}){}",
        columns.join(", "),
        keys.join(", "),
        types.join(", "),
        on_conflict_update(&table, &updates),
    ))
}

/// Where an upsert's insert ends and its update of a stored row begins.
const ON_CONFLICT_UPDATE: &str = " ON CONFLICT (\"id\") DO UPDATE SET ";

/// An upsert's end: a stored row of the same baby takes the `updates`.
fn on_conflict_update(table: &str, updates: &[String]) -> String {
    format!(
        "{ON_CONFLICT_UPDATE}{} WHERE \"{table}\".\"baby_id\" = excluded.\"baby_id\"",
        updates.join(", ")
    )
}

/// The columns an update never changes.
const KEPT_FOR_LIFE: [&str; 4] = ["id", "baby_id", "logged_by", "created_at"];

/// The upsert of a kind on SQLite: the rows go as one JSON array of arrays
/// (its one parameter),
/// each row's stored values in column order ([`Entry::write_stored`]), read
/// by `json_each`. One statement text per kind, whatever the number of rows
/// (one prepared statement, where a multi-row `VALUES` list needs one per
/// row count). An update only touches a row of the same baby.
fn upsert_sqlite_sql<E: EntityTrait>() -> String {
    let table = E::default().table_name().to_owned();
    let mut columns = vec![];
    let mut values = vec![];
    let mut updates = vec![];
    for (i, c) in E::Column::iter().enumerate() {
        let name = IdenStatic::as_str(&c);
        columns.push(format!("\"{name}\""));
        values.push(match c.def().get_column_type() {
            // Stored as 16 bytes; sent as 32 hex digits.
            ColumnType::Uuid => format!("unhex(value ->> {i})"),
            _ => format!("value ->> {i}"),
        });
        if !KEPT_FOR_LIFE.contains(&name) {
            updates.push(format!("\"{name}\" = excluded.\"{name}\""));
        }
    }
    // `WHERE true`: SQLite's grammar needs it between a SELECT and ON CONFLICT.
    format!(
        "INSERT INTO \"{table}\" ({}) SELECT {} FROM jsonb_each(?) WHERE true{}",
        columns.join(", "),
        values.join(", "),
        on_conflict_update(&table, &updates),
    )
}

/// Appends a column's value as SQLite stores it (what sqlx binds for it), as
/// JSON: a UUID as 32 hex digits (the upsert `unhex`es it), a timestamp as
/// sqlx's text, a date as `YYYY-MM-DD`, a boolean as 0 or 1, a JSON value
/// nested (SQLite keeps its text), the rest as it is.
fn write_stored_value(value: sea_orm::Value, out: &mut Vec<u8>) -> Result<(), String> {
    use sea_orm::Value as V;
    use std::io::Write;
    fn text(s: &str, out: &mut Vec<u8>) -> Result<(), String> {
        serde_json::to_writer(out, s).map_err(|e| e.to_string())
    }
    if !value.is_some() {
        out.extend_from_slice(b"null");
        return Ok(());
    }
    let written = match value {
        V::Uuid(Some(u)) => write!(out, "\"{}\"", u.simple()),
        V::ChronoDateTimeUtc(Some(t)) => {
            return text(
                &t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
                out,
            );
        }
        V::ChronoDate(Some(d)) => write!(out, "\"{}\"", d.format("%F")),
        V::String(Some(s)) => return text(&s, out),
        V::Bool(Some(b)) => write!(out, "{}", u8::from(b)),
        V::TinyInt(Some(n)) => write!(out, "{n}"),
        V::SmallInt(Some(n)) => write!(out, "{n}"),
        V::Int(Some(n)) => write!(out, "{n}"),
        V::BigInt(Some(n)) => write!(out, "{n}"),
        V::Double(Some(x)) => return serde_json::to_writer(out, &x).map_err(|e| e.to_string()),
        // Nested as it is: the upsert's `->>` gives its JSON text.
        V::Json(Some(j)) => return serde_json::to_writer(out, &j).map_err(|e| e.to_string()),
        other => {
            return Err(format!(
                "a value the SQLite upsert does not know: {other:?}"
            ));
        }
    };
    written.map_err(|e| e.to_string())
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the rest of the code needs of a kind, object-safe; implemented once
/// for every [`LogKind`].
trait KindOps: Send + Sync {
    fn name(&self) -> &'static str;
    fn field_names(&self) -> Vec<String>;
    fn parse_own(&self, own: Map<String, Value>) -> Result<Map<String, Value>, Rejection>;
    fn updatable(&self) -> bool;
    fn complete(
        &self,
        entry: Map<String, Value>,
        sent: &Map<String, Value>,
    ) -> Result<Box<dyn Entry>, Rejection>;
    fn columns(&self) -> Vec<(&'static str, ColumnType, bool)>;
    fn fetch<'a>(
        &'a self,
        db: &'a DatabaseTransaction,
        query: &'a SelectStatement,
    ) -> BoxFuture<'a, Result<Vec<Box<dyn Entry>>, DbErr>>;
    fn row_text(&self) -> Result<(RowFormat, [String; 2]), String>;
    fn upsert_sql(&self, backend: DbBackend, param: usize) -> Result<String, ApiError>;
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

    fn updatable(&self) -> bool {
        K::UPDATABLE
    }

    fn complete(
        &self,
        entry: Map<String, Value>,
        sent: &Map<String, Value>,
    ) -> Result<Box<dyn Entry>, Rejection> {
        let mut model: Model<K> = match parse_as(Value::Object(entry)) {
            Ok(m) => m,
            Err((path, message)) => {
                return Err(match message.strip_prefix("missing field `") {
                    Some(rest) => Rejection::invalid(format!(
                        "data.{}: required to create {} {}",
                        rest.trim_end_matches('`'),
                        if K::NAME.starts_with(['a', 'e', 'i', 'o', 'u']) {
                            "an"
                        } else {
                            "a"
                        },
                        K::NAME
                    )),
                    None => field_error(&path, &message),
                });
            }
        };
        K::settle(&mut model, sent)?;
        Ok(Box::new(model))
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
    ) -> BoxFuture<'a, Result<Vec<Box<dyn Entry>>, DbErr>> {
        Box::pin(async move {
            let stmt = db.get_database_backend().build(query);
            let models = K::Entity::find().from_raw_sql(stmt).all(db).await?;
            Ok(models
                .into_iter()
                .map(|m| Box::new(m) as Box<dyn Entry>)
                .collect())
        })
    }

    fn upsert_sql(&self, backend: DbBackend, param: usize) -> Result<String, ApiError> {
        if backend == DbBackend::Postgres {
            upsert_json_sql::<K::Entity>(param)
        } else {
            Ok(upsert_sqlite_sql::<K::Entity>())
        }
    }

    fn row_text(&self) -> Result<(RowFormat, [String; 2]), String> {
        let format = RowFormat::of::<K::Entity>()?;
        let sql = [DbBackend::Sqlite, DbBackend::Postgres].map(|b| format.sql(b));
        Ok((format, sql))
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
        assert_eq!(
            names,
            [
                "feed_log",
                "sleep_log",
                "nappy_log",
                "pumping_log",
                "growth_log",
                "medication_log",
                "temperature_log",
                "solids_log",
                "activity_log",
                "timer_event"
            ]
        );
        for k in KINDS {
            assert_eq!(Kind::parse(k.name()), Some(*k));
            assert!(!k.own_fields().is_empty());
        }
        assert!(
            Kind::names_for_message().ends_with("activity_log or timer_event"),
            "{}",
            Kind::names_for_message()
        );
        assert_eq!(Kind::parse("weather_log"), None);
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
            r.to_json()["isEstimated"],
            json!(false),
            "defaults are filled in"
        );
        assert_eq!(r.to_json()["endSide"], Value::Null);
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
