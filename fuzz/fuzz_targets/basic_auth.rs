#![no_main]
//! The Basic-auth parser: never panics; what it decodes re-encodes to the same
//! credentials whenever the re-encoded header is within `MAX_ENCODED_LEN`.

use libfuzzer_sys::fuzz_target;
use shared::basic_auth::{MAX_ENCODED_LEN, encode_basic, parse_basic};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(creds) = parse_basic(text) {
        let header = encode_basic(&creds.username, &creds.password);
        // Percent-encoding can triple a credential: past the header limit it is refused by design.
        if header.len() - "Basic ".len() <= MAX_ENCODED_LEN {
            let again = parse_basic(&header).expect("round trip");
            assert_eq!(again, creds);
        }
    }
    let _ = parse_basic(&format!("Basic {text}"));
});
