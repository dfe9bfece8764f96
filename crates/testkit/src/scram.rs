//! The server side of SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802 / RFC 7677 as MongoDB uses them).

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Iteration count the server advertises for SCRAM-SHA-1 (mongod's default).
const SHA1_ITERATIONS: u32 = 10_000;
/// Iteration count the server advertises for SCRAM-SHA-256 (mongod's default).
const SHA256_ITERATIONS: u32 = 15_000;

/// A SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Mechanism {
    Sha1,
    Sha256,
}

impl Mechanism {
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "SCRAM-SHA-1" => Some(Self::Sha1),
            "SCRAM-SHA-256" => Some(Self::Sha256),
            _ => None,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => {
                // HMAC takes keys of any length; an empty result would only fail verification.
                let Ok(mut m) = <Hmac<Sha1> as Mac>::new_from_slice(key) else {
                    return Vec::new();
                };
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Self::Sha256 => {
                let Ok(mut m) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
                    return Vec::new();
                };
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => Sha1::digest(data).to_vec(),
            Self::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

    fn salted_password(self, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Self::Sha1 => {
                let mut out = [0u8; 20];
                pbkdf2::pbkdf2_hmac::<Sha1>(password.as_bytes(), salt, iterations, &mut out);
                out.to_vec()
            }
            Self::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// What the server stores for one user and one mechanism (never the password itself).
#[derive(Debug, Clone)]
struct StoredCredential {
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl StoredCredential {
    fn derive(mech: Mechanism, user: &str, password: &str) -> Option<Self> {
        let prepared = match mech {
            Mechanism::Sha1 => {
                let digest = md5::Md5::digest(format!("{user}:mongo:{password}").as_bytes());
                hex(&digest)
            }
            Mechanism::Sha256 => stringprep::saslprep(password).ok()?.into_owned(),
        };
        let (salt_len, iterations) = match mech {
            Mechanism::Sha1 => (16, SHA1_ITERATIONS),
            Mechanism::Sha256 => (28, SHA256_ITERATIONS),
        };
        let salt: Vec<u8> = (0..salt_len).map(|_| rand::random::<u8>()).collect();
        let salted = mech.salted_password(&prepared, &salt, iterations);
        let client_key = mech.hmac(&salted, b"Client Key");
        Some(Self {
            stored_key: mech.hash(&client_key),
            server_key: mech.hmac(&salted, b"Server Key"),
            salt,
            iterations,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// One user: its password and lazily derived per-mechanism credentials.
#[derive(Debug)]
struct UserEntry {
    password: String,
    creds: HashMap<Mechanism, StoredCredential>,
}

/// The users a server knows, keyed by (database, user name).
#[derive(Debug, Default)]
pub(crate) struct Users {
    map: Mutex<HashMap<(String, String), UserEntry>>,
}

impl Users {
    pub(crate) fn add(&self, db: &str, user: &str, password: &str) {
        self.map.lock().insert(
            (db.to_string(), user.to_string()),
            UserEntry {
                password: password.to_string(),
                creds: HashMap::new(),
            },
        );
    }

    pub(crate) fn remove(&self, db: &str, user: &str) -> bool {
        self.map
            .lock()
            .remove(&(db.to_string(), user.to_string()))
            .is_some()
    }

    pub(crate) fn exists(&self, db: &str, user: &str) -> bool {
        self.map
            .lock()
            .contains_key(&(db.to_string(), user.to_string()))
    }

    fn credential(&self, db: &str, user: &str, mech: Mechanism) -> Option<StoredCredential> {
        let mut map = self.map.lock();
        let entry = map.get_mut(&(db.to_string(), user.to_string()))?;
        if let Some(c) = entry.creds.get(&mech) {
            return Some(c.clone());
        }
        let c = StoredCredential::derive(mech, user, &entry.password)?;
        entry.creds.insert(mech, c.clone());
        Some(c)
    }
}

/// Why a SCRAM step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScramFailure {
    /// The client's message is malformed.
    Protocol(String),
    /// Unknown user or wrong proof.
    AuthFailed,
}

/// An in-progress server-side conversation.
#[derive(Debug)]
pub(crate) struct ScramServer {
    mech: Mechanism,
    db: String,
    user: String,
    cred: Option<StoredCredential>,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    gs2_header: String,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    SentFirst,
    SentFinal,
    Done,
}

/// A server step's output.
#[derive(Debug)]
pub(crate) struct Step {
    pub(crate) payload: Vec<u8>,
    pub(crate) done: bool,
}

fn decode_username(raw: &str) -> Result<String, ScramFailure> {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(pos) = rest.find('=') {
        out.push_str(rest.get(..pos).unwrap_or_default());
        let code = rest.get(pos + 1..pos + 3);
        match code {
            Some("2C") => out.push(','),
            Some("3D") => out.push('='),
            _ => return Err(ScramFailure::Protocol("bad escape in user name".into())),
        }
        rest = rest.get(pos + 3..).unwrap_or_default();
    }
    out.push_str(rest);
    Ok(out)
}

fn attr(part: Option<&str>, key: char) -> Result<&str, ScramFailure> {
    let part = part.ok_or_else(|| ScramFailure::Protocol(format!("missing {key}= attribute")))?;
    let mut chars = part.chars();
    if chars.next() != Some(key) || chars.next() != Some('=') {
        return Err(ScramFailure::Protocol(format!(
            "expected {key}= attribute, got {part:?}"
        )));
    }
    Ok(part.get(2..).unwrap_or_default())
}

impl ScramServer {
    /// Handles the client-first message; returns the conversation and the server-first message.
    pub(crate) fn start(
        users: &Users,
        mech: Mechanism,
        db: &str,
        client_first: &[u8],
    ) -> Result<(Self, Step), ScramFailure> {
        let text = std::str::from_utf8(client_first)
            .map_err(|_| ScramFailure::Protocol("client-first message is not UTF-8".into()))?;
        // gs2-header: ("n" / "y" / "p=...") "," [authzid] ","
        let mut it = text.splitn(3, ',');
        let cb = it.next().unwrap_or_default();
        let authz = it.next().unwrap_or_default();
        let bare = it
            .next()
            .ok_or_else(|| ScramFailure::Protocol("missing gs2 header".into()))?;
        if cb != "n" && cb != "y" {
            return Err(ScramFailure::Protocol(
                "channel binding is not supported".into(),
            ));
        }
        let gs2_header = format!("{cb},{authz},");
        let mut parts = bare.split(',');
        let user = decode_username(attr(parts.next(), 'n')?)?;
        let client_nonce = attr(parts.next(), 'r')?;
        if client_nonce.is_empty() {
            return Err(ScramFailure::Protocol("empty client nonce".into()));
        }
        let random: Vec<u8> = (0..24).map(|_| rand::random::<u8>()).collect();
        let nonce = format!("{client_nonce}{}", B64.encode(random));
        let cred = users.credential(db, &user, mech);
        // An unknown user still gets a plausible server-first message and fails at the proof,
        // as mongod does, so that user names cannot be probed.
        let (salt, iterations) = match &cred {
            Some(c) => (c.salt.clone(), c.iterations),
            None => (
                vec![0u8; 16],
                match mech {
                    Mechanism::Sha1 => SHA1_ITERATIONS,
                    Mechanism::Sha256 => SHA256_ITERATIONS,
                },
            ),
        };
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(salt));
        let step = Step {
            payload: server_first.clone().into_bytes(),
            done: false,
        };
        Ok((
            Self {
                mech,
                db: db.to_string(),
                user,
                cred,
                client_first_bare: bare.to_string(),
                server_first,
                nonce,
                gs2_header,
                state: State::SentFirst,
            },
            step,
        ))
    }

    /// The database the conversation authenticates against.
    pub(crate) fn db(&self) -> &str {
        &self.db
    }

    /// The user being authenticated.
    pub(crate) fn user(&self) -> &str {
        &self.user
    }

    /// The mechanism in use.
    pub(crate) fn mechanism(&self) -> Mechanism {
        self.mech
    }

    /// Whether the conversation finished successfully.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Handles a saslContinue payload. With `skip_empty_exchange` the reply carrying the server
    /// signature is already `done`.
    pub(crate) fn step(
        &mut self,
        payload: &[u8],
        skip_empty_exchange: bool,
    ) -> Result<Step, ScramFailure> {
        match self.state {
            State::SentFirst => {
                let text = std::str::from_utf8(payload).map_err(|_| {
                    ScramFailure::Protocol("client-final message is not UTF-8".into())
                })?;
                let (without_proof, proof_part) = text
                    .rsplit_once(",p=")
                    .ok_or_else(|| ScramFailure::Protocol("missing proof".into()))?;
                let mut parts = without_proof.split(',');
                let cbind = attr(parts.next(), 'c')?;
                let nonce = attr(parts.next(), 'r')?;
                if cbind != B64.encode(self.gs2_header.as_bytes()) {
                    return Err(ScramFailure::Protocol("channel binding mismatch".into()));
                }
                if nonce != self.nonce {
                    return Err(ScramFailure::Protocol("nonce mismatch".into()));
                }
                let proof = B64
                    .decode(proof_part)
                    .map_err(|_| ScramFailure::Protocol("proof is not base64".into()))?;
                let cred = self.cred.as_ref().ok_or(ScramFailure::AuthFailed)?;
                let auth_message = format!(
                    "{},{},{}",
                    self.client_first_bare, self.server_first, without_proof
                );
                let client_signature = self.mech.hmac(&cred.stored_key, auth_message.as_bytes());
                if proof.len() != client_signature.len() {
                    return Err(ScramFailure::AuthFailed);
                }
                let client_key: Vec<u8> = proof
                    .iter()
                    .zip(client_signature.iter())
                    .map(|(a, b)| a ^ b)
                    .collect();
                if self.mech.hash(&client_key) != cred.stored_key {
                    return Err(ScramFailure::AuthFailed);
                }
                let server_signature = self.mech.hmac(&cred.server_key, auth_message.as_bytes());
                self.state = if skip_empty_exchange {
                    State::Done
                } else {
                    State::SentFinal
                };
                Ok(Step {
                    payload: format!("v={}", B64.encode(server_signature)).into_bytes(),
                    done: skip_empty_exchange,
                })
            }
            State::SentFinal => {
                self.state = State::Done;
                Ok(Step {
                    payload: Vec::new(),
                    done: true,
                })
            }
            State::Done => Err(ScramFailure::Protocol(
                "the conversation is already complete".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny independent client for the round trip (the real client lives in mongo-auth).
    fn client_final(
        mech: Mechanism,
        user: &str,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> (String, Vec<u8>) {
        let mut fields = server_first.split(',');
        let nonce = fields.next().unwrap().strip_prefix("r=").unwrap();
        let salt = B64
            .decode(fields.next().unwrap().strip_prefix("s=").unwrap())
            .unwrap();
        let iters: u32 = fields
            .next()
            .unwrap()
            .strip_prefix("i=")
            .unwrap()
            .parse()
            .unwrap();
        let prepared = match mech {
            Mechanism::Sha1 => hex(&md5::Md5::digest(
                format!("{user}:mongo:{password}").as_bytes(),
            )),
            Mechanism::Sha256 => password.to_string(),
        };
        let salted = mech.salted_password(&prepared, &salt, iters);
        let client_key = mech.hmac(&salted, b"Client Key");
        let stored = mech.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let sig = mech.hmac(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(sig).map(|(a, b)| a ^ b).collect();
        let server_sig = mech.hmac(&mech.hmac(&salted, b"Server Key"), auth.as_bytes());
        (
            format!("{without_proof},p={}", B64.encode(proof)),
            server_sig,
        )
    }

    fn round_trip(mech: Mechanism, password: &str, skip: bool) -> Result<Vec<u8>, ScramFailure> {
        let users = Users::default();
        users.add("admin", "u,=x", "secret");
        let bare = "n=u=2C=3Dx,r=clientnonce";
        let (mut conv, first) =
            ScramServer::start(&users, mech, "admin", format!("n,,{bare}").as_bytes())?;
        assert_eq!(conv.user(), "u,=x");
        let server_first = String::from_utf8(first.payload).unwrap();
        let (fin, expected_sig) = client_final(mech, "u,=x", password, bare, &server_first);
        let step = conv.step(fin.as_bytes(), skip)?;
        assert_eq!(
            step.payload,
            format!("v={}", B64.encode(expected_sig)).into_bytes()
        );
        assert_eq!(step.done, skip);
        if !skip {
            let last = conv.step(b"", false)?;
            assert!(last.done && last.payload.is_empty());
        }
        assert!(conv.is_done());
        Ok(step.payload)
    }

    #[test]
    fn sha1_and_sha256_round_trips() {
        round_trip(Mechanism::Sha1, "secret", true).unwrap();
        round_trip(Mechanism::Sha256, "secret", false).unwrap();
    }

    #[test]
    fn wrong_password_fails() {
        assert_eq!(
            round_trip(Mechanism::Sha256, "wrong", true).unwrap_err(),
            ScramFailure::AuthFailed
        );
        assert_eq!(
            round_trip(Mechanism::Sha1, "wrong", true).unwrap_err(),
            ScramFailure::AuthFailed
        );
    }

    #[test]
    fn malformed_messages_are_protocol_errors() {
        let users = Users::default();
        for bad in [&b"garbage"[..], b"p=tls,,n=a,r=b", b"n,,r=x", &[0xff, 0xfe]] {
            assert!(matches!(
                ScramServer::start(&users, Mechanism::Sha256, "admin", bad),
                Err(ScramFailure::Protocol(_))
            ));
        }
        let (mut conv, _) =
            ScramServer::start(&users, Mechanism::Sha256, "admin", b"n,,n=nobody,r=abc").unwrap();
        assert!(matches!(
            conv.step(b"c=biws,r=wrongnonce,p=AAAA", true),
            Err(ScramFailure::Protocol(_))
        ));
    }
}
