use sea_orm_migration::prelude::*;

use crate::log_table;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The lasting kinds' partial indexes of timers in progress and of entries
/// longer than 24 hours (see `log_table::lasting_indexes`): a summary reads
/// the entries that start within its range (or up to 48 hours before it),
/// and finds through these the few that began earlier and still count in
/// it. Tables made with `log_table::create` have them already (on a new
/// database).
const TABLES: [&str; 4] = ["feed_log", "sleep_log", "pumping_log", "activity_log"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES {
            log_table::lasting_indexes(manager, table, true, true).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES {
            for suffix in ["in_progress", "long"] {
                manager
                    .drop_index(
                        Index::drop()
                            .name(format!("idx_{table}_baby_{suffix}"))
                            .table(Alias::new(table))
                            .to_owned(),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}
