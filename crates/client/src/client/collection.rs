//! Databases and collections: a small but real CRUD surface (insert, find, update, delete,
//! count, aggregate) on top of [`Client::execute`].

use bson::oid::ObjectId;
use bson::{Bson, Document, doc};

use super::{Client, Op, OpKind};
use crate::cursor::Cursor;
use crate::error::{BsonExt, Error, Result};

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

/// An int32 when the value fits (some servers reject int64 for small counts), else int64.
fn compact_int(v: i64) -> Bson {
    i32::try_from(v).map_or(Bson::Int64(v), Bson::Int32)
}

fn count(reply: &Document, key: &str) -> i64 {
    reply.get(key).and_then(Bson::as_i64_lossy).unwrap_or(0)
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

    fn write_op(&self, cmd: Document, identifier: &str, docs: Vec<Document>) -> Op {
        Op {
            db: self.db.clone(),
            cmd,
            sequence: Some((identifier.to_owned(), docs)),
            kind: OpKind::Write,
            acknowledged: true,
        }
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

    /// Inserts documents in order, batched by the server's limits.
    ///
    /// # Errors
    /// As [`insert_one`](Self::insert_one).
    pub async fn insert_many(
        &self,
        documents: impl IntoIterator<Item = Document>,
    ) -> Result<InsertManyResult> {
        let mut ids = Vec::new();
        let docs: Vec<Document> = documents
            .into_iter()
            .map(|mut d| {
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
                d
            })
            .collect();
        if docs.is_empty() {
            return Err(Error::invalid_argument(
                "insert_many needs at least one document",
            ));
        }
        // Batches of at most 100,000 documents (maxWriteBatchSize); the server splits no
        // further, and documents over maxBsonObjectSize are refused before sending.
        // The documents move into their batches rather than being copied.
        let mut rest = docs;
        while !rest.is_empty() {
            let tail = rest.split_off(
                rest.len()
                    .min(mongo_wire::limits::DEFAULT_MAX_WRITE_BATCH_SIZE),
            );
            let cmd = doc! { "insert": self.name.clone(), "ordered": true };
            let op = self.write_op(cmd, "documents", std::mem::replace(&mut rest, tail));
            self.client.execute(&op, None, false).await?;
        }
        Ok(InsertManyResult { inserted_ids: ids })
    }

    async fn update(
        &self,
        filter: Document,
        update: Document,
        multi: bool,
        upsert: bool,
    ) -> Result<UpdateResult> {
        let statement = doc! { "q": filter, "u": update, "multi": multi, "upsert": upsert };
        let cmd = doc! { "update": self.name.clone(), "ordered": true };
        let mut op = self.write_op(cmd, "updates", vec![statement]);
        if multi {
            // Multi-document updates are not retryable.
            op.kind = OpKind::Command;
        }
        let reply = self.client.execute(&op, None, false).await?.reply;
        let upserted_id = reply
            .get_array("upserted")
            .ok()
            .and_then(|a| a.first())
            .and_then(|u| u.as_document())
            .and_then(|u| u.get("_id"))
            .cloned();
        let n = count(&reply, "n");
        Ok(UpdateResult {
            // `n` comes from the server: no overflow on odd values.
            matched_count: if upserted_id.is_some() {
                n.saturating_sub(1)
            } else {
                n
            },
            modified_count: count(&reply, "nModified"),
            upserted_id,
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

    async fn delete(&self, filter: Document, limit: i32) -> Result<DeleteResult> {
        let cmd = doc! { "delete": self.name.clone(), "ordered": true };
        let mut op = self.write_op(cmd, "deletes", vec![doc! { "q": filter, "limit": limit }]);
        if limit == 0 {
            op.kind = OpKind::Command;
        }
        let reply = self.client.execute(&op, None, false).await?.reply;
        Ok(DeleteResult {
            deleted_count: count(&reply, "n"),
        })
    }

    /// Deletes the first document matching `filter`.
    ///
    /// # Errors
    /// Write, network and selection errors.
    pub async fn delete_one(&self, filter: Document) -> Result<DeleteResult> {
        self.delete(filter, 1).await
    }

    /// Deletes every document matching `filter` (not retried).
    ///
    /// # Errors
    /// As [`delete_one`](Self::delete_one).
    pub async fn delete_many(&self, filter: Document) -> Result<DeleteResult> {
        self.delete(filter, 0).await
    }

    async fn open_cursor(&self, cmd: Document, batch_size: Option<i32>) -> Result<Cursor> {
        let op = Op {
            db: self.db.clone(),
            cmd,
            sequence: None,
            kind: OpKind::Read,
            acknowledged: true,
        };
        let keep = self.client.topology().is_load_balanced();
        let executed = self.client.execute(&op, None, keep).await?;
        Cursor::new(
            self.client.clone(),
            &self.db,
            &self.name,
            executed.reply,
            executed.address,
            executed.conn,
            batch_size,
        )
    }

    /// Finds the documents matching `filter`: a cursor that runs `getMore` as needed and
    /// kills itself when dropped unfinished.
    ///
    /// # Errors
    /// Network, selection and command errors of the first batch.
    pub async fn find(&self, filter: Document, options: FindOptions) -> Result<Cursor> {
        let mut cmd = doc! { "find": self.name.clone(), "filter": filter };
        if let Some(s) = options.sort {
            cmd.insert("sort", s);
        }
        if let Some(p) = options.projection {
            cmd.insert("projection", p);
        }
        if let Some(s) = options.skip {
            cmd.insert("skip", compact_int(s));
        }
        if let Some(l) = options.limit {
            cmd.insert("limit", compact_int(l));
        }
        if let Some(b) = options.batch_size {
            cmd.insert("batchSize", b);
        }
        self.open_cursor(cmd, options.batch_size).await
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
        let stages: Vec<Bson> = pipeline.into_iter().map(Bson::Document).collect();
        let mut cursor_opts = Document::new();
        if let Some(b) = batch_size {
            cursor_opts.insert("batchSize", b);
        }
        let cmd =
            doc! { "aggregate": self.name.clone(), "pipeline": stages, "cursor": cursor_opts };
        self.open_cursor(cmd, batch_size).await
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
        match self
            .client
            .run_command(&self.db, doc! { "drop": self.name.clone() })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(26) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
