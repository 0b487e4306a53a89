//! User resolution's wire types (docs/spec/auth-server.md §6a): a resource server asks the
//! auth-server which user an application may act for by e-mail — the rooms API, to share a
//! room with someone. The auth-server answers them, the rooms API reads them: one definition.

use serde::{Deserialize, Serialize};

use crate::ErrorCode;

/// Where the auth-server answers, below its base URL.
pub const RESOLVE_USER_PATH: &str = "/oauth/resolve-user";

/// The form fields of a resolution request (besides the caller's own credentials).
pub mod fields {
    /// The client_id of the application that acts (whose allowlist and policy apply).
    pub const APPLICATION: &str = "application";
    /// The e-mail address of the user asked about.
    pub const EMAIL: &str = "email";
    /// `true`: a provisional user may be created, when the application's policy allows it.
    pub const CREATE: &str = "create";
}

/// The 200 answer: the user the application may act for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Object))]
pub struct ResolvedUser {
    /// The user's id: the `sub` of the tokens that act for them.
    pub user_id: String,
    /// Whether this request created the user (a provisional user).
    pub created: bool,
}

/// Why no user was given, each with its own `error` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("not a valid e-mail address")]
    InvalidEmail,
    #[error("this application may not act for users of this e-mail domain")]
    DomainNotAllowed,
    #[error("no user has this e-mail address, and this application may not create users")]
    UserNotFound,
    #[error("this user's account is disabled")]
    UserDisabled,
    #[error("no active application has this client_id")]
    UnknownApplication,
}

impl Refusal {
    pub const ALL: [Refusal; 5] = [
        Refusal::InvalidEmail,
        Refusal::DomainNotAllowed,
        Refusal::UserNotFound,
        Refusal::UserDisabled,
        Refusal::UnknownApplication,
    ];

    pub fn code(self) -> ErrorCode {
        match self {
            Refusal::InvalidEmail => ErrorCode::InvalidEmail,
            Refusal::DomainNotAllowed => ErrorCode::DomainNotAllowed,
            Refusal::UserNotFound => ErrorCode::UserNotFound,
            Refusal::UserDisabled => ErrorCode::UserDisabled,
            Refusal::UnknownApplication => ErrorCode::UnknownApplication,
        }
    }

    /// The refusal an answer's `error` code names, if it names one.
    pub fn from_code(code: ErrorCode) -> Option<Self> {
        Refusal::ALL.into_iter().find(|r| r.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_its_own_code_and_is_read_back_from_it() {
        for r in Refusal::ALL {
            assert_eq!(Refusal::from_code(r.code()), Some(r));
        }
        assert_eq!(Refusal::from_code(ErrorCode::InvalidRequest), None);
        let codes: std::collections::HashSet<_> = Refusal::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), Refusal::ALL.len());
    }
}
