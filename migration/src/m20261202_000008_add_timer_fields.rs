use sea_orm_migration::{prelude::*, schema::*};

use crate::log_table;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Feeds and sleeps become timers when created running: `timer_state` and
/// `segments` on both, and a feed's `start_side`. One column per statement
/// (SQLite's `ALTER TABLE` adds one at a time).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, mut columns) in [
            ("feed_log", vec![string_null(Alias::new("start_side"))]),
            ("sleep_log", vec![]),
        ] {
            columns.extend(log_table::timer_columns());
            for mut c in columns {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Alias::new(table))
                            .add_column(&mut c)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, columns) in [
            ("feed_log", &["start_side", "timer_state", "segments"][..]),
            ("sleep_log", &["timer_state", "segments"][..]),
        ] {
            for c in columns {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Alias::new(table))
                            .drop_column(Alias::new(*c))
                            .to_owned(),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}
