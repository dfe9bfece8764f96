//! [`Authenticator`]: one entry point over every supported mechanism, as the connection's
//! handshake uses it (normal and speculative).

use bson::Document;

use crate::credential::{AuthMechanism, Credential};
use crate::error::AuthError;
use crate::negotiate;
use crate::plain::PlainConversation;
use crate::sasl::Step;
use crate::scram::ScramConversation;
use crate::x509::X509Conversation;

#[derive(Debug)]
enum Inner {
    Scram(ScramConversation),
    Plain(PlainConversation),
    X509(X509Conversation),
}

/// An authentication conversation for one credential on one connection.
///
/// ```text
/// let mut auth = Authenticator::new(&cred, mechanism, &generate_nonce())?;
/// let mut step = Step::Send(auth.start_command());
/// while let Step::Send(cmd) = step {
///     let reply = connection.run_command(auth.source(), cmd)?;   // the caller's I/O
///     step = auth.handle_reply(&reply)?;
/// }
/// ```
///
/// Speculatively: put [`speculative_command`](Self::speculative_command) in hello under
/// `speculativeAuthenticate`; if the hello reply has that field, pass it to
/// [`handle_reply`](Self::handle_reply) and continue as above from the returned step;
/// if not, start over with [`start_command`](Self::start_command).
#[derive(Debug)]
pub struct Authenticator {
    mechanism: AuthMechanism,
    inner: Inner,
}

impl Authenticator {
    /// Starts a conversation for `credential` with `mechanism` (already selected, e.g. by
    /// [`negotiate::select_mechanism`]). `client_nonce` is used by SCRAM only. Unsupported
    /// mechanisms give [`AuthError::UnsupportedMechanism`].
    pub fn new(
        credential: &Credential,
        mechanism: AuthMechanism,
        client_nonce: &str,
    ) -> Result<Self, AuthError> {
        let inner = match mechanism {
            AuthMechanism::ScramSha1 | AuthMechanism::ScramSha256 => Inner::Scram(
                ScramConversation::start(credential, mechanism, client_nonce)?,
            ),
            AuthMechanism::Plain => Inner::Plain(PlainConversation::start(credential)?),
            AuthMechanism::MongoDbX509 => Inner::X509(X509Conversation::start(credential)?),
            other => return Err(AuthError::UnsupportedMechanism(other)),
        };
        Ok(Self { mechanism, inner })
    }

    /// Starts a conversation with the mechanism [`negotiate::select_mechanism`] picks from
    /// the credential and the hello reply.
    pub fn negotiated(
        credential: &Credential,
        hello_reply: Option<&Document>,
        client_nonce: &str,
    ) -> Result<Self, AuthError> {
        let mechanism = negotiate::select_mechanism(credential, hello_reply);
        Self::new(credential, mechanism, client_nonce)
    }

    /// A conversation to attempt speculatively in hello, with
    /// [`negotiate::speculative_mechanism`]. `Ok(None)` when the mechanism does not support
    /// speculative authentication (PLAIN).
    pub fn speculative(
        credential: &Credential,
        client_nonce: &str,
    ) -> Result<Option<Self>, AuthError> {
        let mechanism = negotiate::speculative_mechanism(credential);
        if mechanism == AuthMechanism::Plain {
            return Ok(None);
        }
        Self::new(credential, mechanism, client_nonce).map(Some)
    }

    /// The mechanism in use.
    pub fn mechanism(&self) -> AuthMechanism {
        self.mechanism
    }

    /// The database every command of this conversation is sent to.
    pub fn source(&self) -> &str {
        match &self.inner {
            Inner::Scram(c) => c.source(),
            Inner::Plain(c) => c.source(),
            Inner::X509(c) => c.source(),
        }
    }

    /// The first command (`saslStart` or `authenticate`), without `$db`.
    pub fn start_command(&self) -> Document {
        match &self.inner {
            Inner::Scram(c) => c.start_command(),
            Inner::Plain(c) => c.start_command(),
            Inner::X509(c) => c.start_command(),
        }
    }

    /// The document to put in hello under `speculativeAuthenticate` (first command plus
    /// `db`), or `None` for PLAIN, which has no speculative form.
    pub fn speculative_command(&self) -> Option<Document> {
        match &self.inner {
            Inner::Scram(c) => Some(c.speculative_command()),
            Inner::Plain(_) => None,
            Inner::X509(c) => Some(c.speculative_command()),
        }
    }

    /// Consumes a reply (or hello's `speculativeAuthenticate` document) and says what next.
    pub fn handle_reply(&mut self, reply: &Document) -> Result<Step, AuthError> {
        match &mut self.inner {
            Inner::Scram(c) => c.handle_reply(reply),
            Inner::Plain(c) => c.handle_reply(reply),
            Inner::X509(c) => c.handle_reply(reply),
        }
    }

    /// Consumes hello's `speculativeAuthenticate` reply field (same as
    /// [`handle_reply`](Self::handle_reply); the name documents the call site).
    pub fn handle_speculative_reply(&mut self, reply: &Document) -> Result<Step, AuthError> {
        self.handle_reply(reply)
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;
    use crate::sasl::binary;

    #[test]
    fn dispatches_by_mechanism() {
        let scram = Credential::builder()
            .username("u")
            .password("p")
            .build()
            .unwrap();
        let a = Authenticator::new(&scram, AuthMechanism::ScramSha256, "nonce").unwrap();
        assert_eq!(
            a.start_command().get_str("mechanism").ok(),
            Some("SCRAM-SHA-256")
        );
        assert_eq!(a.source(), "admin");
        assert_eq!(
            a.speculative_command().unwrap().get_str("db").ok(),
            Some("admin")
        );

        let hello = doc! {"saslSupportedMechs": ["SCRAM-SHA-1"]};
        let a = Authenticator::negotiated(&scram, Some(&hello), "nonce").unwrap();
        assert_eq!(a.mechanism(), AuthMechanism::ScramSha1);

        let plain = Credential::builder()
            .username("u")
            .password("p")
            .mechanism(Some(AuthMechanism::Plain))
            .build()
            .unwrap();
        assert!(Authenticator::speculative(&plain, "n").unwrap().is_none());
        let mut a = Authenticator::new(&plain, AuthMechanism::Plain, "n").unwrap();
        assert!(a.speculative_command().is_none());
        let done = doc! {"conversationId": 1, "done": true, "payload": binary(vec![]), "ok": 1};
        assert_eq!(a.handle_reply(&done).unwrap(), Step::Done);

        let x509 = Credential::builder()
            .mechanism(Some(AuthMechanism::MongoDbX509))
            .build()
            .unwrap();
        let mut a = Authenticator::speculative(&x509, "n").unwrap().unwrap();
        assert_eq!(a.source(), "$external");
        assert_eq!(
            a.speculative_command().unwrap(),
            doc! {"authenticate": 1, "mechanism": "MONGODB-X509", "db": "$external"}
        );
        let spec_reply = doc! {"dbname": "$external", "user": "CN=client"};
        assert_eq!(a.handle_speculative_reply(&spec_reply).unwrap(), Step::Done);
    }

    #[test]
    fn unsupported_mechanisms_are_typed() {
        let gssapi = Credential::builder()
            .username("u@R")
            .mechanism(Some(AuthMechanism::Gssapi))
            .build()
            .unwrap();
        assert!(matches!(
            Authenticator::new(&gssapi, AuthMechanism::Gssapi, "n"),
            Err(AuthError::UnsupportedMechanism(AuthMechanism::Gssapi))
        ));
        let aws = Credential::builder()
            .mechanism(Some(AuthMechanism::MongoDbAws))
            .build()
            .unwrap();
        assert!(matches!(
            Authenticator::speculative(&aws, "n"),
            Err(AuthError::UnsupportedMechanism(AuthMechanism::MongoDbAws))
        ));
    }
}
