use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The log tables' foreign keys to `babies`, on PostgreSQL.
///
/// Every write to a log table happens in a push that has already locked the
/// baby's row `FOR UPDATE` after checking the caller's access, and babies are
/// never deleted, so the key guarded nothing the push does not. It cost a
/// trigger and a `FOR KEY SHARE` lookup per inserted row, planned again for
/// every row under `plan_cache_mode = force_custom_plan`: about a third of
/// the database's time in a push (docs/PERFORMANCE.md). SQLite checks a key
/// in-process with one index probe and cannot drop a constraint without
/// rebuilding the table, so it keeps them.
const KEYS: [(&str, &str); 3] = [
    ("feed_log", "fk_feed_log_baby"),
    ("sleep_log", "fk_sleep_log_baby"),
    ("nappy_log", "fk_nappy_log_baby"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm_migration::sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (table, key) in KEYS {
            db.execute_unprepared(&format!(
                "ALTER TABLE \"{table}\" DROP CONSTRAINT IF EXISTS \"{key}\""
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm_migration::sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (table, key) in KEYS {
            db.execute_unprepared(&format!(
                "ALTER TABLE \"{table}\" ADD CONSTRAINT \"{key}\" FOREIGN KEY (baby_id) \
                 REFERENCES babies (id) ON DELETE CASCADE"
            ))
            .await?;
        }
        Ok(())
    }
}
