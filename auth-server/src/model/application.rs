//! An application (an OAuth client) and its credential rules.

use chrono::{DateTime, Utc};
use shared::{Allowlist, ClientId, ScopeSet};
use uuid::Uuid;

/// How an application authenticates to the token, introspection and revocation endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMethod {
    /// `client_secret_basic` or `client_secret_post`.
    #[default]
    ClientSecret,
    /// A JWT signed by one of its keys (RFC 7523 §2.2).
    PrivateKeyJwt,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecret => "client_secret",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [AuthMethod::ClientSecret, AuthMethod::PrivateKeyJwt]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// An application as the domain sees it. `Debug` never shows the secret hash.
#[derive(Clone)]
pub struct Application {
    pub id: Uuid,
    pub client_id: ClientId,
    pub name: String,
    /// Empty for an application registered without a secret (it authenticates with its keys).
    pub secret_hash: String,
    /// The secret a rotation with grace replaced, valid until `previous_secret_expires_at`.
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub scopes: ScopeSet,
    pub domains: Allowlist,
    pub is_active: bool,
    pub tokens_not_before: Option<DateTime<Utc>>,
    /// This application's token lifetime, if shorter than the server's `TOKEN_TTL_SECONDS`.
    pub token_ttl_seconds: Option<u32>,
    /// When it last obtained a token, to the minute (written at most once a minute).
    pub last_token_at: Option<DateTime<Utc>>,
    pub auth_method: AuthMethod,
    /// Its public keys, inline (a JWKS validated at registration)...
    pub jwks: Option<String>,
    /// ...or where to fetch them. At most one of the two is set.
    pub jwks_uri: Option<String>,
    /// Every token request must carry a DPoP proof, and so every token is bound to a key
    /// (RFC 9449 §5.2's `dpop_bound_access_tokens`).
    pub dpop_bound_access_tokens: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Application {
    /// Whether it has public keys (inline or at a `jwks_uri`).
    pub fn has_keys(&self) -> bool {
        self.jwks.is_some() || self.jwks_uri.is_some()
    }

    /// The stored secret hashes a presented secret may match at `now`: the current one, and
    /// the previous one until its grace ends. None for an application that authenticates with
    /// `private_key_jwt` (a secret it may still hold from before is not accepted).
    pub fn accepted_hashes(&self, now: DateTime<Utc>) -> Vec<&str> {
        if self.auth_method != AuthMethod::ClientSecret {
            return Vec::new();
        }
        let mut hashes: Vec<&str> = Some(self.secret_hash.as_str())
            .filter(|h| !h.is_empty())
            .into_iter()
            .collect();
        if let Some(previous) = self.live_previous_secret(now) {
            hashes.push(previous);
        }
        hashes
    }

    /// The lifetime its tokens get: its own if set, never above the server's
    /// `TOKEN_TTL_SECONDS` (`server_ttl`).
    pub fn effective_token_ttl(&self, server_ttl: u32) -> u32 {
        self.token_ttl_seconds
            .map_or(server_ttl, |own| own.min(server_ttl))
    }

    /// The previous secret's hash while a rotation's grace lasts.
    pub fn live_previous_secret(&self, now: DateTime<Utc>) -> Option<&str> {
        self.previous_secret_hash.as_deref().filter(|_| {
            self.previous_secret_expires_at
                .is_some_and(|until| now < until)
        })
    }
}

#[cfg(test)]
impl Application {
    /// An active `client_secret` application with no scopes, domains or keys, created at `now`:
    /// unit tests start from it and change what they test.
    pub fn fixture(now: DateTime<Utc>) -> Self {
        Application {
            id: Uuid::nil(),
            client_id: ClientId::parse(&"a".repeat(shared::client_id::CLIENT_ID_LEN))
                .expect("a valid client id"),
            name: "calendar".into(),
            secret_hash: "current".into(),
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            scopes: ScopeSet::default(),
            domains: Allowlist::default(),
            is_active: true,
            tokens_not_before: None,
            token_ttl_seconds: None,
            last_token_at: None,
            auth_method: AuthMethod::ClientSecret,
            jwks: None,
            jwks_uri: None,
            dpop_bound_access_tokens: false,
            created_at: now,
            updated_at: now,
        }
    }
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("domains", &self.domains)
            .field("is_active", &self.is_active)
            .field("auth_method", &self.auth_method)
            .field("jwks_uri", &self.jwks_uri)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log line of an application (or an admin key) never carries what proves its identity.
    #[test]
    fn debug_never_shows_a_secret_hash() {
        let now = Utc::now();
        let app = Application {
            secret_hash: "$argon2id$current-hash".into(),
            previous_secret_hash: Some("$argon2id$previous-hash".into()),
            client_id: ClientId::parse("abcdefghijklmnopqrstuvwxyz0123456789ABCD").unwrap(),
            ..Application::fixture(now)
        };
        let shown = format!("{app:?}");
        assert!(shown.contains("abcdefghij"), "{shown}");
        assert!(!shown.contains("hash"), "{shown}");
        let key = crate::model::AdminKey {
            id: Uuid::nil(),
            key_id: "k1".into(),
            name: "ops".into(),
            secret_digest: "deadbeef".into(),
            created_at: now,
            revoked_at: None,
        };
        assert!(!format!("{key:?}").contains("deadbeef"));
    }
}
