//! The pure SCRAM math of RFC 5802 §3 (Hi, HMAC, H, the keys, proofs and signatures), MongoDB's
//! MD5 password digest for SCRAM-SHA-1, and SASLprep. A server implementation can reuse all of
//! it; nothing here does I/O or keeps state.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::error::AuthError;

/// The hash function of a SCRAM variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramHash {
    /// SHA-1, for SCRAM-SHA-1 (20-byte outputs).
    Sha1,
    /// SHA-256, for SCRAM-SHA-256 (32-byte outputs).
    Sha256,
}

impl ScramHash {
    /// The output length of the hash in bytes.
    pub fn output_len(self) -> usize {
        match self {
            ScramHash::Sha1 => 20,
            ScramHash::Sha256 => 32,
        }
    }
}

/// The default upper bound on the iteration count a server may ask for: 1,000,000, far above
/// what any real server uses (mongod's defaults are 10,000 for SCRAM-SHA-1 and 15,000 for
/// SCRAM-SHA-256), yet low enough that a hostile server cannot make one connection burn
/// minutes of CPU. Configurable per credential
/// ([`CredentialBuilder::max_scram_iterations`](crate::CredentialBuilder::max_scram_iterations)).
pub const DEFAULT_MAX_ITERATIONS: u32 = 1_000_000;
/// The minimum iteration count the auth spec allows a server to ask for.
pub const MIN_ITERATIONS: u32 = 4096;

/// `Hi(password, salt, i)`: PBKDF2 with HMAC-`hash`, one output block.
pub fn hi(hash: ScramHash, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = vec![0u8; hash.output_len()];
    match hash {
        ScramHash::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out),
        ScramHash::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out),
    }
    out
}

/// `HMAC(key, message)` with the given hash.
pub fn hmac(hash: ScramHash, key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail; fall back to an empty
    // output rather than panic if that ever changed (an empty proof is simply refused).
    match hash {
        ScramHash::Sha1 => match Hmac::<Sha1>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(message);
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        },
        ScramHash::Sha256 => match Hmac::<Sha256>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(message);
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        },
    }
}

/// `H(data)`: the plain hash.
pub fn h(hash: ScramHash, data: &[u8]) -> Vec<u8> {
    match hash {
        ScramHash::Sha1 => Sha1::digest(data).to_vec(),
        ScramHash::Sha256 => Sha256::digest(data).to_vec(),
    }
}

/// Byte-wise XOR of two equal-length strings (the shorter length wins if they differ).
pub fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `ClientKey := HMAC(SaltedPassword, "Client Key")`.
pub fn client_key(hash: ScramHash, salted_password: &[u8]) -> Vec<u8> {
    hmac(hash, salted_password, b"Client Key")
}

/// `ServerKey := HMAC(SaltedPassword, "Server Key")`.
pub fn server_key(hash: ScramHash, salted_password: &[u8]) -> Vec<u8> {
    hmac(hash, salted_password, b"Server Key")
}

/// `StoredKey := H(ClientKey)`.
pub fn stored_key(hash: ScramHash, client_key: &[u8]) -> Vec<u8> {
    h(hash, client_key)
}

/// `ClientSignature := HMAC(StoredKey, AuthMessage)`.
pub fn client_signature(hash: ScramHash, stored_key: &[u8], auth_message: &[u8]) -> Vec<u8> {
    hmac(hash, stored_key, auth_message)
}

/// `ClientProof := ClientKey XOR ClientSignature`, computed from the client key.
pub fn client_proof(hash: ScramHash, client_key: &[u8], auth_message: &[u8]) -> Vec<u8> {
    let signature = client_signature(hash, &stored_key(hash, client_key), auth_message);
    xor(client_key, &signature)
}

/// `ServerSignature := HMAC(ServerKey, AuthMessage)`.
pub fn server_signature(hash: ScramHash, server_key: &[u8], auth_message: &[u8]) -> Vec<u8> {
    hmac(hash, server_key, auth_message)
}

/// The server-side check of a client proof: recovers the client key from the proof and checks
/// that it hashes to `stored_key`.
pub fn verify_client_proof(
    hash: ScramHash,
    stored_key: &[u8],
    auth_message: &[u8],
    proof: &[u8],
) -> bool {
    if proof.len() != hash.output_len() {
        return false;
    }
    let signature = client_signature(hash, stored_key, auth_message);
    let client_key = xor(proof, &signature);
    constant_time_eq(&h(hash, &client_key), stored_key)
}

/// MongoDB's SCRAM-SHA-1 password: `HEX(MD5(username + ":mongo:" + password))`, lower-case
/// hex, with neither input SASLprep'ed.
pub fn mongo_password_digest(username: &str, password: &str) -> String {
    let mut md5 = Md5::new();
    md5.update(username.as_bytes());
    md5.update(b":mongo:");
    md5.update(password.as_bytes());
    let digest = md5.finalize();
    let mut hex = String::with_capacity(32);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// SASLprep (RFC 4013) of a password, as SCRAM-SHA-256 requires.
pub fn saslprep(password: &str) -> Result<String, AuthError> {
    stringprep::saslprep(password)
        .map(|s| s.into_owned())
        .map_err(|_| AuthError::InvalidPassword)
}

/// Escapes a SCRAM `saslname`: `=` becomes `=3D` and `,` becomes `=2C` (RFC 5802 §5.1).
pub fn escape_username(username: &str) -> String {
    let mut out = String::with_capacity(username.len());
    for c in username.chars() {
        match c {
            '=' => out.push_str("=3D"),
            ',' => out.push_str("=2C"),
            c => out.push(c),
        }
    }
    out
}

/// Base64 (standard alphabet, padded), as SCRAM attributes use.
pub fn b64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard padded base64; `None` if invalid.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mongo_digest_of_spec_example() {
        // MD5("user:mongo:pencil"), the spec's SCRAM-SHA-1 example user.
        assert_eq!(
            mongo_password_digest("user", "pencil"),
            "1c33006ec1ffd90f9cadcbcc0e118200"
        );
    }

    #[test]
    fn saslprep_vectors() {
        // RFC 4013 §3 examples.
        assert_eq!(saslprep("I\u{00AD}X").unwrap(), "IX"); // soft hyphen mapped to nothing
        assert_eq!(saslprep("user").unwrap(), "user");
        assert_eq!(saslprep("USER").unwrap(), "USER"); // case preserved
        assert_eq!(saslprep("\u{00AA}").unwrap(), "a"); // NFKC
        assert_eq!(saslprep("\u{2168}").unwrap(), "IX"); // NFKC
        assert!(matches!(
            saslprep("\u{0007}"),
            Err(AuthError::InvalidPassword)
        )); // prohibited
        assert!(matches!(
            saslprep("\u{0627}\u{0031}"),
            Err(AuthError::InvalidPassword)
        )); // bidi
        // The auth spec's SASLprep test users.
        assert_eq!(saslprep("I\u{00AD}V").unwrap(), "IV");
        assert_eq!(saslprep("\u{2163}").unwrap(), "IV");
        // Non-ASCII space maps to space.
        assert_eq!(saslprep("a\u{00A0}b").unwrap(), "a b");
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_username("a=b,c"), "a=3Db=2Cc");
        assert_eq!(escape_username("plain"), "plain");
    }

    #[test]
    fn proof_round_trip_and_constant_time_eq() {
        for hash in [ScramHash::Sha1, ScramHash::Sha256] {
            let salted = hi(hash, b"pw", b"salt", 4096);
            let ck = client_key(hash, &salted);
            let sk = stored_key(hash, &ck);
            let proof = client_proof(hash, &ck, b"msg");
            assert!(verify_client_proof(hash, &sk, b"msg", &proof));
            assert!(!verify_client_proof(hash, &sk, b"other", &proof));
            assert!(!verify_client_proof(hash, &sk, b"msg", &proof[1..]));
        }
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
