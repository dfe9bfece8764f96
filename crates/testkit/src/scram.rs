//! The server side of SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802 / RFC 7677 as MongoDB uses them).

use std::collections::HashMap;

use mongo_auth::scram::primitives::{self, ScramHash};
use parking_lot::Mutex;

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

    /// The hash function of the mechanism.
    fn hash(self) -> ScramHash {
        match self {
            Self::Sha1 => ScramHash::Sha1,
            Self::Sha256 => ScramHash::Sha256,
        }
    }

    /// The iteration count the server advertises.
    fn iterations(self) -> u32 {
        match self {
            Self::Sha1 => SHA1_ITERATIONS,
            Self::Sha256 => SHA256_ITERATIONS,
        }
    }

    /// The password as the mechanism feeds it to `Hi`: MongoDB's MD5 digest for SCRAM-SHA-1,
    /// SASLprep'ed for SCRAM-SHA-256 (`None` if SASLprep refuses it).
    fn prepare_password(self, user: &str, password: &str) -> Option<String> {
        match self {
            Self::Sha1 => Some(primitives::mongo_password_digest(user, password)),
            Self::Sha256 => primitives::saslprep(password).ok(),
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
        let prepared = mech.prepare_password(user, password)?;
        let salt_len = match mech {
            Mechanism::Sha1 => 16,
            Mechanism::Sha256 => 28,
        };
        let salt: Vec<u8> = (0..salt_len).map(|_| rand::random::<u8>()).collect();
        let iterations = mech.iterations();
        let hash = mech.hash();
        let salted = primitives::hi(hash, prepared.as_bytes(), &salt, iterations);
        Some(Self {
            stored_key: primitives::stored_key(hash, &primitives::client_key(hash, &salted)),
            server_key: primitives::server_key(hash, &salted),
            salt,
            iterations,
        })
    }
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
        let nonce = format!("{client_nonce}{}", primitives::b64_encode(&random));
        let cred = users.credential(db, &user, mech);
        // An unknown user still gets a plausible server-first message and fails at the proof,
        // as mongod does, so that user names cannot be probed.
        let (salt, iterations) = match &cred {
            Some(c) => (c.salt.clone(), c.iterations),
            None => (vec![0u8; 16], mech.iterations()),
        };
        let server_first = format!(
            "r={nonce},s={},i={iterations}",
            primitives::b64_encode(&salt)
        );
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
                if cbind != primitives::b64_encode(self.gs2_header.as_bytes()) {
                    return Err(ScramFailure::Protocol("channel binding mismatch".into()));
                }
                if nonce != self.nonce {
                    return Err(ScramFailure::Protocol("nonce mismatch".into()));
                }
                let proof = primitives::b64_decode(proof_part)
                    .ok_or_else(|| ScramFailure::Protocol("proof is not base64".into()))?;
                let cred = self.cred.as_ref().ok_or(ScramFailure::AuthFailed)?;
                let auth_message = format!(
                    "{},{},{}",
                    self.client_first_bare, self.server_first, without_proof
                );
                let hash = self.mech.hash();
                if !primitives::verify_client_proof(
                    hash,
                    &cred.stored_key,
                    auth_message.as_bytes(),
                    &proof,
                ) {
                    return Err(ScramFailure::AuthFailed);
                }
                let server_signature =
                    primitives::server_signature(hash, &cred.server_key, auth_message.as_bytes());
                self.state = if skip_empty_exchange {
                    State::Done
                } else {
                    State::SentFinal
                };
                Ok(Step {
                    payload: format!("v={}", primitives::b64_encode(&server_signature))
                        .into_bytes(),
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
        let salt =
            primitives::b64_decode(fields.next().unwrap().strip_prefix("s=").unwrap()).unwrap();
        let iters: u32 = fields
            .next()
            .unwrap()
            .strip_prefix("i=")
            .unwrap()
            .parse()
            .unwrap();
        // SASLprep is the identity on the ASCII passwords used here.
        let prepared = match mech {
            Mechanism::Sha1 => primitives::mongo_password_digest(user, password),
            Mechanism::Sha256 => password.to_string(),
        };
        let hash = mech.hash();
        let salted = primitives::hi(hash, prepared.as_bytes(), &salt, iters);
        let client_key = primitives::client_key(hash, &salted);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let proof = primitives::client_proof(hash, &client_key, auth.as_bytes());
        let server_sig = primitives::server_signature(
            hash,
            &primitives::server_key(hash, &salted),
            auth.as_bytes(),
        );
        (
            format!("{without_proof},p={}", primitives::b64_encode(&proof)),
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
            format!("v={}", primitives::b64_encode(&expected_sig)).into_bytes()
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
