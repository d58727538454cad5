use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "babies")]
pub struct Model {
    /// Chosen by the client.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub birth_date: Option<Date>,
    pub gender: Option<crate::enums::Gender>,
    /// Per-baby change counter: the last sync version handed out to any of
    /// this baby's log entries.
    pub change_counter: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub archived_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::baby_access::Entity")]
    BabyAccess,
    #[sea_orm(has_many = "super::baby_invites::Entity")]
    BabyInvites,
}

impl Related<super::baby_access::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::BabyAccess.def()
    }
}

impl Related<super::baby_invites::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::BabyInvites.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
