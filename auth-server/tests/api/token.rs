//! docs/spec/auth-server.md §1, one test (at least) per processing step.

use serde_json::json;

use crate::helpers::{assert_error, spawn_app, spawn_app_with};

const ALL_ROOMS: &str = "rooms:create rooms:list rooms:retrieve rooms:update rooms:delete";

// Step 9: success, both authentication methods, both body formats, both paths.

#[tokio::test]
async fn form_with_basic_auth_issues_a_token() {
    let app = spawn_app().await;
    let c = app.create_client(ALL_ROOMS, &["example.com"]).await;
    app.create_user("jane@example.com").await;
    let r = app.token_basic(&c, "jane@example.com").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], ALL_ROOMS);
    assert_eq!(body.as_object().unwrap().len(), 4);
}

#[tokio::test]
async fn json_with_client_secret_post_on_the_upstream_alias() {
    let app = spawn_app().await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    for path in [
        "/external-api/v1.0/application/token",
        "/external-api/v1.0/application/token/",
        "/oauth/token/",
    ] {
        let r = app
            .token_json(
                path,
                json!({"grant_type": "client_credentials", "client_id": c.client_id,
                "client_secret": c.secret, "scope": "jane@example.com"}),
            )
            .await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
}

#[tokio::test]
async fn body_client_id_equal_to_basic_username_is_accepted() {
    let app = spawn_app().await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    let r = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&c.client_id, Some(&c.secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "jane@example.com"),
            ("client_id", c.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn scopes_are_canonically_ordered_privileges_never_granted_and_absent_when_none() {
    let app = spawn_app().await;
    app.create_user("jane@example.com").await;
    let c = app
        .create_client("rooms:delete tokens:introspect rooms:create", &[])
        .await;
    let body: serde_json::Value = app
        .token_basic(&c, "jane@example.com")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["scope"], "rooms:create rooms:delete");
    let none = app.create_client("", &[]).await;
    let body: serde_json::Value = app
        .token_basic(&none, "jane@example.com")
        .await
        .json()
        .await
        .unwrap();
    assert!(body.get("scope").is_none(), "{body}");
    assert!(body["access_token"].is_string());
}

// Step 1: malformed requests.

#[tokio::test]
async fn missing_or_blank_fields_are_invalid_request() {
    let app = spawn_app().await;
    for body in [
        "scope=a%40example.com",
        "grant_type=client_credentials",
        "grant_type=+&scope=a%40example.com",
        "grant_type=client_credentials&scope=%20",
    ] {
        assert_error(app.token_form(body).await, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn unparsable_bodies_are_invalid_request() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/oauth/token"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;
    let r = app
        .token_json("/oauth/token", json!({"grant_type": 1, "scope": ["x"]}))
        .await;
    assert_error(r, 400, "invalid_request").await;
    let r = app
        .client
        .post(app.url("/oauth/token"))
        .header("content-type", "application/json")
        .body(vec![0xff, 0xfe])
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;
}

#[tokio::test]
async fn duplicate_form_keys_are_invalid_request() {
    let app = spawn_app().await;
    let r = app
        .token_form("grant_type=client_credentials&scope=a%40example.com&scope=b%40example.com")
        .await;
    assert_error(r, 400, "invalid_request").await;
}

#[tokio::test]
async fn other_content_types_are_415_invalid_request() {
    let app = spawn_app().await;
    for ct in [Some("text/plain"), Some("application/xml"), None] {
        let mut req = app
            .client
            .post(app.url("/oauth/token"))
            .body("grant_type=client_credentials");
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        assert_error(req.send().await.unwrap(), 415, "invalid_request").await;
    }
}

#[tokio::test]
async fn conflicting_credentials_are_invalid_request() {
    let app = spawn_app().await;
    let c = app.create_client("rooms:list", &[]).await;
    // Basic plus a body secret.
    let r = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&c.client_id, Some(&c.secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "a@example.com"),
            ("client_secret", c.secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;
    // A body client_id that differs from Basic.
    let r = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&c.client_id, Some(&c.secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "a@example.com"),
            ("client_id", "someoneelse"),
        ])
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;
}

// Step 2: grant type, before authentication.

#[tokio::test]
async fn other_grant_types_are_unsupported_even_without_credentials() {
    let app = spawn_app().await;
    for g in ["password", "authorization_code", "Client_Credentials"] {
        let r = app
            .token_form(&format!("grant_type={g}&scope=a%40example.com"))
            .await;
        assert_error(r, 400, "unsupported_grant_type").await;
    }
}

// Step 3: no credentials.

#[tokio::test]
async fn no_credentials_is_401_with_basic_challenge() {
    let app = spawn_app().await;
    let r = app
        .token_form("grant_type=client_credentials&scope=a%40example.com")
        .await;
    assert_error(r, 401, "invalid_client").await;
    let r = app
        .client
        .post(app.url("/oauth/token"))
        .bearer_auth("abc")
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "a@example.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "invalid_client").await;
}

// Step 5: authentication failures all look the same.

#[tokio::test]
async fn unknown_client_wrong_secret_and_malformed_basic_are_indistinguishable() {
    let app = spawn_app().await;
    let c = app.create_client("rooms:list", &[]).await;
    let mut bodies = Vec::new();
    let wrong = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&c.client_id, Some("wrong"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "a@example.com"),
        ])
        .send()
        .await
        .unwrap();
    bodies.push(assert_error(wrong, 401, "invalid_client").await);
    let unknown = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth("A".repeat(40), Some(&c.secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "a@example.com"),
        ])
        .send()
        .await
        .unwrap();
    bodies.push(assert_error(unknown, 401, "invalid_client").await);
    let short_id = app
        .token_json(
            "/oauth/token",
            json!({"grant_type": "client_credentials", "client_id": "x",
        "client_secret": "y", "scope": "a@example.com"}),
        )
        .await;
    bodies.push(assert_error(short_id, 401, "invalid_client").await);
    let malformed = app
        .client
        .post(app.url("/oauth/token"))
        .header("authorization", "Basic %%%")
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "a@example.com"),
        ])
        .send()
        .await
        .unwrap();
    bodies.push(assert_error(malformed, 401, "invalid_client").await);
    let secret_only = app
        .token_form(&format!(
            "grant_type=client_credentials&scope=a%40example.com&client_secret={}",
            c.secret
        ))
        .await;
    bodies.push(assert_error(secret_only, 401, "invalid_client").await);
    for b in &bodies {
        assert_eq!(b, &bodies[0]);
        assert_eq!(b["error_description"], "Client authentication failed");
    }
}

#[tokio::test]
async fn inactive_application_is_401_inactive() {
    let app = spawn_app().await;
    let c = app.create_client("rooms:list", &[]).await;
    let mut stored = app.find_client(&c).await;
    stored.is_active = false;
    auth_server::store::applications::save(&app.state.db, &stored)
        .await
        .unwrap();
    let body = assert_error(
        app.token_basic(&c, "a@example.com").await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(body["error_description"], "Application is inactive");
}

#[tokio::test]
async fn percent_encoded_basic_credentials_are_decoded() {
    let app = spawn_app().await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    // Every byte percent-encoded, as RFC 6749 §2.3.1 lets a client do: only a server that
    // form-url-decodes both parts finds these credentials (base62 never needs encoding, so
    // encoding what must be encoded would prove nothing).
    let pct = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    let basic = |id: &str, secret: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    };
    let post = |header: String| {
        app.client
            .post(app.url("/oauth/token"))
            .header("authorization", header)
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "jane@example.com"),
            ])
            .send()
    };
    let r = post(basic(&pct(&c.client_id), &pct(&c.secret)))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Decoded once, not twice: %2541 is "%41", not "A".
    let twice = |s: &str| s.bytes().map(|b| format!("%25{b:02X}")).collect::<String>();
    let r = post(basic(&c.client_id, &twice(&c.secret))).await.unwrap();
    assert_eq!(r.status(), 401);
}

// Step 6: the e-mail.

#[tokio::test]
async fn malformed_emails_are_400_invalid_scope() {
    let app = spawn_app().await;
    let c = app.create_client("rooms:list", &[]).await;
    for bad in [
        "a@b@example.com",
        "\"a@evil.com\"@example.com",
        "user@example.com.",
        "user@exa mple.com",
        "user@",
        "@example.com",
        "user@-example.com",
        "user@example.com\n",
        "usér@example.com",
        "us\u{1}er@example.com",
    ] {
        let body = assert_error(app.token_basic(&c, bad).await, 400, "invalid_scope").await;
        assert!(
            !body["error_description"]
                .as_str()
                .unwrap()
                .contains(bad.trim()),
            "no echo of input"
        );
    }
}

// Step 7: the domain allowlist, before the user lookup.

#[tokio::test]
async fn domain_outside_the_allowlist_is_403_even_for_unknown_users() {
    let app = spawn_app().await;
    let c = app
        .create_client("rooms:list", &["example.com", "*.corp.example.org"])
        .await;
    app.create_user("jane@evil.net").await;
    for email in [
        "jane@evil.net",
        "nobody@evil.net",
        "a@sub.example.com",
        "a@example.com.evil.net",
        "a@corp.example.org",
    ] {
        let body = assert_error(app.token_basic(&c, email).await, 403, "invalid_scope").await;
        assert_eq!(
            body["error_description"],
            "This application is not authorized for this email domain"
        );
    }
    app.create_user("a@x.y.corp.example.org").await;
    assert_eq!(
        app.token_basic(&c, "a@x.y.corp.example.org").await.status(),
        200
    );
    app.create_user("b@EXAMPLE.com").await;
    assert_eq!(app.token_basic(&c, "B@example.COM").await.status(), 200);
}

// Step 8: the user.

#[tokio::test]
async fn unknown_user_is_404_and_disabled_user_403() {
    let app = spawn_app().await;
    let c = app.create_client("rooms:list", &[]).await;
    let body = assert_error(
        app.token_basic(&c, "ghost@example.com").await,
        404,
        "invalid_scope",
    )
    .await;
    assert_eq!(body["error_description"], "User not found");
    let id = app.create_user("off@example.com").await;
    auth_server::domain::users::set_active(
        &app.state.db,
        &auth_server::domain::audit::Actor::Cli,
        auth_server::domain::users::UserRef::Id(id),
        false,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let body = assert_error(
        app.token_basic(&c, "off@example.com").await,
        403,
        "invalid_scope",
    )
    .await;
    assert_eq!(body["error_description"], "User account is disabled");
}

#[tokio::test]
async fn provisional_users_only_when_enabled_and_the_app_has_domains() {
    let app = spawn_app_with(|c| c.allow_user_creation = true).await;
    let open = app.create_client("rooms:list", &[]).await;
    assert_error(
        app.token_basic(&open, "new@example.com").await,
        404,
        "invalid_scope",
    )
    .await;
    let scoped = app.create_client("rooms:list", &["example.com"]).await;
    let r = app.token_basic(&scoped, "New@Example.com").await;
    assert_eq!(r.status(), 200);
    let users = auth_server::store::users::list(&app.state.db)
        .await
        .unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].email.as_typed(), "New@Example.com");
    assert_eq!(users[0].email.normalized(), "new@example.com");
    assert_eq!(users[0].external_sub, None);
    assert_eq!(
        users[0].created_by.as_ref().map(|c| c.as_str()),
        Some(scoped.client_id.as_str())
    );
}

#[tokio::test]
async fn provisional_users_are_off_by_default() {
    let app = spawn_app().await;
    let scoped = app.create_client("rooms:list", &["example.com"]).await;
    assert_error(
        app.token_basic(&scoped, "new@example.com").await,
        404,
        "invalid_scope",
    )
    .await;
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn concurrent_requests_for_one_new_email_create_exactly_one_user() {
    let app = spawn_app_with(|c| c.allow_user_creation = true).await;
    let c = app.create_client("rooms:list", &["example.com"]).await;
    let futures = (0..12).map(|_| app.token_basic(&c, "race@example.com"));
    let responses = futures::future::join_all(futures).await;
    let mut subs = std::collections::HashSet::new();
    for r in responses {
        assert_eq!(r.status(), 200);
        let token = r.json::<serde_json::Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        subs.insert(
            crate::helpers::decode_parts(&token).1["sub"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(subs.len(), 1);
    assert_eq!(app.user_count().await, 1);
}

#[tokio::test]
async fn external_api_can_be_disabled_without_touching_oauth_paths() {
    let app = spawn_app_with(|c| c.external_api_enabled = false).await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    let r = app
        .token_json(
            "/external-api/v1.0/application/token",
            json!({"grant_type": "client_credentials",
        "client_id": c.client_id, "client_secret": c.secret, "scope": "jane@example.com"}),
        )
        .await;
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    assert_eq!(app.token_basic(&c, "jane@example.com").await.status(), 200);
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_json() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "not_found"
    );
    let r = app
        .client
        .get(app.url("/oauth/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "method_not_allowed"
    );
}

#[tokio::test]
async fn bodies_over_64_kib_are_413_and_huge_fields_never_500() {
    let app = spawn_app().await;
    let big = format!(
        "grant_type=client_credentials&scope={}",
        "a".repeat(70 * 1024)
    );
    let r = app.token_form(&big).await;
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
    // 10,000-character fields and unicode everywhere: clear 4xx, never a 500.
    let long = "é".repeat(5000);
    for body in [
        json!({"grant_type": "client_credentials", "scope": long, "client_id": long, "client_secret": long}),
        json!({"grant_type": long, "scope": "a@example.com"}),
        json!({"grant_type": "client_credentials", "scope": format!("{}@example.com", "a".repeat(10_000)), "client_id": "x", "client_secret": "y"}),
        json!({"grant_type": "client_credentials", "scope": "ü@exämple.com", "client_id": "ü", "client_secret": "ü"}),
    ] {
        let r = app.token_json("/oauth/token", body).await;
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    let r = app
        .client
        .post(app.url("/oauth/token"))
        .header("authorization", format!("Basic {}", "A".repeat(10_000)))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "a@example.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "invalid_client").await;
}

#[tokio::test]
async fn a_colon_in_the_secret_part_of_basic_is_part_of_the_secret() {
    let app = spawn_app().await;
    let c = app.create_client("rooms:list", &[]).await;
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}:extra", c.client_id, c.secret));
    let r = app
        .client
        .post(app.url("/oauth/token"))
        .header("authorization", format!("Basic {raw}"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "a@example.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "invalid_client").await;
}
