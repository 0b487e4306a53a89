//! `POST /oauth/token` and its upstream alias.

use std::sync::Arc;

use poem::Request;
use poem::web::Data;
use poem_openapi::payload::{Form, Json};
use poem_openapi::{ApiRequest, Object, OpenApi};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::client::ClientEdge;
use crate::domain::dpop::{DpopHeader, DpopPresented};
use crate::domain::grant::{self, TokenRequest};
use crate::error::{TokenBody, TokenResponse, token_error_response};
use crate::state::AppState;

/// Token request fields, sent as a form (RFC 6749) or JSON (upstream). All optional here so
/// that a missing field is answered in the order the spec fixes, not by the parser.
#[derive(Object, Deserialize)]
#[oai(rename = "TokenRequest")]
pub struct TokenRequestBody {
    /// `client_credentials` or `urn:ietf:params:oauth:grant-type:jwt-bearer`.
    grant_type: Option<String>,
    /// The application's client_id (or use HTTP Basic).
    client_id: Option<String>,
    /// The application's secret (or use HTTP Basic; never both).
    client_secret: Option<String>,
    /// client_credentials: the e-mail address of the user the application acts for.
    /// JWT-bearer: the rooms scopes asked for (a subset of the application's; none: all).
    scope: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` (private_key_jwt).
    client_assertion_type: Option<String>,
    /// A JWT signed by one of the application's keys (private_key_jwt), instead of a secret.
    client_assertion: Option<String>,
    /// JWT-bearer grant: a JWT signed by the application's key, `sub` the user's e-mail.
    assertion: Option<String>,
}

#[derive(ApiRequest)]
pub enum TokenPayload {
    Form(Form<TokenRequestBody>),
    Json(Json<TokenRequestBody>),
}

impl TokenPayload {
    fn into_request(self, dpop: DpopPresented) -> TokenRequest {
        let b = match self {
            TokenPayload::Form(Form(b)) | TokenPayload::Json(Json(b)) => b,
        };
        TokenRequest {
            grant_type: b.grant_type,
            client_id: b.client_id,
            client_secret: b.client_secret,
            scope: b.scope,
            client_assertion_type: b.client_assertion_type,
            client_assertion: b.client_assertion,
            assertion: b.assertion,
            dpop,
        }
    }
}

/// The `DPoP` header(s) and the URL the client addressed: the issuer (this server's public
/// URL, whatever proxy is in front) and the request's path as it arrived (upstream's
/// `/oauth/token/` is one).
fn dpop_presented(state: &AppState, req: &Request) -> DpopPresented {
    DpopPresented {
        header: DpopHeader::from_values(req.headers().get_all("dpop").iter().map(|v| v.as_bytes())),
        url: format!(
            "{}{}",
            state.config.issuer,
            server_kit::http::ArrivedPath::of(req)
        ),
    }
}

pub struct TokenApi;

async fn token(state: &AppState, req: &Request, payload: TokenPayload) -> TokenResponse {
    // `DPOP_NONCE`: every answer that a client may retry or continue from carries the nonce
    // for its next proof (RFC 9449 §8).
    let nonce = state
        .dpop_nonces
        .as_ref()
        .and_then(|n| n.current(state.clock.now()));
    let edge = ClientEdge::read(state, req);
    match grant::exchange(
        state.exchange(),
        payload.into_request(dpop_presented(state, req)),
        edge.authorization(),
        edge.source(),
    )
    .await
    {
        Ok(issued) => {
            server_kit::traces::record_client_id(&issued.client_id);
            state
                .metrics
                .tokens_issued
                .with_label_values(&[issued.client_id.as_str()])
                .inc();
            TokenResponse::Ok(
                Json(TokenBody {
                    access_token: issued.access_token.expose_secret().to_owned(),
                    token_type: if issued.dpop_bound { "DPoP" } else { "Bearer" }.to_owned(),
                    expires_in: issued.expires_in,
                    scope: issued.scope,
                }),
                nonce,
            )
        }
        Err(e) => match token_error_response(e) {
            TokenResponse::BadRequest(body, _) => TokenResponse::BadRequest(body, nonce),
            other => other,
        },
    }
}

#[OpenApi(tag = "crate::api::health::Tag::OAuth")]
impl TokenApi {
    /// Exchange client credentials for an access token acting for a user.
    ///
    /// client_credentials grant: `scope` is the e-mail of the user to act for. Authenticate
    /// with HTTP Basic (client_secret_basic), `client_id` + `client_secret` in the body
    /// (client_secret_post) or `client_assertion` (private_key_jwt). Or the JWT-bearer grant
    /// (RFC 7523): `assertion` is a JWT signed by the application's key whose `sub` is the
    /// user's e-mail. Every response carries `Cache-Control: no-store`.
    #[oai(path = "/oauth/token", method = "post", operation_id = "token")]
    async fn token(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        payload: TokenPayload,
    ) -> TokenResponse {
        token(&state, req, payload).await
    }

    /// Upstream-compatible alias of `POST /oauth/token`.
    #[oai(
        path = "/external-api/v1.0/application/token",
        method = "post",
        operation_id = "token_upstream"
    )]
    async fn token_upstream(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        payload: TokenPayload,
    ) -> TokenResponse {
        token(&state, req, payload).await
    }
}
