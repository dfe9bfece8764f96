//! Argument parsing and reply helpers shared by the command families: reading the command
//! name, the collection argument, optional documents and counts, and `ok: 1` replies.

use bson::{Bson, Document};

use crate::error::{CmdResult, CommandError};

/// Marks a reply successful (`ok: 1.0`).
pub(super) fn ok(mut d: Document) -> Document {
    d.insert("ok", 1.0);
    d
}

/// The command name: the first key of the command document.
pub(super) fn name_of(cmd: &Document) -> &str {
    cmd.keys().next().map(String::as_str).unwrap_or_default()
}

/// A collection-name argument (a non-empty string), else InvalidNamespace.
pub(super) fn coll_arg<'a>(cmd: &'a Document, name: &str) -> CmdResult<&'a str> {
    match cmd.get(name) {
        Some(Bson::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(CommandError::new(
            73,
            "InvalidNamespace",
            format!("collection name has invalid type {name}"),
        )),
    }
}

/// An optional document argument (absent or null is `None`).
pub(super) fn opt_doc<'a>(cmd: &'a Document, key: &str) -> CmdResult<Option<&'a Document>> {
    match cmd.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Document(d)) => Ok(Some(d)),
        Some(_) => Err(CommandError::type_mismatch(format!(
            "'{key}' must be of type object"
        ))),
    }
}

/// An optional integral number (int, long or an integral double).
pub(super) fn opt_count(cmd: &Document, key: &str) -> CmdResult<Option<i64>> {
    match cmd.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::Int32(v)) => Ok(Some(i64::from(*v))),
        Some(Bson::Int64(v)) => Ok(Some(*v)),
        #[allow(clippy::cast_possible_truncation)]
        Some(Bson::Double(v)) if v.fract() == 0.0 && v.abs() < 9.0e15 => Ok(Some(*v as i64)),
        Some(_) => Err(CommandError::type_mismatch(format!(
            "'{key}' must be a number"
        ))),
    }
}

/// An optional count that must not be negative (`skip`, `batchSize`).
pub(super) fn non_negative(cmd: &Document, key: &str) -> CmdResult<Option<usize>> {
    match opt_count(cmd, key)? {
        None => Ok(None),
        Some(n) => usize::try_from(n).map(Some).map_err(|_| {
            CommandError::bad_value(format!(
                "{key} value must be non-negative, but received: {n}"
            ))
        }),
    }
}

/// A required array of documents (`documents`, `updates`, `deletes`, `indexes`).
pub(super) fn array_of_docs<'a>(cmd: &'a Document, key: &str) -> CmdResult<Vec<&'a Document>> {
    match cmd.get(key) {
        Some(Bson::Array(a)) => a
            .iter()
            .map(|e| {
                e.as_document().ok_or_else(|| {
                    CommandError::type_mismatch(format!("'{key}' entries must be documents"))
                })
            })
            .collect(),
        _ => Err(CommandError::new(
            40414,
            "Location40414",
            format!("BSON field '{key}' is missing but a required field"),
        )),
    }
}

/// The server's clock, for `localTime` and friends.
pub(super) fn now() -> bson::DateTime {
    bson::DateTime::now()
}
