use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "nappy_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub baby_id: Uuid,
    pub logged_by: String,
    pub started_at: DateTimeUtc,
    /// `wee`, `poo`, `mixed`, `dry` or `clean` (the protocol's `type`).
    #[sea_orm(column_name = "type")]
    pub nappy_type: Option<String>,
    pub colour: Option<String>,
    pub consistency: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub notes: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub archived_at: Option<DateTimeUtc>,
    pub version: i64,
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
