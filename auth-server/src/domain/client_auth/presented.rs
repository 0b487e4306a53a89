//! What a request presented to authenticate a client (RFC 6749 §2.3.1, RFC 7521 §4.2), read
//! from the `Authorization` header and the body fields before any lookup: a secret (Basic or
//! post), a client assertion, or the JWT-bearer grant's assertion; conflicts are refused.

use std::net::IpAddr;

use secrecy::SecretString;
use shared::basic_auth::{self, BasicAuthError};

use crate::domain::assertions;

/// Credentials as presented, before any lookup.
pub enum Presented {
    /// No credentials anywhere.
    None,
    /// A Basic header that does not decode: fails authentication (never a 400).
    Malformed,
    Credentials {
        client_id: String,
        secret: SecretString,
    },
    /// `client_assertion` (private_key_jwt); `client_id` is its `iss`, not yet verified.
    Assertion {
        client_id: String,
        assertion: String,
    },
    /// The JWT-bearer grant's `assertion` (RFC 7523 §2.1), which authenticates the application
    /// as well as naming the user; `client_id` is its `iss`, not yet verified.
    GrantAssertion {
        client_id: String,
        assertion: String,
    },
}

/// What a request presented to authenticate a client, and where it came from: built once at
/// the edge (`api/client.rs`) and handed whole to `authenticate`.
pub struct ClientAuthInfo {
    pub presented: Presented,
    /// The caller's address, for the failure limits.
    pub source: IpAddr,
}

/// The body fields of `private_key_jwt` (RFC 7521 §4.2), as received.
#[derive(Default, Clone)]
pub struct AssertionFields {
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ConflictingCredentials(pub &'static str);

/// Reads credentials from the `Authorization` header and the body fields. Both may name the
/// client (some libraries send `client_id` in the body too), but only if they agree and the
/// credentials are sent once: a secret and an assertion together are refused.
pub fn presented(
    authorization: Option<&str>,
    body_client_id: Option<&str>,
    body_client_secret: Option<String>,
    assertion: AssertionFields,
) -> Result<Presented, ConflictingCredentials> {
    let basic = authorization.filter(|h| basic_auth::is_basic(h));
    match (assertion.client_assertion_type, assertion.client_assertion) {
        (None, None) => {}
        (Some(kind), Some(jwt)) => {
            if basic.is_some() || body_client_secret.is_some() {
                return Err(ConflictingCredentials(
                    "Client credentials must be sent once: a client_assertion or a secret, not both",
                ));
            }
            if kind != shared::grant::CLIENT_ASSERTION_JWT_BEARER {
                return Err(ConflictingCredentials(
                    "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ));
            }
            // An unreadable assertion names no client: it fails as an assertion (no lookup, no
            // argon2), counted under the empty client_id like any malformed credential.
            let iss = assertions::claimed_issuer(&jwt).unwrap_or_default();
            if !iss.is_empty() && body_client_id.is_some_and(|id| id != iss) {
                return Err(ConflictingCredentials(
                    "client_id in the body differs from the client assertion's iss",
                ));
            }
            return Ok(Presented::Assertion {
                client_id: iss,
                assertion: jwt,
            });
        }
        _ => {
            return Err(ConflictingCredentials(
                "client_assertion and client_assertion_type go together",
            ));
        }
    }
    match basic {
        Some(header) => {
            if body_client_secret.is_some() {
                return Err(ConflictingCredentials(
                    "Client credentials must be sent once: Basic authorization or client_secret in the body, not both",
                ));
            }
            match basic_auth::parse_basic(header) {
                Ok(creds) => {
                    if body_client_id.is_some_and(|id| id != creds.username) {
                        return Err(ConflictingCredentials(
                            "client_id in the body differs from the Basic authorization",
                        ));
                    }
                    Ok(Presented::Credentials {
                        client_id: creds.username,
                        secret: SecretString::from(creds.password),
                    })
                }
                Err(BasicAuthError::Malformed | BasicAuthError::NotBasic) => {
                    Ok(Presented::Malformed)
                }
            }
        }
        None => match (body_client_id, body_client_secret) {
            (None, None) => Ok(Presented::None),
            (Some(id), secret) => Ok(Presented::Credentials {
                client_id: id.to_owned(),
                secret: SecretString::from(secret.unwrap_or_default()),
            }),
            (None, Some(_)) => Ok(Presented::Malformed),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use shared::basic_auth::encode_basic;

    #[test]
    fn reads_basic_or_body_and_refuses_conflicts() {
        let h = encode_basic("abc", "s3cret");
        match presented(Some(&h), Some("abc"), None, AssertionFields::default()).unwrap() {
            Presented::Credentials { client_id, secret } => {
                assert_eq!(client_id, "abc");
                assert_eq!(secret.expose_secret(), "s3cret");
            }
            _ => panic!("expected credentials"),
        }
        assert!(presented(Some(&h), Some("other"), None, AssertionFields::default()).is_err());
        assert!(presented(Some(&h), None, Some("x".into()), AssertionFields::default()).is_err());
        assert!(matches!(
            presented(None, None, None, AssertionFields::default()),
            Ok(Presented::None)
        ));
        assert!(matches!(
            presented(Some("Bearer x"), None, None, AssertionFields::default()),
            Ok(Presented::None)
        ));
        assert!(matches!(
            presented(Some("Basic !!"), None, None, AssertionFields::default()),
            Ok(Presented::Malformed)
        ));
        assert!(matches!(
            presented(None, Some("id"), None, AssertionFields::default()),
            Ok(Presented::Credentials { .. })
        ));
    }
}
