//! docs/spec/rooms-api.md §1 revocation feed: every way a token dies reaches a locally-verifying rooms API
//! on its next poll (driven here), and the API fails closed when the feed is gone.

use chrono::TimeDelta;
use shared::Clock;

use crate::helpers::RoomsRequests as _;
use crate::helpers::{ALL_ROOMS, Options, Stack, assert_error, spawn_stack_with};

async fn stack() -> Stack {
    let s = spawn_stack_with(Options {
        revocation_feed: true,
        ..Default::default()
    })
    .await;
    s.poll_feed().await;
    s
}

struct Subject {
    client: crate::helpers::Client,
    user_id: uuid::Uuid,
    token: String,
}

async fn subject(s: &Stack) -> Subject {
    let client = s.client(ALL_ROOMS, &["example.com"]).await;
    let user_id = uuid::Uuid::parse_str(&s.user("jane@example.com").await).unwrap();
    let token = s.token(&client, "jane@example.com").await;
    assert_eq!(s.get(&token, "").await.status(), 200);
    Subject {
        client,
        user_id,
        token,
    }
}

async fn refused_after_poll(s: &Stack, token: &str) {
    s.poll_feed().await;
    let body = assert_error(s.get(token, "").await, 401, "invalid_token").await;
    assert_eq!(body["error_description"], "The access token was revoked");
}

async fn app_row(s: &Stack, c: &crate::helpers::Client) -> auth_server::model::Application {
    auth_server::store::applications::find_by_client_id(
        &s.auth.db,
        &shared::ClientId::parse(&c.client_id).unwrap(),
    )
    .await
    .unwrap()
    .unwrap()
}

#[tokio::test]
async fn a_revoked_token_is_refused_after_the_next_poll() {
    let s = stack().await;
    let sub = subject(&s).await;
    let r = s
        .client
        .post(format!("{}/oauth/revoke", s.auth_url))
        .basic_auth(&sub.client.client_id, Some(&sub.client.secret))
        .form(&[("token", sub.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    refused_after_poll(&s, &sub.token).await;
}

#[tokio::test]
async fn a_deactivated_application_is_refused_and_reactivation_revives_nothing() {
    let s = stack().await;
    let sub = subject(&s).await;
    let mut app = app_row(&s, &sub.client).await;
    app.is_active = false;
    app.tokens_not_before = Some(s.clock.now());
    auth_server::store::applications::save(&s.auth.db, &app)
        .await
        .unwrap();
    refused_after_poll(&s, &sub.token).await;
    app.is_active = true;
    auth_server::store::applications::save(&s.auth.db, &app)
        .await
        .unwrap();
    refused_after_poll(&s, &sub.token).await;
    let fresh = s.token(&sub.client, "jane@example.com").await;
    assert_eq!(s.get(&fresh, "").await.status(), 200);
}

#[tokio::test]
async fn a_deactivated_user_is_refused() {
    let s = stack().await;
    let sub = subject(&s).await;
    auth_server::domain::users::set_active(
        &s.auth.db,
        &auth_server::domain::audit::Actor::Cli,
        auth_server::domain::users::UserRef::Id(sub.user_id),
        false,
        s.clock.now(),
    )
    .await
    .unwrap();
    refused_after_poll(&s, &sub.token).await;
    auth_server::domain::users::set_active(
        &s.auth.db,
        &auth_server::domain::audit::Actor::Cli,
        auth_server::domain::users::UserRef::Id(sub.user_id),
        true,
        s.clock.now(),
    )
    .await
    .unwrap();
    refused_after_poll(&s, &sub.token).await;
}

#[tokio::test]
async fn removing_a_scope_rotating_the_secret_and_deleting_the_app_each_refuse_old_tokens() {
    for change in ["remove-scope", "rotate-secret", "delete"] {
        let s = stack().await;
        let sub = subject(&s).await;
        let app = app_row(&s, &sub.client).await;
        let now = s.clock.now();
        let id = &app.client_id;
        let db = &s.auth.db;
        use auth_server::domain::applications;
        use auth_server::domain::audit::Actor;
        match change {
            "remove-scope" => {
                let changes = applications::Changes {
                    remove_scopes: vec![shared::Scope::RoomsDelete],
                    ..Default::default()
                };
                applications::update(db, &Actor::Cli, id, changes, u32::MAX, now)
                    .await
                    .unwrap();
            }
            "rotate-secret" => {
                applications::rotate_secret(db, &Actor::Cli, id, Default::default(), now)
                    .await
                    .unwrap();
            }
            _ => {
                applications::delete(db, &Actor::Cli, id, now)
                    .await
                    .unwrap();
            }
        }
        refused_after_poll(&s, &sub.token).await;
    }
}

#[tokio::test]
async fn the_cli_path_sets_not_before_too() {
    // The same changes made by the CLI binary (another process) reach the rooms API.
    let s = stack().await;
    let sub = subject(&s).await;
    let url = s.auth_db_url();
    let out = std::process::Command::new(s.auth_binary())
        .env_clear()
        .env("AUTH_DATABASE_URL", &url)
        .env("TOKEN_SIGNING_ALG", "EdDSA")
        .args(["app", "rotate-secret", &sub.client.client_id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The CLI uses the real clock; move ours past it.
    s.clock.set(chrono::Utc::now() + TimeDelta::seconds(2));
    refused_after_poll(&s, &sub.token).await;
}

#[tokio::test]
async fn the_rooms_api_fails_closed_without_the_feed_and_recovers() {
    let mut s = stack().await;
    let sub = subject(&s).await;
    s.stop_auth().await;
    assert!(
        s.rooms
            .auth
            .revocations()
            .unwrap()
            .poll_once()
            .await
            .is_err()
    );
    // Within max(3 x poll, 60 s) of the last good poll the cached state still serves.
    s.clock.advance(TimeDelta::seconds(59));
    assert_eq!(s.get(&sub.token, "").await.status(), 200);
    s.clock.advance(TimeDelta::seconds(2));
    assert_error(s.get(&sub.token, "").await, 503, "temporarily_unavailable").await;
    let ready = s
        .client
        .get(format!("{}/readyz", s.rooms_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    // Back again: one successful poll and requests are served.
    s.restart_auth().await;
    s.poll_feed().await;
    assert_eq!(s.get(&sub.token, "").await.status(), 200);
    let ready = s
        .client
        .get(format!("{}/readyz", s.rooms_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn a_revoked_token_stays_refused_for_as_long_as_the_leeway_accepts_it() {
    let s = spawn_stack_with(Options {
        revocation_feed: true,
        rooms: Box::new(|c| c.leeway_seconds = shared::claims::MAX_LEEWAY_SECONDS),
        ..Default::default()
    })
    .await;
    s.poll_feed().await;
    let sub = subject(&s).await;
    let r = s
        .client
        .post(format!("{}/oauth/revoke", s.auth_url))
        .basic_auth(&sub.client.client_id, Some(&sub.client.secret))
        .form(&[("token", sub.token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    refused_after_poll(&s, &sub.token).await;
    // Past exp, inside the 300 s leeway: the rooms API would accept the token, so the poller
    // must still hold its revocation (the feed's side: auth-server revoke.rs).
    s.clock.advance(TimeDelta::seconds(3600 + 290));
    refused_after_poll(&s, &sub.token).await;
}

#[tokio::test]
async fn a_key_rotated_now_is_fetched_at_once_even_after_forged_kids_used_the_refetch_slot() {
    let s = stack().await;
    let sub = subject(&s).await;
    // An attacker's token with a made-up kid uses the refetch slot (once per 10 s).
    let payload = sub.token.split('.').nth(1).unwrap();
    let forged_header = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"alg":"EdDSA","typ":"at+jwt","kid":"attacker-kid"}"#,
    );
    let forged = format!("{forged_header}.{payload}.AAAA");
    assert_eq!(s.get(&forged, "").await.status(), 401);
    // The operator rotates with --now; the auth-server signs with the new key after its refresh.
    let kid = s
        .auth
        .keys
        .rotate(&s.auth.db, s.clock.now(), true)
        .await
        .unwrap();
    s.clock.advance(TimeDelta::seconds(1));
    s.auth
        .keys
        .refresh(&s.auth.db, s.clock.now())
        .await
        .unwrap();
    s.poll_feed().await; // the feed announces the new kid
    let token = s.token(&sub.client, "jane@example.com").await;
    let header = sub_header(&token);
    assert_eq!(header["kid"], kid.as_str(), "signed with the new key");
    assert_eq!(
        s.get(&token, "").await.status(),
        200,
        "no 401 for a genuine new kid"
    );
}

fn sub_header(token: &str) -> serde_json::Value {
    let raw = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        token.split('.').next().unwrap(),
    )
    .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

#[tokio::test]
async fn a_retired_key_leaves_the_jwks_and_its_tokens_are_refused_within_one_poll() {
    let s = stack().await;
    let sub = subject(&s).await;
    let old_kid = sub_header(&sub.token)["kid"].as_str().unwrap().to_owned();
    let now = s.clock.now();
    // The key that signs now can't be retired: there would be no signer.
    assert!(matches!(
        auth_server::domain::signing::retire(&s.auth.db, &old_kid, now).await,
        Err(auth_server::domain::signing::RetireError::SignsNow(_))
    ));
    let new_kid = s.auth.keys.rotate(&s.auth.db, now, true).await.unwrap();
    s.clock.advance(TimeDelta::seconds(1));
    auth_server::domain::signing::retire(&s.auth.db, &old_kid, s.clock.now())
        .await
        .unwrap();
    // Within one poll every local verifier refuses the stolen key's tokens, whatever their exp.
    refused_after_poll(&s, &sub.token).await;
    // The server drops it at its next key refresh and signs with the new one.
    s.auth
        .keys
        .refresh(&s.auth.db, s.clock.now())
        .await
        .unwrap();
    let jwks: serde_json::Value = s
        .client
        .get(format!("{}/.well-known/jwks.json", s.auth_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, vec![new_kid.as_str()]);
    let fresh = s.token(&sub.client, "jane@example.com").await;
    assert_eq!(sub_header(&fresh)["kid"], new_kid.as_str());
    assert_eq!(s.get(&fresh, "").await.status(), 200);
}
