//! Percent-decoding (RFC 3986 section 2.1) as connection strings use it: the one decoder of
//! the workspace, shared by [`ServerAddress::parse`](crate::ServerAddress::parse) (hosts and
//! unix socket paths) and `mongo-client`'s connection string parser (user information, the
//! auth database, option names and values).
//!
//! `+` is NOT decoded to a space: the connection string spec asks for `%20`.

/// Whether every `%` in `input` starts a valid `%XX` escape.
pub fn is_well_formed(input: &str) -> bool {
    let bytes = input.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || (bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// Decodes `%XX` escapes; `None` when an escape is malformed or the result is not UTF-8.
pub fn decode(input: &str) -> Option<String> {
    if !input.contains('%') {
        return Some(input.to_owned());
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value)?;
            let lo = bytes.get(i + 2).copied().and_then(hex_value)?;
            out.push((hi << 4) | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_keeps_plus() {
        assert_eq!(decode("a%2Fb+c%3a").unwrap(), "a/b+c:");
        assert_eq!(decode("b%C3%BCcher").unwrap(), "b\u{fc}cher");
        assert_eq!(decode("plain").unwrap(), "plain");
    }

    #[test]
    fn rejects_malformed_escapes() {
        for bad in ["%", "%2", "%zz", "a%2", "%20%", "%FF", "%+1", "%-1"] {
            assert!(decode(bad).is_none(), "{bad}");
        }
        assert!(!is_well_formed("user%w"));
        assert!(!is_well_formed("user%20%"));
        assert!(is_well_formed("user%20x"));
    }
}
