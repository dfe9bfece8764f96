//! Reads that answer with a value instead of a cursor: `distinct`, `count` without a
//! filter for `estimatedDocumentCount`, and the deprecated `count` helper's `count` with a
//! query (CRUD specification), and `mapReduce` with its output inline. `countDocuments` is
//! an aggregation ([`count_documents_pipeline`]). All take a read concern; all but
//! `mapReduce` are retryable reads (the retryable reads spec leaves it out).

use bson::{Bson, Document, doc};

use super::cursor::{put, put_flag};
use super::{Command, ConnectionDescription, OpKind, Operation, Step, compact_int, count};
use crate::crud::{
    CountOptions, DistinctOptions, EstimatedDocumentCountOptions, Hint, millis_bson,
};
use crate::error::{Error, Result};

/// A read command whose reply is one value: its body, built once, and how to read the value.
#[derive(Debug)]
pub(crate) struct ValueRead<T> {
    name: &'static str,
    db: String,
    body: Document,
    parse: fn(Document) -> Result<T>,
    retryable: bool,
}

impl<T> Operation for ValueRead<T> {
    type Output = T;

    fn kind(&self) -> OpKind {
        OpKind::Read
    }

    fn name(&self) -> &str {
        self.name
    }

    fn is_retryable(&self) -> bool {
        self.retryable
    }

    fn takes_read_concern(&self) -> bool {
        true
    }

    fn build(&mut self, _conn: &ConnectionDescription) -> Result<Command> {
        Ok(Command::new(self.db.clone(), self.body.clone()))
    }

    fn handle_reply(&mut self, reply: Document, _: &ConnectionDescription) -> Result<Step<T>> {
        (self.parse)(reply).map(Step::Done)
    }
}

/// `distinct` of `key` over the documents of `db.coll` matching `filter`: the values.
pub(crate) fn distinct(
    db: &str,
    coll: &str,
    key: &str,
    filter: Option<Document>,
    o: &DistinctOptions,
) -> ValueRead<Vec<Bson>> {
    let mut body = doc! { "distinct": coll, "key": key };
    put(&mut body, "query", filter);
    put(&mut body, "collation", o.collation.clone());
    put(&mut body, "hint", o.hint.as_ref().map(Hint::to_bson));
    put(&mut body, "maxTimeMS", o.max_time.map(millis_bson));
    put(&mut body, "comment", o.comment.clone());
    put_flag(&mut body, "rawData", o.raw_data);
    ValueRead {
        name: "distinct",
        db: db.to_owned(),
        body,
        parse: |mut reply| match reply.remove("values") {
            Some(Bson::Array(values)) => Ok(values),
            _ => Err(Error::invalid_reply("distinct's reply has no values array")),
        },
        retryable: true,
    }
}

/// `mapReduce` of `db.coll` with the JavaScript functions `map` and `reduce`, its output
/// inline: the `{_id, value}` results. Not retryable.
pub(crate) fn map_reduce(
    db: &str,
    coll: &str,
    map: &str,
    reduce: &str,
) -> ValueRead<Vec<Document>> {
    let body = doc! {
        "mapReduce": coll,
        "map": Bson::JavaScriptCode(map.to_owned()),
        "reduce": Bson::JavaScriptCode(reduce.to_owned()),
        "out": { "inline": 1 },
    };
    ValueRead {
        name: "mapReduce",
        db: db.to_owned(),
        body,
        parse: |mut reply| match reply.remove("results") {
            Some(Bson::Array(results)) => results
                .into_iter()
                .map(|r| match r {
                    Bson::Document(d) => Ok(d),
                    _ => Err(Error::invalid_reply("a mapReduce result is not a document")),
                })
                .collect(),
            _ => Err(Error::invalid_reply(
                "mapReduce's reply has no results array",
            )),
        },
        retryable: false,
    }
}

/// `count` of `db.coll` with no filter (estimatedDocumentCount): the collection's metadata
/// count.
pub(crate) fn estimated_count(
    db: &str,
    coll: &str,
    o: &EstimatedDocumentCountOptions,
) -> ValueRead<i64> {
    let mut body = doc! { "count": coll };
    put(&mut body, "maxTimeMS", o.max_time.map(millis_bson));
    put(&mut body, "comment", o.comment.clone());
    put_flag(&mut body, "rawData", o.raw_data);
    ValueRead {
        name: "count",
        db: db.to_owned(),
        body,
        parse: |reply| match reply.get("n") {
            Some(_) => Ok(count(&reply, "n")),
            None => Err(Error::invalid_reply("count's reply has no n")),
        },
        retryable: true,
    }
}

/// `count` of the documents of `db.coll` matching `filter`, with skip, limit, hint and
/// collation: the CRUD specification's deprecated `count` helper (not `countDocuments`).
pub(crate) fn legacy_count(
    db: &str,
    coll: &str,
    filter: Document,
    o: &CountOptions,
) -> ValueRead<i64> {
    let mut body = doc! { "count": coll };
    if !filter.is_empty() {
        body.insert("query", filter);
    }
    put(
        &mut body,
        "skip",
        o.skip.filter(|s| *s != 0).map(compact_int),
    );
    put(
        &mut body,
        "limit",
        o.limit.filter(|l| *l != 0).map(compact_int),
    );
    put(&mut body, "hint", o.hint.as_ref().map(Hint::to_bson));
    put(&mut body, "collation", o.collation.clone());
    put(&mut body, "maxTimeMS", o.max_time.map(millis_bson));
    put(&mut body, "comment", o.comment.clone());
    put_flag(&mut body, "rawData", o.raw_data);
    ValueRead {
        name: "count",
        db: db.to_owned(),
        body,
        parse: |reply| match reply.get("n") {
            Some(_) => Ok(count(&reply, "n")),
            None => Err(Error::invalid_reply("count's reply has no n")),
        },
        retryable: true,
    }
}

/// The pipeline of countDocuments: `$match`, then `$skip` and `$limit` when given, then a
/// `$group` that sums 1 into `n`.
pub(crate) fn count_documents_pipeline(filter: Document, o: &CountOptions) -> Vec<Document> {
    let mut pipeline = vec![doc! { "$match": filter }];
    if let Some(skip) = o.skip.filter(|s| *s != 0) {
        pipeline.push(doc! { "$skip": compact_int(skip) });
    }
    if let Some(limit) = o.limit.filter(|l| *l != 0) {
        pipeline.push(doc! { "$limit": compact_int(limit) });
    }
    pipeline.push(doc! { "$group": { "_id": 1, "n": { "$sum": 1 } } });
    pipeline
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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

    fn done<T>(s: Step<T>) -> T {
        match s {
            Step::Done(v) => v,
            Step::More => panic!("more"),
        }
    }

    #[test]
    fn distinct_sends_its_options_and_reads_values() {
        let o = DistinctOptions::default()
            .max_time(Duration::from_millis(9))
            .comment("c");
        let mut op = distinct("db", "coll", "x.y", Some(doc! {"a": 1}), &o);
        assert!(op.is_retryable() && op.takes_read_concern());
        assert_eq!(
            op.build(&conn()).unwrap().body,
            doc! {"distinct": "coll", "key": "x.y", "query": {"a": 1}, "maxTimeMS": 9, "comment": "c"}
        );
        assert_eq!(
            done(
                op.handle_reply(doc! {"ok": 1, "values": [1, "a"]}, &conn())
                    .unwrap()
            ),
            vec![Bson::Int32(1), Bson::String("a".into())]
        );
        assert!(op.handle_reply(doc! {"ok": 1}, &conn()).is_err());
    }

    #[test]
    fn the_count_helper_sends_its_query_and_options() {
        let o = CountOptions::default()
            .skip(2)
            .limit(5)
            .collation(doc! {"locale": "en", "strength": 2});
        let mut op = legacy_count("db", "coll", doc! {"x": "a"}, &o);
        assert!(op.is_retryable() && op.takes_read_concern());
        assert_eq!(
            op.build(&conn()).unwrap().body,
            doc! {"count": "coll", "query": {"x": "a"}, "skip": 2, "limit": 5,
            "collation": {"locale": "en", "strength": 2}}
        );
        assert_eq!(
            done(op.handle_reply(doc! {"ok": 1, "n": 3}, &conn()).unwrap()),
            3
        );
        let mut op = legacy_count("db", "coll", doc! {}, &CountOptions::default());
        assert_eq!(op.build(&conn()).unwrap().body, doc! {"count": "coll"});
    }

    #[test]
    fn estimated_count_is_a_count_without_filter() {
        let mut op = estimated_count("db", "coll", &EstimatedDocumentCountOptions::default());
        assert_eq!(op.build(&conn()).unwrap().body, doc! {"count": "coll"});
        assert_eq!(
            done(op.handle_reply(doc! {"ok": 1, "n": 4.0}, &conn()).unwrap()),
            4
        );
        assert!(op.handle_reply(doc! {"ok": 1}, &conn()).is_err());
    }

    #[test]
    fn count_documents_adds_skip_and_limit_only_when_set() {
        let p = count_documents_pipeline(doc! {"a": 1}, &CountOptions::default());
        assert_eq!(p.len(), 2);
        let p = count_documents_pipeline(doc! {}, &CountOptions::default().skip(2).limit(3));
        assert_eq!(
            p,
            vec![
                doc! {"$match": {}},
                doc! {"$skip": 2},
                doc! {"$limit": 3},
                doc! {"$group": {"_id": 1, "n": {"$sum": 1}}},
            ]
        );
    }
}
