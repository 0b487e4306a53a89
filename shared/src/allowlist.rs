//! An application's e-mail domain allowlist (docs/spec/auth-server.md §1, step 7). No entries
//! means any domain (upstream semantics); provisional users are only ever created for
//! applications with an explicit list.

use std::collections::BTreeSet;

use crate::{DomainError, DomainPattern, Email};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist(BTreeSet<DomainPattern>);

impl Allowlist {
    pub fn new(patterns: impl IntoIterator<Item = DomainPattern>) -> Self {
        Self(patterns.into_iter().collect())
    }

    /// The stored form: normalised patterns separated by spaces.
    pub fn parse_stored(stored: &str) -> Result<Self, DomainError> {
        stored
            .split_ascii_whitespace()
            .map(DomainPattern::parse)
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Self)
    }

    pub fn to_stored(&self) -> String {
        self.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn is_explicit(&self) -> bool {
        !self.0.is_empty()
    }

    pub fn admits(&self, email: &Email) -> bool {
        !self.is_explicit() || self.0.iter().any(|p| p.admits(email.domain()))
    }

    pub fn insert(&mut self, pattern: DomainPattern) -> bool {
        self.0.insert(pattern)
    }

    pub fn remove(&mut self, pattern: &DomainPattern) -> bool {
        self.0.remove(pattern)
    }

    pub fn iter(&self) -> impl Iterator<Item = &DomainPattern> {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    /// What the CLI and the admin API report as "added" / "not there" comes from these.
    #[test]
    fn insert_and_remove_say_whether_they_changed_the_list() {
        let mut list = Allowlist::default();
        let p = DomainPattern::parse("example.com").unwrap();
        assert!(list.insert(p.clone()));
        assert!(!list.insert(p.clone()), "already there");
        assert!(list.is_explicit());
        assert!(list.remove(&p));
        assert!(!list.remove(&p), "no longer there");
        assert!(!list.is_explicit());
    }

    #[test]
    fn empty_admits_everything_explicit_admits_only_matches() {
        assert!(Allowlist::default().admits(&email("a@anything.org")));
        let list = Allowlist::parse_stored("example.com *.corp.example.net").unwrap();
        assert!(list.admits(&email("a@EXAMPLE.com")));
        assert!(!list.admits(&email("a@sub.example.com")));
        assert!(!list.admits(&email("a@example.com.evil.net")));
        assert!(list.admits(&email("a@x.y.corp.example.net")));
        assert!(!list.admits(&email("a@corp.example.net")));
        assert_eq!(Allowlist::parse_stored(&list.to_stored()).unwrap(), list);
    }
}
