use sea_orm_migration::{prelude::*, schema::*};

use crate::log_table;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "solids_log";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let own = vec![
            string(Alias::new("food")),
            string_null(Alias::new("reaction")),
            json_null(Alias::new("allergens")),
        ];
        log_table::create(manager, TABLE, own).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        log_table::drop(manager, TABLE).await
    }
}
