//! The one mapping from domain errors to status, headers and RFC 6749 §5.2 bodies.

use poem_openapi::payload::Json;
use shared::{ErrorBody, ErrorCode};

use crate::api::token::TokenResponse;
use crate::domain::grant::TokenError;

pub const BASIC_CHALLENGE: &str = r#"Basic realm="auth-server""#;
/// Seconds a client should wait after a 503/429.
pub const RETRY_AFTER_SECONDS: u64 = 2;

fn body(code: ErrorCode, e: &TokenError) -> Json<ErrorBody> {
    Json(ErrorBody::new(code, e.to_string()))
}

/// Logs internal errors once, here, with their cause chain; the body never carries it.
pub fn token_error_response(e: TokenError) -> TokenResponse {
    match &e {
        TokenError::InvalidRequest(_) => {
            TokenResponse::BadRequest(body(ErrorCode::InvalidRequest, &e))
        }
        TokenError::UnsupportedGrantType => {
            TokenResponse::BadRequest(body(ErrorCode::UnsupportedGrantType, &e))
        }
        TokenError::NoCredentials | TokenError::InvalidClient | TokenError::InactiveClient => {
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
        TokenError::MalformedEmail => TokenResponse::BadRequest(body(ErrorCode::InvalidScope, &e)),
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
    use poem::IntoResponse;
    use poem_openapi::ApiResponse;

    fn status(r: &TokenResponse) -> u16 {
        match r {
            TokenResponse::Ok(_) => 200,
            TokenResponse::BadRequest(_) => 400,
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
            TokenResponse::Ok(_) => None,
            TokenResponse::BadRequest(b)
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
        let r = token_error_response(TokenError::Internal(anyhow::anyhow!("secret detail")));
        let resp = r.into_response();
        assert_eq!(resp.status().as_u16(), 500);
        let _ = TokenResponse::meta();
    }
}
