//! JWS algorithms the product signs and verifies with.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    EdDSA,
    ES256,
    RS256,
    HS256,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown signing algorithm {0:?} (expected EdDSA, ES256, RS256 or HS256)")]
pub struct UnknownAlg(pub String);

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::EdDSA => "EdDSA",
            SigningAlg::ES256 => "ES256",
            SigningAlg::RS256 => "RS256",
            SigningAlg::HS256 => "HS256",
        }
    }

    /// Asymmetric algorithms publish their keys in the JWKS; HS256 publishes nothing.
    pub fn is_asymmetric(self) -> bool {
        !matches!(self, SigningAlg::HS256)
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlg {
    type Err = UnknownAlg;
    /// Exact JOSE names: `alg` values are case-sensitive (RFC 7515 §4.1.1).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "EdDSA" => Ok(SigningAlg::EdDSA),
            "ES256" => Ok(SigningAlg::ES256),
            "RS256" => Ok(SigningAlg::RS256),
            "HS256" => Ok(SigningAlg::HS256),
            other => Err(UnknownAlg(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HS256 alone publishes no key: a JWKS with a shared secret in it would be the leak.
    #[test]
    fn hs256_is_the_one_symmetric_algorithm() {
        assert!(!SigningAlg::HS256.is_asymmetric());
        for alg in [SigningAlg::EdDSA, SigningAlg::ES256, SigningAlg::RS256] {
            assert!(alg.is_asymmetric(), "{alg}");
        }
    }

    #[test]
    fn round_trips_and_is_case_sensitive() {
        for alg in [
            SigningAlg::EdDSA,
            SigningAlg::ES256,
            SigningAlg::RS256,
            SigningAlg::HS256,
        ] {
            assert_eq!(alg.to_string().parse::<SigningAlg>(), Ok(alg));
        }
        assert!("eddsa".parse::<SigningAlg>().is_err());
        assert!("none".parse::<SigningAlg>().is_err());
    }
}
