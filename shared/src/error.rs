//! The error codes both services answer with, and the one JSON error shape.
//!
//! Codes are those of RFC 6749 §5.2 (token endpoint), RFC 6750 §3 (bearer) and RFC 7662/7009,
//! plus the few the rooms API needs for resource errors. The HTTP status of a code is chosen by
//! each service's `error.rs`, because the same code can mean different statuses there.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    TemporarilyUnavailable,
    ServerError,
    MissingToken,
    InvalidToken,
    InsufficientScope,
    InsufficientRole,
    NotFound,
    MethodNotAllowed,
    /// RFC 9449 §5 and §7.1: a DPoP proof missing, malformed, failed or replayed.
    InvalidDpopProof,
    /// RFC 9449 §8: the proof must carry the nonce the `DPoP-Nonce` header gives.
    UseDpopNonce,
    /// User resolution (`shared::users`): the e-mail is not one valid address.
    InvalidEmail,
    /// User resolution: the application may not act for this e-mail's domain.
    DomainNotAllowed,
    /// User resolution: no user has this e-mail, and none may be created.
    UserNotFound,
    /// User resolution: the user is deactivated.
    UserDisabled,
    /// User resolution: no active application has this client_id.
    UnknownApplication,
    /// A change the resource's current state does not allow (the rooms API's 409).
    Conflict,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 22] = [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidClient,
        ErrorCode::InvalidGrant,
        ErrorCode::UnauthorizedClient,
        ErrorCode::UnsupportedGrantType,
        ErrorCode::InvalidScope,
        ErrorCode::TemporarilyUnavailable,
        ErrorCode::ServerError,
        ErrorCode::MissingToken,
        ErrorCode::InvalidToken,
        ErrorCode::InsufficientScope,
        ErrorCode::InsufficientRole,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::InvalidDpopProof,
        ErrorCode::UseDpopNonce,
        ErrorCode::InvalidEmail,
        ErrorCode::DomainNotAllowed,
        ErrorCode::UserNotFound,
        ErrorCode::UserDisabled,
        ErrorCode::UnknownApplication,
        ErrorCode::Conflict,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::ServerError => "server_error",
            ErrorCode::MissingToken => "missing_token",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::InsufficientRole => "insufficient_role",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
            ErrorCode::InvalidEmail => "invalid_email",
            ErrorCode::DomainNotAllowed => "domain_not_allowed",
            ErrorCode::UserNotFound => "user_not_found",
            ErrorCode::UserDisabled => "user_disabled",
            ErrorCode::UnknownApplication => "unknown_application",
            ErrorCode::Conflict => "conflict",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"error": "<code>", "error_description": "<text>"}` (+ `fields` on validation failures).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
pub struct ErrorBody {
    pub error: ErrorCode,
    pub error_description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", oai(skip_serializing_if_is_none))]
    pub fields: Option<BTreeMap<String, Vec<String>>>,
}

impl ErrorBody {
    pub fn new(error: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            error,
            error_description: description.into(),
            fields: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_match_as_str() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().to_owned()));
        }
        let body = serde_json::to_value(ErrorBody::new(ErrorCode::InvalidClient, "x")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": "invalid_client", "error_description": "x"})
        );
    }
}
