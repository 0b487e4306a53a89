//! docs/spec/security.md "Bounded resources": slow clients can't pin connections (header-read,
//! body-read and idle timeouts), on raw sockets.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, spawn_app_with};

async fn app() -> TestApp {
    spawn_app_with(|c| {
        c.timeouts.header_read = Duration::from_secs(1);
        c.timeouts.body_read = Duration::from_secs(1);
        c.timeouts.idle = Duration::from_secs(2);
    })
    .await
}

/// Reads until the server closes the connection (or 10 s pass); what it sent, and when.
async fn until_closed(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("still open after 10 s"),
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn headers_that_never_finish_are_cut_off() {
    let app = app().await;
    let mut s = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    s.write_all(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // One more header byte now and then keeps no connection alive past the header deadline.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = s.write_all(b"X").await;
    }
    let (_, after) = until_closed(&mut s).await;
    assert!(after < Duration::from_secs(4), "closed after {after:?}");
}

#[tokio::test]
async fn a_trickling_body_gets_408() {
    let app = app().await;
    let mut s = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    s.write_all(
        b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
    )
    .await
    .unwrap();
    let (answer, after) = until_closed(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(after < Duration::from_secs(5), "{after:?}");
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let app = app().await;
    // Never a byte.
    let mut silent = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    // One request, then an idle keep-alive connection.
    let mut kept = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let ((_, a), (answer, b)) = tokio::join!(until_closed(&mut silent), until_closed(&mut kept));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    for after in [a, b] {
        assert!(after < Duration::from_secs(6), "{after:?}");
    }
}

#[tokio::test]
async fn a_connection_in_use_is_not_idle() {
    let app = app().await;
    let mut s = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    // Requests 0.8 s apart for 4 s: twice the idle time in all, never 2 s quiet.
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    for i in 0..5 {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(answer.starts_with("HTTP/1.1 200"), "request {i}: {answer}");
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    assert!(started.elapsed() > Duration::from_secs(4));
    // Then quiet: closed within the idle time (and a little).
    let (_, after) = until_closed(&mut s).await;
    assert!(after < Duration::from_secs(3), "closed after {after:?}");
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once() {
    let app = spawn_app_with(|c| c.timeouts.max_connections = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(("127.0.0.1", app.port)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let (answer, after) = until_closed(&mut extra).await;
    assert!(answer.is_empty(), "{answer}");
    assert!(after < Duration::from_secs(2), "{after:?}");
    // A place freed is a place taken again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
