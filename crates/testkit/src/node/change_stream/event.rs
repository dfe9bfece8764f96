//! One log entry as mongod's change event: the fields of each operation type, `documentKey`,
//! `updateDescription`, and the pre- and post-images the stream asks for.

use bson::{Bson, Document, doc};

use super::describe::describe_update;
use super::token::{Token, TokenKind};
use super::{BeforeChange, FullDocument, NO_MATCHING_DOCUMENT, Stream, version_at_least};
use crate::error::{CmdResult, CommandError};
use crate::node::Node;
use crate::oplog::{Entry, Op, uuid_bson};
use crate::query;

impl Node {
    /// One entry as mongod's change event, `None` for what the stream does not show.
    pub(super) fn render(&self, stream: &Stream, e: &Entry) -> CmdResult<Option<Document>> {
        let (op_type, expanded_only) = match &e.op {
            Op::Insert { .. } => ("insert", false),
            Op::Update { .. } => ("update", false),
            Op::Replace { .. } => ("replace", false),
            Op::Delete { .. } => ("delete", false),
            Op::Drop => ("drop", false),
            Op::Rename { .. } => ("rename", false),
            Op::DropDatabase => ("dropDatabase", false),
            Op::Create { .. } => ("create", true),
            Op::CreateIndexes { .. } => ("createIndexes", true),
            Op::DropIndexes { .. } => ("dropIndexes", true),
            Op::Modify { .. } => ("modify", true),
            Op::ShardCollection { .. } => ("shardCollection", true),
        };
        if expanded_only && !stream.expanded {
            return Ok(None);
        }
        let mut d = doc! {
            "_id": Token { ts: e.ts, seq: e.seq, kind: TokenKind::Event }.to_doc(),
            "operationType": op_type,
            "clusterTime": e.ts,
            "wallTime": e.wall,
        };
        let is_view = matches!(&e.op, Op::Create { options } if options.contains_key("viewOn"));
        if stream.expanded
            && !is_view
            && let Some(uuid) = &e.uuid
        {
            d.insert("collectionUUID", uuid_bson(uuid));
        }
        let ns = if e.coll.is_empty() {
            doc! { "db": e.db.clone() }
        } else {
            doc! { "db": e.db.clone(), "coll": e.coll.clone() }
        };
        let key = |doc: &Document| document_key(doc, e.shard_key.as_ref());
        match &e.op {
            Op::Insert { doc } => {
                d.insert("fullDocument", doc.clone());
                d.insert("ns", ns);
                d.insert("documentKey", key(doc));
            }
            Op::Update {
                before,
                after,
                whole,
                images,
            } => {
                d.insert("ns", ns);
                d.insert("documentKey", key(after));
                d.insert(
                    "updateDescription",
                    describe_update(before, after, whole, stream.expanded),
                );
                match stream.full_document {
                    FullDocument::Default => {}
                    FullDocument::UpdateLookup => {
                        let current = self.lookup(&e.db, &e.coll, after.get("_id"));
                        d.insert("fullDocument", current.map_or(Bson::Null, Bson::Document));
                    }
                    FullDocument::WhenAvailable | FullDocument::Required => {
                        let image = images.then(|| after.clone());
                        if image.is_none() && stream.full_document == FullDocument::Required {
                            return Err(missing_image("post", e));
                        }
                        d.insert("fullDocument", image.map_or(Bson::Null, Bson::Document));
                    }
                }
                pre_image(stream, &mut d, before, *images, e)?;
            }
            Op::Replace {
                before,
                after,
                images,
            } => {
                d.insert("fullDocument", after.clone());
                d.insert("ns", ns);
                d.insert("documentKey", key(after));
                pre_image(stream, &mut d, before, *images, e)?;
            }
            Op::Delete { before, images } => {
                d.insert("ns", ns);
                d.insert("documentKey", key(before));
                pre_image(stream, &mut d, before, *images, e)?;
            }
            Op::Drop | Op::DropDatabase => {
                d.insert("ns", ns);
            }
            Op::Rename {
                to_db,
                to_coll,
                drop_target,
            } => {
                let to = doc! { "db": to_db.clone(), "coll": to_coll.clone() };
                d.insert("ns", ns);
                d.insert("to", to.clone());
                if stream.expanded {
                    let mut desc = doc! { "to": to };
                    match drop_target {
                        Some(uuid) => desc.insert("dropTarget", uuid_bson(uuid)),
                        None => desc.insert("dropTarget", false),
                    };
                    d.insert("operationDescription", desc);
                }
            }
            Op::Create { options } => {
                d.insert("ns", ns);
                let mut desc = Document::new();
                if !is_view {
                    desc.insert(
                        "idIndex",
                        doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_" },
                    );
                }
                desc.extend(options.clone());
                d.insert("operationDescription", desc);
                let ns_type = if is_view {
                    "view"
                } else if options.contains_key("timeseries") {
                    "timeseries"
                } else {
                    "collection"
                };
                // mongod reports the namespace's type from 8.1 on.
                if version_at_least(&self.opts.version, 8, 1) {
                    d.insert("nsType", ns_type);
                }
            }
            Op::CreateIndexes { indexes } | Op::DropIndexes { indexes } => {
                d.insert("ns", ns);
                d.insert("operationDescription", doc! { "indexes": indexes.clone() });
            }
            Op::Modify { changes, before } => {
                d.insert("ns", ns);
                d.insert("operationDescription", changes.clone());
                d.insert(
                    "stateBeforeChange",
                    doc! { "collectionOptions": before.clone() },
                );
            }
            Op::ShardCollection { description } => {
                d.insert("ns", ns);
                d.insert("operationDescription", description.clone());
            }
        }
        if let Some(txn) = &e.txn {
            d.insert("lsid", txn.lsid.clone());
            d.insert("txnNumber", txn.txn_number);
        }
        Ok(Some(d))
    }

    /// The current version of a document (`fullDocument: updateLookup`).
    fn lookup(&self, db: &str, coll: &str, id: Option<&Bson>) -> Option<Document> {
        let id = crate::store::id_key(id?);
        self.store.with_coll(db, coll, false, |c| {
            c?.docs
                .iter()
                .find(|d| d.get("_id").is_some_and(|v| crate::store::id_key(v) == id))
                .cloned()
        })
    }
}

/// A document's `documentKey`: the fields of its collection's shard key (when sharded),
/// then `_id`.
fn document_key(doc: &Document, shard_key: Option<&Document>) -> Document {
    let mut key = Document::new();
    for field in shard_key.into_iter().flat_map(Document::keys) {
        if field != "_id" {
            let v = query::lookup(doc, field)
                .first()
                .map_or(Bson::Null, |v| (*v).clone());
            key.insert(field.clone(), v);
        }
    }
    key.insert("_id", doc.get("_id").cloned().unwrap_or(Bson::Null));
    key
}

/// Adds `fullDocumentBeforeChange` as the stream asks.
fn pre_image(
    stream: &Stream,
    d: &mut Document,
    before: &Document,
    images: bool,
    e: &Entry,
) -> CmdResult<()> {
    match stream.before_change {
        BeforeChange::Off => {}
        BeforeChange::WhenAvailable => {
            let image = images.then(|| Bson::Document(before.clone()));
            d.insert("fullDocumentBeforeChange", image.unwrap_or(Bson::Null));
        }
        BeforeChange::Required => {
            if !images {
                return Err(missing_image("pre", e));
            }
            d.insert("fullDocumentBeforeChange", before.clone());
        }
    }
    Ok(())
}

fn missing_image(which: &str, e: &Entry) -> CommandError {
    CommandError::new(
        NO_MATCHING_DOCUMENT,
        "NoMatchingDocument",
        format!(
            "Change stream was configured to require a {which}-image for all update, delete and \
             replace events, but the {which}-image was not found for event on {}.{} at {:?}",
            e.db, e.coll, e.ts
        ),
    )
}
