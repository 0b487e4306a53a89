//! Every statement both services run on their request paths, EXPLAINed as it ran (with its
//! bound values) on the test's database: none may scan a growing table end to end or sort rows
//! read from one (docs/spec/operations.md, "Query plans"). The statements are recorded from the
//! real servers while this test drives each hot path over HTTP, so a new query is checked
//! without being listed here.

use serde_json::{Value, json};
use server_kit::testing::{plan_problems, record_statements, recorded_statements};

use crate::helpers::RoomsRequests as _;
use crate::helpers::{Options, SHARING, spawn_stack_with};

/// Tables whose size grows with use. `signing_keys` (a few rows) and the migration table are
/// read whole by design.
const GROWING: &[&str] = &[
    "applications",
    "users",
    "revoked_tokens",
    "rooms",
    "room_accesses",
    "room_counts",
    "room_changes",
];

fn is_rooms_statement(sql: &str) -> bool {
    sql.contains("\"rooms\"")
        || sql.contains("\"room_accesses\"")
        || sql.contains("\"room_counts\"")
        || sql.contains("room_changes")
}

#[tokio::test]
async fn no_hot_path_statement_scans_a_growing_table() {
    let s = spawn_stack_with(Options {
        revocation_feed: true,
        ..Default::default()
    })
    .await;
    let app = s.client(SHARING, &["example.com"]).await;
    let introspector = s.client("tokens:introspect", &[]).await;
    s.user("jane@example.com").await;
    s.user("joe@example.com").await;
    record_statements();

    // auth-server: token, introspection, revocation, the feed (paged snapshot and delta), JWKS.
    let token = s.token(&app, "jane@example.com").await;
    let spare = s.token(&app, "jane@example.com").await;
    let post = |path: &str, c: &crate::helpers::Client, form: Vec<(&str, String)>| {
        s.client
            .post(format!("{}{path}", s.auth_url))
            .basic_auth(&c.client_id, Some(&c.secret))
            .form(&form)
            .send()
    };
    let r = post(
        "/oauth/introspect",
        &introspector,
        vec![("token", token.clone())],
    )
    .await
    .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["active"], true);
    let r = post("/oauth/revoke", &app, vec![("token", spare)])
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.poll_feed().await;
    s.clock.advance(chrono::TimeDelta::seconds(1));
    s.poll_feed().await;
    let jwks = s
        .client
        .get(format!("{}/.well-known/jwks.json", s.auth_url))
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), 200);

    // rooms-api: create, every kind of list page, retrieve, update, delete.
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            s.create_room(&token).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let first: Value = s.get(&token, "?page_size=1").await.json().await.unwrap();
    let next = first["next"].as_str().unwrap();
    let second: Value = s
        .get(&token, &next[next.find('?').unwrap()..])
        .await
        .json()
        .await
        .unwrap();
    let previous = second["previous"].as_str().unwrap();
    assert_eq!(
        s.get(&token, &previous[previous.find('?').unwrap()..])
            .await
            .status(),
        200
    );
    assert_eq!(s.get(&token, "?page=2&page_size=1").await.status(), 200);
    assert_eq!(s.get(&token, &format!("/{}", ids[0])).await.status(), 200);
    let patched = s
        .patch(
            &token,
            &format!("/{}", ids[0]),
            json!({"access_level": "restricted"}),
        )
        .await;
    assert_eq!(patched.status(), 200);
    assert_eq!(
        s.delete(&token, &format!("/{}", ids[1])).await.status(),
        204
    );
    // The slug lookup, and sharing: a grant (a new access, then a change), its revocation,
    // and user resolution at the auth-server.
    let slug = s.create_room(&token).await["slug"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.get(&token, &format!("?slug={slug}")).await.status(), 200);
    for (role, status) in [("member", 201), ("administrator", 200)] {
        let r = s
            .post(
                &token,
                &format!("/{}/grant-access/", ids[0]),
                Some(json!({"email": "joe@example.com", "role": role})),
            )
            .await;
        assert_eq!(r.status(), status);
    }
    assert_eq!(
        s.delete(&token, &format!("/{}/accesses/joe@example.com", ids[0]))
            .await
            .status(),
        204
    );

    let statements = recorded_statements();
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for stmt in &statements {
        let sql = stmt.sql.trim_start();
        let verb = sql
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        // Plain inserts have no plan to speak of; transaction control and pings neither.
        if !matches!(verb.as_str(), "SELECT" | "UPDATE" | "DELETE") || sql == "SELECT 1" {
            continue;
        }
        let db = if is_rooms_statement(sql) {
            &s.rooms.db
        } else {
            &s.auth.db
        };
        let problems = plan_problems(db, stmt, GROWING).await.unwrap();
        if !problems.is_empty() {
            failures.push(format!("{sql}\n    -> {}", problems.join("; ")));
        }
        checked.push(sql.to_owned());
    }
    assert!(
        failures.is_empty(),
        "full scans or sorts:\n{}",
        failures.join("\n")
    );
    // The check saw the statements that matter (it can't pass by seeing nothing).
    for needle in [
        "\"room_accesses\".\"created_at\"",
        "\"room_counts\"",
        "\"revoked_tokens\"",
        "\"users\"",
        "\"applications\"",
    ] {
        assert!(
            checked.iter().any(|sql| sql.contains(needle)),
            "no statement with {needle} was checked: {checked:#?}"
        );
    }
}
