//! Entity operations: the client, database, collection and cursor methods the test files
//! call, each mapped to the facade's API, and the checks after each operation
//! (`expectError`, `expectResult`, `saveResultAsEntity`, `ignoreResultAndError`).

use std::sync::Arc;

use bson::{Bson, Document, doc};
use mongo_client::{Cursor, FindOptions, ReadPreference};
use super::BoxFuture;
use tracing::Instrument;

use super::entities::{CursorEntity, Entity};
use super::runner::State;
use super::{Fail, errors, matching, special};

/// What an operation returned.
pub(crate) enum Value {
    /// Nothing (void operations).
    None,
    /// A value matched as it is (numbers, arrays of values, non-root documents).
    Bson(Bson),
    /// A document matched as a root-level document.
    Root(Document),
    /// Documents of an iterated cursor, each matched as a root-level document.
    Docs(Vec<Document>),
    /// A cursor to keep as an entity.
    Cursor(Cursor),
}

/// How an operation ended.
pub(crate) enum OpError {
    /// The driver's error (what `expectError` checks).
    Driver(mongo_client::Error),
    /// The runner's own failure, or an unsupported operation.
    Fail(Fail),
}

impl From<Fail> for OpError {
    fn from(f: Fail) -> Self {
        OpError::Fail(f)
    }
}

impl From<mongo_client::Error> for OpError {
    fn from(e: mongo_client::Error) -> Self {
        OpError::Driver(e)
    }
}

type OpResult = Result<Value, OpError>;

const OPERATION_KEYS: [&str; 7] = [
    "name",
    "object",
    "arguments",
    "expectError",
    "expectResult",
    "saveResultAsEntity",
    "ignoreResultAndError",
];

/// Runs one operation and checks what it returned.
pub(crate) fn run_operation<'a>(state: &'a State, op: &'a Document) -> BoxFuture<'a, Result<(), Fail>> {
    Box::pin(run_operation_inner(state, op))
}

async fn run_operation_inner(state: &State, op: &Document) -> Result<(), Fail> {
    if let Some(k) = op.keys().find(|k| !OPERATION_KEYS.contains(&k.as_str())) {
        return Err(Fail::runner(format!("unknown operation key {k}")));
    }
    let name = op.get_str("name").map_err(|_| Fail::runner("operation.name"))?;
    let object = op.get_str("object").map_err(|_| Fail::runner("operation.object"))?;
    let args = op.get_document("arguments").cloned().unwrap_or_default();
    if object == "testRunner" {
        return special::run(state, name, &args).await;
    }
    let result = entity_operation(state, object, name, &args).await;
    let result = match result {
        Err(OpError::Fail(f)) => return Err(f),
        Err(OpError::Driver(e)) => Err(e),
        Ok(v) => Ok(v),
    };
    if op.get_bool("ignoreResultAndError").unwrap_or(false) {
        return Ok(());
    }
    if let Ok(expected) = op.get_document("expectError") {
        return match result {
            Ok(_) => Err(Fail::runner(format!("expected an error ({expected}), but the operation succeeded"))),
            Err(e) => errors::check(expected, &e, &state.entities),
        };
    }
    let value = result.map_err(|e| Fail::runner(format!("unexpected error: {e}")))?;
    if let Some(expected) = op.get("expectResult") {
        check_result(expected, &value, &state.entities)?;
    }
    if let Ok(save) = op.get_str("saveResultAsEntity") {
        let entity = match value {
            Value::None => return Err(Fail::runner("saveResultAsEntity: the operation returned nothing")),
            Value::Bson(b) => Entity::Bson(b),
            Value::Root(d) => Entity::Bson(Bson::Document(d)),
            Value::Docs(d) => Entity::Bson(Bson::Array(d.into_iter().map(Bson::Document).collect())),
            Value::Cursor(c) => Entity::Cursor(Arc::new(tokio::sync::Mutex::new(CursorEntity { cursor: Some(c) }))),
        };
        state.entities.insert(save, entity)?;
    }
    Ok(())
}

fn check_result(expected: &Bson, value: &Value, lookup: &dyn matching::Lookup) -> Result<(), Fail> {
    let r = match value {
        Value::None => matching::matches(expected, None, true, lookup),
        Value::Bson(b) => matching::matches(expected, Some(b), false, lookup),
        Value::Root(d) => matching::matches(expected, Some(&Bson::Document(d.clone())), true, lookup),
        Value::Docs(docs) => match expected {
            Bson::Array(e) if e.len() == docs.len() => e
                .iter()
                .zip(docs)
                .enumerate()
                .try_for_each(|(i, (e, a))| {
                    matching::matches(e, Some(&Bson::Document(a.clone())), true, lookup)
                        .map_err(|m| format!("[{i}]: {m}"))
                }),
            _ => matching::matches(
                expected,
                Some(&Bson::Array(docs.iter().cloned().map(Bson::Document).collect())),
                false,
                lookup,
            ),
        },
        Value::Cursor(_) => Err("a cursor cannot be compared with expectResult".into()),
    };
    r.map_err(|e| Fail::runner(format!("expectResult: {e}")))
}

/// Checks that only `allowed` argument keys are present (`session` is named apart).
pub(crate) fn allow(op: &str, args: &Document, allowed: &[&str]) -> Result<(), Fail> {
    for k in args.keys() {
        if k == "session" {
            return Err(Fail::unsupported(format!("{op} with a session (explicit sessions, issue 14)")));
        }
        if k == "timeoutMS" {
            return Err(Fail::unsupported(format!("{op} with timeoutMS (client-side operation timeouts, issue 21)")));
        }
        if !allowed.contains(&k.as_str()) {
            return Err(Fail::unsupported(format!("{op} with the argument {k}")));
        }
    }
    Ok(())
}

fn req_doc<'a>(op: &str, args: &'a Document, key: &str) -> Result<&'a Document, Fail> {
    args.get_document(key)
        .map_err(|_| Fail::runner(format!("{op}: {key} (a document) is required")))
}

fn int(args: &Document, key: &str) -> Option<i64> {
    args.get(key).and_then(matching::as_f64).map(|f| f as i64)
}

async fn entity_operation(state: &State, object: &str, name: &str, args: &Document) -> OpResult {
    let entity = state.entities.get(object)?;
    match entity {
        Entity::Client(c) => {
            let span = c.span.clone();
            client_op(&c.client, name, args).instrument(span).await
        }
        Entity::Database(db, c) => {
            let span = c.span.clone();
            database_op(&db, &c.client, name, args).instrument(span).await
        }
        Entity::Collection(coll, c) => {
            let span = c.span.clone();
            collection_op(&coll, name, args).instrument(span).await
        }
        Entity::Cursor(c) => cursor_op(&c, name, args).await,
        other => Err(Fail::runner(format!("{name} on a {}", other.kind())).into()),
    }
}

async fn client_op(client: &mongo_client::Client, name: &str, args: &Document) -> OpResult {
    match name {
        "close" => {
            allow(name, args, &[])?;
            client.shutdown().await;
            Ok(Value::None)
        }
        "createChangeStream" | "watch" => Err(Fail::unsupported(format!("{name} (change streams, issue 22)")).into()),
        "clientBulkWrite" => Err(Fail::unsupported("clientBulkWrite (client-level bulk write, issue 13)").into()),
        "appendMetadata" => Err(Fail::unsupported("appendMetadata (handshake metadata after construction)").into()),
        other => Err(Fail::unsupported(format!("client.{other}")).into()),
    }
}

fn read_preference(args: &Document) -> Result<Option<ReadPreference>, Fail> {
    match args.get_document("readPreference") {
        Ok(rp) => {
            let mode = rp.get_str("mode").map_err(|_| Fail::runner("readPreference.mode"))?;
            let mode = mongo_client::ReadMode::from_name(mode)
                .ok_or_else(|| Fail::runner(format!("unknown read preference mode {mode}")))?;
            if rp.len() > 1 {
                return Err(Fail::unsupported(format!("readPreference options {rp}")));
            }
            Ok(Some(ReadPreference::new(mode)))
        }
        Err(_) => Ok(None),
    }
}

async fn database_op(
    db: &mongo_client::Database,
    client: &mongo_client::Client,
    name: &str,
    args: &Document,
) -> OpResult {
    match name {
        "runCommand" => {
            allow(name, args, &["command", "commandName", "readPreference"])?;
            let cmd = req_doc(name, args, "command")?.clone();
            let reply = match read_preference(args)? {
                Some(rp) => client.run_read_command(db.name(), cmd, &rp).await?,
                None => db.run_command(cmd).await?,
            };
            Ok(Value::Root(reply))
        }
        "createChangeStream" | "watch" => Err(Fail::unsupported(format!("{name} (change streams, issue 22)")).into()),
        other => Err(Fail::unsupported(format!("database.{other}")).into()),
    }
}

async fn collection_op(coll: &mongo_client::Collection, name: &str, args: &Document) -> OpResult {
    match name {
        "insertOne" => {
            allow(name, args, &["document"])?;
            let r = coll.insert_one(req_doc(name, args, "document")?.clone()).await?;
            Ok(Value::Root(doc! {"insertedId": r.inserted_id}))
        }
        "insertMany" => {
            allow(name, args, &["documents"])?;
            let docs: Vec<Document> = args
                .get_array("documents")
                .map_err(|_| Fail::runner("insertMany: documents"))?
                .iter()
                .filter_map(|d| d.as_document().cloned())
                .collect();
            let r = coll.insert_many(docs).await?;
            let ids: Document = r
                .inserted_ids
                .into_iter()
                .enumerate()
                .map(|(i, id)| (i.to_string(), id))
                .collect();
            Ok(Value::Root(doc! {"insertedIds": ids}))
        }
        "find" | "createFindCursor" => {
            allow(name, args, &["filter", "limit", "batchSize", "sort"])?;
            let mut o = FindOptions::default();
            if let Some(n) = int(args, "batchSize") {
                o = o.batch_size(i32::try_from(n).unwrap_or(i32::MAX));
            }
            if let Some(n) = int(args, "limit") {
                o = o.limit(n);
            }
            if let Ok(s) = args.get_document("sort") {
                o = o.sort(s.clone());
            }
            let filter = req_doc(name, args, "filter")?.clone();
            let cursor = coll.find(filter, o).await?;
            if name == "find" {
                Ok(Value::Docs(cursor.collect_all().await?))
            } else {
                Ok(Value::Cursor(cursor))
            }
        }
        "deleteOne" | "deleteMany" => {
            allow(name, args, &["filter"])?;
            let filter = req_doc(name, args, "filter")?.clone();
            let r = if name == "deleteOne" {
                coll.delete_one(filter).await?
            } else {
                coll.delete_many(filter).await?
            };
            Ok(Value::Root(doc! {"deletedCount": r.deleted_count}))
        }
        "updateOne" | "updateMany" => {
            allow(name, args, &["filter", "update"])?;
            let filter = req_doc(name, args, "filter")?.clone();
            let update = req_doc(name, args, "update")
                .map_err(|_| Fail::unsupported(format!("{name} with a pipeline (issue 13)")))?
                .clone();
            let r = if name == "updateOne" {
                coll.update_one(filter, update).await?
            } else {
                coll.update_many(filter, update).await?
            };
            let mut d = doc! {"matchedCount": r.matched_count, "modifiedCount": r.modified_count};
            if let Some(id) = r.upserted_id {
                d.insert("upsertedId", id);
            }
            Ok(Value::Root(d))
        }
        "aggregate" => {
            allow(name, args, &["pipeline"])?;
            let pipeline: Vec<Document> = args
                .get_array("pipeline")
                .map_err(|_| Fail::runner("aggregate: pipeline"))?
                .iter()
                .filter_map(|d| d.as_document().cloned())
                .collect();
            let cursor = coll.aggregate(pipeline, None).await?;
            Ok(Value::Docs(cursor.collect_all().await?))
        }
        "countDocuments" => {
            allow(name, args, &["filter"])?;
            let n = coll.count_documents(req_doc(name, args, "filter")?.clone()).await?;
            Ok(Value::Bson(Bson::Int64(n)))
        }
        "createChangeStream" | "watch" => Err(Fail::unsupported(format!("{name} (change streams, issue 22)")).into()),
        other => Err(Fail::unsupported(format!("collection.{other}")).into()),
    }
}

async fn cursor_op(c: &tokio::sync::Mutex<CursorEntity>, name: &str, args: &Document) -> OpResult {
    let mut guard = c.lock().await;
    match name {
        "iterateUntilDocumentOrError" | "iterateOnce" => {
            allow(name, args, &[])?;
            let cursor = guard
                .cursor
                .as_mut()
                .ok_or_else(|| Fail::runner(format!("{name} on a closed cursor")))?;
            match cursor.try_next().await? {
                Some(d) => Ok(Value::Root(d)),
                None if name == "iterateOnce" => Ok(Value::None),
                None => Err(Fail::runner("iterateUntilDocumentOrError: the cursor is exhausted").into()),
            }
        }
        "close" => {
            allow(name, args, &[])?;
            if let Some(c) = guard.cursor.take() {
                c.close().await;
            }
            Ok(Value::None)
        }
        other => Err(Fail::unsupported(format!("cursor.{other}")).into()),
    }
}
