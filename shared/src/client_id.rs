//! Application identifiers.

use std::fmt;
use std::str::FromStr;

/// Length of a client_id: 40 characters of `[A-Za-z0-9]`.
pub const CLIENT_ID_LEN: usize = 40;

/// A syntactically valid client_id. Holding one says nothing about whether it exists.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("client_id must be 40 characters of A-Z, a-z, 0-9")]
pub struct ClientIdError;

impl ClientId {
    pub fn parse(input: &str) -> Result<Self, ClientIdError> {
        if input.len() == CLIENT_ID_LEN && input.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(input.to_owned()))
        } else {
            Err(ClientIdError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ClientId {
    type Err = ClientIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_wrong_length_or_alphabet() {
        assert!(ClientId::parse(&"a".repeat(39)).is_err());
        assert!(ClientId::parse(&"a".repeat(41)).is_err());
        assert!(ClientId::parse(&format!("{}-", "a".repeat(39))).is_err());
        assert!(ClientId::parse(&"é".repeat(20)).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(s in "[A-Za-z0-9]{40}") {
            let id = ClientId::parse(&s).unwrap();
            prop_assert_eq!(id.to_string(), s.clone());
            prop_assert_eq!(id.as_str().parse::<ClientId>().unwrap(), id);
        }
    }
}
