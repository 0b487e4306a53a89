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

/// Opens a connection from `source` (any 127.0.0.0/8 address works on loopback).
async fn connect_from(source: [u8; 4], port: u16) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::from((source, 0)))
        .unwrap();
    socket
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap()
}

/// Whether the server has closed `stream` (within 300 ms).
async fn is_closed(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once_when_none_is_idle() {
    let app = spawn_app_with(|c| {
        c.timeouts.max_connections = 3;
        c.timeouts.max_connections_per_source = 3;
    })
    .await;
    // Three connections each in the middle of a request: none can be closed to make room.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        held.push(s);
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

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_header_deadline_not_the_idle_time() {
    let app = spawn_app_with(|c| {
        c.timeouts.header_read = Duration::from_secs(1);
        c.timeouts.idle = Duration::from_secs(30);
    })
    .await;
    let mut silent = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let (answer, after) = until_closed(&mut silent).await;
    assert!(answer.is_empty(), "{answer}");
    assert!(after < Duration::from_secs(3), "closed after {after:?}");
}

/// The security review's flood: one host opens connections that never send a byte, many more
/// than the cap. It keeps only its share; a client at another address still gets its token.
#[tokio::test]
async fn a_silent_flood_from_one_address_leaves_room_for_other_addresses() {
    let app = spawn_app_with(|c| {
        c.timeouts.max_connections = 16;
        c.timeouts.max_connections_per_source = 4;
    })
    .await;
    let c = app.create_client("rooms:list", &["example.com"]).await;
    app.create_user("jane@example.com").await;
    let mut flood = Vec::new();
    for _ in 0..64 {
        flood.push(connect_from([127, 0, 0, 9], app.port).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut open = 0;
    for s in &mut flood {
        if !is_closed(s).await {
            open += 1;
        }
    }
    assert_eq!(open, 4, "the flooding address holds only its share");
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let r = other
        .post(app.url("/oauth/token"))
        .basic_auth(&c.client_id, Some(&c.secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "jane@example.com"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// With a share as large as the cap, a flood fills every place with idle connections: a new
/// connection from elsewhere closes one of them instead of being refused.
#[tokio::test]
async fn at_the_cap_an_idle_connection_of_the_busiest_source_makes_room() {
    let app = spawn_app_with(|c| {
        c.timeouts.max_connections = 8;
        c.timeouts.max_connections_per_source = 8;
    })
    .await;
    let mut flood = Vec::new();
    for _ in 0..8 {
        flood.push(connect_from([127, 0, 0, 9], app.port).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        let mut s = connect_from([127, 0, 0, 2], app.port).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (answer, _) = until_closed(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    }
    let mut closed = 0;
    for s in &mut flood {
        if is_closed(s).await {
            closed += 1;
        }
    }
    assert!((1..=3).contains(&closed), "{closed} of the flood closed");
}

/// `HTTP_MAX_IN_FLIGHT` on the auth-server: a token request waits for its place with its body
/// read already (server-kit/src/in_flight.rs), so a client still sending one holds no place.
#[tokio::test]
async fn a_body_still_being_sent_holds_no_in_flight_place() {
    let app = spawn_app_with(|c| {
        c.timeouts.max_in_flight = 1;
        c.timeouts.body_read = Duration::from_secs(5);
    })
    .await;
    let mut slow = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    slow.write_all(
        b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The one place is free while that body is awaited.
    let jwks = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .expect("answered while a body was being sent");
    assert_eq!(jwks.status(), 200);
    let (answer, _) = until_closed(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}
