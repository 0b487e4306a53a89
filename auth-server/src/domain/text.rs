//! Free text an operator or an admin-API caller gives (names, external subs, resource ids):
//! one rule for every column that holds it, so none is stored or looked up past its length
//! (counted in characters, not bytes) or with a control character (a NUL is a database error
//! in PostgreSQL text, a line break would forge lines in the CLI's listings).

/// At most `max_chars` characters, none of them a control character.
pub fn printable_within(s: &str, max_chars: usize) -> bool {
    s.chars().count() <= max_chars && !s.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_characters_none_a_control() {
        assert!(printable_within(&"é".repeat(64), 64));
        assert!(!printable_within(&"é".repeat(65), 64));
        assert!(!printable_within(&"a".repeat(100), 64));
        assert!(printable_within("app-1", 64));
        assert!(printable_within("", 64));
        for bad in ["\0", "a\0b", "line\nbreak", "\u{7f}"] {
            assert!(!printable_within(bad, 64), "{bad:?}");
        }
    }
}
