//! Every error the rooms API answers, mapped once to status, `WWW-Authenticate` and the one JSON
//! shape (docs/spec/rooms-api.md §2).

use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;
use shared::{ErrorBody, ErrorCode, Scope};

use crate::auth::AuthFailure;
use crate::rooms::service::RoomsError;

const REALM: &str = r#"Bearer realm="rooms-api""#;
const RETRY_AFTER_SECONDS: u64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthFailure),
    #[error("insufficient scope")]
    InsufficientScope(Scope),
    #[error(transparent)]
    Rooms(#[from] RoomsError),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
}

impl ApiError {
    pub fn invalid_body(message: &str) -> Self {
        let mut fields = std::collections::BTreeMap::new();
        fields.insert("body".to_owned(), vec![message.to_owned()]);
        ApiError::Rooms(RoomsError::Invalid(crate::rooms::model::Invalid { fields }))
    }
}

#[derive(ApiResponse, Debug)]
#[oai(bad_request_handler = "bad_request")]
pub enum ErrorResponse {
    /// `invalid_request`: malformed body, parameters or Authorization header.
    #[oai(status = 400)]
    BadRequest(
        Json<ErrorBody>,
        #[oai(header = "WWW-Authenticate")] Option<String>,
    ),
    /// `missing_token` or `invalid_token`.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// `insufficient_scope` (with a Bearer challenge) or `insufficient_role`.
    #[oai(status = 403)]
    Forbidden(
        Json<ErrorBody>,
        #[oai(header = "WWW-Authenticate")] Option<String>,
    ),
    /// `not_found`: no such room for this user and application (or no such access on it).
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// `conflict`: a lower role without `replace`, or the room's last owner.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// `invalid_request`: body over 64 KiB.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// `invalid_request`: a body that is not JSON.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// `server_error`.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// `temporarily_unavailable`.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
}

fn bad_request(_: poem::Error) -> ErrorResponse {
    ErrorResponse::BadRequest(
        Json(ErrorBody::new(
            ErrorCode::InvalidRequest,
            "Malformed request",
        )),
        None,
    )
}

fn body(code: ErrorCode, text: impl Into<String>) -> Json<ErrorBody> {
    Json(ErrorBody::new(code, text))
}

impl From<ApiError> for ErrorResponse {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Auth(AuthFailure::Missing) => ErrorResponse::Unauthorized(
                body(ErrorCode::MissingToken, "An access token is required"),
                REALM.to_owned(),
            ),
            ApiError::Auth(AuthFailure::MalformedHeader) => ErrorResponse::BadRequest(
                body(ErrorCode::InvalidRequest, "Malformed Authorization header"),
                Some(format!(r#"{REALM}, error="invalid_request""#)),
            ),
            ApiError::Auth(AuthFailure::Invalid(why)) => {
                tracing::info!(reason = %why, "bearer token refused");
                ErrorResponse::Unauthorized(
                    body(ErrorCode::InvalidToken, why.to_string()),
                    format!(r#"{REALM}, error="invalid_token", error_description="{why}""#),
                )
            }
            ApiError::Auth(AuthFailure::Dpop(why)) => {
                tracing::info!(reason = %why, "DPoP refused");
                let code = why.code();
                ErrorResponse::Unauthorized(
                    body(code, why.to_string()),
                    format!(
                        r#"DPoP algs="{}", error="{code}", error_description="{why}""#,
                        shared::dpop::ALGS.join(" ")
                    ),
                )
            }
            ApiError::Auth(AuthFailure::Unavailable) => ErrorResponse::Unavailable(
                body(
                    ErrorCode::TemporarilyUnavailable,
                    "Token verification is temporarily unavailable",
                ),
                RETRY_AFTER_SECONDS,
            ),
            ApiError::InsufficientScope(scope) => ErrorResponse::Forbidden(
                body(
                    ErrorCode::InsufficientScope,
                    format!("The access token lacks the {scope} scope"),
                ),
                Some(format!(
                    r#"{REALM}, error="insufficient_scope", scope="{scope}""#
                )),
            ),
            ApiError::PayloadTooLarge => ErrorResponse::PayloadTooLarge(body(
                ErrorCode::InvalidRequest,
                "Request body too large (limit 64 KiB)",
            )),
            ApiError::UnsupportedMediaType => ErrorResponse::UnsupportedMediaType(body(
                ErrorCode::InvalidRequest,
                "Unsupported content type: use application/json",
            )),
            ApiError::Rooms(RoomsError::NotFound) => {
                ErrorResponse::NotFound(body(ErrorCode::NotFound, "Not found"))
            }
            ApiError::Rooms(RoomsError::NoSuchAccess) => ErrorResponse::NotFound(body(
                ErrorCode::NotFound,
                "This user has no access to this room",
            )),
            ApiError::Rooms(RoomsError::Conflict(c)) => {
                ErrorResponse::Conflict(body(ErrorCode::Conflict, c.to_string()))
            }
            ApiError::Rooms(RoomsError::DirectoryUnavailable) => ErrorResponse::Unavailable(
                body(
                    ErrorCode::TemporarilyUnavailable,
                    "Sharing rooms by e-mail is unavailable right now",
                ),
                RETRY_AFTER_SECONDS,
            ),
            ApiError::Rooms(RoomsError::ApplicationGone) => ErrorResponse::Unauthorized(
                body(
                    ErrorCode::InvalidToken,
                    "The application is no longer active",
                ),
                format!(
                    r#"{REALM}, error="invalid_token", error_description="The application is no longer active""#
                ),
            ),
            ApiError::Rooms(RoomsError::InsufficientRole) => ErrorResponse::Forbidden(
                body(
                    ErrorCode::InsufficientRole,
                    "Your role on this room does not allow this",
                ),
                None,
            ),
            ApiError::Rooms(RoomsError::Invalid(invalid)) => {
                let mut b = ErrorBody::new(ErrorCode::InvalidRequest, "Invalid request");
                b.fields = Some(invalid.fields);
                ErrorResponse::BadRequest(Json(b), None)
            }
            ApiError::Rooms(RoomsError::Db(e)) if server_kit::db::is_unavailable(&e) => {
                tracing::warn!(error = %e, "database unavailable");
                ErrorResponse::Unavailable(
                    body(
                        ErrorCode::TemporarilyUnavailable,
                        "The database is unavailable",
                    ),
                    RETRY_AFTER_SECONDS,
                )
            }
            ApiError::Rooms(e @ (RoomsError::Db(_) | RoomsError::Exhausted)) => {
                tracing::error!(
                    error = format!("{:#}", anyhow::Error::from(e)),
                    "rooms request failed"
                );
                ErrorResponse::Internal(body(ErrorCode::ServerError, "internal error"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::token::TokenRejection;

    #[test]
    fn every_error_maps_to_its_status_code_and_challenge() {
        use crate::rooms::model::Invalid;
        let cases: Vec<(ApiError, u16, ErrorCode, Option<&str>)> = vec![
            (
                AuthFailure::Missing.into(),
                401,
                ErrorCode::MissingToken,
                Some(r#"Bearer realm="rooms-api""#),
            ),
            (
                AuthFailure::MalformedHeader.into(),
                400,
                ErrorCode::InvalidRequest,
                Some(r#"Bearer realm="rooms-api", error="invalid_request""#),
            ),
            (
                AuthFailure::Invalid(TokenRejection::Expired).into(),
                401,
                ErrorCode::InvalidToken,
                Some(
                    r#"Bearer realm="rooms-api", error="invalid_token", error_description="The access token expired""#,
                ),
            ),
            (
                AuthFailure::Unavailable.into(),
                503,
                ErrorCode::TemporarilyUnavailable,
                None,
            ),
            (
                ApiError::InsufficientScope(Scope::RoomsList),
                403,
                ErrorCode::InsufficientScope,
                Some(r#"Bearer realm="rooms-api", error="insufficient_scope", scope="rooms:list""#),
            ),
            (
                ApiError::PayloadTooLarge,
                413,
                ErrorCode::InvalidRequest,
                None,
            ),
            (
                ApiError::UnsupportedMediaType,
                415,
                ErrorCode::InvalidRequest,
                None,
            ),
            (RoomsError::NotFound.into(), 404, ErrorCode::NotFound, None),
            (
                RoomsError::InsufficientRole.into(),
                403,
                ErrorCode::InsufficientRole,
                None,
            ),
            (
                RoomsError::Invalid(Invalid::default()).into(),
                400,
                ErrorCode::InvalidRequest,
                None,
            ),
            (
                RoomsError::Conflict(crate::rooms::model::Conflict::LastOwner).into(),
                409,
                ErrorCode::Conflict,
                None,
            ),
            (
                RoomsError::NoSuchAccess.into(),
                404,
                ErrorCode::NotFound,
                None,
            ),
            (
                RoomsError::DirectoryUnavailable.into(),
                503,
                ErrorCode::TemporarilyUnavailable,
                None,
            ),
            (
                RoomsError::Exhausted.into(),
                500,
                ErrorCode::ServerError,
                None,
            ),
            (
                RoomsError::Db(sea_orm::DbErr::Custom("secret".into())).into(),
                500,
                ErrorCode::ServerError,
                None,
            ),
        ];
        for (err, status, code, challenge) in cases {
            let (s, b, h) = match ErrorResponse::from(err) {
                ErrorResponse::BadRequest(b, h) | ErrorResponse::Forbidden(b, h) => (
                    if b.0.error == ErrorCode::InvalidRequest {
                        400
                    } else {
                        403
                    },
                    b,
                    h,
                ),
                ErrorResponse::Unauthorized(b, h) => (401, b, Some(h)),
                ErrorResponse::NotFound(b) => (404, b, None),
                ErrorResponse::Conflict(b) => (409, b, None),
                ErrorResponse::PayloadTooLarge(b) => (413, b, None),
                ErrorResponse::UnsupportedMediaType(b) => (415, b, None),
                ErrorResponse::Internal(b) => (500, b, None),
                ErrorResponse::Unavailable(b, _) => (503, b, None),
            };
            assert_eq!(s, status);
            assert_eq!(b.0.error, code);
            assert_eq!(h.as_deref(), challenge);
            assert!(!b.0.error_description.contains("secret"));
            if s == 500 {
                assert_eq!(b.0.error_description, "internal error");
            }
        }
    }
}
