//! What every log table shares: the common columns around the kind's own,
//! the index pull walks (`baby_id`, `version`), the one summaries read by
//! (`baby_id`, `started_at`), and, on SQLite only, the key to `babies`
//! (PostgreSQL has none: see 000007).

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

/// Creates the log table `name` with the kind's `own` columns.
pub async fn create(
    manager: &SchemaManager<'_>,
    name: &str,
    own: Vec<ColumnDef>,
) -> Result<(), DbErr> {
    let owns = |column: &str| own.iter().any(|c| c.get_column_name() == column);
    let (timer, lasting) = (owns("timer_state"), owns("ended_at"));
    let table = Alias::new(name);
    let mut t = Table::create();
    t.table(table.clone())
        .col(uuid(Alias::new("id")).primary_key())
        .col(uuid(Alias::new("baby_id")))
        .col(string(Alias::new("logged_by")));
    for mut c in own {
        t.col(&mut c);
    }
    t.col(timestamp_with_time_zone(Alias::new("started_at")))
        .col(text_null(Alias::new("notes")))
        .col(timestamp_with_time_zone(Alias::new("created_at")))
        .col(timestamp_with_time_zone(Alias::new("updated_at")))
        .col(timestamp_with_time_zone_null(Alias::new("archived_at")))
        .col(big_integer(Alias::new("version")));
    if manager.get_database_backend() == DbBackend::Sqlite {
        t.foreign_key(
            ForeignKey::create()
                .name(format!("fk_{name}_baby"))
                .from(table.clone(), Alias::new("baby_id"))
                .to(Alias::new("babies"), Alias::new("id"))
                .on_delete(ForeignKeyAction::Cascade),
        );
    }
    manager.create_table(t.to_owned()).await?;
    manager
        .create_index(
            Index::create()
                .name(format!("idx_{name}_baby_version"))
                .table(table)
                .col(Alias::new("baby_id"))
                .col(Alias::new("version"))
                .to_owned(),
        )
        .await?;
    started_index(manager, name).await?;
    lasting_indexes(manager, name, timer, lasting).await
}

/// Creates the `(baby_id, started_at)` index of the log table `name`, of
/// the entries that are not archived (what summaries and CSV exports read),
/// unless it exists. Partial: a pull's read of a baby's versions cannot
/// take it for its `(baby_id, version)` index on tables never analyzed.
pub async fn started_index(manager: &SchemaManager<'_>, name: &str) -> Result<(), DbErr> {
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "CREATE INDEX IF NOT EXISTS \"idx_{name}_baby_started\" ON \"{name}\" \
             (\"baby_id\", \"started_at\") WHERE \"archived_at\" IS NULL"
        ))
        .await
        .map(|_| ())
}

/// The condition of a timer in progress, as SQL. A partial index's
/// condition is matched by its text: the summary's read writes it exactly
/// so (with literals, not parameters).
pub const IN_PROGRESS: &str = "\"timer_state\" IN ('running', 'paused')";

/// The condition of an entry that lasts more than 24 hours from its start
/// to its `ended_at`, as SQL for `backend` (see [`IN_PROGRESS`]).
pub fn long_sql(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => "\"ended_at\" - \"started_at\" > interval '24 hours'",
        _ => "julianday(\"ended_at\") - julianday(\"started_at\") > 1",
    }
}

/// The indexes of a summary's reads of a lasting kind beyond its range
/// (unless they exist): `(baby_id, started_at)` of the timers in progress
/// (`timer`), and `(baby_id, ended_at)` of the entries that last more than
/// 24 hours (`lasting`). Both cover only entries that are not archived and
/// hold few rows: a summary finds the entries that began long before its
/// range and end in it, or are still running, without walking the baby's
/// history.
pub async fn lasting_indexes(
    manager: &SchemaManager<'_>,
    name: &str,
    timer: bool,
    lasting: bool,
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    if timer {
        db.execute_unprepared(&format!(
            "CREATE INDEX IF NOT EXISTS \"idx_{name}_baby_in_progress\" ON \"{name}\" \
             (\"baby_id\", \"started_at\") WHERE \"archived_at\" IS NULL AND {IN_PROGRESS}"
        ))
        .await?;
    }
    if lasting {
        db.execute_unprepared(&format!(
            "CREATE INDEX IF NOT EXISTS \"idx_{name}_baby_long\" ON \"{name}\" \
             (\"baby_id\", \"ended_at\") WHERE \"archived_at\" IS NULL AND {}",
            long_sql(manager.get_database_backend())
        ))
        .await?;
    }
    Ok(())
}

/// Drops the log table `name`.
pub async fn drop(manager: &SchemaManager<'_>, name: &str) -> Result<(), DbErr> {
    manager
        .drop_table(Table::drop().table(Alias::new(name)).to_owned())
        .await
}

/// The timer fields (PROTOCOL.md, "Timers shared by caregivers").
pub fn timer_columns() -> Vec<ColumnDef> {
    vec![
        string_null(Alias::new("timer_state")),
        json_null(Alias::new("segments")),
    ]
}

/// `ended_at` and `duration_minutes`, for kinds that last.
pub fn lasting_columns() -> Vec<ColumnDef> {
    vec![
        timestamp_with_time_zone_null(Alias::new("ended_at")),
        integer_null(Alias::new("duration_minutes")),
    ]
}
