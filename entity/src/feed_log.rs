use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "feed_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub baby_id: Uuid,
    pub logged_by: String,
    /// `breast` or `bottle`.
    pub method: String,
    pub started_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
    pub duration_minutes: Option<i32>,
    pub amount_ml: Option<i32>,
    pub is_estimated: bool,
    pub estimated_source: Option<String>,
    /// `left` or `right`.
    pub end_side: Option<String>,
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
