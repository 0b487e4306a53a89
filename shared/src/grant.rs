//! OAuth grant types: `client_credentials` (the user named by e-mail in `scope`) and the
//! JWT-bearer authorization grant (RFC 7523 §2.1: the user named by the assertion's `sub`). An
//! unknown value is refused at parse time so that it becomes `unsupported_grant_type` before
//! anything else runs.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    ClientCredentials,
    /// `urn:ietf:params:oauth:grant-type:jwt-bearer`.
    JwtBearer,
}

/// The JWT-bearer authorization grant's `grant_type` (RFC 7523 §2.1).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The `client_assertion_type` of `private_key_jwt` client authentication (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_JWT_BEARER: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported grant_type")]
pub struct UnsupportedGrantType;

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::ClientCredentials => "client_credentials",
            GrantType::JwtBearer => JWT_BEARER,
        }
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GrantType {
    type Err = UnsupportedGrantType;
    /// Exact match: RFC 6749 grant types are case-sensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "client_credentials" => Ok(GrantType::ClientCredentials),
            JWT_BEARER => Ok(GrantType::JwtBearer),
            _ => Err(UnsupportedGrantType),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        assert_eq!(
            "client_credentials".parse(),
            Ok(GrantType::ClientCredentials)
        );
        for g in [GrantType::ClientCredentials, GrantType::JwtBearer] {
            assert_eq!(g.to_string().parse(), Ok(g));
        }
        for bad in [
            "password",
            "Client_Credentials",
            "client_credentials ",
            "",
            "urn:ietf:params:oauth:grant-type:JWT-bearer",
        ] {
            assert!(bad.parse::<GrantType>().is_err());
        }
    }
}
