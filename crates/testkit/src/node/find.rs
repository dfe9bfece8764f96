//! `find`: filter, sort, skip, limit, projection, and the options that change what a
//! document looks like: `returnKey` (only the key of the index the query would use, `{}`
//! without one) and `showRecordId` (`$recordId`).

use bson::{Bson, Document};

use super::Node;
use super::args::{coll_arg, non_negative, opt_count, opt_doc};
use super::reads::DEFAULT_BATCH;
use crate::error::CmdResult;
use crate::query;

/// Where the testkit keeps a document's record id while it sorts (removed before replying).
const RECORD_ID: &str = "$recordId";

impl Node {
    pub(super) fn find(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "find")?;
        let empty = Document::new();
        let filter = opt_doc(cmd, "filter")?.unwrap_or(&empty);
        let return_key = cmd.get("returnKey").is_some_and(query::truthy);
        let show_record_id = cmd.get("showRecordId").is_some_and(query::truthy);
        let sort = opt_doc(cmd, "sort")?;
        let ctx = query::QueryCtx::of_command(cmd)?;
        let mut docs = if show_record_id {
            self.filtered_with_record_ids(db, coll, filter, &ctx)?
        } else {
            self.filtered(db, coll, filter, &ctx)?
        };
        if let Some(sort) = sort {
            query::sort_docs_in(&mut docs, sort, ctx.collation.as_ref())?;
        }
        let skip = non_negative(cmd, "skip")?.unwrap_or(0);
        let limit = opt_count(cmd, "limit")?;
        let mut single = cmd.get("singleBatch").is_some_and(query::truthy);
        let limit = match limit {
            Some(l) if l < 0 => {
                single = true;
                usize::try_from(l.unsigned_abs()).ok()
            }
            Some(0) | None => None,
            Some(l) => usize::try_from(l).ok(),
        };
        let mut docs: Vec<Document> = docs.into_iter().skip(skip).collect();
        if let Some(l) = limit {
            docs.truncate(l);
        }
        if return_key {
            // mongod's returnKey stage replaces the document with the index key and drops the
            // record id, so `showRecordId` adds nothing to it.
            let key = self.index_used(db, coll, filter, sort);
            docs = docs.iter().map(|d| index_key(d, key.as_ref())).collect();
        } else {
            let record_ids: Vec<Option<Bson>> =
                docs.iter_mut().map(|d| d.remove(RECORD_ID)).collect();
            if let Some(p) = opt_doc(cmd, "projection")? {
                docs = docs
                    .iter()
                    .map(|d| query::project_in(d, p, &ctx))
                    .collect::<CmdResult<_>>()?;
            }
            for (d, id) in docs.iter_mut().zip(record_ids) {
                if let Some(id) = id {
                    d.insert(RECORD_ID, id);
                }
            }
        }
        let batch = non_negative(cmd, "batchSize")?.unwrap_or(DEFAULT_BATCH);
        // mongod: tailable cursors need a capped collection (error 2 otherwise) and stay open
        // at the end of the data.
        let tail = if cmd.get("tailable").is_some_and(query::truthy) {
            let capped = self.store.with_coll(db, coll, false, |c| {
                c.map(|c| c.options.get("capped").is_some_and(query::truthy))
            });
            if capped != Some(true) {
                return Err(crate::error::CommandError::bad_value(format!(
                    "error processing query: ns={db}.{coll}: tailable cursor requested on non capped collection"
                )));
            }
            Some((self.store.documents(db, coll).len(), filter.clone()))
        } else {
            None
        };
        Ok(self.open_cursor_with_tail(format!("{db}.{coll}"), docs, batch, single, tail))
    }

    /// Like `filtered`, each document carrying its record id under `$recordId`.
    fn filtered_with_record_ids(
        &self,
        db: &str,
        coll: &str,
        filter: &Document,
        ctx: &query::QueryCtx,
    ) -> CmdResult<Vec<Document>> {
        query::check_filter(filter, query::FilterContext::Query)?;
        self.store.with_coll(db, coll, false, |c| {
            let Some(c) = c else { return Ok(Vec::new()) };
            let mut out = Vec::new();
            for (i, d) in c.docs.iter().enumerate() {
                if query::matches_in(d, filter, ctx)? {
                    let mut d = d.clone();
                    if let Some(id) = c.record_id(i) {
                        d.insert(RECORD_ID, id);
                    }
                    out.push(d);
                }
            }
            Ok(out)
        })
    }

    /// The key pattern of the index the testkit's "planner" uses: the first index (in
    /// creation order, `_id_` first) whose leading field is a top-level field of the filter
    /// or the sort's first field. `None`: a collection scan.
    fn index_used(
        &self,
        db: &str,
        coll: &str,
        filter: &Document,
        sort: Option<&Document>,
    ) -> Option<Document> {
        let indexes = self
            .store
            .with_coll(db, coll, false, |c| c.map(|c| c.indexes.clone()))?;
        let sort_field = sort.and_then(|s| s.keys().next());
        indexes.into_iter().find_map(|ix| {
            let key = ix.get_document("key").ok()?.clone();
            let first = key.keys().next()?;
            let usable = key.values().all(|v| query::as_f64(v).is_some());
            (usable && (filter.contains_key(first) || sort_field == Some(first))).then_some(key)
        })
    }
}

/// A document's key in an index (`{}` for a collection scan): the indexed values under the
/// pattern's field names, null when missing.
fn index_key(doc: &Document, pattern: Option<&Document>) -> Document {
    let mut out = Document::new();
    for field in pattern.into_iter().flat_map(Document::keys) {
        let value = query::lookup(doc, field)
            .first()
            .map_or(Bson::Null, |v| (*v).clone());
        out.insert(field.clone(), value);
    }
    out
}
