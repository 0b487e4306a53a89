//! Requests to the rooms API and the one error shape, for the rooms API's tests and, included by
//! path, the end-to-end tests (`e2e/tests/stack/`): one copy for both harnesses.

use reqwest::Response;
use serde_json::Value;

/// What a harness knows to call the rooms API; the requests come with it.
pub trait RoomsRequests {
    fn http(&self) -> &reqwest::Client;
    fn rooms_base(&self) -> &str;

    fn rooms(&self, path: &str) -> String {
        format!("{}/external-api/v1.0/rooms{path}", self.rooms_base())
    }

    async fn create_room(&self, token: &str) -> Value {
        let r = self.post(token, "", None).await;
        assert_eq!(r.status(), 201);
        r.json().await.unwrap()
    }

    async fn get(&self, token: &str, path: &str) -> Response {
        self.http()
            .get(self.rooms(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, token: &str, path: &str, body: Option<Value>) -> Response {
        let mut req = self.http().post(self.rooms(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    async fn patch(&self, token: &str, path: &str, body: Value) -> Response {
        self.http()
            .patch(self.rooms(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn delete(&self, token: &str, path: &str) -> Response {
        self.http()
            .delete(self.rooms(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

/// Asserts the one error shape and returns the body.
pub async fn assert_error(r: Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status(), status, "status");
    assert!(r.headers().contains_key("x-request-id"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    assert!(body["error_description"].is_string());
    body
}

pub fn challenge(r: &Response) -> Option<String> {
    r.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
}
