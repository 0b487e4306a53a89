//! docs/spec/admin-api.md: every admin operation over HTTP on the admin listener, its audit
//! event, its 401 without a key, its problem details; rotation with a grace; per-application
//! token lifetimes; the CLI and the API seeing each other's changes.

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{Value, json};
use shared::Clock;

use crate::cli::live;
use crate::helpers::{TestApp, TestClient, assert_problem as problem, spawn_app, spawn_app_with};

/// The audit events of one resource, oldest first.
async fn events(app: &TestApp, key: &str, resource: &str, id: &str) -> Vec<Value> {
    let path = format!("/admin/v1/audit-events?resource={resource}&resource_id={id}&limit=200");
    let page = app
        .admin_as(key)
        .expect(Method::GET, &path, Value::Null, 200)
        .await;
    page["items"].as_array().unwrap().clone()
}

fn client_of(app: &Value) -> TestClient {
    TestClient {
        client_id: app["client_id"].as_str().unwrap().to_owned(),
        secret: app["client_secret"].as_str().unwrap().to_owned(),
    }
}

async fn create_app(app: &TestApp, key: &str, body: Value) -> Value {
    app.admin_as(key)
        .expect(Method::POST, "/admin/v1/applications", body, 201)
        .await
}

#[tokio::test]
async fn every_operation_needs_a_valid_admin_key() {
    // 68 refusals from one source: past the default limits, which have their own test.
    let app = spawn_app_with(|c| c.failure_limit = 1000).await;
    let (id, key) = app.admin_key("ops").await;
    let (_, revoked) = app.admin_key("old").await;
    // Revoke "old" through the API.
    let keys = app
        .admin_as(&key)
        .expect(Method::GET, "/admin/v1/admin-keys", Value::Null, 200)
        .await;
    let old_id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "old")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.admin_as(&key)
        .expect(
            Method::DELETE,
            &format!("/admin/v1/admin-keys/{old_id}"),
            Value::Null,
            204,
        )
        .await;
    let uuid = uuid::Uuid::new_v4();
    let ops: Vec<(Method, String, Value)> = vec![
        (Method::GET, "/admin/v1/applications".into(), Value::Null),
        (
            Method::POST,
            "/admin/v1/applications".into(),
            json!({"name": "x"}),
        ),
        (
            Method::GET,
            "/admin/v1/applications/abc".into(),
            Value::Null,
        ),
        (
            Method::PATCH,
            "/admin/v1/applications/abc".into(),
            json!({}),
        ),
        (
            Method::POST,
            "/admin/v1/applications/abc/rotate-secret".into(),
            json!({}),
        ),
        (
            Method::DELETE,
            "/admin/v1/applications/abc".into(),
            Value::Null,
        ),
        (Method::GET, "/admin/v1/users".into(), Value::Null),
        (
            Method::POST,
            "/admin/v1/users".into(),
            json!({"email": "a@example.com"}),
        ),
        (Method::GET, format!("/admin/v1/users/{uuid}"), Value::Null),
        (
            Method::PATCH,
            format!("/admin/v1/users/{uuid}"),
            json!({"is_active": false}),
        ),
        (
            Method::DELETE,
            format!("/admin/v1/users/{uuid}"),
            Value::Null,
        ),
        (Method::GET, "/admin/v1/signing-keys".into(), Value::Null),
        (
            Method::POST,
            "/admin/v1/signing-keys/rotate".into(),
            json!({}),
        ),
        (
            Method::POST,
            "/admin/v1/signing-keys/k/retire".into(),
            Value::Null,
        ),
        (Method::GET, "/admin/v1/admin-keys".into(), Value::Null),
        (
            Method::DELETE,
            format!("/admin/v1/admin-keys/{id}"),
            Value::Null,
        ),
        (Method::GET, "/admin/v1/audit-events".into(), Value::Null),
    ];
    // The last character changed (to one it is not: keys are random, and 1 in 62 ends in x).
    let last = if key.ends_with('x') { 'y' } else { 'x' };
    let wrong = format!("{}{last}", &key[..key.len() - 1]);
    assert_ne!(wrong, key);
    for (method, path, body) in &ops {
        for bad in ["", "not-a-key", wrong.as_str(), revoked.as_str()] {
            let r = app.admin(method.clone(), path, bad, body.clone()).await;
            let www = r
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = problem(r, 401).await;
            assert_eq!(body["detail"], "A valid admin key is required");
            assert!(
                www.is_some_and(|w| w.starts_with("Bearer")),
                "{method} {path}: a Bearer challenge"
            );
        }
    }
    // Nothing was changed by any of them.
    let trail = app
        .admin_as(&key)
        .expect(Method::GET, "/admin/v1/audit-events", Value::Null, 200)
        .await;
    let actions: Vec<(&str, &str)> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [("cli", "create"), ("cli", "create"), ("ops", "revoke")]
    );
}

#[tokio::test]
async fn wrong_admin_keys_are_limited_and_the_right_one_still_works() {
    let app = spawn_app_with(|c| c.failure_limit = 3).await;
    let (_, key) = app.admin_key("ops").await;
    // The last character changed (to one it is not: keys are random, and 1 in 62 ends in x).
    let last = if key.ends_with('x') { 'y' } else { 'x' };
    let wrong = format!("{}{last}", &key[..key.len() - 1]);
    assert_ne!(wrong, key);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = app
            .admin(Method::GET, "/admin/v1/applications", &wrong, Value::Null)
            .await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
            problem(r, 429).await;
        }
    }
    assert_eq!(&statuses[..3], [401, 401, 401]);
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    let r = app
        .admin(Method::GET, "/admin/v1/applications", &key, Value::Null)
        .await;
    assert_eq!(r.status(), 200, "a correct key is never refused");
}

/// One source trying a different key id each time meets its own ceiling (10× the limit per
/// source across key ids), while another source is not limited by it and the correct key still
/// works from the sprayer's own address.
#[tokio::test]
async fn one_source_spraying_admin_key_ids_meets_its_own_ceiling() {
    let app = spawn_app_with(|c| c.failure_limit = 2).await;
    let (_, key) = app.admin_key("ops").await;
    let from = |last: u8| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, last]))
            .build()
            .unwrap()
    };
    let get = |client: reqwest::Client, key: String| {
        let url = app.admin_url("/admin/v1/applications");
        async move {
            client
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let made_up = |n: usize| format!("adm_{n:016}_not-the-secret");
    let sprayer = from(1);
    let mut statuses = Vec::new();
    for n in 0..21 {
        statuses.push(get(sprayer.clone(), made_up(n)).await);
    }
    // Each key id is tried once (under its own limit of 2): only the source's ceiling, 20, stops it.
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(statuses[20], 429, "{statuses:?}");
    assert_eq!(get(sprayer.clone(), made_up(99)).await, 429);
    assert_eq!(
        get(from(2), made_up(100)).await,
        401,
        "another source has its own count"
    );
    assert_eq!(
        get(sprayer, key).await,
        200,
        "a correct key is never refused"
    );
}

#[tokio::test]
async fn applications_over_http_with_their_audit_trail() {
    let app = spawn_app().await;
    let (_, key) = app.admin_key("onboarding").await;
    let user = "ada@example.com";
    app.create_user(user).await;
    let created = create_app(
        &app,
        &key,
        json!({"name": "Calendar", "scopes": ["rooms:create", "rooms:list"], "domains": ["example.com"]}),
    )
    .await;
    assert_eq!(created["name"], "Calendar");
    assert_eq!(created["scopes"], json!(["rooms:create", "rooms:list"]));
    assert_eq!(created["effective_token_ttl_seconds"], 3600);
    assert_eq!(created["secrets"], json!([{"which": "current"}]));
    let client = client_of(&created);
    let cid = client.client_id.clone();
    assert_eq!(app.token_basic(&client, user).await.status(), 200);

    // Show never carries the secret.
    let shown = app
        .admin_as(&key)
        .expect(
            Method::GET,
            &format!("/admin/v1/applications/{cid}"),
            Value::Null,
            200,
        )
        .await;
    assert!(shown.get("client_secret").is_none());
    assert_eq!(shown["id"], created["id"]);

    // Update: replace the scopes (one removed), rename, shorter tokens.
    let token_before = app.access_token(&client, user).await;
    let updated = app
        .admin_as(&key)
        .expect(
            Method::PATCH,
            &format!("/admin/v1/applications/{cid}"),
            json!({"name": "Calendar 2", "scopes": ["rooms:create"], "token_ttl_seconds": 600}),
            200,
        )
        .await;
    assert_eq!(updated["name"], "Calendar 2");
    assert_eq!(updated["scopes"], json!(["rooms:create"]));
    assert_eq!(updated["token_ttl_seconds"], 600);
    app.clock.advance(TimeDelta::seconds(1));
    let caller = app.create_client("tokens:introspect", &[]).await;
    assert_eq!(
        app.introspection(&caller, &token_before).await["active"],
        false,
        "a removed scope kills earlier tokens"
    );
    let r = app.token_basic(&client, user).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "rooms:create");

    // Deactivate, reactivate.
    for (active, status) in [(false, 401), (true, 200)] {
        app.admin_as(&key)
            .expect(
                Method::PATCH,
                &format!("/admin/v1/applications/{cid}"),
                json!({"is_active": active}),
                200,
            )
            .await;
        assert_eq!(app.token_basic(&client, user).await.status(), status);
    }

    // Rotate without a grace: the old secret is dead at once.
    let rotated = app
        .admin_as(&key)
        .expect(
            Method::POST,
            &format!("/admin/v1/applications/{cid}/rotate-secret"),
            json!({}),
            200,
        )
        .await;
    let new_client = client_of(&rotated);
    assert_ne!(new_client.secret, client.secret);
    assert_eq!(app.token_basic(&client, user).await.status(), 401);
    assert_eq!(app.token_basic(&new_client, user).await.status(), 200);

    // Delete: 204, then 404 everywhere.
    app.admin_as(&key)
        .expect(
            Method::DELETE,
            &format!("/admin/v1/applications/{cid}"),
            Value::Null,
            204,
        )
        .await;
    app.admin_as(&key)
        .problem(
            Method::GET,
            &format!("/admin/v1/applications/{cid}"),
            Value::Null,
            404,
        )
        .await;
    assert_eq!(app.token_basic(&new_client, user).await.status(), 401);

    // The trail: every change, by this key, with before/after, never a secret.
    let trail = events(&app, &key, "application", &cid).await;
    let actions: Vec<&str> = trail
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "create",
            "update",
            "update",
            "update",
            "rotate_secret",
            "delete"
        ]
    );
    assert!(trail.iter().all(|e| e["actor"] == "onboarding"));
    assert_eq!(
        trail[1]["changes"]["name"],
        json!({"before": "Calendar", "after": "Calendar 2"})
    );
    assert_eq!(
        trail[1]["changes"]["scopes"]["after"],
        json!(["rooms:create"])
    );
    assert_eq!(trail[2]["changes"]["is_active"]["after"], false);
    let all = serde_json::to_string(&trail).unwrap();
    for secret in [&client.secret, &new_client.secret] {
        assert!(!all.contains(secret.as_str()), "a secret in the trail");
    }
    assert!(!all.contains("argon2"), "a hash in the trail");
}

#[tokio::test]
async fn application_lists_page_by_cursor_and_search_by_name() {
    let app = spawn_app().await;
    let (_, key) = app.admin_key("ops").await;
    for name in [
        "Alpha calendar",
        "Beta LMS",
        "gamma Calendar",
        "Delta webinar",
        "epsilon",
    ] {
        create_app(&app, &key, json!({"name": name})).await;
        app.clock.advance(TimeDelta::milliseconds(5));
    }
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/v1/applications?limit=2&cursor={c}"),
            None => "/admin/v1/applications?limit=2".into(),
        };
        let page = app
            .admin_as(&key)
            .expect(Method::GET, &path, Value::Null, 200)
            .await;
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            names.push(item["name"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        [
            "Alpha calendar",
            "Beta LMS",
            "gamma Calendar",
            "Delta webinar",
            "epsilon"
        ]
    );
    let found = app
        .admin_as(&key)
        .expect(
            Method::GET,
            "/admin/v1/applications?name=CALENDAR",
            Value::Null,
            200,
        )
        .await;
    let found: Vec<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["Alpha calendar", "gamma Calendar"]);
    // LIKE's wildcards are matched literally.
    let none = app
        .admin_as(&key)
        .expect(
            Method::GET,
            "/admin/v1/applications?name=%25",
            Value::Null,
            200,
        )
        .await;
    assert_eq!(none["items"], json!([]));
    // The longest name (255 characters, multi-byte counted as one) is found by itself, and a
    // search one character longer, which no name can contain, finds nothing.
    let longest = "é".repeat(255);
    create_app(&app, &key, json!({"name": longest})).await;
    let search = |needle: &str| {
        let q = serde_urlencoded::to_string([("name", needle)]).unwrap();
        format!("/admin/v1/applications?{q}")
    };
    let found = app
        .admin_as(&key)
        .expect(Method::GET, &search(&longest), Value::Null, 200)
        .await;
    assert_eq!(found["items"][0]["name"], longest.as_str(), "{found}");
    assert_eq!(found["items"].as_array().map(Vec::len), Some(1));
    let longer = app
        .admin_as(&key)
        .expect(
            Method::GET,
            &search(&format!("{longest}é")),
            Value::Null,
            200,
        )
        .await;
    assert_eq!(longer["items"], json!([]));
}

#[tokio::test]
async fn bad_input_answers_problem_details() {
    let app = spawn_app().await;
    let (_, key) = app.admin_key("ops").await;
    // 422 with per-field errors.
    let cases = [
        (
            json!({"name": "x", "scopes": ["rooms:create", "rooms:fly"], "domains": ["not a domain"]}),
            vec!["scopes[1]", "domains[0]"],
        ),
        (json!({"name": "  "}), vec!["name"]),
        (
            json!({"name": "x", "token_ttl_seconds": 3601}),
            vec!["token_ttl_seconds"],
        ),
        (
            json!({"name": "x", "token_ttl_seconds": 0}),
            vec!["token_ttl_seconds"],
        ),
    ];
    for (body, fields) in cases {
        let r = app
            .admin(Method::POST, "/admin/v1/applications", &key, body.clone())
            .await;
        let p = problem(r, 422).await;
        let got: Vec<&str> = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(got, fields, "{body}");
    }
    let created = create_app(&app, &key, json!({"name": "x", "domains": ["example.com"]})).await;
    let cid = created["client_id"].as_str().unwrap();
    let p = app
        .admin_as(&key)
        .problem(
            Method::POST,
            &format!("/admin/v1/applications/{cid}/rotate-secret"),
            json!({"grace_seconds": 31 * 86_400}),
            422,
        )
        .await;
    assert_eq!(p["errors"][0]["field"], "grace_seconds");
    // 400: what does not parse.
    for path in [
        "/admin/v1/applications?cursor=bm90LWEtY3Vyc29y",
        "/admin/v1/applications?limit=0",
        "/admin/v1/applications?limit=x",
        "/admin/v1/users?email=nope",
        "/admin/v1/audit-events?resource=planet",
        "/admin/v1/audit-events?since=yesterday",
        "/admin/v1/users/not-a-uuid",
    ] {
        app.admin_as(&key)
            .problem(Method::GET, path, Value::Null, 400)
            .await;
    }
    let r = app
        .client
        .post(app.admin_url("/admin/v1/applications"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    problem(r, 400).await;
    let r = app
        .client
        .post(app.admin_url("/admin/v1/applications"))
        .bearer_auth(&key)
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    problem(r, 415).await;
    // Characters no column can hold, and values longer than one: refused per field (or, in a
    // search, matching nothing), never a database error.
    for (body, field) in [
        (json!({"name": "nul\u{0}byte"}), "name"),
        (json!({"name": "line\nbreak"}), "name"),
    ] {
        let p = app
            .admin_as(&key)
            .problem(Method::POST, "/admin/v1/applications", body, 422)
            .await;
        assert_eq!(p["errors"][0]["field"], field);
    }
    for sub in ["x".repeat(256), "nul\u{0}".to_owned()] {
        let p = app
            .admin_as(&key)
            .problem(
                Method::POST,
                "/admin/v1/users",
                json!({"email": "sub@example.com", "external_sub": sub}),
                422,
            )
            .await;
        assert_eq!(p["errors"][0]["field"], "external_sub");
    }
    // The longest the column holds is kept whole (multi-byte characters counted as one).
    let longest = "é".repeat(255);
    let created = app
        .admin_as(&key)
        .expect(
            Method::POST,
            "/admin/v1/users",
            json!({"email": "longest-sub@example.com", "external_sub": longest}),
            201,
        )
        .await;
    assert_eq!(created["external_sub"], longest.as_str());
    for path in [
        "/admin/v1/applications?name=%00",
        "/admin/v1/audit-events?resource_id=%00",
        "/admin/v1/audit-events?resource=user&resource_id=%00",
    ] {
        let page = app
            .admin_as(&key)
            .expect(Method::GET, path, Value::Null, 200)
            .await;
        assert_eq!(page["items"], json!([]), "{path}");
    }
    // 404: unknown ids, and no route.
    let unknown = uuid::Uuid::new_v4();
    for path in [
        "/admin/v1/applications/doesnotexist".to_owned(),
        format!("/admin/v1/users/{unknown}"),
        "/admin/v1/nothing-here".to_owned(),
    ] {
        app.admin_as(&key)
            .problem(Method::GET, &path, Value::Null, 404)
            .await;
    }
    app.admin_as(&key)
        .problem(
            Method::DELETE,
            &format!("/admin/v1/admin-keys/{unknown}"),
            Value::Null,
            404,
        )
        .await;
    // 409: a duplicate e-mail; the signing key itself.
    app.admin_as(&key)
        .expect(
            Method::POST,
            "/admin/v1/users",
            json!({"email": "dup@example.com", "external_sub": "1"}),
            201,
        )
        .await;
    app.admin_as(&key)
        .problem(
            Method::POST,
            "/admin/v1/users",
            json!({"email": "DUP@example.com"}),
            409,
        )
        .await;
    let keys = app
        .admin_as(&key)
        .expect(Method::GET, "/admin/v1/signing-keys", Value::Null, 200)
        .await;
    let kid = keys[0]["kid"].as_str().unwrap();
    app.admin_as(&key)
        .problem(
            Method::POST,
            &format!("/admin/v1/signing-keys/{kid}/retire"),
            Value::Null,
            409,
        )
        .await;
}

#[tokio::test]
async fn users_over_http() {
    let app = spawn_app().await;
    let (_, key) = app.admin_key("support").await;
    let client = app.create_client("rooms:create", &["example.com"]).await;
    let created = app
        .admin_as(&key)
        .expect(
            Method::POST,
            "/admin/v1/users",
            json!({"email": "Grace@Example.com", "external_sub": "emp-7"}),
            201,
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["external_sub"], "emp-7");
    assert_eq!(created["is_active"], true);
    let found = app
        .admin_as(&key)
        .expect(
            Method::GET,
            "/admin/v1/users?email=grace@example.com",
            Value::Null,
            200,
        )
        .await;
    assert_eq!(found["items"][0]["id"], id.as_str());
    assert_eq!(
        app.admin_as(&key)
            .expect(
                Method::GET,
                "/admin/v1/users?email=nobody@example.com",
                Value::Null,
                200
            )
            .await["items"],
        json!([])
    );
    let token = app.access_token(&client, "grace@example.com").await;
    let path = format!("/admin/v1/users/{id}");
    let off = app
        .admin_as(&key)
        .expect(Method::PATCH, &path, json!({"is_active": false}), 200)
        .await;
    assert_eq!(off["is_active"], false);
    assert_eq!(
        app.token_basic(&client, "grace@example.com").await.status(),
        403
    );
    app.clock.advance(TimeDelta::seconds(1));
    app.admin_as(&key)
        .expect(Method::PATCH, &path, json!({"is_active": true}), 200)
        .await;
    let token2 = app.access_token(&client, "grace@example.com").await;
    let caller = app.create_client("tokens:introspect", &[]).await;
    assert_eq!(app.introspection(&caller, &token).await["active"], false);
    assert_eq!(app.introspection(&caller, &token2).await["active"], true);
    // Delete: the tokens die, the user is gone, the e-mail is free again.
    app.admin_as(&key)
        .expect(Method::DELETE, &path, Value::Null, 204)
        .await;
    assert_eq!(app.introspection(&caller, &token2).await["active"], false);
    app.admin_as(&key)
        .problem(Method::GET, &path, Value::Null, 404)
        .await;
    app.admin_as(&key)
        .problem(Method::DELETE, &path, Value::Null, 404)
        .await;
    assert_eq!(
        app.token_basic(&client, "grace@example.com").await.status(),
        404
    );
    app.admin_as(&key)
        .expect(
            Method::POST,
            "/admin/v1/users",
            json!({"email": "grace@example.com"}),
            201,
        )
        .await;
    let trail = events(&app, &key, "user", &id).await;
    let actions: Vec<&str> = trail
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create", "deactivate", "activate", "delete"]);
    // Deleted: the trail keeps that the e-mail went, not what it was (erasure.rs reads every
    // table for it).
    assert_eq!(
        trail[3]["changes"]["email"],
        json!({"before": "(erased)", "after": null})
    );
    assert_eq!(trail[0]["changes"]["email"]["after"], "(erased)");
}

#[tokio::test]
async fn signing_and_admin_keys_over_http() {
    let app = spawn_app().await;
    let (own_id, key) = app.admin_key("ops").await;
    let (other_id, other) = app.admin_key("robot").await;
    let first = app
        .admin_as(&key)
        .expect(Method::GET, "/admin/v1/signing-keys", Value::Null, 200)
        .await;
    assert_eq!(first.as_array().unwrap().len(), 1);
    let first_kid = first[0]["kid"].as_str().unwrap().to_owned();
    let pending = app
        .admin_as(&key)
        .expect(
            Method::POST,
            "/admin/v1/signing-keys/rotate",
            json!({}),
            201,
        )
        .await;
    assert_eq!(pending["state"], "pending");
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == pending["kid"]),
        "published at once by this replica"
    );
    let now = app
        .admin_as(&key)
        .expect(
            Method::POST,
            "/admin/v1/signing-keys/rotate",
            json!({"now": true}),
            201,
        )
        .await;
    assert_eq!(now["state"], "active");
    let retired = app
        .admin_as(&key)
        .expect(
            Method::POST,
            &format!("/admin/v1/signing-keys/{first_kid}/retire"),
            Value::Null,
            200,
        )
        .await;
    assert_eq!(retired["state"], "retired");
    app.admin_as(&key)
        .problem(
            Method::POST,
            &format!("/admin/v1/signing-keys/{first_kid}/retire"),
            Value::Null,
            409,
        )
        .await;
    let trail = app
        .admin_as(&key)
        .expect(
            Method::GET,
            "/admin/v1/audit-events?resource=signing_key",
            Value::Null,
            200,
        )
        .await;
    let actions: Vec<&str> = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["rotate", "rotate", "retire"]);
    // Each rotation's event says when its key signs: the pending one after the publication
    // delay, the immediate one at once — what the key itself says.
    for (event, key) in trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .zip([&pending, &now])
    {
        assert_eq!(event["resource_id"], key["kid"]);
        let at = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
        assert_eq!(
            at(&event["changes"]["activates_at"]["after"]),
            at(&key["activates_at"]),
            "{event}"
        );
    }

    // Admin keys: listed without secrets; revoking one stops it at once.
    let listed = app
        .admin_as(&key)
        .expect(Method::GET, "/admin/v1/admin-keys", Value::Null, 200)
        .await;
    let text = listed.to_string();
    assert!(!text.contains(&key[20..]) && !text.contains(&other[20..]));
    assert_eq!(listed.as_array().unwrap().len(), 2);
    app.admin_as(&key)
        .expect(
            Method::DELETE,
            &format!("/admin/v1/admin-keys/{other_id}"),
            Value::Null,
            204,
        )
        .await;
    app.admin_as(&other)
        .problem(Method::GET, "/admin/v1/admin-keys", Value::Null, 401)
        .await;
    app.admin_as(&key)
        .problem(
            Method::DELETE,
            &format!("/admin/v1/admin-keys/{other_id}"),
            Value::Null,
            409,
        )
        .await;
    // The trail records the revocation as a change of `revoked_at`.
    let trail = app
        .admin_as(&key)
        .expect(
            Method::GET,
            &format!("/admin/v1/audit-events?resource=admin_key&resource_id={other_id}"),
            Value::Null,
            200,
        )
        .await;
    let revoke = trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "revoke")
        .expect("a revoke event");
    assert!(
        revoke["changes"]["revoked_at"]["before"].is_null(),
        "{revoke}"
    );
    assert!(
        revoke["changes"]["revoked_at"]["after"].is_string(),
        "{revoke}"
    );
    // A key may revoke itself.
    app.admin_as(&key)
        .expect(
            Method::DELETE,
            &format!("/admin/v1/admin-keys/{own_id}"),
            Value::Null,
            204,
        )
        .await;
    app.admin_as(&key)
        .problem(Method::GET, "/admin/v1/admin-keys", Value::Null, 401)
        .await;
}

#[tokio::test]
async fn a_rotation_with_grace_keeps_both_secrets_until_it_ends() {
    let app = spawn_app().await;
    let (_, key) = app.admin_key("ops").await;
    let user = "ada@example.com";
    app.create_user(user).await;
    let created = create_app(
        &app,
        &key,
        json!({"name": "LMS", "scopes": ["rooms:list"], "domains": ["example.com"]}),
    )
    .await;
    let old = client_of(&created);
    let cid = old.client_id.clone();
    let token_with_old = app.access_token(&old, user).await;
    let rotated = app
        .admin_as(&key)
        .expect(
            Method::POST,
            &format!("/admin/v1/applications/{cid}/rotate-secret"),
            json!({"grace_seconds": 3600}),
            200,
        )
        .await;
    let new = client_of(&rotated);
    let secrets = rotated["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2);
    assert_eq!(secrets[1]["which"], "previous");
    let until: chrono::DateTime<chrono::Utc> =
        secrets[1]["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((until - app.clock.now()).num_seconds(), 3600);
    // Both work during the grace (each twice: the second from the verified-secret cache).
    for c in [&old, &new, &old, &new] {
        assert_eq!(app.token_basic(c, user).await.status(), 200);
    }
    let caller = app.create_client("tokens:introspect", &[]).await;
    assert_eq!(
        app.introspection(&caller, &token_with_old).await["active"],
        true,
        "a grace keeps the earlier tokens"
    );
    // One second before the end: still both; at the end: only the new one.
    app.clock.advance(TimeDelta::seconds(3599));
    assert_eq!(app.token_basic(&old, user).await.status(), 200);
    app.clock.advance(TimeDelta::seconds(1));
    let r = app.token_basic(&old, user).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    assert_eq!(app.token_basic(&new, user).await.status(), 200);
    let shown = app
        .admin_as(&key)
        .expect(
            Method::GET,
            &format!("/admin/v1/applications/{cid}"),
            Value::Null,
            200,
        )
        .await;
    assert_eq!(shown["secrets"], json!([{"which": "current"}]));
}

/// One summary per noun (`domain::summary`): what the admin API answers is, field for field and
/// character for character, what the CLI's `--json` prints for the same record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_json_and_the_admin_api_answer_the_same_json() {
    let (app, cli) = live().await;
    let (_, key) = app.admin_key("ops").await;
    app.clock.set(chrono::Utc::now());
    let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": "k1",
        "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]});
    let created = app
        .admin_as(&key)
        .expect(
            Method::POST,
            "/admin/v1/applications",
            json!({"name": "Same JSON", "scopes": ["rooms:create", "rooms:list"],
                   "domains": ["example.com"], "token_ttl_seconds": 600, "jwks": jwks}),
            201,
        )
        .await;
    let cid = created["client_id"].as_str().unwrap().to_owned();
    // A rotation with grace: two secrets, one with an expiry (a timestamp in the answer).
    app.admin_as(&key)
        .expect(
            Method::POST,
            &format!("/admin/v1/applications/{cid}/rotate-secret"),
            json!({"grace_seconds": 7200}),
            200,
        )
        .await;
    // One with the server's lifetime and no keys, so both shapes of the optional fields show.
    app.admin_as(&key)
        .expect(
            Method::POST,
            "/admin/v1/applications",
            json!({"name": "Plain", "scopes": ["rooms:list"]}),
            201,
        )
        .await;
    let shown = app
        .admin_as(&key)
        .expect(
            Method::GET,
            &format!("/admin/v1/applications/{cid}"),
            Value::Null,
            200,
        )
        .await;
    assert_eq!(shown["secrets"].as_array().unwrap().len(), 2, "{shown}");
    assert_eq!(cli.json(&["app", "show", &cid, "--json"]), shown);
    let listed = app
        .admin_as(&key)
        .expect(Method::GET, "/admin/v1/applications", Value::Null, 200)
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
    assert_eq!(cli.json(&["app", "list", "--json"]), listed["items"]);

    let user = app
        .admin_as(&key)
        .expect(
            Method::POST,
            "/admin/v1/users",
            json!({"email": "Same@Example.com", "external_sub": "emp-1"}),
            201,
        )
        .await;
    let uid = user["id"].as_str().unwrap();
    assert_eq!(cli.json(&["user", "show", uid, "--json"]), user);
    let users = app
        .admin_as(&key)
        .expect(Method::GET, "/admin/v1/users", Value::Null, 200)
        .await;
    assert_eq!(cli.json(&["user", "list", "--json"]), users["items"]);

    let keys = app
        .admin_as(&key)
        .expect(Method::GET, "/admin/v1/admin-keys", Value::Null, 200)
        .await;
    assert_eq!(cli.json(&["admin-key", "list", "--json"]), keys);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_the_api_see_each_others_changes() {
    let (app, cli) = live().await;
    let (_, key) = app.admin_key("ops").await;
    // CLI creates with a grace rotation and a lifetime; the API sees it all.
    let made = cli.json(&[
        "app",
        "create",
        "--name",
        "From CLI",
        "--scope",
        "rooms:create",
        "--domain",
        "example.com",
        "--token-ttl",
        "900",
        "--json",
    ]);
    let cid = made["client_id"].as_str().unwrap().to_owned();
    let rotated = cli.json(&["app", "rotate-secret", &cid, "--grace", "2h", "--json"]);
    assert_eq!(rotated["secrets"].as_array().unwrap().len(), 2);
    let shown = app
        .admin_as(&key)
        .expect(
            Method::GET,
            &format!("/admin/v1/applications/{cid}"),
            Value::Null,
            200,
        )
        .await;
    assert_eq!(shown["name"], "From CLI");
    assert_eq!(shown["token_ttl_seconds"], 900);
    assert_eq!(shown["secrets"].as_array().unwrap().len(), 2);
    // The API changes it; the CLI sees it. (The server's test clock to the CLI's time, so
    // the trail's order is the order of the changes.)
    app.clock.set(chrono::Utc::now());
    app.admin_as(&key).expect(Method::PATCH, &format!("/admin/v1/applications/{cid}"), json!({"name": "From API", "token_ttl_seconds": null, "domains": ["example.com", "*.example.org"]}), 200).await;
    let after = cli.json(&["app", "show", &cid, "--json"]);
    assert_eq!(after["name"], "From API");
    // The server's lifetime again: no own `token_ttl_seconds` (the API's and the CLI's JSON are
    // one since the summaries; `token_ttl_is_default: true` said the same).
    assert!(after.get("token_ttl_seconds").is_none(), "{after}");
    assert_eq!(after["domains"], json!(["example.com", "*.example.org"]));
    let text = cli.ok(&["app", "show", &cid]);
    assert!(text.contains("previous (valid until"), "{text}");
    assert!(text.contains("last token:    never"), "{text}");
    // Users and keys both ways.
    cli.ok(&["user", "create", "--email", "cli@example.com"]);
    let found = app
        .admin_as(&key)
        .expect(
            Method::GET,
            "/admin/v1/users?email=cli@example.com",
            Value::Null,
            200,
        )
        .await;
    let uid = found["items"][0]["id"].as_str().unwrap().to_owned();
    app.admin_as(&key)
        .expect(
            Method::PATCH,
            &format!("/admin/v1/users/{uid}"),
            json!({"is_active": false}),
            200,
        )
        .await;
    assert_eq!(
        cli.json(&["user", "show", &uid, "--json"])["is_active"],
        false
    );
    cli.ok(&["user", "delete", "cli@example.com"]);
    app.admin_as(&key)
        .problem(
            Method::GET,
            &format!("/admin/v1/users/{uid}"),
            Value::Null,
            404,
        )
        .await;
    let keys = cli.json(&["admin-key", "list", "--json"]);
    assert_eq!(keys[0]["name"], "ops");
    assert!(keys[0].get("key").is_none());
    let created = cli.json(&["admin-key", "create", "--name", "robot", "--json"]);
    let robot = created["key"].as_str().unwrap();
    assert_eq!(
        app.admin(Method::GET, "/admin/v1/admin-keys", robot, Value::Null)
            .await
            .status(),
        200
    );
    cli.refused(&["admin-key", "create", "--name", "robot"]);
    cli.refused(&["admin-key", "create", "--name", "cli"]);
    cli.ok(&["admin-key", "revoke", created["id"].as_str().unwrap()]);
    assert_eq!(
        app.admin(Method::GET, "/admin/v1/admin-keys", robot, Value::Null)
            .await
            .status(),
        401
    );
    // The trail has both actors, in order.
    let trail = events(&app, &key, "application", &cid).await;
    let who: Vec<(&str, &str)> = trail
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        who,
        [
            ("cli", "create"),
            ("cli", "rotate_secret"),
            ("ops", "update")
        ]
    );
}

#[tokio::test]
async fn per_application_lifetimes_are_honoured_and_bounded() {
    let app = spawn_app().await;
    let (_, key) = app.admin_key("ops").await;
    let user = "ada@example.com";
    app.create_user(user).await;
    let created = create_app(
        &app,
        &key,
        json!({"name": "short", "scopes": ["rooms:list"], "domains": ["example.com"], "token_ttl_seconds": 120}),
    )
    .await;
    let client = client_of(&created);
    let r = app.token_basic(&client, user).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["expires_in"], 120);
    let (_, claims) = crate::helpers::decode_parts(body["access_token"].as_str().unwrap());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    // Back to the server's.
    app.admin_as(&key)
        .expect(
            Method::PATCH,
            &format!("/admin/v1/applications/{}", client.client_id),
            json!({"token_ttl_seconds": null}),
            200,
        )
        .await;
    let body: Value = app.token_basic(&client, user).await.json().await.unwrap();
    assert_eq!(body["expires_in"], 3600);
}

#[tokio::test]
async fn the_last_token_time_is_recorded_at_most_once_a_minute() {
    let app = spawn_app().await;
    let (_, key) = app.admin_key("ops").await;
    let user = "ada@example.com";
    app.create_user(user).await;
    let created = create_app(
        &app,
        &key,
        json!({"name": "busy", "scopes": ["rooms:list"], "domains": ["example.com"]}),
    )
    .await;
    let client = client_of(&created);
    let path = format!("/admin/v1/applications/{}", client.client_id);
    assert_eq!(created["last_token_at"], Value::Null);
    let last = || async {
        for _ in 0..100 {
            let shown = app
                .admin_as(&key)
                .expect(Method::GET, &path, Value::Null, 200)
                .await;
            if let Some(t) = shown["last_token_at"].as_str() {
                return t.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("last_token_at never written");
    };
    assert_eq!(app.token_basic(&client, user).await.status(), 200);
    let first = last().await;
    assert!((app.clock.now() - first).num_seconds().abs() <= 1);
    // Within the minute: not written again.
    app.clock.advance(TimeDelta::seconds(30));
    assert_eq!(app.token_basic(&client, user).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(last().await, first);
    // After it: written.
    app.clock.advance(TimeDelta::seconds(31));
    assert_eq!(app.token_basic(&client, user).await.status(), 200);
    let mut second = last().await;
    for _ in 0..100 {
        if second != first {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        second = last().await;
    }
    assert!(second > first, "{second} after {first}");
}

#[tokio::test]
async fn swagger_ui_and_the_committed_spec_on_the_admin_listener() {
    let app = spawn_app().await;
    let r = app.client.get(app.admin_url("/docs")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("swagger"));
    let served: Value = app
        .client
        .get(app.admin_url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(served["paths"]["/admin/v1/applications"]["post"].is_object());
    assert!(
        served["components"]["securitySchemes"]["AdminKey"].is_object(),
        "{}",
        served["components"]
    );
    // Not on the public listener.
    let r = app
        .client
        .get(app.url("/admin/v1/applications"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let yaml = auth_server::api::admin::service().spec_yaml();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/auth-admin.yaml");
    if let Err(e) = server_kit::testing::check_committed(std::path::Path::new(path), &yaml) {
        panic!("{e}");
    }
}

#[tokio::test]
async fn no_admin_listener_when_turned_off() {
    // Control: with the admin API on, one of the process's listeners serves it.
    let on = spawn_app().await;
    let ports = listening_ports();
    assert_eq!(ports.len(), 3, "API, metrics, admin: {ports:?}");
    assert_eq!(admin_answers(&on, &ports).await, 1);
    drop(on);

    let before = listening_ports();
    let off = spawn_app_with(|c| c.admin_listen = None).await;
    let new: Vec<u16> = listening_ports()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    assert_eq!(new.len(), 2, "API and metrics only: {new:?}");
    assert_eq!(
        admin_answers(&off, &new).await,
        0,
        "no listener serves the admin API"
    );
}

/// The TCP ports this process listens on (nextest runs each test in a process of its own).
fn listening_ports() -> Vec<u16> {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        for line in std::fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address, state 0A (LISTEN), inode.
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                let port = f[1].rsplit(':').next().unwrap();
                ports.push(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports.sort_unstable();
    ports
}

/// How many of `ports` answer an admin request as the admin API does (a 401 problem).
async fn admin_answers(app: &TestApp, ports: &[u16]) -> usize {
    let mut n = 0;
    for port in ports {
        let r = app
            .client
            .get(format!("http://127.0.0.1:{port}/admin/v1/applications"))
            .send()
            .await
            .unwrap();
        let problem = r
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
        if r.status() == 401 && problem {
            n += 1;
        }
    }
    n
}

/// Every statement the admin API runs, EXPLAINed as it ran: no growing table read whole, no
/// sort of its rows. A walk in index order that stops at `LIMIT` (a first page) costs
/// O(page) and is allowed; the name search reads rows along that walk until it has a page of
/// matches, documented as the one admin read that may cost O(applications).
#[tokio::test]
async fn no_admin_statement_scans_a_growing_table() {
    use server_kit::testing::{plan_problems, record_statements, recorded_statements};
    const GROWING: &[&str] = &["applications", "users", "revoked_tokens", "audit_events"];
    let app = spawn_app().await;
    let (_, key) = app.admin_key("ops").await;
    record_statements();
    let made = create_app(
        &app,
        &key,
        json!({"name": "plans", "domains": ["example.com"]}),
    )
    .await;
    let cid = made["client_id"].as_str().unwrap().to_owned();
    let get = |path: String| {
        let app = &app;
        let key = &key;
        async move {
            app.admin_as(key)
                .expect(Method::GET, &path, Value::Null, 200)
                .await
        }
    };
    let page = get("/admin/v1/applications?limit=1".into()).await;
    let _ = get(format!(
        "/admin/v1/applications?limit=1&cursor={}",
        page["next_cursor"].as_str().unwrap_or("")
    ))
    .await;
    get(format!("/admin/v1/applications/{cid}")).await;
    app.admin_as(&key)
        .expect(
            Method::PATCH,
            &format!("/admin/v1/applications/{cid}"),
            json!({"name": "plans 2"}),
            200,
        )
        .await;
    app.admin_as(&key)
        .expect(
            Method::POST,
            &format!("/admin/v1/applications/{cid}/rotate-secret"),
            json!({"grace_seconds": 60}),
            200,
        )
        .await;
    let user = app
        .admin_as(&key)
        .expect(
            Method::POST,
            "/admin/v1/users",
            json!({"email": "p@example.com"}),
            201,
        )
        .await;
    let uid = user["id"].as_str().unwrap().to_owned();
    let users = get("/admin/v1/users?limit=1".into()).await;
    if let Some(c) = users["next_cursor"].as_str() {
        get(format!("/admin/v1/users?limit=1&cursor={c}")).await;
    }
    get("/admin/v1/users?email=p@example.com".into()).await;
    get(format!("/admin/v1/users/{uid}")).await;
    app.admin_as(&key)
        .expect(
            Method::PATCH,
            &format!("/admin/v1/users/{uid}"),
            json!({"is_active": false}),
            200,
        )
        .await;
    app.admin_as(&key)
        .expect(
            Method::DELETE,
            &format!("/admin/v1/users/{uid}"),
            Value::Null,
            204,
        )
        .await;
    let events = get("/admin/v1/audit-events?limit=1".into()).await;
    get(format!(
        "/admin/v1/audit-events?limit=1&cursor={}",
        events["next_cursor"].as_str().unwrap()
    ))
    .await;
    get("/admin/v1/audit-events?resource=user&since=2020-01-01T00:00:00Z".into()).await;
    get(format!("/admin/v1/audit-events?resource_id={cid}")).await;
    get(format!(
        "/admin/v1/audit-events?resource=application&resource_id={cid}"
    ))
    .await;
    app.admin_as(&key)
        .expect(
            Method::DELETE,
            &format!("/admin/v1/applications/{cid}"),
            Value::Null,
            204,
        )
        .await;

    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for stmt in recorded_statements() {
        let sql = stmt.sql.trim_start().to_owned();
        let verb = sql
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        if !matches!(verb.as_str(), "SELECT" | "UPDATE" | "DELETE") || sql == "SELECT 1" {
            continue;
        }
        let limited = sql.contains(" LIMIT ");
        let problems: Vec<String> = plan_problems(&app.state.db, &stmt, GROWING)
            .await
            .unwrap()
            .into_iter()
            .filter(|p| {
                // A walk in index order, stopped by LIMIT.
                !(limited && (p.contains(" USING INDEX ") || p.contains("Scan of all of")))
            })
            .collect();
        if !problems.is_empty() {
            failures.push(format!("{sql}\n    -> {}", problems.join("; ")));
        }
        checked.push(sql);
    }
    assert!(
        failures.is_empty(),
        "full scans or sorts:\n{}",
        failures.join("\n")
    );
    for needle in [
        "\"audit_events\"",
        "\"users\"",
        "\"applications\"",
        "\"admin_keys\"",
    ] {
        assert!(
            checked.iter().any(|sql| sql.contains(needle)),
            "no statement with {needle} was checked: {checked:#?}"
        );
    }
}

/// Both fronts parse an operator's input with the same parsers (`domain::input`): a scope or a
/// domain one refuses, the other refuses with the same message, and every refused field is
/// reported, not only the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_the_admin_api_refuse_bad_input_with_the_same_messages() {
    let (app, cli) = live().await;
    let (_, key) = app.admin_key("ops").await;
    let problem = app
        .admin_as(&key)
        .problem(
            Method::POST,
            "/admin/v1/applications",
            json!({"name": "Bad", "scopes": ["rooms:list", "rooms:fly"],
                   "domains": ["example.com", "exa mple.com"]}),
            422,
        )
        .await;
    let errors = problem["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{problem}");
    assert_eq!(errors[0]["field"], "scopes[1]");
    assert_eq!(errors[1]["field"], "domains[1]");
    let said = cli.refused(&[
        "app",
        "create",
        "--name",
        "Bad",
        "--scope",
        "rooms:list rooms:fly",
        "--domain",
        "example.com",
        "--domain",
        "exa mple.com",
    ]);
    for e in errors {
        let message = e["message"].as_str().unwrap();
        assert!(
            said.contains(message),
            "CLI said {said:?}, API said {message:?}"
        );
    }
    // Nothing was created by either.
    let listed = app
        .admin_as(&key)
        .expect(Method::GET, "/admin/v1/applications", Value::Null, 200)
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 0);
}

/// The e-mail filter honours a cursor like a plain page: a user is on the page after a cursor
/// only if it comes strictly after it (created_at, id).
#[tokio::test]
async fn a_users_lookup_by_email_honours_the_cursor() {
    let app = spawn_app().await;
    let (_, key) = app.admin_key("support").await;
    for email in ["first@example.com", "second@example.com"] {
        app.admin_as(&key)
            .expect(
                Method::POST,
                "/admin/v1/users",
                json!({"email": email}),
                201,
            )
            .await;
        app.clock.advance(chrono::TimeDelta::seconds(1));
    }
    let page = app
        .admin_as(&key)
        .expect(Method::GET, "/admin/v1/users?limit=1", Value::Null, 200)
        .await;
    assert_eq!(page["items"][0]["email"], "first@example.com");
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let after = |email: &str| format!("/admin/v1/users?email={email}&cursor={cursor}");
    let same = app
        .admin_as(&key)
        .expect(Method::GET, &after("first@example.com"), Value::Null, 200)
        .await;
    assert_eq!(
        same["items"],
        json!([]),
        "the cursor's own user is not after it"
    );
    let later = app
        .admin_as(&key)
        .expect(Method::GET, &after("second@example.com"), Value::Null, 200)
        .await;
    assert_eq!(later["items"][0]["email"], "second@example.com");
}

/// What the startup warning ("no admin key exists") counts: keys that can authenticate — a new
/// key counts, a revoked one no longer does.
#[tokio::test]
async fn the_usable_admin_keys_are_counted_without_the_revoked_ones() {
    use auth_server::domain::admin_keys;
    let app = spawn_app().await;
    let db = &app.state.db;
    let before = admin_keys::usable(db).await.unwrap();
    let (first, _) = app.admin_key("first").await;
    app.admin_key("second").await;
    assert_eq!(admin_keys::usable(db).await.unwrap(), before + 2);
    admin_keys::revoke(
        db,
        &auth_server::domain::audit::Actor::Cli,
        first,
        app.state.clock.now(),
    )
    .await
    .unwrap();
    assert_eq!(admin_keys::usable(db).await.unwrap(), before + 1);
}
