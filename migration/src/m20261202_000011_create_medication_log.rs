use sea_orm_migration::{prelude::*, schema::*};

use crate::log_table;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "medication_log";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let own = vec![
            string(Alias::new("name")),
            double_null(Alias::new("dose")),
            string_null(Alias::new("dose_unit")),
            integer_null(Alias::new("min_interval_minutes")),
            integer_null(Alias::new("max_doses_per24h")),
        ];
        log_table::create(manager, TABLE, own).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        log_table::drop(manager, TABLE).await
    }
}
