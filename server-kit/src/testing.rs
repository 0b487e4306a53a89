//! Test support both services' black-box tests use: a fresh, empty database per test.

use sea_orm::{ConnectionTrait, Database, DbErr};

/// A new database URL: a SQLite file under `dir` named `name`, or — when `TEST_DATABASE_URL` is
/// set — a freshly created PostgreSQL database on that server.
pub async fn fresh_database_url(dir: &std::path::Path, name: &str) -> Result<String, DbErr> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            // The run's prefix (scripts/test) lets its cleanup drop only this run's databases.
            let prefix = std::env::var("TEST_DATABASE_PREFIX").unwrap_or_default();
            let db_name = format!("t_{prefix}{}", uuid::Uuid::new_v4().simple());
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

/// The database the test run is on: `postgres` when `TEST_DATABASE_URL` is set, else `sqlite`.
pub fn backend() -> &'static str {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(v) if !v.is_empty() => "postgres",
        _ => "sqlite",
    }
}

/// For a test that means something on one database only; its name ends in `_on_<backend>`, and
/// `scripts/test` (through `.config/nextest.toml`'s profiles) runs it only in that database's
/// pass, so nextest counts it as skipped in the other. Run on the other database by hand, it
/// fails saying so: it never passes without having run.
pub fn require_backend(wanted: &str) {
    let on = backend();
    assert_eq!(
        on, wanted,
        "this test runs on {wanted} only (on {on} it is filtered out by scripts/test's nextest profile)"
    );
}

/// Compares a generated file with its committed copy, rewriting it when `UPDATE_OPENAPI=1`, and
/// fails naming the first differing line (not the whole file).
pub fn check_committed(path: &std::path::Path, rendered: &str) -> Result<(), String> {
    if std::env::var("UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(path, rendered)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let committed = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "{} missing ({e}); run the tests with UPDATE_OPENAPI=1",
            path.display()
        )
    })?;
    if committed == rendered {
        return Ok(());
    }
    let line = committed
        .lines()
        .zip(rendered.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| committed.lines().count().min(rendered.lines().count()));
    Err(format!(
        "{} is stale from line {}: rerun the tests with UPDATE_OPENAPI=1",
        path.display(),
        line + 1
    ))
}

/// Holds SQLite's write lock on the database at `url` (as another process would) until the
/// returned transaction is dropped or rolled back: writes behind it meet the busy timeout.
pub async fn hold_sqlite_write_lock(url: &str) -> Result<sea_orm::DatabaseTransaction, DbErr> {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let db = sea_orm::Database::connect(url).await?;
    let txn = db.begin().await?;
    txn.execute_unprepared("CREATE TABLE IF NOT EXISTS lock_holder (x INTEGER)")
        .await?;
    Ok(txn)
}

/// Statements the servers of this test process ran since [`record_statements`], kept with their
/// bound values so they can be `EXPLAIN`ed exactly as they ran. nextest runs each test in a
/// process of its own, so what is recorded is that test's.
static RECORDED: std::sync::Mutex<Option<Vec<sea_orm::Statement>>> = std::sync::Mutex::new(None);

/// Wired into every connection `db::connect` opens in a test build.
pub(crate) fn observe(db: &mut sea_orm::DatabaseConnection) {
    db.set_metric_callback(|info| {
        if let Ok(mut r) = RECORDED.lock()
            && let Some(v) = r.as_mut()
        {
            v.push(info.statement.clone());
        }
    });
}

/// Starts recording (dropping what was recorded before).
pub fn record_statements() {
    if let Ok(mut r) = RECORDED.lock() {
        *r = Some(Vec::new());
    }
}

/// Stops recording and returns the statements, each distinct SQL text once.
pub fn recorded_statements() -> Vec<sea_orm::Statement> {
    let all = RECORDED
        .lock()
        .ok()
        .and_then(|mut r| r.take())
        .unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    all.into_iter()
        .filter(|s| seen.insert(s.sql.clone()))
        .collect()
}

/// What is wrong with the plan of `stmt` on `db`: each full scan of one of `growing` (a
/// table or an index walked end to end), and each sort of rows read from one. Empty when
/// every growing table is reached through an index range and rows come out in index order.
///
/// SQLite: `EXPLAIN QUERY PLAN` ("SCAN t" is a full scan; "SEARCH t USING INDEX" a range;
/// "USE TEMP B-TREE" a sort). PostgreSQL: `EXPLAIN (FORMAT JSON)` with sequential scans and
/// sorts priced out, so that the planner, which prefers a scan on a small test table, picks an
/// index whenever one fits; a `Seq Scan`, a `Sort`, or an index scan with no `Index Cond` left
/// in the plan has no index to use. SQLite's verdict is the exact one (it says SEARCH only when
/// an index's leading columns are bound); PostgreSQL may bound a scan by a later column of an
/// index, which this can't tell from a range.
pub async fn plan_problems(
    db: &sea_orm::DatabaseConnection,
    stmt: &sea_orm::Statement,
    growing: &[&str],
) -> Result<Vec<String>, DbErr> {
    use sea_orm::{DbBackend, Statement, TransactionTrait};
    let values = stmt.values.clone();
    let mut problems = Vec::new();
    match db.get_database_backend() {
        DbBackend::Sqlite => {
            let explain = Statement {
                sql: format!("EXPLAIN QUERY PLAN {}", stmt.sql),
                values,
                db_backend: DbBackend::Sqlite,
            };
            let rows = db.query_all_raw(explain).await?;
            let mut sorted = false;
            let mut touches_growing = false;
            for row in rows {
                let detail: String = row.try_get("", "detail")?;
                let words: Vec<&str> = detail.split_whitespace().collect();
                if let ["SCAN", table, ..] | ["SEARCH", table, ..] = words.as_slice()
                    && growing.contains(table)
                {
                    touches_growing = true;
                    if words[0] == "SCAN" {
                        problems.push(detail.clone());
                    }
                }
                if detail.starts_with("USE TEMP B-TREE") {
                    sorted = true;
                    problems.push(detail.clone());
                }
            }
            if sorted && !touches_growing {
                problems.retain(|p| !p.starts_with("USE TEMP B-TREE"));
            }
        }
        DbBackend::Postgres => {
            let txn = db.begin().await?;
            txn.execute_unprepared("SET LOCAL enable_seqscan = off")
                .await?;
            txn.execute_unprepared("SET LOCAL enable_sort = off")
                .await?;
            let explain = Statement {
                sql: format!("EXPLAIN (FORMAT JSON) {}", stmt.sql),
                values,
                db_backend: DbBackend::Postgres,
            };
            let rows = txn.query_all_raw(explain).await?;
            txn.rollback().await?;
            for row in rows {
                let plan: serde_json::Value = row.try_get("", "QUERY PLAN")?;
                let mut nodes = Vec::new();
                collect_nodes(&plan, &mut nodes);
                let touches_growing = nodes.iter().any(|n| {
                    n.get("Relation Name")
                        .and_then(|r| r.as_str())
                        .is_some_and(|r| growing.contains(&r))
                });
                for n in &nodes {
                    let kind = n.get("Node Type").and_then(|t| t.as_str()).unwrap_or("");
                    let relation = n.get("Relation Name").and_then(|r| r.as_str());
                    let on_growing = relation.is_some_and(|r| growing.contains(&r));
                    if kind == "Seq Scan" && on_growing {
                        problems.push(format!("Seq Scan on {}", relation.unwrap_or("?")));
                    }
                    // An index walked end to end (no condition bounds it) is a full scan too.
                    if matches!(kind, "Index Scan" | "Index Only Scan")
                        && on_growing
                        && n.get("Index Cond").is_none()
                    {
                        problems.push(format!(
                            "{kind} of all of {} on {}",
                            n.get("Index Name").and_then(|i| i.as_str()).unwrap_or("?"),
                            relation.unwrap_or("?")
                        ));
                    }
                    if kind == "Sort" && touches_growing {
                        problems.push(format!("Sort by {}", n["Sort Key"]));
                    }
                }
            }
        }
        other => problems.push(format!("no plan check for {other:?}")),
    }
    Ok(problems)
}

fn collect_nodes<'a>(
    v: &'a serde_json::Value,
    out: &mut Vec<&'a serde_json::Map<String, serde_json::Value>>,
) {
    match v {
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_nodes(i, out)),
        serde_json::Value::Object(map) => {
            if map.contains_key("Node Type") {
                out.push(map);
            }
            map.values().for_each(|i| collect_nodes(i, out));
        }
        _ => {}
    }
}
