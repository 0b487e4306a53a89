//! The one e-mail parser of the product, used by the token endpoint, the CLI and the allowlist.
//!
//! An e-mail here is an identity key, not a mailbox: it is refused unless it has one obvious
//! spelling, so that two spellings can never name two users or slip past a domain allowlist.

use std::fmt;
use std::str::FromStr;

use crate::domain::{Domain, DomainError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("e-mail address must contain exactly one '@'")]
    At,
    #[error(
        "e-mail local part must be 1 to 64 printable ASCII characters without spaces, quotes or backslashes"
    )]
    LocalPart,
    #[error("e-mail address is longer than 254 characters")]
    TooLong,
    #[error("e-mail domain is invalid: {0}")]
    Domain(#[from] DomainError),
}

/// A syntactically valid e-mail address, kept both as typed and in normalised (lower-case) form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email {
    as_typed: String,
    normalized: String,
    domain: Domain,
}

impl Email {
    /// Parses exactly what was given: no trimming (a trailing newline is an error, not noise).
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        if input.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let mut parts = input.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(EmailError::At);
        };
        if local.is_empty()
            || local.len() > 64
            || !local
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        {
            return Err(EmailError::LocalPart);
        }
        let domain = Domain::parse(domain)?;
        Ok(Self {
            as_typed: input.to_owned(),
            normalized: format!("{}@{}", local.to_ascii_lowercase(), domain),
            domain,
        })
    }

    /// Operator input (CLI): surrounding whitespace is dropped first.
    pub fn parse_trimmed(input: &str) -> Result<Self, EmailError> {
        Self::parse(input.trim())
    }

    /// The form used for uniqueness and lookups.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The address as the user typed it, for display.
    pub fn as_typed(&self) -> &str {
        &self.as_typed
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized)
    }
}

impl FromStr for Email {
    type Err = EmailError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_case() {
        let e = Email::parse("Jane.Doe@Example.COM").unwrap();
        assert_eq!(e.normalized(), "jane.doe@example.com");
        assert_eq!(e.as_typed(), "Jane.Doe@Example.COM");
        assert_eq!(e.domain().as_str(), "example.com");
    }

    #[test]
    fn refuses_the_security_md_cases() {
        for bad in [
            "a@b@example.com",
            "\"a@evil.com\"@example.com",
            "user@example.com.",
            "user@exa mple.com",
            "user@",
            "@example.com",
            "user@-example.com",
            "user@example.com\n",
            "usér@example.com",
            "user@exämple.com",
            "us\u{7}er@example.com",
            "us\ter@example.com",
            "a\\b@example.com",
            "a b@example.com",
            "user",
            "",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn length_limits() {
        let local64 = "a".repeat(64);
        assert!(Email::parse(&format!("{local64}@example.com")).is_ok());
        assert_eq!(
            Email::parse(&format!("a{local64}@example.com")),
            Err(EmailError::LocalPart)
        );
        let long = format!("a@{}.com", vec!["b".repeat(50); 5].join("."));
        assert!(long.len() > 254);
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
    }

    #[test]
    fn trimming_only_when_asked() {
        assert!(Email::parse(" a@example.com").is_err());
        assert_eq!(
            Email::parse_trimmed(" a@example.com \n")
                .unwrap()
                .normalized(),
            "a@example.com"
        );
    }

    proptest! {
        #[test]
        fn normalized_form_round_trips(local in "[A-Za-z0-9._%+-]{1,30}", dom in "[A-Za-z0-9]{1,20}\\.(com|ORG|net)") {
            let e = Email::parse(&format!("{local}@{dom}")).unwrap();
            let again = Email::parse(e.normalized()).unwrap();
            prop_assert_eq!(again.normalized(), e.normalized());
            prop_assert_eq!(e.to_string(), e.normalized());
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,300}") {
            let _ = Email::parse(&s);
        }
    }
}

#[cfg(test)]
mod length_edges {
    use super::*;

    /// 254 bytes in all is the limit, inclusive.
    #[test]
    fn an_address_of_254_bytes_is_read_and_255_is_too_long() {
        let domain = crate::domain::length_edges::name;
        let at_limit = format!("{}@{}", "l".repeat(64), domain(254 - 65));
        assert_eq!(at_limit.len(), 254);
        assert!(Email::parse(&at_limit).is_ok(), "{at_limit}");
        let over = format!("{}@{}", "l".repeat(64), domain(255 - 65));
        assert_eq!(over.len(), 255);
        assert_eq!(Email::parse(&over), Err(EmailError::TooLong));
    }
}
