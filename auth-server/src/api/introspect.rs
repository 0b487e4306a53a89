//! `POST /oauth/introspect` (RFC 7662).

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::{Form, Json};
use poem_openapi::{ApiResponse, Object, OpenApi, Union};
use serde::Deserialize;

use super::client::ClientEdge;
use crate::domain::client_auth::AssertionFields;
use crate::domain::introspection;
use crate::error::ClientEndpointError;
use crate::state::AppState;

#[derive(Object, Deserialize)]
#[oai(rename = "IntrospectionRequest")]
pub struct IntrospectBody {
    /// The access token to examine.
    token: Option<String>,
    /// Accepted and ignored (only access tokens exist).
    token_type_hint: Option<String>,
    /// Caller credentials, if not sent with HTTP Basic.
    client_id: Option<String>,
    client_secret: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` (private_key_jwt).
    client_assertion_type: Option<String>,
    /// A JWT signed by one of the application's keys (private_key_jwt).
    client_assertion: Option<String>,
}

/// The RFC 7662 answer for an active token.
#[derive(Debug, Clone, Object)]
pub struct ActiveToken {
    pub active: bool,
    #[oai(skip_serializing_if_is_none)]
    pub scope: Option<String>,
    pub client_id: String,
    pub sub: String,
    pub user_id: String,
    /// The delegated user's e-mail.
    pub username: String,
    pub token_type: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub iss: String,
    pub aud: String,
    pub jti: String,
    pub delegated: bool,
    pub act: ActorObject,
    /// A DPoP-bound token's confirmation (RFC 9449 §6.2): the thumbprint of its key.
    #[oai(skip_serializing_if_is_none)]
    pub cnf: Option<Confirmation>,
}

/// RFC 7800 `cnf` of a DPoP-bound token.
#[derive(Debug, Clone, Object)]
pub struct Confirmation {
    /// The RFC 7638 SHA-256 thumbprint of the key a DPoP proof must be signed with.
    pub jkt: String,
}

/// The acting party (RFC 8693 `act`): the application.
#[derive(Debug, Clone, Object)]
pub struct ActorObject {
    pub sub: String,
}

impl From<introspection::ActiveToken> for ActiveToken {
    fn from(t: introspection::ActiveToken) -> Self {
        Self {
            active: true,
            scope: t.scope,
            client_id: t.client_id,
            sub: t.sub,
            user_id: t.user_id,
            username: t.username,
            token_type: t.token_type,
            exp: t.exp,
            iat: t.iat,
            nbf: t.nbf,
            iss: t.iss,
            aud: t.aud,
            jti: t.jti,
            delegated: t.delegated,
            act: ActorObject { sub: t.actor.sub },
            cnf: t.jkt.map(|jkt| Confirmation { jkt }),
        }
    }
}

#[derive(Object)]
pub struct InactiveToken {
    /// Always false; nothing else is said about an inactive token.
    pub active: bool,
}

// Built once per response and serialised at once: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Union)]
pub enum Introspection {
    Active(ActiveToken),
    Inactive(InactiveToken),
}

#[derive(ApiResponse)]
pub enum IntrospectResponse {
    /// The token's state.
    #[oai(status = 200)]
    Ok(Json<Introspection>),
}

pub struct IntrospectApi;

#[OpenApi(tag = "crate::api::health::Tag::OAuth")]
impl IntrospectApi {
    /// Token introspection (RFC 7662). Needs the `tokens:introspect` privilege.
    #[oai(
        path = "/oauth/introspect",
        method = "post",
        operation_id = "introspect"
    )]
    async fn introspect(
        &self,
        state: Data<&Arc<AppState>>,
        edge: ClientEdge,
        body: Form<IntrospectBody>,
    ) -> Result<IntrospectResponse, ClientEndpointError> {
        let Form(body) = body;
        let _ = &body.token_type_hint;
        let caller = edge.info(
            body.client_id.as_deref(),
            body.client_secret,
            AssertionFields {
                client_assertion_type: body.client_assertion_type,
                client_assertion: body.client_assertion,
            },
        )?;
        let answer = match introspection::introspect(
            &state.db,
            &state.clients,
            &state.own_tokens,
            caller,
            body.token.as_deref(),
            state.clock.now(),
        )
        .await?
        {
            Some(active) => Introspection::Active(active.into()),
            None => Introspection::Inactive(InactiveToken { active: false }),
        };
        Ok(IntrospectResponse::Ok(Json(answer)))
    }
}
