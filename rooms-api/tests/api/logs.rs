//! docs/spec/security.md "Everywhere": a full run of both real binaries at debug log level leaves no
//! client secret, token, argon2 hash, key material or e-mail in a path in the logs; SIGTERM
//! drains and exits 0.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::binaries::{Process, app, bins, free_port, prepare, terminate, token, wait_ready};

#[tokio::test]
async fn no_secret_token_or_hash_reaches_the_logs_and_sigterm_exits_cleanly() {
    let b = bins();
    let dir = tempfile::tempdir().unwrap();
    let auth_db = format!("sqlite://{}/auth.sqlite?mode=rwc", dir.path().display());
    let rooms_db = format!("sqlite://{}/rooms.sqlite?mode=rwc", dir.path().display());
    let (auth_port, rooms_port) = (free_port(), free_port());
    let auth_url = format!("http://127.0.0.1:{auth_port}");
    let rooms_url = format!("http://127.0.0.1:{rooms_port}");

    // The CLI works on a database that exists: made first, as an operator would.
    prepare(&b, &auth_db, "jane@example.com");
    let (id, secret) = app(&b, &auth_db, "A", &["rooms:create", "rooms:list"]);
    let (rs_id, rs_secret) = app(
        &b,
        &auth_db,
        "RS",
        &["tokens:introspect", "tokens:revocations"],
    );
    let (id, secret, rs_id, rs_secret) = (
        id.as_str(),
        secret.as_str(),
        rs_id.as_str(),
        rs_secret.as_str(),
    );

    let auth_log = dir.path().join("auth.log");
    let rooms_log = dir.path().join("rooms.log");
    let mut auth = Command::new(&b.auth)
        .env_clear()
        .env("AUTH_DATABASE_URL", &auth_db)
        .env("AUTH_LISTEN", format!("127.0.0.1:{auth_port}"))
        .env("AUTH_ISSUER", &auth_url)
        .env("RUST_LOG", "debug")
        .env("AUTH_METRICS_LISTEN", "127.0.0.1:0")
        .env("AUTH_ADMIN_LISTEN", "127.0.0.1:0")
        .stderr(Stdio::from(std::fs::File::create(&auth_log).unwrap()))
        .spawn()
        .map(Process)
        .unwrap();
    let mut rooms = Command::new(&b.rooms)
        .env_clear()
        .env("ROOMS_DATABASE_URL", &rooms_db)
        .env("ROOMS_LISTEN", format!("127.0.0.1:{rooms_port}"))
        .env("TOKEN_ISSUER", &auth_url)
        .env("AUTH_SERVER_URL", &auth_url)
        .env("REVOCATION_CLIENT_ID", rs_id)
        .env("REVOCATION_CLIENT_SECRET", rs_secret)
        .env("LOG_FORMAT", "json")
        .env("ROOMS_METRICS_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "debug")
        .stderr(Stdio::from(std::fs::File::create(&rooms_log).unwrap()))
        .spawn()
        .map(Process)
        .unwrap();
    let http = reqwest::Client::new();
    wait_ready(&http, &auth_url, &auth_log).await;
    wait_ready(&http, &rooms_url, &rooms_log).await;

    let token = token(&http, &auth_url, (id, secret), "jane@example.com", &[]).await;
    let wrong = http
        .post(format!("{auth_url}/oauth/token"))
        .basic_auth(id, Some("wrong-secret-attempt"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "jane@example.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let created = http
        .post(format!("{rooms_url}/external-api/v1.0/rooms"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let request_id = created.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let created_id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        http.get(format!("{rooms_url}/external-api/v1.0/rooms"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // An e-mail in a path (revoking someone's access) is logged as its template.
    let room_id = created_id.as_str();
    let revoke_access = http
        .delete(format!(
            "{rooms_url}/external-api/v1.0/rooms/{room_id}/accesses/hidden.person%40example.com"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        revoke_access.status(),
        403,
        "the token lacks rooms:grant-access"
    );
    let bad = http
        .get(format!("{rooms_url}/external-api/v1.0/rooms"))
        .bearer_auth(format!("{token}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let introspected: Value = http
        .post(format!("{auth_url}/oauth/introspect"))
        .basic_auth(rs_id, Some(rs_secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true);
    assert_eq!(
        http.post(format!("{auth_url}/oauth/revoke"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    assert!(
        terminate(&mut rooms.0).success(),
        "rooms-api exits 0 on SIGTERM"
    );
    assert!(
        terminate(&mut auth.0).success(),
        "auth-server exits 0 on SIGTERM"
    );

    let logs =
        std::fs::read_to_string(&auth_log).unwrap() + &std::fs::read_to_string(&rooms_log).unwrap();
    assert!(logs.len() > 1000, "debug logs were written");
    let signature = token.rsplit('.').next().unwrap();
    for (what, needle) in [
        ("client secret", secret),
        ("resource-server secret", rs_secret),
        ("wrong secret", "wrong-secret-attempt"),
        ("token", token.as_str()),
        ("token signature", signature),
        ("argon2 hash", "$argon2"),
        ("e-mail in a path", "hidden.person"),
    ] {
        assert!(!logs.contains(needle), "{what} found in the logs");
    }
    let kek = std::fs::read_to_string(dir.path().join("auth.sqlite.kek")).unwrap();
    assert!(!logs.contains(kek.trim()), "key-encryption key in the logs");
    // JSON logs: one object per line, carrying the request id.
    let rooms_logs = std::fs::read_to_string(&rooms_log).unwrap();
    for line in rooms_logs.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<Value>(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
    }
    assert!(
        rooms_logs.contains(&request_id),
        "the request id appears in the log lines"
    );
}
