//! docs/spec/operations.md: `scripts/dev` starts both services, provisions the demo once, and prints a
//! curl that works. Driven here with the binaries this test run built (DEV_SKIP_BUILD=1).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_dev_script_starts_the_stack_and_its_printed_curl_creates_a_room() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_rooms-api"))
        .parent()
        .unwrap()
        .to_owned();
    assert!(
        bin_dir.join("auth-server").exists(),
        "the auth-server binary is built beside rooms-api by `cargo test --workspace` (scripts/test)"
    );
    let data = tempfile::tempdir().unwrap();
    let (auth_port, rooms_port) = (free_port(), free_port());
    let mut child = Command::new(root.join("scripts/dev"))
        .env("DEV_SKIP_BUILD", "1")
        .env("DEV_BIN_DIR", &bin_dir)
        .env("DEV_DATA_DIR", data.path())
        .env("AUTH_PORT", auth_port.to_string())
        .env("ROOMS_PORT", rooms_port.to_string())
        .env("AUTH_METRICS_LISTEN", "127.0.0.1:0")
        .env("ROOMS_METRICS_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut printed = Vec::new();
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let done = line.contains("Ctrl-C");
                printed.push(line);
                if done {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    let text = printed.join("\n");
    // The printed snippet: a shell block between the markers, runnable as is.
    let script: String = text
        .split("# --- create a room ---")
        .nth(1)
        .and_then(|rest| rest.split("# ---").next())
        .unwrap_or_else(|| panic!("no curl snippet in:\n{text}"))
        .to_owned();
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status();
    let stopped = child.wait().unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    let room: serde_json::Value =
        serde_json::from_str(body.trim()).unwrap_or_else(|_| panic!("not a room: {body}\n{text}"));
    assert!(room["slug"].is_string(), "{room}");
    assert!(
        room["url"]
            .as_str()
            .is_some_and(|u| u.ends_with(room["slug"].as_str().unwrap())),
        "{room}"
    );
    assert!(text.contains(&format!("http://127.0.0.1:{rooms_port}/docs")));
    assert!(stopped.code().is_some(), "the script exits on Ctrl-C");
    // Both services stopped with it.
    assert!(std::net::TcpStream::connect(("127.0.0.1", rooms_port)).is_err());
}
