//! The claim rules of an assertion whose signature checked out (RFC 7523 §3), for client
//! authentication and for the grant, and what each refusal tells the caller.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::{LEEWAY_SECONDS, MAX_EXP_AHEAD_SECONDS, MAX_JTI_LEN, Purpose, Verified};

/// The claims read from an assertion (before its signature is trusted, only `iss`).
#[derive(Debug, Default, Deserialize)]
pub(super) struct RawClaims {
    iss: Option<Value>,
    sub: Option<Value>,
    aud: Option<Value>,
    exp: Option<Value>,
    iat: Option<Value>,
    nbf: Option<Value>,
    jti: Option<Value>,
    scope: Option<Value>,
}

/// Which rule an assertion broke. Only a caller whose signature checked out (it holds the key)
/// is told, as the `error_description` of `invalid_client` (client authentication) or
/// `invalid_grant` (the grant); `error/mod.rs` decides which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssertionRejection {
    /// Not a JWT signed by one of the application's keys (or no such application).
    #[error("The assertion is invalid")]
    Invalid,
    #[error("The {0}'s iss must be the client_id")]
    Issuer(Purpose),
    #[error("The client assertion's sub must be the client_id")]
    ClientSubject,
    #[error("The assertion's sub must be the e-mail of the user to act for")]
    NoUser,
    /// The grant's `sub` is there but is not an e-mail address.
    #[error("The assertion's sub must be the e-mail address of the user to act for")]
    UserNotEmail,
    #[error("The {0}'s aud must be {1}, alone")]
    Audience(Purpose, AudienceRule),
    #[error("The {0}'s {1} must be a number")]
    TimeNotNumber(Purpose, &'static str),
    #[error("The {0} has no exp")]
    NoExp(Purpose),
    #[error("The {0} expired")]
    Expired(Purpose),
    #[error("The {purpose}'s exp is more than {max} seconds ahead")]
    TooLong { purpose: Purpose, max: i64 },
    /// No `iat` to bound its use, so `exp` must.
    #[error("The {purpose} has no iat and its exp is more than {max} seconds ahead")]
    TooLongWithoutIat { purpose: Purpose, max: i64 },
    #[error("The {purpose}'s iat is more than {max} seconds old")]
    TooOld { purpose: Purpose, max: i64 },
    #[error("The {0}'s iat or nbf is in the future")]
    Future(Purpose),
    #[error("The client assertion has no jti")]
    NoJti,
    #[error("The {0}'s jti must be a string of 1 to {max} characters", max = MAX_JTI_LEN)]
    BadJti(Purpose),
    #[error("The assertion's scope claim must be a space-separated string")]
    BadScope,
    #[error("The assertion was already used (its jti was seen before)")]
    Replayed,
}

/// What an assertion's `aud` may name (`CLIENT_ASSERTION_AUDIENCE`), for client
/// authentication and the grant alike.
///
/// draft-ietf-oauth-rfc7523bis asks for the issuer alone: an audience that is some endpoint's
/// URL is what let one server replay, at another, an assertion a client made for it
/// (CVE-2025-27370/27371, the audience-injection class). Libraries still sign for the token
/// endpoint URL (RFC 7523 §3 allows it; authlib and google-auth do), so that stays accepted
/// unless an operator asks for the strict rule. No other endpoint's URL is accepted: a client
/// that authenticates at the introspection or revocation endpoint names the issuer or the
/// token endpoint too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AudienceRule {
    /// The issuer, or the token endpoint URL (either of its paths).
    #[default]
    IssuerOrTokenEndpoint,
    /// The issuer only.
    Issuer,
}

impl AudienceRule {
    /// The values an `aud` may take on a server whose issuer is `issuer`.
    pub fn audiences(self, issuer: &str) -> Vec<String> {
        match self {
            AudienceRule::Issuer => vec![issuer.to_owned()],
            AudienceRule::IssuerOrTokenEndpoint => vec![
                issuer.to_owned(),
                format!("{issuer}/oauth/token"),
                format!("{issuer}/external-api/v1.0/application/token"),
            ],
        }
    }
}

impl std::str::FromStr for AudienceRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "issuer-or-token-endpoint" => Ok(AudienceRule::IssuerOrTokenEndpoint),
            "issuer" => Ok(AudienceRule::Issuer),
            _ => Err(format!(
                "{s:?} is not one of issuer-or-token-endpoint, issuer"
            )),
        }
    }
}

impl std::fmt::Display for AudienceRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AudienceRule::IssuerOrTokenEndpoint => "the token endpoint URL or the issuer",
            AudienceRule::Issuer => "the issuer",
        })
    }
}

/// The rules for `purpose`'s claims.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Which audiences are accepted, for the refusal's message.
    pub audience_rule: AudienceRule,
    /// What an assertion's `aud` may be: `audience_rule.audiences(issuer)`.
    pub audiences: Vec<String>,
    /// `CLIENT_ASSERTION_MAX_AGE_SECONDS`: how long after its `iat` an assertion is accepted
    /// (or, without `iat`, how far ahead its `exp` may be).
    pub max_age: i64,
}

/// A registered time claim (RFC 7519 §2 NumericDate): absent, or a number. Anything else — a
/// string, an object — is refused, never skipped: a string `nbf` far ahead was once accepted as
/// if it were absent (the jsonwebtoken CVE-2026-25537 pattern).
fn time_claim(
    v: &Option<Value>,
    purpose: Purpose,
    name: &'static str,
) -> Result<Option<i64>, AssertionRejection> {
    match v {
        None => Ok(None),
        // A NumericDate may carry a fraction; whole seconds are compared.
        Some(Value::Number(n)) => Ok(n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|f| f.floor() as i64)),
        Some(_) => Err(AssertionRejection::TimeNotNumber(purpose, name)),
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
pub(super) fn signing_input_digest(jwt: &str) -> String {
    let input = jwt.rsplit_once('.').map_or(jwt, |(input, _)| input);
    let digest = server_kit::digest::sha256(input.as_bytes());
    let mut out = String::from("sha256:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// How long an assertion may be used, which is how long its `jti` must be remembered (RFC 7523
/// §3 lets a server bound it by `exp` or by an `iat` "unreasonably far in the past"), the same
/// rule for client authentication and the grant:
/// - with `iat`: until `iat` + `max_age` (+ leeway), or `exp` if sooner; `exp` may then be up
///   to a day ahead (libraries sign for an hour), since past the age the assertion is refused
///   on its `iat` whatever its `exp`;
/// - without `iat`: `exp` must be within `max_age` (+ leeway) of now.
///
/// So the replay table never holds an entry longer than `max_age` + leeway, however far ahead
/// an `exp` is (the Keycloak CVE-2025-2559 class: far-future assertions filling it).
fn used_until(
    iat: Option<i64>,
    exp: i64,
    purpose: Purpose,
    max_age: i64,
    now: i64,
) -> Result<i64, AssertionRejection> {
    use AssertionRejection as R;
    let exp_end = exp.saturating_add(LEEWAY_SECONDS);
    match iat {
        Some(iat) => {
            let age_end = iat.saturating_add(max_age).saturating_add(LEEWAY_SECONDS);
            if age_end <= now {
                return Err(R::TooOld {
                    purpose,
                    max: max_age,
                });
            }
            if exp > now.saturating_add(MAX_EXP_AHEAD_SECONDS + LEEWAY_SECONDS) {
                return Err(R::TooLong {
                    purpose,
                    max: MAX_EXP_AHEAD_SECONDS,
                });
            }
            Ok(exp_end.min(age_end))
        }
        None if exp > now.saturating_add(max_age + LEEWAY_SECONDS) => Err(R::TooLongWithoutIat {
            purpose,
            max: max_age,
        }),
        None => Ok(exp_end),
    }
}

/// Checks the claims of an assertion whose signature checked out, for `client_id`, at `now`.
/// Returns what it says and until when its `jti` (or, for a grant without one, `digest`) must
/// be remembered.
pub(super) fn check_claims(
    claims: &RawClaims,
    client_id: &str,
    purpose: Purpose,
    rules: &Rules,
    now: DateTime<Utc>,
    digest: impl FnOnce() -> String,
) -> Result<(Verified, Remember), AssertionRejection> {
    use AssertionRejection as R;
    let now_s = now.timestamp();
    if text(&claims.iss) != Some(client_id) {
        return Err(R::Issuer(purpose));
    }
    let subject = text(&claims.sub).filter(|s| !s.is_empty());
    let subject = match purpose {
        Purpose::ClientAuth if subject != Some(client_id) => {
            return Err(R::ClientSubject);
        }
        Purpose::Grant if subject.is_none() => {
            return Err(R::NoUser);
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
    if !audience.is_some_and(|a| rules.audiences.iter().any(|o| o == a)) {
        return Err(R::Audience(purpose, rules.audience_rule));
    }
    let iat = time_claim(&claims.iat, purpose, "iat")?;
    let nbf = time_claim(&claims.nbf, purpose, "nbf")?;
    let exp = time_claim(&claims.exp, purpose, "exp")?.ok_or(R::NoExp(purpose))?;
    if exp.saturating_add(LEEWAY_SECONDS) <= now_s {
        return Err(R::Expired(purpose));
    }
    if [iat, nbf]
        .into_iter()
        .flatten()
        .any(|t| t > now_s.saturating_add(LEEWAY_SECONDS))
    {
        return Err(R::Future(purpose));
    }
    let forget_at = used_until(iat, exp, purpose, rules.max_age, now_s)?;
    let jti = match (&claims.jti, purpose) {
        (None, Purpose::ClientAuth) => return Err(R::NoJti),
        (None, Purpose::Grant) => Some(digest()),
        (Some(Value::String(j)), _) if !j.is_empty() && j.len() <= MAX_JTI_LEN => Some(j.clone()),
        (Some(_), _) => return Err(R::BadJti(purpose)),
    };
    let scope = match &claims.scope {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            return Err(R::BadScope);
        }
    };
    let remember_until = DateTime::from_timestamp(forget_at, 0).unwrap_or(now);
    Ok((
        Verified { subject, scope },
        jti.map(|j| (j, remember_until)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> Rules {
        Rules {
            audience_rule: AudienceRule::IssuerOrTokenEndpoint,
            audiences: AudienceRule::IssuerOrTokenEndpoint.audiences("https://auth.example"),
            max_age: 300,
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
        .map_err(|rejection| rejection.to_string())
    }

    /// A signed assertion whose numbers are absurd is refused with its message, never a panic
    /// (debug builds check overflow) nor a wrapped "expired".
    #[test]
    fn huge_and_negative_times_are_refused_by_their_rule() {
        for (exp, want) in [
            (json!(1e300), "more than 86400 seconds ahead"),
            (json!(i64::MAX), "more than 86400 seconds ahead"),
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
            (
                json!({"exp":1_800_086_431}),
                "more than 86400 seconds ahead",
            ),
            (
                json!({"iat":null,"exp":1_800_000_331}),
                "has no iat and its exp is more than 300 seconds ahead",
            ),
            (
                json!({"iat":1_799_999_670}),
                "iat is more than 300 seconds old",
            ),
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

    /// By default the issuer and the token endpoint's two URLs, for both purposes, and no
    /// other endpoint's URL; with the strict rule the issuer alone, its refusal saying so.
    #[test]
    fn the_audience_is_the_issuer_or_the_token_endpoint_or_only_the_issuer_when_strict() {
        let issuer = "https://auth.example";
        let token = "https://auth.example/oauth/token";
        let upstream = "https://auth.example/external-api/v1.0/application/token";
        let with_aud = |rule: AudienceRule, aud: &str, purpose: Purpose| {
            let mut v = good();
            v["aud"] = aud.into();
            if purpose == Purpose::Grant {
                v["sub"] = "ada@example.com".into();
            }
            let rules = Rules {
                audience_rule: rule,
                audiences: rule.audiences(issuer),
                max_age: 300,
            };
            check_claims(&claims(v), "cid", purpose, &rules, t0(), || "d".into())
                .map(|_| ())
                .map_err(|r| r.to_string())
        };
        for purpose in [Purpose::ClientAuth, Purpose::Grant] {
            for aud in [issuer, token, upstream] {
                assert_eq!(
                    with_aud(AudienceRule::IssuerOrTokenEndpoint, aud, purpose),
                    Ok(())
                );
            }
            for aud in [
                "https://auth.example/oauth/introspect",
                "https://auth.example/oauth/revoke",
                "https://auth.example/",
            ] {
                let err = with_aud(AudienceRule::IssuerOrTokenEndpoint, aud, purpose);
                assert!(
                    err.as_ref()
                        .unwrap_err()
                        .ends_with("aud must be the token endpoint URL or the issuer, alone"),
                    "{aud}: {err:?}"
                );
            }
            assert_eq!(with_aud(AudienceRule::Issuer, issuer, purpose), Ok(()));
            for aud in [token, upstream] {
                let err = with_aud(AudienceRule::Issuer, aud, purpose);
                assert!(
                    err.as_ref()
                        .unwrap_err()
                        .ends_with("aud must be the issuer, alone"),
                    "{aud}: {err:?}"
                );
            }
        }
        assert_eq!("issuer".parse(), Ok(AudienceRule::Issuer));
        assert_eq!(
            "issuer-or-token-endpoint".parse(),
            Ok(AudienceRule::IssuerOrTokenEndpoint)
        );
        assert!("token".parse::<AudienceRule>().is_err());
    }

    #[test]
    fn grant_rules_take_a_user_and_a_jti_or_their_digest() {
        let mut v = good();
        v["sub"] = "ada@example.com".into();
        v["exp"] = json!(1_800_003_600);
        v.as_object_mut().unwrap().remove("jti");
        v["scope"] = "rooms:list rooms:create".into();
        let (verified, jti) = check(v.clone(), Purpose::Grant).unwrap();
        assert_eq!(verified.subject, "ada@example.com");
        assert_eq!(verified.scope.as_deref(), Some("rooms:list rooms:create"));
        // No jti: remembered by its digest, for as long as a jti would be: the hour-long
        // assertion is used only within 300 s of its iat.
        let (kept, until) = jti.unwrap();
        assert_eq!(kept, "sha256:digest");
        assert_eq!(until.timestamp(), 1_800_000_000 + 300 + LEEWAY_SECONDS);
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
        long["exp"] = json!(1_800_086_431);
        assert!(
            check(long, Purpose::Grant)
                .unwrap_err()
                .contains("86400 seconds")
        );
        // The same rule as client assertions: without iat, exp bounds the use.
        let mut no_iat = v.clone();
        no_iat.as_object_mut().unwrap().remove("iat");
        assert!(
            check(no_iat.clone(), Purpose::Grant)
                .unwrap_err()
                .contains("has no iat")
        );
        no_iat["exp"] = json!(1_800_000_060);
        assert!(check(no_iat, Purpose::Grant).is_ok());
        let mut no_sub = v;
        no_sub.as_object_mut().unwrap().remove("sub");
        assert!(
            check(no_sub, Purpose::Grant)
                .unwrap_err()
                .contains("sub must be the e-mail")
        );
    }

    /// The edges, each inclusive and one second past it refused, for both purposes: with `iat`,
    /// an `exp` up to a day ahead (+ leeway) and an `iat` up to the max age old (+ leeway);
    /// without `iat`, an `exp` up to the max age ahead (+ leeway); `iat`/`nbf` up to the leeway
    /// in the future. And the `jti` is kept until the sooner of `exp` and `iat` + max age.
    #[test]
    fn the_age_and_lifetime_edges_are_inclusive() {
        let now = 1_800_000_000;
        let with = |pairs: &[(&str, Option<i64>)], purpose: Purpose| {
            let mut c = good();
            if purpose == Purpose::Grant {
                c["sub"] = "ada@example.com".into();
            }
            for (k, v) in pairs {
                match v {
                    Some(v) => c[*k] = (*v).into(),
                    None => {
                        c.as_object_mut().unwrap().remove(*k);
                    }
                }
            }
            check(c, purpose)
        };
        for purpose in [Purpose::ClientAuth, Purpose::Grant] {
            let day = now + 86_400 + LEEWAY_SECONDS;
            assert!(with(&[("exp", Some(day))], purpose).is_ok());
            assert!(with(&[("exp", Some(day + 1))], purpose).is_err());
            let oldest = now - 300 - LEEWAY_SECONDS + 1;
            assert!(with(&[("iat", Some(oldest))], purpose).is_ok());
            let too_old = with(&[("iat", Some(oldest - 1))], purpose).unwrap_err();
            assert!(too_old.contains("300 seconds old"), "{too_old}");
            let cap = now + 300 + LEEWAY_SECONDS;
            assert!(with(&[("iat", None), ("exp", Some(cap))], purpose).is_ok());
            assert!(with(&[("iat", None), ("exp", Some(cap + 1))], purpose).is_err());
            for claim in ["iat", "nbf"] {
                assert!(with(&[(claim, Some(now + LEEWAY_SECONDS))], purpose).is_ok());
                assert!(with(&[(claim, Some(now + LEEWAY_SECONDS + 1))], purpose).is_err());
            }
            // Kept until iat + max age when exp is later, until exp when it is sooner.
            let kept = |pairs: &[(&str, Option<i64>)]| {
                with(pairs, purpose).unwrap().1.unwrap().1.timestamp()
            };
            assert_eq!(
                kept(&[("iat", Some(now - 100)), ("exp", Some(now + 3600))]),
                now - 100 + 300 + LEEWAY_SECONDS
            );
            assert_eq!(
                kept(&[("iat", Some(now)), ("exp", Some(now + 60))]),
                now + 60 + LEEWAY_SECONDS
            );
            assert_eq!(
                kept(&[("iat", None), ("exp", Some(now + 200))]),
                now + 200 + LEEWAY_SECONDS
            );
        }
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
