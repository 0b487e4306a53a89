//! `HTTP_MAX_IN_FLIGHT` (docs/spec/operations.md): requests beyond the limit wait before any
//! work is done, in arrival order; a request still sending its body never holds a place.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::helpers::RoomsRequests as _;
use crate::helpers::{Options, spawn_stack_with};

#[tokio::test]
async fn requests_past_the_limit_wait_for_a_place_and_bodies_never_hold_one() {
    // An introspection endpoint that accepts and never answers: a bearer request waits on it
    // (up to the introspection client's 5 s timeout), inside the stack.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}/introspect", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            open.push(c);
        }
    });
    let s = spawn_stack_with(Options {
        introspection: true,
        rooms: Box::new(move |c| {
            c.timeouts.max_in_flight = 1;
            if let Some(i) = c.introspection.as_mut() {
                i.url = silent_url;
            }
        }),
        ..Default::default()
    })
    .await;
    let health = format!("{}/healthz", s.rooms_url);

    // A body that never comes holds no place: /healthz still answers at once.
    let addr = s.rooms_url.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(
        b"POST /external-api/v1.0/rooms HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a.b.c\r\n\
          Content-Type: application/json\r\nContent-Length: 2\r\n\r\n",
    )
    .await
    .unwrap();
    let quick = s
        .client
        .get(&health)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .unwrap();
    assert_eq!(quick.status(), 200);

    // A request stuck inside the stack takes the one place: the next one waits for it.
    let stuck = {
        let client = s.client.clone();
        let url = s.rooms("");
        tokio::spawn(async move {
            client
                .get(url)
                .bearer_auth("x.y.z")
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = s
        .client
        .get(&health)
        .timeout(Duration::from_millis(1500))
        .send()
        .await;
    assert!(
        waiting.is_err_and(|e| e.is_timeout()),
        "answered while the only place was taken"
    );
    // Once the stuck request ends (the introspection call times out: 503), the queue moves.
    assert_eq!(stuck.await.unwrap(), 503);
    let after = s.client.get(&health).send().await.unwrap();
    assert_eq!(after.status(), 200);
    held.abort();
}
