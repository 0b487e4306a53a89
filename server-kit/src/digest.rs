//! SHA-256 for the request paths' cache keys (a token, a jti). From the `sha2` crate, which
//! uses the CPU's SHA extensions: OpenSSL 3's one-shot `SHA256()` fetches its implementation
//! from the provider on every call, ~5 % of a rooms GET's CPU (bench/RESULTS.md "Profiles").

use sha2::Digest;

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    /// The FIPS 180-2 test vector, and the same digest as OpenSSL's.
    #[test]
    fn the_standard_digest() {
        let abc = super::sha256(b"abc");
        assert_eq!(
            abc[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256(\"abc\") starts ba7816bf"
        );
        let long = "x".repeat(700);
        assert_eq!(
            super::sha256(long.as_bytes()),
            openssl::sha::sha256(long.as_bytes())
        );
    }
}
