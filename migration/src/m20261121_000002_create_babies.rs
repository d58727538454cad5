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
                    .table(Babies::Table)
                    .col(uuid(Babies::Id).primary_key())
                    .col(string(Babies::Name))
                    .col(date_null(Babies::BirthDate))
                    .col(string_null(Babies::Gender))
                    .col(big_integer(Babies::ChangeCounter).default(0))
                    .col(timestamp_with_time_zone(Babies::CreatedAt))
                    .col(timestamp_with_time_zone(Babies::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Babies::ArchivedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BabyAccess::Table)
                    .col(uuid(BabyAccess::BabyId))
                    .col(string(BabyAccess::UserId))
                    .col(string(BabyAccess::AccessLevel))
                    .col(timestamp_with_time_zone(BabyAccess::CreatedAt))
                    .col(timestamp_with_time_zone(BabyAccess::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(BabyAccess::BabyId)
                            .col(BabyAccess::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_baby_access_baby")
                            .from(BabyAccess::Table, BabyAccess::BabyId)
                            .to(Babies::Table, Babies::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_baby_access_user")
                            .from(BabyAccess::Table, BabyAccess::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_baby_access_user")
                    .table(BabyAccess::Table)
                    .col(BabyAccess::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BabyAccess::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Babies::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Babies {
    Table,
    Id,
    Name,
    BirthDate,
    Gender,
    ChangeCounter,
    CreatedAt,
    UpdatedAt,
    ArchivedAt,
}

#[derive(DeriveIden)]
enum BabyAccess {
    Table,
    BabyId,
    UserId,
    AccessLevel,
    CreatedAt,
    UpdatedAt,
}
