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
use crate::model::Application;
use crate::model::StoreError;
use crate::store::{Db, assertion_jtis};

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
    /// The JWT-bearer grant: `sub` is the user's e-mail, `iat` required; without a `jti` the
    /// assertion is remembered by the digest of what its signature covers.
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
    /// What a client assertion's `aud` may be: the issuer and the URLs of the endpoints that
    /// take client assertions.
    pub audiences: Vec<String>,
    /// What a grant's `aud` may be: the issuer and the token endpoint's URLs.
    pub grant_audiences: Vec<String>,
    /// `CLIENT_ASSERTION_MAX_LIFETIME_SECONDS`.
    pub client_max_lifetime: i64,
}

/// A registered time claim (RFC 7519 §2 NumericDate): absent, or a number. Anything else — a
/// string, an object — is refused, never skipped: a string `nbf` far ahead was once accepted as
/// if it were absent (the jsonwebtoken CVE-2026-25537 pattern).
fn time_claim(v: &Option<Value>, what: &str, name: &str) -> Result<Option<i64>, String> {
    match v {
        None => Ok(None),
        // A NumericDate may carry a fraction; whole seconds are compared.
        Some(Value::Number(n)) => Ok(n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|f| f.floor() as i64)),
        Some(_) => Err(format!("The {what}'s {name} must be a number")),
    }
}

fn text(v: &Option<Value>) -> Option<&str> {
    v.as_ref()?.as_str()
}

/// A `jti` to record and the instant after which it may be forgotten.
type Remember = Option<(String, DateTime<Utc>)>;

/// What a grant without a `jti` is remembered by: the digest of its signing input (header and
/// payload as sent). Only the key's holder can make another assertion with the same claims, so
/// the same assertion can't be used twice; the signature is left out because ECDSA's can be
/// rewritten by anyone without changing what it signs.
fn signing_input_digest(jwt: &str) -> String {
    let input = jwt.rsplit_once('.').map_or(jwt, |(input, _)| input);
    let digest = openssl::sha::sha256(input.as_bytes());
    let mut out = String::from("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Checks the claims of an assertion whose signature checked out, for `client_id`, at `now`.
/// Returns what it says and until when its `jti` (or, for a grant without one, `digest`) must
/// be remembered.
fn check_claims(
    claims: &RawClaims,
    client_id: &str,
    purpose: Purpose,
    rules: &Rules,
    now: DateTime<Utc>,
    digest: impl FnOnce() -> String,
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
    // One audience, ours: an array that also names someone else is an assertion meant for
    // them too, which they could replay here (the 2025 audience-injection class).
    let audience = match &claims.aud {
        Some(Value::String(a)) => Some(a.as_str()),
        Some(Value::Array(one)) if one.len() == 1 => one[0].as_str(),
        _ => None,
    };
    let ours = match purpose {
        Purpose::ClientAuth => &rules.audiences,
        Purpose::Grant => &rules.grant_audiences,
    };
    if !audience.is_some_and(|a| ours.iter().any(|o| o == a)) {
        return Err(format!(
            "The {what}'s aud must be the token endpoint URL or the issuer, alone"
        ));
    }
    let iat = time_claim(&claims.iat, what, "iat")?;
    let nbf = time_claim(&claims.nbf, what, "nbf")?;
    let exp = time_claim(&claims.exp, what, "exp")?.ok_or(format!("The {what} has no exp"))?;
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
    if purpose == Purpose::Grant && iat.is_none() {
        return Err("The assertion has no iat".into());
    }
    if [iat, nbf]
        .into_iter()
        .flatten()
        .any(|t| t > now_s + LEEWAY_SECONDS)
    {
        return Err(format!("The {what}'s iat or nbf is in the future"));
    }
    let jti = match (&claims.jti, purpose) {
        (None, Purpose::ClientAuth) => return Err("The client assertion has no jti".into()),
        (None, Purpose::Grant) => Some(digest()),
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
    allowed: Arc<super::reach::AllowedNetworks>,
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
    #[error(transparent)]
    Unreachable(#[from] super::reach::Unreachable),
    #[error("not a URL")]
    Url,
}

impl RemoteKeys {
    /// Fetches reach public addresses and `allowed` only (`reach.rs`).
    pub fn new(allowed: super::reach::AllowedNetworks) -> Result<Self, reqwest::Error> {
        let allowed = Arc::new(allowed);
        Ok(Self {
            allowed: Arc::clone(&allowed),
            http: reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .connect_timeout(Duration::from_secs(2))
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .dns_resolver(super::reach::GuardedResolver { allowed })
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
        let url = reqwest::Url::parse(uri).map_err(|_| FetchError::Url)?;
        super::reach::check_literal_host(&url, &self.allowed)?;
        let mut resp = self.http.get(url).send().await.map_err(http)?;
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
        let (verified, jti) = check_claims(
            &claims,
            app.client_id.as_str(),
            purpose,
            &self.rules,
            now,
            || signing_input_digest(jwt),
        )
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
                "https://auth.example/oauth/introspect".into(),
                "https://auth.example".into(),
            ],
            grant_audiences: vec![
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

    fn check(v: Value, purpose: Purpose) -> Result<(Verified, Remember), String> {
        check_claims(&claims(v), "cid", purpose, &rules(), t0(), || {
            "sha256:digest".into()
        })
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
            let err = check(c, Purpose::ClientAuth).err().unwrap_or_default();
            assert!(err.contains(want), "exp {exp}: {err:?}");
        }
    }

    fn good() -> Value {
        json!({"iss":"cid","sub":"cid","aud":"https://auth.example/oauth/token",
               "exp":1_800_000_060,"iat":1_800_000_000,"jti":"j1"})
    }

    #[test]
    fn client_assertion_rules_each_with_its_message() {
        let ok = check(good(), Purpose::ClientAuth);
        let (_, jti) = ok.unwrap();
        assert_eq!(jti.unwrap().0, "j1");
        let cases: Vec<(Value, &str)> = vec![
            (json!({"iss":"other"}), "iss must be"),
            (
                json!({"sub":"someone@example.com"}),
                "sub must be the client_id",
            ),
            (json!({"aud":"https://elsewhere"}), "aud must be"),
            (json!({"aud":["https://a","https://b"]}), "aud must be"),
            // Ours beside a foreign audience: meant for them too.
            (
                json!({"aud":["https://x","https://auth.example"]}),
                "aud must be",
            ),
            (
                json!({"aud":["https://auth.example","https://auth.example"]}),
                "aud must be",
            ),
            (json!({"aud":[]}), "aud must be"),
            // Registered time claims are numbers or absent, never skipped.
            (json!({"nbf":"9999999999"}), "nbf must be a number"),
            (json!({"iat":{"t":1}}), "iat must be a number"),
            (json!({"exp":"1800000060"}), "exp must be a number"),
            (json!({"iat":true}), "iat must be a number"),
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
            let err = check(v, Purpose::ClientAuth).unwrap_err();
            assert!(err.contains(want), "{err:?} should say {want:?}");
        }
        for aud in [
            json!(["https://auth.example"]),
            json!("https://auth.example"),
        ] {
            let mut one = good();
            one["aud"] = aud;
            assert!(check(one, Purpose::ClientAuth).is_ok());
        }
    }

    #[test]
    fn grant_rules_take_a_user_an_hour_and_a_jti_or_their_digest() {
        let mut v = good();
        v["sub"] = "ada@example.com".into();
        v["exp"] = json!(1_800_003_600);
        v.as_object_mut().unwrap().remove("jti");
        v["scope"] = "rooms:list rooms:create".into();
        let (verified, jti) = check(v.clone(), Purpose::Grant).unwrap();
        assert_eq!(verified.subject, "ada@example.com");
        assert_eq!(verified.scope.as_deref(), Some("rooms:list rooms:create"));
        // No jti: remembered by its digest, for as long as a jti would be.
        let (kept, until) = jti.unwrap();
        assert_eq!(kept, "sha256:digest");
        assert_eq!(until.timestamp(), 1_800_003_600 + LEEWAY_SECONDS);
        let mut with_jti = v.clone();
        with_jti["jti"] = "g1".into();
        assert_eq!(check(with_jti, Purpose::Grant).unwrap().1.unwrap().0, "g1");
        // The grant takes the issuer or the token endpoint only, not the other endpoints'.
        let mut introspect = v.clone();
        introspect["aud"] = "https://auth.example/oauth/introspect".into();
        assert!(
            check(introspect, Purpose::Grant)
                .unwrap_err()
                .contains("aud must be")
        );
        let mut string_iat = v.clone();
        string_iat["iat"] = "1800000000".into();
        assert!(
            check(string_iat, Purpose::Grant)
                .unwrap_err()
                .contains("iat must be a number")
        );
        let mut long = v.clone();
        long["exp"] = json!(1_800_003_700);
        assert!(
            check(long, Purpose::Grant)
                .unwrap_err()
                .contains("3600 seconds")
        );
        let mut no_iat = v.clone();
        no_iat.as_object_mut().unwrap().remove("iat");
        assert!(
            check(no_iat, Purpose::Grant)
                .unwrap_err()
                .contains("no iat")
        );
        let mut no_sub = v;
        no_sub.as_object_mut().unwrap().remove("sub");
        assert!(
            check(no_sub, Purpose::Grant)
                .unwrap_err()
                .contains("sub must be the e-mail")
        );
    }
}

#[cfg(test)]
mod digest_tests {
    use super::signing_input_digest;

    /// The digest covers header and payload, not the signature: a rewritten signature (ECDSA's
    /// (r, n - s)) is the same assertion; another payload is not.
    #[test]
    fn the_digest_ignores_the_signature_only() {
        assert_eq!(
            signing_input_digest("h.p.s1"),
            signing_input_digest("h.p.s2")
        );
        assert_ne!(
            signing_input_digest("h.p.s1"),
            signing_input_digest("h.q.s1")
        );
        assert_ne!(
            signing_input_digest("h.p.s1"),
            signing_input_digest("g.p.s1")
        );
        assert_eq!(signing_input_digest("h.p.s").len(), "sha256:".len() + 64);
    }
}
