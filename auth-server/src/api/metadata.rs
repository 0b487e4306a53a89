//! `GET /.well-known/oauth-authorization-server` (RFC 8414), built from `AUTH_ISSUER` so every
//! URL matches the real endpoints.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use shared::{GrantType, Scope};

use crate::domain::client_keys::AssertionAlg;

use crate::state::AppState;

#[derive(Object)]
pub struct Metadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub grant_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// The algorithms a `private_key_jwt` assertion (and a JWT-bearer grant) may be signed with.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// The algorithms a DPoP proof may be signed with (RFC 9449 §5.1).
    pub dpop_signing_alg_values_supported: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub service_documentation: String,
}

pub fn metadata(issuer: &str) -> Metadata {
    let methods = || {
        vec![
            "client_secret_basic".to_owned(),
            "client_secret_post".to_owned(),
            "private_key_jwt".to_owned(),
        ]
    };
    let algs = || {
        AssertionAlg::ALL
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    Metadata {
        issuer: issuer.to_owned(),
        token_endpoint: format!("{issuer}/oauth/token"),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        introspection_endpoint: format!("{issuer}/oauth/introspect"),
        revocation_endpoint: format!("{issuer}/oauth/revoke"),
        grant_types_supported: vec![
            GrantType::ClientCredentials.to_string(),
            GrantType::JwtBearer.to_string(),
        ],
        token_endpoint_auth_methods_supported: methods(),
        token_endpoint_auth_signing_alg_values_supported: algs(),
        introspection_endpoint_auth_methods_supported: methods(),
        introspection_endpoint_auth_signing_alg_values_supported: algs(),
        revocation_endpoint_auth_methods_supported: methods(),
        revocation_endpoint_auth_signing_alg_values_supported: algs(),
        dpop_signing_alg_values_supported: shared::dpop::ALGS
            .iter()
            .map(|a| (*a).to_owned())
            .collect(),
        scopes_supported: Scope::ROOMS.iter().map(|s| s.to_string()).collect(),
        response_types_supported: vec![],
        service_documentation: format!("{issuer}/docs"),
    }
}

pub struct MetadataApi;

#[OpenApi(tag = "crate::api::health::Tag::OAuth")]
impl MetadataApi {
    /// Authorization server metadata (RFC 8414).
    #[oai(
        path = "/.well-known/oauth-authorization-server",
        method = "get",
        operation_id = "metadata"
    )]
    async fn metadata(&self, state: Data<&Arc<AppState>>) -> Json<Metadata> {
        Json(metadata(&state.config.issuer))
    }
}
