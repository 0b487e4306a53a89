//! docs/spec/operations.md settings: bad values stop the process with one line naming the setting.

use std::process::Command;

fn run_server(envs: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_auth-server"));
    cmd.env_clear()
        .env(
            "AUTH_DATABASE_URL",
            format!("sqlite://{}/a.sqlite?mode=rwc", dir.path().display()),
        )
        .env("AUTH_LISTEN", "127.0.0.1:0")
        .arg("migrate");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn hs256_needs_a_secret_of_at_least_32_bytes() {
    let o = run_server(&[("TOKEN_SIGNING_ALG", "HS256")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("TOKEN_HS256_SECRET"), "{}", stderr(&o));
    let o = run_server(&[
        ("TOKEN_SIGNING_ALG", "HS256"),
        ("TOKEN_HS256_SECRET", "too-short"),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("TOKEN_HS256_SECRET: must be at least 32 bytes"),
        "{}",
        stderr(&o)
    );
    let o = run_server(&[
        ("TOKEN_SIGNING_ALG", "HS256"),
        ("TOKEN_HS256_SECRET", &"x".repeat(32)),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn hs256_secret_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, format!("{}\n", "s".repeat(40))).unwrap();
    let o = run_server(&[
        ("TOKEN_SIGNING_ALG", "HS256"),
        ("TOKEN_HS256_SECRET_FILE", path.to_str().unwrap()),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn issuer_with_a_trailing_slash_is_refused() {
    let o = run_server(&[("AUTH_ISSUER", "http://127.0.0.1:8081/")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("AUTH_ISSUER"), "{}", stderr(&o));
}

#[test]
fn bad_values_name_their_setting() {
    for (k, v) in [
        ("TOKEN_TTL_SECONDS", "abc"),
        ("TOKEN_SIGNING_ALG", "none"),
        ("AUTH_LISTEN", "nowhere"),
        ("ALLOW_USER_CREATION", "maybe"),
    ] {
        let o = run_server(&[(k, v)]);
        assert!(!o.status.success(), "{k}={v}");
        let flag = format!("--{}", k.to_ascii_lowercase().replace('_', "-"));
        assert!(
            stderr(&o).contains(&flag) || stderr(&o).contains(k),
            "{k}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn kek_is_required_with_postgresql() {
    let o = run_server(&[
        ("AUTH_DATABASE_URL", "postgres://postgres@127.0.0.1:1/none"),
        ("TOKEN_SIGNING_ALG", "EdDSA"),
    ]);
    assert!(!o.status.success());
    // Either the database is unreachable (no PostgreSQL here) or the key is demanded first.
    let e = stderr(&o);
    assert!(
        e.contains("AUTH_DATABASE_URL") || e.contains("AUTH_KEY_ENCRYPTION_KEY"),
        "{e}"
    );
}

#[test]
fn a_command_never_creates_the_database_and_the_defaults_work_once_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_auth-server"))
            .env_clear()
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    // Run where no server made a database: refused, naming where it looked; nothing created.
    let database = dir.path().join("data/auth.sqlite");
    for args in [
        &["keys", "list", "--json"][..],
        &["app", "list"],
        &["user", "create", "--email", "jane@example.com"],
        &["admin-key", "create", "--name", "ops"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let said = stderr(&o);
        assert!(
            said.contains(&format!("no database at {}", database.display())),
            "{said}"
        );
        assert_eq!(said.lines().count(), 1, "{said}");
        assert!(!database.exists(), "{args:?} created the database");
    }
    // `migrate` (or the server) makes it; then commands run, and say which database they used.
    let o = run(&["migrate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["keys", "list", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "auth-server: database sqlite://{}",
            database.display()
        )),
        "{}",
        stderr(&o)
    );
    serde_json::from_slice::<serde_json::Value>(&o.stdout).expect("stdout is the JSON alone");
    // The server creates the KEK when it first needs it; `keys rotate` needs it too.
    let o = Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .env_clear()
        .current_dir(dir.path())
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let kek = dir.path().join("data/auth.sqlite.kek");
    assert!(kek.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&kek).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
