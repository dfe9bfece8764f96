//! Reads and cursors (`find` is in `find.rs`, `aggregate` in `aggregate.rs`): `getMore`,
//! `killCursors`, `count`, `distinct`, and the cursor table behind every command that returns
//! a cursor (batches stop before 16 MiB).

use std::collections::VecDeque;

use bson::{Bson, Document, doc};

use super::args::{coll_arg, non_negative, ok, opt_count, opt_doc};
use super::{Cursor, MAX_BSON_OBJECT_SIZE, Node};
use crate::error::{CmdResult, CommandError, codes};
use crate::query;

/// Default first-batch size of find and aggregate.
pub(super) const DEFAULT_BATCH: usize = 101;

impl Node {
    /// The documents of `db.coll` that match `filter` (checked first, as mongod parses a
    /// filter before it reads) in the command's context. A view's documents are its source
    /// collection's, through its pipeline.
    pub(super) fn filtered(
        &self,
        db: &str,
        coll: &str,
        filter: &Document,
        ctx: &query::QueryCtx,
    ) -> CmdResult<Vec<Document>> {
        query::check_filter(filter, query::FilterContext::Query)?;
        if let Some(docs) = self.view_documents(db, coll, 0)? {
            let mut out = Vec::new();
            for d in docs {
                if query::matches_in(&d, filter, ctx)? {
                    out.push(d);
                }
            }
            return Ok(out);
        }
        self.store.with_coll(db, coll, false, |c| match c {
            None => Ok(Vec::new()),
            Some(c) => {
                let mut out = Vec::new();
                for d in &c.docs {
                    if query::matches_in(d, filter, ctx)? {
                        out.push(d.clone());
                    }
                }
                Ok(out)
            }
        })
    }

    /// The definition of a view (`create` with `viewOn` and `pipeline`): its source
    /// collection and pipeline; `None` for a collection or a missing namespace.
    pub(super) fn view_of(&self, db: &str, coll: &str) -> Option<(String, Vec<Bson>)> {
        self.store.with_coll(db, coll, false, |c| {
            let options = &c?.options;
            let source = options.get_str("viewOn").ok()?.to_owned();
            let pipeline = options.get_array("pipeline").cloned().unwrap_or_default();
            Some((source, pipeline))
        })
    }

    /// The documents of a view (its source's, itself possibly a view up to mongod's depth
    /// of 20, through its pipeline); `None` when `db.coll` is not a view.
    fn view_documents(
        &self,
        db: &str,
        coll: &str,
        depth: usize,
    ) -> CmdResult<Option<Vec<Document>>> {
        let Some((source, pipeline)) = self.view_of(db, coll) else {
            return Ok(None);
        };
        if depth >= 20 {
            return Err(CommandError::new(
                codes::VIEW_DEPTH_LIMIT_EXCEEDED,
                "ViewDepthLimitExceeded",
                "View depth too deep or view cycle detected. Maximum depth is 20",
            ));
        }
        let docs = match self.view_documents(db, &source, depth + 1)? {
            Some(docs) => docs,
            None => self.store.documents(db, &source),
        };
        query::run_pipeline_in(docs, &pipeline, &query::QueryCtx::default()).map(Some)
    }

    /// Fails when `db.coll` is a view: mongod's CommandNotSupportedOnView for a write.
    pub(super) fn refuse_view(&self, db: &str, coll: &str) -> CmdResult<()> {
        match self.view_of(db, coll) {
            Some(_) => Err(CommandError::new(
                codes::COMMAND_NOT_SUPPORTED_ON_VIEW,
                "CommandNotSupportedOnView",
                format!("Namespace {db}.{coll} is a view, not a collection"),
            )),
            None => Ok(()),
        }
    }

    /// Builds a cursor reply; keeps the rest of `docs` as an open cursor when needed.
    pub(super) fn open_cursor(
        &self,
        ns: String,
        docs: Vec<Document>,
        batch: usize,
        single: bool,
    ) -> Document {
        self.open_cursor_with_tail(ns, docs, batch, single, None)
    }

    /// As [`open_cursor`](Self::open_cursor); `tail` (the collection's document count at the
    /// query, and the filter) keeps a tailable cursor open when it runs dry.
    pub(super) fn open_cursor_with_tail(
        &self,
        ns: String,
        docs: Vec<Document>,
        batch: usize,
        single: bool,
        tail: Option<(usize, Document)>,
    ) -> Document {
        let mut rest: VecDeque<Document> = docs.into();
        let first = take_batch(&mut rest, batch);
        let id = if (rest.is_empty() && tail.is_none()) || single {
            0
        } else {
            self.new_cursor_id(Cursor {
                ns: ns.clone(),
                docs: rest,
                tail,
                stream: None,
            })
        };
        ok(doc! { "cursor": { "firstBatch": first, "id": id, "ns": ns } })
    }

    /// Keeps an open cursor under a new id.
    pub(super) fn new_cursor_id(&self, cursor: Cursor) -> i64 {
        let mut cursors = self.cursors.lock();
        let id = loop {
            let id = rand::random::<i64>() & i64::MAX;
            if id != 0 && !cursors.contains_key(&id) {
                break id;
            }
        };
        cursors.insert(id, cursor);
        id
    }

    pub(super) fn get_more(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let id = match cmd.get("getMore") {
            Some(Bson::Int64(v)) => *v,
            Some(Bson::Int32(v)) => i64::from(*v),
            _ => {
                return Err(CommandError::type_mismatch(
                    "getMore cursor id must be a long",
                ));
            }
        };
        let coll = coll_arg(cmd, "collection")?;
        let ns = format!("{db}.{coll}");
        let batch = non_negative(cmd, "batchSize")?.unwrap_or(0);
        let mut cursors = self.cursors.lock();
        let Some(cursor) = cursors.get_mut(&id) else {
            return Err(CommandError::new(
                codes::CURSOR_NOT_FOUND,
                "CursorNotFound",
                format!("cursor id {id} not found"),
            ));
        };
        if cursor.ns != ns {
            return Err(CommandError::new(
                codes::UNAUTHORIZED,
                "Unauthorized",
                format!(
                    "Requested getMore on namespace '{ns}', but cursor belongs to a different namespace {}",
                    cursor.ns
                ),
            ));
        }
        if let Some(code) = self.fail_points.get_more_after_checkout(&ns) {
            // As on mongod, an error after the cursor was checked out destroys the cursor;
            // on a change stream's cursor, a resumable code is labelled so.
            let stream = cursors.remove(&id).is_some_and(|c| c.stream.is_some());
            let mut err = CommandError::new(
                code,
                crate::error::code_name(code),
                "Hit the 'failGetMoreAfterCursorCheckout' failpoint",
            );
            if stream && super::change_stream::is_resumable_code(code) {
                err.labels.push("ResumableChangeStreamError".to_owned());
            }
            return Err(err);
        }
        if let Some(stream) = cursor.stream.as_mut() {
            let result = self.change_stream_get_more(stream, batch);
            let (next, token, done) = match result {
                Ok(out) => out,
                Err(e) => {
                    // An error ends the stream, as mongod kills the cursor.
                    cursors.remove(&id);
                    return Err(e);
                }
            };
            let out_id = if done {
                cursors.remove(&id);
                0
            } else {
                id
            };
            return Ok(ok(doc! {
                "cursor": { "nextBatch": next, "postBatchResumeToken": token, "id": out_id, "ns": ns },
            }));
        }
        if cursor.docs.is_empty()
            && let Some((seen, filter)) = cursor.tail.take()
        {
            // A tailable cursor: what was inserted (and matches) since it last looked.
            let all = self.store.documents(db, coll);
            for d in all.iter().skip(seen) {
                if query::matches(d, &filter)? {
                    cursor.docs.push_back(d.clone());
                }
            }
            cursor.tail = Some((all.len().max(seen), filter));
        }
        let next = take_batch(
            &mut cursor.docs,
            if batch == 0 { usize::MAX } else { batch },
        );
        let out_id = if cursor.docs.is_empty() && cursor.tail.is_none() {
            cursors.remove(&id);
            0
        } else {
            id
        };
        Ok(ok(
            doc! { "cursor": { "nextBatch": next, "id": out_id, "ns": ns } },
        ))
    }

    pub(super) fn kill_cursors(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "killCursors")?;
        let ns = format!("{db}.{coll}");
        let Some(Bson::Array(ids)) = cmd.get("cursors") else {
            return Err(CommandError::failed_to_parse(
                "killCursors needs a 'cursors' array",
            ));
        };
        let mut killed = Vec::new();
        let mut not_found = Vec::new();
        let mut cursors = self.cursors.lock();
        for raw in ids {
            let id = match raw {
                Bson::Int64(v) => *v,
                Bson::Int32(v) => i64::from(*v),
                _ => return Err(CommandError::type_mismatch("cursor ids must be longs")),
            };
            if cursors.get(&id).is_some_and(|c| c.ns == ns) {
                cursors.remove(&id);
                killed.push(Bson::Int64(id));
            } else {
                not_found.push(Bson::Int64(id));
            }
        }
        Ok(ok(doc! {
            "cursorsKilled": killed,
            "cursorsNotFound": not_found,
            "cursorsAlive": [],
            "cursorsUnknown": [],
        }))
    }

    pub(super) fn count(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "count")?;
        let empty = Document::new();
        let filter = opt_doc(cmd, "query")?.unwrap_or(&empty);
        let ctx = query::QueryCtx::of_command(cmd)?;
        let mut n = self.filtered(db, coll, filter, &ctx)?.len();
        let skip = non_negative(cmd, "skip")?.unwrap_or(0);
        n = n.saturating_sub(skip);
        if let Some(l) = opt_count(cmd, "limit")? {
            if l != 0 {
                n = n.min(usize::try_from(l.unsigned_abs()).unwrap_or(usize::MAX));
            }
        }
        Ok(ok(doc! { "n": i32::try_from(n).unwrap_or(i32::MAX) }))
    }

    pub(super) fn distinct(&self, db: &str, cmd: &Document) -> CmdResult<Document> {
        let coll = coll_arg(cmd, "distinct")?;
        let key = cmd
            .get_str("key")
            .map_err(|_| CommandError::failed_to_parse("distinct needs a key"))?;
        let empty = Document::new();
        let filter = opt_doc(cmd, "query")?.unwrap_or(&empty);
        let ctx = query::QueryCtx::of_command(cmd)?;
        let mut values: Vec<Bson> = Vec::new();
        for d in self.filtered(db, coll, filter, &ctx)? {
            for v in query::lookup(&d, key) {
                let items: Vec<&Bson> = match v {
                    Bson::Array(a) => a.iter().collect(),
                    other => vec![other],
                };
                for it in items {
                    if !values.iter().any(|e| ctx.equal(e, it)) {
                        values.push(it.clone());
                    }
                }
            }
        }
        values.sort_by(|a, b| ctx.compare(a, b));
        Ok(ok(doc! { "values": values }))
    }
}

/// Takes up to `n` documents, also stopping before the batch would pass 16 MiB.
fn take_batch(docs: &mut VecDeque<Document>, n: usize) -> Vec<Bson> {
    let mut out = Vec::new();
    let mut size = 0usize;
    let cap = usize::try_from(MAX_BSON_OBJECT_SIZE).unwrap_or(usize::MAX) - 16 * 1024;
    while out.len() < n {
        let Some(front) = docs.front() else { break };
        let len = front.to_vec().map(|v| v.len()).unwrap_or(0);
        if !out.is_empty() && size + len > cap {
            break;
        }
        size += len;
        if let Some(d) = docs.pop_front() {
            out.push(Bson::Document(d));
        }
    }
    out
}
