//! [`Collection`]: the CRUD specification's collection API, typed by the documents it holds.
//! Each public method returns an action (`super::action`) that collects options and runs
//! when awaited; the action calls one of the `exec_*` methods here, which build an operation
//! (`crate::operation`) and hand it to the executor. This file has the handle and the reads
//! (find, aggregate, counts, distinct); `write.rs` the single writes and findAndModify;
//! `bulk.rs` insert_many and bulk_write; `index.rs` index management.

mod bulk;
mod index;
mod write;

use std::marker::PhantomData;

use bson::{Bson, Document, doc};

use super::Client;
use super::cursor::CursorCore;
use crate::crud::{
    AggregateOptions, CountOptions, CursorType, DistinctOptions, EstimatedDocumentCountOptions,
    FindOptions,
};
use crate::error::Result;
use crate::operation::{
    DropCollection, GetMoreOptions, OpenCursor, count, count_documents_pipeline, distinct,
    estimated_count, legacy_count,
};

/// A collection handle whose documents are `T` (serde, through BSON): cheap to clone.
/// `Collection<Document>` (the default) is the untyped case;
/// [`clone_with_type`](Self::clone_with_type) gives the same collection with another type.
///
/// Reads decode with `T: DeserializeOwned`, writes encode with `T: Serialize`; filters,
/// updates and pipelines are documents.
pub struct Collection<T = Document> {
    client: Client,
    db: String,
    name: String,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Collection<T> {
    fn clone(&self) -> Self {
        Collection {
            client: self.client.clone(),
            db: self.db.clone(),
            name: self.name.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Collection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("namespace", &self.namespace())
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

impl<T> Collection<T> {
    pub(crate) fn new(client: Client, db: &str, name: &str) -> Self {
        Collection {
            client,
            db: db.to_owned(),
            name: name.to_owned(),
            _type: PhantomData,
        }
    }

    /// The same collection (and options), with documents of type `U`.
    pub fn clone_with_type<U>(&self) -> Collection<U> {
        Collection {
            client: self.client.clone(),
            db: self.db.clone(),
            name: self.name.clone(),
            _type: PhantomData,
        }
    }

    /// The client (with this handle's options) its operations run on.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's name.
    pub fn database_name(&self) -> &str {
        &self.db
    }

    /// `db.collection`.
    pub fn namespace(&self) -> String {
        format!("{}.{}", self.db, self.name)
    }

    /// `find`: a cursor that runs `getMore` as needed and kills itself when dropped
    /// unfinished. A `tailableAwait` cursor's getMores carry `maxAwaitTimeMS` as
    /// `maxTimeMS`; getMores carry the `comment` (servers 4.4+).
    pub(crate) async fn exec_find(
        &self,
        filter: Document,
        options: FindOptions,
    ) -> Result<CursorCore> {
        if options.exhaust == Some(true)
            && matches!(
                options.cursor_type,
                Some(CursorType::Tailable | CursorType::TailableAwait)
            )
        {
            return Err(crate::error::Error::invalid_argument(
                "an exhaust cursor cannot be tailable",
            ));
        }
        let get_more = GetMoreOptions {
            batch_size: options.batch_size,
            max_time: options
                .max_await_time
                .filter(|_| options.cursor_type == Some(CursorType::TailableAwait)),
            comment: options.comment.clone(),
            exhaust: options.exhaust.unwrap_or(false),
        };
        let mut op = OpenCursor::find(&self.db, &self.name, filter, &options);
        op.timeout_mode = options.timeout_mode;
        self.client
            .open_cursor(op, &self.db, &self.name, get_more)
            .await
    }

    /// `aggregate` on this collection.
    pub(crate) async fn exec_aggregate(
        &self,
        pipeline: Vec<Document>,
        options: AggregateOptions,
    ) -> Result<CursorCore> {
        self.client
            .exec_aggregate(&self.db, &self.name, pipeline, options)
            .await
    }
    /// `countDocuments`: the CRUD specification's aggregation (`$match`, `$skip`, `$limit`,
    /// `$group` summing 1).
    pub(crate) async fn exec_count_documents(
        &self,
        filter: Document,
        options: CountOptions,
    ) -> Result<u64> {
        let pipeline = count_documents_pipeline(filter, &options);
        let aggregate = AggregateOptions {
            collation: options.collation,
            hint: options.hint,
            max_time: options.max_time,
            comment: options.comment,
            raw_data: options.raw_data,
            ..AggregateOptions::default()
        };
        let mut cursor = self.exec_aggregate(pipeline, aggregate).await?;
        // An empty collection gives no group at all: a count of 0.
        Ok(match cursor.try_next().await? {
            Some(d) => u64::try_from(count(&d, "n")).unwrap_or(0),
            None => 0,
        })
    }

    /// `estimatedDocumentCount`: the `count` command without a filter.
    pub(crate) async fn exec_estimated_count(
        &self,
        options: EstimatedDocumentCountOptions,
    ) -> Result<u64> {
        let n = self
            .client
            .run_op(estimated_count(&self.db, &self.name, &options))
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// `count` (the deprecated helper): the `count` command with a filter.
    pub(crate) async fn exec_count(&self, filter: Document, options: CountOptions) -> Result<u64> {
        let n = self
            .client
            .run_op(legacy_count(&self.db, &self.name, filter, &options))
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// `distinct`: the distinct values of `field_name` (a dotted path).
    pub(crate) async fn exec_distinct(
        &self,
        field_name: &str,
        filter: Option<Document>,
        options: DistinctOptions,
    ) -> Result<Vec<Bson>> {
        let filter = Some(filter.unwrap_or_else(|| doc! {}));
        self.client
            .run_op(distinct(&self.db, &self.name, field_name, filter, &options))
            .await
    }

    /// `mapReduce` with its output inline: the `{_id, value}` results.
    pub(crate) async fn exec_map_reduce(&self, map: &str, reduce: &str) -> Result<Vec<Document>> {
        self.client
            .run_op(crate::operation::map_reduce(
                &self.db, &self.name, map, reduce,
            ))
            .await
    }

    /// `drop` (a missing collection is not an error).
    pub(crate) async fn exec_drop(&self) -> Result<()> {
        self.client
            .run_op(DropCollection::new(&self.db, &self.name))
            .await
    }

    /// `renameCollection` to `to` in the same database.
    pub(crate) async fn exec_rename(
        &self,
        to: &str,
        options: crate::crud::RenameCollectionOptions,
    ) -> Result<()> {
        self.client
            .run_op(crate::operation::rename_collection(
                &self.db, &self.name, to, &options,
            ))
            .await
    }
}

impl Client {
    /// `aggregate` on `db.coll`: a cursor over its results. A pipeline ending in `$out` or
    /// `$merge` is a write: it runs with the write concern and is not retried; its cursor is
    /// empty.
    pub(crate) async fn exec_aggregate(
        &self,
        db: &str,
        coll: &str,
        pipeline: Vec<Document>,
        options: AggregateOptions,
    ) -> Result<CursorCore> {
        let get_more = GetMoreOptions {
            batch_size: options.batch_size,
            max_time: options.max_await_time,
            comment: options.comment.clone(),
            exhaust: options.exhaust.unwrap_or(false),
        };
        let target = Bson::String(coll.to_owned());
        let mut op = OpenCursor::aggregate(db, target, pipeline, &options);
        op.timeout_mode = options.timeout_mode;
        self.open_cursor(op, db, coll, get_more).await
    }
}
