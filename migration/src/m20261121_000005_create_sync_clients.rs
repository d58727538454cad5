use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SyncClients::Table)
                    .col(uuid(SyncClients::ClientId).primary_key())
                    .col(string(SyncClients::UserId))
                    .col(big_integer(SyncClients::LastMutationId).default(0))
                    .col(timestamp_with_time_zone(SyncClients::CreatedAt))
                    .col(timestamp_with_time_zone(SyncClients::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sync_clients_user")
                            .from(SyncClients::Table, SyncClients::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SyncClients::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum SyncClients {
    Table,
    ClientId,
    UserId,
    LastMutationId,
    CreatedAt,
    UpdatedAt,
}
