//! docs/spec/auth-server.md §3: the key lifecycle, driven by moving the clock.

use chrono::TimeDelta;
use shared::Clock;

use crate::helpers::{decode_parts, fresh_database_url, spawn_app, test_config};

fn kids(jwks: &serde_json::Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn jwks_publishes_the_signing_key_with_cache_headers() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    let jwks: serde_json::Value = r.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "OKP");
    assert_eq!(keys[0]["crv"], "Ed25519");
    assert!(keys[0].get("d").is_none(), "no private part");
}

#[tokio::test]
async fn a_rotated_key_is_published_first_signs_after_300s_and_the_old_one_retires_after_ttl() {
    let app = spawn_app().await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    let old_kid = decode_parts(&app.access_token(&c, "jane@example.com").await).0["kid"]
        .as_str()
        .unwrap()
        .to_owned();

    let new_kid = app
        .state
        .keys
        .rotate(&app.state.db, app.clock.now(), false)
        .await
        .unwrap();
    app.state
        .keys
        .refresh(&app.state.db, app.clock.now())
        .await
        .unwrap();
    // Published at once, not yet signing.
    assert_eq!(
        kids(&app.jwks().await),
        vec![old_kid.clone(), new_kid.clone()]
    );
    assert_eq!(
        decode_parts(&app.access_token(&c, "jane@example.com").await).0["kid"],
        old_kid
    );

    // 300 s later the new key signs; the old one stays published.
    app.clock.advance(TimeDelta::seconds(301));
    assert_eq!(
        decode_parts(&app.access_token(&c, "jane@example.com").await).0["kid"],
        new_kid
    );
    assert_eq!(
        kids(&app.jwks().await),
        vec![old_kid.clone(), new_kid.clone()]
    );

    // After its last token has expired (+60 s), the old key leaves the JWKS.
    app.clock.advance(TimeDelta::seconds(3600 + 30));
    assert_eq!(kids(&app.jwks().await).len(), 2);
    app.clock.advance(TimeDelta::seconds(31));
    assert_eq!(kids(&app.jwks().await), vec![new_kid]);
}

#[tokio::test]
async fn rotate_now_signs_at_the_next_refresh_and_other_replicas_agree() {
    let app = spawn_app().await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    // A second replica over the same database.
    let mut config = test_config(app.database_url.clone());
    config.key_encryption_key = app.state.config.key_encryption_key.clone();
    let replica = auth_server::startup::build_state(config, app.clock.clone())
        .await
        .unwrap();

    let new_kid = replica
        .keys
        .rotate(&replica.db, app.clock.now(), true)
        .await
        .unwrap();
    app.clock.advance(TimeDelta::seconds(1));
    app.state
        .keys
        .refresh(&app.state.db, app.clock.now())
        .await
        .unwrap();
    assert_eq!(
        decode_parts(&app.access_token(&c, "jane@example.com").await).0["kid"],
        new_kid
    );
    let rows = auth_server::store::keys::all(&app.state.db).await.unwrap();
    let info = auth_server::domain::signing::describe(&rows, app.clock.now());
    assert_eq!(info.len(), 2);
    assert_eq!(info[0].state.to_string(), "superseded");
    assert_eq!(info[1].state.to_string(), "active");
    assert!(
        rows[0].superseded_at.is_some(),
        "supersession recorded in the table"
    );
}

/// Publish-before-sign across replicas: a key another replica already signs with is in this
/// replica's JWKS at once, not after its own `KEY_REFRESH_SECONDS`; a retired one leaves it.
#[tokio::test]
async fn every_replica_publishes_a_key_as_soon_as_any_replica_signs_with_it() {
    let app = spawn_app().await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    let mut config = test_config(app.database_url.clone());
    config.key_encryption_key = app.state.config.key_encryption_key.clone();
    let replica = auth_server::startup::build_state(config, app.clock.clone())
        .await
        .unwrap();
    let old_kid = kids(&app.jwks().await)[0].clone();
    let new_kid = replica
        .keys
        .rotate(&replica.db, app.clock.now(), true)
        .await
        .unwrap();
    replica
        .keys
        .refresh(&replica.db, app.clock.now())
        .await
        .unwrap();
    assert_eq!(
        replica
            .keys
            .snapshot()
            .signing_key(app.clock.now())
            .unwrap()
            .kid,
        new_kid,
        "the other replica signs with the new key"
    );
    // No refresh on `app`: its JWKS reads the table.
    assert_eq!(
        kids(&app.jwks().await),
        vec![old_kid.clone(), new_kid.clone()]
    );
    // Having loaded it for the JWKS, it signs with it too.
    assert_eq!(
        decode_parts(&app.access_token(&c, "jane@example.com").await).0["kid"],
        new_kid,
        "the JWKS request loaded it"
    );
    auth_server::domain::signing::retire(&replica.db, &old_kid, app.clock.now())
        .await
        .unwrap();
    assert_eq!(kids(&app.jwks().await), vec![new_kid]);
}

/// Replicas started together on a database nobody migrated yet (a fresh fleet, or the first
/// start after an upgrade without `migrate`) take turns migrating: all of them start.
#[tokio::test]
async fn replicas_starting_together_on_an_unmigrated_database_all_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await;
    let open = || auth_server::startup::open_database(&url, 1);
    let (a, b, c) = tokio::join!(open(), open(), open());
    for r in [a, b, c] {
        if let Err(e) = r {
            panic!("a replica could not start: {e:#}");
        }
    }
}

#[tokio::test]
async fn two_replicas_starting_on_an_empty_database_create_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await;
    let config = test_config(url.clone());
    // Migrate first so both starts race on the key, not on the schema.
    auth_server::startup::open_database(&url, 1).await.unwrap();
    let clock = std::sync::Arc::new(shared::SystemClock);
    let (a, b) = tokio::join!(
        auth_server::startup::build_state(config.clone(), clock.clone()),
        auth_server::startup::build_state(config.clone(), clock.clone()),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(auth_server::store::keys::all(&a.db).await.unwrap().len(), 1);
    let now = clock.now();
    assert_eq!(
        a.keys.snapshot().signing_key(now).unwrap().kid,
        b.keys.snapshot().signing_key(now).unwrap().kid
    );
}

#[tokio::test]
async fn switching_algorithm_creates_a_published_key_that_signs_later() {
    let app = spawn_app().await;
    let mut config = test_config(app.database_url.clone());
    config.key_encryption_key = app.state.config.key_encryption_key.clone();
    config.signing_alg = shared::SigningAlg::ES256;
    let switched = auth_server::startup::build_state(config, app.clock.clone())
        .await
        .unwrap();
    let set = switched.keys.snapshot();
    assert_eq!(set.keys().len(), 2);
    assert_eq!(
        set.signing_key(app.clock.now()).unwrap().alg,
        shared::SigningAlg::EdDSA
    );
    let later = app.clock.now() + TimeDelta::seconds(301);
    assert_eq!(
        set.signing_key(later).unwrap().alg,
        shared::SigningAlg::ES256
    );
}

#[tokio::test]
async fn private_keys_are_encrypted_at_rest() {
    let app = spawn_app().await;
    let rows = auth_server::store::keys::all(&app.state.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].private_key_encrypted.contains("PRIVATE"));
    let public: serde_json::Value = serde_json::from_str(&rows[0].public_jwk).unwrap();
    assert!(public.get("d").is_none());
    // The wrong key-encryption key cannot load them.
    let mut config = test_config(app.database_url.clone());
    config.key_encryption_key = Some(secrecy::SecretSlice::from(vec![1u8; 32]));
    let err = auth_server::startup::build_state(config, app.clock.clone())
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("cannot be decrypted"),
        "{err:#}"
    );
}

#[tokio::test]
async fn a_lost_key_encryption_key_file_is_never_replaced_while_keys_exist_on_sqlite() {
    // The generated KEK file is SQLite's.
    server_kit::testing::require_backend("sqlite");
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await;
    let path = server_kit::db::sqlite_path(&url).unwrap().to_owned();
    let mut config = test_config(url.clone());
    config.key_encryption_key = None;
    let clock = std::sync::Arc::new(shared::SystemClock);
    auth_server::startup::build_state(config.clone(), clock.clone())
        .await
        .unwrap();
    let kek = std::path::PathBuf::from(format!("{path}.kek"));
    assert!(kek.exists(), "generated for a database with no keys");
    std::fs::remove_file(&kek).unwrap();
    for _ in 0..2 {
        let err = auth_server::startup::build_state(config.clone(), clock.clone())
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("holds signing keys"), "{err:#}");
        assert!(!kek.exists(), "no wrong key written");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn database_files_are_private_on_sqlite() {
    use std::os::unix::fs::PermissionsExt;
    server_kit::testing::require_backend("sqlite");
    let app = spawn_app().await;
    let path = server_kit::db::sqlite_path(&app.database_url).unwrap();
    for file in [path.to_owned(), format!("{path}-wal")] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}: {mode:o}");
    }
}

/// `TOKEN_SIGNING_ALG=HS256`: tokens are signed with the shared secret (their `kid` names it)
/// and the JWKS publishes nothing.
#[tokio::test]
async fn hs256_mode_signs_with_the_shared_secret_and_publishes_no_key() {
    let secret = b"a-shared-secret-of-at-least-32-bytes".to_vec();
    let kid = auth_server::domain::signing::hs256_kid(&secret);
    let app = crate::helpers::spawn_app_with(|c| {
        c.signing_alg = shared::SigningAlg::HS256;
        c.hs256_secret = Some(secrecy::SecretSlice::from(secret.clone()));
    })
    .await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    let token = app.access_token(&c, "jane@example.com").await;
    let (header, _) = decode_parts(&token);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["kid"], kid.as_str());
    let verifier = josekit::jws::HS256.verifier_from_bytes(&secret).unwrap();
    assert!(josekit::jwt::decode_with_verifier(&token, &verifier).is_ok());
    assert_eq!(kids(&app.jwks().await), Vec::<String>::new());
}
