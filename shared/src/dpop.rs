//! DPoP (RFC 9449): the proof checks both services make, the key thumbprint a token is bound
//! to (`cnf.jkt`, RFC 7638) and the access-token hash a proof carries (`ath`). Both sides must
//! compute these identically or a bound token would never verify, hence the contract crate.
//!
//! What is checked here is everything a proof says about itself (RFC 9449 §4.3 steps 2–12,
//! except the nonce's value and the jti's uniqueness, which need the server's secret and
//! storage): a compact JWS of `typ` `dpop+jwt`, an asymmetric `alg` of [`ALGS`], a public
//! `jwk` in the header that verifies the signature, `htm`/`htu` matching the request, `iat`
//! within the window, and `ath` matching the token when one is presented.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::{ES256, EdDSA, JwsVerifier, PS256, RS256};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Digest;

/// The algorithms a proof may be signed with (`dpop_signing_alg_values_supported`).
pub const ALGS: [&str; 4] = ["EdDSA", "ES256", "RS256", "PS256"];
/// The longest proof read: an RS256 proof with its JWK is ~1.2 KiB.
pub const MAX_PROOF_LEN: usize = 8 * 1024;
/// The longest `jti` accepted (what a replay table keeps per proof).
pub const MAX_JTI_LEN: usize = 255;
/// How old a proof's `iat` may be: a proof is made for one request, just before it.
pub const MAX_AGE_SECONDS: i64 = 60;
/// How far ahead of this server's clock an `iat` may be (the client's clock runs fast).
pub const LEEWAY_SECONDS: i64 = 5;
/// The smallest RSA modulus accepted, as for client keys.
const MIN_RSA_BITS: usize = 2048;

/// Why a proof was refused: the `error_description` of `invalid_dpop_proof`. Fixed ASCII text
/// of our own (it goes into `WWW-Authenticate` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("The DPoP proof is not a compact JWS")]
    Malformed,
    #[error("The DPoP proof's typ must be dpop+jwt")]
    Type,
    #[error("The DPoP proof's alg must be one of EdDSA, ES256, RS256, PS256")]
    Algorithm,
    #[error("The DPoP proof's jwk must be a public key of its alg")]
    Key,
    #[error("The DPoP proof's signature is invalid")]
    Signature,
    #[error("The DPoP proof lacks a valid {0} claim")]
    Claim(&'static str),
    #[error("The DPoP proof's htm does not match the request method")]
    Method,
    #[error("The DPoP proof's htu does not match the request URL")]
    Url,
    #[error("The DPoP proof's iat is too old or in the future")]
    Time,
    #[error("The DPoP proof's ath does not match the access token")]
    TokenHash,
    #[error("The DPoP proof has a jti that was already used")]
    Replayed,
}

/// The `DPoP` request header(s), as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProofHeader {
    #[default]
    Absent,
    One(String),
    /// More than one: which proof is meant is ambiguous (RFC 9449 §4.3 step 1).
    Several,
}

impl ProofHeader {
    /// From the values of every `DPoP` header field of a request. A value that is not visible
    /// ASCII is kept as an empty proof, refused as malformed.
    pub fn from_values<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut values = values.into_iter();
        match (values.next(), values.next()) {
            (None, _) => ProofHeader::Absent,
            (Some(one), None) => ProofHeader::One(
                std::str::from_utf8(one)
                    .ok()
                    .filter(|s| s.bytes().all(|b| b.is_ascii_graphic()))
                    .unwrap_or_default()
                    .to_owned(),
            ),
            (Some(_), Some(_)) => ProofHeader::Several,
        }
    }
}

/// What the request the proof came with was.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The HTTP method, as received.
    pub method: &'a str,
    /// The request's URL as the client addressed it: this server's public base URL and the
    /// request's path (behind a proxy, the local address is not what the client signed).
    pub url: &'a str,
    /// The access token presented with the proof (resource requests), whose hash `ath` must be.
    pub access_token: Option<&'a str>,
    /// Seconds since the epoch.
    pub now: i64,
}

/// A proof that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 thumbprint of the proof's key: what `cnf.jkt` binds a token to.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
    /// The `nonce` claim, for a server that issues nonces to check.
    pub nonce: Option<String>,
}

impl Proof {
    /// Until when the proof's `jti` must be remembered: after that its `iat` refuses it.
    pub fn replay_window_end(&self) -> i64 {
        self.iat
            .saturating_add(MAX_AGE_SECONDS)
            .saturating_add(LEEWAY_SECONDS)
    }
}

#[derive(Deserialize)]
struct Header {
    typ: Option<Value>,
    alg: Option<Value>,
    jwk: Option<Value>,
}

#[derive(Deserialize)]
struct Claims {
    jti: Option<Value>,
    htm: Option<Value>,
    htu: Option<Value>,
    iat: Option<Value>,
    ath: Option<Value>,
    nonce: Option<Value>,
}

/// Where a verifier built from a proof's `jwk` may be kept: building one costs more than the
/// signature check itself (~140 µs of a 200 µs proof check, `cargo bench -p auth-server --bench
/// hot_paths -- dpop_verify`), and a client signs every proof with the same key.
pub trait KeyCache: Send + Sync {
    /// The verifier named `id` (the algorithm and the key's thumbprint), built by `build` when
    /// absent. Only the key's public members go into a verifier, so two JWKs with one `id` make
    /// the same verifier.
    fn verifier(
        &self,
        id: &str,
        build: &mut dyn FnMut() -> Option<Arc<dyn JwsVerifier>>,
    ) -> Option<Arc<dyn JwsVerifier>>;
}

/// Builds the verifier every time (the token endpoint: one proof per token).
pub struct NoCache;

impl KeyCache for NoCache {
    fn verifier(
        &self,
        _id: &str,
        build: &mut dyn FnMut() -> Option<Arc<dyn JwsVerifier>>,
    ) -> Option<Arc<dyn JwsVerifier>> {
        build()
    }
}

/// Checks `proof` for `request` (RFC 9449 §4.3). The caller then checks the nonce, if it
/// issues them, and that the `jti` was not seen before, and binds or compares `jkt`.
pub fn verify(proof: &str, request: &Request<'_>) -> Result<Proof, ProofError> {
    verify_with(proof, request, &NoCache)
}

/// `verify`, with the verifiers built from proofs' keys kept in `keys`.
pub fn verify_with(
    proof: &str,
    request: &Request<'_>,
    keys: &dyn KeyCache,
) -> Result<Proof, ProofError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(ProofError::Malformed);
    }
    let segments: Vec<&str> = proof.split('.').collect();
    if segments.len() != 3
        || segments
            .iter()
            .any(|s| s.contains('=') || URL_SAFE_NO_PAD.decode(s).is_err())
    {
        return Err(ProofError::Malformed);
    }
    let header: Header = URL_SAFE_NO_PAD
        .decode(segments[0])
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(ProofError::Malformed)?;
    // `typ` is compared exactly: RFC 9449 §4.2 names `dpop+jwt`, and a media type's
    // case-insensitivity does not make `application/dpop+jwt` the same token type here.
    if header.typ.as_ref().and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(ProofError::Type);
    }
    let alg = header
        .alg
        .as_ref()
        .and_then(Value::as_str)
        .filter(|a| ALGS.contains(a))
        .ok_or(ProofError::Algorithm)?;
    let jwk = header
        .jwk
        .as_ref()
        .and_then(Value::as_object)
        .ok_or(ProofError::Key)?;
    check_key(alg, jwk)?;
    let jkt = thumbprint(jwk).ok_or(ProofError::Key)?;
    let verifier = keys
        .verifier(&format!("{alg}:{jkt}"), &mut || verifier_for(alg, jwk).ok())
        .ok_or(ProofError::Key)?;
    let (payload, _) = josekit::jws::deserialize_compact(proof, verifier.as_ref())
        .map_err(|_| ProofError::Signature)?;
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| ProofError::Malformed)?;

    let jti = text(&claims.jti)
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
        .ok_or(ProofError::Claim("jti"))?;
    let htm = text(&claims.htm).ok_or(ProofError::Claim("htm"))?;
    // Methods are case-sensitive (RFC 9110 §9.1).
    if htm != request.method {
        return Err(ProofError::Method);
    }
    let htu = text(&claims.htu).ok_or(ProofError::Claim("htu"))?;
    if !same_target(htu, request.url) {
        return Err(ProofError::Url);
    }
    // A NumericDate; a fraction is allowed and whole seconds compared. A string is refused,
    // never skipped (the claim-type confusion of the client assertions' time claims).
    let iat = match &claims.iat {
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|f| f.floor() as i64)
            .ok_or(ProofError::Claim("iat"))?,
        _ => return Err(ProofError::Claim("iat")),
    };
    if iat < request.now.saturating_sub(MAX_AGE_SECONDS)
        || iat > request.now.saturating_add(LEEWAY_SECONDS)
    {
        return Err(ProofError::Time);
    }
    if let Some(token) = request.access_token {
        let ath = text(&claims.ath).ok_or(ProofError::Claim("ath"))?;
        if ath != token_hash(token) {
            return Err(ProofError::TokenHash);
        }
    }
    let nonce = match &claims.nonce {
        None => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => return Err(ProofError::Claim("nonce")),
    };
    Ok(Proof {
        jkt,
        jti: jti.to_owned(),
        iat,
        nonce,
    })
}

fn text(v: &Option<Value>) -> Option<&str> {
    v.as_ref()?.as_str()
}

/// Members only a private or symmetric JWK has (RFC 7518 §6): a proof carrying one is refused,
/// whatever else it holds (RFC 9449 §4.3 step 7).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Whether `jwk` is a public key of `alg`'s type (no private member, RSA of at least 2048 bits,
/// its own `alg`, if any, the same).
fn check_key(alg: &str, jwk: &Map<String, Value>) -> Result<(), ProofError> {
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(ProofError::Key);
    }
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    let kty = member("kty").ok_or(ProofError::Key)?;
    let fits = match alg {
        "EdDSA" => kty == "OKP" && member("crv") == Some(EdCurve::Ed25519.name()),
        "ES256" => kty == "EC" && member("crv") == Some("P-256"),
        _ => {
            kty == "RSA"
                && member("n")
                    .and_then(|n| URL_SAFE_NO_PAD.decode(n).ok())
                    .is_some_and(|n| {
                        let leading = n.iter().take_while(|b| **b == 0).count();
                        (n.len() - leading) * 8 >= MIN_RSA_BITS
                    })
        }
    };
    // A key that names its algorithm must name this one.
    let named_fits = match jwk.get("alg") {
        None => true,
        Some(Value::String(named)) => named == alg,
        Some(_) => false,
    };
    if !fits || !named_fits {
        return Err(ProofError::Key);
    }
    Ok(())
}

/// The verifier of `alg` for `jwk`, checked by `check_key`.
fn verifier_for(alg: &str, jwk: &Map<String, Value>) -> Result<Arc<dyn JwsVerifier>, ProofError> {
    // josekit would refuse PS256 with an RSA key marked RS256: the member is checked by
    // `check_key` and left out of what josekit parses.
    let mut public = jwk.clone();
    public.remove("alg");
    public.remove("key_ops");
    let parsed = Jwk::from_map(public).map_err(|_| ProofError::Key)?;
    let verifier: Result<Arc<dyn JwsVerifier>, _> = match alg {
        "EdDSA" => EdDSA
            .verifier_from_jwk(&parsed)
            .map(|v| Arc::new(v) as Arc<dyn JwsVerifier>),
        "ES256" => ES256
            .verifier_from_jwk(&parsed)
            .map(|v| Arc::new(v) as Arc<dyn JwsVerifier>),
        "RS256" => RS256
            .verifier_from_jwk(&parsed)
            .map(|v| Arc::new(v) as Arc<dyn JwsVerifier>),
        _ => PS256
            .verifier_from_jwk(&parsed)
            .map(|v| Arc::new(v) as Arc<dyn JwsVerifier>),
    };
    verifier.map_err(|_| ProofError::Key)
}

/// The RFC 7638 SHA-256 thumbprint of a public JWK, base64url: the required members of its
/// `kty` only, in lexicographic order, without whitespace. `None` for a key type this server
/// does not take or a required member that is missing or not a string.
pub fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let required: &[&str] = match jwk.get("kty")?.as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "RSA" => &["e", "kty", "n"],
        _ => return None,
    };
    let mut members = BTreeMap::new();
    for name in required {
        members.insert(*name, jwk.get(*name)?.as_str()?);
    }
    let canonical = serde_json::to_vec(&members).ok()?;
    Some(URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&canonical)))
}

/// `ath`: the base64url SHA-256 of the access token's ASCII (RFC 9449 §4.2).
pub fn token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(access_token.as_bytes()))
}

/// Whether a proof's `htu` names the request's URL: scheme, host and port, and path, compared
/// after RFC 3986 §6.2.2–6.2.3 normalisation (case of scheme and host, default port, dot
/// segments, percent-encoding of unreserved characters); query and fragment are ignored
/// (RFC 9449 §4.3 step 9).
pub fn same_target(htu: &str, request_url: &str) -> bool {
    match (Target::parse(htu), Target::parse(request_url)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Target {
    scheme: String,
    host: String,
    port: u16,
    path: String,
}

impl Target {
    /// An absolute http(s) URL without userinfo; anything else is no target.
    fn parse(url: &str) -> Option<Target> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return None,
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let (host, port) = match authority.rsplit_once(':') {
            // An IPv6 literal's colons are inside its brackets.
            Some((h, p)) if !p.contains(']') => {
                let port = if p.is_empty() {
                    default_port
                } else {
                    p.parse().ok()?
                };
                (h, port)
            }
            _ => (authority, default_port),
        };
        let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
        let path = normalise_path(&tail[..path_end])?;
        Some(Target {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path,
        })
    }
}

/// Decodes percent-encoded unreserved characters, upper-cases the hex of the others, and
/// removes dot segments; an empty path is `/`. `None` for a malformed escape.
fn normalise_path(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = path.get(i + 1..i + 3)?;
            let byte = u8::from_str_radix(hex, 16).ok()?;
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                out.push(byte as char);
            } else {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
            i += 3;
        } else {
            out.push(bytes[i] as char);
            i += 1;
        }
    }
    let mut segments: Vec<&str> = Vec::new();
    let trailing = out.ends_with('/') || out.ends_with("/.") || out.ends_with("/..");
    for segment in out.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normal = String::from("/");
    normal.push_str(&segments.join("/"));
    if trailing && !normal.ends_with('/') {
        normal.push('/');
    }
    Some(normal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 7638 §3.1's example key and its thumbprint.
    #[test]
    fn the_rfc_7638_example_thumbprint() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(jwk.as_object().unwrap()).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
        // Members outside the required ones do not change it; a missing one is no thumbprint.
        let mut without_e = jwk.as_object().unwrap().clone();
        without_e.remove("e");
        assert_eq!(thumbprint(&without_e), None);
    }

    /// RFC 9449 §7.1's example: the `ath` of its access token.
    #[test]
    fn the_rfc_9449_example_access_token_hash() {
        assert_eq!(
            token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    #[test]
    fn the_request_url_is_compared_normalised_and_without_query() {
        let url = "https://rooms.example/external-api/v1.0/rooms/abc";
        for same in [
            url,
            "HTTPS://Rooms.Example/external-api/v1.0/rooms/abc",
            "https://rooms.example:443/external-api/v1.0/rooms/abc",
            "https://rooms.example/external-api/v1.0/rooms/abc?page=2#x",
            "https://rooms.example/external-api/v1.0/./rooms/%61bc",
            "https://rooms.example/external-api/v1.0/x/../rooms/abc",
        ] {
            assert!(same_target(same, url), "{same}");
        }
        for other in [
            "http://rooms.example/external-api/v1.0/rooms/abc",
            "https://rooms.example:8443/external-api/v1.0/rooms/abc",
            "https://evil.example/external-api/v1.0/rooms/abc",
            "https://rooms.example/external-api/v1.0/rooms/abd",
            "https://rooms.example/external-api/v1.0/rooms/abc/",
            "https://user@rooms.example/external-api/v1.0/rooms/abc",
            "rooms.example/external-api/v1.0/rooms/abc",
            "ftp://rooms.example/external-api/v1.0/rooms/abc",
            "https://rooms.example/external-api/v1.0/rooms/%zz",
        ] {
            assert!(!same_target(other, url), "{other}");
        }
        assert!(same_target(
            "http://127.0.0.1:8081",
            "http://127.0.0.1:8081/"
        ));
        // An IPv6 literal's colons are not a port's; its default port is its scheme's.
        assert!(same_target("https://[::1]/x", "https://[::1]:443/x"));
        assert!(!same_target("https://[::1]/x", "https://[::1]:8443/x"));
        // A final `.` or `..` segment leaves a directory: the path ends with its slash.
        assert!(same_target(
            "https://h.example/a/b/.",
            "https://h.example/a/b/"
        ));
        assert!(same_target(
            "https://h.example/a/b/..",
            "https://h.example/a/"
        ));
        assert!(!same_target(
            "https://h.example/a/b/..",
            "https://h.example/a"
        ));
        assert!(!same_target(
            "https://h.example/a/b/.",
            "https://h.example/a/b"
        ));
        // No host at all is no URL, even compared with itself.
        assert!(!same_target("https:///x", "https:///x"));
    }

    struct Key {
        alg: &'static str,
        signer: Box<dyn josekit::jws::JwsSigner>,
        public: Map<String, Value>,
    }

    fn es256() -> Key {
        let pair = ES256.generate_key_pair().unwrap();
        Key {
            alg: "ES256",
            signer: Box::new(ES256.signer_from_der(pair.to_der_private_key()).unwrap()),
            public: pair.to_jwk_public_key().as_ref().clone(),
        }
    }

    /// The header exactly as given (josekit's serializer would set `alg` to the signer's).
    fn sign(key: &Key, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        );
        let signature = key.signer.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    const URL: &str = "https://auth.example/oauth/token";
    const NOW: i64 = 1_800_000_000;

    fn good(key: &Key) -> (Value, Value) {
        (
            json!({"typ": "dpop+jwt", "alg": key.alg, "jwk": key.public}),
            json!({"jti": "p1", "htm": "POST", "htu": URL, "iat": NOW}),
        )
    }

    fn request(token: Option<&str>) -> Request<'_> {
        Request {
            method: "POST",
            url: URL,
            access_token: token,
            now: NOW,
        }
    }

    #[test]
    fn a_good_proof_gives_its_key_thumbprint_and_jti() {
        let key = es256();
        let (h, c) = good(&key);
        let proof = verify(&sign(&key, h, c), &request(None)).unwrap();
        assert_eq!(proof.jkt, thumbprint(&key.public).unwrap());
        assert_eq!(proof.jti, "p1");
        assert_eq!(proof.iat, NOW);
        assert_eq!(
            proof.replay_window_end(),
            NOW + MAX_AGE_SECONDS + LEEWAY_SECONDS
        );
        // With a token: its hash in `ath`.
        let (h, mut c) = good(&key);
        c["ath"] = token_hash("the-token").into();
        assert!(verify(&sign(&key, h, c), &request(Some("the-token"))).is_ok());
    }

    #[test]
    fn each_rule_refuses_with_its_error() {
        let key = es256();
        let other = es256();
        type Patch = fn(&mut Value, &mut Value);
        let cases: Vec<(Patch, ProofError)> = vec![
            (|h, _| h["typ"] = "JWT".into(), ProofError::Type),
            (
                |h, _| h["typ"] = "application/dpop+jwt".into(),
                ProofError::Type,
            ),
            (
                |h, _| {
                    h.as_object_mut().unwrap().remove("typ");
                },
                ProofError::Type,
            ),
            (|h, _| h["alg"] = "HS256".into(), ProofError::Algorithm),
            (|h, _| h["alg"] = "none".into(), ProofError::Algorithm),
            (|h, _| h["alg"] = "EdDSA".into(), ProofError::Key),
            (
                |h, _| {
                    h.as_object_mut().unwrap().remove("jwk");
                },
                ProofError::Key,
            ),
            (|h, _| h["jwk"]["d"] = "AAAA".into(), ProofError::Key),
            (
                |_, c| {
                    c.as_object_mut().unwrap().remove("jti");
                },
                ProofError::Claim("jti"),
            ),
            (|_, c| c["jti"] = "".into(), ProofError::Claim("jti")),
            (
                |_, c| c["jti"] = "x".repeat(256).into(),
                ProofError::Claim("jti"),
            ),
            (
                |_, c| {
                    c.as_object_mut().unwrap().remove("htm");
                },
                ProofError::Claim("htm"),
            ),
            (|_, c| c["htm"] = "post".into(), ProofError::Method),
            (|_, c| c["htm"] = "GET".into(), ProofError::Method),
            (
                |_, c| {
                    c.as_object_mut().unwrap().remove("htu");
                },
                ProofError::Claim("htu"),
            ),
            (
                |_, c| c["htu"] = "https://auth.example/oauth/revoke".into(),
                ProofError::Url,
            ),
            (
                |_, c| {
                    c.as_object_mut().unwrap().remove("iat");
                },
                ProofError::Claim("iat"),
            ),
            (
                |_, c| c["iat"] = "1800000000".into(),
                ProofError::Claim("iat"),
            ),
            (
                |_, c| c["iat"] = (NOW - MAX_AGE_SECONDS - 1).into(),
                ProofError::Time,
            ),
            (
                |_, c| c["iat"] = (NOW + LEEWAY_SECONDS + 1).into(),
                ProofError::Time,
            ),
            (|_, c| c["nonce"] = 5.into(), ProofError::Claim("nonce")),
        ];
        for (i, (patch, want)) in cases.into_iter().enumerate() {
            let (mut h, mut c) = good(&key);
            patch(&mut h, &mut c);
            assert_eq!(
                verify(&sign(&key, h, c), &request(None)),
                Err(want),
                "case {i}"
            );
        }
        // The edges of the window are inside it.
        for iat in [NOW - MAX_AGE_SECONDS, NOW + LEEWAY_SECONDS] {
            let (h, mut c) = good(&key);
            c["iat"] = iat.into();
            assert!(verify(&sign(&key, h, c), &request(None)).is_ok(), "{iat}");
        }
        // Signed by another key than the one in the header.
        let (mut h, c) = good(&key);
        h["jwk"] = Value::Object(other.public.clone());
        assert_eq!(
            verify(&sign(&key, h, c), &request(None)),
            Err(ProofError::Signature)
        );
        // A token presented: `ath` required and equal to its hash.
        let (h, c) = good(&key);
        assert_eq!(
            verify(&sign(&key, h.clone(), c.clone()), &request(Some("t"))),
            Err(ProofError::Claim("ath"))
        );
        let mut wrong = c.clone();
        wrong["ath"] = token_hash("another").into();
        assert_eq!(
            verify(&sign(&key, h, wrong), &request(Some("t"))),
            Err(ProofError::TokenHash)
        );
        // Not a JWS at all, padded segments, too long.
        for bad in ["", "a.b", "a.b.c.d", "e30=.e30.e30"] {
            assert_eq!(
                verify(bad, &request(None)),
                Err(ProofError::Malformed),
                "{bad}"
            );
        }
        let long = format!("{}.e30.e30", "a".repeat(MAX_PROOF_LEN));
        assert_eq!(verify(&long, &request(None)), Err(ProofError::Malformed));
    }

    /// One `DPoP` header is the proof; none is absent; two are ambiguous (RFC 9449 §4.3).
    #[test]
    fn the_header_fields_are_one_proof_none_or_several() {
        assert_eq!(ProofHeader::from_values([]), ProofHeader::Absent);
        assert_eq!(
            ProofHeader::from_values([&b"a.b.c"[..]]),
            ProofHeader::One("a.b.c".into())
        );
        assert_eq!(
            ProofHeader::from_values([&b"a.b.c"[..], b"d.e.f"]),
            ProofHeader::Several
        );
        // Not visible ASCII: kept as an empty proof, which is malformed.
        assert_eq!(
            ProofHeader::from_values([&b"a b"[..]]),
            ProofHeader::One(String::new())
        );
    }

    /// A proof of exactly `MAX_PROOF_LEN` bytes is read; one byte more is not (the length is
    /// reached with a header member of filler, which changes nothing else).
    #[test]
    fn a_proof_of_exactly_the_longest_length_is_read_and_one_byte_more_is_not() {
        let key = es256();
        let sized = |target: usize| {
            (0..target).find_map(|fill| {
                let (mut h, c) = good(&key);
                h["x"] = "f".repeat(fill).into();
                let proof = sign(&key, h, c);
                (proof.len() == target).then_some(proof)
            })
        };
        // Not every length is reachable with one filler; one of the three below is.
        let at_max = (0..3).find_map(|less| sized(MAX_PROOF_LEN - less)).unwrap();
        assert!(at_max.len() > 2 * 1024, "well past a short cap");
        assert!(verify(&at_max, &request(None)).is_ok(), "{}", at_max.len());
        if at_max.len() == MAX_PROOF_LEN {
            let over = sized(MAX_PROOF_LEN + 1)
                .or_else(|| sized(MAX_PROOF_LEN + 2))
                .unwrap();
            assert_eq!(verify(&over, &request(None)), Err(ProofError::Malformed));
        }
        let exact = sized(MAX_PROOF_LEN).or_else(|| {
            let (mut h, mut c) = good(&key);
            (0..64).find_map(|extra| {
                c["y"] = "g".repeat(extra).into();
                (0..MAX_PROOF_LEN).find_map(|fill| {
                    h["x"] = "f".repeat(fill).into();
                    let proof = sign(&key, h.clone(), c.clone());
                    (proof.len() == MAX_PROOF_LEN).then_some(proof)
                })
            })
        });
        let exact = exact.unwrap();
        assert!(verify(&exact, &request(None)).is_ok());
        let mut over = exact.clone();
        over.push('A');
        assert_eq!(verify(&over, &request(None)), Err(ProofError::Malformed));
    }

    /// Each of the three segments must be unpadded base64url: two segments of good base64,
    /// or a good header and claims with a signature that isn't base64, are malformed.
    #[test]
    fn every_segment_must_be_unpadded_base64url() {
        let key = es256();
        let (h, c) = good(&key);
        let proof = sign(&key, h, c);
        let (input, _) = proof.rsplit_once('.').unwrap();
        assert_eq!(verify(input, &request(None)), Err(ProofError::Malformed));
        for bad_signature in ["a", "!!!!", "AAA="] {
            assert_eq!(
                verify(&format!("{input}.{bad_signature}"), &request(None)),
                Err(ProofError::Malformed),
                "{bad_signature}"
            );
        }
    }

    /// A key of the right type but another curve, or an RSA key of the wrong type, does not
    /// fit the algorithm.
    #[test]
    fn a_key_must_be_of_the_algorithms_type_and_curve() {
        let fits = |alg: &str, jwk: Value| check_key(alg, jwk.as_object().unwrap());
        let long_n = URL_SAFE_NO_PAD.encode([0xC5u8; 256]);
        assert_eq!(
            fits("EdDSA", json!({"kty": "OKP", "crv": "Ed25519", "x": "AA"})),
            Ok(())
        );
        assert_eq!(
            fits("EdDSA", json!({"kty": "OKP", "crv": "X25519", "x": "AA"})),
            Err(ProofError::Key)
        );
        assert_eq!(
            fits("EdDSA", json!({"kty": "EC", "crv": "Ed25519", "x": "AA"})),
            Err(ProofError::Key)
        );
        assert_eq!(fits("ES256", json!({"kty": "EC", "crv": "P-256"})), Ok(()));
        assert_eq!(
            fits("ES256", json!({"kty": "EC", "crv": "P-384"})),
            Err(ProofError::Key)
        );
        assert_eq!(
            fits("ES256", json!({"kty": "OKP", "crv": "P-256"})),
            Err(ProofError::Key)
        );
        assert_eq!(
            fits("RS256", json!({"kty": "RSA", "n": long_n, "e": "AQAB"})),
            Ok(())
        );
        assert_eq!(
            fits("RS256", json!({"kty": "EC", "n": long_n, "e": "AQAB"})),
            Err(ProofError::Key)
        );
        // 2,048 bits after leading zero bytes, and one byte fewer.
        let mut padded = vec![0u8; 4];
        padded.extend([0xC5u8; 256]);
        let n = URL_SAFE_NO_PAD.encode(&padded);
        assert_eq!(
            fits("RS256", json!({"kty": "RSA", "n": n, "e": "AQAB"})),
            Ok(())
        );
        let mut short = vec![0u8; 4];
        short.extend([0xC5u8; 255]);
        let n = URL_SAFE_NO_PAD.encode(&short);
        assert_eq!(
            fits("RS256", json!({"kty": "RSA", "n": n, "e": "AQAB"})),
            Err(ProofError::Key)
        );
    }

    /// A key cache changes no answer: the verifier is built once per key, a proof whose
    /// signature is not by that key still fails, and a key that fails its checks never reaches
    /// the cache.
    #[test]
    fn a_key_cache_builds_once_per_key_and_changes_no_answer() {
        use std::sync::Mutex;
        #[derive(Default)]
        struct Counting(
            Mutex<std::collections::HashMap<String, Arc<dyn JwsVerifier>>>,
            Mutex<usize>,
        );
        impl KeyCache for Counting {
            fn verifier(
                &self,
                id: &str,
                build: &mut dyn FnMut() -> Option<Arc<dyn JwsVerifier>>,
            ) -> Option<Arc<dyn JwsVerifier>> {
                let mut map = self.0.lock().unwrap();
                if let Some(v) = map.get(id) {
                    return Some(Arc::clone(v));
                }
                *self.1.lock().unwrap() += 1;
                let v = build()?;
                map.insert(id.to_owned(), Arc::clone(&v));
                Some(v)
            }
        }
        let cache = Counting::default();
        let key = es256();
        for jti in ["a", "b", "c"] {
            let (h, mut c) = good(&key);
            c["jti"] = jti.into();
            assert!(verify_with(&sign(&key, h, c), &request(None), &cache).is_ok());
        }
        assert_eq!(*cache.1.lock().unwrap(), 1, "one build for three proofs");
        // Signed by another key but naming this one: the cached verifier refuses it.
        let thief = es256();
        let (h, c) = good(&key);
        assert_eq!(
            verify_with(&sign(&thief, h, c), &request(None), &cache),
            Err(ProofError::Signature)
        );
        // A private member: refused before the cache is asked.
        let (mut h, c) = good(&key);
        h["jwk"]["d"] = "AAAA".into();
        assert_eq!(
            verify_with(&sign(&key, h, c), &request(None), &cache),
            Err(ProofError::Key)
        );
        assert_eq!(*cache.1.lock().unwrap(), 1);
    }

    /// Each supported algorithm verifies with a key of its type, and a short RSA key is not one.
    #[test]
    fn every_supported_algorithm_verifies_and_short_rsa_keys_are_refused() {
        let ed = EdDSA.generate_key_pair(EdCurve::Ed25519).unwrap();
        let rsa = RS256.generate_key_pair(2048).unwrap();
        let keys = vec![
            es256(),
            Key {
                alg: "EdDSA",
                signer: Box::new(EdDSA.signer_from_der(ed.to_der_private_key()).unwrap()),
                public: ed.to_jwk_public_key().as_ref().clone(),
            },
            Key {
                alg: "RS256",
                signer: Box::new(RS256.signer_from_der(rsa.to_der_private_key()).unwrap()),
                public: rsa.to_jwk_public_key().as_ref().clone(),
            },
            Key {
                alg: "PS256",
                signer: Box::new(PS256.signer_from_der(rsa.to_der_private_key()).unwrap()),
                // The same RSA key without its `alg: RS256`: a key naming another alg is refused.
                public: {
                    let mut public = rsa.to_jwk_public_key().as_ref().clone();
                    public.remove("alg");
                    public
                },
            },
        ];
        for key in &keys {
            let (h, c) = good(key);
            let proof = verify(&sign(key, h, c), &request(None));
            assert!(proof.is_ok(), "{}: {proof:?}", key.alg);
        }
        // The RS256 key presented for PS256 while it names RS256: refused.
        let (mut h, c) = good(&keys[2]);
        h["alg"] = "PS256".into();
        let ps = Key {
            alg: "PS256",
            signer: Box::new(PS256.signer_from_der(rsa.to_der_private_key()).unwrap()),
            public: keys[2].public.clone(),
        };
        assert_eq!(
            verify(&sign(&ps, h, c), &request(None)),
            Err(ProofError::Key)
        );
        // A 1024-bit RSA key in the header is refused before any signature is checked.
        // (josekit makes no such key: a 1,024-bit modulus is written out.)
        let short = json!({"kty": "RSA", "e": "AQAB", "n": URL_SAFE_NO_PAD.encode([0xC5u8; 128])});
        let key = Key {
            alg: "RS256",
            signer: Box::new(RS256.signer_from_der(rsa.to_der_private_key()).unwrap()),
            public: short.as_object().unwrap().clone(),
        };
        let (h, c) = good(&key);
        assert_eq!(
            verify(&sign(&key, h, c), &request(None)),
            Err(ProofError::Key)
        );
    }
}
