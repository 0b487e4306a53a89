//! `POST /oauth/revoke` (RFC 7009) and `GET /oauth/revocations` (the feed).

use std::sync::Arc;

use super::client::ClientEdge;
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::{Form, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use shared::Scope;

use super::client;
use crate::domain::client_auth::AssertionFields;
use crate::domain::revocation;
use crate::error::ClientEndpointError;
use crate::state::AppState;
use shared::feed::Feed;

#[derive(Object, Deserialize)]
#[oai(rename = "RevocationRequest")]
pub struct RevokeBody {
    /// The access token to revoke.
    token: Option<String>,
    /// Accepted and ignored.
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` (private_key_jwt).
    client_assertion_type: Option<String>,
    /// A JWT signed by one of the application's keys (private_key_jwt).
    client_assertion: Option<String>,
}

#[derive(ApiResponse)]
pub enum RevokeResponse {
    /// Done — or the token was unknown, invalid or another application's (RFC 7009 §2.2).
    #[oai(status = 200)]
    Ok,
}

#[derive(ApiResponse)]
pub enum FeedResponse {
    #[oai(status = 200)]
    Ok(Json<Feed>),
}

pub struct RevokeApi;

#[OpenApi(tag = "crate::api::health::Tag::OAuth")]
impl RevokeApi {
    /// Revoke an access token issued to the calling application.
    #[oai(path = "/oauth/revoke", method = "post", operation_id = "revoke")]
    async fn revoke(
        &self,
        state: Data<&Arc<AppState>>,
        edge: ClientEdge,
        body: Form<RevokeBody>,
    ) -> Result<RevokeResponse, ClientEndpointError> {
        let Form(body) = body;
        let _ = &body.token_type_hint;
        let info = edge.info(
            body.client_id.as_deref(),
            body.client_secret,
            AssertionFields {
                client_assertion_type: body.client_assertion_type,
                client_assertion: body.client_assertion,
            },
        )?;
        let caller = client::authenticate(&state, info, None).await?;
        let token = body
            .token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| crate::error::invalid_request("token is required"))?;
        revocation::revoke(
            &state.db,
            &state.own_tokens,
            &caller,
            &token,
            state.clock.now(),
        )
        .await?;
        Ok(RevokeResponse::Ok)
    }

    /// Revocations and not-before times for resource servers that verify tokens locally.
    /// Needs the `tokens:revocations` privilege (HTTP Basic).
    #[oai(
        path = "/oauth/revocations",
        method = "get",
        operation_id = "revocations"
    )]
    async fn revocations(
        &self,
        state: Data<&Arc<AppState>>,
        edge: ClientEdge,
        /// From the previous answer; omit for a full snapshot.
        cursor: Query<Option<String>>,
        /// The most entries in this answer, 1–5000 (default and ceiling 5000).
        limit: Query<Option<u64>>,
    ) -> Result<FeedResponse, ClientEndpointError> {
        let info = edge.info(None, None, AssertionFields::default())?;
        client::authenticate(&state, info, Some(Scope::TokensRevocations)).await?;
        let feed = revocation::feed(
            &state.db,
            cursor.0.as_deref(),
            limit.0,
            state.config.token_ttl_seconds,
            state.clock.now(),
        )
        .await?;
        Ok(FeedResponse::Ok(Json(feed)))
    }
}
