use sea_orm_migration::{prelude::*, schema::*};

use crate::log_table;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "growth_log";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let own = vec![
            integer_null(Alias::new("weight_grams")),
            integer_null(Alias::new("length_mm")),
            integer_null(Alias::new("head_circumference_mm")),
        ];
        log_table::create(manager, TABLE, own).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        log_table::drop(manager, TABLE).await
    }
}
