//! docs/spec/operations.md: on shutdown, in-flight requests finish, then the server stops cleanly.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{fresh_database_url, test_config};

/// A server on a fresh database, running until `stop` is sent; its task says how it ended.
async fn serving() -> (
    tempfile::TempDir,
    u16,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(fresh_database_url(dir.path()).await);
    let app =
        auth_server::startup::Application::build_with_clock(config, Arc::new(shared::SystemClock))
            .await
            .unwrap();
    let port = app.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    (dir, port, stop, server)
}

#[tokio::test]
async fn an_in_flight_request_finishes_after_shutdown_begins() {
    let (_dir, port, stop, server) = serving().await;

    // A request whose body is still arriving when shutdown starts.
    let body = "grant_type=client_credentials&scope=a%40example.com";
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body.as_bytes()[..10]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !server.is_finished(),
        "the server waits for the in-flight request"
    );
    // New connections are no longer accepted.
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
    );
    conn.write_all(&body.as_bytes()[10..]).await.unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.1 401"),
        "the request was answered: {response}"
    );
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    assert!(result.is_ok(), "clean exit: {result:?}");
}

#[tokio::test]
async fn idle_keep_alive_connections_do_not_hold_up_shutdown() {
    let (_dir, port, stop, server) = serving().await;
    // Keep-alive connections that each made a request, and one that never sent a byte.
    let mut conns = Vec::new();
    for _ in 0..3 {
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = c.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        conns.push(c);
    }
    conns.push(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap(),
    );
    let started = std::time::Instant::now();
    stop.send(()).unwrap();
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("the server stops without waiting for its idle connections")
        .unwrap();
    assert!(result.is_ok(), "clean exit: {result:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "stopped after {:?}",
        started.elapsed()
    );
    // And it closed them.
    for mut c in conns {
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(std::time::Duration::from_secs(2), c.read(&mut buf))
            .await
            .expect("closed")
            .unwrap_or(0);
        assert_eq!(n, 0);
    }
}
