//! SCRAM-SHA-1 and SCRAM-SHA-256 over MongoDB's SASL commands, as a sans-I/O state machine.
//!
//! Layers, bottom up:
//! - [`primitives`]: the RFC 5802 math, MongoDB's MD5 digest, SASLprep;
//! - [`message`]: parsing of server-first and server-final messages;
//! - [`client`]: the RFC client as a typestate over text messages (RFC vectors run here);
//! - [`ScramConversation`]: MongoDB framing (`saslStart` with `skipEmptyExchange`,
//!   `saslContinue`, `conversationId`, `done`), password preparation, speculative auth.
//!
//! The nonce is an input ([`generate_nonce`] makes one for real callers), so every
//! conversation is deterministic under test.

pub mod cache;
pub mod client;
pub mod message;
pub mod primitives;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bson::{Document, doc};
use rand::RngCore as _;

use crate::credential::{AuthMechanism, Credential};
use crate::error::AuthError;
use crate::sasl::{self, ConversationId, SaslReply, Step};

pub use cache::ScramCache;
pub use client::{ExpectServerFinal, ExpectServerFirst};
pub use message::{ServerFinal, ServerFirst};
pub use primitives::ScramHash;

/// A fresh client nonce: 24 random bytes from the thread RNG, base64-encoded. The helper the
/// I/O side calls; the conversations themselves take their nonce as an input.
#[expect(
    clippy::disallowed_methods,
    reason = "the one place mongo-auth draws randomness, for callers that have no RNG of their own"
)]
pub fn generate_nonce() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    STANDARD.encode(bytes)
}

/// The SCRAM hash for a mechanism, if it is a SCRAM mechanism.
pub fn scram_hash(mechanism: AuthMechanism) -> Option<ScramHash> {
    match mechanism {
        AuthMechanism::ScramSha1 => Some(ScramHash::Sha1),
        AuthMechanism::ScramSha256 => Some(ScramHash::Sha256),
        _ => None,
    }
}

/// The password input to `Hi` for a mechanism: MongoDB's MD5 digest for SCRAM-SHA-1, the
/// SASLprep'ed password for SCRAM-SHA-256.
pub fn prepare_password(
    hash: ScramHash,
    username: &str,
    password: &str,
) -> Result<Vec<u8>, AuthError> {
    Ok(match hash {
        ScramHash::Sha1 => primitives::mongo_password_digest(username, password).into_bytes(),
        ScramHash::Sha256 => primitives::saslprep(password)?.into_bytes(),
    })
}

#[derive(Debug)]
enum State {
    /// Client-first built; awaiting the server-first reply.
    ServerFirst(ExpectServerFirst),
    /// Client-final sent; awaiting the server's signature.
    ServerFinal(ExpectServerFinal, ConversationId),
    /// Signature verified but the server did not say `done` (servers that ignore
    /// `skipEmptyExchange`): an empty `saslContinue` was sent, awaiting `done: true`.
    EmptyExchange(ConversationId),
    Done,
    Failed,
}

/// A MongoDB SCRAM conversation (client side).
///
/// Order of calls: [`start`](Self::start) → send [`start_command`](Self::start_command) (or
/// embed [`speculative_command`](Self::speculative_command) in hello) → feed each reply to
/// [`handle_reply`](Self::handle_reply) (or hello's `speculativeAuthenticate` document to the
/// same method) → send what [`Step::Send`] carries, until [`Step::Done`]. Any error ends the
/// conversation.
///
/// The server must always prove it knows the password: a `done` before its signature, a
/// missing or wrong signature all fail.
#[derive(Debug)]
pub struct ScramConversation {
    mechanism: AuthMechanism,
    source: String,
    client_first: String,
    cache: ScramCache,
    state: State,
}

impl ScramConversation {
    /// Starts a SCRAM-SHA-1 or SCRAM-SHA-256 conversation for `credential` with the caller's
    /// nonce (e.g. from [`generate_nonce`]). Uses the credential's [`ScramCache`].
    pub fn start(
        credential: &Credential,
        mechanism: AuthMechanism,
        client_nonce: &str,
    ) -> Result<Self, AuthError> {
        let hash = scram_hash(mechanism).ok_or(AuthError::UnsupportedMechanism(mechanism))?;
        let username =
            credential
                .username()
                .filter(|u| !u.is_empty())
                .ok_or(AuthError::MissingUsername {
                    mechanism: Some(mechanism),
                })?;
        let password = credential
            .password()
            .ok_or(AuthError::MissingPassword { mechanism })?;
        let input = prepare_password(hash, username, password)?;
        let first = ExpectServerFirst::new(hash, username, input, client_nonce)?
            .with_max_iterations(credential.max_scram_iterations());
        Ok(Self {
            mechanism,
            source: credential.source().to_owned(),
            client_first: first.client_first_message(),
            cache: credential.scram_cache().clone(),
            state: State::ServerFirst(first),
        })
    }

    /// The mechanism (SCRAM-SHA-1 or SCRAM-SHA-256).
    pub fn mechanism(&self) -> AuthMechanism {
        self.mechanism
    }

    /// The database to send the commands to.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the conversation finished successfully.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The client-first message (`n,,n=<user>,r=<nonce>`).
    pub fn client_first_message(&self) -> &str {
        &self.client_first
    }

    /// `{saslStart: 1, mechanism, payload, options: {skipEmptyExchange: true}}`, to run on
    /// [`source`](Self::source).
    pub fn start_command(&self) -> Document {
        let mut cmd = sasl::sasl_start(
            self.mechanism.as_str(),
            self.client_first.clone().into_bytes(),
        );
        cmd.insert("options", doc! { "skipEmptyExchange": true });
        cmd
    }

    /// The `speculativeAuthenticate` value for hello: the `saslStart` command plus
    /// `db: <source>`.
    pub fn speculative_command(&self) -> Document {
        let mut cmd = self.start_command();
        cmd.insert("db", self.source.clone());
        cmd
    }

    /// Consumes a `saslStart` / `saslContinue` reply (or hello's `speculativeAuthenticate`
    /// document, which answers the speculative `saslStart`).
    pub fn handle_reply(&mut self, reply: &Document) -> Result<Step, AuthError> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let (next, step) = self.advance(state, reply)?;
        self.state = next;
        Ok(step)
    }

    fn advance(&self, state: State, reply: &Document) -> Result<(State, Step), AuthError> {
        match state {
            State::ServerFirst(first) => {
                let reply = SaslReply::parse(reply)?;
                if reply.done {
                    return Err(AuthError::UnexpectedDone(
                        "done before the server-first message",
                    ));
                }
                let text = utf8(&reply.payload)?;
                let (fin, client_final) = first.handle_server_first(text, &self.cache)?;
                let id = reply.conversation_id;
                Ok((
                    State::ServerFinal(fin, id),
                    Step::Send(sasl::sasl_continue(&id, client_final.into_bytes())),
                ))
            }
            State::ServerFinal(fin, id) => {
                let reply = SaslReply::parse(reply)?;
                if !reply.conversation_id.same(id) {
                    return Err(AuthError::ConversationIdMismatch);
                }
                if reply.payload.is_empty() {
                    return Err(AuthError::ServerSignatureMissing);
                }
                fin.handle_server_final(utf8(&reply.payload)?)?;
                if reply.done {
                    Ok((State::Done, Step::Done))
                } else {
                    Ok((
                        State::EmptyExchange(id),
                        Step::Send(sasl::sasl_continue(&id, Vec::new())),
                    ))
                }
            }
            State::EmptyExchange(id) => {
                let reply = SaslReply::parse(reply)?;
                if !reply.conversation_id.same(id) {
                    return Err(AuthError::ConversationIdMismatch);
                }
                if reply.done {
                    Ok((State::Done, Step::Done))
                } else {
                    Err(AuthError::ConversationNotDone)
                }
            }
            State::Done | State::Failed => Err(AuthError::ConversationFinished),
        }
    }
}

fn utf8(payload: &[u8]) -> Result<&str, AuthError> {
    std::str::from_utf8(payload)
        .map_err(|_| AuthError::MalformedServerMessage("payload is not UTF-8"))
}

#[cfg(test)]
mod tests;
