//! RFC 6750 §2.1 header parsing, and RFC 9449 §7.1's `DPoP` scheme: the scheme is
//! case-insensitive; exactly one token.

/// How the token was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    /// `Authorization: DPoP <token>` with a `DPoP` proof header (RFC 9449 §7.1).
    Dpop,
}

/// What the `Authorization` header(s) hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerHeader {
    /// No header, or another scheme: 401 `missing_token`.
    Missing,
    /// `Bearer`/`DPoP` with no token, several tokens or several headers: 400 `invalid_request`.
    Malformed,
    Token(String, Scheme),
}

/// The scheme of one header value, if it is one of ours, and what follows it.
fn scheme_of(value: &[u8]) -> Option<(Scheme, &[u8])> {
    for (name, scheme) in [(&b"bearer"[..], Scheme::Bearer), (b"dpop", Scheme::Dpop)] {
        if value.len() >= name.len() && value[..name.len()].eq_ignore_ascii_case(name) {
            let rest = &value[name.len()..];
            // `Bearerxyz` is another scheme altogether.
            if rest.is_empty() || rest[0] == b' ' {
                return Some((scheme, rest));
            }
        }
    }
    None
}

pub fn parse<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> BearerHeader {
    let values: Vec<&[u8]> = values.into_iter().collect();
    let ours: Vec<(Scheme, &[u8])> = values.iter().filter_map(|v| scheme_of(v)).collect();
    match ours.as_slice() {
        [] => BearerHeader::Missing,
        [(scheme, rest)] if values.len() == 1 => {
            let Ok(rest) = std::str::from_utf8(rest) else {
                return BearerHeader::Malformed;
            };
            let mut parts = rest.split_ascii_whitespace();
            match (parts.next(), parts.next()) {
                (Some(token), None) => BearerHeader::Token(token.to_owned(), *scheme),
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
        let bearer = |t: &str| BearerHeader::Token(t.into(), Scheme::Bearer);
        assert_eq!(p(&["bEaReR tok"]), bearer("tok"));
        assert_eq!(p(&["Bearer  tok "]), bearer("tok"));
    }

    /// RFC 9449 §7.1: the `DPoP` scheme, as case-insensitive as Bearer; one credential only.
    #[test]
    fn the_dpop_scheme() {
        let dpop = |t: &str| BearerHeader::Token(t.into(), Scheme::Dpop);
        assert_eq!(p(&["DPoP tok"]), dpop("tok"));
        assert_eq!(p(&["dpop tok"]), dpop("tok"));
        assert_eq!(p(&["DPoPtok"]), BearerHeader::Missing);
        assert_eq!(p(&["DPoP"]), BearerHeader::Malformed);
        assert_eq!(p(&["DPoP a b"]), BearerHeader::Malformed);
        assert_eq!(p(&["DPoP a", "Bearer a"]), BearerHeader::Malformed);
    }

    /// One of our schemes beside a header of another scheme is still two `Authorization`
    /// headers: which credential is meant is ambiguous, so it is refused, not the ours taken.
    #[test]
    fn our_scheme_beside_another_schemes_header_is_malformed() {
        assert_eq!(p(&["Basic abc", "Bearer tok"]), BearerHeader::Malformed);
        assert_eq!(p(&["DPoP tok", "Basic abc"]), BearerHeader::Malformed);
    }
}
