//! The HTTP layer: thin poem-openapi operations that parse, call `domain`, and map the result.

pub mod admin;
pub mod client;
pub mod health;
pub mod introspect;
pub mod keys;
pub mod metadata;
pub mod resolve_user;
pub mod revoke;
pub mod token;

use poem_openapi::OpenApiService;

pub type Apis = (
    token::TokenApi,
    introspect::IntrospectApi,
    revoke::RevokeApi,
    resolve_user::ResolveUserApi,
    keys::KeysApi,
    metadata::MetadataApi,
    health::HealthApi,
);

/// The OpenAPI service. Needs no database, so the `openapi` subcommand can render it offline.
pub fn service(server_url: &str) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            token::TokenApi,
            introspect::IntrospectApi,
            revoke::RevokeApi,
            resolve_user::ResolveUserApi,
            keys::KeysApi,
            metadata::MetadataApi,
            health::HealthApi,
        ),
        "auth-server",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "OAuth2 authorization server: applications exchange their client credentials for a \
         short-lived access token that acts for one of their users (client_credentials grant \
         with the user's e-mail as `scope`).",
    )
    .server(server_url)
}
