//! DNS names as used in e-mail addresses and application allowlists.
//!
//! The rules are deliberately narrower than the DNS itself (LDH labels only, no IDNA): an
//! allowlist is a security boundary, and every form we accept must have exactly one spelling.

use std::fmt;
use std::str::FromStr;

/// Why a domain or domain pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("domain is empty")]
    Empty,
    #[error("domain is longer than 253 characters")]
    TooLong,
    #[error("domain needs at least two labels")]
    TooFewLabels,
    #[error("domain label must be 1 to 63 characters")]
    BadLabelLength,
    #[error("domain labels may hold only a-z, 0-9 and '-'")]
    BadCharacter,
    #[error("domain label may not start or end with '-'")]
    BadHyphen,
    #[error("a wildcard is only allowed as a leading '*.' label")]
    BadWildcard,
    #[error("a wildcard on a public suffix would admit unrelated organisations")]
    PublicSuffixWildcard,
}

/// A validated, lower-case DNS name with at least two labels (`example.com`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Strict parse: the input must already be in canonical form apart from ASCII case.
    /// Used for the domain part of e-mail addresses, where a trailing dot is an error.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let lower = input.to_ascii_lowercase();
        validate_dns_name(&lower)?;
        Ok(Self(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `self` is a strict subdomain of `parent` (at any depth).
    pub fn is_strict_subdomain_of(&self, parent: &Domain) -> bool {
        self.0.len() > parent.0.len() + 1
            && self.0.ends_with(parent.0.as_str())
            && self.0.as_bytes()[self.0.len() - parent.0.len() - 1] == b'.'
    }
}

fn validate_dns_name(name: &str) -> Result<(), DomainError> {
    if name.is_empty() {
        return Err(DomainError::Empty);
    }
    if name.len() > 253 {
        return Err(DomainError::TooLong);
    }
    let mut labels = 0usize;
    for label in name.split('.') {
        labels += 1;
        if label.is_empty() || label.len() > 63 {
            return Err(DomainError::BadLabelLength);
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(DomainError::BadCharacter);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(DomainError::BadHyphen);
        }
    }
    if labels < 2 {
        return Err(DomainError::TooFewLabels);
    }
    Ok(())
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Domain {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// An allowlist entry: an exact domain, or `*.base` admitting every subdomain of `base` (any
/// depth) but never `base` itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DomainPattern {
    Exact(Domain),
    Subdomains(Domain),
}

impl DomainPattern {
    /// Lenient parse for operator input: trims whitespace, lower-cases, drops one trailing dot.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let trimmed = input.trim();
        let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if let Some(base) = trimmed.strip_prefix("*.") {
            if base.contains('*') {
                return Err(DomainError::BadWildcard);
            }
            if is_public_suffix(&base.to_ascii_lowercase()) {
                return Err(DomainError::PublicSuffixWildcard);
            }
            Ok(Self::Subdomains(Domain::parse(base)?))
        } else if trimmed.contains('*') {
            Err(DomainError::BadWildcard)
        } else {
            Ok(Self::Exact(Domain::parse(trimmed)?))
        }
    }

    /// Exact comparison of normalised names; `*.base` matches strict subdomains only.
    pub fn admits(&self, domain: &Domain) -> bool {
        match self {
            Self::Exact(d) => d == domain,
            Self::Subdomains(base) => domain.is_strict_subdomain_of(base),
        }
    }
}

/// `co.uk`, `com`, `github.io`: names under which unrelated parties register domains.
fn is_public_suffix(name: &str) -> bool {
    match psl::suffix(name.as_bytes()) {
        Some(suffix) => suffix.as_bytes() == name.as_bytes(),
        None => false,
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(d) => write!(f, "{d}"),
            Self::Subdomains(d) => write!(f, "*.{d}"),
        }
    }
}

impl FromStr for DomainPattern {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Domain {
        Domain::parse(s).unwrap()
    }

    #[test]
    fn valid_and_invalid_domains() {
        assert!(Domain::parse("example.com").is_ok());
        assert_eq!(d("ExAmple.COM").as_str(), "example.com");
        for bad in [
            "",
            "com",
            "example.com.",
            "-example.com",
            "example-.com",
            "exa mple.com",
            "ex_ample.com",
            "a..b",
            "éxample.com",
            "example.com\n",
        ] {
            assert!(Domain::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Domain::parse(&format!("{}.com", "a".repeat(64))).is_err());
        assert!(Domain::parse(&format!("{}.com", "a".repeat(63))).is_ok());
        let long = vec!["a".repeat(50); 5].join(".");
        assert!(long.len() > 253);
        assert_eq!(Domain::parse(&long), Err(DomainError::TooLong));
    }

    #[test]
    fn exact_pattern_matches_only_itself() {
        let p = DomainPattern::parse(" Example.COM. ").unwrap();
        assert_eq!(p.to_string(), "example.com");
        assert!(p.admits(&d("example.com")));
        assert!(!p.admits(&d("sub.example.com")));
        assert!(!p.admits(&d("example.com.evil.net")));
        assert!(!p.admits(&d("notexample.com")));
    }

    #[test]
    fn wildcard_matches_any_depth_but_not_apex() {
        let p = DomainPattern::parse("*.example.com").unwrap();
        assert!(p.admits(&d("a.example.com")));
        assert!(p.admits(&d("a.b.example.com")));
        assert!(!p.admits(&d("example.com")));
        assert!(!p.admits(&d("badexample.com")));
        assert!(!p.admits(&d("example.com.evil.net")));
    }

    #[test]
    fn wildcard_on_public_suffix_is_refused() {
        for bad in ["*.com", "*.co.uk", "*.github.io"] {
            assert_eq!(
                DomainPattern::parse(bad),
                Err(DomainError::PublicSuffixWildcard),
                "{bad}"
            );
        }
        assert_eq!(
            DomainPattern::parse("a.*.com"),
            Err(DomainError::BadWildcard)
        );
        assert_eq!(DomainPattern::parse("*"), Err(DomainError::BadWildcard));
        assert!(DomainPattern::parse("*.example.co.uk").is_ok());
    }

    proptest! {
        #[test]
        fn domain_display_round_trips(s in "[a-z0-9]{1,20}(\\.[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?){1,4}") {
            let parsed = Domain::parse(&s).unwrap();
            prop_assert_eq!(Domain::parse(&parsed.to_string()).unwrap(), parsed);
        }

        #[test]
        fn pattern_display_round_trips(wild in any::<bool>(), s in "[a-z0-9]{1,20}\\.example\\.(com|org|net)") {
            let text = if wild { format!("*.{s}") } else { s };
            let parsed = DomainPattern::parse(&text).unwrap();
            prop_assert_eq!(parsed.to_string(), text.clone());
            prop_assert_eq!(DomainPattern::parse(&parsed.to_string()).unwrap(), parsed);
        }

        #[test]
        fn domain_parse_never_panics(s in "\\PC{0,300}") {
            let _ = Domain::parse(&s);
            let _ = DomainPattern::parse(&s);
        }
    }
}

#[cfg(test)]
pub(crate) mod length_edges {
    use super::*;

    /// A valid DNS name of exactly `n` bytes: 60-character labels, then a `.com` name.
    pub(crate) fn name(n: usize) -> String {
        let mut d = String::new();
        while d.len() + 61 < n - 4 {
            d.push_str(&"a".repeat(60));
            d.push('.');
        }
        d.push_str(&"b".repeat(n - 4 - d.len()));
        d.push_str(".com");
        d
    }

    #[test]
    fn a_name_of_253_bytes_is_valid_and_254_is_too_long() {
        assert_eq!(name(253).len(), 253);
        assert!(Domain::parse(&name(253)).is_ok());
        assert_eq!(Domain::parse(&name(254)), Err(DomainError::TooLong));
    }
}
