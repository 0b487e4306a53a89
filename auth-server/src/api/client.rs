//! Client authentication for the endpoints other than the token endpoint (introspection,
//! revocation, the feed): the same credentials rules, with these endpoints' error answers.

use poem::Request;
use poem::http::header;
use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;
use shared::{ErrorBody, ErrorCode, Scope};

use crate::domain::client_auth::{self, AuthError, Presented};
use crate::domain::client_secret::VerifyError;
use crate::error::{BASIC_CHALLENGE, RETRY_AFTER_SECONDS};
use crate::state::AppState;
use crate::store::applications::Application;

#[derive(ApiResponse, Debug)]
#[oai(bad_request_handler = "client_bad_request")]
pub enum ClientEndpointError {
    /// `invalid_request`.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// `invalid_client`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// `unauthorized_client`: the application lacks the privilege.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `invalid_request`: the body is not `application/x-www-form-urlencoded`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// `temporarily_unavailable`: too many failed authentications.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    /// `server_error`.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// `temporarily_unavailable`.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
}

fn client_bad_request(err: poem::Error) -> ClientEndpointError {
    if err.status() == poem::http::StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return ClientEndpointError::UnsupportedMediaType(Json(ErrorBody::new(
            ErrorCode::InvalidRequest,
            "Unsupported content type: use application/x-www-form-urlencoded",
        )));
    }
    ClientEndpointError::BadRequest(Json(ErrorBody::new(
        ErrorCode::InvalidRequest,
        "The request could not be parsed (use application/x-www-form-urlencoded)",
    )))
}

pub fn invalid_request(text: &str) -> ClientEndpointError {
    ClientEndpointError::BadRequest(Json(ErrorBody::new(ErrorCode::InvalidRequest, text)))
}

impl From<crate::store::StoreError> for ClientEndpointError {
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(
                error = format!("{:#}", anyhow::Error::from(e)),
                "database unavailable"
            );
            ClientEndpointError::Unavailable(
                Json(ErrorBody::new(
                    ErrorCode::TemporarilyUnavailable,
                    "The database is unavailable",
                )),
                RETRY_AFTER_SECONDS,
            )
        } else {
            tracing::error!(
                error = format!("{:#}", anyhow::Error::from(e)),
                "request failed"
            );
            ClientEndpointError::Internal(Json(ErrorBody::new(
                ErrorCode::ServerError,
                "internal error",
            )))
        }
    }
}

/// The request's source address, for the failure limits.
pub fn source_address(state: &AppState, req: &Request) -> std::net::IpAddr {
    let peer = req.remote_addr().as_socket_addr().map(|a| a.ip());
    // Every line, in order (RFC 9110 §5.3); a line that is not text reads as garbage.
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or("?"));
    state.config.trusted_proxies.source(peer, forwarded)
}

fn unauthorized(text: &str) -> ClientEndpointError {
    tracing::info!(reason = text, "client authentication refused");
    ClientEndpointError::Unauthorized(
        Json(ErrorBody::new(ErrorCode::InvalidClient, text)),
        BASIC_CHALLENGE.to_owned(),
    )
}

/// Authenticates the calling application and checks it holds `privilege` (if any).
pub async fn authenticate(
    state: &AppState,
    req: &Request,
    body_client_id: Option<&str>,
    body_client_secret: Option<String>,
    privilege: Option<Scope>,
) -> Result<Application, ClientEndpointError> {
    let presented = credentials(req, body_client_id, body_client_secret)?;
    let result = client_auth::authenticate(state, presented, source_address(state, req)).await;
    Ok(authorized(result.map(|app| (app, ())), privilege)?.0)
}

/// The credentials of the request; none at all is a 401 before any lookup.
pub fn credentials(
    req: &Request,
    body_client_id: Option<&str>,
    body_client_secret: Option<String>,
) -> Result<Presented, ClientEndpointError> {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let presented = client_auth::presented(authorization, body_client_id, body_client_secret)
        .map_err(|e| invalid_request(e.0))?;
    if matches!(presented, Presented::None) {
        return Err(unauthorized("Client authentication required"));
    }
    Ok(presented)
}

/// The answer to an authentication outcome (with what was read alongside the application),
/// and the privilege check.
pub fn authorized<T>(
    result: Result<(Application, T), AuthError>,
    privilege: Option<Scope>,
) -> Result<(Application, T), ClientEndpointError> {
    let (app, extra) = match result {
        Ok(found) => found,
        Err(AuthError::Failed) => return Err(unauthorized("Client authentication failed")),
        Err(AuthError::Inactive) => return Err(unauthorized("Application is inactive")),
        Err(AuthError::Limited { retry_after }) => {
            return Err(ClientEndpointError::TooManyRequests(
                Json(ErrorBody::new(
                    ErrorCode::TemporarilyUnavailable,
                    "Too many failed authentications, retry later",
                )),
                retry_after,
            ));
        }
        Err(AuthError::Busy(VerifyError::Busy)) => {
            return Err(ClientEndpointError::Unavailable(
                Json(ErrorBody::new(
                    ErrorCode::TemporarilyUnavailable,
                    "Too many concurrent authentications, retry shortly",
                )),
                RETRY_AFTER_SECONDS,
            ));
        }
        Err(AuthError::Busy(e @ VerifyError::Task)) => {
            tracing::error!(error = %e, "secret verification failed");
            return Err(ClientEndpointError::Internal(Json(ErrorBody::new(
                ErrorCode::ServerError,
                "internal error",
            ))));
        }
        Err(AuthError::Store(e)) => return Err(e.into()),
    };
    if let Some(p) = privilege
        && !app.scopes.contains(p)
    {
        return Err(ClientEndpointError::Forbidden(Json(ErrorBody::new(
            ErrorCode::UnauthorizedClient,
            format!("This application lacks the {p} privilege"),
        ))));
    }
    Ok((app, extra))
}
