//! An operator's input, parsed field by field for both fronts: the CLI's arguments and the
//! admin API's bodies go through the same parsers, so a value one refuses the other refuses with
//! the same message. Every refused field is reported (the API lists them all; the CLI prints
//! them on one line), never only the first.

use shared::{DomainPattern, Scope};

use super::applications::KeysInput;
use crate::model::AuthMethod;

/// One refused field: which (`scopes[1]`, `token_endpoint_auth_method`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    pub field: String,
    pub message: String,
}

/// The message for an authentication method that is neither of the two.
pub const AUTH_METHOD_EXPECTED: &str = "must be client_secret or private_key_jwt";

/// `client_secret` or `private_key_jwt`; else the message both fronts give.
pub fn auth_method(raw: &str) -> Result<AuthMethod, &'static str> {
    AuthMethod::parse(raw).ok_or(AUTH_METHOD_EXPECTED)
}

/// Collects the refusals while the fields of one request are parsed.
#[derive(Debug, Default)]
pub struct FieldCheck {
    issues: Vec<FieldIssue>,
}

impl FieldCheck {
    fn refuse(&mut self, field: String, message: String) {
        self.issues.push(FieldIssue { field, message });
    }

    /// Scope names, each refused one reported as `field[i]`.
    pub fn scopes(&mut self, field: &str, items: &[String]) -> Vec<Scope> {
        let mut scopes = Vec::with_capacity(items.len());
        for (i, s) in items.iter().enumerate() {
            match s.parse::<Scope>() {
                Ok(scope) => scopes.push(scope),
                Err(e) => self.refuse(format!("{field}[{i}]"), e.to_string()),
            }
        }
        scopes
    }

    /// Domain patterns (`example.com`, `*.example.com`), each refused one reported as `field[i]`.
    pub fn domains(&mut self, field: &str, items: &[String]) -> Vec<DomainPattern> {
        let mut domains = Vec::with_capacity(items.len());
        for (i, d) in items.iter().enumerate() {
            match DomainPattern::parse(d) {
                Ok(domain) => domains.push(domain),
                Err(e) => self.refuse(
                    format!("{field}[{i}]"),
                    format!("invalid domain {d:?}: {e}"),
                ),
            }
        }
        domains
    }

    /// `client_secret` or `private_key_jwt`, if given.
    pub fn auth_method(&mut self, field: &str, raw: Option<&str>) -> Option<AuthMethod> {
        auth_method(raw?)
            .map_err(|message| self.refuse(field.to_owned(), message.to_owned()))
            .ok()
    }

    /// The keys given: a JWKS document or a URI, not both.
    pub fn keys(&mut self, jwks: Option<String>, jwks_uri: Option<String>) -> Option<KeysInput> {
        match (jwks, jwks_uri) {
            (Some(_), Some(_)) => {
                self.refuse("jwks".into(), "give jwks or jwks_uri, not both".into());
                None
            }
            (Some(jwks), None) => Some(KeysInput::Jwks(jwks)),
            (None, Some(uri)) => Some(KeysInput::JwksUri(uri)),
            (None, None) => None,
        }
    }

    /// Every refusal, or none.
    pub fn finish(self) -> Result<(), Vec<FieldIssue>> {
        if self.issues.is_empty() {
            Ok(())
        } else {
            Err(self.issues)
        }
    }
}

/// A request field when it is present and not blank (whitespace only counts as absent).
pub fn non_blank(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_field_counts_as_absent() {
        assert_eq!(non_blank(Some(" x ")), Some(" x "));
        for blank in [None, Some(""), Some("  \t")] {
            assert_eq!(non_blank(blank), None, "{blank:?}");
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_refused_field_is_named_and_the_good_ones_kept() {
        let mut check = FieldCheck::default();
        let scopes = check.scopes(
            "scopes",
            &strings(&["rooms:list", "rooms:fly", "rooms:create"]),
        );
        let domains = check.domains("domains", &strings(&["example.com", "not a domain"]));
        let method = check.auth_method("token_endpoint_auth_method", Some("password"));
        assert_eq!(scopes, [Scope::RoomsList, Scope::RoomsCreate]);
        assert_eq!(domains.len(), 1);
        assert_eq!(method, None);
        let issues = check.finish().unwrap_err();
        let fields: Vec<&str> = issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(
            fields,
            ["scopes[1]", "domains[1]", "token_endpoint_auth_method"]
        );
        assert!(
            issues[1]
                .message
                .starts_with("invalid domain \"not a domain\""),
            "{issues:?}"
        );
        assert_eq!(issues[2].message, AUTH_METHOD_EXPECTED);
    }

    #[test]
    fn good_input_passes_and_keys_are_one_or_the_other() {
        let mut check = FieldCheck::default();
        assert_eq!(
            check.auth_method("m", Some("private_key_jwt")),
            Some(AuthMethod::PrivateKeyJwt)
        );
        assert_eq!(check.auth_method("m", None), None);
        assert_eq!(
            check.keys(None, Some("https://k.example/jwks".into())),
            Some(KeysInput::JwksUri("https://k.example/jwks".into()))
        );
        assert_eq!(
            check.keys(Some("{}".into()), None),
            Some(KeysInput::Jwks("{}".into()))
        );
        assert_eq!(check.keys(None, None), None);
        assert!(check.finish().is_ok());
        let mut both = FieldCheck::default();
        assert_eq!(both.keys(Some("{}".into()), Some("https://k".into())), None);
        assert_eq!(both.finish().unwrap_err()[0].field, "jwks");
    }
}
