//! Drift check: on a freshly migrated database every entity's table has
//! exactly the columns, types and nullability the entity declares.

use std::collections::BTreeMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, IdenStatic, Iterable,
    Statement, sea_query::ColumnType,
};

use crate::{both, helpers::*};

/// The type name the database reports for a column of this SeaORM type.
fn expected_type(backend: DbBackend, t: &ColumnType) -> String {
    let pg = match t {
        ColumnType::String(_) => "character varying",
        ColumnType::Text => "text",
        ColumnType::Uuid => "uuid",
        ColumnType::Integer => "integer",
        ColumnType::BigInteger => "bigint",
        ColumnType::Boolean => "boolean",
        ColumnType::Date => "date",
        ColumnType::TimestampWithTimeZone => "timestamp with time zone",
        ColumnType::Double => "double precision",
        ColumnType::Json => "json",
        other => panic!("no expectation for {other:?}: extend the drift check"),
    };
    let sqlite = match t {
        ColumnType::String(_) => "varchar",
        ColumnType::Text => "text",
        ColumnType::Uuid => "uuid_text",
        ColumnType::Integer | ColumnType::BigInteger => "integer",
        ColumnType::Boolean => "boolean",
        ColumnType::Date => "date_text",
        ColumnType::TimestampWithTimeZone => "timestamp_with_timezone_text",
        ColumnType::Double => "double",
        ColumnType::Json => "json_text",
        other => panic!("no expectation for {other:?}: extend the drift check"),
    };
    match backend {
        DbBackend::Postgres => pg.to_owned(),
        _ => sqlite.to_owned(),
    }
}

/// column name -> (type, nullable), as the database has it.
async fn actual_columns(db: &DatabaseConnection, table: &str) -> BTreeMap<String, (String, bool)> {
    let backend = db.get_database_backend();
    let (sql, values) = match backend {
        DbBackend::Postgres => (
            "SELECT column_name AS name, data_type AS type, (is_nullable = 'YES') AS nullable \
             FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1",
            vec![table.into()],
        ),
        _ => (
            "SELECT name, lower(type) AS type, (\"notnull\" = 0 AND pk = 0) AS nullable FROM pragma_table_info(?)",
            vec![table.into()],
        ),
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let name: String = r.try_get("", "name").unwrap();
            let ty: String = r.try_get("", "type").unwrap();
            let nullable: bool = r.try_get("", "nullable").unwrap();
            (name, (ty, nullable))
        })
        .collect()
}

async fn check<E: EntityTrait>(db: &DatabaseConnection, problems: &mut Vec<String>) {
    let table = E::default().table_name().to_owned();
    let columns = E::Column::iter()
        .map(|c| {
            let def = c.def();
            (c.as_str(), def.get_column_type().clone(), def.is_null())
        })
        .collect();
    check_columns(db, &table, columns, problems).await;
}

/// Every column of `table`, as declared, against the migrated table.
async fn check_columns(
    db: &DatabaseConnection,
    table: &str,
    columns: Vec<(&str, ColumnType, bool)>,
    problems: &mut Vec<String>,
) {
    let backend = db.get_database_backend();
    let expected: BTreeMap<String, (String, bool)> = columns
        .into_iter()
        .map(|(name, ty, null)| (name.to_owned(), (expected_type(backend, &ty), null)))
        .collect();
    let actual = actual_columns(db, table).await;
    if actual.is_empty() {
        problems.push(format!("{table}: table missing"));
        return;
    }
    for (name, want) in &expected {
        match actual.get(name) {
            None => problems.push(format!("{table}.{name}: in the entity, not in the table")),
            Some(got) if got != want => problems.push(format!(
                "{table}.{name}: entity says {want:?}, table has {got:?}"
            )),
            _ => {}
        }
    }
    for name in actual.keys() {
        if !expected.contains_key(name) {
            problems.push(format!("{table}.{name}: in the table, not in the entity"));
        }
    }
}

async fn entities_match_migrated_tables(backend: Backend) {
    let app = spawn_app(backend).await;
    let db = app.db.primary();
    let mut problems = vec![];
    check::<entity::users::Entity>(db, &mut problems).await;
    check::<entity::babies::Entity>(db, &mut problems).await;
    check::<entity::baby_access::Entity>(db, &mut problems).await;
    check::<entity::baby_invites::Entity>(db, &mut problems).await;
    for kind in api::kinds::KINDS {
        check_columns(db, kind.name(), kind.columns(), &mut problems).await;
    }
    check::<entity::sync_clients::Entity>(db, &mut problems).await;
    check::<entity::server_settings::Entity>(db, &mut problems).await;
    assert!(
        problems.is_empty(),
        "entity/migration drift:\n{}",
        problems.join("\n")
    );

    // The sync index and the summaries' exist on every log table.
    for table in api::kinds::KINDS.iter().map(|k| k.name()) {
        let sql = match db.get_database_backend() {
            DbBackend::Postgres => {
                format!("SELECT indexname AS name FROM pg_indexes WHERE tablename = '{table}'")
            }
            _ => format!("SELECT name FROM pragma_index_list('{table}')"),
        };
        let names: Vec<String> = app
            .query(&sql)
            .await
            .iter()
            .map(|r| r.try_get("", "name").unwrap())
            .collect();
        for index in ["version", "started"] {
            assert!(
                names.contains(&format!("idx_{table}_baby_{index}")),
                "{table}: {names:?}"
            );
        }
    }
}

/// The check itself can fail: a column the entity lacks is reported.
async fn drift_check_detects_a_stray_column(backend: Backend) {
    let app = spawn_app(backend).await;
    app.db
        .execute_unprepared("ALTER TABLE users ADD COLUMN stray integer")
        .await
        .unwrap();
    let mut problems = vec![];
    check::<entity::users::Entity>(app.db.primary(), &mut problems).await;
    assert_eq!(
        problems,
        vec!["users.stray: in the table, not in the entity".to_owned()]
    );
}

both!(
    entities_match_migrated_tables,
    drift_check_detects_a_stray_column
);
