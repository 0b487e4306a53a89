//! The admin API's errors: RFC 9457 problem details (`application/problem+json`), with
//! per-field errors on 400 and 422, and the one mapping of every domain error an admin
//! operation can meet to its status. Internal causes are logged here, never sent.

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use crate::domain::admin_keys::{AdminAuthError, AdminKeyError};
use crate::domain::applications::AppError;
use crate::domain::input::FieldIssue;
use crate::domain::paging::PagingError;
use crate::domain::signing::{KeyError, RetireError};
use crate::domain::users::UserError;
use crate::model::StoreError;

use super::RETRY_AFTER_SECONDS;

pub const ADMIN_CHALLENGE: &str = r#"Bearer realm="auth-server-admin""#;

/// One field's problem.
#[derive(Object, Debug, Clone)]
pub struct FieldError {
    /// The request field, as named in the body or the query (`scopes`, `token_ttl_seconds`…).
    pub field: String,
    pub message: String,
}

/// An RFC 9457 problem. `type` is always `about:blank`: `title` is the HTTP status's phrase.
#[derive(Object, Debug, Clone)]
pub struct Problem {
    #[oai(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Per-field errors (400 and 422).
    #[oai(default, skip_serializing_if_is_empty)]
    pub errors: Vec<FieldError>,
}

impl Problem {
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        let title = poem::http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error")
            .to_owned();
        Self {
            kind: "about:blank".into(),
            title,
            status,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }
}

#[derive(ApiResponse, Debug)]
#[oai(bad_request_handler = "admin_bad_request")]
pub enum AdminError {
    /// The request does not parse (a body, a parameter, a cursor).
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Box<Problem>>),
    /// No admin key, or not a valid one.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(
        Json<Box<Problem>>,
        #[oai(header = "WWW-Authenticate")] String,
    ),
    /// No such resource.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Box<Problem>>),
    /// The change conflicts with the current state (a duplicate e-mail, the signing key).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Box<Problem>>),
    /// The request parses but a field's value is refused.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Box<Problem>>),
    /// The body is not `application/json`.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Box<Problem>>),
    /// Too many failed admin authentications from this source.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Box<Problem>>, #[oai(header = "Retry-After")] u64),
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Box<Problem>>),
    /// The database is unavailable.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Box<Problem>>, #[oai(header = "Retry-After")] u64),
}

fn admin_bad_request(err: poem::Error) -> AdminError {
    use poem::http::StatusCode;
    match err.status() {
        StatusCode::UNAUTHORIZED => AdminError::unauthorized(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AdminError::UnsupportedMediaType(Json(Box::new(
            Problem::new(415, "Unsupported content type: use application/json"),
        ))),
        // poem-openapi's text names the parameter or the body and what was wrong with it
        // ("failed to parse parameter `limit`: …"), never server internals.
        _ => AdminError::bad_request(err.to_string(), Vec::new()),
    }
}

impl AdminError {
    pub fn bad_request(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        let mut p = Problem::new(400, detail);
        p.errors = errors;
        AdminError::BadRequest(Json(Box::new(p)))
    }

    /// One refused field: 422 with its per-field error.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut p = Problem::new(422, format!("{field}: {message}"));
        p.errors = vec![FieldError {
            field: field.to_owned(),
            message,
        }];
        AdminError::Unprocessable(Json(Box::new(p)))
    }

    /// Several refused fields at once.
    pub fn fields(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut p = Problem::new(422, detail);
        p.errors = errors;
        AdminError::Unprocessable(Json(Box::new(p)))
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        AdminError::NotFound(Json(Box::new(Problem::new(404, detail))))
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        AdminError::Conflict(Json(Box::new(Problem::new(409, detail))))
    }

    pub fn unauthorized() -> Self {
        AdminError::Unauthorized(
            Json(Box::new(Problem::new(401, "A valid admin key is required"))),
            ADMIN_CHALLENGE.to_owned(),
        )
    }

    fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "admin request failed");
        AdminError::Internal(Json(Box::new(Problem::new(500, "Internal error"))))
    }
}

/// The fields the domain's parsers refused (`domain::input`).
impl From<Vec<FieldIssue>> for AdminError {
    fn from(issues: Vec<FieldIssue>) -> Self {
        AdminError::fields(
            issues
                .into_iter()
                .map(|i| FieldError {
                    field: i.field,
                    message: i.message,
                })
                .collect(),
        )
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(
                error = format!("{:#}", anyhow::Error::from(e)),
                "database unavailable"
            );
            AdminError::Unavailable(
                Json(Box::new(Problem::new(503, "The database is unavailable"))),
                RETRY_AFTER_SECONDS,
            )
        } else {
            AdminError::internal(&format!("{:#}", anyhow::Error::from(e)))
        }
    }
}

impl From<AdminAuthError> for AdminError {
    fn from(e: AdminAuthError) -> Self {
        match e {
            AdminAuthError::Failed => {
                tracing::info!("admin authentication refused");
                AdminError::unauthorized()
            }
            AdminAuthError::Limited { retry_after } => AdminError::TooManyRequests(
                Json(Box::new(Problem::new(
                    429,
                    "Too many failed admin authentications, retry later",
                ))),
                retry_after,
            ),
            AdminAuthError::Store(e) => e.into(),
        }
    }
}

impl From<PagingError> for AdminError {
    fn from(e: PagingError) -> Self {
        let field = match e {
            PagingError::BadCursor => "cursor",
            PagingError::BadLimit => "limit",
        };
        AdminError::bad_request(
            e.to_string(),
            vec![FieldError {
                field: field.into(),
                message: e.to_string(),
            }],
        )
    }
}

impl From<AppError> for AdminError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::NotFound(_) => AdminError::not_found(e.to_string()),
            AppError::InvalidName => AdminError::field("name", e.to_string()),
            AppError::NoSuchDomain(_) => AdminError::field("domains", e.to_string()),
            AppError::InvalidTokenTtl { .. } => {
                AdminError::field("token_ttl_seconds", e.to_string())
            }
            AppError::InvalidGrace => AdminError::field("grace_seconds", e.to_string()),
            AppError::InvalidKeys(crate::domain::client_keys::KeysError::Uri) => {
                AdminError::field("jwks_uri", e.to_string())
            }
            AppError::InvalidKeys(_) | AppError::NeedsKeys => {
                AdminError::field("jwks", e.to_string())
            }
            AppError::NeedsSecret => AdminError::field("token_endpoint_auth_method", e.to_string()),
            AppError::NoSecretNeedsKeyAuth => AdminError::field("no_secret", e.to_string()),
            AppError::Store(e) => e.into(),
            AppError::Mint(cause) => AdminError::internal(&format!("{cause:#}")),
        }
    }
}

impl From<UserError> for AdminError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::NotFound(_) | UserError::NoSuchId(_) => AdminError::not_found(e.to_string()),
            UserError::Exists(_) | UserError::SubTaken => AdminError::conflict(e.to_string()),
            UserError::InvalidSub => AdminError::field("external_sub", e.to_string()),
            UserError::Store(e) => e.into(),
        }
    }
}

impl From<AdminKeyError> for AdminError {
    fn from(e: AdminKeyError) -> Self {
        match e {
            AdminKeyError::NotFound(_) => AdminError::not_found(e.to_string()),
            AdminKeyError::AlreadyRevoked(_) | AdminKeyError::NameTaken(_) => {
                AdminError::conflict(e.to_string())
            }
            AdminKeyError::InvalidName => AdminError::field("name", e.to_string()),
            AdminKeyError::Mint(cause) => AdminError::internal(&cause),
            AdminKeyError::Store(e) => e.into(),
        }
    }
}

impl From<KeyError> for AdminError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Symmetric | KeyError::MissingKek => AdminError::conflict(e.to_string()),
            KeyError::Store(e) => e.into(),
            other => AdminError::internal(&other),
        }
    }
}

impl From<RetireError> for AdminError {
    fn from(e: RetireError) -> Self {
        match e {
            RetireError::NotFound(_) => AdminError::not_found(e.to_string()),
            RetireError::AlreadyRetired(_) | RetireError::SignsNow(_) => {
                AdminError::conflict(e.to_string())
            }
            RetireError::Store(e) => e.into(),
        }
    }
}
