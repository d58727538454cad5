//! SeaORM entities for babysync, in the generated style: one module per table,
//! no hand-written logic beyond `ActiveModelBehavior`.

pub mod activity_log;
pub mod babies;
pub mod baby_access;
pub mod baby_invites;
pub mod enums;
pub mod feed_log;
pub mod growth_log;
pub mod medication_log;
pub mod nappy_log;
pub mod pumping_log;
pub mod server_settings;
pub mod sleep_log;
pub mod solids_log;
pub mod sync_clients;
pub mod temperature_log;
pub mod timer;
pub mod timer_event;
pub mod users;
pub mod wire;

pub mod prelude {
    pub use super::babies::Entity as Babies;
    pub use super::baby_access::Entity as BabyAccess;
    pub use super::baby_invites::Entity as BabyInvites;
    pub use super::feed_log::Entity as FeedLog;
    pub use super::nappy_log::Entity as NappyLog;
    pub use super::server_settings::Entity as ServerSettings;
    pub use super::sleep_log::Entity as SleepLog;
    pub use super::sync_clients::Entity as SyncClients;
    pub use super::users::Entity as Users;
}
