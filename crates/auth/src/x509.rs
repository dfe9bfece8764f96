//! MONGODB-X509: one `authenticate` command on `$external`, with the certificate subject as
//! an optional `user`.

use bson::{Document, doc};

use crate::credential::{AuthMechanism, Credential, EXTERNAL_SOURCE};
use crate::error::AuthError;
use crate::sasl::{Step, check_ok};

/// A MONGODB-X509 conversation.
#[derive(Debug, Clone)]
pub struct X509Conversation {
    username: Option<String>,
    finished: bool,
}

impl X509Conversation {
    /// Starts a conversation. A username is sent only if the credential has one.
    pub fn start(credential: &Credential) -> Result<Self, AuthError> {
        if credential.password().is_some() {
            return Err(AuthError::PasswordNotAllowed {
                mechanism: AuthMechanism::MongoDbX509,
            });
        }
        Ok(Self {
            username: credential.username().map(str::to_owned),
            finished: false,
        })
    }

    /// The database to send the command to: always `$external`.
    pub fn source(&self) -> &str {
        EXTERNAL_SOURCE
    }

    /// `{authenticate: 1, mechanism: "MONGODB-X509"[, user]}`.
    pub fn start_command(&self) -> Document {
        let mut cmd = doc! { "authenticate": 1, "mechanism": AuthMechanism::MongoDbX509.as_str() };
        if let Some(user) = &self.username {
            cmd.insert("user", user.clone());
        }
        cmd
    }

    /// The `speculativeAuthenticate` value: the `authenticate` command plus `db: "$external"`.
    pub fn speculative_command(&self) -> Document {
        let mut cmd = self.start_command();
        cmd.insert("db", EXTERNAL_SOURCE);
        cmd
    }

    /// Consumes the `authenticate` reply (or hello's `speculativeAuthenticate` document, whose
    /// presence means the server accepted the certificate).
    pub fn handle_reply(&mut self, reply: &Document) -> Result<Step, AuthError> {
        if self.finished {
            return Err(AuthError::ConversationFinished);
        }
        self.finished = true;
        check_ok(reply)?;
        Ok(Step::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(user: Option<&str>) -> Credential {
        Credential::builder()
            .username_opt(user.map(str::to_owned))
            .mechanism(Some(AuthMechanism::MongoDbX509))
            .build()
            .unwrap()
    }

    #[test]
    fn commands_with_and_without_user() {
        let conv = X509Conversation::start(&cred(None)).unwrap();
        assert_eq!(
            conv.start_command(),
            doc! {"authenticate": 1, "mechanism": "MONGODB-X509"}
        );
        let subject = "C=IS,ST=Reykjavik,L=Reykjavik,O=MongoDB,OU=Drivers,CN=client";
        let conv = X509Conversation::start(&cred(Some(subject))).unwrap();
        assert_eq!(
            conv.speculative_command(),
            doc! {"authenticate": 1, "mechanism": "MONGODB-X509", "user": subject, "db": "$external"}
        );
        assert_eq!(conv.source(), "$external");
    }

    #[test]
    fn replies() {
        let mut conv = X509Conversation::start(&cred(None)).unwrap();
        let ok = doc! {"dbname": "$external", "user": "CN=client", "ok": 1};
        assert_eq!(conv.handle_reply(&ok).unwrap(), Step::Done);
        assert!(matches!(
            conv.handle_reply(&ok),
            Err(AuthError::ConversationFinished)
        ));
        let mut conv = X509Conversation::start(&cred(None)).unwrap();
        let failed = doc! {"ok": 0, "code": 18, "errmsg": "no"};
        assert!(matches!(
            conv.handle_reply(&failed),
            Err(AuthError::CommandFailed { .. })
        ));
    }
}
