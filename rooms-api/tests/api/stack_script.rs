//! docs/spec/operations.md: `scripts/dev` starts both services, provisions the demo once, and prints a
//! curl that works. Driven here with the binaries this test run built (DEV_SKIP_BUILD=1).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// True once `GET /readyz` answers 200 on the port.
fn ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_dev_script_starts_the_stack_and_its_printed_curl_creates_a_room_or_says_why_not() {
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
        .env("AUTH_ADMIN_LISTEN", "127.0.0.1:0")
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
    // Readiness by /readyz, not by the script's prose.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && !(ready(auth_port) && ready(rooms_port)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        ready(auth_port) && ready(rooms_port),
        "the stack never became ready"
    );
    // The welcome comes last, once both are ready: read it to the end of its snippet.
    let mut printed = Vec::new();
    let mut markers = 0;
    while Instant::now() < deadline && markers < 2 {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                if line.starts_with("# ---") {
                    markers += 1;
                }
                printed.push(line);
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
    // With a wrong secret the snippet says what the token endpoint answered, and stops there.
    let (before, after) = script.split_once("-u '").unwrap();
    let (credentials, rest) = after.split_once('\'').unwrap();
    let client_id = credentials.split(':').next().unwrap();
    let wrong = format!("{before}-u '{client_id}:wrong'{rest}");
    let refused = Command::new("bash").arg("-c").arg(&wrong).output().unwrap();
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        said.contains("token endpoint: invalid_client: Client authentication failed"),
        "{said}"
    );
    assert!(refused.stdout.is_empty(), "no room call was made");
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
    // The services log to files, not over the welcome.
    assert!(
        !text.contains(" INFO "),
        "access logs reached the terminal:\n{text}"
    );
    assert!(data.path().join("auth-server.log").exists());
    assert!(stopped.code().is_some(), "the script exits on Ctrl-C");
    // Both services stopped with it.
    assert!(std::net::TcpStream::connect(("127.0.0.1", rooms_port)).is_err());
}
