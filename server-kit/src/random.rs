//! Identifiers and secrets from the OS CSPRNG.

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomError;

pub fn fill(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buf).map_err(|_| RandomError)
}

/// `len` characters of `[A-Za-z0-9]`, unbiased (rejection sampling: 5.95 bits per character).
pub fn base62(len: usize) -> Result<String, RandomError> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill(&mut buf)?;
        for &b in &buf {
            // 248 = 4 * 62: values at or above it would favour the first characters.
            if b < 248 && out.len() < len {
                out.push(char::from(BASE62[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

/// `len` lower-case ASCII letters, unbiased.
pub fn letters(len: usize) -> Result<String, RandomError> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 32];
    while out.len() < len {
        fill(&mut buf)?;
        for &b in &buf {
            // 234 = 9 * 26.
            if b < 234 && out.len() < len {
                out.push(char::from(b'a' + b % 26));
            }
        }
    }
    Ok(out)
}

/// `len` decimal digits, unbiased.
pub fn digits(len: usize) -> Result<String, RandomError> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 32];
    while out.len() < len {
        fill(&mut buf)?;
        for &b in &buf {
            if b < 250 && out.len() < len {
                out.push(char::from(b'0' + b % 10));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_has_the_length_and_alphabet() {
        let s = base62(48).unwrap();
        assert_eq!(s.len(), 48);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(s, base62(48).unwrap());
        assert!(digits(10).unwrap().bytes().all(|b| b.is_ascii_digit()));
        assert!(letters(10).unwrap().bytes().all(|b| b.is_ascii_lowercase()));
    }
}
