//! sea-orm entities of the rooms database; never sent over the wire.

pub mod rooms {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "rooms")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        #[sea_orm(unique)]
        pub slug: String,
        pub name: String,
        pub access_level: String,
        pub configuration: String,
        #[sea_orm(unique)]
        pub pin_code: String,
        pub client_id: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(has_many = "super::room_accesses::Entity")]
        Accesses,
    }

    impl Related<super::room_accesses::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Accesses.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod room_accesses {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "room_accesses")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub room_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        pub role: String,
        /// The room's `client_id` and `created_at`, copied here so that one index
        /// (user_id, client_id, created_at, room_id) lists a viewer's rooms in order.
        pub client_id: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::rooms::Entity",
            from = "Column::RoomId",
            to = "super::rooms::Column::Id",
            on_delete = "Cascade"
        )]
        Room,
    }

    impl Related<super::rooms::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Room.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

/// How many rooms each (user, application) sees: a list's `count` without counting rows.
pub mod room_counts {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "room_counts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub client_id: String,
        pub rooms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
