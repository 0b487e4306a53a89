//! JWT assertions signed by an application's key (docs/spec/auth-server.md §1a): as client
//! authentication (`private_key_jwt`, RFC 7523 §2.2) and as the JWT-bearer authorization grant
//! (RFC 7523 §2.1), which names the user to act for in `sub`.
//!
//! Order: the signature first, by one of the application's keys (an unknown client, or one
//! without keys, is checked against a dummy key: the same cost, the same answer); then the
//! claims, whose failures may be told apart since the caller proved it holds the key; the
//! `jti` last, recorded in the database so a replay is refused on every replica.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::client_keys::{self, AssertionHeader, DummyKeys, KeySet, SignatureError};
use crate::store::applications::Application;
use crate::store::{Db, StoreError, assertion_jtis};

/// Clock skew tolerated on `exp`, `iat` and `nbf`.
pub const LEEWAY_SECONDS: i64 = 30;
/// The furthest ahead a JWT-bearer grant's `exp` may be (RFC 7523 leaves it to the server).
pub const GRANT_MAX_LIFETIME_SECONDS: i64 = 3600;
/// The longest `jti` stored.
pub const MAX_JTI_LEN: usize = 255;
/// How long a fetched JWKS is used before it is fetched again.
const JWKS_CACHE_TTL: Duration = Duration::from_secs(300);
/// At most one fetch of a `jwks_uri` this often for an unknown `kid`, or after a failure.
const REFETCH_INTERVAL: Duration = Duration::from_secs(10);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// What the assertion is for: the rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `private_key_jwt`: `sub` is the client_id, `jti` required, a short lifetime.
    ClientAuth,
    /// The JWT-bearer grant: `sub` is the user's e-mail, `iat` required, `jti` optional.
    Grant,
}

/// The claims read from an assertion (before its signature is trusted, only `iss`).
#[derive(Debug, Default, Deserialize)]
struct RawClaims {
    iss: Option<Value>,
    sub: Option<Value>,
    aud: Option<Value>,
    exp: Option<Value>,
    iat: Option<Value>,
    nbf: Option<Value>,
    jti: Option<Value>,
    scope: Option<Value>,
}

/// The issuer an assertion claims (its client_id), read without verifying anything: what the
/// application is looked up by.
pub fn claimed_issuer(jwt: &str) -> Option<String> {
    let (_, payload) = client_keys::peek(jwt)?;
    payload.get("iss")?.as_str().map(str::to_owned)
}

/// An assertion that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    pub subject: String,
    /// The `scope` claim (space-separated), if any.
    pub scope: Option<String>,
}

/// Why an assertion was refused. `Invalid` is all an unauthenticated caller learns; the
/// others follow a good signature.
#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    #[error("The assertion is invalid")]
    Invalid,
    #[error("{0}")]
    Claims(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The rules for `purpose`'s claims.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Values `aud` must contain one of: the issuer and the URLs of the endpoints that take
    /// assertions.
    pub audiences: Vec<String>,
    /// `CLIENT_ASSERTION_MAX_LIFETIME_SECONDS`.
    pub client_max_lifetime: i64,
}

fn number(v: &Option<Value>) -> Option<i64> {
    // A NumericDate may carry a fraction (RFC 7519 §2); whole seconds are compared.
    v.as_ref()?
        .as_f64()
        .filter(|f| f.is_finite())
        .map(|f| f.floor() as i64)
}

fn text(v: &Option<Value>) -> Option<&str> {
    v.as_ref()?.as_str()
}

/// A `jti` to record and the instant after which it may be forgotten.
type Remember = Option<(String, DateTime<Utc>)>;

/// Checks the claims of an assertion whose signature checked out, for `client_id`, at `now`.
/// Returns what it says and until when its `jti` must be remembered.
fn check_claims(
    claims: &RawClaims,
    client_id: &str,
    purpose: Purpose,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Result<(Verified, Remember), String> {
    let now_s = now.timestamp();
    let what = match purpose {
        Purpose::ClientAuth => "client assertion",
        Purpose::Grant => "assertion",
    };
    if text(&claims.iss) != Some(client_id) {
        return Err(format!("The {what}'s iss must be the client_id"));
    }
    let subject = text(&claims.sub).filter(|s| !s.is_empty());
    let subject = match purpose {
        Purpose::ClientAuth if subject != Some(client_id) => {
            return Err("The client assertion's sub must be the client_id".into());
        }
        Purpose::Grant if subject.is_none() => {
            return Err("The assertion's sub must be the e-mail of the user to act for".into());
        }
        _ => subject.unwrap_or_default().to_owned(),
    };
    let audiences: Vec<&str> = match &claims.aud {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !audiences
        .iter()
        .any(|a| rules.audiences.iter().any(|ours| ours == a))
    {
        return Err(format!(
            "The {what}'s aud must contain the token endpoint URL or the issuer"
        ));
    }
    let exp = number(&claims.exp).ok_or(format!("The {what} has no exp"))?;
    if exp.saturating_add(LEEWAY_SECONDS) <= now_s {
        return Err(format!("The {what} expired"));
    }
    let max = match purpose {
        Purpose::ClientAuth => rules.client_max_lifetime,
        Purpose::Grant => GRANT_MAX_LIFETIME_SECONDS,
    };
    if exp > now_s + max + LEEWAY_SECONDS {
        return Err(format!("The {what}'s exp is more than {max} seconds ahead"));
    }
    let iat = number(&claims.iat);
    if purpose == Purpose::Grant && iat.is_none() {
        return Err("The assertion has no iat".into());
    }
    if [iat, number(&claims.nbf)]
        .into_iter()
        .flatten()
        .any(|t| t > now_s + LEEWAY_SECONDS)
    {
        return Err(format!("The {what}'s iat or nbf is in the future"));
    }
    let jti = match (&claims.jti, purpose) {
        (None, Purpose::ClientAuth) => return Err("The client assertion has no jti".into()),
        (None, Purpose::Grant) => None,
        (Some(Value::String(j)), _) if !j.is_empty() && j.len() <= MAX_JTI_LEN => Some(j.clone()),
        (Some(_), _) => {
            return Err(format!(
                "The {what}'s jti must be a string of 1 to {MAX_JTI_LEN} characters"
            ));
        }
    };
    let scope = match &claims.scope {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err("The assertion's scope claim must be a space-separated string".into());
        }
    };
    let remember_until = DateTime::from_timestamp(exp + LEEWAY_SECONDS, 0).unwrap_or(now);
    Ok((
        Verified { subject, scope },
        jti.map(|j| (j, remember_until)),
    ))
}

/// JWKS fetched from applications' `jwks_uri`, cached per URI.
pub struct RemoteKeys {
    http: reqwest::Client,
    cache: moka::future::Cache<String, Arc<KeySet>>,
    /// URIs fetched again for an unknown `kid` in the last `REFETCH_INTERVAL`.
    refetched: moka::sync::Cache<String, ()>,
    /// URIs whose fetch failed in the last `REFETCH_INTERVAL`.
    failed: moka::sync::Cache<String, ()>,
}

impl std::fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("cached", &self.cache.entry_count())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("fetched less than {REFETCH_INTERVAL:?} ago and failed")]
    Recent,
    #[error("request failed: {0}")]
    Http(String),
    #[error("answered {0}")]
    Status(u16),
    #[error("larger than {} bytes", client_keys::MAX_JWKS_BYTES)]
    TooLarge,
    #[error("not a usable JWKS: {0}")]
    Keys(#[from] client_keys::KeysError),
}

impl RemoteKeys {
    pub fn new() -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .connect_timeout(Duration::from_secs(2))
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("auth-server/", env!("CARGO_PKG_VERSION")))
                .build()?,
            cache: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(JWKS_CACHE_TTL)
                .build(),
            refetched: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(REFETCH_INTERVAL)
                .build(),
            failed: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(REFETCH_INTERVAL)
                .build(),
        })
    }

    /// The keys at `uri`: cached, or fetched (one fetch at a time per URI; a URI that failed
    /// is not fetched again for `REFETCH_INTERVAL`).
    pub async fn get(&self, uri: &str) -> Result<Arc<KeySet>, Arc<FetchError>> {
        if let Some(set) = self.cache.get(uri).await {
            return Ok(set);
        }
        self.cache
            .try_get_with(uri.to_owned(), self.fetch(uri, true))
            .await
    }

    /// Fetches `uri` again because an assertion named a `kid` it lacked: at most once per
    /// `REFETCH_INTERVAL`, so a stream of made-up `kid`s can't turn into a stream of fetches.
    pub async fn refetch(&self, uri: &str) -> Option<Arc<KeySet>> {
        let entry = self.refetched.entry(uri.to_owned()).or_insert(());
        if !entry.is_fresh() {
            return None;
        }
        self.cache.invalidate(uri).await;
        self.cache
            .try_get_with(uri.to_owned(), self.fetch(uri, false))
            .await
            .ok()
    }

    async fn fetch(&self, uri: &str, gated: bool) -> Result<Arc<KeySet>, FetchError> {
        if gated && self.failed.contains_key(uri) {
            return Err(FetchError::Recent);
        }
        let result = self.fetch_now(uri).await;
        if let Err(e) = &result {
            self.failed.insert(uri.to_owned(), ());
            tracing::warn!(jwks_uri = uri, error = %e, "could not fetch an application's JWKS");
        }
        result
    }

    async fn fetch_now(&self, uri: &str) -> Result<Arc<KeySet>, FetchError> {
        let http = |e: reqwest::Error| {
            FetchError::Http(if e.is_timeout() {
                "timed out".into()
            } else {
                e.to_string()
            })
        };
        let mut resp = self.http.get(uri).send().await.map_err(http)?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status(resp.status().as_u16()));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > client_keys::MAX_JWKS_BYTES as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(http)? {
            if body.len() + chunk.len() > client_keys::MAX_JWKS_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(body)
            .map_err(|_| FetchError::Keys(client_keys::KeysError::NotJwks))?;
        Ok(Arc::new(client_keys::parse_key_set(&text)?))
    }
}

/// Inline JWKS parsed into verifiers, per client_id. Parsing builds an OpenSSL key per JWK,
/// which cost as much as the signature check itself; an entry is used only while the stored
/// text still hashes the same, so a key change is picked up by the next assertion.
pub struct InlineKeys {
    cache: moka::sync::Cache<String, (u64, Arc<KeySet>)>,
}

impl std::fmt::Debug for InlineKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InlineKeys")
    }
}

impl Default for InlineKeys {
    fn default() -> Self {
        Self {
            // ~2 KB a key set: a few MiB at most, kept while in use.
            cache: moka::sync::Cache::builder()
                .max_capacity(2_000)
                .time_to_idle(Duration::from_secs(600))
                .build(),
        }
    }
}

impl InlineKeys {
    /// `client_id`'s key set parsed from `text`, the JWKS stored for it.
    pub fn get(&self, client_id: &str, text: &str) -> Result<Arc<KeySet>, client_keys::KeysError> {
        let digest = {
            let mut h = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(text, &mut h);
            std::hash::Hasher::finish(&h)
        };
        if let Some((seen, set)) = self.cache.get(client_id)
            && seen == digest
        {
            return Ok(set);
        }
        let set = Arc::new(client_keys::parse_key_set(text)?);
        self.cache
            .insert(client_id.to_owned(), (digest, Arc::clone(&set)));
        Ok(set)
    }
}

/// What checking assertions takes: the fetched keys, the dummy keys and the rules. Built once.
#[derive(Debug)]
pub struct AssertionVerifier {
    pub remote: RemoteKeys,
    pub inline: InlineKeys,
    pub dummy: DummyKeys,
    pub rules: Rules,
}

/// Where an application's keys are, if it has any.
enum Keys<'a> {
    Inline(&'a str),
    Uri(&'a str),
}

fn keys_of(app: &Application) -> Option<Keys<'_>> {
    match (&app.jwks, &app.jwks_uri) {
        (Some(jwks), _) => Some(Keys::Inline(jwks)),
        (None, Some(uri)) => Some(Keys::Uri(uri)),
        (None, None) => None,
    }
}

impl AssertionVerifier {
    /// Checks `jwt` as `purpose` for `app` (None: no such client, or one that may not use an
    /// assertion here), at `now`; records its `jti`.
    pub async fn verify(
        &self,
        db: &Db,
        app: Option<&Application>,
        jwt: &str,
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<Verified, AssertionError> {
        let (header, payload) = client_keys::peek(jwt).ok_or(AssertionError::Invalid)?;
        let keys = app.and_then(keys_of);
        let (Some(app), Some(keys)) = (app, keys) else {
            self.dummy.verify(jwt, &header);
            return Err(AssertionError::Invalid);
        };
        self.check_signature(jwt, &header, app.client_id.as_str(), keys)
            .await?;
        let claims: RawClaims =
            serde_json::from_value(payload).map_err(|_| AssertionError::Invalid)?;
        let (verified, jti) =
            check_claims(&claims, app.client_id.as_str(), purpose, &self.rules, now)
                .map_err(AssertionError::Claims)?;
        if let Some((jti, until)) = jti
            && !assertion_jtis::first_use(db, app.client_id.as_str(), &jti, until, now).await?
        {
            return Err(AssertionError::Claims(
                "The assertion was already used (its jti was seen before)".into(),
            ));
        }
        Ok(verified)
    }

    async fn check_signature(
        &self,
        jwt: &str,
        header: &AssertionHeader,
        client_id: &str,
        keys: Keys<'_>,
    ) -> Result<(), AssertionError> {
        match keys {
            Keys::Inline(text) => {
                let set = self.inline.get(client_id, text).map_err(|e| {
                    tracing::error!(error = %e, "a stored JWKS does not parse");
                    AssertionError::Invalid
                })?;
                set.verify(jwt, header).map_err(|_| AssertionError::Invalid)
            }
            Keys::Uri(uri) => {
                let set = match self.remote.get(uri).await {
                    Ok(set) => set,
                    Err(_) => {
                        self.dummy.verify(jwt, header);
                        return Err(AssertionError::Invalid);
                    }
                };
                match set.verify(jwt, header) {
                    Ok(()) => Ok(()),
                    // The integrator may have rotated: a new kid is looked for once.
                    Err(SignatureError::UnknownKid) => match self.remote.refetch(uri).await {
                        Some(set) => set.verify(jwt, header).map_err(|_| AssertionError::Invalid),
                        None => Err(AssertionError::Invalid),
                    },
                    Err(SignatureError::Invalid) => Err(AssertionError::Invalid),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> Rules {
        Rules {
            audiences: vec![
                "https://auth.example/oauth/token".into(),
                "https://auth.example".into(),
            ],
            client_max_lifetime: 300,
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn claims(v: Value) -> RawClaims {
        serde_json::from_value(v).unwrap()
    }

    /// A signed assertion whose numbers are absurd is refused with its message, never a panic
    /// (debug builds check overflow) nor a wrapped "expired".
    #[test]
    fn huge_and_negative_times_are_refused_by_their_rule() {
        for (exp, want) in [
            (json!(1e300), "more than 300 seconds ahead"),
            (json!(i64::MAX), "more than 300 seconds ahead"),
            (json!(-1e300), "expired"),
        ] {
            let mut c = good();
            c["exp"] = exp.clone();
            let err = check_claims(&claims(c), "cid", Purpose::ClientAuth, &rules(), t0())
                .err()
                .unwrap_or_default();
            assert!(err.contains(want), "exp {exp}: {err:?}");
        }
    }

    fn good() -> Value {
        json!({"iss":"cid","sub":"cid","aud":"https://auth.example/oauth/token",
               "exp":1_800_000_060,"iat":1_800_000_000,"jti":"j1"})
    }

    #[test]
    fn client_assertion_rules_each_with_its_message() {
        let ok = check_claims(&claims(good()), "cid", Purpose::ClientAuth, &rules(), t0());
        let (_, jti) = ok.unwrap();
        assert_eq!(jti.unwrap().0, "j1");
        let cases: Vec<(Value, &str)> = vec![
            (json!({"iss":"other"}), "iss must be"),
            (
                json!({"sub":"someone@example.com"}),
                "sub must be the client_id",
            ),
            (json!({"aud":"https://elsewhere"}), "aud must contain"),
            (json!({"aud":["https://a","https://b"]}), "aud must contain"),
            (json!({"exp":null}), "no exp"),
            (json!({"exp":1_799_999_960}), "expired"),
            (json!({"exp":1_800_000_400}), "more than 300 seconds"),
            (json!({"iat":1_800_000_100}), "in the future"),
            (json!({"nbf":1_800_000_100}), "in the future"),
            (json!({"jti":null}), "no jti"),
            (json!({"jti":""}), "jti must be"),
            (json!({"jti":"x".repeat(256)}), "jti must be"),
        ];
        for (patch, want) in cases {
            let mut v = good();
            for (k, val) in patch.as_object().unwrap() {
                if val.is_null() {
                    v.as_object_mut().unwrap().remove(k);
                } else {
                    v[k] = val.clone();
                }
            }
            let err =
                check_claims(&claims(v), "cid", Purpose::ClientAuth, &rules(), t0()).unwrap_err();
            assert!(err.contains(want), "{err:?} should say {want:?}");
        }
        let mut many = good();
        many["aud"] = json!(["https://x", "https://auth.example"]);
        assert!(check_claims(&claims(many), "cid", Purpose::ClientAuth, &rules(), t0()).is_ok());
    }

    #[test]
    fn grant_rules_take_a_user_an_hour_and_an_optional_jti() {
        let mut v = good();
        v["sub"] = "ada@example.com".into();
        v["exp"] = json!(1_800_003_600);
        v.as_object_mut().unwrap().remove("jti");
        v["scope"] = "rooms:list rooms:create".into();
        let (verified, jti) =
            check_claims(&claims(v.clone()), "cid", Purpose::Grant, &rules(), t0()).unwrap();
        assert_eq!(verified.subject, "ada@example.com");
        assert_eq!(verified.scope.as_deref(), Some("rooms:list rooms:create"));
        assert!(jti.is_none());
        let mut long = v.clone();
        long["exp"] = json!(1_800_003_700);
        assert!(
            check_claims(&claims(long), "cid", Purpose::Grant, &rules(), t0())
                .unwrap_err()
                .contains("3600 seconds")
        );
        let mut no_iat = v.clone();
        no_iat.as_object_mut().unwrap().remove("iat");
        assert!(
            check_claims(&claims(no_iat), "cid", Purpose::Grant, &rules(), t0())
                .unwrap_err()
                .contains("no iat")
        );
        let mut no_sub = v;
        no_sub.as_object_mut().unwrap().remove("sub");
        assert!(
            check_claims(&claims(no_sub), "cid", Purpose::Grant, &rules(), t0())
                .unwrap_err()
                .contains("sub must be the e-mail")
        );
    }
}
