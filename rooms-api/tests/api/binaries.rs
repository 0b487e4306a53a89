//! Both real binaries as an operator runs them: the CLI, the servers with their environment,
//! readiness, SIGTERM. For the tests that need processes of their own (logs, traces).

use std::process::{Child, Command};
use std::time::Duration;

use serde_json::Value;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Bins {
    pub auth: std::path::PathBuf,
    pub rooms: std::path::PathBuf,
}

pub fn bins() -> Bins {
    let rooms = std::path::PathBuf::from(env!("CARGO_BIN_EXE_rooms-api"));
    let auth = rooms.with_file_name("auth-server");
    assert!(
        auth.exists(),
        "build the workspace (scripts/test) so auth-server sits beside rooms-api"
    );
    Bins { auth, rooms }
}

/// An auth-server CLI command on `db`, its JSON output.
pub fn cli(b: &Bins, db: &str, args: &[&str]) -> Value {
    let out = Command::new(&b.auth)
        .env_clear()
        .env("AUTH_DATABASE_URL", db)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Migrates `db`, as an operator does before the CLI can work on it, and creates the user
/// `email`.
pub fn prepare(b: &Bins, db: &str, email: &str) {
    let migrated = Command::new(&b.auth)
        .env_clear()
        .env("AUTH_DATABASE_URL", db)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(migrated.status.success());
    cli(b, db, &["user", "create", "--email", email, "--json"]);
}

/// A new application holding `scopes`: its (client_id, client_secret).
pub fn app(b: &Bins, db: &str, name: &str, scopes: &[&str]) -> (String, String) {
    let mut args = vec!["app", "create", "--name", name, "--json"];
    for scope in scopes {
        args.extend(["--scope", scope]);
    }
    let app = cli(b, db, &args);
    (
        app["client_id"].as_str().unwrap().to_owned(),
        app["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// A token for `email` by the client_credentials grant, with `headers` on the request.
pub async fn token(
    http: &reqwest::Client,
    auth_url: &str,
    (id, secret): (&str, &str),
    email: &str,
    headers: &[(&str, String)],
) -> String {
    let mut request = http
        .post(format!("{auth_url}/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", email)]);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let issued: Value = request.send().await.unwrap().json().await.unwrap();
    issued["access_token"].as_str().unwrap().to_owned()
}

pub async fn wait_ready(client: &reqwest::Client, url: &str, log: &std::path::Path) {
    for _ in 0..300 {
        if client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(15).collect();
    panic!("{url} not ready; log tail:\n{}", tail.join("\n"));
}

/// A server process killed when dropped: a test that fails half-way leaves nothing running.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    child.wait().unwrap()
}
