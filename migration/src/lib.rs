//! The babysync schema, as sea-orm-migration migrations that run on SQLite
//! and PostgreSQL (one, 000007, only changes PostgreSQL).

pub use sea_orm_migration::prelude::*;

pub mod log_table;
mod m20261121_000001_create_users;
mod m20261121_000002_create_babies;
mod m20261121_000003_create_baby_invites;
mod m20261121_000004_create_log_tables;
mod m20261121_000005_create_sync_clients;
mod m20261121_000006_create_server_settings;
mod m20261201_000007_drop_log_foreign_keys;
mod m20261202_000008_add_timer_fields;
mod m20261202_000009_create_pumping_log;
mod m20261202_000010_create_growth_log;
mod m20261202_000011_create_medication_log;
mod m20261202_000012_create_temperature_log;
mod m20261202_000013_create_solids_log;
mod m20261202_000014_create_activity_log;
mod m20261202_000015_create_timer_event;
mod m20261202_000016_index_log_started_at;
mod m20261202_000017_index_lasting_entries;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_users::Migration),
            Box::new(m20261121_000002_create_babies::Migration),
            Box::new(m20261121_000003_create_baby_invites::Migration),
            Box::new(m20261121_000004_create_log_tables::Migration),
            Box::new(m20261121_000005_create_sync_clients::Migration),
            Box::new(m20261121_000006_create_server_settings::Migration),
            Box::new(m20261201_000007_drop_log_foreign_keys::Migration),
            Box::new(m20261202_000008_add_timer_fields::Migration),
            Box::new(m20261202_000009_create_pumping_log::Migration),
            Box::new(m20261202_000010_create_growth_log::Migration),
            Box::new(m20261202_000011_create_medication_log::Migration),
            Box::new(m20261202_000012_create_temperature_log::Migration),
            Box::new(m20261202_000013_create_solids_log::Migration),
            Box::new(m20261202_000014_create_activity_log::Migration),
            Box::new(m20261202_000015_create_timer_event::Migration),
            Box::new(m20261202_000016_index_log_started_at::Migration),
            Box::new(m20261202_000017_index_lasting_entries::Migration),
        ]
    }
}
