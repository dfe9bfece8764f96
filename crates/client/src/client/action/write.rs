//! The write actions of a collection: `insert_one`, `insert_many`, `update_one` /
//! `update_many`, `replace_one`, `delete_one` / `delete_many`, the findAndModify family and
//! `bulk_write`. Documents of type `T` are encoded when the action is made; an encoding
//! error is returned when it is awaited, before anything is sent.

use std::borrow::Borrow;

use bson::Document;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::encode;
use crate::client::stream::decode;
use crate::client::{Client, Collection, DatabaseOptions};
use crate::crud::{
    BulkWriteOptions, BulkWriteResult, ClientBulkWriteOptions, ClientBulkWriteResult,
    ClientWriteModel, DeleteOptions, DeleteResult, FindOneAndDeleteOptions,
    FindOneAndReplaceOptions, FindOneAndUpdateOptions, InsertManyOptions, InsertManyResult,
    InsertOneOptions, InsertOneResult, ReplaceOptions, UpdateModifications, UpdateOptions,
    UpdateResult, WriteModel,
};
use crate::error::Result;

/// `insertOne` ([`Collection::insert_one`](crate::Collection::insert_one)).
#[must_use = "an action does nothing until awaited"]
pub struct InsertOne<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    concerns: DatabaseOptions,
    document: Result<Document>,
    pub(crate) options: InsertOneOptions,
}
write_concern!(InsertOne<'a, T>);

session_setter!(InsertOne<'a, T>);

with_options!(InsertOne<'a, T>, InsertOneOptions);
action_future!(InsertOne<'a, T> => InsertOneResult; |this| {
    let coll = super::bind_with(this.coll, this.session, this.concerns)?;
    coll.exec_insert_one(this.document?, this.options).await
});

/// `insertMany` ([`Collection::insert_many`](crate::Collection::insert_many)).
#[must_use = "an action does nothing until awaited"]
pub struct InsertMany<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    concerns: DatabaseOptions,
    documents: Result<Vec<Document>>,
    pub(crate) options: InsertManyOptions,
}
write_concern!(InsertMany<'a, T>);

session_setter!(InsertMany<'a, T>);

with_options!(InsertMany<'a, T>, InsertManyOptions);
action_future!(InsertMany<'a, T> => InsertManyResult; |this| {
    let coll = super::bind_with(this.coll, this.session, this.concerns)?;
    coll.exec_insert_many(this.documents?, this.options).await
});

/// `updateOne` / `updateMany` ([`Collection::update_one`](crate::Collection::update_one),
/// [`Collection::update_many`](crate::Collection::update_many)).
#[must_use = "an action does nothing until awaited"]
pub struct Update<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    concerns: DatabaseOptions,
    filter: Document,
    update: UpdateModifications,
    multi: bool,
    pub(crate) options: UpdateOptions,
}
write_concern!(Update<'a, T>);

session_setter!(Update<'a, T>);

with_options!(Update<'a, T>, UpdateOptions);
action_future!(Update<'a, T> => UpdateResult; |this| {
    let coll = super::bind_with(this.coll, this.session, this.concerns)?;
    coll
        .exec_update(this.filter, this.update, this.multi, this.options)
        .await
});

/// `replaceOne` ([`Collection::replace_one`](crate::Collection::replace_one)).
#[must_use = "an action does nothing until awaited"]
pub struct Replace<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    concerns: DatabaseOptions,
    filter: Document,
    replacement: Result<Document>,
    pub(crate) options: ReplaceOptions,
}
write_concern!(Replace<'a, T>);

session_setter!(Replace<'a, T>);

with_options!(Replace<'a, T>, ReplaceOptions);
action_future!(Replace<'a, T> => UpdateResult; |this| {
    let coll = super::bind_with(this.coll, this.session, this.concerns)?;
    coll
        .exec_replace_one(this.filter, this.replacement?, this.options)
        .await
});

/// `deleteOne` / `deleteMany` ([`Collection::delete_one`](crate::Collection::delete_one),
/// [`Collection::delete_many`](crate::Collection::delete_many)).
#[must_use = "an action does nothing until awaited"]
pub struct Delete<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    concerns: DatabaseOptions,
    filter: Document,
    many: bool,
    pub(crate) options: DeleteOptions,
}
write_concern!(Delete<'a, T>);

session_setter!(Delete<'a, T>);

with_options!(Delete<'a, T>, DeleteOptions);
action_future!(Delete<'a, T> => DeleteResult; |this| {
    let coll = super::bind_with(this.coll, this.session, this.concerns)?;
    coll.exec_delete(this.filter, this.many, this.options).await
});

/// `findOneAndDelete`
/// ([`Collection::find_one_and_delete`](crate::Collection::find_one_and_delete)).
#[must_use = "an action does nothing until awaited"]
pub struct FindOneAndDelete<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    concerns: DatabaseOptions,
    filter: Document,
    pub(crate) options: FindOneAndDeleteOptions,
}
write_concern!(FindOneAndDelete<'a, T>);

session_setter!(FindOneAndDelete<'a, T>);

with_options!(FindOneAndDelete<'a, T>, FindOneAndDeleteOptions);
action_future!(FindOneAndDelete<'a, T> where [T: DeserializeOwned + 'static] => Option<T>; |this| {
    let coll = super::bind_with(this.coll, this.session, this.concerns)?;
    coll
        .exec_find_one_and_delete(this.filter, this.options)
        .await?
        .map(decode)
        .transpose()
});

/// `findOneAndReplace`
/// ([`Collection::find_one_and_replace`](crate::Collection::find_one_and_replace)).
#[must_use = "an action does nothing until awaited"]
pub struct FindOneAndReplace<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    concerns: DatabaseOptions,
    filter: Document,
    replacement: Result<Document>,
    pub(crate) options: FindOneAndReplaceOptions,
}
write_concern!(FindOneAndReplace<'a, T>);

session_setter!(FindOneAndReplace<'a, T>);

with_options!(FindOneAndReplace<'a, T>, FindOneAndReplaceOptions);
action_future!(FindOneAndReplace<'a, T> where [T: DeserializeOwned + 'static] => Option<T>; |this| {
    let coll = super::bind_with(this.coll, this.session, this.concerns)?;
    coll
        .exec_find_one_and_replace(this.filter, this.replacement?, this.options)
        .await?
        .map(decode)
        .transpose()
});

/// `findOneAndUpdate`
/// ([`Collection::find_one_and_update`](crate::Collection::find_one_and_update)).
#[must_use = "an action does nothing until awaited"]
pub struct FindOneAndUpdate<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    concerns: DatabaseOptions,
    filter: Document,
    update: UpdateModifications,
    pub(crate) options: FindOneAndUpdateOptions,
}
write_concern!(FindOneAndUpdate<'a, T>);

session_setter!(FindOneAndUpdate<'a, T>);

with_options!(FindOneAndUpdate<'a, T>, FindOneAndUpdateOptions);
action_future!(FindOneAndUpdate<'a, T> where [T: DeserializeOwned + 'static] => Option<T>; |this| {
    let coll = super::bind_with(this.coll, this.session, this.concerns)?;
    coll
        .exec_find_one_and_update(this.filter, this.update, this.options)
        .await?
        .map(decode)
        .transpose()
});

/// A collection-level bulk write ([`Collection::bulk_write`](crate::Collection::bulk_write)).
#[must_use = "an action does nothing until awaited"]
pub struct BulkWrite<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    concerns: DatabaseOptions,
    models: Vec<WriteModel>,
    pub(crate) options: BulkWriteOptions,
}
write_concern!(BulkWrite<'a, T>);

session_setter!(BulkWrite<'a, T>);

with_options!(BulkWrite<'a, T>, BulkWriteOptions);
action_future!(BulkWrite<'a, T> => BulkWriteResult; |this| {
    let coll = super::bind_with(this.coll, this.session, this.concerns)?;
    coll.exec_bulk_write(this.models, this.options).await
});

/// The client-level bulk write ([`Client::bulk_write`](crate::Client::bulk_write)).
#[must_use = "an action does nothing until awaited"]
pub struct ClientBulkWrite<'a> {
    client: &'a Client,
    session: super::Binding<'a>,
    models: Vec<ClientWriteModel>,
    pub(crate) options: ClientBulkWriteOptions,
}

session_setter!(ClientBulkWrite<'a>);
with_options!(ClientBulkWrite<'a>, ClientBulkWriteOptions);
action_future!(ClientBulkWrite<'a> => ClientBulkWriteResult; |this| {
    let client = super::bind(this.client, this.session)?;
    client.exec_bulk_write(this.models, this.options).await
});

impl Client {
    /// Runs `models` — inserts, updates, replacements and deletes on any collections of any
    /// databases — with the `bulkWrite` command (MongoDB 8.0 and later), in as few commands
    /// as the server's limits allow. Ordered (the default) stops at the first write error;
    /// unordered runs every model. The result has the counts, and each model's result when
    /// `verbose_results` is set. A bulk write without updateMany and deleteMany is a
    /// retryable write.
    ///
    /// Errors (when awaited):
    /// Before anything is sent: no models, an update document that does not start with an
    /// operator, a replacement that does, `sort` on an updateMany, an unacknowledged write
    /// concern with `verbose_results` or ordered writes, a model too large for any message.
    /// Write errors and write concern errors come as one
    /// [`ErrorKind::ClientBulkWrite`](crate::ErrorKind) with every write error by model
    /// index (and the command it was in), every write concern error and the partial result.
    /// A network, selection or command error stops the bulk write: as it is when nothing
    /// was observed before it, else inside that error with what was.
    pub fn bulk_write(
        &self,
        models: impl IntoIterator<Item = ClientWriteModel>,
    ) -> ClientBulkWrite<'_> {
        ClientBulkWrite {
            client: self,
            session: super::Binding::default(),
            models: models.into_iter().collect(),
            options: ClientBulkWriteOptions::default(),
        }
    }
}

impl<T: Serialize + 'static> Collection<T> {
    /// Inserts one document (an `_id` is generated, first, when it has none).
    ///
    /// Errors (when awaited): a value that does not encode as a document; a write error
    /// (duplicate key, validation, …: [`ErrorKind::Write`](crate::ErrorKind)), a write
    /// concern error, network and selection errors.
    pub fn insert_one(&self, document: impl Borrow<T>) -> InsertOne<'_, T> {
        InsertOne {
            coll: self,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            document: encode(document.borrow()),
            options: InsertOneOptions::default(),
        }
    }

    /// Inserts documents (an `_id` generated, first, for each that has none), in as many
    /// commands as the server's limits need. Ordered (the default) stops at the first write
    /// error; unordered inserts every document it can.
    ///
    /// Errors (when awaited): no documents, a value that does not encode (before anything
    /// is sent). Write errors and write concern errors come as one
    /// [`ErrorKind::Write`](crate::ErrorKind) with every error, indexed by the document's
    /// position, and the partial result
    /// ([`WriteFailure::partial_result`](crate::error::WriteFailure)); network and
    /// selection errors as they are.
    pub fn insert_many(
        &self,
        documents: impl IntoIterator<Item = impl Borrow<T>>,
    ) -> InsertMany<'_, T> {
        InsertMany {
            coll: self,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            documents: documents.into_iter().map(|d| encode(d.borrow())).collect(),
            options: InsertManyOptions::default(),
        }
    }

    /// Replaces the first document matching `filter` with `replacement` (its `_id` stays).
    ///
    /// Errors (when awaited): a replacement with update operators (before anything is
    /// sent); write, write concern, network and selection errors.
    pub fn replace_one(&self, filter: Document, replacement: impl Borrow<T>) -> Replace<'_, T> {
        Replace {
            coll: self,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            filter,
            replacement: encode(replacement.borrow()),
            options: ReplaceOptions::default(),
        }
    }

    /// Replaces the first document matching `filter` and returns it as it was before
    /// (default) or after ([`ReturnDocument::After`](crate::ReturnDocument)); `None` when
    /// nothing matched (or an upsert's "before").
    ///
    /// Errors (when awaited): a replacement with update operators (before anything is
    /// sent); write concern, command, network and selection errors.
    pub fn find_one_and_replace(
        &self,
        filter: Document,
        replacement: impl Borrow<T>,
    ) -> FindOneAndReplace<'_, T> {
        FindOneAndReplace {
            coll: self,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            filter,
            replacement: encode(replacement.borrow()),
            options: FindOneAndReplaceOptions::default(),
        }
    }
}

impl<T> Collection<T> {
    /// Updates the first document matching `filter` with an update document (`$set`, …) or
    /// a pipeline.
    ///
    /// Errors (when awaited): an update document whose first key is not an operator, an
    /// empty pipeline (before anything is sent); write, write concern, network and
    /// selection errors.
    pub fn update_one(
        &self,
        filter: Document,
        update: impl Into<UpdateModifications>,
    ) -> Update<'_, T> {
        Update {
            coll: self,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            filter,
            update: update.into(),
            multi: false,
            options: UpdateOptions::default(),
        }
    }

    /// Updates every document matching `filter` (not retried).
    ///
    /// Errors (when awaited): as [`update_one`](Self::update_one).
    pub fn update_many(
        &self,
        filter: Document,
        update: impl Into<UpdateModifications>,
    ) -> Update<'_, T> {
        Update {
            coll: self,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            filter,
            update: update.into(),
            multi: true,
            options: UpdateOptions::default(),
        }
    }

    /// Deletes the first document matching `filter`.
    ///
    /// Errors (when awaited): write, write concern, network and selection errors.
    pub fn delete_one(&self, filter: Document) -> Delete<'_, T> {
        Delete {
            coll: self,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            filter,
            many: false,
            options: DeleteOptions::default(),
        }
    }

    /// Deletes every document matching `filter` (not retried).
    ///
    /// Errors (when awaited): as [`delete_one`](Self::delete_one).
    pub fn delete_many(&self, filter: Document) -> Delete<'_, T> {
        Delete {
            coll: self,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            filter,
            many: true,
            options: DeleteOptions::default(),
        }
    }

    /// Deletes the first document matching `filter` (by `sort` when several match) and
    /// returns it.
    ///
    /// Errors (when awaited): write concern, command, network and selection errors.
    pub fn find_one_and_delete(&self, filter: Document) -> FindOneAndDelete<'_, T> {
        FindOneAndDelete {
            coll: self,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            filter,
            options: FindOneAndDeleteOptions::default(),
        }
    }

    /// Updates the first document matching `filter` and returns it as it was before
    /// (default) or after.
    ///
    /// Errors (when awaited): an invalid update (as [`update_one`](Self::update_one));
    /// write concern, command, network and selection errors.
    pub fn find_one_and_update(
        &self,
        filter: Document,
        update: impl Into<UpdateModifications>,
    ) -> FindOneAndUpdate<'_, T> {
        FindOneAndUpdate {
            coll: self,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            filter,
            update: update.into(),
            options: FindOneAndUpdateOptions::default(),
        }
    }

    /// Runs `models` (inserts, updates, replacements, deletes) as `insert`, `update` and
    /// `delete` commands: ordered (the default) in the models' order, stopping at the first
    /// write error; unordered grouped by kind, running every model. Each command is split
    /// into batches by the server's limits; its batches are retryable writes unless it holds
    /// an `updateMany` or `deleteMany`.
    ///
    /// Errors (when awaited): no models, an invalid update or replacement (before anything
    /// is sent). Write errors and write concern errors come as one
    /// [`ErrorKind::Write`](crate::ErrorKind) with every error, indexed by model, and the
    /// partial result; a network, selection or command error ends the bulk write with that
    /// error.
    pub fn bulk_write(&self, models: impl IntoIterator<Item = WriteModel>) -> BulkWrite<'_, T> {
        BulkWrite {
            coll: self,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            models: models.into_iter().collect(),
            options: BulkWriteOptions::default(),
        }
    }
}
