//! Verifying an access token's JWS: the header rules and signature check both the rooms API and
//! the auth-server's introspection apply, before the claim checks of `claims::validate`.
//!
//! Verifiers are built here too (from a JWK or the shared HS256 secret), so the rooms API never
//! names josekit; only the auth-server's key generation and signing (`domain/signing.rs`) do.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
pub use josekit::jws::JwsVerifier;
use josekit::jws::{ES256, EdDSA, HS256, RS256};
use serde::Deserialize;

use crate::alg::SigningAlg;
use crate::claims::AccessTokenClaims;

/// Why a token was refused. The text is our own, fixed and ASCII: it goes into
/// `WWW-Authenticate`'s `error_description`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("The access token is malformed")]
    Malformed,
    #[error("The access token uses an algorithm that is not accepted")]
    Algorithm,
    #[error("The access token has the wrong type")]
    Type,
    #[error("The access token was signed by an unknown key")]
    UnknownKey,
    #[error("The access token signature is invalid")]
    Signature,
    #[error("The access token expired")]
    Expired,
    #[error("The access token is not yet valid")]
    NotYetValid,
    #[error("The access token has the wrong issuer")]
    Issuer,
    #[error("The access token is not meant for this audience")]
    Audience,
    #[error("The access token names no subject or client")]
    Subject,
    #[error("The access token is not a delegated token")]
    NotDelegated,
    #[error("The access token was revoked")]
    Revoked,
    #[error("The access token is not active")]
    Inactive,
}

impl From<crate::claims::ClaimError> for TokenRejection {
    fn from(e: crate::claims::ClaimError) -> Self {
        use crate::claims::ClaimError as C;
        match e {
            C::Expired => Self::Expired,
            C::NotYetValid => Self::NotYetValid,
            C::Issuer => Self::Issuer,
            C::Audience => Self::Audience,
            C::Subject => Self::Subject,
            C::NotDelegated => Self::NotDelegated,
        }
    }
}

/// The protected header fields we look at before choosing a key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub typ: Option<String>,
}

/// Which `typ` values are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypPolicy {
    /// `at+jwt` or `application/at+jwt` only (asymmetric modes).
    AccessTokenOnly,
    /// Also `JWT` or no `typ` (HS256 tokens of the upstream implementation).
    AllowPlainJwt,
}

/// Decodes the first segment of a compact JWS. Strict base64url (no padding), at most 8 KiB.
pub fn decode_header(token: &str) -> Result<Header, TokenRejection> {
    if token.len() > 16 * 1024 || token.split('.').count() != 3 {
        return Err(TokenRejection::Malformed);
    }
    let first = token.split('.').next().ok_or(TokenRejection::Malformed)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(first)
        .map_err(|_| TokenRejection::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenRejection::Malformed)
}

pub fn check_typ(header: &Header, policy: TypPolicy) -> Result<(), TokenRejection> {
    let ok = match header.typ.as_deref() {
        Some(t)
            if t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt") =>
        {
            true
        }
        Some(t) if t.eq_ignore_ascii_case("jwt") => policy == TypPolicy::AllowPlainJwt,
        None => policy == TypPolicy::AllowPlainJwt,
        Some(_) => false,
    };
    if ok {
        Ok(())
    } else {
        Err(TokenRejection::Type)
    }
}

/// The verifier for one published key: `alg` is the JWK's own `alg`. A symmetric key in a
/// public JWKS, or anything that does not parse as a public key of its algorithm, is `None`.
pub fn verifier_from_jwk(
    alg: &str,
    key: &serde_json::Value,
) -> Option<(SigningAlg, Arc<dyn JwsVerifier>)> {
    let jwk = Jwk::from_map(key.as_object()?.clone()).ok()?;
    let alg: SigningAlg = alg.parse().ok()?;
    let verifier: Arc<dyn JwsVerifier> = match alg {
        SigningAlg::EdDSA => Arc::new(EdDSA.verifier_from_jwk(&jwk).ok()?),
        SigningAlg::ES256 => Arc::new(ES256.verifier_from_jwk(&jwk).ok()?),
        SigningAlg::RS256 => Arc::new(RS256.verifier_from_jwk(&jwk).ok()?),
        // A symmetric key in a public JWKS is never trusted.
        SigningAlg::HS256 => return None,
    };
    Some((alg, verifier))
}

/// The verifier for tokens signed with the shared HS256 secret.
pub fn hs256_verifier(secret: &[u8]) -> Result<Arc<dyn JwsVerifier>, josekit::JoseError> {
    Ok(Arc::new(HS256.verifier_from_bytes(secret)?))
}

/// Checks that the header names `expected` and that `verifier` (built for that algorithm)
/// accepts the signature; returns the claims, not yet validated.
pub fn verify_signature(
    token: &str,
    header: &Header,
    expected: SigningAlg,
    verifier: &dyn JwsVerifier,
) -> Result<AccessTokenClaims, TokenRejection> {
    if header.alg != expected.as_str() {
        return Err(TokenRejection::Algorithm);
    }
    // Each segment must be canonical base64url: josekit is lenient about padding.
    if token
        .split('.')
        .any(|seg| seg.contains('=') || URL_SAFE_NO_PAD.decode(seg).is_err())
    {
        return Err(TokenRejection::Malformed);
    }
    let (payload, _) = josekit::jws::deserialize_compact(token, verifier)
        .map_err(|_| TokenRejection::Signature)?;
    serde_json::from_slice(&payload).map_err(|_| TokenRejection::Subject)
}

#[cfg(test)]
mod tests {
    use super::*;
    use josekit::jws::{HS256, JwsHeader};

    fn sign(header_typ: Option<&str>, payload: &serde_json::Value, secret: &[u8]) -> String {
        let mut h = JwsHeader::new();
        if let Some(t) = header_typ {
            h.set_token_type(t);
        }
        let signer = HS256.signer_from_bytes(secret).unwrap();
        josekit::jws::serialize_compact(&serde_json::to_vec(payload).unwrap(), &h, &signer).unwrap()
    }

    fn payload() -> serde_json::Value {
        serde_json::json!({"iss": "i", "aud": "a", "sub": "u", "client_id": "c", "delegated": true, "exp": 10})
    }

    #[test]
    fn verifies_and_refuses() {
        let secret = [7u8; 32];
        let token = sign(Some("at+jwt"), &payload(), &secret);
        let header = decode_header(&token).unwrap();
        check_typ(&header, TypPolicy::AccessTokenOnly).unwrap();
        let verifier = HS256.verifier_from_bytes(secret).unwrap();
        let claims = verify_signature(&token, &header, SigningAlg::HS256, &verifier).unwrap();
        assert_eq!(claims.client_id, "c");
        assert_eq!(
            verify_signature(&token, &header, SigningAlg::EdDSA, &verifier),
            Err(TokenRejection::Algorithm)
        );
        let other = HS256.verifier_from_bytes([8u8; 32]).unwrap();
        assert_eq!(
            verify_signature(&token, &header, SigningAlg::HS256, &other),
            Err(TokenRejection::Signature)
        );
        let plain = sign(None, &payload(), &secret);
        let h = decode_header(&plain).unwrap();
        assert_eq!(
            check_typ(&h, TypPolicy::AccessTokenOnly),
            Err(TokenRejection::Type)
        );
        assert_eq!(check_typ(&h, TypPolicy::AllowPlainJwt), Ok(()));
        assert_eq!(decode_header("a.b"), Err(TokenRejection::Malformed));
        assert_eq!(decode_header("!!.b.c"), Err(TokenRejection::Malformed));
        let padded = token.replacen('.', "=.", 1);
        assert!(
            decode_header(&padded).is_err()
                || verify_signature(&padded, &header, SigningAlg::HS256, &verifier).is_err()
        );
    }
}

/// Edges that mutation testing found unproven (mutants/RESULTS.md).
#[cfg(test)]
mod edges {
    use super::*;
    use josekit::jws::{EdDSA, JwsHeader};

    fn header(typ: Option<&str>) -> Header {
        Header {
            alg: "EdDSA".into(),
            kid: None,
            typ: typ.map(str::to_owned),
        }
    }

    #[test]
    fn typ_rules_for_each_policy() {
        use TypPolicy::{AccessTokenOnly as Strict, AllowPlainJwt as Plain};
        for (typ, strict, plain) in [
            (Some("at+jwt"), true, true),
            (Some("AT+JWT"), true, true),
            (Some("application/at+jwt"), true, true),
            (Some("JWT"), false, true),
            (Some("jwt"), false, true),
            (None, false, true),
            (Some("dpop+jwt"), false, false),
            (Some("at+jwt2"), false, false),
        ] {
            assert_eq!(
                check_typ(&header(typ), Strict).is_ok(),
                strict,
                "{typ:?} strict"
            );
            assert_eq!(
                check_typ(&header(typ), Plain).is_ok(),
                plain,
                "{typ:?} plain"
            );
        }
    }

    fn signed_of_len(len: usize) -> String {
        // A valid header, then a payload segment of filler, then a signature segment.
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA"}"#);
        let fill = len - h.len() - 2 - 4;
        format!("{h}.{}.AAAA", "A".repeat(fill))
    }

    #[test]
    fn the_header_is_read_up_to_16_kib_and_needs_three_segments() {
        assert!(decode_header(&signed_of_len(2_000)).is_ok());
        assert!(decode_header(&signed_of_len(16 * 1024)).is_ok());
        assert_eq!(
            decode_header(&signed_of_len(16 * 1024 + 1)),
            Err(TokenRejection::Malformed)
        );
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA"}"#);
        for parts in [
            format!("{h}.AAAA"),
            format!("{h}.AAAA.AAAA.AAAA"),
            h.clone(),
        ] {
            assert_eq!(
                decode_header(&parts),
                Err(TokenRejection::Malformed),
                "{parts}"
            );
        }
    }

    #[test]
    fn a_published_public_key_gives_a_verifier_of_its_algorithm() {
        let pair = EdDSA
            .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
            .unwrap();
        let public: serde_json::Value =
            serde_json::to_value(pair.to_jwk_public_key().as_ref()).unwrap();
        let (alg, verifier) = verifier_from_jwk("EdDSA", &public).unwrap();
        assert_eq!(alg, SigningAlg::EdDSA);
        let signer = EdDSA.signer_from_jwk(&pair.to_jwk_private_key()).unwrap();
        let mut h = JwsHeader::new();
        h.set_algorithm("EdDSA");
        h.set_token_type("at+jwt");
        let payload = serde_json::json!({"iss": "i", "aud": "a", "sub": "u", "client_id": "c",
                                         "delegated": true, "exp": 10});
        let token =
            josekit::jws::serialize_compact(&serde_json::to_vec(&payload).unwrap(), &h, &signer)
                .unwrap();
        let header = decode_header(&token).unwrap();
        assert!(verify_signature(&token, &header, SigningAlg::EdDSA, verifier.as_ref()).is_ok());
        // The same key named as HS256: never trusted.
        assert!(verifier_from_jwk("HS256", &public).is_none());
    }
}
