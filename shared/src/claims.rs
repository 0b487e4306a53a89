//! The access-token claims (RFC 9068 profile with RFC 8693 `act`), issued by the auth-server and
//! checked by the rooms API and by introspection — one definition, one set of checks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::scope::ScopeSet;

/// JOSE `typ` of our access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// `aud`: a string when we issue, a string or an array when we accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(a) => a == audience,
            Audience::Many(list) => list.iter().any(|a| a == audience),
        }
    }
}

/// `scope`: space-separated when we issue; a JSON array is accepted too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ScopeClaim {
    Text(String),
    List(Vec<String>),
}

impl ScopeClaim {
    /// Known scopes, case-insensitively; an optional `prefix:` is stripped first.
    pub fn scopes(&self, prefix: Option<&str>) -> ScopeSet {
        let strip = |s: &str| -> String {
            match prefix {
                Some(p) => s
                    .strip_prefix(p)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .unwrap_or(s)
                    .to_owned(),
                None => s.to_owned(),
            }
        };
        let items: Vec<String> = match self {
            ScopeClaim::Text(t) => t.split_ascii_whitespace().map(strip).collect(),
            ScopeClaim::List(l) => l.iter().map(|s| strip(s)).collect(),
        };
        ScopeSet::parse_known(items.iter().map(String::as_str))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub aud: Audience,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ScopeClaim>,
    #[serde(default)]
    pub delegated: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// A DPoP-bound token's key (RFC 9449 §6.1): only a request whose proof is signed by the
    /// key with this thumbprint may use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The `cnf` claim (RFC 7800) of a DPoP-bound token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The RFC 7638 SHA-256 thumbprint of the client's DPoP key (`dpop::thumbprint`).
    pub jkt: String,
}

/// A `tokens_not_before` instant as whole seconds, rounded up: a token whose (whole-second) `iat`
/// is below it was issued before the change. The token endpoint never issues a token with an
/// `iat` below it, so tokens minted in the same second after the change stay valid.
pub fn not_before_seconds(t: DateTime<Utc>) -> i64 {
    let secs = t.timestamp();
    if t.timestamp_subsec_nanos() > 0 {
        secs + 1
    } else {
        secs
    }
}

/// The `tokens_not_before` to record for a change at `now` (a deactivation, a scope or domain
/// removed, a secret rotated): the next whole second, strictly after the `iat` of every token
/// minted up to `now`.
///
/// The token endpoint never mints a token before the second its client's and user's
/// `tokens_not_before` name: it waits for it (under a second), so a token's `iat` is always the
/// second it was really minted in. Lifting `iat` to the value instead (as before) let a second
/// change in the same second — of the same row or of the other one — miss a token minted between
/// the two: its lifted `iat` equalled the second change's value.
pub fn next_not_before(now: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(now.timestamp().saturating_add(1), 0).unwrap_or(now)
}

/// The largest `TOKEN_LEEWAY_SECONDS` a verifier may use: it accepts a token until
/// `exp + leeway`.
pub const MAX_LEEWAY_SECONDS: i64 = 300;
/// How long past `exp` a revocation is kept, by the auth-server's feed and by every local
/// verifier: longer than any verifier accepts the token, whatever its leeway, or a revoked
/// token would work again between the end of retention and `exp + leeway`.
pub const REVOCATION_RETENTION_SECONDS: i64 = MAX_LEEWAY_SECONDS + 60;

/// What a verifier expects of every token.
#[derive(Debug, Clone)]
pub struct Expectations {
    pub issuer: String,
    pub audience: String,
    pub leeway_seconds: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("The access token expired")]
    Expired,
    #[error("The access token is not yet valid")]
    NotYetValid,
    #[error("The access token has the wrong issuer")]
    Issuer,
    #[error("The access token is not meant for this audience")]
    Audience,
    #[error("The access token names no subject")]
    Subject,
    #[error("The access token is not a delegated token")]
    NotDelegated,
}

/// Inputs of a fresh token; `AccessTokenClaims::issue` fills in the fixed parts.
#[derive(Debug, Clone)]
pub struct Issue<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub user_id: &'a str,
    pub client_id: &'a str,
    pub scopes: ScopeSet,
    pub now: DateTime<Utc>,
    pub ttl_seconds: i64,
    pub jti: String,
    /// The thumbprint of the DPoP key the token is bound to, if its request carried a proof.
    pub jkt: Option<String>,
}

impl AccessTokenClaims {
    pub fn issue(i: Issue<'_>) -> Self {
        let iat = i.now.timestamp();
        Self {
            iss: i.issuer.to_owned(),
            aud: Audience::One(i.audience.to_owned()),
            sub: Some(i.user_id.to_owned()),
            user_id: Some(i.user_id.to_owned()),
            client_id: i.client_id.to_owned(),
            scope: i.scopes.token_scopes().to_claim().map(ScopeClaim::Text),
            delegated: Some(true),
            act: Some(Actor {
                sub: i.client_id.to_owned(),
            }),
            iat: Some(iat),
            nbf: Some(iat),
            exp: iat + i.ttl_seconds,
            jti: Some(i.jti),
            cnf: i.jkt.map(|jkt| Confirmation { jkt }),
        }
    }

    /// The DPoP key thumbprint the token is bound to, if it is.
    pub fn jkt(&self) -> Option<&str> {
        self.cnf.as_ref().map(|c| c.jkt.as_str())
    }

    /// `sub`, or failing that the upstream `user_id`.
    pub fn subject(&self) -> Option<&str> {
        self.sub
            .as_deref()
            .or(self.user_id.as_deref())
            .filter(|s| !s.is_empty())
    }

    /// True when the token was issued before `not_before` (seconds, see `not_before_seconds`).
    /// A token without `iat` cannot prove it is newer, so it counts as older.
    pub fn issued_before(&self, not_before: i64) -> bool {
        self.iat.is_none_or(|iat| iat < not_before)
    }

    /// The `rooms:*` scopes the token carries (privileges never count).
    pub fn scopes(&self) -> ScopeSet {
        self.scope
            .as_ref()
            .map(|s| s.scopes(None).token_scopes())
            .unwrap_or_default()
    }

    /// Every claim check of docs/spec/rooms-api.md §1 that does not need the signature or external state.
    pub fn validate(&self, expect: &Expectations, now: DateTime<Utc>) -> Result<(), ClaimError> {
        let now = now.timestamp();
        if self.exp.saturating_add(expect.leeway_seconds) <= now {
            return Err(ClaimError::Expired);
        }
        let latest = now.saturating_add(expect.leeway_seconds);
        if self.nbf.is_some_and(|t| t > latest) || self.iat.is_some_and(|t| t > latest) {
            return Err(ClaimError::NotYetValid);
        }
        if self.iss != expect.issuer {
            return Err(ClaimError::Issuer);
        }
        if !self.aud.contains(&expect.audience) {
            return Err(ClaimError::Audience);
        }
        if self.subject().is_none() || self.client_id.is_empty() {
            return Err(ClaimError::Subject);
        }
        if self.delegated != Some(true) {
            return Err(ClaimError::NotDelegated);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::Scope;
    use chrono::TimeZone;

    fn sample(now: DateTime<Utc>) -> AccessTokenClaims {
        AccessTokenClaims::issue(Issue {
            issuer: "http://auth",
            audience: "rooms-api",
            user_id: "u1",
            client_id: "c1",
            scopes: [
                Scope::RoomsList,
                Scope::TokensIntrospect,
                Scope::RoomsCreate,
            ]
            .into_iter()
            .collect(),
            now,
            ttl_seconds: 3600,
            jti: "j1".into(),
            jkt: None,
        })
    }

    fn expect() -> Expectations {
        Expectations {
            issuer: "http://auth".into(),
            audience: "rooms-api".into(),
            leeway_seconds: 30,
        }
    }

    /// A token bound to a DPoP key names its thumbprint in `cnf.jkt` (RFC 9449 §6.1) and
    /// `jkt()` reads it back; an unbound token has neither.
    #[test]
    fn a_bound_token_names_its_key_thumbprint() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(sample(now).jkt(), None);
        let bound = AccessTokenClaims::issue(Issue {
            issuer: "http://auth",
            audience: "rooms-api",
            user_id: "u1",
            client_id: "c1",
            scopes: [Scope::RoomsList].into_iter().collect(),
            now,
            ttl_seconds: 3600,
            jti: "j1".into(),
            jkt: Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".into()),
        });
        assert_eq!(
            bound.jkt(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
        let wire = serde_json::to_value(&bound).unwrap();
        assert_eq!(
            wire["cnf"]["jkt"],
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn issued_claims_have_the_rfc9068_shape() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let json = serde_json::to_value(sample(now)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "iss": "http://auth", "aud": "rooms-api", "sub": "u1", "user_id": "u1",
                "client_id": "c1", "scope": "rooms:create rooms:list", "delegated": true,
                "act": {"sub": "c1"}, "iat": 1_700_000_000, "nbf": 1_700_000_000,
                "exp": 1_700_003_600, "jti": "j1"
            })
        );
    }

    #[test]
    fn validation_checks_time_issuer_audience_subject_delegation() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let c = sample(now);
        assert_eq!(c.validate(&expect(), now), Ok(()));
        let later = now + chrono::TimeDelta::seconds(3600 + 30);
        assert_eq!(c.validate(&expect(), later), Err(ClaimError::Expired));
        let earlier = now - chrono::TimeDelta::seconds(31);
        assert_eq!(c.validate(&expect(), earlier), Err(ClaimError::NotYetValid));
        let mut bad = c.clone();
        bad.iss = "http://other".into();
        assert_eq!(bad.validate(&expect(), now), Err(ClaimError::Issuer));
        let mut bad = c.clone();
        bad.aud = Audience::Many(vec!["x".into(), "rooms-api".into()]);
        assert_eq!(bad.validate(&expect(), now), Ok(()));
        bad.aud = Audience::Many(vec!["x".into()]);
        assert_eq!(bad.validate(&expect(), now), Err(ClaimError::Audience));
        let mut bad = c.clone();
        bad.sub = None;
        assert_eq!(bad.validate(&expect(), now), Ok(()));
        bad.user_id = None;
        assert_eq!(bad.validate(&expect(), now), Err(ClaimError::Subject));
        let mut bad = c.clone();
        bad.delegated = Some(false);
        assert_eq!(bad.validate(&expect(), now), Err(ClaimError::NotDelegated));
    }

    /// `nbf` and `iat` may each be up to the leeway ahead, not a second more; either alone
    /// refuses the token.
    #[test]
    fn nbf_and_iat_each_refuse_a_token_past_the_leeway() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let leeway = expect().leeway_seconds;
        for (nbf, iat, want) in [
            (Some(leeway), None, Ok(())),
            (Some(leeway + 1), None, Err(ClaimError::NotYetValid)),
            (None, Some(leeway), Ok(())),
            (None, Some(leeway + 1), Err(ClaimError::NotYetValid)),
            (Some(0), Some(leeway + 1), Err(ClaimError::NotYetValid)),
            (Some(leeway + 1), Some(0), Err(ClaimError::NotYetValid)),
            (Some(-leeway - 1), Some(-leeway - 1), Ok(())),
        ] {
            let mut c = sample(now);
            c.nbf = nbf.map(|s| now.timestamp() + s);
            c.iat = iat.map(|s| now.timestamp() + s);
            assert_eq!(c.validate(&expect(), now), want, "nbf {nbf:?} iat {iat:?}");
        }
    }

    #[test]
    fn the_token_scopes_are_its_rooms_scopes_only() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let scopes = sample(now).scopes();
        assert_eq!(
            scopes,
            [Scope::RoomsCreate, Scope::RoomsList].into_iter().collect()
        );
    }

    /// Kept longer than any verifier accepts a token (exp + the largest leeway, 300), with a margin:
    /// the spec's figure (360 s) is this constant.
    #[test]
    fn revocations_outlive_the_largest_leeway() {
        assert_eq!(REVOCATION_RETENTION_SECONDS, 360);
    }

    #[test]
    fn a_change_names_the_next_whole_second() {
        let t = |s: i64, ms: u32| DateTime::from_timestamp(s, ms * 1_000_000).unwrap();
        assert_eq!(not_before_seconds(next_not_before(t(100, 200))), 101);
        // On a second boundary too: a token minted in that same instant has iat 200.
        assert_eq!(not_before_seconds(next_not_before(t(200, 0))), 201);
    }

    #[test]
    fn not_before_rounds_up_and_compares_with_iat() {
        let t = Utc.timestamp_opt(1_700_000_000, 500_000_000).unwrap();
        assert_eq!(not_before_seconds(t), 1_700_000_001);
        assert_eq!(
            not_before_seconds(Utc.timestamp_opt(1_700_000_000, 0).unwrap()),
            1_700_000_000
        );
        let c = sample(Utc.timestamp_opt(1_700_000_000, 0).unwrap());
        assert!(c.issued_before(1_700_000_001));
        assert!(!c.issued_before(1_700_000_000));
    }

    #[test]
    fn scopes_from_string_or_array_case_insensitive() {
        let list = ScopeClaim::List(vec!["ROOMS:LIST".into(), "rooms:list".into(), "x".into()]);
        assert_eq!(list.scopes(None).to_string(), "rooms:list");
        let text = ScopeClaim::Text("meet:rooms:create rooms:delete".into());
        assert_eq!(
            text.scopes(Some("meet")).to_string(),
            "rooms:create rooms:delete"
        );
    }
}
