//! The one mapping from domain errors to status, headers and RFC 6749 §5.2 bodies, and the
//! response types that carry them: the token endpoint's (`TokenResponse`) and the other client
//! endpoints' (`ClientEndpointError`: introspection, revocation, the feed). The admin API's
//! RFC 9457 problems are in `problem.rs`.

pub mod problem;

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};
use shared::{ErrorBody, ErrorCode, Scope};

use crate::domain::client_auth::AuthError;
use crate::domain::client_secret::VerifyError;
use crate::domain::delegation::ResolveError;
use crate::domain::dpop::DpopRefusal;
use crate::domain::grant::TokenError;
use crate::domain::introspection::IntrospectError;
use shared::users::Refusal;

pub const BASIC_CHALLENGE: &str = r#"Basic realm="auth-server""#;
/// Seconds a client should wait after a 503/429.
pub const RETRY_AFTER_SECONDS: u64 = 2;

/// RFC 6749 §5.1 success body.
#[derive(Object)]
pub struct TokenBody {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    pub expires_in: i64,
    /// Granted `rooms:*` scopes, space-separated; absent when none.
    #[oai(skip_serializing_if_is_none)]
    pub scope: Option<String>,
}

#[derive(ApiResponse)]
#[oai(bad_request_handler = "token_bad_request")]
pub enum TokenResponse {
    /// Token issued.
    #[oai(status = 200)]
    Ok(
        Json<TokenBody>,
        /// A nonce for the next DPoP proof (`DPOP_NONCE`).
        #[oai(header = "DPoP-Nonce")]
        Option<String>,
    ),
    /// `invalid_request`, `unsupported_grant_type`, `invalid_grant` (the JWT-bearer
    /// assertion), or `invalid_scope` (not an e-mail; a scope the application lacks).
    /// `use_dpop_nonce` (`DPOP_NONCE`) comes with the nonce to use.
    #[oai(status = 400)]
    BadRequest(
        Json<ErrorBody>,
        #[oai(header = "DPoP-Nonce")] Option<String>,
    ),
    /// `invalid_client`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// `invalid_scope`: domain not allowed, or user disabled.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// `invalid_scope`: user not found.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `invalid_request`: neither form nor JSON.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// `temporarily_unavailable`: too many failed authentications.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    /// `server_error`.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// `temporarily_unavailable`: overloaded or the database is down.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
}

fn token_bad_request(err: poem::Error) -> TokenResponse {
    if err.status() == poem::http::StatusCode::UNSUPPORTED_MEDIA_TYPE {
        TokenResponse::UnsupportedMediaType(Json(ErrorBody::new(
            ErrorCode::InvalidRequest,
            "Unsupported content type: use application/x-www-form-urlencoded or application/json",
        )))
    } else {
        TokenResponse::BadRequest(
            Json(ErrorBody::new(
                ErrorCode::InvalidRequest,
                "The request body could not be parsed",
            )),
            None,
        )
    }
}

#[derive(ApiResponse, Debug)]
#[oai(bad_request_handler = "client_bad_request")]
pub enum ClientEndpointError {
    /// `invalid_request`.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// `invalid_client`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// `unauthorized_client`: the application lacks the privilege; user resolution:
    /// `domain_not_allowed` or `user_disabled`.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// User resolution: `user_not_found` or `unknown_application`.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
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

impl From<crate::model::StoreError> for ClientEndpointError {
    fn from(e: crate::model::StoreError) -> Self {
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

pub fn unauthorized(text: &str) -> ClientEndpointError {
    tracing::info!(reason = text, "client authentication refused");
    ClientEndpointError::Unauthorized(
        Json(ErrorBody::new(ErrorCode::InvalidClient, text)),
        BASIC_CHALLENGE.to_owned(),
    )
}

impl From<AuthError> for ClientEndpointError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Failed => unauthorized("Client authentication failed"),
            AuthError::Assertion(reason) => unauthorized(&reason.to_string()),
            AuthError::Inactive => unauthorized("Application is inactive"),
            AuthError::Limited { retry_after } => ClientEndpointError::TooManyRequests(
                Json(ErrorBody::new(
                    ErrorCode::TemporarilyUnavailable,
                    "Too many failed authentications, retry later",
                )),
                retry_after,
            ),
            AuthError::Busy(VerifyError::Busy) => ClientEndpointError::Unavailable(
                Json(ErrorBody::new(
                    ErrorCode::TemporarilyUnavailable,
                    "Too many concurrent authentications, retry shortly",
                )),
                RETRY_AFTER_SECONDS,
            ),
            AuthError::Busy(e @ VerifyError::Task) => {
                tracing::error!(error = %e, "secret verification failed");
                ClientEndpointError::Internal(Json(ErrorBody::new(
                    ErrorCode::ServerError,
                    "internal error",
                )))
            }
            AuthError::LacksPrivilege(p) => ClientEndpointError::lacks(p),
            AuthError::Store(e) => e.into(),
        }
    }
}

impl From<IntrospectError> for ClientEndpointError {
    fn from(e: IntrospectError) -> Self {
        match e {
            IntrospectError::Auth(e) => e.into(),
            IntrospectError::NoToken => invalid_request("token is required"),
        }
    }
}

impl From<ResolveError> for ClientEndpointError {
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::Auth(e) => e.into(),
            ResolveError::Missing(field) => invalid_request(&format!("{field} is required")),
            ResolveError::Refused(r) => {
                let body = Json(ErrorBody::new(r.code(), r.to_string()));
                match r {
                    Refusal::InvalidEmail => ClientEndpointError::BadRequest(body),
                    Refusal::DomainNotAllowed | Refusal::UserDisabled => {
                        ClientEndpointError::Forbidden(body)
                    }
                    Refusal::UserNotFound | Refusal::UnknownApplication => {
                        ClientEndpointError::NotFound(body)
                    }
                }
            }
            ResolveError::Store(e) => e.into(),
        }
    }
}

impl ClientEndpointError {
    /// The caller authenticated but lacks the privilege the endpoint needs.
    pub fn lacks(privilege: Scope) -> Self {
        ClientEndpointError::Forbidden(Json(ErrorBody::new(
            ErrorCode::UnauthorizedClient,
            format!("This application lacks the {privilege} privilege"),
        )))
    }
}

fn body(code: ErrorCode, e: &TokenError) -> Json<ErrorBody> {
    Json(ErrorBody::new(code, e.to_string()))
}

/// Logs internal errors once, here, with their cause chain; the body never carries it.
pub fn token_error_response(e: TokenError) -> TokenResponse {
    match &e {
        TokenError::InvalidRequest(_) => {
            TokenResponse::BadRequest(body(ErrorCode::InvalidRequest, &e), None)
        }
        // The nonce to use is added by the endpoint, which holds the nonces (api/token.rs).
        TokenError::InvalidDpopProof(DpopRefusal::UseNonce) => {
            TokenResponse::BadRequest(body(ErrorCode::UseDpopNonce, &e), None)
        }
        TokenError::InvalidDpopProof(_) => {
            tracing::info!(reason = %e, "DPoP proof refused");
            TokenResponse::BadRequest(body(ErrorCode::InvalidDpopProof, &e), None)
        }
        TokenError::UnsupportedGrantType => {
            TokenResponse::BadRequest(body(ErrorCode::UnsupportedGrantType, &e), None)
        }
        TokenError::NoCredentials
        | TokenError::InvalidClient
        | TokenError::InactiveClient
        | TokenError::InvalidClientAssertion(_) => {
            tracing::info!(reason = %e, "client authentication refused");
            TokenResponse::Unauthorized(
                body(ErrorCode::InvalidClient, &e),
                BASIC_CHALLENGE.to_owned(),
            )
        }
        TokenError::Busy => TokenResponse::Unavailable(
            body(ErrorCode::TemporarilyUnavailable, &e),
            RETRY_AFTER_SECONDS,
        ),
        TokenError::RateLimited { retry_after } => {
            tracing::warn!("client authentication rate-limited");
            TokenResponse::TooManyRequests(
                body(ErrorCode::TemporarilyUnavailable, &e),
                *retry_after,
            )
        }
        TokenError::MalformedEmail | TokenError::InvalidScope(_) => {
            TokenResponse::BadRequest(body(ErrorCode::InvalidScope, &e), None)
        }
        TokenError::InvalidGrant(_) => {
            tracing::info!(reason = %e, "assertion refused");
            TokenResponse::BadRequest(body(ErrorCode::InvalidGrant, &e), None)
        }
        TokenError::DomainNotAllowed | TokenError::UserDisabled => {
            TokenResponse::Forbidden(body(ErrorCode::InvalidScope, &e))
        }
        TokenError::UserNotFound => TokenResponse::NotFound(body(ErrorCode::InvalidScope, &e)),
        TokenError::Unavailable => {
            tracing::warn!("database unavailable");
            TokenResponse::Unavailable(
                body(ErrorCode::TemporarilyUnavailable, &e),
                RETRY_AFTER_SECONDS,
            )
        }
        TokenError::Internal(cause) => {
            tracing::error!(error = format!("{cause:#}"), "token request failed");
            TokenResponse::Internal(Json(ErrorBody::new(
                ErrorCode::ServerError,
                "internal error",
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::assertions::AssertionRejection;
    use poem::IntoResponse;

    fn status(r: &TokenResponse) -> u16 {
        match r {
            TokenResponse::Ok(..) => 200,
            TokenResponse::BadRequest(..) => 400,
            TokenResponse::Unauthorized(_, h) => {
                assert_eq!(h, BASIC_CHALLENGE);
                401
            }
            TokenResponse::Forbidden(_) => 403,
            TokenResponse::NotFound(_) => 404,
            TokenResponse::UnsupportedMediaType(_) => 415,
            TokenResponse::TooManyRequests(..) => 429,
            TokenResponse::Internal(_) => 500,
            TokenResponse::Unavailable(..) => 503,
        }
    }

    fn code(r: &TokenResponse) -> Option<ErrorCode> {
        match r {
            TokenResponse::Ok(..) => None,
            TokenResponse::BadRequest(b, _)
            | TokenResponse::Forbidden(b)
            | TokenResponse::NotFound(b)
            | TokenResponse::UnsupportedMediaType(b)
            | TokenResponse::Internal(b)
            | TokenResponse::Unauthorized(b, _)
            | TokenResponse::TooManyRequests(b, _)
            | TokenResponse::Unavailable(b, _) => Some(b.0.error),
        }
    }

    #[test]
    fn every_variant_maps_to_its_status_and_code() {
        let table = [
            (
                TokenError::InvalidRequest("x"),
                400,
                ErrorCode::InvalidRequest,
            ),
            (
                TokenError::UnsupportedGrantType,
                400,
                ErrorCode::UnsupportedGrantType,
            ),
            (TokenError::NoCredentials, 401, ErrorCode::InvalidClient),
            (TokenError::InvalidClient, 401, ErrorCode::InvalidClient),
            (TokenError::InactiveClient, 401, ErrorCode::InvalidClient),
            (
                TokenError::InvalidClientAssertion(AssertionRejection::NoJti),
                401,
                ErrorCode::InvalidClient,
            ),
            (
                TokenError::InvalidGrant(AssertionRejection::Replayed),
                400,
                ErrorCode::InvalidGrant,
            ),
            (
                TokenError::InvalidScope("x".into()),
                400,
                ErrorCode::InvalidScope,
            ),
            (TokenError::Busy, 503, ErrorCode::TemporarilyUnavailable),
            (
                TokenError::RateLimited { retry_after: 60 },
                429,
                ErrorCode::TemporarilyUnavailable,
            ),
            (TokenError::MalformedEmail, 400, ErrorCode::InvalidScope),
            (TokenError::DomainNotAllowed, 403, ErrorCode::InvalidScope),
            (TokenError::UserNotFound, 404, ErrorCode::InvalidScope),
            (TokenError::UserDisabled, 403, ErrorCode::InvalidScope),
            (
                TokenError::Unavailable,
                503,
                ErrorCode::TemporarilyUnavailable,
            ),
            (
                TokenError::Internal(anyhow::anyhow!("secret detail")),
                500,
                ErrorCode::ServerError,
            ),
        ];
        for (err, want_status, want_code) in table {
            let r = token_error_response(err);
            assert_eq!(status(&r), want_status);
            assert_eq!(code(&r), Some(want_code));
        }
        // An internal error says only that: never its cause.
        match token_error_response(TokenError::Internal(anyhow::anyhow!("secret detail"))) {
            TokenResponse::Internal(b) => {
                assert_eq!(b.0.error_description, "internal error");
            }
            _ => panic!("an internal error is a 500"),
        }
        let resp = token_error_response(TokenError::Internal(anyhow::anyhow!("x"))).into_response();
        assert_eq!(resp.status().as_u16(), 500);
    }
}
