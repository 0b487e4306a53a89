//! docs/spec/auth-server.md §9 and docs/spec/operations.md health endpoints.

use crate::helpers::spawn_app;

#[tokio::test]
async fn swagger_ui_and_the_spec_are_served() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("swagger"));
    let spec: serde_json::Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in ["/oauth/token", "/external-api/v1.0/application/token"] {
        let op = &spec["paths"][path]["post"];
        let statuses: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        for s in [
            "200", "400", "401", "403", "404", "415", "429", "500", "503",
        ] {
            assert!(
                statuses.iter().any(|k| k.as_str() == s),
                "{path} documents {s}: {statuses:?}"
            );
        }
        let content = op["requestBody"]["content"].as_object().unwrap();
        assert!(content.contains_key("application/x-www-form-urlencoded"));
        assert!(content.keys().any(|k| k.starts_with("application/json")));
        assert!(op["responses"]["401"]["headers"]["WWW-AUTHENTICATE"].is_object());
    }
    assert!(spec["paths"]["/.well-known/jwks.json"]["get"].is_object());
    assert!(spec["components"]["schemas"]["ErrorBody"].is_object());
    // Swagger UI's "Authorize" takes the client's Basic credentials for the endpoints a client
    // authenticates to, optionally (the body's credentials are the other way).
    let scheme = &spec["components"]["securitySchemes"]["clientBasic"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "basic");
    for (path, method) in [
        ("/oauth/introspect", "post"),
        ("/oauth/revoke", "post"),
        ("/oauth/revocations", "get"),
    ] {
        assert_eq!(
            spec["paths"][path][method]["security"],
            serde_json::json!([{"clientBasic": []}, {}]),
            "{path}"
        );
    }
}

#[tokio::test]
async fn spec_served_equals_the_openapi_subcommand_and_the_committed_file() {
    let app = spawn_app().await;
    let served: serde_json::Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .env_clear()
        .env("AUTH_ISSUER", "http://auth.test")
        .arg("openapi")
        .output()
        .unwrap();
    assert!(out.status.success());
    let yaml = String::from_utf8(out.stdout).unwrap();
    let service = auth_server::api::service("http://auth.test");
    assert_eq!(yaml, service.spec_yaml());
    let rendered: serde_json::Value = serde_json::from_str(&service.spec()).unwrap();
    assert_eq!(rendered, served);
    // The committed file is rendered with the default issuer.
    let default = auth_server::api::service("http://127.0.0.1:8081").spec_yaml();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/auth-server.yaml");
    if let Err(e) = server_kit::testing::check_committed(std::path::Path::new(path), &default) {
        panic!("{e}");
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.client.get(app.url("/readyz/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["status"],
        "ready"
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let a = app.client.get(app.url("/healthz")).send().await.unwrap();
    let b = app.client.get(app.url("/healthz")).send().await.unwrap();
    let (a, b) = (
        a.headers()["x-request-id"].clone(),
        b.headers()["x-request-id"].clone(),
    );
    assert_ne!(a, b);
}

#[tokio::test]
async fn oversized_headers_are_431_json() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-filler", "a".repeat(17 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-filler", "a".repeat(8 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
