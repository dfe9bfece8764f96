//! The member's logical session cache, as mongod keeps one per process: every command that
//! carries an `lsid` registers (or refreshes) its session, `endSessions` removes them, and
//! `$listLocalSessions` reads them. A session's `uid` is the SHA-256 of the authenticated
//! user's `user@db` (of the empty string without authentication), as on mongod.

use std::collections::HashMap;

use bson::{Binary, Bson, Document, doc, spec::BinarySubtype};
use mongo_auth::scram::primitives::{self, ScramHash};
use parking_lot::Mutex;

use super::ConnState;
use super::args::now;
use crate::error::{CmdResult, CommandError};

/// mongod's `maxSessions` default.
const MAX_SESSIONS: usize = 1_000_000;
/// TooManyLogicalSessions.
const TOO_MANY_LOGICAL_SESSIONS: i32 = 261;

/// One cached session.
#[derive(Debug, Clone)]
struct Record {
    id: Binary,
    uid: Vec<u8>,
    user: Option<String>,
    last_use: bson::DateTime,
}

/// The cache, keyed by the session id's bytes.
#[derive(Debug, Default)]
pub(crate) struct LocalSessions {
    sessions: Mutex<HashMap<Vec<u8>, Record>>,
}

/// The user a connection acts as (`user@db`), and its digest.
fn current_user(conn: &ConnState) -> (Option<String>, Vec<u8>) {
    let user = conn
        .authenticated_users()
        .first()
        .map(|(db, user)| format!("{user}@{db}"));
    let digest = digest(user.as_deref().unwrap_or(""));
    (user, digest)
}

fn digest(full_name: &str) -> Vec<u8> {
    primitives::h(ScramHash::Sha256, full_name.as_bytes())
}

/// The session id of a command's `lsid`, when it has one.
fn session_id(cmd: &Document) -> Option<&Binary> {
    match cmd.get_document("lsid").ok()?.get("id")? {
        Bson::Binary(b) if b.subtype == BinarySubtype::Uuid => Some(b),
        _ => None,
    }
}

impl LocalSessions {
    /// Registers or refreshes the session a command names.
    pub(crate) fn vivify(&self, cmd: &Document, conn: &ConnState) -> CmdResult<()> {
        let Some(id) = session_id(cmd) else {
            return Ok(());
        };
        let (user, uid) = current_user(conn);
        let mut sessions = self.sessions.lock();
        if !sessions.contains_key(&id.bytes) && sessions.len() >= MAX_SESSIONS {
            return Err(CommandError::new(
                TOO_MANY_LOGICAL_SESSIONS,
                "TooManyLogicalSessions",
                format!(
                    "Unable to add session into the cache because the number of active sessions \
                     is too high (limit {MAX_SESSIONS})"
                ),
            ));
        }
        sessions.insert(
            id.bytes.clone(),
            Record {
                id: id.clone(),
                uid,
                user,
                last_use: now(),
            },
        );
        Ok(())
    }

    /// `endSessions`: forgets the listed sessions.
    pub(crate) fn end(&self, ids: &[Bson]) {
        let mut sessions = self.sessions.lock();
        for lsid in ids {
            if let Some(Bson::Binary(b)) = lsid.as_document().and_then(|d| d.get("id")) {
                sessions.remove(&b.bytes);
            }
        }
    }

    /// Forgets every session (a restart).
    pub(crate) fn clear(&self) {
        self.sessions.lock().clear();
    }

    /// `$listLocalSessions`: `{}` lists the current user's sessions, `{allUsers: true}` all of
    /// them, `{users: [{user, db}]}` those users'.
    pub(crate) fn list(&self, spec: &Bson, conn: &ConnState) -> CmdResult<Vec<Document>> {
        let Bson::Document(spec) = spec else {
            return Err(CommandError::type_mismatch(
                "$listLocalSessions options must be an object",
            ));
        };
        let mut all_users = false;
        let mut users: Option<Vec<Vec<u8>>> = None;
        for (k, v) in spec {
            match k.as_str() {
                "allUsers" => all_users = crate::query::truthy(v),
                "users" => {
                    let Bson::Array(list) = v else {
                        return Err(CommandError::type_mismatch(
                            "$listLocalSessions users must be an array",
                        ));
                    };
                    let mut digests = Vec::new();
                    for u in list {
                        let d = u.as_document();
                        let (Some(user), Some(db)) = (
                            d.and_then(|d| d.get_str("user").ok()),
                            d.and_then(|d| d.get_str("db").ok()),
                        ) else {
                            return Err(CommandError::failed_to_parse(
                                "$listLocalSessions users entries need a user and a db",
                            ));
                        };
                        digests.push(digest(&format!("{user}@{db}")));
                    }
                    users = Some(digests);
                }
                other => {
                    return Err(CommandError::new(
                        40415,
                        "Location40415",
                        format!("BSON field 'ListSessionsSpec.{other}' is an unknown field."),
                    ));
                }
            }
        }
        if all_users && users.is_some() {
            return Err(CommandError::bad_value(
                "$listLocalSessions: allUsers and users are mutually exclusive",
            ));
        }
        let wanted = users.unwrap_or_else(|| vec![current_user(conn).1]);
        let sessions = self.sessions.lock();
        let mut out: Vec<&Record> = sessions
            .values()
            .filter(|r| all_users || wanted.contains(&r.uid))
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.last_use));
        Ok(out
            .into_iter()
            .map(|r| {
                let mut d = doc! {
                    "_id": {
                        "id": Bson::Binary(r.id.clone()),
                        "uid": Binary { subtype: BinarySubtype::Generic, bytes: r.uid.clone() },
                    },
                    "lastUse": r.last_use,
                };
                if let Some(user) = &r.user {
                    d.insert("user", doc! { "name": user.clone() });
                }
                d
            })
            .collect())
    }
}
