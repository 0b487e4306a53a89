#![no_main]
//! The e-mail and domain parsers: never panic, and whatever they accept round-trips.

use libfuzzer_sys::fuzz_target;
use shared::{Domain, DomainPattern, Email};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(email) = Email::parse(text) {
        let again = Email::parse(email.normalized()).expect("a normalised e-mail parses");
        assert_eq!(again.normalized(), email.normalized());
        assert!(email.normalized().is_ascii());
    }
    if let Ok(domain) = Domain::parse(text) {
        assert_eq!(Domain::parse(domain.as_str()).expect("round trip"), domain);
    }
    if let Ok(pattern) = DomainPattern::parse(text) {
        assert_eq!(DomainPattern::parse(&pattern.to_string()).expect("round trip"), pattern);
    }
});
