//! The client side of RFC 5802 as a typestate machine over the text messages, independent of
//! MongoDB's framing and of its password preparation: [`ExpectServerFirst`] consumes the
//! server-first message and becomes [`ExpectServerFinal`], which verifies the server's
//! signature. The RFC 5802 and RFC 7677 test vectors run directly against it.

use std::fmt;

use crate::error::AuthError;

use super::cache::ScramCache;
use super::message::{ServerFinal, ServerFirst, is_valid_nonce};
use super::primitives::{self as p, DEFAULT_MAX_ITERATIONS, MIN_ITERATIONS, ScramHash};

/// The GS2 header this client always sends: no channel binding, no authzid (`n,,`).
pub const GS2_HEADER: &str = "n,,";
/// `base64(GS2_HEADER)`, the channel-binding attribute of the client-final message.
const CHANNEL_BINDING: &str = "biws";

/// Awaiting the server-first message. Holds the password input to `Hi` (already prepared:
/// MongoDB's MD5 digest for SCRAM-SHA-1, SASLprep'ed for SCRAM-SHA-256); `Debug` hides it.
#[derive(Clone)]
pub struct ExpectServerFirst {
    hash: ScramHash,
    password: Vec<u8>,
    client_nonce: String,
    client_first_bare: String,
    max_iterations: u32,
}

/// Awaiting the server-final message; holds the signature the server must produce.
#[derive(Clone)]
#[must_use]
pub struct ExpectServerFinal {
    hash: ScramHash,
    expected_signature: Vec<u8>,
}

impl ExpectServerFirst {
    /// Starts a conversation for `username` (escaped, never SASLprep'ed) with the prepared
    /// `password` input and the caller's `client_nonce` (printable ASCII without `,`).
    pub fn new(
        hash: ScramHash,
        username: &str,
        password: impl Into<Vec<u8>>,
        client_nonce: &str,
    ) -> Result<Self, AuthError> {
        if !is_valid_nonce(client_nonce) {
            return Err(AuthError::InvalidClientNonce);
        }
        Ok(Self {
            hash,
            password: password.into(),
            client_nonce: client_nonce.to_owned(),
            client_first_bare: format!("n={},r={client_nonce}", p::escape_username(username)),
            max_iterations: DEFAULT_MAX_ITERATIONS,
        })
    }

    /// The most PBKDF2 iterations the server may ask for
    /// ([`DEFAULT_MAX_ITERATIONS`] unless changed).
    pub fn with_max_iterations(mut self, max_iterations: u32) -> Self {
        self.max_iterations = max_iterations;
        self
    }

    /// The hash this conversation uses.
    pub fn hash(&self) -> ScramHash {
        self.hash
    }

    /// The full client-first message: `n,,n=<user>,r=<nonce>`.
    pub fn client_first_message(&self) -> String {
        format!("{GS2_HEADER}{}", self.client_first_bare)
    }

    /// The client-first message without its GS2 header (part of the AuthMessage).
    pub fn client_first_bare(&self) -> &str {
        &self.client_first_bare
    }

    /// Consumes the server-first message and returns the next state with the client-final
    /// message to send. Refuses iteration counts below 4096 or above the maximum, nonces that do not extend the
    /// client's, and malformed messages. The salted password comes from (and goes into)
    /// `cache`.
    pub fn handle_server_first(
        self,
        server_first: &str,
        cache: &ScramCache,
    ) -> Result<(ExpectServerFinal, String), AuthError> {
        let parsed = ServerFirst::parse(server_first)?;
        if parsed.nonce.len() <= self.client_nonce.len()
            || !parsed.nonce.starts_with(&self.client_nonce)
        {
            return Err(AuthError::NonceMismatch);
        }
        if parsed.iterations < MIN_ITERATIONS {
            return Err(AuthError::IterationCountTooLow {
                iterations: parsed.iterations,
                minimum: MIN_ITERATIONS,
            });
        }
        if parsed.iterations > self.max_iterations {
            return Err(AuthError::IterationCountTooHigh {
                iterations: parsed.iterations,
                maximum: self.max_iterations,
            });
        }
        let hash = self.hash;
        let salted = cache.salted_password(hash, &self.password, &parsed.salt, parsed.iterations);
        let without_proof = format!("c={CHANNEL_BINDING},r={}", parsed.nonce);
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_key = p::client_key(hash, &salted);
        let proof = p::client_proof(hash, &client_key, auth_message.as_bytes());
        let server_key = p::server_key(hash, &salted);
        let expected_signature = p::server_signature(hash, &server_key, auth_message.as_bytes());
        let client_final = format!("{without_proof},p={}", p::b64_encode(&proof));
        Ok((
            ExpectServerFinal {
                hash,
                expected_signature,
            },
            client_final,
        ))
    }
}

impl ExpectServerFinal {
    /// Verifies the server-final message: `v=` must carry exactly the expected server
    /// signature; `e=` becomes [`AuthError::ServerError`].
    pub fn handle_server_final(self, server_final: &str) -> Result<(), AuthError> {
        match ServerFinal::parse(server_final)? {
            ServerFinal::Error(e) => Err(AuthError::ServerError(e)),
            ServerFinal::Verifier(sig) => {
                if p::constant_time_eq(&sig, &self.expected_signature) {
                    Ok(())
                } else {
                    Err(AuthError::ServerSignatureMismatch)
                }
            }
        }
    }

    /// The hash this conversation uses.
    pub fn hash(&self) -> ScramHash {
        self.hash
    }
}

impl fmt::Debug for ExpectServerFirst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpectServerFirst")
            .field("hash", &self.hash)
            .field("client_first_bare", &self.client_first_bare)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ExpectServerFinal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpectServerFinal")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5802 §5: SCRAM-SHA-1, user "user", password "pencil" (raw, no MongoDB digest).
    #[test]
    fn rfc5802_vector() {
        let c = ExpectServerFirst::new(
            ScramHash::Sha1,
            "user",
            "pencil",
            "fyko+d2lbbFgONRv9qkxdawL",
        )
        .unwrap();
        assert_eq!(
            c.client_first_message(),
            "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
        );
        let (fin, client_final) = c
            .handle_server_first(
                "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
                &ScramCache::new(),
            )
            .unwrap();
        assert_eq!(
            client_final,
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        fin.handle_server_final("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
            .unwrap();
    }

    /// RFC 7677 §3: SCRAM-SHA-256, user "user", password "pencil".
    #[test]
    fn rfc7677_vector() {
        let c = ExpectServerFirst::new(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO")
            .unwrap();
        assert_eq!(c.client_first_message(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let (fin, client_final) = c
            .handle_server_first(
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
                &ScramCache::new(),
            )
            .unwrap();
        assert_eq!(
            client_final,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        fin.handle_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    fn sha1_first() -> ExpectServerFirst {
        ExpectServerFirst::new(
            ScramHash::Sha1,
            "user",
            "pencil",
            "fyko+d2lbbFgONRv9qkxdawL",
        )
        .unwrap()
    }

    #[test]
    fn refuses_bad_server_first() {
        let cache = ScramCache::new();
        let wrong_nonce = "r=XXXX+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
        assert!(matches!(
            sha1_first().handle_server_first(wrong_nonce, &cache),
            Err(AuthError::NonceMismatch)
        ));
        let not_extended = "r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096";
        assert!(matches!(
            sha1_first().handle_server_first(not_extended, &cache),
            Err(AuthError::NonceMismatch)
        ));
        let low = "r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4095";
        assert!(matches!(
            sha1_first().handle_server_first(low, &cache),
            Err(AuthError::IterationCountTooLow {
                iterations: 4095,
                minimum: 4096
            })
        ));
        let huge = "r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=4294967295";
        assert!(matches!(
            sha1_first().handle_server_first(huge, &cache),
            Err(AuthError::IterationCountTooHigh {
                iterations: u32::MAX,
                maximum: DEFAULT_MAX_ITERATIONS
            })
        ));
        let above_own = "r=fyko+d2lbbFgONRv9qkxdawL3rfc,s=QSXCR+Q6sek8bf92,i=5000";
        assert!(matches!(
            sha1_first()
                .with_max_iterations(4999)
                .handle_server_first(above_own, &cache),
            Err(AuthError::IterationCountTooHigh {
                iterations: 5000,
                maximum: 4999
            })
        ));
        assert!(cache.is_empty(), "no key derived for refused messages");
    }

    #[test]
    fn refuses_bad_server_final() {
        let first = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
        let cache = ScramCache::new();
        let fin = || sha1_first().handle_server_first(first, &cache).unwrap().0;
        assert!(matches!(
            fin().handle_server_final("v=AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            Err(AuthError::ServerSignatureMismatch)
        ));
        assert!(matches!(
            fin().handle_server_final("v=rmF9pqV8S7suAoZWja4dJRkFsKQ"),
            Err(AuthError::InvalidBase64('v'))
        ));
        assert!(matches!(
            fin().handle_server_final("e=invalid-proof"),
            Err(AuthError::ServerError(e)) if e == "invalid-proof"
        ));
        assert!(matches!(
            fin().handle_server_final("r=abc"),
            Err(AuthError::MissingAttribute('v'))
        ));
    }

    #[test]
    fn rejects_bad_client_nonce_and_escapes_username() {
        for bad in ["", "a,b", "a b", "é"] {
            assert!(matches!(
                ExpectServerFirst::new(ScramHash::Sha256, "u", "p", bad),
                Err(AuthError::InvalidClientNonce)
            ));
        }
        let c = ExpectServerFirst::new(ScramHash::Sha256, "a=b,c", "p", "n").unwrap();
        assert_eq!(c.client_first_message(), "n,,n=a=3Db=2Cc,r=n");
        assert!(!format!("{c:?}").contains("\"p\""));
    }
}
