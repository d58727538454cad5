use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sleep_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub baby_id: Uuid,
    pub logged_by: String,
    pub started_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
    pub duration_minutes: Option<i32>,
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
