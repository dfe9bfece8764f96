//! Databases and collections: a small but real CRUD surface (insert, find, update, delete,
//! count, aggregate). Each call builds an operation (`crate::operation`) and hands it to the
//! executor.

use bson::oid::ObjectId;
use bson::{Bson, Document, RawDocumentBuf, doc};

use super::Client;
use super::cursor::Cursor;
use super::executor::Route;
use crate::error::{Error, Result};
use crate::operation::{
    Delete, DropCollection, FindSpec, Insert, OpenCursor, Operation, Update, count,
};

/// A database handle.
#[derive(Clone, Debug)]
pub struct Database {
    client: Client,
    name: String,
}

impl Database {
    pub(crate) fn new(client: Client, name: &str) -> Self {
        Database {
            client,
            name: name.to_owned(),
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A collection handle.
    pub fn collection(&self, name: &str) -> Collection {
        Collection {
            client: self.client.clone(),
            db: self.name.clone(),
            name: name.to_owned(),
        }
    }

    /// Runs a command on this database (see [`Client::run_command`]).
    ///
    /// # Errors
    /// As [`Client::run_command`].
    pub async fn run_command(&self, cmd: Document) -> Result<Document> {
        self.client.run_command(&self.name, cmd).await
    }
}

/// A collection handle.
#[derive(Clone, Debug)]
pub struct Collection {
    client: Client,
    db: String,
    name: String,
}

/// Options of [`Collection::find`].
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct FindOptions {
    /// `sort`.
    pub sort: Option<Document>,
    /// `projection`.
    pub projection: Option<Document>,
    /// `skip`.
    pub skip: Option<i64>,
    /// `limit`.
    pub limit: Option<i64>,
    /// `batchSize` of the first batch and of each getMore.
    pub batch_size: Option<i32>,
}

impl FindOptions {
    /// Sets `batchSize`.
    #[must_use]
    pub fn batch_size(mut self, n: i32) -> Self {
        self.batch_size = Some(n);
        self
    }

    /// Sets `limit`.
    #[must_use]
    pub fn limit(mut self, n: i64) -> Self {
        self.limit = Some(n);
        self
    }

    /// Sets `sort`.
    #[must_use]
    pub fn sort(mut self, sort: Document) -> Self {
        self.sort = Some(sort);
        self
    }
}

/// What `insert_one` did.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct InsertOneResult {
    /// The document's `_id` (generated when it had none).
    pub inserted_id: Bson,
}

/// What `insert_many` did.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct InsertManyResult {
    /// The documents' `_id`s, in order.
    pub inserted_ids: Vec<Bson>,
}

/// What an update did.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct UpdateResult {
    /// Documents matched.
    pub matched_count: i64,
    /// Documents modified.
    pub modified_count: i64,
    /// The upserted document's `_id`.
    pub upserted_id: Option<Bson>,
}

/// What a delete did.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct DeleteResult {
    /// Documents deleted.
    pub deleted_count: i64,
}

impl Collection {
    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's name.
    pub fn database_name(&self) -> &str {
        &self.db
    }

    /// Runs a cursor-opening read and wraps its first batch.
    async fn open_cursor(&self, mut op: OpenCursor, batch_size: Option<i32>) -> Result<Cursor> {
        let executed = self
            .client
            .execute(&mut op, self.client.read_context(), None)
            .await?;
        Ok(Cursor::new(
            &self.client,
            executed,
            &self.db,
            &self.name,
            batch_size,
        ))
    }

    /// Runs a write operation to completion.
    async fn write<O: Operation>(&self, mut op: O) -> Result<O::Output> {
        let ctx = self.client.context(Route::Select);
        Ok(self.client.execute(&mut op, ctx, None).await?.output)
    }

    /// Inserts one document (an `_id` is generated when missing).
    ///
    /// # Errors
    /// Write errors (duplicate key, ...), network and selection errors.
    pub async fn insert_one(&self, document: Document) -> Result<InsertOneResult> {
        let mut r = self.insert_many(vec![document]).await?;
        Ok(InsertOneResult {
            inserted_id: r.inserted_ids.pop().unwrap_or(Bson::Null),
        })
    }

    /// Inserts documents in order, in as many batches as the server's limits need
    /// (maxWriteBatchSize documents and maxMessageSizeBytes per message); a document over
    /// maxBsonObjectSize is refused before anything is sent.
    ///
    /// # Errors
    /// As [`insert_one`](Self::insert_one).
    pub async fn insert_many(
        &self,
        documents: impl IntoIterator<Item = Document>,
    ) -> Result<InsertManyResult> {
        let mut ids = Vec::new();
        let mut raw = Vec::new();
        for mut d in documents {
            let id = match d.get("_id") {
                Some(id) => id.clone(),
                None => {
                    let id = Bson::ObjectId(ObjectId::new());
                    let mut with_id = doc! { "_id": id.clone() };
                    with_id.extend(d);
                    d = with_id;
                    id
                }
            };
            ids.push(id);
            raw.push(RawDocumentBuf::try_from(&d)?);
        }
        if raw.is_empty() {
            return Err(Error::invalid_argument(
                "insert_many needs at least one document",
            ));
        }
        self.write(Insert::new(&self.db, &self.name, raw, true))
            .await?;
        Ok(InsertManyResult { inserted_ids: ids })
    }

    async fn update(
        &self,
        filter: Document,
        update: Document,
        multi: bool,
        upsert: bool,
    ) -> Result<UpdateResult> {
        let out = self
            .write(Update::new(
                &self.db, &self.name, filter, update, multi, upsert,
            ))
            .await?;
        Ok(UpdateResult {
            matched_count: out.matched,
            modified_count: out.modified,
            upserted_id: out.upserted_id,
        })
    }

    /// Updates the first document matching `filter` (`update` holds operators like `$set`).
    ///
    /// # Errors
    /// Write, network and selection errors.
    pub async fn update_one(&self, filter: Document, update: Document) -> Result<UpdateResult> {
        self.update(filter, update, false, false).await
    }

    /// Updates the first match, or inserts when nothing matches.
    ///
    /// # Errors
    /// As [`update_one`](Self::update_one).
    pub async fn upsert_one(&self, filter: Document, update: Document) -> Result<UpdateResult> {
        self.update(filter, update, false, true).await
    }

    /// Updates every document matching `filter` (not retried).
    ///
    /// # Errors
    /// As [`update_one`](Self::update_one).
    pub async fn update_many(&self, filter: Document, update: Document) -> Result<UpdateResult> {
        self.update(filter, update, true, false).await
    }

    /// Deletes the first document matching `filter`.
    ///
    /// # Errors
    /// Write, network and selection errors.
    pub async fn delete_one(&self, filter: Document) -> Result<DeleteResult> {
        let deleted_count = self
            .write(Delete::new(&self.db, &self.name, filter, false))
            .await?;
        Ok(DeleteResult { deleted_count })
    }

    /// Deletes every document matching `filter` (not retried).
    ///
    /// # Errors
    /// As [`delete_one`](Self::delete_one).
    pub async fn delete_many(&self, filter: Document) -> Result<DeleteResult> {
        let deleted_count = self
            .write(Delete::new(&self.db, &self.name, filter, true))
            .await?;
        Ok(DeleteResult { deleted_count })
    }

    /// Finds the documents matching `filter`: a cursor that runs `getMore` as needed and
    /// kills itself when dropped unfinished.
    ///
    /// # Errors
    /// Network, selection and command errors of the first batch.
    pub async fn find(&self, filter: Document, options: FindOptions) -> Result<Cursor> {
        let batch_size = options.batch_size;
        let spec = FindSpec {
            filter,
            sort: options.sort,
            projection: options.projection,
            skip: options.skip,
            limit: options.limit,
            batch_size,
        };
        self.open_cursor(OpenCursor::find(&self.db, &self.name, spec), batch_size)
            .await
    }

    /// The first document matching `filter`.
    ///
    /// # Errors
    /// As [`find`](Self::find).
    pub async fn find_one(&self, filter: Document) -> Result<Option<Document>> {
        let mut cursor = self
            .find(filter, FindOptions::default().limit(1).batch_size(1))
            .await?;
        cursor.try_next().await
    }

    /// Runs an aggregation pipeline: a cursor over its results.
    ///
    /// # Errors
    /// Network, selection and command errors.
    pub async fn aggregate(
        &self,
        pipeline: impl IntoIterator<Item = Document>,
        batch_size: Option<i32>,
    ) -> Result<Cursor> {
        let pipeline: Vec<Document> = pipeline.into_iter().collect();
        let op = OpenCursor::aggregate(&self.db, &self.name, pipeline, batch_size);
        self.open_cursor(op, batch_size).await
    }

    /// Counts the documents matching `filter` (an aggregation with `$match` and `$group`,
    /// as the CRUD spec's countDocuments does).
    ///
    /// # Errors
    /// As [`aggregate`](Self::aggregate).
    pub async fn count_documents(&self, filter: Document) -> Result<i64> {
        let pipeline = [
            doc! { "$match": filter },
            doc! { "$group": { "_id": 1, "n": { "$sum": 1 } } },
        ];
        let mut cursor = self.aggregate(pipeline, None).await?;
        Ok(match cursor.try_next().await? {
            Some(d) => count(&d, "n"),
            None => 0,
        })
    }

    /// Drops the collection (a missing collection is not an error).
    ///
    /// # Errors
    /// Network, selection and command errors.
    pub async fn drop_collection(&self) -> Result<()> {
        self.write(DropCollection::new(&self.db, &self.name)).await
    }
}
