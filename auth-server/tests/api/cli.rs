//! docs/spec/operations.md CLI: every verb, against the same database a running server uses.

use std::process::{Command, Output};

use serde_json::Value;

use crate::helpers::{fresh_database_url, spawn_on};

pub(crate) struct Cli {
    url: String,
    kek: String,
    _dir: Option<tempfile::TempDir>,
}

impl Cli {
    async fn new() -> (Self, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = fresh_database_url(dir.path()).await;
        use base64::Engine;
        let kek = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        let cli = Self {
            url,
            kek,
            _dir: None,
        };
        // As an operator would: the database exists before commands run on it.
        cli.ok(&["migrate"]);
        (cli, dir)
    }

    /// Blocks its thread until the command exits: a test with a running server uses the
    /// multi-threaded runtime, so the server (its change poll included) keeps running meanwhile,
    /// as it would in its own process.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_auth-server"))
            .env_clear()
            .env("AUTH_DATABASE_URL", &self.url)
            .env("AUTH_KEY_ENCRYPTION_KEY", &self.kek)
            .args(args)
            .output()
            .unwrap()
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    pub(crate) fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    pub(crate) fn refused(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert_eq!(o.status.code(), Some(1), "{args:?} should be refused");
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        err
    }
}

#[tokio::test]
async fn app_create_shows_the_secret_once_and_stores_only_an_argon2id_hash() {
    let (cli, _dir) = Cli::new().await;
    let created = cli.json(&[
        "app",
        "create",
        "--name",
        "Calendar",
        "--scope",
        "rooms:create",
        "--scope",
        "rooms:list",
        "--domain",
        "Example.COM",
        "--domain",
        "*.corp.example.org",
        "--json",
    ]);
    let id = created["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    assert_eq!(id.len(), 40);
    assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(secret.len(), 48);
    assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        created["scopes"],
        serde_json::json!(["rooms:create", "rooms:list"])
    );
    assert_eq!(
        created["domains"],
        serde_json::json!(["example.com", "*.corp.example.org"])
    );
    assert_eq!(created["is_active"], true);
    assert_eq!(created["name"], "Calendar");
    for args in [
        vec!["app", "show", id, "--json"],
        vec!["app", "list", "--json"],
        vec!["app", "show", id],
    ] {
        let out = cli.ok(&args);
        assert!(!out.contains(secret), "secret shown again by {args:?}");
        assert!(!out.contains("argon2"), "hash shown by {args:?}");
    }
    let db = auth_server::startup::open_database(&cli.url, 1)
        .await
        .unwrap();
    let app = auth_server::store::applications::find_by_client_id(
        &db,
        &shared::ClientId::parse(id).unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        app.secret_hash
            .starts_with("$argon2id$v=19$m=7168,t=5,p=1$")
    );
    assert!(!app.secret_hash.contains(secret));
}

#[tokio::test]
async fn app_create_defaults_to_no_scopes_and_warns_without_domains() {
    let (cli, _dir) = Cli::new().await;
    let o = cli.run(&["app", "create", "--name", "Bare", "--json"]);
    assert!(o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["scopes"], serde_json::json!([]));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("warning"),
        "warns about no domains"
    );
    let text = cli.ok(&["app", "create", "--name", "Text"]);
    assert!(text.contains("client_id:") && text.contains("client_secret:"));
}

#[tokio::test]
async fn app_create_refuses_bad_scopes_domains_and_names() {
    let (cli, _dir) = Cli::new().await;
    cli.refused(&["app", "create", "--name", "X", "--scope", "rooms:fly"]);
    for d in [
        "*.com",
        "*.co.uk",
        "exa mple.com",
        "-bad.com",
        "com",
        "a.*.com",
    ] {
        cli.refused(&["app", "create", "--name", "X", &format!("--domain={d}")]);
    }
    cli.refused(&["app", "create", "--name", "  "]);
    cli.refused(&["app", "create", "--name", &"n".repeat(256)]);
    // Clap's own errors exit 2.
    assert_eq!(cli.run(&["app", "create"]).status.code(), Some(2));
    assert_eq!(cli.run(&["app", "frobnicate"]).status.code(), Some(2));
}

#[tokio::test]
async fn app_update_changes_scopes_domains_name_and_activity() {
    let (cli, _dir) = Cli::new().await;
    let created = cli.json(&[
        "app",
        "create",
        "--name",
        "A",
        "--scope",
        "rooms:list",
        "--json",
    ]);
    let id = created["client_id"].as_str().unwrap();
    let v = cli.json(&[
        "app",
        "update",
        id,
        "--name",
        "B",
        "--add-scope",
        "rooms:create",
        "--add-scope",
        "tokens:introspect",
        "--remove-scope",
        "rooms:list",
        "--add-domain",
        "example.com",
        "--json",
    ]);
    assert_eq!(v["name"], "B");
    assert_eq!(
        v["scopes"],
        serde_json::json!(["rooms:create", "tokens:introspect"])
    );
    assert_eq!(v["domains"], serde_json::json!(["example.com"]));
    let v = cli.json(&[
        "app",
        "update",
        id,
        "--remove-domain",
        "example.com",
        "--deactivate",
        "--json",
    ]);
    assert_eq!(v["domains"], serde_json::json!([]));
    assert_eq!(v["is_active"], false);
    let v = cli.json(&["app", "update", id, "--activate", "--json"]);
    assert_eq!(v["is_active"], true);
    cli.refused(&["app", "update", id, "--remove-domain", "nothere.com"]);
    cli.refused(&["app", "update", &"Z".repeat(40), "--name", "x"]);
    cli.refused(&["app", "update", "short", "--name", "x"]);
    assert_eq!(
        cli.run(&["app", "update", id, "--activate", "--deactivate"])
            .status
            .code(),
        Some(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_changes_take_effect_on_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await;
    let app = spawn_on(url.clone(), dir, |_| {}).await;
    let cli = Cli {
        url,
        kek: String::new(),
        _dir: None,
    };
    let cli = Cli {
        kek: {
            use base64::Engine;
            use secrecy::ExposeSecret;
            base64::engine::general_purpose::STANDARD.encode(
                app.state
                    .config
                    .key_encryption_key
                    .as_ref()
                    .unwrap()
                    .expose_secret(),
            )
        },
        ..cli
    };
    cli.ok(&[
        "user",
        "create",
        "--email",
        "jane@example.com",
        "--sub",
        "idp|jane",
    ]);
    let created = cli.json(&[
        "app",
        "create",
        "--name",
        "Live",
        "--scope",
        "rooms:list",
        "--json",
    ]);
    let c = crate::helpers::TestClient {
        client_id: created["client_id"].as_str().unwrap().to_owned(),
        secret: created["client_secret"].as_str().unwrap().to_owned(),
    };
    assert_eq!(app.token_basic(&c, "jane@example.com").await.status(), 200);

    // Rotating the secret: the old one stops working at once; the new one works.
    let rotated = cli.json(&["app", "rotate-secret", &c.client_id, "--json"]);
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, c.secret);
    assert_eq!(app.token_basic(&c, "jane@example.com").await.status(), 401);
    let c2 = crate::helpers::TestClient {
        client_id: c.client_id.clone(),
        secret: new_secret,
    };
    assert_eq!(app.token_basic(&c2, "jane@example.com").await.status(), 200);
    let stored = app.find_client(&c2).await;
    assert!(stored.tokens_not_before.is_some());

    // --keep-tokens leaves tokens_not_before alone.
    let before = app.find_client(&c2).await.tokens_not_before;
    let kept = cli.json(&[
        "app",
        "rotate-secret",
        &c.client_id,
        "--keep-tokens",
        "--json",
    ]);
    assert!(kept["client_secret"].is_string());
    assert_eq!(app.find_client(&c2).await.tokens_not_before, before);

    // Deactivating the user, then the application.
    cli.ok(&["user", "deactivate", "jane@example.com"]);
    let c3 = crate::helpers::TestClient {
        client_id: c.client_id.clone(),
        secret: kept["client_secret"].as_str().unwrap().to_owned(),
    };
    assert_eq!(app.token_basic(&c3, "jane@example.com").await.status(), 403);
    cli.ok(&["user", "activate", "jane@example.com"]);
    assert_eq!(app.token_basic(&c3, "jane@example.com").await.status(), 200);
    cli.ok(&["app", "update", &c.client_id, "--deactivate"]);
    assert_eq!(app.token_basic(&c3, "jane@example.com").await.status(), 401);

    // Deleting: gone from list and show, and its credentials fail.
    cli.ok(&["app", "delete", &c.client_id]);
    assert_eq!(app.token_basic(&c3, "jane@example.com").await.status(), 401);
    cli.refused(&["app", "show", &c.client_id]);
    let list = cli.json(&["app", "list", "--json"]);
    assert!(list.as_array().unwrap().is_empty());
    cli.refused(&["app", "delete", &c.client_id]);

    // keys rotate on the CLI is seen by the server after its refresh.
    let before = app.jwks().await["keys"].as_array().unwrap().len();
    cli.ok(&["keys", "rotate"]);
    app.state
        .keys
        .refresh(&app.state.db, shared::Clock::now(app.clock.as_ref()))
        .await
        .unwrap();
    assert_eq!(
        app.jwks().await["keys"].as_array().unwrap().len(),
        before + 1
    );
}

#[tokio::test]
async fn user_create_list_activate_deactivate() {
    let (cli, _dir) = Cli::new().await;
    let u = cli.json(&["user", "create", "--email", " Jane@Example.com ", "--json"]);
    assert_eq!(u["email"], "Jane@Example.com");
    assert_eq!(u["external_sub"], Value::Null);
    assert_eq!(u["is_active"], true);
    // Attaching a subject to the provisional user, not a second user.
    let attached = cli.json(&[
        "user",
        "create",
        "--email",
        "jane@example.com",
        "--sub",
        "idp|1",
        "--json",
    ]);
    assert_eq!(attached["id"], u["id"]);
    assert_eq!(attached["external_sub"], "idp|1");
    cli.refused(&[
        "user",
        "create",
        "--email",
        "JANE@example.com",
        "--sub",
        "idp|2",
    ]);
    cli.refused(&[
        "user",
        "create",
        "--email",
        "other@example.com",
        "--sub",
        "idp|1",
    ]);
    for bad in [
        "a@b@example.com",
        "user@example.com.",
        "no-at-sign",
        "usér@example.com",
    ] {
        cli.refused(&["user", "create", "--email", bad]);
    }
    let list = cli.json(&["user", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    cli.ok(&["user", "deactivate", "jane@example.com"]);
    assert_eq!(cli.json(&["user", "list", "--json"])[0]["is_active"], false);
    cli.ok(&["user", "activate", "JANE@example.com"]);
    assert_eq!(cli.json(&["user", "list", "--json"])[0]["is_active"], true);
    cli.refused(&["user", "deactivate", "ghost@example.com"]);
    assert!(cli.ok(&["user", "list"]).contains("Jane@Example.com"));
}

#[tokio::test]
async fn keys_list_and_rotate() {
    let (cli, _dir) = Cli::new().await;
    assert_eq!(cli.json(&["keys", "list", "--json"]), serde_json::json!([]));
    // On an empty database the first key is created (active at once), then rotated.
    cli.ok(&["keys", "rotate", "--now"]);
    cli.ok(&["keys", "rotate"]);
    let keys = cli.json(&["keys", "list", "--json"]);
    let states: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["superseded", "active", "pending"]);
    for k in keys.as_array().unwrap() {
        assert_eq!(k["alg"], "EdDSA");
        assert!(k.get("private_key_encrypted").is_none());
    }
    let text = cli.ok(&["keys", "list"]);
    assert!(text.contains("pending") && text.contains("active"));
}

#[tokio::test]
async fn migrate_and_openapi_subcommands() {
    let (cli, _dir) = Cli::new().await;
    assert!(cli.ok(&["migrate"]).contains("migrations applied"));
    assert!(cli.ok(&["openapi"]).contains("/oauth/token"));
}

/// A running server and a CLI on its database.
pub(crate) async fn live() -> (crate::helpers::TestApp, Cli) {
    use base64::Engine;
    use secrecy::ExposeSecret;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(dir.path()).await;
    let app = spawn_on(url.clone(), dir, |_| {}).await;
    let kek = base64::engine::general_purpose::STANDARD.encode(
        app.state
            .config
            .key_encryption_key
            .as_ref()
            .unwrap()
            .expose_secret(),
    );
    (
        app,
        Cli {
            url,
            kek,
            _dir: None,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_domain_kills_the_tokens_issued_before() {
    let (app, cli) = live().await;
    let rs = app.create_client("tokens:introspect", &[]).await;
    let c = app
        .create_client("rooms:list", &["example.com", "example.org"])
        .await;
    app.create_user("jane@example.com").await;
    let token = app.access_token(&c, "jane@example.com").await;
    assert_eq!(app.introspection(&rs, &token).await["active"], true);
    cli.ok(&[
        "app",
        "update",
        &c.client_id,
        "--remove-domain",
        "example.com",
    ]);
    assert_eq!(
        app.introspection(&rs, &token).await,
        serde_json::json!({"active": false}),
        "a token for a user of the removed domain dies with it"
    );
    assert_eq!(app.token_basic(&c, "jane@example.com").await.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_changes_in_the_same_second_both_kill_earlier_tokens() {
    let (app, cli) = live().await;
    let rs = app.create_client("tokens:introspect", &[]).await;
    let c = app.create_client("rooms:list", &[]).await;
    app.create_user("jane@example.com").await;
    // Change 1 (a reactivation after a deactivation), a token minted in the very second
    // change 1 named as its not-before (the server's clock set there: a slow run would
    // otherwise mint it a second later and prove nothing), then change 2 (a rotation).
    cli.ok(&["user", "deactivate", "jane@example.com"]);
    cli.ok(&["user", "activate", "jane@example.com"]);
    let email = shared::Email::parse("jane@example.com").unwrap();
    let user = auth_server::store::users::find_by_email(&app.state.db, &email)
        .await
        .unwrap()
        .unwrap();
    let change_1 = shared::claims::not_before_seconds(user.tokens_not_before.unwrap());
    // Mint at the start of that second, as the token endpoint's own wait would: real time
    // reaches it first, so change 2 below happens after the token, as it would in production.
    let start_of = chrono::DateTime::from_timestamp(change_1, 0).unwrap();
    if let Ok(wait) = (start_of - chrono::Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
    app.clock.set(start_of);
    let token = app.access_token(&c, "jane@example.com").await;
    let iat = crate::helpers::decode_parts(&token).1["iat"]
        .as_i64()
        .unwrap();
    assert_eq!(iat, change_1, "the token is minted in change 1's second");
    let rotated = cli.json(&["app", "rotate-secret", &c.client_id, "--json"]);
    app.clock.set(chrono::Utc::now());
    let change_2 = app.find_client(&c).await.tokens_not_before.unwrap();
    assert!(
        shared::claims::not_before_seconds(change_2) > iat,
        "change 2 names a later second"
    );
    assert_eq!(
        app.introspection(&rs, &token).await,
        serde_json::json!({"active": false})
    );
    let c2 = crate::helpers::TestClient {
        client_id: c.client_id.clone(),
        secret: rotated["client_secret"].as_str().unwrap().to_owned(),
    };
    let fresh = app.access_token(&c2, "jane@example.com").await;
    assert_eq!(app.introspection(&rs, &fresh).await["active"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_retire_refuses_the_signing_key_and_unknown_kids() {
    let (app, cli) = live().await;
    let kid = app.state.keys.snapshot().keys()[0].kid.clone();
    let err = cli.refused(&["keys", "retire", &kid]);
    assert!(err.contains("signs now"), "{err}");
    let err = cli.refused(&["keys", "retire", "no-such-kid"]);
    assert!(err.contains("no key"), "{err}");
    cli.ok(&["keys", "rotate", "--now"]);
    let out = cli.ok(&["keys", "retire", &kid]);
    assert!(out.contains("retired"), "{out}");
    let list = cli.ok(&["keys", "list"]);
    assert!(list.contains("retired"), "{list}");
    let err = cli.refused(&["keys", "retire", &kid]);
    assert!(err.contains("already retired"), "{err}");
}
