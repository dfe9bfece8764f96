//! MongoDB's SASL framing: `saslStart` / `saslContinue` command documents and the parsing of
//! their replies (`conversationId`, `done`, `payload`), plus [`Step`], what a conversation asks
//! the caller to do next.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, doc};

use crate::error::AuthError;

/// What a conversation wants after consuming a reply.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum Step {
    /// Send this command (on the credential's source database) and feed the reply back.
    Send(Document),
    /// Authentication succeeded; nothing more to send.
    Done,
}

/// A binary BSON payload (subtype 0).
pub(crate) fn binary(bytes: Vec<u8>) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    })
}

/// `{saslStart: 1, mechanism, payload}`.
pub(crate) fn sasl_start(mechanism: &str, payload: Vec<u8>) -> Document {
    doc! { "saslStart": 1, "mechanism": mechanism, "payload": binary(payload) }
}

/// `{saslContinue: 1, conversationId, payload}`.
pub(crate) fn sasl_continue(conversation_id: &ConversationId, payload: Vec<u8>) -> Document {
    doc! {
        "saslContinue": 1,
        "conversationId": conversation_id.to_bson(),
        "payload": binary(payload),
    }
}

/// A `conversationId` as the server sent it (int32 or int64); echoed back with the same type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConversationId {
    Int32(i32),
    Int64(i64),
}

impl ConversationId {
    fn value(self) -> i64 {
        match self {
            ConversationId::Int32(v) => i64::from(v),
            ConversationId::Int64(v) => v,
        }
    }

    pub(crate) fn to_bson(self) -> Bson {
        match self {
            ConversationId::Int32(v) => Bson::Int32(v),
            ConversationId::Int64(v) => Bson::Int64(v),
        }
    }

    /// Same conversation, whatever the integer width.
    pub(crate) fn same(self, other: ConversationId) -> bool {
        self.value() == other.value()
    }
}

/// A parsed `saslStart` / `saslContinue` reply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SaslReply {
    pub(crate) conversation_id: ConversationId,
    pub(crate) done: bool,
    pub(crate) payload: Vec<u8>,
}

/// Turns a reply with `ok` present and not 1 into [`AuthError::CommandFailed`]. Replies with no
/// `ok` field (e.g. hello's `speculativeAuthenticate` document) pass.
pub(crate) fn check_ok(reply: &Document) -> Result<(), AuthError> {
    let ok = match reply.get("ok") {
        None => return Ok(()),
        Some(Bson::Double(d)) => *d == 1.0,
        Some(Bson::Int32(i)) => *i == 1,
        Some(Bson::Int64(i)) => *i == 1,
        Some(Bson::Boolean(b)) => *b,
        Some(_) => false,
    };
    if ok {
        return Ok(());
    }
    let code = match reply.get("code") {
        Some(Bson::Int32(c)) => *c,
        Some(Bson::Int64(c)) => i32::try_from(*c).unwrap_or(0),
        Some(Bson::Double(c)) if c.fract() == 0.0 && c.abs() <= f64::from(i32::MAX) => {
            // Checked above: integral and in range.
            #[allow(clippy::cast_possible_truncation)]
            let c = *c as i32;
            c
        }
        _ => 0,
    };
    Err(AuthError::CommandFailed {
        code,
        code_name: reply.get_str("codeName").ok().map(str::to_owned),
        message: reply
            .get_str("errmsg")
            .unwrap_or("authentication command failed")
            .to_owned(),
    })
}

impl SaslReply {
    pub(crate) fn parse(reply: &Document) -> Result<Self, AuthError> {
        check_ok(reply)?;
        let conversation_id = match reply.get("conversationId") {
            Some(Bson::Int32(v)) => ConversationId::Int32(*v),
            Some(Bson::Int64(v)) => ConversationId::Int64(*v),
            Some(_) => {
                return Err(AuthError::MalformedReply(
                    "conversationId is not an integer",
                ));
            }
            None => return Err(AuthError::MalformedReply("missing conversationId")),
        };
        let done = match reply.get("done") {
            Some(Bson::Boolean(b)) => *b,
            Some(_) => return Err(AuthError::MalformedReply("done is not a boolean")),
            None => return Err(AuthError::MalformedReply("missing done")),
        };
        let payload = match reply.get("payload") {
            Some(Bson::Binary(b)) => b.bytes.clone(),
            Some(Bson::String(s)) => STANDARD
                .decode(s)
                .map_err(|_| AuthError::MalformedReply("payload string is not base64"))?,
            Some(_) => return Err(AuthError::MalformedReply("payload is not binary")),
            None => return Err(AuthError::MalformedReply("missing payload")),
        };
        Ok(SaslReply {
            conversation_id,
            done,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_replies() {
        let r = SaslReply::parse(&doc! {
            "conversationId": 1, "done": false, "payload": binary(b"abc".to_vec()), "ok": 1.0
        })
        .unwrap();
        assert_eq!(r.conversation_id, ConversationId::Int32(1));
        assert!(!r.done);
        assert_eq!(r.payload, b"abc");
        let r = SaslReply::parse(&doc! {
            "conversationId": 7_i64, "done": true, "payload": "YWJj"
        })
        .unwrap();
        assert!(r.conversation_id.same(ConversationId::Int32(7)));
        assert_eq!(r.payload, b"abc");
    }

    #[test]
    fn malformed_replies_are_typed() {
        let cases = [
            doc! { "done": false, "payload": "" },
            doc! { "conversationId": "x", "done": false, "payload": "" },
            doc! { "conversationId": 1, "payload": "" },
            doc! { "conversationId": 1, "done": 1, "payload": "" },
            doc! { "conversationId": 1, "done": false },
            doc! { "conversationId": 1, "done": false, "payload": 5 },
            doc! { "conversationId": 1, "done": false, "payload": "***" },
        ];
        for d in cases {
            assert!(
                matches!(SaslReply::parse(&d), Err(AuthError::MalformedReply(_))),
                "{d}"
            );
        }
    }

    #[test]
    fn command_failure_is_typed() {
        let err = SaslReply::parse(&doc! {
            "ok": 0.0, "errmsg": "Authentication failed.", "code": 18, "codeName": "AuthenticationFailed"
        })
        .unwrap_err();
        assert_eq!(
            err,
            AuthError::CommandFailed {
                code: 18,
                code_name: Some("AuthenticationFailed".into()),
                message: "Authentication failed.".into()
            }
        );
        assert!(check_ok(&doc! {"ok": 1}).is_ok());
        assert!(check_ok(&doc! {"ok": true}).is_ok());
        assert!(check_ok(&doc! {"ok": "1"}).is_err());
    }
}
