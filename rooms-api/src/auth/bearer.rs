//! RFC 6750 §2.1 header parsing: the scheme is case-insensitive; exactly one token.

/// What the `Authorization` header(s) hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerHeader {
    /// No header, or another scheme: 401 `missing_token`.
    Missing,
    /// `Bearer` with no token, several tokens or several headers: 400 `invalid_request`.
    Malformed,
    Token(String),
}

pub fn parse<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> BearerHeader {
    let values: Vec<&[u8]> = values.into_iter().collect();
    let bearer: Vec<&[u8]> = values
        .iter()
        .copied()
        .filter(|v| v.len() >= 6 && v[..6].eq_ignore_ascii_case(b"bearer"))
        .collect();
    match bearer.as_slice() {
        [] => BearerHeader::Missing,
        [one] if values.len() == 1 => {
            let Ok(text) = std::str::from_utf8(one) else {
                return BearerHeader::Malformed;
            };
            let rest = &text[6..];
            if !rest.is_empty() && !rest.starts_with(' ') {
                // `Bearerxyz` is another scheme altogether.
                return BearerHeader::Missing;
            }
            let mut parts = rest.split_ascii_whitespace();
            match (parts.next(), parts.next()) {
                (Some(token), None) => BearerHeader::Token(token.to_owned()),
                _ => BearerHeader::Malformed,
            }
        }
        _ => BearerHeader::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(values: &[&str]) -> BearerHeader {
        parse(values.iter().map(|v| v.as_bytes()))
    }

    #[test]
    fn the_rfc6750_table() {
        assert_eq!(p(&[]), BearerHeader::Missing);
        assert_eq!(p(&["Basic abc"]), BearerHeader::Missing);
        assert_eq!(p(&["Bearerabc"]), BearerHeader::Missing);
        assert_eq!(p(&["Bearer"]), BearerHeader::Malformed);
        assert_eq!(p(&["Bearer   "]), BearerHeader::Malformed);
        assert_eq!(p(&["Bearer a b"]), BearerHeader::Malformed);
        assert_eq!(p(&["Bearer a", "Bearer b"]), BearerHeader::Malformed);
        assert_eq!(p(&["bEaReR tok"]), BearerHeader::Token("tok".into()));
        assert_eq!(p(&["Bearer  tok "]), BearerHeader::Token("tok".into()));
    }
}
