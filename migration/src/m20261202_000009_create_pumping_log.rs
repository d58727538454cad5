use sea_orm_migration::{prelude::*, schema::*};

use crate::log_table;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "pumping_log";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut own = log_table::lasting_columns();
        own.extend([
            integer_null(Alias::new("left_ml")),
            integer_null(Alias::new("right_ml")),
            integer_null(Alias::new("total_ml")),
            string_null(Alias::new("start_side")),
        ]);
        own.extend(log_table::timer_columns());
        log_table::create(manager, TABLE, own).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        log_table::drop(manager, TABLE).await
    }
}
