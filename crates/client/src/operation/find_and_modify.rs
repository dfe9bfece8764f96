//! `findAndModify`: `findOneAndDelete`, `findOneAndReplace` and `findOneAndUpdate` (CRUD
//! specification, "Find And Modify"). A retryable write of one document that returns the
//! document (before or after the change) or nothing.

use std::time::Duration;

use bson::{Bson, Document, doc};

use super::cursor::{put, put_flag};
use super::{Command, ConnectionDescription, OpKind, Operation, Step};
use crate::crud::{
    FindOneAndDeleteOptions, FindOneAndReplaceOptions, FindOneAndUpdateOptions, Hint,
    ReturnDocument, millis_bson,
};
use crate::error::{Error, Result};

/// What the three helpers have in common, gathered from their options.
#[derive(Debug, Default)]
struct Common {
    sort: Option<Document>,
    projection: Option<Document>,
    collation: Option<Document>,
    hint: Option<Hint>,
    max_time: Option<Duration>,
    let_vars: Option<Document>,
    comment: Option<Bson>,
    raw_data: Option<bool>,
    bypass_document_validation: Option<bool>,
}

/// The [`Common`] fields of any of the three options types (they share their names);
/// `$bypass` is the `bypassDocumentValidation` the helper allows.
macro_rules! common {
    ($o:expr, $bypass:expr) => {
        Common {
            sort: $o.sort,
            projection: $o.projection,
            collation: $o.collation,
            hint: $o.hint,
            max_time: $o.max_time,
            let_vars: $o.let_vars,
            comment: $o.comment,
            raw_data: $o.raw_data,
            bypass_document_validation: $bypass,
        }
    };
}

/// The `update`, `new` and `upsert` fields of a replace or an update.
fn change(update: Bson, return_document: Option<ReturnDocument>, upsert: Option<bool>) -> Document {
    let mut change = doc! { "update": update };
    put_flag(
        &mut change,
        "new",
        Some(return_document == Some(ReturnDocument::After)),
    );
    put(&mut change, "upsert", upsert);
    change
}

/// `findAndModify` on one collection, its body built once by a constructor.
#[derive(Debug)]
pub(crate) struct FindAndModify {
    db: String,
    body: Document,
}

impl FindAndModify {
    fn new(db: &str, coll: &str, filter: Document, change: Document, c: Common) -> Self {
        let mut body = doc! { "findAndModify": coll, "query": filter };
        put(&mut body, "sort", c.sort);
        body.extend(change);
        put(&mut body, "fields", c.projection);
        put(
            &mut body,
            "bypassDocumentValidation",
            c.bypass_document_validation,
        );
        put(&mut body, "maxTimeMS", c.max_time.map(millis_bson));
        put(&mut body, "collation", c.collation);
        put(&mut body, "hint", c.hint.map(|h| h.to_bson()));
        put(&mut body, "let", c.let_vars);
        put(&mut body, "comment", c.comment);
        put_flag(&mut body, "rawData", c.raw_data);
        FindAndModify {
            db: db.to_owned(),
            body,
        }
    }

    /// `findOneAndDelete`.
    pub(crate) fn delete(
        db: &str,
        coll: &str,
        filter: Document,
        o: FindOneAndDeleteOptions,
    ) -> Self {
        let c = common!(o, None);
        FindAndModify::new(db, coll, filter, doc! { "remove": true }, c)
    }

    /// `findOneAndReplace`; `replacement` is checked (no operators) by the caller.
    pub(crate) fn replace(
        db: &str,
        coll: &str,
        filter: Document,
        replacement: Bson,
        o: FindOneAndReplaceOptions,
    ) -> Self {
        let change = change(replacement, o.return_document, o.upsert);
        let bypass = o.bypass_document_validation;
        let c = common!(o, bypass);
        FindAndModify::new(db, coll, filter, change, c)
    }

    /// `findOneAndUpdate`; `update` is checked (operators or a pipeline) by the caller.
    pub(crate) fn update(
        db: &str,
        coll: &str,
        filter: Document,
        update: Bson,
        o: FindOneAndUpdateOptions,
    ) -> Self {
        let mut change = change(update, o.return_document, o.upsert);
        put(
            &mut change,
            "arrayFilters",
            o.array_filters
                .map(|f| f.into_iter().map(Bson::Document).collect::<Vec<_>>()),
        );
        let bypass = o.bypass_document_validation;
        let c = common!(o, bypass);
        FindAndModify::new(db, coll, filter, change, c)
    }
}

impl Operation for FindAndModify {
    /// The document before or after the change; `None` when nothing matched (and nothing
    /// was upserted, or the pre-image of an upsert was asked for).
    type Output = Option<Document>;

    fn kind(&self) -> OpKind {
        OpKind::Write
    }

    fn name(&self) -> &str {
        "findAndModify"
    }

    fn is_retryable(&self) -> bool {
        true
    }

    fn takes_write_concern(&self) -> bool {
        true
    }

    fn build(&mut self, _conn: &ConnectionDescription) -> Result<Command> {
        Ok(Command::new(self.db.clone(), self.body.clone()))
    }

    fn handle_reply(
        &mut self,
        mut reply: Document,
        _: &ConnectionDescription,
    ) -> Result<Step<Option<Document>>> {
        match reply.remove("value") {
            None | Some(Bson::Null) => Ok(Step::Done(None)),
            Some(Bson::Document(d)) => Ok(Step::Done(Some(d))),
            Some(other) => Err(Error::invalid_reply(format!(
                "findAndModify's value is a {:?}, not a document",
                other.element_type()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use mongo_events::{ServerAddress, ServerType};
    use mongo_wire::SizeLimits;

    use super::*;

    fn conn() -> ConnectionDescription {
        ConnectionDescription {
            address: ServerAddress::tcp("a", 1),
            server_type: ServerType::RsPrimary,
            max_wire_version: 21,
            limits: SizeLimits::default(),
            service_id: None,
            logical_session_timeout_minutes: Some(30),
        }
    }

    #[test]
    fn the_options_map_to_find_and_modify_fields() {
        let o = FindOneAndUpdateOptions::default()
            .return_document(ReturnDocument::After)
            .upsert(true)
            .sort(doc! {"a": -1})
            .projection(doc! {"_id": 0})
            .array_filters(vec![doc! {"e.x": 1}])
            .hint("a_1")
            .max_time(Duration::from_millis(50));
        let mut op = FindAndModify::update(
            "db",
            "c",
            doc! {"a": 1},
            Bson::Document(doc! {"$inc": {"n": 1}}),
            o,
        );
        let body = op.build(&conn()).unwrap().body;
        assert_eq!(
            body,
            doc! {
                "findAndModify": "c", "query": {"a": 1}, "sort": {"a": -1},
                "update": {"$inc": {"n": 1}}, "new": true, "upsert": true,
                "arrayFilters": [{"e.x": 1}], "fields": {"_id": 0}, "maxTimeMS": 50,
                "hint": "a_1",
            }
        );
        assert!(op.is_retryable() && op.takes_write_concern());
        let body = FindAndModify::delete("db", "c", doc! {}, FindOneAndDeleteOptions::default())
            .build(&conn())
            .unwrap()
            .body;
        assert_eq!(
            body,
            doc! {"findAndModify": "c", "query": {}, "remove": true}
        );
    }

    #[test]
    fn the_value_is_a_document_or_nothing() {
        let mut op = FindAndModify::delete("db", "c", doc! {}, FindOneAndDeleteOptions::default());
        let done = |s: Step<Option<Document>>| match s {
            Step::Done(v) => v,
            Step::More => panic!("more"),
        };
        assert_eq!(
            done(
                op.handle_reply(doc! {"ok": 1, "value": {"a": 1}}, &conn())
                    .unwrap()
            ),
            Some(doc! {"a": 1})
        );
        assert_eq!(
            done(
                op.handle_reply(doc! {"ok": 1, "value": null}, &conn())
                    .unwrap()
            ),
            None
        );
        assert!(
            op.handle_reply(doc! {"ok": 1, "value": 3}, &conn())
                .is_err()
        );
    }
}
