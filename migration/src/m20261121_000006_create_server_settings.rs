use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Settings every replica shares, such as the key that signs pull cursors.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ServerSettings::Table)
                    .col(string(ServerSettings::Name).primary_key())
                    .col(string(ServerSettings::Value))
                    .col(timestamp_with_time_zone(ServerSettings::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ServerSettings::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ServerSettings {
    Table,
    Name,
    Value,
    CreatedAt,
}
