#![no_main]
//! The token parser: header decoding, `typ` policy and claim parsing never panic on any input.

use libfuzzer_sys::fuzz_target;
use shared::token::{TypPolicy, check_typ, decode_header};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(header) = decode_header(text) {
        let _ = check_typ(&header, TypPolicy::AccessTokenOnly);
        let _ = check_typ(&header, TypPolicy::AllowPlainJwt);
    }
    let _ = serde_json::from_str::<shared::AccessTokenClaims>(text);
});
