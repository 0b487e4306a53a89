//! docs/spec/auth-server.md §7: RFC 8414 metadata, consistent with the real endpoints.

use crate::helpers::spawn_app;

#[tokio::test]
async fn metadata_lists_every_endpoint_and_they_answer() {
    let app = spawn_app().await;
    let m: serde_json::Value = app
        .client
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["issuer"], "http://auth.test");
    assert_eq!(m["token_endpoint"], "http://auth.test/oauth/token");
    assert_eq!(m["jwks_uri"], "http://auth.test/.well-known/jwks.json");
    assert_eq!(
        m["introspection_endpoint"],
        "http://auth.test/oauth/introspect"
    );
    assert_eq!(m["revocation_endpoint"], "http://auth.test/oauth/revoke");
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!([
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:jwt-bearer"
        ])
    );
    let methods = serde_json::json!([
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt"
    ]);
    let algs = serde_json::json!(["EdDSA", "ES256", "RS256", "PS256"]);
    for endpoint in ["token", "introspection", "revocation"] {
        assert_eq!(
            m[format!("{endpoint}_endpoint_auth_methods_supported")],
            methods
        );
        assert_eq!(
            m[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")],
            algs
        );
    }
    assert_eq!(
        m["scopes_supported"],
        serde_json::json!([
            "rooms:create",
            "rooms:list",
            "rooms:retrieve",
            "rooms:update",
            "rooms:delete",
            "rooms:grant-access"
        ])
    );
    assert_eq!(m["response_types_supported"], serde_json::json!([]));
    assert_eq!(m["service_documentation"], "http://auth.test/docs");
    // Every advertised URL, rebased on the test server, is a live endpoint.
    for (key, method) in [
        ("token_endpoint", "POST"),
        ("jwks_uri", "GET"),
        ("introspection_endpoint", "POST"),
        ("revocation_endpoint", "POST"),
        ("service_documentation", "GET"),
    ] {
        let path = m[key]
            .as_str()
            .unwrap()
            .trim_start_matches("http://auth.test");
        let r = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), 404, "{key}");
        assert_ne!(r.status(), 405, "{key}");
    }
}
