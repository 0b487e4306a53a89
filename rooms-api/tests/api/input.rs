//! docs/spec/security.md "Input": names sent twice, response headers, bounded metric labels.

use crate::helpers::RoomsRequests as _;
use crate::helpers::{ALL_ROOMS, assert_error, spawn_stack};

#[tokio::test]
async fn a_room_body_that_names_a_key_twice_is_refused() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    let r = s
        .client
        .post(s.rooms(""))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(r#"{"access_level":"public","access_level":"restricted"}"#)
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 400, "invalid_request").await;
    assert!(
        body["fields"]["body"][0]
            .as_str()
            .unwrap()
            .contains("twice"),
        "{body}"
    );
    let room = s.create_room(&token).await;
    let r = s
        .client
        .patch(s.rooms(&format!("/{}", room["id"].as_str().unwrap())))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(r#"{"configuration":{"can_publish_sources":[],"can_publish_sources":null}}"#)
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;
}

#[tokio::test]
async fn a_repeated_query_parameter_is_refused() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    for query in ["?page=1&page=2", "?page_size=5&page%5Fsize=50"] {
        let r = s.get(&token, query).await;
        assert_error(r, 400, "invalid_request").await;
    }
    assert_eq!(s.get(&token, "?page=1&page_size=5").await.status(), 200);
}

/// Two credentials on one request: the first used to win, so a proxy that reads the last one
/// (and logs or checks it) and this server would disagree about who is calling. The
/// auth-server's side: `auth-server/tests/api/security.rs::two_authorization_headers_are_refused`.
#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    let twice = |url: String| {
        let mut h = reqwest::header::HeaderMap::new();
        let v = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        h.append(reqwest::header::AUTHORIZATION, v.clone());
        h.append(reqwest::header::AUTHORIZATION, v);
        s.client.get(url).headers(h).send()
    };
    assert_error(twice(s.rooms("")).await.unwrap(), 400, "invalid_request").await;
    // One is fine.
    assert_eq!(s.get(&token, "").await.status(), 200);
}

#[tokio::test]
async fn responses_forbid_sniffing_and_framing() {
    let s = spawn_stack().await;
    let token = s.token_with(ALL_ROOMS).await;
    for url in [
        s.rooms(""),
        s.rooms("/nope"),
        format!("{}/openapi.json", s.rooms_url),
    ] {
        let r = s.client.get(&url).bearer_auth(&token).send().await.unwrap();
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{url}");
        assert_eq!(h["x-frame-options"], "DENY", "{url}");
    }
    let r = s
        .client
        .get(format!("{}/docs", s.rooms_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
}

#[tokio::test]
async fn made_up_methods_share_one_metrics_label() {
    let s = spawn_stack().await;
    for i in 0..50 {
        let method = reqwest::Method::from_bytes(format!("X{i}METHOD").as_bytes()).unwrap();
        s.client.request(method, s.rooms("")).send().await.unwrap();
    }
    let text = s
        .client
        .get(&s.rooms_metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !text.contains("X7METHOD"),
        "a method made up by a client became a label"
    );
    assert!(text.contains(r#"method="other""#));
}
