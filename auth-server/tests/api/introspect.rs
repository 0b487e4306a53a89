//! docs/spec/auth-server.md §4 and §8: introspection, and every way a token becomes inactive.

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestClient, assert_error, spawn_app};

struct Setup {
    app: TestApp,
    rs: TestClient,
    client: TestClient,
    user_id: uuid::Uuid,
    token: String,
}

async fn setup() -> Setup {
    let app = spawn_app().await;
    let rs = app.create_client("tokens:introspect", &[]).await;
    let client = app
        .create_client("rooms:list rooms:create", &["example.com"])
        .await;
    let user_id = app.create_user("Jane@Example.com").await;
    let token = app.access_token(&client, "jane@example.com").await;
    Setup {
        app,
        rs,
        client,
        user_id,
        token,
    }
}

fn inactive() -> Value {
    json!({"active": false})
}

#[tokio::test]
async fn an_active_token_gets_the_full_answer() {
    let s = setup().await;
    let a = s.app.introspection(&s.rs, &s.token).await;
    let claims = crate::helpers::decode_parts(&s.token).1;
    assert_eq!(a["active"], true);
    assert_eq!(a["scope"], "rooms:create rooms:list");
    assert_eq!(a["client_id"], s.client.client_id);
    assert_eq!(a["sub"], s.user_id.to_string());
    assert_eq!(a["user_id"], s.user_id.to_string());
    assert_eq!(a["username"], "Jane@Example.com");
    assert_eq!(a["token_type"], "Bearer");
    for k in ["exp", "iat", "nbf", "iss", "aud", "jti"] {
        assert_eq!(a[k], claims[k], "{k}");
    }
    assert_eq!(a["delegated"], true);
    assert_eq!(a["act"], json!({"sub": s.client.client_id}));
}

#[tokio::test]
async fn callers_must_authenticate_and_hold_the_privilege() {
    let s = setup().await;
    let r = s
        .app
        .client
        .post(s.app.url("/oauth/introspect"))
        .form(&[("token", s.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "invalid_client").await;
    let wrong = TestClient {
        client_id: s.rs.client_id.clone(),
        secret: "wrong".into(),
    };
    assert_error(
        s.app.introspect(&wrong, &s.token).await,
        401,
        "invalid_client",
    )
    .await;
    assert_error(
        s.app.introspect(&s.client, &s.token).await,
        403,
        "unauthorized_client",
    )
    .await;
    let r = s
        .app
        .client
        .post(s.app.url("/oauth/introspect"))
        .basic_auth(&s.rs.client_id, Some(&s.rs.secret))
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;
    // client_secret_post works too.
    let r = s
        .app
        .client
        .post(s.app.url("/oauth/introspect"))
        .form(&[
            ("token", s.token.as_str()),
            ("client_id", &s.rs.client_id),
            ("client_secret", &s.rs.secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["active"], true);
}

#[tokio::test]
async fn garbage_forged_and_expired_tokens_are_just_inactive() {
    let s = setup().await;
    assert_eq!(s.app.introspection(&s.rs, "garbage").await, inactive());
    let mut parts: Vec<&str> = s.token.split('.').collect();
    let changed = {
        use base64::Engine;
        let mut p = crate::helpers::decode_parts(&s.token).1;
        p["scope"] = json!("rooms:delete");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&p).unwrap())
    };
    parts[1] = &changed;
    assert_eq!(
        s.app.introspection(&s.rs, &parts.join(".")).await,
        inactive()
    );
    s.app.clock.advance(TimeDelta::seconds(3601));
    assert_eq!(s.app.introspection(&s.rs, &s.token).await, inactive());
}

#[tokio::test]
async fn a_deactivated_application_and_a_deactivated_user_make_tokens_inactive_and_reactivation_never_revives_them()
 {
    let s = setup().await;
    // Application.
    let mut app = s.app.find_client(&s.client).await;
    app.is_active = false;
    app.tokens_not_before = Some(s.app.state.clock.now());
    auth_server::store::applications::save(&s.app.state.db, &app)
        .await
        .unwrap();
    assert_eq!(s.app.introspection(&s.rs, &s.token).await, inactive());
    app.is_active = true;
    auth_server::store::applications::save(&s.app.state.db, &app)
        .await
        .unwrap();
    assert_eq!(
        s.app.introspection(&s.rs, &s.token).await,
        inactive(),
        "reactivation revives nothing"
    );
    // A token issued after the reactivation, in the same second, is good.
    let fresh = s.app.access_token(&s.client, "jane@example.com").await;
    assert_eq!(s.app.introspection(&s.rs, &fresh).await["active"], true);
    // User (a later change: iat has whole-second precision).
    s.app.clock.advance(TimeDelta::seconds(2));
    let now = s.app.state.clock.now();
    auth_server::domain::users::set_active(
        &s.app.state.db,
        &auth_server::domain::audit::Actor::Cli,
        auth_server::domain::users::UserRef::Id(s.user_id),
        false,
        now,
    )
    .await
    .unwrap();
    assert_eq!(s.app.introspection(&s.rs, &fresh).await, inactive());
    auth_server::domain::users::set_active(
        &s.app.state.db,
        &auth_server::domain::audit::Actor::Cli,
        auth_server::domain::users::UserRef::Id(s.user_id),
        true,
        now,
    )
    .await
    .unwrap();
    assert_eq!(s.app.introspection(&s.rs, &fresh).await, inactive());
    let newest = s.app.access_token(&s.client, "jane@example.com").await;
    assert_eq!(s.app.introspection(&s.rs, &newest).await["active"], true);
}

#[tokio::test]
async fn a_deleted_application_makes_its_tokens_inactive() {
    let s = setup().await;
    let app = s.app.find_client(&s.client).await;
    auth_server::domain::applications::delete(
        &s.app.state.db,
        &auth_server::domain::audit::Actor::Cli,
        &app.client_id,
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(s.app.introspection(&s.rs, &s.token).await, inactive());
}

#[tokio::test]
async fn scopes_are_intersected_with_the_applications_current_scopes() {
    let s = setup().await;
    let mut app = s.app.find_client(&s.client).await;
    app.scopes = shared::ScopeSet::parse("rooms:list rooms:delete").unwrap();
    auth_server::store::applications::save(&s.app.state.db, &app)
        .await
        .unwrap();
    assert_eq!(
        s.app.introspection(&s.rs, &s.token).await["scope"],
        "rooms:list"
    );
}

#[tokio::test]
async fn a_cached_signature_check_still_honours_revocation_deactivation_and_expiry() {
    let s = setup().await;
    // The first answer verifies the signature and caches it; the second is a cache hit.
    for _ in 0..2 {
        assert_eq!(s.app.introspection(&s.rs, &s.token).await["active"], true);
    }
    assert_eq!(s.app.revoke(&s.client, &s.token).await.status(), 200);
    assert_eq!(s.app.introspection(&s.rs, &s.token).await, inactive());

    let second = s.app.access_token(&s.client, "jane@example.com").await;
    assert_eq!(s.app.introspection(&s.rs, &second).await["active"], true);
    s.app.clock.advance(TimeDelta::seconds(2));
    let now = s.app.state.clock.now();
    auth_server::domain::users::set_active(
        &s.app.state.db,
        &auth_server::domain::audit::Actor::Cli,
        auth_server::domain::users::UserRef::Id(s.user_id),
        false,
        now,
    )
    .await
    .unwrap();
    assert_eq!(s.app.introspection(&s.rs, &second).await, inactive());

    auth_server::domain::users::set_active(
        &s.app.state.db,
        &auth_server::domain::audit::Actor::Cli,
        auth_server::domain::users::UserRef::Id(s.user_id),
        true,
        now,
    )
    .await
    .unwrap();
    s.app.clock.advance(TimeDelta::seconds(2));
    let third = s.app.access_token(&s.client, "jane@example.com").await;
    assert_eq!(s.app.introspection(&s.rs, &third).await["active"], true);
    s.app.clock.advance(TimeDelta::seconds(3601));
    assert_eq!(s.app.introspection(&s.rs, &third).await, inactive());
}

/// The caller and the token are read in one query: an application introspecting its own token
/// is one row in both roles, and the caller's own state still decides before the token's.
#[tokio::test]
async fn an_application_may_introspect_its_own_tokens_and_an_inactive_caller_is_refused() {
    let s = setup().await;
    let both = s
        .app
        .create_client("tokens:introspect rooms:list", &["example.com"])
        .await;
    let own = s.app.access_token(&both, "jane@example.com").await;
    let a = s.app.introspection(&both, &own).await;
    assert_eq!(a["active"], true);
    assert_eq!(a["client_id"], both.client_id);
    assert_eq!(a["scope"], "rooms:list");
    // Another application's token, through the same caller.
    assert_eq!(s.app.introspection(&both, &s.token).await["active"], true);
    // A deactivated caller is refused, even about a token that is still active.
    let mut rs = s.app.find_client(&s.rs).await;
    rs.is_active = false;
    auth_server::store::applications::save(&s.app.state.db, &rs)
        .await
        .unwrap();
    assert_error(
        s.app.introspect(&s.rs, &s.token).await,
        401,
        "invalid_client",
    )
    .await;
    // A deleted caller is an unknown client, whatever the token.
    let caller = s.app.find_client(&both).await;
    auth_server::domain::applications::delete(
        &s.app.state.db,
        &auth_server::domain::audit::Actor::Cli,
        &caller.client_id,
        Utc::now(),
    )
    .await
    .unwrap();
    assert_error(
        s.app.introspect(&both, &s.token).await,
        401,
        "invalid_client",
    )
    .await;
}
