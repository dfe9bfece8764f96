//! [`Collection`]: the CRUD specification's collection API. Each call builds an operation
//! (`crate::operation`) and hands it to the executor. This file has the handle and the reads
//! (find, aggregate, counts, distinct); `write.rs` the single writes and findAndModify;
//! `bulk.rs` insert_many and bulk_write; `index.rs` index management.

mod bulk;
mod index;
mod write;

use bson::{Bson, Document, doc};

use super::Client;
use super::cursor::Cursor;
use crate::crud::{
    AggregateOptions, CountOptions, CursorType, DistinctOptions, EstimatedDocumentCountOptions,
    FindOneOptions, FindOptions,
};
use crate::error::Result;
use crate::operation::{
    DropCollection, GetMoreOptions, OpenCursor, count, count_documents_pipeline, distinct,
    estimated_count, legacy_count,
};

/// A collection handle: cheap to clone.
#[derive(Clone, Debug)]
pub struct Collection {
    client: Client,
    db: String,
    name: String,
}

impl Collection {
    pub(crate) fn new(client: Client, db: &str, name: &str) -> Self {
        Collection {
            client,
            db: db.to_owned(),
            name: name.to_owned(),
        }
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

    /// Finds the documents matching `filter`: a cursor that runs `getMore` as needed and
    /// kills itself when dropped unfinished. A `tailableAwait` cursor's getMores carry
    /// `maxAwaitTimeMS` as `maxTimeMS`; getMores carry the `comment` (servers 4.4+).
    ///
    /// # Errors
    /// Network, selection and command errors of the first batch.
    pub async fn find(
        &self,
        filter: Document,
        options: impl Into<Option<FindOptions>>,
    ) -> Result<Cursor> {
        let options = options.into().unwrap_or_default();
        let get_more = GetMoreOptions {
            batch_size: options.batch_size,
            max_time: options
                .max_await_time
                .filter(|_| options.cursor_type == Some(CursorType::TailableAwait)),
            comment: options.comment.clone(),
        };
        let op = OpenCursor::find(&self.db, &self.name, filter, &options);
        self.client
            .open_cursor(op, &self.db, &self.name, get_more)
            .await
    }

    /// The first document matching `filter` (a `find` with `limit: 1` and
    /// `singleBatch: true`).
    ///
    /// # Errors
    /// As [`find`](Self::find).
    pub async fn find_one(
        &self,
        filter: Document,
        options: impl Into<Option<FindOneOptions>>,
    ) -> Result<Option<Document>> {
        let mut options: FindOptions = options.into().unwrap_or_default().into();
        options.limit = Some(-1);
        let mut cursor = self.find(filter, options).await?;
        cursor.try_next().await
    }

    /// Runs an aggregation pipeline: a cursor over its results. A pipeline ending in `$out`
    /// or `$merge` is a write: it runs on the primary with the write concern and is not
    /// retried; its cursor is empty.
    ///
    /// # Errors
    /// Network, selection and command errors.
    pub async fn aggregate(
        &self,
        pipeline: impl IntoIterator<Item = Document>,
        options: impl Into<Option<AggregateOptions>>,
    ) -> Result<Cursor> {
        let options = options.into().unwrap_or_default();
        let pipeline: Vec<Document> = pipeline.into_iter().collect();
        let get_more = GetMoreOptions {
            batch_size: options.batch_size,
            max_time: options.max_await_time,
            comment: options.comment.clone(),
        };
        let target = Bson::String(self.name.clone());
        let op = OpenCursor::aggregate(&self.db, target, pipeline, &options);
        self.client
            .open_cursor(op, &self.db, &self.name, get_more)
            .await
    }

    /// Counts the documents matching `filter`: the CRUD specification's aggregation
    /// (`$match`, `$skip`, `$limit`, `$group` summing 1). `$match` cannot use `$where`,
    /// `$near` or `$nearSphere`.
    ///
    /// # Errors
    /// As [`aggregate`](Self::aggregate).
    pub async fn count_documents(
        &self,
        filter: Document,
        options: impl Into<Option<CountOptions>>,
    ) -> Result<i64> {
        let options = options.into().unwrap_or_default();
        let pipeline = count_documents_pipeline(filter, &options);
        let aggregate = AggregateOptions {
            collation: options.collation,
            hint: options.hint,
            max_time: options.max_time,
            comment: options.comment,
            raw_data: options.raw_data,
            ..AggregateOptions::default()
        };
        let mut cursor = self.aggregate(pipeline, aggregate).await?;
        // An empty collection gives no group at all: a count of 0.
        Ok(match cursor.try_next().await? {
            Some(d) => count(&d, "n"),
            None => 0,
        })
    }

    /// An estimate of the number of documents from the collection's metadata: the `count`
    /// command without a filter (which the Stable API v1 lacks before server 5.0.9).
    ///
    /// # Errors
    /// Network, selection and command errors.
    pub async fn estimated_document_count(
        &self,
        options: impl Into<Option<EstimatedDocumentCountOptions>>,
    ) -> Result<i64> {
        let options = options.into().unwrap_or_default();
        self.client
            .run_op(estimated_count(&self.db, &self.name, &options))
            .await
    }

    /// The number of documents matching `filter` by the `count` command: the CRUD
    /// specification's deprecated `count` helper, which may be wrong after an unclean
    /// shutdown or with orphaned documents on a sharded cluster; prefer
    /// [`count_documents`](Self::count_documents) or
    /// [`estimated_document_count`](Self::estimated_document_count).
    ///
    /// # Errors
    /// Network, selection and command errors.
    pub async fn count(
        &self,
        filter: impl Into<Option<Document>>,
        options: impl Into<Option<CountOptions>>,
    ) -> Result<i64> {
        let options = options.into().unwrap_or_default();
        let filter = filter.into().unwrap_or_default();
        self.client
            .run_op(legacy_count(&self.db, &self.name, filter, &options))
            .await
    }

    /// The distinct values of `field_name` (a dotted path) among the documents matching
    /// `filter`.
    ///
    /// # Errors
    /// Network, selection and command errors.
    pub async fn distinct(
        &self,
        field_name: &str,
        filter: impl Into<Option<Document>>,
        options: impl Into<Option<DistinctOptions>>,
    ) -> Result<Vec<Bson>> {
        let options = options.into().unwrap_or_default();
        let filter = Some(filter.into().unwrap_or_else(|| doc! {}));
        self.client
            .run_op(distinct(&self.db, &self.name, field_name, filter, &options))
            .await
    }

    /// Drops the collection (a missing collection is not an error).
    ///
    /// # Errors
    /// Network, selection and command errors.
    pub async fn drop(&self) -> Result<()> {
        self.client
            .run_op(DropCollection::new(&self.db, &self.name))
            .await
    }

    /// Drops the collection: the same as [`drop`](Self::drop).
    ///
    /// # Errors
    /// As [`drop`](Self::drop).
    pub async fn drop_collection(&self) -> Result<()> {
        self.drop().await
    }
}
