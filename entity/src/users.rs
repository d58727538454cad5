use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// The JWT `sub` claim.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::baby_access::Entity")]
    BabyAccess,
}

impl Related<super::baby_access::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::BabyAccess.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
