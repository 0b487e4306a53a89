//! OAuth grant types. Only `client_credentials` exists; an unknown value is refused at parse time
//! so that it becomes `unsupported_grant_type` before anything else runs.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    ClientCredentials,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported grant_type")]
pub struct UnsupportedGrantType;

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::ClientCredentials => "client_credentials",
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
        assert_eq!(
            GrantType::ClientCredentials.to_string().parse(),
            Ok(GrantType::ClientCredentials)
        );
        for bad in ["password", "Client_Credentials", "client_credentials ", ""] {
            assert!(bad.parse::<GrantType>().is_err());
        }
    }
}
