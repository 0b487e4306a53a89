//! `POST /oauth/resolve-user`: which user an application may act for, by e-mail
//! (docs/spec/auth-server.md §6a) — the rooms API asks it to share a room with someone.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::{Form, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use shared::users::ResolvedUser;

use super::client::ClientEdge;
use crate::domain::client_auth::AssertionFields;
use crate::domain::delegation::{self, ResolveRequest};
use crate::error::ClientEndpointError;
use crate::state::AppState;

#[derive(Object, Deserialize)]
#[oai(rename = "ResolveUserRequest")]
pub struct ResolveUserBody {
    /// The client_id of the application that acts: its allowlist and user-creation policy apply.
    application: Option<String>,
    /// The user's e-mail address.
    email: Option<String>,
    /// `true`: create a provisional user when none has this e-mail and the application's
    /// policy allows it (as its token requests would). Default `false`.
    create: Option<bool>,
    /// Caller credentials, if not sent with HTTP Basic.
    client_id: Option<String>,
    client_secret: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` (private_key_jwt).
    client_assertion_type: Option<String>,
    /// A JWT signed by one of the caller's keys (private_key_jwt).
    client_assertion: Option<String>,
}

#[derive(ApiResponse)]
pub enum ResolveUserResponse {
    /// The user the application may act for.
    #[oai(status = 200)]
    Ok(Json<ResolvedUser>),
}

pub struct ResolveUserApi;

#[OpenApi(tag = "crate::api::health::Tag::OAuth")]
impl ResolveUserApi {
    /// Resolve an application's user by e-mail, under that application's allowlist and
    /// user-creation policy. Needs the `users:resolve` privilege.
    #[oai(
        path = "/oauth/resolve-user",
        method = "post",
        operation_id = "resolve_user"
    )]
    async fn resolve_user(
        &self,
        state: Data<&Arc<AppState>>,
        edge: ClientEdge,
        body: Form<ResolveUserBody>,
    ) -> Result<ResolveUserResponse, ClientEndpointError> {
        let Form(body) = body;
        let caller = edge.info(
            body.client_id.as_deref(),
            body.client_secret,
            AssertionFields {
                client_assertion_type: body.client_assertion_type,
                client_assertion: body.client_assertion,
            },
        )?;
        let resolved = delegation::resolve(
            &state.db,
            &state.clients,
            state.policy.allow_user_creation,
            caller,
            ResolveRequest {
                application: body.application.as_deref(),
                email: body.email.as_deref(),
                create: body.create.unwrap_or(false),
            },
            state.clock.now(),
        )
        .await?;
        Ok(ResolveUserResponse::Ok(Json(ResolvedUser {
            user_id: resolved.user.id.to_string(),
            created: resolved.created,
        })))
    }
}
