//! `Authorization: Basic` for OAuth clients, per RFC 6749 §2.3.1: base64, split at the first
//! `:`, then form-url-decode each half. Written by hand (not a framework extractor) because the
//! decode step matters and because a malformed header must become `invalid_client`, not a 400.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BasicAuthError {
    #[error("not a Basic authorization")]
    NotBasic,
    #[error("malformed Basic credentials")]
    Malformed,
}

/// Credentials from a Basic header. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Whether a header value uses the Basic scheme at all (case-insensitive).
pub fn is_basic(header: &str) -> bool {
    header
        .get(..6)
        .is_some_and(|s| s.eq_ignore_ascii_case("basic "))
        || header.eq_ignore_ascii_case("basic")
}

/// The longest base64 part accepted. Bounds the work an outsider can ask of the decoder; real
/// client ids and secrets are far shorter. A credential whose percent-encoded form is longer
/// than this (see [`encode_basic`]) is refused as `Malformed`, so a round trip holds only within it.
pub const MAX_ENCODED_LEN: usize = 8192;

pub fn parse_basic(header: &str) -> Result<BasicCredentials, BasicAuthError> {
    if !is_basic(header) {
        return Err(BasicAuthError::NotBasic);
    }
    let encoded = header.get(6..).unwrap_or("").trim_matches(' ');
    if encoded.is_empty() || encoded.len() > MAX_ENCODED_LEN {
        return Err(BasicAuthError::Malformed);
    }
    let decoded = STANDARD
        .decode(encoded)
        .map_err(|_| BasicAuthError::Malformed)?;
    let decoded = String::from_utf8(decoded).map_err(|_| BasicAuthError::Malformed)?;
    let (user, pass) = decoded.split_once(':').ok_or(BasicAuthError::Malformed)?;
    Ok(BasicCredentials {
        username: form_decode(user)?,
        password: form_decode(pass)?,
    })
}

/// `application/x-www-form-urlencoded` decoding of one value.
fn form_decode(part: &str) -> Result<String, BasicAuthError> {
    let plus_decoded = part.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_decoded)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| BasicAuthError::Malformed)
}

/// Builds a header value the way RFC 6749 §2.3.1 clients do (used by tests and the rooms API).
pub fn encode_basic(username: &str, password: &str) -> String {
    fn enc(s: &str) -> String {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    }
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(username), enc(password)))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_decodes() {
        let h = format!("Basic {}", STANDARD.encode("my%20id:se%3Acret+x"));
        let c = parse_basic(&h).unwrap();
        assert_eq!(c.username, "my id");
        assert_eq!(c.password, "se:cret x");
        let h = format!("basic {}", STANDARD.encode("id:a:b"));
        assert_eq!(parse_basic(&h).unwrap().password, "a:b");
        assert!(!format!("{c:?}").contains("cret"));
    }

    #[test]
    fn malformed_inputs() {
        assert_eq!(parse_basic("Bearer abc"), Err(BasicAuthError::NotBasic));
        assert_eq!(parse_basic("Basic"), Err(BasicAuthError::Malformed));
        assert_eq!(parse_basic("Basic !!!"), Err(BasicAuthError::Malformed));
        let no_colon = format!("Basic {}", STANDARD.encode("nocolon"));
        assert_eq!(parse_basic(&no_colon), Err(BasicAuthError::Malformed));
        let bad_pct = format!("Basic {}", STANDARD.encode("a:%ZZ%"));
        assert!(parse_basic(&bad_pct).is_ok()); // invalid escapes are kept literally
        let bad_utf8 = format!("Basic {}", STANDARD.encode([0xff, b':', b'a']));
        assert_eq!(parse_basic(&bad_utf8), Err(BasicAuthError::Malformed));
    }

    /// Found by cargo-fuzz: 3,000 `!` fit the limit as raw bytes, but re-encoded (`%21` each) they
    /// do not, so a decoded credential need not re-parse. The limit is on the header, by design.
    #[test]
    fn limit_applies_to_the_encoded_header() {
        let raw = format!("a:{}", "!".repeat(3000));
        let creds = parse_basic(&format!("Basic {}", STANDARD.encode(&raw))).unwrap();
        let again = encode_basic(&creds.username, &creds.password);
        assert!(again.len() - "Basic ".len() > MAX_ENCODED_LEN);
        assert_eq!(parse_basic(&again), Err(BasicAuthError::Malformed));
        let too_long = format!("Basic {}", "A".repeat(MAX_ENCODED_LEN + 4));
        assert_eq!(parse_basic(&too_long), Err(BasicAuthError::Malformed));
        // Exactly at the limit is still read.
        let raw = format!("id:{}", "s".repeat(MAX_ENCODED_LEN / 4 * 3 - 3));
        let at_limit = format!("Basic {}", STANDARD.encode(&raw));
        assert_eq!(at_limit.len() - "Basic ".len(), MAX_ENCODED_LEN);
        assert_eq!(parse_basic(&at_limit).unwrap().username, "id");
    }

    proptest! {
        #[test]
        fn encode_parse_round_trip(user in "\\PC{0,50}", pass in "\\PC{0,80}") {
            let c = parse_basic(&encode_basic(&user, &pass)).unwrap();
            prop_assert_eq!(c.username, user);
            prop_assert_eq!(c.password, pass);
        }

        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = parse_basic(&s);
            let _ = parse_basic(&format!("Basic {s}"));
        }
    }
}
