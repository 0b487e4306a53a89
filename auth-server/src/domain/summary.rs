//! One summary per noun: what the admin API answers and the CLI's `--json` prints, the same
//! JSON from the same function (a test compares the two fronts). The admin API's response types
//! are `From` these; the CLI's text view formats them. A rule of rendering (which secrets work
//! now, an application's effective token lifetime) is decided here, once.
//!
//! Timestamps are written the way the admin API's framework writes a `date-time`
//! (`DateTime::to_rfc3339`), so the two fronts agree to the character.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::model::{AdminKey, Application, User};

/// A secret that works now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecretSummary {
    /// `current`, or `previous` during a rotation's grace.
    pub which: &'static str,
    /// When it stops working; absent for the current secret.
    #[serde(skip_serializing_if = "Option::is_none", with = "rfc3339::option")]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApplicationSummary {
    pub id: Uuid,
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    /// Admitted e-mail domains; empty admits any.
    pub domains: Vec<String>,
    pub is_active: bool,
    /// The application's own token lifetime, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_ttl_seconds: Option<u32>,
    /// The lifetime its tokens get: its own, or the server's `TOKEN_TTL_SECONDS`.
    pub effective_token_ttl_seconds: u32,
    /// `client_secret` (Basic or post) or `private_key_jwt`.
    pub token_endpoint_auth_method: &'static str,
    /// The secrets that work now; empty for an application without one.
    pub secrets: Vec<SecretSummary>,
    /// Its public keys, if registered inline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    /// Where its public keys are fetched from, if registered so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Whether every token request must carry a DPoP proof (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: bool,
    /// When it last obtained a token (to the minute).
    #[serde(skip_serializing_if = "Option::is_none", with = "rfc3339::option")]
    pub last_token_at: Option<DateTime<Utc>>,
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// Only right after create and rotate-secret: it is never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

impl ApplicationSummary {
    /// `server_ttl` is the server's `TOKEN_TTL_SECONDS`; `secret` the one just minted, if any.
    pub fn new(
        app: &Application,
        secret: Option<&SecretString>,
        now: DateTime<Utc>,
        server_ttl: u32,
    ) -> Self {
        let mut secrets = Vec::new();
        if !app.secret_hash.is_empty() {
            secrets.push(SecretSummary {
                which: "current",
                expires_at: None,
            });
        }
        if app.live_previous_secret(now).is_some() {
            secrets.push(SecretSummary {
                which: "previous",
                expires_at: app.previous_secret_expires_at,
            });
        }
        Self {
            id: app.id,
            client_id: app.client_id.to_string(),
            name: app.name.clone(),
            scopes: app.scopes.iter().map(|s| s.to_string()).collect(),
            domains: app.domains.iter().map(|d| d.to_string()).collect(),
            is_active: app.is_active,
            token_ttl_seconds: app.token_ttl_seconds,
            effective_token_ttl_seconds: app.effective_token_ttl(server_ttl),
            token_endpoint_auth_method: app.auth_method.as_str(),
            secrets,
            jwks: app
                .jwks
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok()),
            jwks_uri: app.jwks_uri.clone(),
            dpop_bound_access_tokens: app.dpop_bound_access_tokens,
            last_token_at: app.last_token_at,
            created_at: app.created_at,
            updated_at: app.updated_at,
            client_secret: secret.map(|s| s.expose_secret().to_owned()),
        }
    }

    /// The `kid`s of its inline JWKS (`(no kid)` for a key without one).
    pub fn jwks_kids(&self) -> Option<Vec<String>> {
        let keys = self.jwks.as_ref()?.get("keys")?.as_array()?;
        Some(
            keys.iter()
                .map(|k| {
                    k.get("kid")
                        .and_then(Value::as_str)
                        .unwrap_or("(no kid)")
                        .to_owned()
                })
                .collect(),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserSummary {
    pub id: Uuid,
    /// As the user or operator typed it.
    pub email: String,
    /// The user's id in the operator's own system; absent for a provisional user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_sub: Option<String>,
    pub is_active: bool,
    /// The application whose token request created this provisional user, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by_client_id: Option<String>,
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

impl From<&User> for UserSummary {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.as_uuid(),
            email: u.email.as_typed().to_owned(),
            external_sub: u.external_sub.clone(),
            is_active: u.is_active,
            created_by_client_id: u.created_by.as_ref().map(ToString::to_string),
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdminKeySummary {
    pub id: Uuid,
    /// The actor its changes are recorded under.
    pub name: String,
    /// The public part of the key (`adm_<key_id>_…`).
    pub key_id: String,
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none", with = "rfc3339::option")]
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&AdminKey> for AdminKeySummary {
    fn from(k: &AdminKey) -> Self {
        Self {
            id: k.id,
            name: k.name.clone(),
            key_id: k.key_id.clone(),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A `date-time` as the admin API writes one.
mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339())
    }

    pub mod option {
        use chrono::{DateTime, Utc};
        use serde::Serializer;

        pub fn serialize<S: Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_as_the_admin_api_writes_them() {
        let t = DateTime::from_timestamp(1_800_000_000, 123_000_000).unwrap();
        let key = AdminKey {
            id: Uuid::nil(),
            key_id: "k".into(),
            name: "n".into(),
            secret_digest: "d".into(),
            created_at: t,
            revoked_at: None,
        };
        let json = serde_json::to_value(AdminKeySummary::from(&key)).unwrap();
        assert_eq!(json["created_at"], "2027-01-15T08:00:00.123+00:00");
        assert!(json.get("revoked_at").is_none());
    }

    /// `app show` lists the inline JWKS's kids in order, naming a key without one.
    #[test]
    fn the_inline_jwks_kids_are_listed_in_order() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut app = Application::fixture(now);
        let view = ApplicationSummary::new(&app, None, now, 3600);
        assert_eq!(view.jwks_kids(), None, "no inline JWKS");
        app.jwks = Some(r#"{"keys":[{"kid":"k1"},{"kty":"OKP"},{"kid":"k2"}]}"#.into());
        let view = ApplicationSummary::new(&app, None, now, 3600);
        assert_eq!(
            view.jwks_kids(),
            Some(vec!["k1".into(), "(no kid)".into(), "k2".into()])
        );
    }
}
