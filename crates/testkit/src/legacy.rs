//! The legacy write opcodes (OP_INSERT, OP_UPDATE, OP_DELETE) and `getLastError`.
//!
//! A legacy write has no reply on the wire. The server turns it into the equivalent write
//! command, runs it like any other command (authentication, fail points and the store all
//! apply), and keeps the outcome on the connection, where a later `getLastError` finds it.

use bson::{Bson, Document, doc};
use mongo_wire::{DeleteFlags, InsertFlags, MessageRef, UpdateFlags};

/// Which legacy opcode a request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegacyKind {
    Insert,
    Update,
    Delete,
}

/// A legacy write translated into a write command: database, command, kind.
pub(crate) type Translated = (String, Document, LegacyKind);

fn split_ns(full: &str) -> Result<(String, String), String> {
    match full.split_once('.') {
        Some((db, coll)) if !db.is_empty() && !coll.is_empty() => {
            Ok((db.to_string(), coll.to_string()))
        }
        _ => Err(format!("invalid namespace {full:?} in a legacy write")),
    }
}

fn to_doc(raw: &bson::RawDocument) -> Result<Document, String> {
    Document::try_from(raw).map_err(|e| e.to_string())
}

/// Translates OP_INSERT / OP_UPDATE / OP_DELETE into `insert` / `update` / `delete`; `None`
/// for other messages.
pub(crate) fn translate(message: &MessageRef<'_>) -> Result<Option<Translated>, String> {
    Ok(Some(match message {
        MessageRef::Insert(m) => {
            let (db, coll) = split_ns(&m.full_collection_name)?;
            let docs = m
                .documents
                .iter()
                .map(|d| to_doc(d).map(Bson::Document))
                .collect::<Result<Vec<_>, _>>()?;
            let ordered = !m.flags.contains(InsertFlags::CONTINUE_ON_ERROR);
            let cmd = doc! { "insert": coll, "documents": docs, "ordered": ordered };
            (db, cmd, LegacyKind::Insert)
        }
        MessageRef::Update(m) => {
            let (db, coll) = split_ns(&m.full_collection_name)?;
            let spec = doc! {
                "q": to_doc(&m.selector)?,
                "u": to_doc(&m.update)?,
                "upsert": m.flags.contains(UpdateFlags::UPSERT),
                "multi": m.flags.contains(UpdateFlags::MULTI_UPDATE),
            };
            let cmd = doc! { "update": coll, "updates": [spec] };
            (db, cmd, LegacyKind::Update)
        }
        MessageRef::Delete(m) => {
            let (db, coll) = split_ns(&m.full_collection_name)?;
            let limit = i32::from(m.flags.contains(DeleteFlags::SINGLE_REMOVE));
            let spec = doc! { "q": to_doc(&m.selector)?, "limit": limit };
            let cmd = doc! { "delete": coll, "deletes": [spec] };
            (db, cmd, LegacyKind::Delete)
        }
        _ => return Ok(None),
    }))
}

/// The `getLastError` document (without `ok`) describing a write command's reply, as a
/// server answers after the legacy opcode: `n` (0 for inserts, as mongod reports), `err`
/// (null or the message), `code` on error, and for updates `updatedExisting` and `upserted`.
pub(crate) fn last_error(kind: LegacyKind, reply: &Document) -> Document {
    let ok = reply.get("ok").is_some_and(crate::query::truthy);
    let n = match reply.get("n") {
        Some(Bson::Int32(v)) => *v,
        Some(Bson::Int64(v)) => i32::try_from(*v).unwrap_or(i32::MAX),
        _ => 0,
    };
    let last_write_error = reply
        .get_array("writeErrors")
        .ok()
        .and_then(|a| a.last())
        .and_then(Bson::as_document);
    let failure = if ok { last_write_error } else { Some(reply) };
    let mut out = Document::new();
    let n = if kind == LegacyKind::Insert { 0 } else { n };
    if let Some(f) = failure {
        out.insert("n", if ok { n } else { 0 });
        out.insert(
            "err",
            f.get_str("errmsg").unwrap_or("unknown error").to_string(),
        );
        if let Some(code) = f.get("code") {
            out.insert("code", code.clone());
        }
        return out;
    }
    out.insert("n", n);
    out.insert("err", Bson::Null);
    if kind == LegacyKind::Update {
        let upserted = reply
            .get_array("upserted")
            .ok()
            .and_then(|a| a.first())
            .and_then(Bson::as_document)
            .and_then(|d| d.get("_id"))
            .cloned();
        out.insert("updatedExisting", upserted.is_none() && n > 0);
        if let Some(id) = upserted {
            out.insert("upserted", id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_outcomes() {
        let d = last_error(
            LegacyKind::Update,
            &doc! { "n": 2, "nModified": 2, "ok": 1.0 },
        );
        assert_eq!(
            d,
            doc! { "n": 2, "err": Bson::Null, "updatedExisting": true }
        );
        let d = last_error(
            LegacyKind::Update,
            &doc! { "n": 1, "upserted": [{ "index": 0, "_id": 7 }], "ok": 1.0 },
        );
        assert_eq!(
            d,
            doc! { "n": 1, "err": Bson::Null, "updatedExisting": false, "upserted": 7 }
        );
    }

    #[test]
    fn errors_carry_message_and_code() {
        let d = last_error(
            LegacyKind::Insert,
            &doc! { "n": 0, "writeErrors": [{ "index": 0, "code": 11000, "errmsg": "dup" }], "ok": 1.0 },
        );
        assert_eq!(d, doc! { "n": 0, "err": "dup", "code": 11000 });
        let d = last_error(
            LegacyKind::Delete,
            &doc! { "ok": 0.0, "code": 13, "errmsg": "unauthorized" },
        );
        assert_eq!(d, doc! { "n": 0, "err": "unauthorized", "code": 13 });
    }
}
