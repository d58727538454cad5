use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000002_create_babies::Babies;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BabyInvites::Table)
                    .col(uuid(BabyInvites::Id).primary_key())
                    .col(uuid(BabyInvites::BabyId))
                    .col(string_uniq(BabyInvites::TokenHash))
                    .col(string(BabyInvites::AccessLevel))
                    .col(timestamp_with_time_zone(BabyInvites::ExpiresAt))
                    .col(integer(BabyInvites::MaxUses))
                    .col(integer(BabyInvites::UsesCount).default(0))
                    .col(timestamp_with_time_zone_null(BabyInvites::RevokedAt))
                    .col(string(BabyInvites::CreatedBy))
                    .col(timestamp_with_time_zone(BabyInvites::CreatedAt))
                    .col(timestamp_with_time_zone(BabyInvites::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_baby_invites_baby")
                            .from(BabyInvites::Table, BabyInvites::BabyId)
                            .to(Babies::Table, Babies::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_baby_invites_baby")
                    .table(BabyInvites::Table)
                    .col(BabyInvites::BabyId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BabyInvites::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum BabyInvites {
    Table,
    Id,
    BabyId,
    TokenHash,
    AccessLevel,
    ExpiresAt,
    MaxUses,
    UsesCount,
    RevokedAt,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}
