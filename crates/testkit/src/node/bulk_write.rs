//! `bulkWrite` (MongoDB 8.0): inserts, updates and deletes on any namespaces in one command,
//! run on `admin`, answered as mongod answers it.
//!
//! The command is checked whole before anything is written, in mongod's order: the database
//! (`admin` only: Unauthorized), the command's fields (an unknown one is 40415), `nsInfo` and
//! `ops` (missing: 40414; wrong types: TypeMismatch), and each op's namespace index (out of
//! range: BadValue). Then each op runs through the same statement machinery as `insert`,
//! `update` and `delete` (`writes.rs`), in order; ordered stops at the first failed op.
//!
//! The reply is a cursor on `admin.$cmd.bulkWrite` of one entry per op (`ok`, `idx`, `n`,
//! `nModified` and `upserted: {_id}` for updates; `code`, `codeName`, `errmsg` for a failed
//! op), only the failed ops' entries with `errorsOnly`, in batches of `cursor.batchSize`
//! (the rest through getMore); and the summary counts `nErrors`, `nInserted`, `nUpserted`,
//! `nMatched`, `nModified`, `nDeleted`. A server older than 8.0 does not know the command.

use bson::{Bson, Document, doc};

use super::args::{non_negative, opt_doc};
use super::{Node, command_not_found};
use crate::error::{CmdResult, CommandError, codes};
use crate::query;

/// The wire version of MongoDB 8.0, the first with `bulkWrite`.
const BULK_WRITE_WIRE_VERSION: i32 = 25;

/// The fields `bulkWrite` takes, besides `$`-prefixed ones and the generic arguments.
const FIELDS: &[&str] = &[
    "bulkWrite",
    "ops",
    "nsInfo",
    "cursor",
    "bypassDocumentValidation",
    "ordered",
    "errorsOnly",
    "comment",
    "let",
    "rawData",
    // Generic arguments every command takes.
    "lsid",
    "txnNumber",
    "autocommit",
    "startTransaction",
    "writeConcern",
    "readConcern",
    "maxTimeMS",
    "apiVersion",
    "apiStrict",
    "apiDeprecationErrors",
];

/// One op, parsed and checked.
enum Op<'a> {
    Insert(&'a Document),
    /// The statement in the `update` command's shape (`q`, `u`, `multi`, …).
    Update(Document),
    /// The statement in the `delete` command's shape (`q`, `limit`, …).
    Delete(Document),
}

/// The summary counts.
#[derive(Default)]
struct Counts {
    errors: i64,
    inserted: i64,
    upserted: i64,
    matched: i64,
    modified: i64,
    deleted: i64,
}

fn int32(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// An op's namespace index.
fn ns_index(op: &Document, key: &str, namespaces: usize) -> CmdResult<usize> {
    let index = match op.get(key) {
        Some(Bson::Int32(i)) => i64::from(*i),
        Some(Bson::Int64(i)) => *i,
        #[allow(clippy::cast_possible_truncation)]
        Some(Bson::Double(d)) if d.fract() == 0.0 && d.abs() < 1e15 => *d as i64,
        _ => {
            return Err(CommandError::type_mismatch(format!(
                "BSON field 'bulkWrite.ops.{key}' is the wrong type, expected type 'int'"
            )));
        }
    };
    usize::try_from(index)
        .ok()
        .filter(|i| *i < namespaces)
        .ok_or_else(|| {
            CommandError::bad_value(format!(
                "BulkWrite ops entry {op} has an invalid nsInfo index."
            ))
        })
}

/// Copies `keys` of `from` (those present) into `to`.
fn copy(from: &Document, to: &mut Document, keys: &[(&str, &str)]) {
    for (src, dst) in keys {
        if let Some(v) = from.get(*src) {
            to.insert(*dst, v.clone());
        }
    }
}

/// Parses one op: its namespace index and the statement.
fn parse_op(op: &Document, namespaces: usize) -> CmdResult<(usize, Op<'_>)> {
    let kind = op.keys().next().map(String::as_str).unwrap_or_default();
    let ns = ns_index(op, kind, namespaces)
        .map_err(|e| if kind.is_empty() { unknown_op() } else { e })?;
    let op = match kind {
        "insert" => match op.get("document") {
            Some(Bson::Document(d)) => Op::Insert(d),
            Some(_) => {
                return Err(CommandError::type_mismatch(
                    "BSON field 'bulkWrite.ops.document' is the wrong type, expected object",
                ));
            }
            None => return Err(missing("bulkWrite.ops.document")),
        },
        "update" => {
            let filter = opt_doc(op, "filter")?.ok_or_else(|| missing("bulkWrite.ops.filter"))?;
            let mods = match op.get("updateMods") {
                Some(m @ (Bson::Document(_) | Bson::Array(_))) => m.clone(),
                Some(_) => {
                    return Err(CommandError::type_mismatch(
                        "BSON field 'bulkWrite.ops.updateMods' is the wrong type",
                    ));
                }
                None => return Err(missing("bulkWrite.ops.updateMods")),
            };
            let mut spec = doc! {"q": filter.clone(), "u": mods};
            copy(
                op,
                &mut spec,
                &[
                    ("multi", "multi"),
                    ("upsert", "upsert"),
                    ("arrayFilters", "arrayFilters"),
                    ("hint", "hint"),
                    ("collation", "collation"),
                    ("sort", "sort"),
                ],
            );
            Op::Update(spec)
        }
        "delete" => {
            let filter = opt_doc(op, "filter")?.ok_or_else(|| missing("bulkWrite.ops.filter"))?;
            let multi = op.get("multi").is_some_and(query::truthy);
            let mut spec = doc! {"q": filter.clone(), "limit": if multi { 0 } else { 1 }};
            copy(
                op,
                &mut spec,
                &[("hint", "hint"), ("collation", "collation")],
            );
            Op::Delete(spec)
        }
        _ => return Err(unknown_op()),
    };
    Ok((ns, op))
}

fn missing(field: &str) -> CommandError {
    CommandError::new(
        40414,
        "Location40414",
        format!("BSON field '{field}' is missing but a required field"),
    )
}

fn unknown_op() -> CommandError {
    CommandError::failed_to_parse("Unrecognized bulkWrite op: expected insert, update or delete")
}

/// A failed op's cursor entry.
fn error_entry(idx: usize, e: &CommandError, id: Option<&Bson>) -> Document {
    let mut d = doc! {
        "ok": 0.0,
        "idx": int32(i64::try_from(idx).unwrap_or(i64::MAX)),
        "code": e.code,
        "codeName": crate::error::code_name(e.code),
        "errmsg": e.errmsg.clone(),
        "n": 0,
    };
    if e.code == codes::DUPLICATE_KEY
        && let Some(id) = id
    {
        d.insert("keyPattern", doc! {"_id": 1});
        d.insert("keyValue", doc! {"_id": id.clone()});
    }
    d
}

impl Node {
    /// `bulkWrite`: see the module documentation.
    pub(super) fn bulk_write(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        if self.opts.max_wire_version < BULK_WRITE_WIRE_VERSION {
            return Err(command_not_found("bulkWrite"));
        }
        if db != "admin" {
            return Err(CommandError::new(
                codes::UNAUTHORIZED,
                "Unauthorized",
                "bulkWrite may only be run against the admin database.",
            ));
        }
        if let Some(k) = cmd
            .keys()
            .find(|k| !k.starts_with('$') && !FIELDS.contains(&k.as_str()))
        {
            return Err(CommandError::new(
                40415,
                "Location40415",
                format!("BSON field 'bulkWrite.{k}' is an unknown field."),
            ));
        }
        let docs_of = |key: &str| -> CmdResult<Vec<&Document>> {
            match cmd.get(key) {
                Some(Bson::Array(a)) => a
                    .iter()
                    .map(|e| {
                        e.as_document().ok_or_else(|| {
                            CommandError::type_mismatch(format!(
                                "BSON field 'bulkWrite.{key}' entries must be objects"
                            ))
                        })
                    })
                    .collect(),
                Some(_) => Err(CommandError::type_mismatch(format!(
                    "BSON field 'bulkWrite.{key}' is the wrong type, expected type 'array'"
                ))),
                None => Err(missing(&format!("bulkWrite.{key}"))),
            }
        };
        let ns_info = docs_of("nsInfo")?;
        let raw_ops = docs_of("ops")?;
        let mut namespaces = Vec::with_capacity(ns_info.len());
        for entry in ns_info {
            let ns = entry
                .get_str("ns")
                .map_err(|_| missing("bulkWrite.nsInfo.ns"))?;
            match ns.split_once('.') {
                Some((d, c)) if !d.is_empty() && !c.is_empty() => {
                    namespaces.push((d.to_owned(), c.to_owned(), ns.to_owned()));
                }
                _ => {
                    return Err(CommandError::new(
                        73,
                        "InvalidNamespace",
                        format!("Invalid namespace specified '{ns}'"),
                    ));
                }
            }
        }
        let ops = raw_ops
            .into_iter()
            .map(|op| parse_op(op, namespaces.len()))
            .collect::<CmdResult<Vec<_>>>()?;
        // mongod parses every update pipeline before anything runs.
        for (_, op) in &ops {
            if let Op::Update(spec) = op
                && let Some(Bson::Array(stages)) = spec.get("u")
            {
                query::check_update_pipeline(stages)?;
            }
        }
        let ordered = cmd.get("ordered").is_none_or(query::truthy);
        let errors_only = cmd.get("errorsOnly").is_some_and(query::truthy);
        let batch_size = match opt_doc(cmd, "cursor")? {
            Some(c) => non_negative(c, "batchSize")?.unwrap_or(usize::MAX),
            None => usize::MAX,
        };

        // `let` applies to every statement; each statement may carry its own collation.
        let ctx = query::QueryCtx::of_command(cmd)?;
        let bypass = super::writes::bypasses_validation(cmd);
        let mut counts = Counts::default();
        let mut entries = Vec::new();
        for (idx, (ns, op)) in ops.iter().enumerate() {
            let Some((db, coll, full)) = namespaces.get(*ns) else {
                continue;
            };
            let outcome = match op {
                Op::Insert(d) => self
                    .store
                    .with_coll(db, coll, true, |c| match c {
                        Some(c) => c.insert(full, (*d).clone()).map(|_| ()),
                        None => Ok(()),
                    })
                    .map(|()| {
                        counts.inserted += 1;
                        doc! {"ok": 1.0, "idx": int32(i64::try_from(idx).unwrap_or(i64::MAX)), "n": 1}
                    })
                    .map_err(|e| error_entry(idx, &e, d.get("_id"))),
                Op::Update(spec) => self
                    .update_one_spec(db, coll, full, spec, &ctx, bypass)
                    .map(|r| {
                        let upserted = r.upserted.is_some();
                        counts.matched += r.matched;
                        counts.modified += r.modified;
                        counts.upserted += i64::from(upserted);
                        let mut e = doc! {
                            "ok": 1.0,
                            "idx": int32(i64::try_from(idx).unwrap_or(i64::MAX)),
                            "n": int32(r.matched + i64::from(upserted)),
                            "nModified": int32(r.modified),
                        };
                        if let Some(id) = r.upserted {
                            e.insert("upserted", doc! {"_id": id});
                        }
                        e
                    })
                    .map_err(|e| {
                        let mut d = error_entry(idx, &e, None);
                        d.insert("nModified", 0);
                        d
                    }),
                Op::Delete(spec) => self
                    .delete_one_spec(db, coll, spec, &ctx)
                    .map(|n| {
                        let n = i64::try_from(n).unwrap_or(i64::MAX);
                        counts.deleted += n;
                        doc! {"ok": 1.0, "idx": int32(i64::try_from(idx).unwrap_or(i64::MAX)), "n": int32(n)}
                    })
                    .map_err(|e| error_entry(idx, &e, None)),
            };
            match outcome {
                Ok(entry) => {
                    if !errors_only {
                        entries.push(entry);
                    }
                }
                Err(entry) => {
                    counts.errors += 1;
                    entries.push(entry);
                    if ordered {
                        break;
                    }
                }
            }
        }
        let mut reply = self.open_cursor(
            "admin.$cmd.bulkWrite".to_owned(),
            entries,
            batch_size,
            false,
        );
        reply.remove("ok");
        reply.insert("nErrors", int32(counts.errors));
        reply.insert("nInserted", int32(counts.inserted));
        reply.insert("nUpserted", int32(counts.upserted));
        reply.insert("nMatched", int32(counts.matched));
        reply.insert("nModified", int32(counts.modified));
        reply.insert("nDeleted", int32(counts.deleted));
        reply.insert("ok", 1.0);
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::node::ConnState;
    use crate::options::ServerOptions;
    use crate::scram::Users;
    use crate::store::Store;
    use crate::topology::Topology;

    fn node(max_wire_version: i32) -> Node {
        let opts = ServerOptions {
            max_wire_version,
            ..ServerOptions::default()
        };
        Node::new(
            opts,
            Arc::new(Store::new()),
            Arc::new(Users::default()),
            Arc::new(Topology::standalone()),
            0,
        )
    }

    fn run(node: &Node, db: &str, cmd: Document) -> Document {
        node.execute(db, cmd, &mut ConnState::new(1)).reply
    }

    #[test]
    fn results_come_in_a_cursor_with_the_summary_counts() {
        let node = node(25);
        let reply = run(
            &node,
            "admin",
            doc! {
                "bulkWrite": 1,
                "ops": [
                    {"insert": 0, "document": {"_id": 1}},
                    {"insert": 1, "document": {"_id": 1}},
                    {"insert": 0, "document": {"_id": 1}},
                    {"update": 1, "filter": {"_id": 2}, "updateMods": {"$set": {"a": 1}},
                     "upsert": true},
                    {"delete": 0, "filter": {}, "multi": true},
                ],
                "nsInfo": [{"ns": "d.a"}, {"ns": "e.b"}],
                "ordered": false,
                "cursor": {"batchSize": 2},
            },
        );
        assert_eq!(reply.get_f64("ok").unwrap(), 1.0, "{reply}");
        for (k, v) in [
            ("nErrors", 1),
            ("nInserted", 2),
            ("nUpserted", 1),
            ("nMatched", 0),
            ("nDeleted", 1),
        ] {
            assert_eq!(reply.get_i32(k).unwrap(), v, "{k}");
        }
        let cursor = reply.get_document("cursor").unwrap();
        assert_eq!(cursor.get_str("ns").unwrap(), "admin.$cmd.bulkWrite");
        assert_eq!(cursor.get_array("firstBatch").unwrap().len(), 2);
        let id = cursor.get_i64("id").unwrap();
        assert_ne!(id, 0, "three more entries wait for a getMore");
        let more = run(
            &node,
            "admin",
            doc! {"getMore": id, "collection": "$cmd.bulkWrite"},
        );
        let rest = more
            .get_document("cursor")
            .unwrap()
            .get_array("nextBatch")
            .unwrap();
        assert_eq!(rest.len(), 3);
        let failed = rest.first().and_then(Bson::as_document).unwrap();
        assert_eq!(failed.get_i32("idx").unwrap(), 2);
        assert_eq!(failed.get_i32("code").unwrap(), codes::DUPLICATE_KEY);
        let upsert = rest.get(1).and_then(Bson::as_document).unwrap();
        assert_eq!(upsert.get_document("upserted").unwrap(), &doc! {"_id": 2});
        assert_eq!(upsert.get_i32("n").unwrap(), 1);
    }

    #[test]
    fn errors_only_and_ordered_keep_only_the_first_failure() {
        let node = node(25);
        let reply = run(
            &node,
            "admin",
            doc! {
                "bulkWrite": 1,
                "ops": [
                    {"insert": 0, "document": {"_id": 1}},
                    {"insert": 0, "document": {"_id": 1}},
                    {"insert": 0, "document": {"_id": 3}},
                ],
                "nsInfo": [{"ns": "d.a"}],
                "errorsOnly": true,
            },
        );
        let batch = reply
            .get_document("cursor")
            .unwrap()
            .get_array("firstBatch")
            .unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(reply.get_i32("nInserted").unwrap(), 1);
        assert_eq!(node.store.documents("d", "a").len(), 1);
    }

    #[test]
    fn refusals_match_mongod() {
        let cmd = doc! {"bulkWrite": 1, "ops": [{"insert": 0, "document": {}}],
        "nsInfo": [{"ns": "d.a"}]};
        let code = |n: &Node, db: &str, c: Document| run(n, db, c).get_i32("code").unwrap();
        assert_eq!(
            code(&node(21), "admin", cmd.clone()),
            codes::COMMAND_NOT_FOUND
        );
        assert_eq!(code(&node(25), "d", cmd.clone()), codes::UNAUTHORIZED);
        let mut unknown = cmd.clone();
        unknown.insert("fooField", 1);
        assert_eq!(code(&node(25), "admin", unknown), 40415);
        let n = node(25);
        let out_of_range = doc! {"bulkWrite": 1,
        "ops": [{"insert": 0, "document": {}}, {"insert": 2, "document": {}}],
        "nsInfo": [{"ns": "d.a"}]};
        assert_eq!(code(&n, "admin", out_of_range), codes::BAD_VALUE);
        assert!(n.store.documents("d", "a").is_empty(), "nothing is written");
        assert_eq!(
            code(
                &n,
                "admin",
                doc! {"bulkWrite": 1, "nsInfo": [{"ns": "d.a"}]}
            ),
            40414
        );
    }
}
