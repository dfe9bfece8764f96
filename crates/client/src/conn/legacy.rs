//! The pre-3.6 protocol: commands in OP_QUERY form (the legacy handshake) and the legacy write
//! opcodes OP_INSERT / OP_UPDATE / OP_DELETE with an optional `getLastError`.

use std::borrow::Cow;
use std::time::Instant;

use bson::{Bson, Document};
use mongo_wire::{DeleteFlags, InsertFlags, OpDelete, OpInsert, OpQuery, OpUpdate, UpdateFlags};

use super::{Connection, State, next_request_id, to_raw};
use crate::error::{Error, Result};
use crate::operation::is_ok;

/// One of the legacy write opcodes (servers before 3.6).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum LegacyWrite {
    /// OP_INSERT.
    Insert {
        /// The documents.
        documents: Vec<Document>,
        /// Keep inserting after a failed document.
        continue_on_error: bool,
    },
    /// OP_UPDATE.
    Update {
        /// The selector.
        selector: Document,
        /// The update.
        update: Document,
        /// Insert when nothing matches.
        upsert: bool,
        /// Update every match.
        multi: bool,
    },
    /// OP_DELETE.
    Delete {
        /// The selector.
        selector: Document,
        /// Remove one match only.
        single: bool,
    },
}

impl Connection {
    /// A command in OP_QUERY form (legacy handshake, servers before 3.6).
    pub(super) async fn legacy_command(
        &mut self,
        db: &str,
        cmd: &Document,
        deadline: Option<Instant>,
    ) -> Result<Document> {
        self.legacy_command_with_id(db, cmd, next_request_id(), deadline)
            .await
    }

    pub(super) async fn legacy_command_with_id(
        &mut self,
        db: &str,
        cmd: &Document,
        request_id: i32,
        deadline: Option<Instant>,
    ) -> Result<Document> {
        let raw = to_raw(cmd)?;
        let query = OpQuery::command(db, Cow::Borrowed(raw.as_ref()));
        let reply = self
            .round_trip_with_id(&query, request_id, deadline)
            .await?;
        reply
            .into_body()
            .ok_or_else(|| Error::invalid_reply("empty OP_REPLY to a command"))
    }

    /// A legacy write (OP_INSERT / OP_UPDATE / OP_DELETE, for servers before 3.6) on
    /// `db.coll`, followed by `getLastError` with `get_last_error` options when given (its
    /// reply is returned; an `err` in it becomes an error). Without it the write is
    /// unacknowledged and `None` is returned.
    ///
    /// # Errors
    /// Network errors, and the getLastError's error.
    pub async fn legacy_write(
        &mut self,
        db: &str,
        coll: &str,
        op: LegacyWrite,
        get_last_error: Option<Document>,
    ) -> Result<Option<Document>> {
        let ns = format!("{db}.{coll}");
        let sent = match op {
            LegacyWrite::Insert {
                documents,
                continue_on_error,
            } => {
                let raws = documents.iter().map(to_raw).collect::<Result<Vec<_>>>()?;
                let mut flags = InsertFlags::empty();
                flags.set(InsertFlags::CONTINUE_ON_ERROR, continue_on_error);
                let msg = OpInsert {
                    flags,
                    full_collection_name: Cow::Borrowed(ns.as_str()),
                    documents: raws.iter().map(|d| Cow::Borrowed(d.as_ref())).collect(),
                };
                self.send_message(&msg).await
            }
            LegacyWrite::Update {
                selector,
                update,
                upsert,
                multi,
            } => {
                let (s, u) = (to_raw(&selector)?, to_raw(&update)?);
                let mut flags = UpdateFlags::empty();
                flags.set(UpdateFlags::UPSERT, upsert);
                flags.set(UpdateFlags::MULTI_UPDATE, multi);
                let msg = OpUpdate {
                    full_collection_name: Cow::Borrowed(ns.as_str()),
                    flags,
                    selector: Cow::Borrowed(s.as_ref()),
                    update: Cow::Borrowed(u.as_ref()),
                };
                self.send_message(&msg).await
            }
            LegacyWrite::Delete { selector, single } => {
                let s = to_raw(&selector)?;
                let mut flags = DeleteFlags::empty();
                flags.set(DeleteFlags::SINGLE_REMOVE, single);
                let msg = OpDelete {
                    full_collection_name: Cow::Borrowed(ns.as_str()),
                    flags,
                    selector: Cow::Borrowed(s.as_ref()),
                };
                self.send_message(&msg).await
            }
        };
        sent?;
        // Legacy writes have no reply: the connection is idle again.
        self.state = State::Ready;
        let Some(options) = get_last_error else {
            return Ok(None);
        };
        let raw = to_raw(&options)?;
        let gle = OpQuery::get_last_error(db, Some(raw.as_ref()));
        let reply = self.round_trip(&gle, None).await?;
        let doc = reply
            .into_body()
            .ok_or_else(|| Error::invalid_reply("empty getLastError reply"))?;
        if !is_ok(&doc) {
            return Err(Error::from_reply(&doc).with_address(&self.address));
        }
        match doc.get("err") {
            Some(Bson::String(msg)) => {
                let mut e = doc.clone();
                e.insert("errmsg", msg.clone());
                Err(Error::from_reply(&e).with_address(&self.address))
            }
            _ => Ok(Some(doc)),
        }
    }
}
