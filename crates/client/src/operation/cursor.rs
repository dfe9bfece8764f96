//! Cursor commands: `find` and `aggregate` open a cursor ([`OpenCursor`]), `getMore` reads the next batch,
//! `killCursors` closes it; [`CursorReply`] is what their replies carry.

use std::collections::VecDeque;

use bson::{Bson, Document, doc};

use super::{Command, ConnectionDescription, OpKind, Operation, Step, compact_int};
use crate::error::{BsonExt, Error, Result};

/// A cursor reply's id, namespace and batch, the documents moved out of the reply.
#[derive(Debug)]
pub(crate) struct CursorReply {
    /// The cursor id (0: exhausted).
    pub(crate) id: i64,
    /// The id as the server sent it (some servers use int32 ids and want them back so).
    pub(crate) id_bson: Bson,
    /// `db.collection`, when the reply names it.
    pub(crate) ns: Option<(String, String)>,
    /// The batch.
    pub(crate) batch: VecDeque<Document>,
}

impl CursorReply {
    /// Takes the cursor out of `reply`; `key` is `firstBatch` or `nextBatch`.
    pub(crate) fn parse(mut reply: Document, key: &str) -> Result<Self> {
        let Some(Bson::Document(mut cursor)) = reply.remove("cursor") else {
            return Err(Error::invalid_reply("reply has no cursor document"));
        };
        let id_bson = cursor.remove("id").unwrap_or(Bson::Null);
        let id = id_bson
            .as_i64_lossy()
            .ok_or_else(|| Error::invalid_reply("cursor has no id"))?;
        let ns = match cursor.remove("ns") {
            Some(Bson::String(ns)) => match ns.split_once('.') {
                Some((d, c)) if !d.is_empty() && !c.is_empty() => {
                    Some((d.to_owned(), c.to_owned()))
                }
                _ => None,
            },
            _ => None,
        };
        let batch = match cursor.remove(key) {
            Some(Bson::Array(a)) => a
                .into_iter()
                .map(|d| match d {
                    Bson::Document(d) => Ok(d),
                    _ => Err(Error::invalid_reply("a batch entry is not a document")),
                })
                .collect::<Result<VecDeque<_>>>()?,
            _ => VecDeque::new(),
        };
        Ok(CursorReply {
            id,
            id_bson,
            ns,
            batch,
        })
    }
}

/// The options of `find` this operation sends.
#[derive(Clone, Debug, Default)]
pub(crate) struct FindSpec {
    pub(crate) filter: Document,
    pub(crate) sort: Option<Document>,
    pub(crate) projection: Option<Document>,
    pub(crate) skip: Option<i64>,
    pub(crate) limit: Option<i64>,
    pub(crate) batch_size: Option<i32>,
}

/// A read that opens a cursor (`find`, `aggregate` on a collection): a retryable read that
/// takes a read concern and, in load-balanced mode, keeps its connection while the cursor is
/// open. The command's body is built once, by its constructor, and resent as it is on a retry.
#[derive(Debug)]
pub(crate) struct OpenCursor {
    name: &'static str,
    db: String,
    body: Document,
}

impl OpenCursor {
    /// `find` on `db.coll`.
    pub(crate) fn find(db: &str, coll: &str, spec: FindSpec) -> Self {
        let FindSpec {
            filter,
            sort,
            projection,
            skip,
            limit,
            batch_size,
        } = spec;
        let mut body = doc! { "find": coll, "filter": filter };
        if let Some(sort) = sort {
            body.insert("sort", sort);
        }
        if let Some(p) = projection {
            body.insert("projection", p);
        }
        if let Some(skip) = skip {
            body.insert("skip", compact_int(skip));
        }
        if let Some(limit) = limit {
            body.insert("limit", compact_int(limit));
        }
        if let Some(b) = batch_size {
            body.insert("batchSize", b);
        }
        OpenCursor {
            name: "find",
            db: db.to_owned(),
            body,
        }
    }

    /// `aggregate` of `pipeline` on `db.coll`.
    pub(crate) fn aggregate(
        db: &str,
        coll: &str,
        pipeline: Vec<Document>,
        batch_size: Option<i32>,
    ) -> Self {
        let stages: Vec<Bson> = pipeline.into_iter().map(Bson::Document).collect();
        let mut cursor = Document::new();
        if let Some(b) = batch_size {
            cursor.insert("batchSize", b);
        }
        OpenCursor {
            name: "aggregate",
            db: db.to_owned(),
            body: doc! { "aggregate": coll, "pipeline": stages, "cursor": cursor },
        }
    }
}

impl Operation for OpenCursor {
    type Output = CursorReply;

    fn kind(&self) -> OpKind {
        OpKind::Read
    }

    fn name(&self) -> &str {
        self.name
    }

    fn is_retryable(&self) -> bool {
        true
    }

    fn takes_read_concern(&self) -> bool {
        true
    }

    fn build(&mut self, _conn: &ConnectionDescription) -> Result<Command> {
        Ok(Command::new(self.db.clone(), self.body.clone()))
    }

    fn handle_reply(
        &mut self,
        reply: Document,
        _: &ConnectionDescription,
    ) -> Result<Step<CursorReply>> {
        CursorReply::parse(reply, "firstBatch").map(Step::Done)
    }

    fn pins_connection(&self, output: &CursorReply) -> bool {
        output.id != 0
    }
}

/// `getMore`: the next batch of an open cursor, on the cursor's server (or pinned
/// connection). Not retryable under the retryable reads rules (a cursor lives on one
/// server); the executor retries it there on overload errors (client backpressure spec).
#[derive(Debug)]
pub(crate) struct GetMore {
    db: String,
    coll: String,
    id: Bson,
    batch_size: Option<i32>,
}

impl GetMore {
    pub(crate) fn new(db: &str, coll: &str, id: Bson, batch_size: Option<i32>) -> Self {
        GetMore {
            db: db.to_owned(),
            coll: coll.to_owned(),
            id,
            batch_size,
        }
    }
}

impl Operation for GetMore {
    type Output = CursorReply;

    fn kind(&self) -> OpKind {
        OpKind::Read
    }

    fn name(&self) -> &str {
        "getMore"
    }

    fn build(&mut self, _conn: &ConnectionDescription) -> Result<Command> {
        let mut body = doc! { "getMore": self.id.clone(), "collection": self.coll.clone() };
        if let Some(b) = self.batch_size {
            body.insert("batchSize", b);
        }
        Ok(Command::new(self.db.clone(), body))
    }

    fn handle_reply(
        &mut self,
        reply: Document,
        _: &ConnectionDescription,
    ) -> Result<Step<CursorReply>> {
        CursorReply::parse(reply, "nextBatch").map(Step::Done)
    }
}

/// `killCursors` for one cursor, on its server (or pinned connection).
#[derive(Debug)]
pub(crate) struct KillCursors {
    db: String,
    coll: String,
    id: Bson,
}

impl KillCursors {
    pub(crate) fn new(db: &str, coll: &str, id: Bson) -> Self {
        KillCursors {
            db: db.to_owned(),
            coll: coll.to_owned(),
            id,
        }
    }
}

impl Operation for KillCursors {
    type Output = ();

    fn kind(&self) -> OpKind {
        OpKind::Read
    }

    fn name(&self) -> &str {
        "killCursors"
    }

    fn build(&mut self, _conn: &ConnectionDescription) -> Result<Command> {
        Ok(Command::new(
            self.db.clone(),
            doc! { "killCursors": self.coll.clone(), "cursors": [self.id.clone()] },
        ))
    }

    fn handle_reply(&mut self, _reply: Document, _: &ConnectionDescription) -> Result<Step<()>> {
        Ok(Step::Done(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_replies_move_their_documents_and_keep_the_id_type() {
        let reply = doc! {"ok": 1, "cursor": {"id": 5_i32, "ns": "db.c", "firstBatch": [{"a": 1}, {"a": 2}]}};
        let c = CursorReply::parse(reply, "firstBatch").unwrap();
        assert_eq!(c.id, 5);
        assert_eq!(c.id_bson, Bson::Int32(5));
        assert_eq!(c.ns, Some(("db".to_owned(), "c".to_owned())));
        assert_eq!(c.batch.len(), 2);
    }

    #[test]
    fn malformed_cursor_replies_are_typed_errors() {
        for bad in [
            doc! {"ok": 1},
            doc! {"ok": 1, "cursor": {"firstBatch": []}},
            doc! {"ok": 1, "cursor": {"id": 0, "firstBatch": [1]}},
        ] {
            assert!(CursorReply::parse(bad, "firstBatch").is_err());
        }
        // A namespace without a dot is ignored, not an error.
        let c = CursorReply::parse(
            doc! {"ok": 1, "cursor": {"id": 0_i64, "ns": "nodot", "nextBatch": []}},
            "nextBatch",
        )
        .unwrap();
        assert_eq!(c.ns, None);
    }

    #[test]
    fn only_open_cursors_pin_their_connection() {
        let find = OpenCursor::find("db", "c", FindSpec::default());
        let open = CursorReply::parse(
            doc! {"cursor": {"id": 3_i64, "firstBatch": []}},
            "firstBatch",
        )
        .unwrap();
        let closed = CursorReply::parse(
            doc! {"cursor": {"id": 0_i64, "firstBatch": []}},
            "firstBatch",
        )
        .unwrap();
        assert!(find.pins_connection(&open));
        assert!(!find.pins_connection(&closed));
    }
}
