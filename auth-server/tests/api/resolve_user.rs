//! `POST /oauth/resolve-user` (docs/spec/auth-server.md §6a): the user an application may act
//! for, by e-mail, under that application's allowlist and user-creation policy — as a token
//! request of that application would meet them.

use serde_json::Value;
use shared::ClientId;

use crate::helpers::*;

impl TestApp {
    /// The rooms API's side: `caller` asks about `email` for `application`.
    async fn resolve(
        &self,
        caller: &TestClient,
        application: &str,
        email: &str,
        create: bool,
    ) -> reqwest::Response {
        self.client
            .post(self.url("/oauth/resolve-user"))
            .basic_auth(&caller.client_id, Some(&caller.secret))
            .form(&[
                ("application", application),
                ("email", email),
                ("create", if create { "true" } else { "false" }),
            ])
            .send()
            .await
            .unwrap()
    }

    /// An application holding `users:resolve` (the rooms API's own).
    async fn resolver(&self) -> TestClient {
        self.create_client("users:resolve tokens:revocations", &[])
            .await
    }
}

async fn ok(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_caller_without_the_privilege_learns_nothing_about_the_request() {
    let app = spawn_app().await;
    let integrator = app
        .create_client("rooms:list rooms:grant-access", &["example.com"])
        .await;
    app.create_user("ann@example.com").await;
    // No credentials, a wrong secret: 401 whatever the fields say.
    let r = app
        .client
        .post(app.url("/oauth/resolve-user"))
        .form(&[("application", integrator.client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "invalid_client").await;
    let forged = TestClient {
        client_id: integrator.client_id.clone(),
        secret: "wrong".into(),
    };
    assert_error(
        app.resolve(&forged, &integrator.client_id, "ann@example.com", false)
            .await,
        401,
        "invalid_client",
    )
    .await;
    // Authenticated without users:resolve (an integrator asking about its own users): 403,
    // for a user that exists and for a request with no fields alike.
    assert_error(
        app.resolve(&integrator, &integrator.client_id, "ann@example.com", false)
            .await,
        403,
        "unauthorized_client",
    )
    .await;
    assert_error(
        app.resolve(&integrator, "", "", false).await,
        403,
        "unauthorized_client",
    )
    .await;
}

#[tokio::test]
async fn an_existing_user_is_resolved_to_their_id_and_nothing_is_created() {
    let app = spawn_app_with(|c| c.allow_user_creation = true).await;
    let resolver = app.resolver().await;
    let integrator = app.create_client("rooms:list", &["example.com"]).await;
    let ann = app.create_user("Ann@Example.com").await;
    let before = app.user_count().await;
    let body = ok(app
        .resolve(&resolver, &integrator.client_id, "ann@EXAMPLE.com", true)
        .await)
    .await;
    assert_eq!(body["user_id"], ann.to_string());
    assert_eq!(body["created"], false);
    assert_eq!(app.user_count().await, before);
}

#[tokio::test]
async fn the_allowlist_is_checked_before_the_user_so_a_refusal_says_nothing_of_who_exists() {
    let app = spawn_app_with(|c| c.allow_user_creation = true).await;
    let resolver = app.resolver().await;
    let integrator = app.create_client("rooms:list", &["example.com"]).await;
    app.create_user("bob@other.org").await;
    for email in ["bob@other.org", "ghost@other.org", "eve@sub.example.com"] {
        let body = assert_error(
            app.resolve(&resolver, &integrator.client_id, email, true)
                .await,
            403,
            "domain_not_allowed",
        )
        .await;
        assert_eq!(
            body["error_description"],
            "this application may not act for users of this e-mail domain"
        );
    }
    assert_eq!(app.user_count().await, 1, "nobody was created");
}

#[tokio::test]
async fn a_provisional_user_is_created_only_when_asked_allowed_and_the_domains_are_listed() {
    let app = spawn_app_with(|c| c.allow_user_creation = true).await;
    let resolver = app.resolver().await;
    let listed = app.create_client("rooms:list", &["example.com"]).await;
    let any_domain = app.create_client("rooms:list", &[]).await;
    // Not asked to create: unknown.
    assert_error(
        app.resolve(&resolver, &listed.client_id, "new@example.com", false)
            .await,
        404,
        "user_not_found",
    )
    .await;
    // An application that admits any domain never creates users (as at the token endpoint).
    assert_error(
        app.resolve(&resolver, &any_domain.client_id, "new@example.com", true)
            .await,
        404,
        "user_not_found",
    )
    .await;
    assert_eq!(app.user_count().await, 0);
    let first = ok(app
        .resolve(&resolver, &listed.client_id, "new@example.com", true)
        .await)
    .await;
    assert_eq!(first["created"], true);
    let again = ok(app
        .resolve(&resolver, &listed.client_id, "new@example.com", true)
        .await)
    .await;
    assert_eq!(again["created"], false);
    assert_eq!(again["user_id"], first["user_id"]);
    assert_eq!(app.user_count().await, 1);
    // The creation is audited as the integrator's, like a token request's.
    let user = auth_server::domain::users::find_by_email(
        &app.state.db,
        &shared::Email::parse("new@example.com").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        user.created_by,
        Some(ClientId::parse(&listed.client_id).unwrap())
    );
}

#[tokio::test]
async fn with_user_creation_off_an_unknown_user_is_not_found() {
    let app = spawn_app().await;
    let resolver = app.resolver().await;
    let listed = app.create_client("rooms:list", &["example.com"]).await;
    assert_error(
        app.resolve(&resolver, &listed.client_id, "new@example.com", true)
            .await,
        404,
        "user_not_found",
    )
    .await;
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn a_bad_email_a_disabled_user_and_an_unknown_or_inactive_application_have_their_codes() {
    let app = spawn_app().await;
    let resolver = app.resolver().await;
    let integrator = app.create_client("rooms:list", &["example.com"]).await;
    let off = app.create_user("off@example.com").await;
    auth_server::domain::users::set_active(
        &app.state.db,
        &auth_server::domain::audit::Actor::Cli,
        auth_server::domain::users::UserRef::Id(off),
        false,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_error(
        app.resolve(&resolver, &integrator.client_id, "not an e-mail", false)
            .await,
        400,
        "invalid_email",
    )
    .await;
    assert_error(
        app.resolve(&resolver, &integrator.client_id, "off@example.com", false)
            .await,
        403,
        "user_disabled",
    )
    .await;
    for unknown in ["x", &"a".repeat(40)] {
        assert_error(
            app.resolve(&resolver, unknown, "off@example.com", false)
                .await,
            404,
            "unknown_application",
        )
        .await;
    }
    auth_server::domain::applications::update(
        &app.state.db,
        &auth_server::domain::audit::Actor::Cli,
        &ClientId::parse(&integrator.client_id).unwrap(),
        auth_server::domain::applications::Changes {
            active: Some(false),
            ..Default::default()
        },
        u32::MAX,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_error(
        app.resolve(&resolver, &integrator.client_id, "ann@example.com", false)
            .await,
        404,
        "unknown_application",
    )
    .await;
    // Missing fields.
    let r = app
        .client
        .post(app.url("/oauth/resolve-user"))
        .basic_auth(&resolver.client_id, Some(&resolver.secret))
        .form(&[("email", "ann@example.com")])
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 400, "invalid_request").await;
    assert_eq!(body["error_description"], "application is required");
}
