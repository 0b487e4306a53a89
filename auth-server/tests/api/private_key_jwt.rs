//! docs/spec/auth-server.md §1a: applications without secrets. `private_key_jwt` client
//! authentication on the token, introspection and revocation endpoints, and the JWT-bearer
//! grant, each check with its RFC 6749 §5.2 error; replays; keys fetched from a `jwks_uri`
//! and rotated by the integrator without a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{self, ES256, EdDSA, JwsHeader, JwsSigner, PS256, RS256};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, assert_error, decode_parts, spawn_app, spawn_app_with};

const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_ENDPOINT: &str = "http://auth.test/oauth/token";

/// An integrator's key pair.
struct Key {
    kid: String,
    signer: Box<dyn JwsSigner>,
    public: Value,
}

impl Key {
    fn new(alg: &'static str, kid: &str) -> Self {
        let (signer, jwk): (Box<dyn JwsSigner>, josekit::jwk::Jwk) = match alg {
            "EdDSA" => {
                let kp = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
                (
                    Box::new(EdDSA.signer_from_der(kp.to_der_private_key()).unwrap()),
                    kp.to_jwk_public_key(),
                )
            }
            "ES256" => {
                let kp = ES256.generate_key_pair().unwrap();
                (
                    Box::new(ES256.signer_from_der(kp.to_der_private_key()).unwrap()),
                    kp.to_jwk_public_key(),
                )
            }
            "RS256" => {
                let kp = RS256.generate_key_pair(2048).unwrap();
                (
                    Box::new(RS256.signer_from_der(kp.to_der_private_key()).unwrap()),
                    kp.to_jwk_public_key(),
                )
            }
            "PS256" => {
                let kp = PS256.generate_key_pair(2048).unwrap();
                (
                    Box::new(PS256.signer_from_der(kp.to_der_private_key()).unwrap()),
                    kp.to_jwk_public_key(),
                )
            }
            other => panic!("no {other}"),
        };
        let mut public = Value::Object(jwk.as_ref().clone());
        public["kid"] = kid.into();
        Self {
            kid: kid.into(),
            signer,
            public,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = JwsHeader::new();
        header.set_key_id(&self.kid);
        header.set_token_type("JWT");
        jws::serialize_compact(claims.to_string().as_bytes(), &header, self.signer.as_ref())
            .unwrap()
    }
}

fn jwks(keys: &[&Key]) -> Value {
    json!({ "keys": keys.iter().map(|k| k.public.clone()).collect::<Vec<_>>() })
}

fn now(app: &TestApp) -> i64 {
    app.state.clock.now().timestamp()
}

fn jti() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The claims of a client assertion for `client_id`, valid for a minute.
fn client_claims(app: &TestApp, client_id: &str) -> Value {
    json!({
        "iss": client_id, "sub": client_id, "aud": TOKEN_ENDPOINT,
        "iat": now(app), "exp": now(app) + 60, "jti": jti(),
    })
}

/// Registers an application through the admin API; returns its answer.
async fn register(app: &TestApp, body: Value) -> Value {
    let (_, admin) = app.admin_key(&format!("ops-{}", jti())).await;
    let r = app
        .admin(
            reqwest::Method::POST,
            "/admin/v1/applications",
            &admin,
            body,
        )
        .await;
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

async fn token_with_assertion(app: &TestApp, assertion: &str, email: &str) -> reqwest::Response {
    app.client
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", email),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap()
}

async fn grant(app: &TestApp, assertion: &str, scope: Option<&str>) -> reqwest::Response {
    let mut form = vec![("grant_type", JWT_BEARER), ("assertion", assertion)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    app.client
        .post(app.url("/oauth/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_application_without_a_secret_gets_tokens_introspects_and_revokes_with_its_key() {
    let app = spawn_app().await;
    let key = Key::new("ES256", "k1");
    let created = register(
        &app,
        json!({"name": "keys only", "scopes": ["rooms:list", "tokens:introspect"],
               "domains": ["example.com"], "jwks": jwks(&[&key]), "no_secret": true}),
    )
    .await;
    assert_eq!(created["token_endpoint_auth_method"], "private_key_jwt");
    assert!(created.get("client_secret").is_none(), "{created}");
    assert_eq!(created["secrets"], json!([]));
    let client_id = created["client_id"].as_str().unwrap();
    app.create_user("ada@example.com").await;

    let r = token_with_assertion(
        &app,
        &key.sign(&client_claims(&app, client_id)),
        "ada@example.com",
    )
    .await;
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (header, claims) = decode_parts(&token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["client_id"], client_id);
    assert_eq!(claims["scope"], "rooms:list");

    // Introspection and revocation take the assertion too (each with a fresh jti), its `aud`
    // the issuer or the token endpoint, as at the token endpoint.
    let aimed = |aud: &str| {
        let mut claims = client_claims(&app, client_id);
        claims["aud"] = aud.into();
        key.sign(&claims)
    };
    let form = |token: &str, assertion: String| {
        vec![
            ("token".to_owned(), token.to_owned()),
            ("client_assertion_type".into(), CLIENT_ASSERTION_TYPE.into()),
            ("client_assertion".into(), assertion),
        ]
    };
    let r = app
        .client
        .post(app.url("/oauth/introspect"))
        .form(&form(&token, aimed("http://auth.test")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["active"], true);
    // Not the URL of the endpoint it is posted to: only the issuer and the token endpoint
    // are audiences (CLIENT_ASSERTION_AUDIENCE, docs/spec/security.md).
    for path in ["/oauth/introspect", "/oauth/revoke"] {
        let r = app
            .client
            .post(app.url(path))
            .form(&form(&token, aimed(&format!("http://auth.test{path}"))))
            .send()
            .await
            .unwrap();
        let body = assert_error(r, 401, "invalid_client").await;
        assert_eq!(
            body["error_description"],
            "The client assertion's aud must be the token endpoint URL or the issuer, alone"
        );
    }
    let r = app
        .client
        .post(app.url("/oauth/revoke"))
        .form(&form(&token, aimed(TOKEN_ENDPOINT)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .post(app.url("/oauth/introspect"))
        .form(&form(&token, key.sign(&client_claims(&app, client_id))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["active"], false);

    // No secret works: an empty one, or any.
    for secret in ["", "anything"] {
        let guess = crate::helpers::TestClient {
            client_id: client_id.to_owned(),
            secret: secret.into(),
        };
        let r = app.token_basic(&guess, "ada@example.com").await;
        assert_error(r, 401, "invalid_client").await;
    }
}

#[tokio::test]
async fn every_client_assertion_rule_answers_with_its_error() {
    // A dozen refusals for one client: the failure limit is tested apart.
    let app = spawn_app_with(|c| c.failure_limit = 100).await;
    let key = Key::new("EdDSA", "k1");
    let stranger = Key::new("EdDSA", "k1");
    let created = register(
        &app,
        json!({"name": "keys", "scopes": ["rooms:list"], "jwks": jwks(&[&key]), "no_secret": true}),
    )
    .await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    app.create_user("ada@example.com").await;
    let base = client_claims(&app, &id);
    let with = |patch: Value| {
        let mut c = client_claims(&app, &id);
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };

    // Unauthenticated failures all read the same: a wrong key, an unknown client, garbage.
    let wrong_key = stranger.sign(&base);
    let unknown = key.sign(&json!({"iss": "x".repeat(32), "sub": "x".repeat(32),
        "aud": TOKEN_ENDPOINT, "exp": now(&app) + 60, "jti": jti()}));
    let mut bodies = Vec::new();
    for assertion in [wrong_key, unknown, "not.a.jwt".to_owned()] {
        let r = token_with_assertion(&app, &assertion, "ada@example.com").await;
        bodies.push(assert_error(r, 401, "invalid_client").await);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    // None of them costs an argon2 verification (an unreadable assertion is not a secret).
    let argon2 = app
        .state
        .metrics
        .argon2_verifications
        .with_label_values(&["normal"])
        .get();
    assert_eq!(argon2, 0, "assertions never run argon2");

    // After a good signature, each rule says what broke.
    let cases = [
        (json!({"iss": "someone-else"}), "iss"),
        (
            json!({"sub": "ada@example.com"}),
            "sub must be the client_id",
        ),
        (
            json!({"aud": "http://elsewhere/oauth/token"}),
            "aud must be",
        ),
        (
            json!({"aud": [TOKEN_ENDPOINT, "http://elsewhere/oauth/token"]}),
            "aud must be",
        ),
        (
            json!({"nbf": (now(&app) + 86_400).to_string()}),
            "nbf must be a number",
        ),
        (json!({"iat": {"at": 1}}), "iat must be a number"),
        (json!({"exp": null}), "no exp"),
        (json!({"exp": now(&app) - 120}), "expired"),
        (
            json!({"exp": now(&app) + 86_400 + 60}),
            "more than 86400 seconds ahead",
        ),
        (
            json!({"iat": now(&app) - 400}),
            "iat is more than 300 seconds old",
        ),
        (
            json!({"iat": null, "exp": now(&app) + 3600}),
            "has no iat and its exp is more than 300 seconds ahead",
        ),
        (json!({"iat": now(&app) + 600}), "in the future"),
        (json!({"nbf": now(&app) + 600}), "in the future"),
        (json!({"jti": null}), "no jti"),
    ];
    for (patch, want) in cases {
        let claims = with(patch.clone());
        // `iss` other than the client_id names another (unknown) client: the generic answer.
        let r = token_with_assertion(&app, &key.sign(&claims), "ada@example.com").await;
        let body = assert_error(r, 401, "invalid_client").await;
        let text = body["error_description"].as_str().unwrap();
        if want == "iss" {
            assert_eq!(text, "Client authentication failed");
        } else {
            assert!(text.contains(want), "{patch}: {text:?} should say {want:?}");
        }
    }
    // The issuer alone is an audience too.
    let r = token_with_assertion(
        &app,
        &key.sign(&with(json!({"aud": ["http://auth.test"]}))),
        "ada@example.com",
    )
    .await;
    assert_eq!(r.status(), 200);

    // A replay is refused, on its second use.
    let once = key.sign(&base);
    assert_eq!(
        token_with_assertion(&app, &once, "ada@example.com")
            .await
            .status(),
        200
    );
    let r = token_with_assertion(&app, &once, "ada@example.com").await;
    let body = assert_error(r, 401, "invalid_client").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );

    // Malformed requests: an assertion with a secret, a wrong type, half of the pair, a
    // client_id that disagrees with iss.
    let fresh = || key.sign(&client_claims(&app, &id));
    let post = |form: Vec<(&'static str, String)>, basic: bool| {
        let mut req = app.client.post(app.url("/oauth/token"));
        if basic {
            req = req.basic_auth(&id, Some("x"));
        }
        let mut all = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("scope", "ada@example.com".to_owned()),
        ];
        all.extend(form);
        req.form(&all).send()
    };
    let pair = |a: String| {
        vec![
            ("client_assertion_type", CLIENT_ASSERTION_TYPE.to_owned()),
            ("client_assertion", a),
        ]
    };
    let r = post(pair(fresh()), true).await.unwrap();
    assert_error(r, 400, "invalid_request").await;
    let mut with_secret = pair(fresh());
    with_secret.push(("client_secret", "x".into()));
    assert_error(
        post(with_secret, false).await.unwrap(),
        400,
        "invalid_request",
    )
    .await;
    let wrong_type = vec![
        ("client_assertion_type", "urn:example:other".to_owned()),
        ("client_assertion", fresh()),
    ];
    assert_error(
        post(wrong_type, false).await.unwrap(),
        400,
        "invalid_request",
    )
    .await;
    let half = vec![("client_assertion", fresh())];
    assert_error(post(half, false).await.unwrap(), 400, "invalid_request").await;
    let mut other_id = pair(fresh());
    other_id.push(("client_id", "another".into()));
    assert_error(post(other_id, false).await.unwrap(), 400, "invalid_request").await;

    // An application registered for client_secret can't authenticate with its keys.
    let secret_app = register(
        &app,
        json!({"name": "secret", "scopes": ["rooms:list"], "jwks": jwks(&[&key])}),
    )
    .await;
    assert_eq!(secret_app["token_endpoint_auth_method"], "client_secret");
    let sid = secret_app["client_id"].as_str().unwrap();
    let r = token_with_assertion(
        &app,
        &key.sign(&client_claims(&app, sid)),
        "ada@example.com",
    )
    .await;
    let body = assert_error(r, 401, "invalid_client").await;
    assert_eq!(body["error_description"], "Client authentication failed");
}

#[tokio::test]
async fn registration_refuses_bad_keys_with_a_clear_message() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_key("ops").await;
    let key = Key::new("ES256", "k1");
    let mut private = key.public.clone();
    private["d"] = "AAAA".into();
    // josekit won't make a 1024-bit key; a modulus of that size is all the check reads.
    let small = {
        use base64::Engine;
        let mut n = vec![0xC5u8; 128];
        n[127] = 0x01;
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n);
        json!({"kty": "RSA", "n": n, "e": "AQAB"})
    };
    let cases = [
        (json!({"jwks": {"keys": [private]}}), "jwks", "private"),
        (json!({"jwks": {"keys": [small]}}), "jwks", "1024 bits"),
        (
            json!({"jwks": {"keys": [{"kty": "oct", "k": "AAAA"}]}}),
            "jwks",
            "private or symmetric",
        ),
        (
            json!({"jwks_uri": "http://idp.example.com/jwks"}),
            "jwks_uri",
            "https",
        ),
        (json!({"no_secret": true}), "jwks", "needs keys"),
        (
            json!({"jwks": jwks(&[&key]), "jwks_uri": "https://x.example/j"}),
            "jwks",
            "not both",
        ),
        (
            json!({"jwks": jwks(&[&key]), "no_secret": true, "token_endpoint_auth_method": "client_secret"}),
            "no_secret",
            "private_key_jwt",
        ),
    ];
    for (extra, field, want) in cases {
        let mut body = json!({"name": "x", "scopes": ["rooms:list"]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = app
            .admin(
                reqwest::Method::POST,
                "/admin/v1/applications",
                &admin,
                body,
            )
            .await;
        assert_eq!(r.status(), 422, "{extra}");
        let problem: Value = r.json().await.unwrap();
        let errors = problem["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == field && e["message"].as_str().unwrap().contains(want)),
            "{extra}: {problem}"
        );
    }
}

#[tokio::test]
async fn the_jwt_bearer_grant_delegates_to_the_user_in_sub_with_down_scoping() {
    let app = spawn_app_with(|c| c.failure_limit = 100).await;
    let key = Key::new("PS256", "sa-1");
    let created = register(
        &app,
        json!({"name": "service account", "scopes": ["rooms:create", "rooms:list", "rooms:delete"],
               "domains": ["example.com"], "jwks": jwks(&[&key]), "no_secret": true}),
    )
    .await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    let user = app.create_user("ada@example.com").await;
    // A fresh jti each (`"jti": null` leaves it out).
    let claims = |sub: &str, extra: Value| {
        let mut c = json!({"iss": id, "sub": sub, "aud": TOKEN_ENDPOINT,
                           "iat": now(&app), "exp": now(&app) + 600, "jti": jti()});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };

    // None asked: all the application's scopes; the token is the client_credentials one.
    let r = grant(&app, &key.sign(&claims("ada@example.com", json!({}))), None).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["scope"], "rooms:create rooms:list rooms:delete");
    let (header, token) = decode_parts(body["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(token["sub"], user.to_string());
    assert_eq!(token["client_id"], id);
    assert_eq!(token["act"]["sub"], id);
    assert!(token["jti"].is_string());
    // Without a jti, the assertion itself is remembered: the same one again is a replay.
    let no_jti = key.sign(&claims("ada@example.com", json!({"jti": null})));
    assert_eq!(grant(&app, &no_jti, None).await.status(), 200);
    let body = assert_error(grant(&app, &no_jti, None).await, 400, "invalid_grant").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );

    // A subset, from the claim or the parameter (the parameter wins).
    let subset = key.sign(&claims("ada@example.com", json!({"scope": "rooms:list"})));
    let r = grant(&app, &subset, None).await;
    assert_eq!(r.json::<Value>().await.unwrap()["scope"], "rooms:list");
    let r = grant(
        &app,
        &key.sign(&claims("ada@example.com", json!({}))),
        Some("rooms:delete rooms:list"),
    )
    .await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["scope"],
        "rooms:list rooms:delete"
    );
    // More than the application has, or a privilege: invalid_scope.
    for asked in ["rooms:update", "tokens:introspect", "rooms:nothing"] {
        let r = grant(
            &app,
            &key.sign(&claims("ada@example.com", json!({}))),
            Some(asked),
        )
        .await;
        assert_error(r, 400, "invalid_scope").await;
    }

    // The existing steps, in order, after authentication.
    let r = grant(
        &app,
        &key.sign(&claims("someone@other.org", json!({}))),
        None,
    )
    .await;
    assert_error(r, 403, "invalid_scope").await;
    let r = grant(
        &app,
        &key.sign(&claims("nobody@example.com", json!({}))),
        None,
    )
    .await;
    assert_error(r, 404, "invalid_scope").await;
    let r = grant(&app, &key.sign(&claims("not-an-email", json!({}))), None).await;
    let body = assert_error(r, 400, "invalid_grant").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("e-mail")
    );

    // The assertion's own rules: invalid_grant.
    let with_jti = key.sign(&claims("ada@example.com", json!({"jti": jti()})));
    assert_eq!(grant(&app, &with_jti, None).await.status(), 200);
    let cases: Vec<(String, &str)> = vec![
        (with_jti, "already used"),
        (key.sign(&claims("ada@example.com", json!({"exp": now(&app) + 86_460}))), "86400 seconds"),
        (key.sign(&json!({"iss": id, "sub": "ada@example.com", "aud": TOKEN_ENDPOINT, "exp": now(&app) + 3600})), "has no iat"),
        (key.sign(&claims("ada@example.com", json!({"iat": now(&app) - 400}))), "300 seconds old"),
        (key.sign(&claims("ada@example.com", json!({"aud": "rooms-api"}))), "aud"),
        // Ours beside a foreign audience; another endpoint of ours; a time claim as a string.
        (key.sign(&claims("ada@example.com", json!({"aud": [TOKEN_ENDPOINT, "https://other.example/token"]}))), "aud must be"),
        (key.sign(&claims("ada@example.com", json!({"aud": "http://auth.test/oauth/introspect"}))), "aud must be"),
        (key.sign(&claims("ada@example.com", json!({"nbf": "99999999999"}))), "nbf must be a number"),
        (Key::new("PS256", "sa-1").sign(&claims("ada@example.com", json!({}))), "The assertion is invalid"),
        ("garbage".to_owned(), "The assertion is invalid"),
    ];
    for (assertion, want) in cases {
        let r = grant(&app, &assertion, None).await;
        let body = assert_error(r, 400, "invalid_grant").await;
        assert!(
            body["error_description"].as_str().unwrap().contains(want),
            "{body} should say {want}"
        );
    }

    // Malformed: no assertion; other client credentials alongside.
    let r = app
        .client
        .post(app.url("/oauth/token"))
        .form(&[("grant_type", JWT_BEARER)])
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;
    let r = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some("x"))
        .form(&[
            ("grant_type", JWT_BEARER),
            (
                "assertion",
                &key.sign(&claims("ada@example.com", json!({}))),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;
    // Each other credential alone is refused too, and so is a client_id other than `iss`;
    // the same client_id as `iss` is accepted.
    let with = |extra: (&'static str, String)| {
        let assertion = key.sign(&claims("ada@example.com", json!({})));
        app.client
            .post(app.url("/oauth/token"))
            .form(&[
                ("grant_type", JWT_BEARER.to_owned()),
                ("assertion", assertion),
                (extra.0, extra.1),
            ])
            .send()
    };
    for extra in [
        ("client_secret", "x".to_owned()),
        ("client_assertion", "a.b.c".to_owned()),
        ("client_assertion_type", CLIENT_ASSERTION_TYPE.to_owned()),
        ("client_id", "0".repeat(id.len())),
    ] {
        let name = extra.0;
        let r = with(extra).await.unwrap();
        let body = assert_error(r, 400, "invalid_request").await;
        assert!(body["error_description"].is_string(), "{name}");
    }
    let r = with(("client_id", id.clone())).await.unwrap();
    assert_eq!(r.status(), 200, "client_id naming the assertion's iss");
}

#[tokio::test]
async fn wrong_assertions_meet_the_failure_limit_and_a_valid_one_still_passes() {
    let app = spawn_app_with(|c| c.failure_limit = 3).await;
    let key = Key::new("ES256", "k1");
    let created = register(
        &app,
        json!({"name": "k", "scopes": ["rooms:list"], "jwks": jwks(&[&key]), "no_secret": true}),
    )
    .await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    app.create_user("ada@example.com").await;
    let stranger = Key::new("ES256", "k1");
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = token_with_assertion(
            &app,
            &stranger.sign(&client_claims(&app, &id)),
            "ada@example.com",
        )
        .await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    // The key holder is never locked out.
    let r = token_with_assertion(
        &app,
        &key.sign(&client_claims(&app, &id)),
        "ada@example.com",
    )
    .await;
    assert_eq!(r.status(), 200);
}

/// A JWKS endpoint on loopback whose document the test changes, counting its fetches.
struct JwksServer {
    url: String,
    body: Arc<std::sync::Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

/// How the test endpoint answers.
#[derive(Clone, Copy)]
enum Answer {
    Document,
    /// 302 to the same path on this port.
    Redirect(u16),
    /// The headers, then nothing for 8 s.
    Stall,
    /// The document in 1,000-byte chunks (`Transfer-Encoding: chunked`), no length told.
    Chunked,
}

async fn jwks_server(doc: Value) -> JwksServer {
    jwks_server_answering(doc, Answer::Document).await
}

async fn jwks_server_answering(doc: Value, answer: Answer) -> JwksServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = Arc::new(std::sync::Mutex::new(doc.to_string()));
    let hits = Arc::new(AtomicUsize::new(0));
    let (b, h) = (body.clone(), hits.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (b, h) = (b.clone(), h.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                h.fetch_add(1, Ordering::SeqCst);
                let doc = b.lock().unwrap().clone();
                let resp = match answer {
                    Answer::Document => format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{doc}",
                        doc.len()
                    ),
                    Answer::Redirect(to) => format!(
                        "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{to}/jwks.json\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    ),
                    Answer::Stall => format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        doc.len()
                    ),
                    Answer::Chunked => {
                        let mut resp = String::from(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
                        );
                        for chunk in doc.as_bytes().chunks(1000) {
                            let chunk = std::str::from_utf8(chunk).unwrap();
                            resp.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
                        }
                        resp.push_str("0\r\n\r\n");
                        resp
                    }
                };
                let _ = sock.write_all(resp.as_bytes()).await;
                if matches!(answer, Answer::Stall) {
                    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
                }
            });
        }
    });
    JwksServer {
        url: format!("http://127.0.0.1:{port}/jwks.json"),
        body,
        hits,
    }
}

/// Loopback is not a public address: the tests that fetch from one allow it, as an operator
/// allows an identity provider inside their network.
async fn app_reaching_loopback() -> TestApp {
    spawn_app_with(|c| {
        c.jwks_uri_allowed_networks =
            auth_server::domain::reach::AllowedNetworks::parse("127.0.0.0/8").unwrap();
    })
    .await
}

/// Registers an application whose keys are at `server`, with a user; its client_id.
async fn uri_client(app: &TestApp, server: &JwksServer) -> String {
    let created = register(
        app,
        json!({"name": "idp", "scopes": ["rooms:list"], "jwks_uri": server.url, "no_secret": true}),
    )
    .await;
    app.create_user("ada@example.com").await;
    created["client_id"].as_str().unwrap().to_owned()
}

/// The security review's finding: a `jwks_uri` on loopback (here this test's, in production
/// the admin or metrics listener, or 169.254.169.254 behind a name) is never fetched unless the
/// operator allows its network.
#[tokio::test]
async fn a_jwks_uri_on_a_non_public_address_is_never_fetched_unless_allowed() {
    let key = Key::new("ES256", "k1");
    let app = spawn_app().await;
    let server = jwks_server(jwks(&[&key])).await;
    let id = uri_client(&app, &server).await;
    let by_name = jwks_server(jwks(&[&key])).await;
    let by_name_url = by_name.url.replace("127.0.0.1", "localhost");
    let named = register(
        &app,
        json!({"name": "idp2", "scopes": ["rooms:list"], "jwks_uri": by_name_url, "no_secret": true}),
    )
    .await;
    let named = named["client_id"].as_str().unwrap().to_owned();
    for client in [&id, &named] {
        let r = token_with_assertion(
            &app,
            &key.sign(&client_claims(&app, client)),
            "ada@example.com",
        )
        .await;
        assert_error(r, 401, "invalid_client").await;
    }
    assert_eq!(server.hits.load(Ordering::SeqCst), 0);
    assert_eq!(
        by_name.hits.load(Ordering::SeqCst),
        0,
        "localhost resolves to loopback"
    );

    let allowed = app_reaching_loopback().await;
    let server = jwks_server(jwks(&[&key])).await;
    let id = uri_client(&allowed, &server).await;
    let r = token_with_assertion(
        &allowed,
        &key.sign(&client_claims(&allowed, &id)),
        "ada@example.com",
    )
    .await;
    assert_eq!(r.status(), 200);
}

/// The size cap's edge, told by `Content-Length` or found while reading a chunked body: a
/// document of exactly 16 KiB is read, one byte more is refused.
#[tokio::test]
async fn a_jwks_document_of_exactly_16_kib_is_read_and_one_byte_more_is_refused() {
    let key = Key::new("ES256", "k1");
    let app = app_reaching_loopback().await;
    let sized = |bytes: usize| {
        let mut doc = jwks(&[&key]);
        doc["padding"] = "".into();
        let pad = bytes - doc.to_string().len();
        doc["padding"] = "x".repeat(pad).into();
        assert_eq!(doc.to_string().len(), bytes);
        doc
    };
    for answer in [Answer::Document, Answer::Chunked] {
        for (bytes, status) in [(16 * 1024, 200), (16 * 1024 + 1, 401)] {
            let server = jwks_server_answering(sized(bytes), answer).await;
            let id = uri_client(&app, &server).await;
            let r = token_with_assertion(
                &app,
                &key.sign(&client_claims(&app, &id)),
                "ada@example.com",
            )
            .await;
            assert_eq!(
                r.status(),
                status,
                "{bytes} bytes: {}",
                r.text().await.unwrap()
            );
            assert_eq!(server.hits.load(Ordering::SeqCst), 1);
        }
    }
}

/// The fetch's caps: no redirect followed, at most 16 KiB read, 5 s at most. Each failure is
/// a refused assertion, and the URI is left alone for 10 s.
#[tokio::test]
async fn a_jwks_uri_that_redirects_is_too_large_or_stalls_is_refused() {
    let key = Key::new("ES256", "k1");
    let app = app_reaching_loopback().await;
    let mut big = jwks(&[&key]);
    big["padding"] = "x".repeat(17 * 1024).into();
    // The redirect leads to a good document, never fetched.
    let target = jwks_server(jwks(&[&key])).await;
    let target_port: u16 = target
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/jwks.json")
        .parse()
        .unwrap();
    for (server, why) in [
        (
            jwks_server_answering(jwks(&[&key]), Answer::Redirect(target_port)).await,
            "redirect",
        ),
        (jwks_server(big).await, "over 16 KiB"),
        (
            jwks_server_answering(jwks(&[&key]), Answer::Stall).await,
            "stall",
        ),
    ] {
        let id = uri_client(&app, &server).await;
        let started = std::time::Instant::now();
        let r = token_with_assertion(
            &app,
            &key.sign(&client_claims(&app, &id)),
            "ada@example.com",
        )
        .await;
        assert_error(r, 401, "invalid_client").await;
        assert!(
            started.elapsed() < std::time::Duration::from_secs(7),
            "{why}: {:?}",
            started.elapsed()
        );
        assert_eq!(server.hits.load(Ordering::SeqCst), 1, "{why}");
        // Left alone after a failure: no second fetch within 10 s.
        let r = token_with_assertion(
            &app,
            &key.sign(&client_claims(&app, &id)),
            "ada@example.com",
        )
        .await;
        assert_error(r, 401, "invalid_client").await;
        assert_eq!(server.hits.load(Ordering::SeqCst), 1, "{why}");
    }
    assert_eq!(
        target.hits.load(Ordering::SeqCst),
        0,
        "a redirect is not followed"
    );
}

#[tokio::test]
async fn a_new_kid_at_the_jwks_uri_works_without_a_restart_and_unknown_kids_cost_one_fetch() {
    let app = app_reaching_loopback().await;
    let old = Key::new("RS256", "2026-11");
    let server = jwks_server(jwks(&[&old])).await;
    let created = register(
        &app,
        json!({"name": "idp", "scopes": ["rooms:list"], "jwks_uri": server.url, "no_secret": true}),
    )
    .await;
    assert_eq!(created["jwks_uri"], server.url);
    let id = created["client_id"].as_str().unwrap().to_owned();
    app.create_user("ada@example.com").await;

    let r = token_with_assertion(
        &app,
        &old.sign(&client_claims(&app, &id)),
        "ada@example.com",
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = token_with_assertion(
        &app,
        &old.sign(&client_claims(&app, &id)),
        "ada@example.com",
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(server.hits.load(Ordering::SeqCst), 1, "the JWKS is cached");

    // The integrator rotates: its JWKS now holds the new key, and it signs with it.
    let new = Key::new("RS256", "2026-12");
    *server.body.lock().unwrap() = jwks(&[&old, &new]).to_string();
    let r = token_with_assertion(
        &app,
        &new.sign(&client_claims(&app, &id)),
        "ada@example.com",
    )
    .await;
    assert_eq!(r.status(), 200, "the unknown kid made one fetch");
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);

    // Made-up kids within the next 10 s: refused, without another fetch each.
    for n in 0..5 {
        let liar = Key::new("RS256", &format!("made-up-{n}"));
        let r = token_with_assertion(
            &app,
            &liar.sign(&client_claims(&app, &id)),
            "ada@example.com",
        )
        .await;
        assert_error(r, 401, "invalid_client").await;
    }
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        2,
        "at most one fetch per 10 s"
    );
}

#[tokio::test]
async fn switching_keys_or_method_through_the_admin_api_takes_effect_and_kills_earlier_tokens() {
    let app = spawn_app().await;
    let (_, admin) = app.admin_key("ops").await;
    let c = app
        .create_client("rooms:list tokens:introspect", &["example.com"])
        .await;
    app.create_user("ada@example.com").await;
    let before = app.access_token(&c, "ada@example.com").await;
    let key = Key::new("EdDSA", "k1");
    let path = format!("/admin/v1/applications/{}", c.client_id);
    // Keys added to a secret application: its tokens live, it still uses its secret.
    let r = app
        .admin(
            reqwest::Method::PATCH,
            &path,
            &admin,
            json!({"jwks": jwks(&[&key])}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.introspection(&c, &before).await["active"], true);
    // Switched to private_key_jwt: the secret stops, earlier tokens die.
    let r = app
        .admin(
            reqwest::Method::PATCH,
            &path,
            &admin,
            json!({"token_endpoint_auth_method": "private_key_jwt"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.token_basic(&c, "ada@example.com").await.status(), 401);
    app.clock.advance(chrono::TimeDelta::seconds(1));
    let r = token_with_assertion(
        &app,
        &key.sign(&client_claims(&app, &c.client_id)),
        "ada@example.com",
    )
    .await;
    assert_eq!(r.status(), 200);
    let fresh = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let introspect = |token: String| {
        app.client
            .post(app.url("/oauth/introspect"))
            .form(&[
                ("token", token),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE.into()),
                (
                    "client_assertion",
                    key.sign(&client_claims(&app, &c.client_id)),
                ),
            ])
            .send()
    };
    let r = introspect(before).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["active"], false);
    let r = introspect(fresh).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["active"], true);
    // Replaced keys: the old key stops at once (parsed keys are not served stale), the new works.
    let next = Key::new("ES256", "k2");
    let r = app
        .admin(
            reqwest::Method::PATCH,
            &path,
            &admin,
            json!({"jwks": jwks(&[&next])}),
        )
        .await;
    assert_eq!(r.status(), 200);
    app.clock.advance(chrono::TimeDelta::seconds(1));
    let old = key.sign(&client_claims(&app, &c.client_id));
    assert_error(
        token_with_assertion(&app, &old, "ada@example.com").await,
        401,
        "invalid_client",
    )
    .await;
    let new = next.sign(&client_claims(&app, &c.client_id));
    assert_eq!(
        token_with_assertion(&app, &new, "ada@example.com")
            .await
            .status(),
        200
    );
    // Keys can't be removed while the method needs them.
    let r = app
        .admin(reqwest::Method::PATCH, &path, &admin, json!({"jwks": null}))
        .await;
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn a_replay_to_another_replica_is_refused() {
    // Two servers on one database (on PostgreSQL, what a fleet is): the used jti is a row, so
    // the second server refuses what the first accepted, for either kind of assertion.
    fn replica(c: &mut auth_server::config::Config) {
        c.key_encryption_key = Some(secrecy::SecretSlice::from(vec![7u8; 32]));
    }
    let a = spawn_app_with(replica).await;
    let b = crate::helpers::spawn_on(
        a.database_url.clone(),
        tempfile::tempdir().unwrap(),
        replica,
    )
    .await;
    let key = Key::new("ES256", "k1");
    let created = register(
        &a,
        json!({"name": "fleet", "scopes": ["rooms:list"], "domains": ["example.com"],
               "jwks": jwks(&[&key]), "no_secret": true}),
    )
    .await;
    let id = created["client_id"].as_str().unwrap();
    a.create_user("ada@example.com").await;

    let client_assertion = key.sign(&client_claims(&a, id));
    let r = token_with_assertion(&a, &client_assertion, "ada@example.com").await;
    assert_eq!(r.status(), 200);
    let r = token_with_assertion(&b, &client_assertion, "ada@example.com").await;
    let body = assert_error(r, 401, "invalid_client").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );

    let grant_assertion = key.sign(&json!({
        "iss": id, "sub": "ada@example.com", "aud": TOKEN_ENDPOINT,
        "iat": now(&a), "exp": now(&a) + 300, "jti": jti(),
    }));
    assert_eq!(grant(&b, &grant_assertion, None).await.status(), 200);
    let body = assert_error(
        grant(&a, &grant_assertion, None).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );
}

/// What authlib's `PrivateKeyJWT` signs by default — `iat` now, `exp` an hour ahead — is
/// `CLIENT_ASSERTION_AUDIENCE=issuer` (draft-ietf-oauth-rfc7523bis's strict rule): the issuer,
/// as a string or an array of one, is the only audience of a client assertion and of the
/// grant; the token endpoint URL that the default accepts is refused, and says so.
#[tokio::test]
async fn with_the_strict_audience_rule_only_the_issuer_is_accepted() {
    use auth_server::domain::assertions::AudienceRule;
    let app = spawn_app_with(|c| c.client_assertion_audience = AudienceRule::Issuer).await;
    let key = Key::new("ES256", "k1");
    let created = register(
        &app,
        json!({"name": "strict", "scopes": ["rooms:list"], "jwks": jwks(&[&key]), "no_secret": true}),
    )
    .await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    app.create_user("ada@example.com").await;
    let aimed = |aud: Value| {
        let mut claims = client_claims(&app, &id);
        claims["aud"] = aud;
        key.sign(&claims)
    };
    for aud in [
        json!(TOKEN_ENDPOINT),
        json!("http://auth.test/external-api/v1.0/application/token"),
    ] {
        let r = token_with_assertion(&app, &aimed(aud), "ada@example.com").await;
        let body = assert_error(r, 401, "invalid_client").await;
        assert_eq!(
            body["error_description"],
            "The client assertion's aud must be the issuer, alone"
        );
    }
    for aud in [json!("http://auth.test"), json!(["http://auth.test"])] {
        let r = token_with_assertion(&app, &aimed(aud), "ada@example.com").await;
        assert_eq!(r.status(), 200);
    }
    // The grant: the same rule.
    let grant_claims = |aud: &str| {
        json!({"iss": id, "sub": "ada@example.com", "aud": aud, "iat": now(&app),
               "exp": now(&app) + 300, "jti": jti()})
    };
    let r = grant(&app, &key.sign(&grant_claims(TOKEN_ENDPOINT)), None).await;
    let body = assert_error(r, 400, "invalid_grant").await;
    assert_eq!(
        body["error_description"],
        "The assertion's aud must be the issuer, alone"
    );
    let r = grant(&app, &key.sign(&grant_claims("http://auth.test")), None).await;
    assert_eq!(r.status(), 200);
}

/// accepted (RFC 7523 §3 bounds it by its `iat`), used once, and refused on its `iat` once
/// `CLIENT_ASSERTION_MAX_AGE_SECONDS` (+ 30 s leeway) have passed, whatever its `exp`: the
/// replay table keeps its jti for 330 s, not an hour. Without `iat`, `exp` alone bounds it.
#[tokio::test]
async fn an_hour_long_assertion_is_accepted_once_and_only_within_the_max_age_of_its_iat() {
    let app = spawn_app().await;
    let key = Key::new("ES256", "k1");
    let created = register(
        &app,
        json!({"name": "authlib", "scopes": ["rooms:list"], "jwks": jwks(&[&key]), "no_secret": true}),
    )
    .await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    app.create_user("ada@example.com").await;
    let mut hour = client_claims(&app, &id);
    hour["exp"] = (now(&app) + 3600).into();
    let assertion = key.sign(&hour);
    let r = token_with_assertion(&app, &assertion, "ada@example.com").await;
    assert_eq!(r.status(), 200);
    let again = token_with_assertion(&app, &assertion, "ada@example.com").await;
    let body = assert_error(again, 401, "invalid_client").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );

    // A fresh one signed at the same second, 329 s later: still within the age; one second
    // later, refused on its iat (not as a replay: it was never used).
    let mut fresh = client_claims(&app, &id);
    fresh["exp"] = (now(&app) + 3600).into();
    let (a, b) = (key.sign(&fresh), {
        fresh["jti"] = jti().into();
        key.sign(&fresh)
    });
    app.clock.advance(chrono::TimeDelta::seconds(329));
    assert_eq!(
        token_with_assertion(&app, &a, "ada@example.com")
            .await
            .status(),
        200
    );
    app.clock.advance(chrono::TimeDelta::seconds(1));
    let late = token_with_assertion(&app, &b, "ada@example.com").await;
    let body = assert_error(late, 401, "invalid_client").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("300 seconds old"),
        "{body}"
    );

    // No iat: an exp within the age is accepted, further is refused.
    let mut bare = client_claims(&app, &id);
    bare.as_object_mut().unwrap().remove("iat");
    bare["exp"] = (now(&app) + 300).into();
    assert_eq!(
        token_with_assertion(&app, &key.sign(&bare), "ada@example.com")
            .await
            .status(),
        200
    );
    bare["exp"] = (now(&app) + 400).into();
    bare["jti"] = jti().into();
    let far = token_with_assertion(&app, &key.sign(&bare), "ada@example.com").await;
    let body = assert_error(far, 401, "invalid_client").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("has no iat")
    );
}
