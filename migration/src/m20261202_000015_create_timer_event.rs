use sea_orm_migration::{prelude::*, schema::*};

use crate::log_table;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "timer_event";

/// `timer_event`, with an index on the entry it acts on: a push that writes
/// or deletes an event reads all of that entry's events to fold them.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let own = vec![
            string(Alias::new("entry_entity")),
            uuid(Alias::new("entry_id")),
            string(Alias::new("action")),
            string_null(Alias::new("side")),
        ];
        log_table::create(manager, TABLE, own).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_timer_event_entry")
                    .table(Alias::new(TABLE))
                    .col(Alias::new("entry_id"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        log_table::drop(manager, TABLE).await
    }
}
