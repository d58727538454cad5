use sea_orm_migration::prelude::*;

use crate::log_table;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Every log table's `(baby_id, started_at)` index of entries not archived
/// (see `log_table::started_index`): a summary reads a
/// baby's entries by their time (a range of dates, the latest one), at a
/// cost that grows with what it reads, not with the baby's history. Tables
/// made with `log_table::create` have it already (on a new database).
const TABLES: [&str; 10] = [
    "feed_log",
    "sleep_log",
    "nappy_log",
    "pumping_log",
    "growth_log",
    "medication_log",
    "temperature_log",
    "solids_log",
    "activity_log",
    "timer_event",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES {
            log_table::started_index(manager, table).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES {
            manager
                .drop_index(
                    Index::drop()
                        .name(format!("idx_{table}_baby_started"))
                        .table(Alias::new(table))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
