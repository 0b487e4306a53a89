#![no_main]
//! The Basic-auth parser: never panics; what it decodes re-encodes to the same credentials.

use libfuzzer_sys::fuzz_target;
use shared::basic_auth::{encode_basic, parse_basic};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(creds) = parse_basic(text) {
        let again = parse_basic(&encode_basic(&creds.username, &creds.password)).expect("round trip");
        assert_eq!(again, creds);
    }
    let _ = parse_basic(&format!("Basic {text}"));
});
