//! docs/spec/rooms-api.md §4: Swagger UI with the bearer Authorize button, the spec, health.

use crate::helpers::spawn_stack;

#[tokio::test]
async fn the_spec_documents_every_operation_status_and_the_bearer_scheme() {
    let s = spawn_stack().await;
    let r = s
        .client
        .get(format!("{}/docs", s.rooms_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let spec: serde_json::Value = s
        .client
        .get(format!("{}/openapi.json", s.rooms_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        spec["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    let ops = [
        ("/external-api/v1.0/rooms", "get", "200"),
        ("/external-api/v1.0/rooms", "post", "201"),
        ("/external-api/v1.0/rooms/{id}", "get", "200"),
        ("/external-api/v1.0/rooms/{id}", "patch", "200"),
        ("/external-api/v1.0/rooms/{id}", "delete", "204"),
    ];
    for (path, method, ok) in ops {
        let op = &spec["paths"][path][method];
        assert!(
            op["security"][0]["bearerAuth"].is_array(),
            "{method} {path} has the bearer scheme"
        );
        let statuses: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        for s in [ok, "400", "401", "403", "404", "413", "415", "500", "503"] {
            assert!(
                statuses.iter().any(|k| k.as_str() == s),
                "{method} {path} documents {s}"
            );
        }
    }
    assert!(spec["paths"]["/external-api/v1.0/rooms"]["post"]["requestBody"]["content"]["application/json"].is_object());
}

#[tokio::test]
async fn spec_served_equals_the_committed_file() {
    let s = spawn_stack().await;
    let served: serde_json::Value = s
        .client
        .get(format!("{}/openapi.json", s.rooms_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rendered: serde_json::Value =
        serde_json::from_str(&rooms_api::api::service("https://rooms.example.test").spec())
            .unwrap();
    assert_eq!(served, rendered);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rooms-api"))
        .env_clear()
        .arg("openapi")
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let default = rooms_api::api::service("http://127.0.0.1:8082").spec_yaml();
    assert_eq!(printed, default);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/rooms-api.yaml");
    if let Err(e) = server_kit::testing::check_committed(std::path::Path::new(path), &default) {
        panic!("{e}");
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let s = spawn_stack().await;
    assert_eq!(
        s.client
            .get(format!("{}/healthz", s.rooms_url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Ready once the keys are loaded (the refresh task fetches them at start).
    let mut ready = false;
    for _ in 0..50 {
        let r = s
            .client
            .get(format!("{}/readyz", s.rooms_url))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready);
}
