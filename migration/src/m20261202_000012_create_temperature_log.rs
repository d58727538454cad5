use sea_orm_migration::{prelude::*, schema::*};

use crate::log_table;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "temperature_log";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let own = vec![
            double(Alias::new("celsius")),
            string_null(Alias::new("site")),
        ];
        log_table::create(manager, TABLE, own).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        log_table::drop(manager, TABLE).await
    }
}
