//! Parsing of the two SCRAM server messages (RFC 5802 §7): server-first
//! (`r=…,s=…,i=…`) and server-final (`v=…` or `e=…`). Input is untrusted; every failure is a
//! typed [`AuthError`].

use crate::error::AuthError;

use super::primitives::b64_decode;

/// A parsed server-first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFirst {
    /// The combined nonce (client nonce followed by the server's part).
    pub nonce: String,
    /// The decoded salt.
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count, as sent (the minimum is checked by the client).
    pub iterations: u32,
}

/// A parsed server-final message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFinal {
    /// `v=`: the server signature, decoded.
    Verifier(Vec<u8>),
    /// `e=`: the server's error value.
    Error(String),
}

/// Splits `a=value,b=value,…` into `(name, value)` pairs.
fn attributes(message: &str) -> impl Iterator<Item = Result<(char, &str), AuthError>> {
    message.split(',').map(|part| {
        let malformed = AuthError::MalformedServerMessage("attribute is not of the form x=value");
        let (name, value) = part.split_once('=').ok_or(malformed.clone())?;
        let mut chars = name.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii_alphabetic() => Ok((c, value)),
            _ => Err(malformed),
        }
    })
}

/// Whether `s` is a valid SCRAM nonce value: printable ASCII except `,`.
pub(crate) fn is_valid_nonce(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

fn expect_attribute<'a>(
    attrs: &mut impl Iterator<Item = Result<(char, &'a str), AuthError>>,
    name: char,
) -> Result<&'a str, AuthError> {
    match attrs.next() {
        Some(Ok((n, value))) if n == name => Ok(value),
        Some(Ok(('m', _))) => Err(AuthError::MalformedServerMessage(
            "unsupported mandatory extension (m=)",
        )),
        Some(Err(e)) => Err(e),
        _ => Err(AuthError::MissingAttribute(name)),
    }
}

impl ServerFirst {
    /// Parses `[m=…,]r=nonce,s=salt,i=count[,extensions]`. A mandatory extension (`m=`) is an
    /// error, as RFC 5802 requires.
    pub fn parse(message: &str) -> Result<Self, AuthError> {
        let mut attrs = attributes(message);
        let nonce = expect_attribute(&mut attrs, 'r')?;
        if !is_valid_nonce(nonce) {
            return Err(AuthError::MalformedServerMessage(
                "nonce is empty or not printable ASCII",
            ));
        }
        let salt = expect_attribute(&mut attrs, 's')?;
        let salt = b64_decode(salt).ok_or(AuthError::InvalidBase64('s'))?;
        if salt.is_empty() {
            return Err(AuthError::MalformedServerMessage("salt is empty"));
        }
        let iterations = expect_attribute(&mut attrs, 'i')?;
        if iterations.is_empty() || !iterations.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AuthError::MalformedServerMessage(
                "iteration count is not a decimal number",
            ));
        }
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| AuthError::MalformedServerMessage("iteration count is too large"))?;
        // Extensions may follow; they must still be well-formed attributes.
        for attr in attrs {
            attr?;
        }
        Ok(ServerFirst {
            nonce: nonce.to_owned(),
            salt,
            iterations,
        })
    }
}

impl ServerFinal {
    /// Parses `v=signature[,extensions]` or `e=error[,extensions]`.
    pub fn parse(message: &str) -> Result<Self, AuthError> {
        let mut attrs = attributes(message);
        let result = match attrs.next() {
            Some(Ok(('e', value))) => ServerFinal::Error(value.to_owned()),
            Some(Ok(('v', value))) => {
                let sig = b64_decode(value).ok_or(AuthError::InvalidBase64('v'))?;
                ServerFinal::Verifier(sig)
            }
            Some(Err(e)) => return Err(e),
            _ => return Err(AuthError::MissingAttribute('v')),
        };
        for attr in attrs {
            attr?;
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_first() {
        let m = ServerFirst::parse("r=abcdef,s=QSXCR+Q6sek8bf92,i=4096").unwrap();
        assert_eq!(m.nonce, "abcdef");
        assert_eq!(m.iterations, 4096);
        assert_eq!(m.salt.len(), 12);
        assert!(ServerFirst::parse("r=abc,s=QSXCR+Q6sek8bf92,i=4096,x=ext").is_ok());
    }

    #[test]
    fn rejects_bad_server_first() {
        use AuthError::*;
        type Check = fn(&AuthError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, MalformedServerMessage(_))),
            ("s=QSXC,i=4096", |e| matches!(e, MissingAttribute('r'))),
            ("r=abc,i=4096", |e| matches!(e, MissingAttribute('s'))),
            ("r=abc,s=QSXCR+Q6sek8bf92", |e| {
                matches!(e, MissingAttribute('i'))
            }),
            ("r=abc,s=!!!,i=4096", |e| matches!(e, InvalidBase64('s'))),
            ("r=abc,s=,i=4096", |e| {
                matches!(e, MalformedServerMessage(_))
            }),
            ("r=abc,s=QSXCR+Q6sek8bf92,i=-1", |e| {
                matches!(e, MalformedServerMessage(_))
            }),
            ("r=abc,s=QSXCR+Q6sek8bf92,i=99999999999", |e| {
                matches!(e, MalformedServerMessage(_))
            }),
            ("r=abc,s=QSXCR+Q6sek8bf92,i=", |e| {
                matches!(e, MalformedServerMessage(_))
            }),
            ("m=ext,r=abc,s=QSXCR+Q6sek8bf92,i=4096", |e| {
                matches!(e, MalformedServerMessage(_))
            }),
            ("r=,s=QSXCR+Q6sek8bf92,i=4096", |e| {
                matches!(e, MalformedServerMessage(_))
            }),
            ("r=a\u{7f}b,s=QSXCR+Q6sek8bf92,i=4096", |e| {
                matches!(e, MalformedServerMessage(_))
            }),
            ("r=abc,s=QSXCR+Q6sek8bf92,i=4096,,", |e| {
                matches!(e, MalformedServerMessage(_))
            }),
            ("é=x", |e| matches!(e, MalformedServerMessage(_))),
        ];
        for (msg, check) in cases {
            let err = ServerFirst::parse(msg).unwrap_err();
            assert!(check(&err), "{msg:?} gave {err:?}");
        }
    }

    #[test]
    fn parses_server_final() {
        assert_eq!(
            ServerFinal::parse("v=AAEC").unwrap(),
            ServerFinal::Verifier(vec![0, 1, 2])
        );
        assert_eq!(
            ServerFinal::parse("e=invalid-proof").unwrap(),
            ServerFinal::Error("invalid-proof".into())
        );
        assert!(matches!(
            ServerFinal::parse(""),
            Err(AuthError::MalformedServerMessage(_))
        ));
        assert!(matches!(
            ServerFinal::parse("x=1"),
            Err(AuthError::MissingAttribute('v'))
        ));
        assert!(matches!(
            ServerFinal::parse("v=@@"),
            Err(AuthError::InvalidBase64('v'))
        ));
    }
}
