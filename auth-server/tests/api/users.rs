//! docs/spec/auth-server.md §8: users keyed by the normalised e-mail.

use chrono::Utc;
use shared::Email;

use crate::helpers::spawn_app;

#[tokio::test]
async fn email_normalisation_makes_case_variants_one_user() {
    let app = spawn_app().await;
    let db = &app.state.db;
    let a = Email::parse("Jane@Example.COM").unwrap();
    let b = Email::parse("jane@example.com").unwrap();
    let (first, created) =
        auth_server::store::users::insert_if_absent(db, &a, None, None, Utc::now())
            .await
            .unwrap();
    assert!(created);
    let (second, created) =
        auth_server::store::users::insert_if_absent(db, &b, None, None, Utc::now())
            .await
            .unwrap();
    assert!(!created);
    assert_eq!(first.id, second.id);
    assert_eq!(second.email.as_typed(), "Jane@Example.COM");
}

#[tokio::test]
async fn the_unique_index_refuses_a_duplicate_normalised_email() {
    use sea_orm::{ActiveValue::Set, EntityTrait};
    let app = spawn_app().await;
    app.create_user("dup@example.com").await;
    let row = auth_server::store::entity::users::ActiveModel {
        id: Set(uuid::Uuid::new_v4()),
        external_sub: Set(None),
        email: Set("DUP@example.com".into()),
        email_normalized: Set("dup@example.com".into()),
        is_active: Set(true),
        tokens_not_before: Set(None),
        created_by_client_id: Set(None),
        created_at: Set(Utc::now()),
        deleted_at: Set(None),
    };
    let err = auth_server::store::entity::users::Entity::insert(row)
        .exec(&app.state.db)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        ),
        "{err}"
    );
}
