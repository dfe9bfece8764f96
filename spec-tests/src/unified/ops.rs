//! Entity operations: the client, database, collection and cursor methods the test files
//! call, each mapped to the facade's API, and the checks after each operation
//! (`expectError`, `expectResult`, `saveResultAsEntity`, `ignoreResultAndError`).

use std::sync::Arc;

use super::BoxFuture;
use bson::{Bson, Document};
use mongo_client::{
    AggregateOptions, BulkWriteOptions, ChangeStreamOptions, ClientSession, CountOptions,
    CreateCollectionOptions, CreateIndexOptions, DeleteOptions, DistinctOptions, DriverInfo,
    DropIndexOptions, EstimatedDocumentCountOptions, FindOneAndDeleteOptions,
    FindOneAndReplaceOptions, FindOneAndUpdateOptions, FindOneOptions, FindOptions, IndexModel,
    InsertManyOptions, InsertOneOptions, ListCollectionsOptions, ListDatabasesOptions,
    ListIndexesOptions, ModifyCollectionOptions, ReadPreference, RenameCollectionOptions,
    ReplaceOptions, RunCursorCommandOptions, UpdateOptions, WriteModel,
};
use tracing::Instrument;

pub(crate) use super::args::{allow, op_timeout};
use super::args::{options, pipeline, req_doc, req_str, update_of};
use super::entities::{AnyCursor, CursorEntity, Entity};
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
    /// A cursor or a change stream to keep as an entity.
    Cursor(Box<AnyCursor>),
    /// A collection handle (`createCollection` returns the collection).
    Collection(Box<mongo_client::Collection>),
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

pub(crate) type OpResult = Result<Value, OpError>;

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
pub(crate) fn run_operation<'a>(
    state: &'a State,
    op: &'a Document,
) -> BoxFuture<'a, Result<(), Fail>> {
    Box::pin(run_operation_inner(state, op))
}

async fn run_operation_inner(state: &State, op: &Document) -> Result<(), Fail> {
    run_checked_inner(state, op).await.map(|_| ())
}

/// Runs one operation and checks what it returned; the driver error it raised (expected,
/// or ignored) is handed back, for `withTransaction`'s callback to propagate.
pub(crate) fn run_checked<'a>(
    state: &'a State,
    op: &'a Document,
) -> BoxFuture<'a, Result<Option<mongo_client::Error>, Fail>> {
    Box::pin(run_checked_inner(state, op))
}

async fn run_checked_inner(
    state: &State,
    op: &Document,
) -> Result<Option<mongo_client::Error>, Fail> {
    if let Some(k) = op.keys().find(|k| !OPERATION_KEYS.contains(&k.as_str())) {
        return Err(Fail::runner(format!("unknown operation key {k}")));
    }
    let name = op
        .get_str("name")
        .map_err(|_| Fail::runner("operation.name"))?;
    let object = op
        .get_str("object")
        .map_err(|_| Fail::runner("operation.object"))?;
    let args = op.get_document("arguments").cloned().unwrap_or_default();
    if object == "testRunner" {
        return special::run(state, name, &args).await.map(|()| None);
    }
    let result = entity_operation(state, object, name, &args).await;
    let result = match result {
        Err(OpError::Fail(f)) => return Err(f),
        Err(OpError::Driver(e)) => Err(e),
        Ok(v) => Ok(v),
    };
    if op.get_bool("ignoreResultAndError").unwrap_or(false) {
        return Ok(result.err());
    }
    if let Ok(expected) = op.get_document("expectError") {
        return match result {
            Ok(_) => Err(Fail::runner(format!(
                "expected an error ({expected}), but the operation succeeded"
            ))),
            Err(e) => errors::check(expected, &e, &state.entities).map(|()| Some(e)),
        };
    }
    let value = result.map_err(|e| Fail::runner(format!("unexpected error: {e}")))?;
    if let Some(expected) = op.get("expectResult") {
        check_result(expected, &value, &state.entities)?;
    }
    if let Ok(save) = op.get_str("saveResultAsEntity") {
        let entity = match value {
            Value::None => {
                return Err(Fail::runner(
                    "saveResultAsEntity: the operation returned nothing",
                ));
            }
            Value::Bson(b) => Entity::Bson(b),
            Value::Root(d) => Entity::Bson(Bson::Document(d)),
            Value::Docs(d) => {
                Entity::Bson(Bson::Array(d.into_iter().map(Bson::Document).collect()))
            }
            Value::Cursor(c) => Entity::Cursor(Arc::new(tokio::sync::Mutex::new(CursorEntity {
                cursor: Some(*c),
            }))),
            Value::Collection(coll) => {
                let client = match state.entities.get(object)? {
                    Entity::Database(_, c) => c,
                    other => {
                        return Err(Fail::runner(format!(
                            "a collection returned by a {}",
                            other.kind()
                        )));
                    }
                };
                Entity::Collection(*coll, client)
            }
        };
        state.entities.insert(save, entity)?;
    }
    Ok(None)
}

fn check_result(expected: &Bson, value: &Value, lookup: &dyn matching::Lookup) -> Result<(), Fail> {
    let r = match value {
        Value::None => matching::matches(expected, None, true, lookup),
        Value::Bson(b) => matching::matches(expected, Some(b), false, lookup),
        Value::Root(d) => {
            matching::matches(expected, Some(&Bson::Document(d.clone())), true, lookup)
        }
        Value::Docs(docs) => match expected {
            Bson::Array(e) if e.len() == docs.len() => {
                e.iter().zip(docs).enumerate().try_for_each(|(i, (e, a))| {
                    matching::matches(e, Some(&Bson::Document(a.clone())), true, lookup)
                        .map_err(|m| format!("[{i}]: {m}"))
                })
            }
            _ => matching::matches(
                expected,
                Some(&Bson::Array(
                    docs.iter().cloned().map(Bson::Document).collect(),
                )),
                false,
                lookup,
            ),
        },
        Value::Cursor(_) => Err("a cursor cannot be compared with expectResult".into()),
        Value::Collection(_) => Err("a collection cannot be compared with expectResult".into()),
    };
    r.map_err(|e| Fail::runner(format!("expectResult: {e}")))
}

async fn entity_operation(state: &State, object: &str, name: &str, args: &Document) -> OpResult {
    let entity = state.entities.get(object)?;
    // The explicit session the operation runs in, locked for its duration.
    let session = match &entity {
        Entity::Client(_) | Entity::Database(..) | Entity::Collection(..) => {
            super::sessions::session_arg(&state.entities, args)?
        }
        _ => None,
    };
    let mut guard = match &session {
        Some(s) => Some(s.lock().await),
        None => None,
    };
    let session = guard.as_deref_mut();
    match entity {
        Entity::Client(c) => {
            let span = c.span.clone();
            client_op(&c.client, session, name, args)
                .instrument(span)
                .await
        }
        Entity::Database(db, c) => {
            let span = c.span.clone();
            database_op(&db, session, name, args).instrument(span).await
        }
        Entity::Collection(coll, c) => {
            let span = c.span.clone();
            collection_op(&coll, session, name, args)
                .instrument(span)
                .await
        }
        Entity::Cursor(c) => super::cursor_ops::cursor_op(&c, name, args).await,
        Entity::Bucket(b, c) => {
            let span = c.span.clone();
            super::gridfs::bucket_op(&b, name, args)
                .instrument(span)
                .await
        }
        Entity::Session(s) => super::sessions::session_op(state, &s, name, args).await,
        other => Err(Fail::runner(format!("{name} on a {}", other.kind())).into()),
    }
}

async fn client_op(
    client: &mongo_client::Client,
    session: Option<&mut ClientSession>,
    name: &str,
    args: &Document,
) -> OpResult {
    // The operation's own timeoutMS (client-side operation timeouts).
    let timeout = op_timeout(args)?;
    match name {
        "close" => {
            allow(name, args, &[])?;
            client.shutdown().await;
            Ok(Value::None)
        }
        // `listDatabaseObjects` / `listCollectionObjects` are the format's names for the
        // enumerations that return the driver's model of an entry: here, the entry documents.
        "listDatabases" | "listDatabaseNames" | "listDatabaseObjects" => {
            let filter = args.get_document("filter").ok().cloned();
            let o: ListDatabasesOptions = options(name, args, &["filter"])?;
            let dbs = client
                .list_databases()
                .session(session)
                .timeout(timeout)
                .filter(filter)
                .with_options(o)
                .await?;
            if name != "listDatabaseNames" {
                Ok(Value::Docs(dbs))
            } else {
                Ok(Value::Bson(Bson::Array(
                    dbs.iter()
                        .filter_map(|d| d.get_str("name").ok())
                        .map(|n| Bson::String(n.into()))
                        .collect(),
                )))
            }
        }
        "createChangeStream" | "watch" => {
            change_stream(name, args, session, |pipeline| client.watch(pipeline)).await
        }
        "clientBulkWrite" => super::client_bulk::run(client, session, args).await,
        "appendMetadata" => {
            allow(name, args, &["driverInfoOptions"])?;
            let d = req_doc(name, args, "driverInfoOptions")?;
            let mut info = DriverInfo::new(d.get_str("name").unwrap_or_default());
            if let Ok(v) = d.get_str("version") {
                info = info.version(v);
            }
            if let Ok(p) = d.get_str("platform") {
                info = info.platform(p);
            }
            client.append_metadata(info)?;
            Ok(Value::None)
        }
        other => Err(Fail::unsupported(format!("client.{other}")).into()),
    }
}

/// `createChangeStream` on a client, database or collection (`watch` opens the action): the
/// pipeline and options from the arguments, the events as documents in a cursor entity.
async fn change_stream<'a, T>(
    name: &str,
    args: &Document,
    session: Option<&'a mut ClientSession>,
    watch: impl FnOnce(Vec<Document>) -> mongo_client::action::Watch<'a, T>,
) -> OpResult {
    let pipeline = pipeline(name, args)?;
    let o: ChangeStreamOptions = options(name, args, &["pipeline"])?;
    let stream = watch(pipeline)
        .session(session)
        .timeout(op_timeout(args)?)
        .with_options(o)
        .with_type::<Document>()
        .await?;
    Ok(Value::Cursor(Box::new(stream.into())))
}

fn read_preference(args: &Document) -> Result<Option<ReadPreference>, Fail> {
    match args.get_document("readPreference") {
        Ok(rp) => super::entities::read_preference(rp).map(Some),
        Err(_) => Ok(None),
    }
}

async fn database_op(
    db: &mongo_client::Database,
    session: Option<&mut ClientSession>,
    name: &str,
    args: &Document,
) -> OpResult {
    // The operation's own timeoutMS (client-side operation timeouts).
    let timeout = op_timeout(args)?;
    match name {
        "runCommand" => {
            allow(
                name,
                args,
                &["command", "commandName", "readPreference", "session"],
            )?;
            let cmd = req_doc(name, args, "command")?.clone();
            let mut run = db.run_command(cmd).session(session).timeout(timeout);
            if let Some(rp) = read_preference(args)? {
                run = run.read_preference(rp);
            }
            let reply = run.await?;
            Ok(Value::Root(reply))
        }
        "runCursorCommand" | "createCommandCursor" => {
            let cmd = req_doc(name, args, "command")?.clone();
            let o: RunCursorCommandOptions = options(name, args, &["command", "commandName"])?;
            let cursor = db
                .run_cursor_command(cmd)
                .session(session)
                .timeout(timeout)
                .with_options(o)
                .await?;
            if name == "runCursorCommand" {
                Ok(Value::Docs(cursor.collect_all().await?))
            } else {
                Ok(Value::Cursor(Box::new(cursor.into())))
            }
        }
        "aggregate" => {
            let pipeline = pipeline(name, args)?;
            let o: AggregateOptions = options(name, args, &["pipeline"])?;
            Ok(Value::Docs(
                db.aggregate(pipeline)
                    .session(session)
                    .timeout(timeout)
                    .with_options(o)
                    .await?
                    .collect_all()
                    .await?,
            ))
        }
        "createCollection" => {
            let coll = req_str(name, args, "collection")?;
            let o: CreateCollectionOptions = options(name, args, &["collection"])?;
            db.create_collection(&coll)
                .session(session)
                .timeout(timeout)
                .with_options(o)
                .await?;
            Ok(Value::Collection(Box::new(db.collection(&coll))))
        }
        "modifyCollection" => {
            let coll = req_str(name, args, "collection")?;
            let o: ModifyCollectionOptions = options(name, args, &["collection"])?;
            db.modify_collection(coll)
                .with_options(o)
                .session(session)
                .timeout(timeout)
                .await?;
            Ok(Value::None)
        }
        "dropCollection" => {
            allow(name, args, &["collection"])?;
            db.collection::<Document>(&req_str(name, args, "collection")?)
                .drop()
                .session(session)
                .timeout(timeout)
                .await?;
            Ok(Value::None)
        }
        "listCollections" | "listCollectionObjects" => {
            let filter = args.get_document("filter").ok().cloned();
            let o: ListCollectionsOptions = options(name, args, &["filter"])?;
            Ok(Value::Docs(
                db.list_collections()
                    .session(session)
                    .timeout(timeout)
                    .filter(filter)
                    .with_options(o)
                    .await?
                    .collect_all()
                    .await?,
            ))
        }
        "listCollectionNames" => {
            allow(name, args, &["filter"])?;
            let filter = args.get_document("filter").ok().cloned();
            let names = db
                .list_collection_names()
                .session(session)
                .timeout(timeout)
                .filter(filter)
                .await?;
            Ok(Value::Bson(Bson::Array(
                names.into_iter().map(Bson::String).collect(),
            )))
        }
        "createChangeStream" | "watch" => {
            change_stream(name, args, session, |pipeline| db.watch(pipeline)).await
        }
        other => Err(Fail::unsupported(format!("database.{other}")).into()),
    }
}

fn root<T: serde::Serialize>(r: &T) -> OpResult {
    bson::serialize_to_document(r)
        .map(Value::Root)
        .map_err(|e| Fail::runner(format!("the result cannot be written as BSON: {e}")).into())
}

async fn collection_op(
    coll: &mongo_client::Collection,
    session: Option<&mut ClientSession>,
    name: &str,
    args: &Document,
) -> OpResult {
    // The operation's own timeoutMS (client-side operation timeouts).
    let timeout = op_timeout(args)?;
    match name {
        "insertOne" => {
            let d = req_doc(name, args, "document")?.clone();
            let o: InsertOneOptions = options(name, args, &["document"])?;
            root(
                &coll
                    .insert_one(d)
                    .session(session)
                    .timeout(timeout)
                    .with_options(o)
                    .await?,
            )
        }
        "insertMany" => {
            let docs: Vec<Document> = args
                .get_array("documents")
                .map_err(|_| Fail::runner("insertMany: documents"))?
                .iter()
                .filter_map(|d| d.as_document().cloned())
                .collect();
            let o: InsertManyOptions = options(name, args, &["documents"])?;
            root(
                &coll
                    .insert_many(docs)
                    .session(session)
                    .timeout(timeout)
                    .with_options(o)
                    .await?,
            )
        }
        "find" | "createFindCursor" => {
            let filter = req_doc(name, args, "filter")?.clone();
            let o: FindOptions = options(name, args, &["filter"])?;
            let cursor = coll
                .find(filter)
                .session(session)
                .timeout(timeout)
                .with_options(o)
                .await?;
            if name == "find" {
                Ok(Value::Docs(cursor.collect_all().await?))
            } else {
                Ok(Value::Cursor(Box::new(cursor.into())))
            }
        }
        "findOne" => {
            let filter = req_doc(name, args, "filter")?.clone();
            let o: FindOneOptions = options(name, args, &["filter"])?;
            Ok(
                match coll
                    .find_one(filter)
                    .session(session)
                    .timeout(timeout)
                    .with_options(o)
                    .await?
                {
                    Some(d) => Value::Root(d),
                    None => Value::Bson(Bson::Null),
                },
            )
        }
        "deleteOne" | "deleteMany" => {
            let filter = req_doc(name, args, "filter")?.clone();
            let o: DeleteOptions = options(name, args, &["filter"])?;
            let r = if name == "deleteOne" {
                coll.delete_one(filter)
                    .session(session)
                    .timeout(timeout)
                    .with_options(o)
                    .await?
            } else {
                coll.delete_many(filter)
                    .session(session)
                    .timeout(timeout)
                    .with_options(o)
                    .await?
            };
            root(&r)
        }
        "updateOne" | "updateMany" => {
            let filter = req_doc(name, args, "filter")?.clone();
            let update = update_of(name, args)?;
            let o: UpdateOptions = options(name, args, &["filter", "update"])?;
            let r = if name == "updateOne" {
                coll.update_one(filter, update)
                    .session(session)
                    .timeout(timeout)
                    .with_options(o)
                    .await?
            } else {
                coll.update_many(filter, update)
                    .session(session)
                    .timeout(timeout)
                    .with_options(o)
                    .await?
            };
            root(&r)
        }
        "replaceOne" => {
            let filter = req_doc(name, args, "filter")?.clone();
            let replacement = req_doc(name, args, "replacement")?.clone();
            let o: ReplaceOptions = options(name, args, &["filter", "replacement"])?;
            root(
                &coll
                    .replace_one(filter, replacement)
                    .session(session)
                    .timeout(timeout)
                    .with_options(o)
                    .await?,
            )
        }
        "findOneAndDelete" | "findOneAndReplace" | "findOneAndUpdate" => {
            let filter = req_doc(name, args, "filter")?.clone();
            let found = match name {
                "findOneAndDelete" => {
                    let o: FindOneAndDeleteOptions = options(name, args, &["filter"])?;
                    coll.find_one_and_delete(filter)
                        .session(session)
                        .timeout(timeout)
                        .with_options(o)
                        .await?
                }
                "findOneAndReplace" => {
                    let r = req_doc(name, args, "replacement")?.clone();
                    let o: FindOneAndReplaceOptions =
                        options(name, args, &["filter", "replacement"])?;
                    coll.find_one_and_replace(filter, r)
                        .session(session)
                        .timeout(timeout)
                        .with_options(o)
                        .await?
                }
                _ => {
                    let u = update_of(name, args)?;
                    let o: FindOneAndUpdateOptions = options(name, args, &["filter", "update"])?;
                    coll.find_one_and_update(filter, u)
                        .session(session)
                        .timeout(timeout)
                        .with_options(o)
                        .await?
                }
            };
            Ok(match found {
                Some(d) => Value::Root(d),
                None => Value::Bson(Bson::Null),
            })
        }
        "aggregate" => {
            let p = pipeline(name, args)?;
            let o: AggregateOptions = options(name, args, &["pipeline"])?;
            Ok(Value::Docs(
                coll.aggregate(p)
                    .session(session)
                    .timeout(timeout)
                    .with_options(o)
                    .await?
                    .collect_all()
                    .await?,
            ))
        }
        "countDocuments" => {
            let filter = req_doc(name, args, "filter")?.clone();
            let o: CountOptions = options(name, args, &["filter"])?;
            let n = coll
                .count_documents(filter)
                .session(session)
                .timeout(timeout)
                .with_options(o)
                .await?;
            Ok(Value::Bson(Bson::Int64(
                i64::try_from(n).unwrap_or(i64::MAX),
            )))
        }
        "count" => {
            let filter = req_doc(name, args, "filter")?.clone();
            let o: CountOptions = options(name, args, &["filter"])?;
            let n = coll
                .count(filter)
                .with_options(o)
                .session(session)
                .timeout(timeout)
                .await?;
            Ok(Value::Bson(Bson::Int64(
                i64::try_from(n).unwrap_or(i64::MAX),
            )))
        }
        "estimatedDocumentCount" => {
            let o: EstimatedDocumentCountOptions = options(name, args, &[])?;
            let n = coll
                .estimated_document_count()
                .session(session)
                .timeout(timeout)
                .with_options(o)
                .await?;
            Ok(Value::Bson(Bson::Int64(
                i64::try_from(n).unwrap_or(i64::MAX),
            )))
        }
        "distinct" => {
            let field = req_str(name, args, "fieldName")?;
            let filter = req_doc(name, args, "filter")?.clone();
            let o: DistinctOptions = options(name, args, &["fieldName", "filter"])?;
            Ok(Value::Bson(Bson::Array(
                coll.distinct(&field, filter)
                    .session(session)
                    .timeout(timeout)
                    .with_options(o)
                    .await?,
            )))
        }
        "mapReduce" => super::map_reduce::run(coll, session, args, timeout).await,
        "bulkWrite" => {
            let models: Vec<WriteModel> = args
                .get_array("requests")
                .map_err(|_| Fail::runner("bulkWrite: requests is required"))?
                .iter()
                .map(|m| {
                    bson::deserialize_from_bson(m.clone())
                        .map_err(|e| Fail::unsupported(format!("bulkWrite model {m}: {e}")))
                })
                .collect::<Result<_, _>>()?;
            let o: BulkWriteOptions = options(name, args, &["requests"])?;
            root(
                &coll
                    .bulk_write(models)
                    .session(session)
                    .timeout(timeout)
                    .with_options(o)
                    .await?,
            )
        }
        "createIndex" => {
            let o: CreateIndexOptions = options(
                name,
                args,
                &[
                    "keys",
                    "name",
                    "unique",
                    "sparse",
                    "expireAfterSeconds",
                    "partialFilterExpression",
                    "hidden",
                    "collation",
                    "background",
                    "weights",
                    "default_language",
                    "language_override",
                    "textIndexVersion",
                    "2dsphereIndexVersion",
                    "bits",
                    "min",
                    "max",
                    "storageEngine",
                    "wildcardProjection",
                    "v",
                ],
            )?;
            let mut model = args.clone();
            for k in [
                "commitQuorum",
                "maxTimeMS",
                "comment",
                "session",
                "timeoutMS",
            ] {
                model.remove(k);
            }
            let model: IndexModel = bson::deserialize_from_document(model)
                .map_err(|e| Fail::unsupported(format!("createIndex: {e}")))?;
            Ok(Value::Bson(Bson::String(
                coll.create_index(model)
                    .session(session)
                    .timeout(timeout)
                    .with_options(o)
                    .await?,
            )))
        }
        "dropIndex" => {
            let index = req_str(name, args, "name")?;
            let o: DropIndexOptions = options(name, args, &["name"])?;
            coll.drop_index(&index)
                .session(session)
                .timeout(timeout)
                .with_options(o)
                .await?;
            Ok(Value::None)
        }
        "dropIndexes" => {
            let o: DropIndexOptions = options(name, args, &[])?;
            coll.drop_indexes()
                .session(session)
                .timeout(timeout)
                .with_options(o)
                .await?;
            Ok(Value::None)
        }
        "listIndexes" => {
            let o: ListIndexesOptions = options(name, args, &[])?;
            Ok(Value::Docs(
                coll.list_indexes()
                    .session(session)
                    .timeout(timeout)
                    .with_options(o)
                    .await?
                    .collect_all()
                    .await?,
            ))
        }
        "listIndexNames" => {
            allow(name, args, &[])?;
            let names = coll
                .list_index_names()
                .session(session)
                .timeout(timeout)
                .await?;
            Ok(Value::Bson(Bson::Array(
                names.into_iter().map(Bson::String).collect(),
            )))
        }
        "drop" => {
            allow(name, args, &[])?;
            coll.drop().session(session).timeout(timeout).await?;
            Ok(Value::None)
        }
        "rename" => {
            let to = req_str(name, args, "to")?;
            let o: RenameCollectionOptions = options(name, args, &["to"])?;
            coll.rename(to).session(session).with_options(o).await?;
            Ok(Value::None)
        }
        "createChangeStream" | "watch" => {
            change_stream(name, args, session, |pipeline| coll.watch(pipeline)).await
        }
        other => Err(Fail::unsupported(format!("collection.{other}")).into()),
    }
}
