use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000002_create_babies::Babies;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The columns every log table shares, around the kind's own ones.
fn log_table(table: Log, own: Vec<ColumnDef>) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(table)
        .col(uuid(Log::Id).primary_key())
        .col(uuid(Log::BabyId))
        .col(string(Log::LoggedBy));
    for mut c in own {
        t.col(&mut c);
    }
    t.col(timestamp_with_time_zone(Log::StartedAt))
        .col(text_null(Log::Notes))
        .col(timestamp_with_time_zone(Log::CreatedAt))
        .col(timestamp_with_time_zone(Log::UpdatedAt))
        .col(timestamp_with_time_zone_null(Log::ArchivedAt))
        .col(big_integer(Log::Version))
        .foreign_key(
            ForeignKey::create()
                .name(format!("fk_{}_baby", table.to_string()))
                .from(table, Log::BabyId)
                .to(Babies::Table, Babies::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

fn version_index(table: Log) -> IndexCreateStatement {
    Index::create()
        .name(format!("idx_{}_baby_version", table.to_string()))
        .table(table)
        .col(Log::BabyId)
        .col(Log::Version)
        .to_owned()
}

const TABLES: [Log; 3] = [Log::FeedLog, Log::SleepLog, Log::NappyLog];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let feed = vec![
            string(Log::Method),
            timestamp_with_time_zone_null(Log::EndedAt),
            integer_null(Log::DurationMinutes),
            integer_null(Log::AmountMl),
            boolean(Log::IsEstimated).default(false).to_owned(),
            string_null(Log::EstimatedSource),
            string_null(Log::EndSide),
        ];
        let sleep = vec![
            timestamp_with_time_zone_null(Log::EndedAt),
            integer_null(Log::DurationMinutes),
        ];
        let nappy = vec![
            string_null(Log::Type),
            string_null(Log::Colour),
            string_null(Log::Consistency),
        ];
        for (table, own) in TABLES.into_iter().zip([feed, sleep, nappy]) {
            manager.create_table(log_table(table, own)).await?;
            manager.create_index(version_index(table)).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in TABLES {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Log {
    FeedLog,
    SleepLog,
    NappyLog,
    Id,
    BabyId,
    LoggedBy,
    StartedAt,
    EndedAt,
    Method,
    DurationMinutes,
    AmountMl,
    IsEstimated,
    EstimatedSource,
    EndSide,
    Type,
    Colour,
    Consistency,
    Notes,
    CreatedAt,
    UpdatedAt,
    ArchivedAt,
    Version,
}
