use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000002_create_babies::Babies;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The columns every log table shares, around the kind's own ones.
fn log_table(table: LogTable, own: Vec<ColumnDef>) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(table)
        .col(uuid(LogTable::Id).primary_key())
        .col(uuid(LogTable::BabyId))
        .col(string(LogTable::LoggedBy));
    for mut c in own {
        t.col(&mut c);
    }
    t.col(timestamp_with_time_zone(LogTable::StartedAt))
        .col(text_null(LogTable::Notes))
        .col(timestamp_with_time_zone(LogTable::CreatedAt))
        .col(timestamp_with_time_zone(LogTable::UpdatedAt))
        .col(timestamp_with_time_zone_null(LogTable::ArchivedAt))
        .col(big_integer(LogTable::Version))
        .foreign_key(
            ForeignKey::create()
                .name(format!("fk_{}_baby", table.to_string()))
                .from(table, LogTable::BabyId)
                .to(Babies::Table, Babies::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

fn version_index(table: LogTable) -> IndexCreateStatement {
    Index::create()
        .name(format!("idx_{}_baby_version", table.to_string()))
        .table(table)
        .col(LogTable::BabyId)
        .col(LogTable::Version)
        .to_owned()
}

const TABLES: [LogTable; 3] = [LogTable::FeedLog, LogTable::SleepLog, LogTable::NappyLog];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let feed = vec![
            string(LogTable::Method),
            timestamp_with_time_zone_null(LogTable::EndedAt),
            integer_null(LogTable::DurationMinutes),
            integer_null(LogTable::AmountMl),
            boolean(LogTable::IsEstimated).default(false).to_owned(),
            string_null(LogTable::EstimatedSource),
            string_null(LogTable::EndSide),
        ];
        let sleep = vec![
            timestamp_with_time_zone_null(LogTable::EndedAt),
            integer_null(LogTable::DurationMinutes),
        ];
        let nappy = vec![
            string_null(LogTable::Type),
            string_null(LogTable::Colour),
            string_null(LogTable::Consistency),
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
enum LogTable {
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
