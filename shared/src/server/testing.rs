//! Test support both services' black-box tests use: a fresh, empty database per test.

use sea_orm::{ConnectionTrait, Database, DbErr};

/// A new database URL: a SQLite file under `dir` named `name`, or — when `TEST_DATABASE_URL` is
/// set — a freshly created PostgreSQL database on that server.
pub async fn fresh_database_url(dir: &std::path::Path, name: &str) -> Result<String, DbErr> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let db_name = format!("t_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(&base).await?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{db_name}\""))
                .await?;
            let (prefix, query) = match base.split_once('?') {
                Some((p, q)) => (p.to_owned(), format!("?{q}")),
                None => (base.clone(), String::new()),
            };
            let root = prefix.rsplit_once('/').map_or(prefix.as_str(), |(r, _)| r);
            Ok(format!("{root}/{db_name}{query}"))
        }
        _ => Ok(format!("sqlite://{}/{name}.sqlite?mode=rwc", dir.display())),
    }
}
