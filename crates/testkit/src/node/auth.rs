//! Authentication and users: MONGODB-X509 `authenticate`, the SCRAM conversation
//! (`saslStart`, `saslContinue`), `logout`, `connectionStatus`, and `createUser` /
//! `dropUser`.

use base64::Engine as _;
use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, doc};

use super::args::{coll_arg, ok};
use super::{ConnState, Node};
use crate::error::{CmdResult, CommandError, codes};
use crate::query;
use crate::scram::{Mechanism, ScramFailure, ScramServer};

impl Node {
    /// `authenticate` with MONGODB-X509 on `$external`: the user is the subject of the TLS
    /// client certificate (verified against the listener's client CA during the handshake).
    /// Any verified certificate is accepted; no `$external` user needs to exist.
    pub(super) fn authenticate(
        &self,
        db: &str,
        cmd: &Document,
        conn: &mut ConnState,
    ) -> CmdResult<Document> {
        let fail = |msg: &str| {
            CommandError::new(codes::AUTHENTICATION_FAILED, "AuthenticationFailed", msg)
        };
        let mechanism = cmd.get_str("mechanism").unwrap_or("");
        if mechanism != "MONGODB-X509" {
            return Err(fail(
                "the testkit's authenticate command supports MONGODB-X509 only",
            ));
        }
        if db != "$external" {
            return Err(fail(
                "X.509 authentication must always use the $external database",
            ));
        }
        let Some(subject) = conn.peer_subject.clone() else {
            return Err(fail("No verified subject name available from client"));
        };
        if let Ok(user) = cmd.get_str("user") {
            if user != subject {
                return Err(fail(
                    "There is no x.509 client certificate matching the user",
                ));
            }
        }
        let entry = ("$external".to_string(), subject.clone());
        if !conn.authenticated.contains(&entry) {
            conn.authenticated.push(entry);
        }
        Ok(ok(doc! { "dbname": "$external", "user": subject }))
    }

    pub(super) fn sasl_start(
        &self,
        db: &str,
        cmd: &Document,
        conn: &mut ConnState,
    ) -> CmdResult<Document> {
        let mech_name = cmd.get_str("mechanism").map_err(|_| {
            CommandError::new(codes::NO_SUCH_KEY, "NoSuchKey", "no mechanism specified")
        })?;
        let mech = Mechanism::parse(mech_name).ok_or_else(|| {
            CommandError::new(
                codes::BAD_VALUE,
                "MechanismUnavailable",
                format!("Received authentication for mechanism {mech_name} which is not enabled"),
            )
        })?;
        let payload = payload_bytes(cmd)?;
        let skip = cmd
            .get_document("options")
            .ok()
            .and_then(|o| o.get("skipEmptyExchange"))
            .is_some_and(query::truthy);
        let (conv, step) =
            ScramServer::start(&self.users, mech, db, &payload).map_err(sasl_error)?;
        let id = conn.next_conversation;
        conn.next_conversation = conn.next_conversation.wrapping_add(1);
        conn.sasl = Some((id, conv, skip));
        Ok(ok(doc! {
            "conversationId": id,
            "done": step.done,
            "payload": binary(step.payload),
        }))
    }

    pub(super) fn sasl_continue(
        &self,
        cmd: &Document,
        conn: &mut ConnState,
    ) -> CmdResult<Document> {
        let id = match cmd.get("conversationId") {
            Some(Bson::Int32(v)) => *v,
            Some(Bson::Int64(v)) => i32::try_from(*v).unwrap_or(-1),
            _ => {
                return Err(CommandError::new(
                    codes::NO_SUCH_KEY,
                    "NoSuchKey",
                    "missing conversationId",
                ));
            }
        };
        let payload = payload_bytes(cmd)?;
        let Some((cid, conv, skip)) = conn.sasl.as_mut() else {
            return Err(CommandError::new(
                codes::PROTOCOL_ERROR,
                "ProtocolError",
                "No SASL session state found",
            ));
        };
        if *cid != id {
            return Err(CommandError::new(
                codes::PROTOCOL_ERROR,
                "ProtocolError",
                "Invalid conversation id",
            ));
        }
        let step = match conv.step(&payload, *skip) {
            Ok(s) => s,
            Err(e) => {
                conn.sasl = None;
                return Err(sasl_error(e));
            }
        };
        if conv.is_done() {
            let pair = (conv.db().to_string(), conv.user().to_string());
            tracing::debug!(user = %pair.1, db = %pair.0, mech = ?conv.mechanism(), "authenticated");
            if !conn.authenticated.contains(&pair) {
                conn.authenticated.push(pair);
            }
            conn.sasl = None;
        }
        Ok(ok(doc! {
            "conversationId": id,
            "done": step.done,
            "payload": binary(step.payload),
        }))
    }

    /// `createUser`: adds a SCRAM user (both mechanisms) to this database.
    pub(super) fn create_user(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let user = coll_arg(cmd, "createUser")?;
        let pwd = cmd
            .get_str("pwd")
            .map_err(|_| CommandError::bad_value("createUser needs pwd"))?;
        if self.users.exists(db, user) {
            return Err(CommandError::new(
                51003,
                "Location51003",
                format!("User \"{user}@{db}\" already exists"),
            ));
        }
        self.users.add(db, user, pwd);
        Ok(ok(Document::new()))
    }

    /// `updateUser`: a new password (other fields, such as roles, are accepted and ignored).
    pub(super) fn update_user(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let user = coll_arg(cmd, "updateUser")?;
        if !self.users.exists(db, user) {
            return Err(CommandError::new(
                11,
                "UserNotFound",
                format!("Could not find user \"{user}\" for db \"{db}\""),
            ));
        }
        if let Ok(pwd) = cmd.get_str("pwd") {
            self.users.add(db, user, pwd);
        }
        Ok(ok(Document::new()))
    }

    /// `dropUser`.
    pub(super) fn drop_user(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let user = coll_arg(cmd, "dropUser")?;
        if self.users.remove(db, user) {
            Ok(ok(Document::new()))
        } else {
            Err(CommandError::new(
                11,
                "UserNotFound",
                format!("User '{user}@{db}' not found"),
            ))
        }
    }
}

/// `logout`: forgets this connection's logins on `db`.
pub(super) fn logout(db: &str, conn: &mut ConnState) -> Document {
    conn.authenticated.retain(|(d, _)| d != db);
    ok(Document::new())
}

/// `connectionStatus`: who this connection is authenticated as.
pub(super) fn connection_status(conn: &ConnState) -> Document {
    ok(doc! {
        "authInfo": {
            "authenticatedUsers": conn.authenticated.iter()
                .map(|(d, u)| Bson::Document(doc! { "user": u.clone(), "db": d.clone() }))
                .collect::<Vec<_>>(),
            "authenticatedUserRoles": [],
        },
    })
}

fn binary(bytes: Vec<u8>) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes,
    })
}

fn payload_bytes(cmd: &Document) -> CmdResult<Vec<u8>> {
    match cmd.get("payload") {
        Some(Bson::Binary(b)) => Ok(b.bytes.clone()),
        Some(Bson::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .or_else(|_| Ok(s.as_bytes().to_vec())),
        _ => Err(CommandError::new(
            codes::NO_SUCH_KEY,
            "NoSuchKey",
            "missing payload",
        )),
    }
}

fn auth_failed() -> CommandError {
    CommandError::new(
        codes::AUTHENTICATION_FAILED,
        "AuthenticationFailed",
        "Authentication failed.",
    )
}

fn sasl_error(e: ScramFailure) -> CommandError {
    match e {
        ScramFailure::AuthFailed => auth_failed(),
        ScramFailure::Protocol(msg) => {
            tracing::debug!(%msg, "SASL protocol error");
            auth_failed()
        }
    }
}
