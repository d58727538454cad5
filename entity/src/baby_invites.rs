use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "baby_invites")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub baby_id: Uuid,
    /// Hex SHA-256 of the invite token; the token itself is never stored.
    #[sea_orm(unique)]
    pub token_hash: String,
    pub access_level: crate::enums::AccessLevel,
    pub expires_at: DateTimeUtc,
    pub max_uses: i32,
    pub uses_count: i32,
    pub revoked_at: Option<DateTimeUtc>,
    /// User id of the owner who made the invite.
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::babies::Entity",
        from = "Column::BabyId",
        to = "super::babies::Column::Id",
        on_delete = "Cascade"
    )]
    Babies,
}

impl Related<super::babies::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Babies.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
