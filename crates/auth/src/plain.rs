//! PLAIN (RFC 4616) over `saslStart`: one message, `\0user\0password`, answered with
//! `done: true`.

use std::fmt;

use bson::Document;

use crate::credential::{AuthMechanism, Credential};
use crate::error::AuthError;
use crate::sasl::{self, SaslReply, Step};

/// A PLAIN conversation. `Debug` hides the password.
pub struct PlainConversation {
    source: String,
    payload: Vec<u8>,
    finished: bool,
}

impl PlainConversation {
    /// Starts a conversation; the credential needs a non-empty username and a password.
    pub fn start(credential: &Credential) -> Result<Self, AuthError> {
        let mechanism = AuthMechanism::Plain;
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
        let mut payload = Vec::with_capacity(username.len() + password.len() + 2);
        payload.push(0);
        payload.extend_from_slice(username.as_bytes());
        payload.push(0);
        payload.extend_from_slice(password.as_bytes());
        Ok(Self {
            source: credential.source().to_owned(),
            payload,
            finished: false,
        })
    }

    /// The database to send the command to.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// `{saslStart: 1, mechanism: "PLAIN", payload, autoAuthorize: 1}`.
    pub fn start_command(&self) -> Document {
        let mut cmd = sasl::sasl_start(AuthMechanism::Plain.as_str(), self.payload.clone());
        cmd.insert("autoAuthorize", 1);
        cmd
    }

    /// Consumes the `saslStart` reply, which must say `done: true`.
    pub fn handle_reply(&mut self, reply: &Document) -> Result<Step, AuthError> {
        if self.finished {
            return Err(AuthError::ConversationFinished);
        }
        self.finished = true;
        let reply = SaslReply::parse(reply)?;
        if reply.done {
            Ok(Step::Done)
        } else {
            Err(AuthError::ConversationNotDone)
        }
    }
}

impl fmt::Debug for PlainConversation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainConversation")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use bson::{Bson, doc};

    use super::*;
    use crate::sasl::binary;

    fn cred() -> Credential {
        Credential::builder()
            .username("user")
            .password("pencil")
            .mechanism(Some(AuthMechanism::Plain))
            .build()
            .unwrap()
    }

    #[test]
    fn spec_example() {
        let mut conv = PlainConversation::start(&cred()).unwrap();
        assert_eq!(conv.source(), "$external");
        let cmd = conv.start_command();
        assert_eq!(cmd.get_str("mechanism").ok(), Some("PLAIN"));
        let Some(Bson::Binary(b)) = cmd.get("payload") else {
            panic!("no payload")
        };
        // base64 "AHVzZXIAcGVuY2ls" in the spec's example
        assert_eq!(b.bytes, b"\0user\0pencil");
        let ok = doc! {"conversationId": 1, "payload": binary(vec![]), "done": true, "ok": 1};
        assert_eq!(conv.handle_reply(&ok).unwrap(), Step::Done);
        assert!(matches!(
            conv.handle_reply(&ok),
            Err(AuthError::ConversationFinished)
        ));
        assert!(!format!("{conv:?}").contains("pencil"));
    }

    #[test]
    fn errors() {
        let mut conv = PlainConversation::start(&cred()).unwrap();
        let not_done =
            doc! {"conversationId": 1, "payload": binary(vec![]), "done": false, "ok": 1};
        assert!(matches!(
            conv.handle_reply(&not_done),
            Err(AuthError::ConversationNotDone)
        ));
        let mut conv = PlainConversation::start(&cred()).unwrap();
        let failed = doc! {"ok": 0, "code": 18, "errmsg": "Authentication failed."};
        assert!(matches!(
            conv.handle_reply(&failed),
            Err(AuthError::CommandFailed { code: 18, .. })
        ));
    }
}
