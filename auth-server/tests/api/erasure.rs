//! docs/spec/auth-server.md §8: a deleted user leaves nothing personal behind. Proved by reading
//! every table of the database after the deletes (and, on SQLite, the bytes of its files), not
//! by looking where we expect the e-mail to be.

use reqwest::Method;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::{Value, json};

use crate::helpers::spawn_app_with;

const EMAIL: &str = "Erase.Me@Example.com";
const SUB: &str = "ext-sub-4242-personal";
const PROVISIONAL: &str = "provisional.person@example.com";

/// Every row of every table, as text, one string per table.
async fn every_table(url: &str) -> Vec<(String, String)> {
    let db = Database::connect(url).await.unwrap();
    let backend = db.get_database_backend();
    let list = match backend {
        DbBackend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
        _ => "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
    };
    let tables: Vec<String> = db
        .query_all_raw(Statement::from_string(backend, list))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect();
    assert!(tables.iter().any(|t| t == "users") && tables.iter().any(|t| t == "audit_events"));
    let mut out = Vec::new();
    for table in tables {
        let text = match backend {
            DbBackend::Sqlite => {
                let columns: Vec<String> = db
                    .query_all_raw(Statement::from_string(
                        backend,
                        format!("SELECT name FROM pragma_table_info('{table}')"),
                    ))
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.try_get_by_index::<String>(0).unwrap())
                    .collect();
                let row = columns
                    .iter()
                    .map(|c| format!("coalesce(CAST(\"{c}\" AS TEXT), '')"))
                    .collect::<Vec<_>>()
                    .join(" || '|' || ");
                // As bytes: a BLOB column (ids, encrypted keys) is not UTF-8.
                format!("SELECT CAST(group_concat({row}, '\n') AS BLOB) FROM \"{table}\"")
            }
            _ => format!("SELECT string_agg(t::text, '\n') FROM \"{table}\" t"),
        };
        let row = db
            .query_one_raw(Statement::from_string(backend, text))
            .await
            .unwrap();
        let rows = match (backend, row) {
            (_, None) => String::new(),
            (DbBackend::Sqlite, Some(r)) => r
                .try_get_by_index::<Option<Vec<u8>>>(0)
                .unwrap()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default(),
            (_, Some(r)) => r
                .try_get_by_index::<Option<String>>(0)
                .unwrap()
                .unwrap_or_default(),
        };
        out.push((table, rows));
    }
    out
}

fn personal(text: &str) -> Option<&'static str> {
    let lower = text.to_ascii_lowercase();
    [EMAIL, SUB, PROVISIONAL]
        .into_iter()
        .find(|p| lower.contains(&p.to_ascii_lowercase()))
}

#[tokio::test]
async fn a_deleted_user_leaves_nothing_personal_in_any_table_or_file() {
    let app = spawn_app_with(|c| c.allow_user_creation = true).await;
    let (_, key) = app.admin_key("ops").await;
    let c = app.create_client("rooms:list", &["example.com"]).await;

    // A user with a history: created, deactivated, reactivated, given a token.
    let created = app
        .admin(
            Method::POST,
            "/admin/v1/users",
            &key,
            json!({"email": EMAIL, "external_sub": SUB}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/admin/v1/users/{id}");
    for active in [false, true] {
        let r = app
            .admin(Method::PATCH, &path, &key, json!({"is_active": active}))
            .await;
        assert_eq!(r.status(), 200);
    }
    assert_eq!(app.token_basic(&c, EMAIL).await.status(), 200);
    // A provisional user, created by the token endpoint (and audited as such).
    assert_eq!(app.token_basic(&c, PROVISIONAL).await.status(), 200);
    let found = app
        .admin(
            Method::GET,
            &format!("/admin/v1/users?email={PROVISIONAL}"),
            &key,
            Value::Null,
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let provisional_id = found["items"][0]["id"].as_str().unwrap().to_owned();
    let trail = |rid: String| {
        let (app, key) = (&app, &key);
        async move {
            app.admin(
                Method::GET,
                &format!("/admin/v1/audit-events?resource=user&resource_id={rid}"),
                key,
                Value::Null,
            )
            .await
            .json::<Value>()
            .await
            .unwrap()["items"]
                .as_array()
                .unwrap()
                .clone()
        }
    };
    let before = trail(provisional_id.clone()).await;
    assert_eq!(before.len(), 1);
    assert_eq!(before[0]["actor"], format!("client:{}", c.client_id));
    assert_eq!(before[0]["changes"]["email"]["after"], PROVISIONAL);

    // Before the deletes the check sees them: it would catch a leak.
    let tables = every_table(&app.database_url).await;
    assert!(tables.iter().any(|(_, rows)| personal(rows) == Some(EMAIL)));

    for rid in [&id, &provisional_id] {
        let r = app
            .admin(
                Method::DELETE,
                &format!("/admin/v1/users/{rid}"),
                &key,
                Value::Null,
            )
            .await;
        assert_eq!(r.status(), 204);
    }

    for (table, rows) in every_table(&app.database_url).await {
        assert_eq!(
            personal(&rows),
            None,
            "table {table} still holds it:\n{rows}"
        );
    }
    // The trail keeps what happened and when, not to whom.
    let events = trail(id.clone()).await;
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "deactivate", "activate", "delete"]);
    assert_eq!(events[0]["changes"]["email"]["after"], "(erased)");
    assert_eq!(events[0]["changes"]["external_sub"]["after"], "(erased)");
    assert_eq!(events[3]["changes"]["email"]["before"], "(erased)");

    // On SQLite, not in the files either: the log is checkpointed, freed pages are zeroed.
    if let Some(path) = server_kit::db::sqlite_path(&app.database_url) {
        for file in [path.to_owned(), format!("{path}-wal")] {
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            assert_eq!(personal(&text), None, "{file} holds a copy");
        }
    }
}
