//! Applications' public keys (docs/spec/auth-server.md §1a): what a JWKS may hold, and checking
//! an assertion's signature against it. The only module besides `signing.rs` that names
//! josekit.
//!
//! A registered JWKS is checked whole and refused with a clear message: public keys only (a
//! private member means the integrator pasted the wrong half, and we must never store it), of
//! an accepted algorithm (EdDSA on Ed25519, ES256 on P-256, RS256 or PS256 on RSA of at least
//! 2048 bits), `use` absent or `sig`, `kid`s distinct. A JWKS fetched from a `jwks_uri` may
//! hold other keys (encryption keys, other algorithms): those are skipped, not fatal, since the
//! integrator's identity provider publishes them for other parties too.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{self, ES256, EdDSA, JwsVerifier, PS256, RS256};
use serde::Deserialize;
use serde_json::Value;

/// The largest JWKS accepted, inline or fetched: a handful of RSA keys is ~2 KiB.
pub const MAX_JWKS_BYTES: usize = 16 * 1024;
/// The most keys a registered JWKS may hold (a rotation needs two).
pub const MAX_KEYS: usize = 10;
/// The smallest RSA modulus accepted.
pub const MIN_RSA_BITS: usize = 2048;
/// The longest assertion read: an RS256 assertion with a few claims is under 1 KiB.
pub const MAX_ASSERTION_LEN: usize = 8 * 1024;

/// The algorithms an assertion may be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssertionAlg {
    EdDSA,
    ES256,
    RS256,
    PS256,
}

impl AssertionAlg {
    pub const ALL: [AssertionAlg; 4] = [
        AssertionAlg::EdDSA,
        AssertionAlg::ES256,
        AssertionAlg::RS256,
        AssertionAlg::PS256,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AssertionAlg::EdDSA => "EdDSA",
            AssertionAlg::ES256 => "ES256",
            AssertionAlg::RS256 => "RS256",
            AssertionAlg::PS256 => "PS256",
        }
    }

    fn verifier(self, jwk: &Jwk) -> Result<Box<dyn JwsVerifier>, josekit::JoseError> {
        Ok(match self {
            AssertionAlg::EdDSA => Box::new(EdDSA.verifier_from_jwk(jwk)?),
            AssertionAlg::ES256 => Box::new(ES256.verifier_from_jwk(jwk)?),
            AssertionAlg::RS256 => Box::new(RS256.verifier_from_jwk(jwk)?),
            AssertionAlg::PS256 => Box::new(PS256.verifier_from_jwk(jwk)?),
        })
    }
}

impl fmt::Display for AssertionAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AssertionAlg {
    type Err = ();
    /// Exact JOSE names (RFC 7515 §4.1.1: case-sensitive).
    fn from_str(s: &str) -> Result<Self, ()> {
        AssertionAlg::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysError {
    #[error("jwks must be a JSON object with a \"keys\" array (RFC 7517 §5)")]
    NotJwks,
    #[error("jwks holds no usable key")]
    Empty,
    #[error("jwks holds more than {MAX_KEYS} keys")]
    TooMany,
    #[error("jwks is larger than 16 KiB")]
    TooLarge,
    #[error("key {index}: {reason}")]
    Key { index: usize, reason: String },
    #[error("two keys share the kid {0:?}")]
    DuplicateKid(String),
    #[error(
        "jwks_uri must be an absolute https URL without credentials (http only for a loopback host)"
    )]
    Uri,
}

/// One public key with the verifiers of the algorithms it may sign with.
struct ClientKey {
    kid: Option<String>,
    verifiers: Vec<(AssertionAlg, Box<dyn JwsVerifier>)>,
}

/// An application's keys, parsed.
pub struct KeySet {
    keys: Vec<ClientKey>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| &k.kid))
            .finish()
    }
}

/// Members only a private or symmetric JWK has (RFC 7518 §6).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn key_from_json(v: &Value) -> Result<ClientKey, String> {
    let obj = v.as_object().ok_or("not a JSON object")?;
    if PRIVATE_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
        return Err("a private or symmetric key: register the public key only".into());
    }
    if let Some(u) = obj.get("use")
        && u.as_str() != Some("sig")
    {
        return Err("use must be \"sig\"".into());
    }
    let kty = obj.get("kty").and_then(Value::as_str).ok_or("no kty")?;
    let crv = obj.get("crv").and_then(Value::as_str);
    let fitting: Vec<AssertionAlg> = match kty {
        "OKP" if crv == Some("Ed25519") => vec![AssertionAlg::EdDSA],
        "OKP" => return Err("an OKP key must be on Ed25519".into()),
        "EC" if crv == Some("P-256") => vec![AssertionAlg::ES256],
        "EC" => return Err("an EC key must be on P-256 (ES256)".into()),
        "RSA" => {
            let bits = obj
                .get("n")
                .and_then(Value::as_str)
                .and_then(|n| URL_SAFE_NO_PAD.decode(n).ok())
                .map(|n| modulus_bits(&n))
                .ok_or("an RSA key needs its modulus n, base64url")?;
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "an RSA key of {bits} bits: at least {MIN_RSA_BITS} are required"
                ));
            }
            vec![AssertionAlg::RS256, AssertionAlg::PS256]
        }
        other => return Err(format!("kty {other:?} is not accepted (OKP, EC or RSA)")),
    };
    let algs = match obj.get("alg") {
        None => fitting,
        Some(alg) => {
            let alg = alg
                .as_str()
                .and_then(|a| a.parse::<AssertionAlg>().ok())
                .ok_or("alg is not accepted (EdDSA, ES256, RS256 or PS256)")?;
            if !fitting.contains(&alg) {
                return Err(format!("alg {alg} does not fit a {kty} key"));
            }
            vec![alg]
        }
    };
    // The verifier is built without the kid: josekit would then refuse every assertion whose
    // header names no kid, and which key a kid picks is decided in `KeySet::verify`.
    let mut unnamed = obj.clone();
    unnamed.remove("kid");
    let jwk = Jwk::from_map(unnamed).map_err(|_| "not a valid JWK")?;
    let verifiers = algs
        .into_iter()
        .map(|alg| {
            alg.verifier(&jwk)
                .map(|v| (alg, v))
                .map_err(|_| format!("not a valid {alg} public key"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ClientKey {
        kid: obj.get("kid").and_then(Value::as_str).map(str::to_owned),
        verifiers,
    })
}

fn modulus_bits(n: &[u8]) -> usize {
    let n = match n.iter().position(|b| *b != 0) {
        Some(first) => &n[first..],
        None => return 0,
    };
    n.len() * 8 - n[0].leading_zeros() as usize
}

fn keys_array(text: &str) -> Result<Vec<Value>, KeysError> {
    if text.len() > MAX_JWKS_BYTES {
        return Err(KeysError::TooLarge);
    }
    let doc: Value = serde_json::from_str(text).map_err(|_| KeysError::NotJwks)?;
    match doc.get("keys") {
        Some(Value::Array(keys)) => Ok(keys.clone()),
        _ => Err(KeysError::NotJwks),
    }
}

/// Checks a JWKS an operator registers; returns it compact, as stored.
pub fn validate_jwks(text: &str) -> Result<String, KeysError> {
    let keys = keys_array(text)?;
    if keys.is_empty() {
        return Err(KeysError::Empty);
    }
    if keys.len() > MAX_KEYS {
        return Err(KeysError::TooMany);
    }
    let mut kids = HashSet::new();
    for (index, key) in keys.iter().enumerate() {
        let parsed = key_from_json(key).map_err(|reason| KeysError::Key { index, reason })?;
        if let Some(kid) = parsed.kid
            && !kids.insert(kid.clone())
        {
            return Err(KeysError::DuplicateKid(kid));
        }
    }
    Ok(serde_json::json!({ "keys": keys }).to_string())
}

/// Parses a stored JWKS (validated at registration) or a fetched one: keys that are not
/// usable are skipped; none usable is `Empty`.
pub fn parse_key_set(text: &str) -> Result<KeySet, KeysError> {
    let keys: Vec<ClientKey> = keys_array(text)?
        .iter()
        .filter_map(|k| key_from_json(k).ok())
        .take(MAX_KEYS * 2)
        .collect();
    if keys.is_empty() {
        return Err(KeysError::Empty);
    }
    Ok(KeySet { keys })
}

/// Checks a `jwks_uri`: absolute https, or http to a loopback host (tests, a sidecar), no
/// user-info, no fragment, at most 2,048 characters.
pub fn validate_jwks_uri(uri: &str) -> Result<String, KeysError> {
    let parsed = reqwest::Url::parse(uri.trim()).map_err(|_| KeysError::Uri)?;
    let host = parsed.host_str().ok_or(KeysError::Uri)?;
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let scheme_ok = parsed.scheme() == "https" || (parsed.scheme() == "http" && loopback);
    if !scheme_ok
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.fragment().is_some()
        || uri.len() > 2048
    {
        return Err(KeysError::Uri);
    }
    Ok(parsed.to_string())
}

/// The protected header fields that choose a key.
#[derive(Debug, Clone, Deserialize)]
pub struct AssertionHeader {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
}

/// The first two segments of a compact JWS, decoded but not verified: strict base64url, at most
/// `MAX_ASSERTION_LEN` characters, three segments.
pub fn peek(jwt: &str) -> Option<(AssertionHeader, Value)> {
    if jwt.len() > MAX_ASSERTION_LEN || jwt.contains('=') {
        return None;
    }
    let mut parts = jwt.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    // The signature is decoded only to be sure it is base64url (josekit decodes it again).
    URL_SAFE_NO_PAD.decode(signature).ok()?;
    let header = URL_SAFE_NO_PAD.decode(header).ok()?;
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let header: AssertionHeader = serde_json::from_slice(&header).ok()?;
    let payload: Value = serde_json::from_slice(&payload).ok()?;
    payload.is_object().then_some((header, payload))
}

/// Why a signature did not check out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// The header names a `kid` no key has: a `jwks_uri` may have gained it since the fetch.
    UnknownKid,
    /// A key fits but no signature verifies, or the algorithm is not accepted.
    Invalid,
}

impl KeySet {
    /// Verifies `jwt`'s signature with the key its header names (or, without a `kid`, each key
    /// of its algorithm in turn; at most `2 × MAX_KEYS`).
    pub fn verify(&self, jwt: &str, header: &AssertionHeader) -> Result<(), SignatureError> {
        let alg: AssertionAlg = header.alg.parse().map_err(|_| SignatureError::Invalid)?;
        let named = |k: &&ClientKey| header.kid.is_none() || k.kid == header.kid;
        if header.kid.is_some() && !self.keys.iter().any(|k| named(&k)) {
            return Err(SignatureError::UnknownKid);
        }
        let ok = self
            .keys
            .iter()
            .filter(named)
            .flat_map(|k| k.verifiers.iter())
            .filter(|(a, _)| *a == alg)
            .any(|(_, v)| jws::deserialize_compact(jwt, v.as_ref()).is_ok());
        if ok {
            Ok(())
        } else {
            Err(SignatureError::Invalid)
        }
    }
}

/// A key of each algorithm held by nobody: an assertion for an unknown client, or one without
/// keys, is verified against it, so it costs what a wrong signature costs (and always fails).
pub struct DummyKeys {
    set: KeySet,
}

impl fmt::Debug for DummyKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DummyKeys")
    }
}

impl DummyKeys {
    /// Generates the keys (an RSA key takes tens of milliseconds): once, at startup.
    pub fn generate() -> Result<Self, josekit::JoseError> {
        let jwks = [
            EdDSA
                .generate_key_pair(EdCurve::Ed25519)?
                .to_jwk_public_key(),
            ES256.generate_key_pair()?.to_jwk_public_key(),
            RS256.generate_key_pair(2048)?.to_jwk_public_key(),
        ];
        let keys = jwks
            .iter()
            .filter_map(|jwk| {
                let mut map = jwk.as_ref().clone();
                map.remove("kid");
                key_from_json(&Value::Object(map)).ok()
            })
            .collect();
        Ok(Self {
            set: KeySet { keys },
        })
    }

    /// Runs the verification a real key of the header's algorithm would run; never succeeds.
    pub fn verify(&self, jwt: &str, header: &AssertionHeader) -> SignatureError {
        let anonymous = AssertionHeader {
            alg: header.alg.clone(),
            kid: None,
        };
        let _ = self.set.verify(jwt, &anonymous);
        SignatureError::Invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use josekit::jws::JwsHeader;

    /// A modulus's size counts from its highest set bit: leading zero bytes and the leading
    /// zero bits of its first byte don't count (a 2,047-bit key is not a 2,048-bit one).
    #[test]
    fn a_modulus_is_sized_from_its_highest_set_bit() {
        assert_eq!(modulus_bits(&[0x80; 256]), 2048);
        assert_eq!(modulus_bits(&[0x7f; 256]), 2047);
        assert_eq!(modulus_bits(&[0x00, 0x01, 0xff]), 9);
        assert_eq!(modulus_bits(&[0, 0]), 0);
        assert_eq!(modulus_bits(&[]), 0);
    }

    /// A compact JWS of exactly `len` characters (an unsigned-looking one: `peek` decodes, it
    /// does not verify).
    fn jws_of_length(len: usize) -> String {
        let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"EdDSA"}"#);
        for pad in 0..len {
            let body = URL_SAFE_NO_PAD.encode(format!(r#"{{"p":"{}"}}"#, "x".repeat(pad)));
            let so_far = head.len() + 1 + body.len() + 1;
            // A signature of 2, 3 or 4 characters is valid unpadded base64url.
            if let Some(sig) = len.checked_sub(so_far).filter(|n| (2..=4).contains(n)) {
                return format!("{head}.{body}.{}", "A".repeat(sig));
            }
        }
        unreachable!("no JWS of length {len}")
    }

    /// The contract's 8 KiB (docs/spec/auth-server.md §1a), at its boundary.
    #[test]
    fn an_assertion_of_exactly_8_kib_is_read_and_one_byte_more_is_not() {
        let longest = jws_of_length(8 * 1024);
        assert_eq!(longest.len(), 8 * 1024);
        assert!(peek(&longest).is_some());
        assert!(peek(&jws_of_length(8 * 1024 + 1)).is_none());
    }

    fn sign(alg: AssertionAlg, kid: Option<&str>) -> (Value, String) {
        let mut header = JwsHeader::new();
        if let Some(kid) = kid {
            header.set_key_id(kid);
        }
        let payload = br#"{"iss":"x"}"#;
        let (jwk, token) = match alg {
            AssertionAlg::EdDSA => {
                let kp = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
                let s = EdDSA.signer_from_der(kp.to_der_private_key()).unwrap();
                (
                    kp.to_jwk_public_key(),
                    jws::serialize_compact(payload, &header, &s).unwrap(),
                )
            }
            AssertionAlg::ES256 => {
                let kp = ES256.generate_key_pair().unwrap();
                let s = ES256.signer_from_der(kp.to_der_private_key()).unwrap();
                (
                    kp.to_jwk_public_key(),
                    jws::serialize_compact(payload, &header, &s).unwrap(),
                )
            }
            AssertionAlg::RS256 => {
                let kp = RS256.generate_key_pair(2048).unwrap();
                let s = RS256.signer_from_der(kp.to_der_private_key()).unwrap();
                (
                    kp.to_jwk_public_key(),
                    jws::serialize_compact(payload, &header, &s).unwrap(),
                )
            }
            AssertionAlg::PS256 => {
                let kp = PS256.generate_key_pair(2048).unwrap();
                let s = PS256.signer_from_der(kp.to_der_private_key()).unwrap();
                (
                    kp.to_jwk_public_key(),
                    jws::serialize_compact(payload, &header, &s).unwrap(),
                )
            }
        };
        let mut map = jwk.as_ref().clone();
        if let Some(kid) = kid {
            map.insert("kid".into(), kid.into());
        } else {
            map.remove("kid");
        }
        (Value::Object(map), token)
    }

    fn jwks(keys: &[&Value]) -> String {
        serde_json::json!({ "keys": keys }).to_string()
    }

    /// A JWKS holds at most `MAX_KEYS` keys: exactly that many are kept, one more is refused.
    #[test]
    fn a_jwks_of_exactly_max_keys_is_kept_and_one_more_is_refused() {
        let keys: Vec<Value> = (0..=MAX_KEYS)
            .map(|i| sign(AssertionAlg::ALL[0], Some(&format!("k{i}"))).0)
            .collect();
        let refs: Vec<&Value> = keys.iter().collect();
        assert!(validate_jwks(&jwks(&refs[..MAX_KEYS])).is_ok());
        assert!(matches!(
            validate_jwks(&jwks(&refs)),
            Err(KeysError::TooMany)
        ));
    }

    /// A fetched JWKS is not refused for its size (the integrator publishes it, and a rotation
    /// may briefly hold more keys than a registration may), but only its first `2 × MAX_KEYS`
    /// usable keys are kept: the 20th verifies, the 21st is an unknown kid.
    #[test]
    fn a_fetched_key_set_keeps_its_first_twice_max_keys_usable_keys() {
        let signed: Vec<(Value, String)> = (0..3 * MAX_KEYS)
            .map(|i| sign(AssertionAlg::ALL[0], Some(&format!("k{i}"))))
            .collect();
        let refs: Vec<&Value> = signed.iter().map(|(jwk, _)| jwk).collect();
        let set = parse_key_set(&jwks(&refs)).unwrap();
        let last_kept = &signed[2 * MAX_KEYS - 1].1;
        let (header, _) = peek(last_kept).unwrap();
        assert_eq!(set.verify(last_kept, &header), Ok(()));
        let first_dropped = &signed[2 * MAX_KEYS].1;
        let (header, _) = peek(first_dropped).unwrap();
        assert_eq!(
            set.verify(first_dropped, &header),
            Err(SignatureError::UnknownKid)
        );
    }

    #[test]
    fn every_accepted_algorithm_verifies_and_a_stranger_key_does_not() {
        for alg in AssertionAlg::ALL {
            let (jwk, token) = sign(alg, Some("k1"));
            let (other, _) = sign(alg, Some("k2"));
            let text = validate_jwks(&jwks(&[&jwk, &other])).unwrap();
            let set = parse_key_set(&text).unwrap();
            let (header, _) = peek(&token).unwrap();
            assert_eq!(set.verify(&token, &header), Ok(()), "{alg}");
            let only_other = parse_key_set(&jwks(&[&other])).unwrap();
            assert_eq!(
                only_other.verify(&token, &header),
                Err(SignatureError::UnknownKid),
                "{alg}"
            );
            let (anon, anon_token) = sign(alg, None);
            let (h, _) = peek(&anon_token).unwrap();
            let set = parse_key_set(&jwks(&[&other, &anon])).unwrap();
            assert_eq!(set.verify(&anon_token, &h), Ok(()), "{alg} without kid");
        }
    }

    /// authlib signs client assertions with no `kid` in the header; the registered keys have
    /// one. Every key is then tried (josekit alone would refuse: its verifier wants the kid).
    #[test]
    fn an_assertion_naming_no_kid_is_tried_against_named_keys() {
        for alg in AssertionAlg::ALL {
            let (mut jwk, token) = sign(alg, None);
            jwk["kid"] = "named".into();
            let (other, _) = sign(alg, Some("other"));
            let set = parse_key_set(&validate_jwks(&jwks(&[&other, &jwk])).unwrap()).unwrap();
            let (header, _) = peek(&token).unwrap();
            assert_eq!(set.verify(&token, &header), Ok(()), "{alg}");
        }
    }

    #[test]
    fn registration_refuses_what_it_must_with_a_reason() {
        let (ed, _) = sign(AssertionAlg::EdDSA, Some("a"));
        let mut private = ed.clone();
        private["d"] = "AAAA".into();
        let mut enc = ed.clone();
        enc["use"] = "enc".into();
        let mut wrong_alg = ed.clone();
        wrong_alg["alg"] = "RS256".into();
        let mut hs = ed.clone();
        hs["alg"] = "HS256".into();
        // josekit won't make a 1024-bit key; a modulus of that size is all the check reads.
        let small_rsa = {
            let mut n = vec![0xC5u8; 128];
            n[127] = 1;
            serde_json::json!({"kty":"RSA","n": URL_SAFE_NO_PAD.encode(n),"e":"AQAB"})
        };
        let p384 = serde_json::json!({"kty":"EC","crv":"P-384","x":"AA","y":"AA"});
        // An OKP key of another curve: X25519 is for key agreement, Ed448 is not accepted.
        let mut x25519 = ed.clone();
        x25519["crv"] = "X25519".into();
        let mut ed448 = ed.clone();
        ed448["crv"] = "Ed448".into();
        for (doc, want) in [
            (jwks(&[&x25519]), "Ed25519"),
            (jwks(&[&ed448]), "Ed25519"),
            (jwks(&[&private]), "private"),
            (jwks(&[&enc]), "use must be"),
            (jwks(&[&wrong_alg]), "does not fit"),
            (jwks(&[&hs]), "not accepted"),
            (jwks(&[&small_rsa]), "1024 bits"),
            (jwks(&[&p384]), "P-256"),
            (jwks(&[&ed, &ed]), "share the kid"),
            (jwks(&[]), "no usable key"),
            ("[]".into(), "\"keys\" array"),
            ("{\"keys\":".into(), "\"keys\" array"),
        ] {
            let err = validate_jwks(&doc).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should say {want:?}");
        }
        assert!(validate_jwks(&"x".repeat(MAX_JWKS_BYTES + 1)).is_err());
    }

    #[test]
    fn jwks_uri_is_https_or_loopback_http() {
        for ok in [
            "https://idp.example.com/jwks.json",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
            "http://[::1]:9/k",
        ] {
            assert!(validate_jwks_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://idp.example.com/jwks.json",
            "ftp://idp.example.com/x",
            "https://user:pw@idp.example.com/x",
            // Either half of the user-info alone.
            "https://user@idp.example.com/x",
            "https://:pw@idp.example.com/x",
            "/relative",
            "https://idp.example.com/x#frag",
        ] {
            assert_eq!(validate_jwks_uri(bad), Err(KeysError::Uri), "{bad}");
        }
        // 2,048 characters at most.
        let base = "https://idp.example.com/";
        let longest = format!("{base}{}", "k".repeat(2048 - base.len()));
        assert!(validate_jwks_uri(&longest).is_ok());
        assert_eq!(
            validate_jwks_uri(&format!("{longest}k")),
            Err(KeysError::Uri)
        );
    }

    #[test]
    fn peek_is_strict_and_dummy_keys_never_verify() {
        let (_, token) = sign(AssertionAlg::ES256, None);
        assert!(peek(&token).is_some());
        assert!(peek(&format!("{token}=")).is_none());
        assert!(peek("a.b").is_none());
        let dummy = DummyKeys::generate().unwrap();
        let (h, _) = peek(&token).unwrap();
        assert_eq!(dummy.verify(&token, &h), SignatureError::Invalid);
    }
}
