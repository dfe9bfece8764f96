//! Options of the writes (insert, update, replace, delete, findAndModify, bulk write) and the
//! write models of a bulk write (CRUD specification, "Write" and "Find And Modify").

use std::time::Duration;

use bson::{Bson, Document};
use serde::Deserialize;

use super::{Hint, ReturnDocument, UpdateModifications};

options_struct! {
    /// Options of [`Collection::insert_one`](crate::Collection::insert_one).
    pub struct InsertOneOptions for [<'a, T> crate::client::action::InsertOne<'a, T>] {
        /// `bypassDocumentValidation`.
        bypass_document_validation: bool,
        /// `comment`.
        comment: Bson,
        /// `rawData`.
        raw_data: bool,
    }
}

options_struct! {
    /// Options of [`Collection::insert_many`](crate::Collection::insert_many).
    pub struct InsertManyOptions for [<'a, T> crate::client::action::InsertMany<'a, T>] {
        /// `bypassDocumentValidation`.
        bypass_document_validation: bool,
        /// `ordered` (default true): stop at the first error.
        ordered: bool,
        /// `comment`.
        comment: Bson,
        /// `rawData`.
        raw_data: bool,
    }
}

options_struct! {
    /// Options of [`Collection::update_one`](crate::Collection::update_one) and
    /// [`Collection::update_many`](crate::Collection::update_many).
    pub struct UpdateOptions for [<'a, T> crate::client::action::Update<'a, T>] {
        /// `arrayFilters`: the filters of the `$[identifier]` positional operators.
        array_filters: Vec<Document>,
        /// `bypassDocumentValidation`.
        bypass_document_validation: bool,
        /// `collation`.
        collation: Document,
        /// `hint`.
        hint: Hint,
        /// `upsert`: insert a document when nothing matches.
        upsert: bool,
        /// `let`.
        #[serde(rename = "let")]
        let_vars: Document,
        /// `comment`.
        comment: Bson,
        /// `sort`: which document `update_one` updates (server 8.0+; not for `update_many`).
        sort: Document,
        /// `rawData`.
        raw_data: bool,
    }
}

options_struct! {
    /// Options of [`Collection::replace_one`](crate::Collection::replace_one).
    pub struct ReplaceOptions for [<'a, T> crate::client::action::Replace<'a, T>] {
        /// `bypassDocumentValidation`.
        bypass_document_validation: bool,
        /// `collation`.
        collation: Document,
        /// `hint`.
        hint: Hint,
        /// `upsert`.
        upsert: bool,
        /// `let`.
        #[serde(rename = "let")]
        let_vars: Document,
        /// `comment`.
        comment: Bson,
        /// `sort` (server 8.0+).
        sort: Document,
        /// `rawData`.
        raw_data: bool,
    }
}

options_struct! {
    /// Options of [`Collection::delete_one`](crate::Collection::delete_one) and
    /// [`Collection::delete_many`](crate::Collection::delete_many).
    pub struct DeleteOptions for [<'a, T> crate::client::action::Delete<'a, T>] {
        /// `collation`.
        collation: Document,
        /// `hint`.
        hint: Hint,
        /// `let`.
        #[serde(rename = "let")]
        let_vars: Document,
        /// `comment`.
        comment: Bson,
        /// `rawData`.
        raw_data: bool,
    }
}

options_struct! {
    /// Options of
    /// [`Collection::find_one_and_delete`](crate::Collection::find_one_and_delete).
    pub struct FindOneAndDeleteOptions for [<'a, T> crate::client::action::FindOneAndDelete<'a, T>] {
        /// `collation`.
        collation: Document,
        /// `hint`.
        hint: Hint,
        /// `maxTimeMS`.
        #[serde(rename = "maxTimeMS", default, deserialize_with = "super::millis")]
        max_time: Duration,
        /// `projection` (sent as `fields`).
        projection: Document,
        /// `sort`: which document is deleted when several match.
        sort: Document,
        /// `let`.
        #[serde(rename = "let")]
        let_vars: Document,
        /// `comment`.
        comment: Bson,
        /// `rawData`.
        raw_data: bool,
    }
}

options_struct! {
    /// Options of
    /// [`Collection::find_one_and_replace`](crate::Collection::find_one_and_replace).
    pub struct FindOneAndReplaceOptions for [<'a, T> crate::client::action::FindOneAndReplace<'a, T>] {
        /// `bypassDocumentValidation`.
        bypass_document_validation: bool,
        /// `collation`.
        collation: Document,
        /// `hint`.
        hint: Hint,
        /// `maxTimeMS`.
        #[serde(rename = "maxTimeMS", default, deserialize_with = "super::millis")]
        max_time: Duration,
        /// `projection` (sent as `fields`).
        projection: Document,
        /// `returnDocument`: `Before` (default) or `After` (sent as `new`).
        return_document: ReturnDocument,
        /// `sort`.
        sort: Document,
        /// `upsert`.
        upsert: bool,
        /// `let`.
        #[serde(rename = "let")]
        let_vars: Document,
        /// `comment`.
        comment: Bson,
        /// `rawData`.
        raw_data: bool,
    }
}

options_struct! {
    /// Options of
    /// [`Collection::find_one_and_update`](crate::Collection::find_one_and_update).
    pub struct FindOneAndUpdateOptions for [<'a, T> crate::client::action::FindOneAndUpdate<'a, T>] {
        /// `arrayFilters`.
        array_filters: Vec<Document>,
        /// `bypassDocumentValidation`.
        bypass_document_validation: bool,
        /// `collation`.
        collation: Document,
        /// `hint`.
        hint: Hint,
        /// `maxTimeMS`.
        #[serde(rename = "maxTimeMS", default, deserialize_with = "super::millis")]
        max_time: Duration,
        /// `projection` (sent as `fields`).
        projection: Document,
        /// `returnDocument`: `Before` (default) or `After` (sent as `new`).
        return_document: ReturnDocument,
        /// `sort`.
        sort: Document,
        /// `upsert`.
        upsert: bool,
        /// `let`.
        #[serde(rename = "let")]
        let_vars: Document,
        /// `comment`.
        comment: Bson,
        /// `rawData`.
        raw_data: bool,
    }
}

options_struct! {
    /// Options of [`Collection::bulk_write`](crate::Collection::bulk_write).
    pub struct BulkWriteOptions for [<'a, T> crate::client::action::BulkWrite<'a, T>] {
        /// `ordered` (default true): stop at the first write error; unordered writes run every
        /// model and report every error.
        ordered: bool,
        /// `bypassDocumentValidation`.
        bypass_document_validation: bool,
        /// `comment`.
        comment: Bson,
        /// `let` (for the update and delete commands).
        #[serde(rename = "let")]
        let_vars: Document,
        /// `rawData`.
        raw_data: bool,
    }
}

/// One write of a [`bulk_write`](crate::Collection::bulk_write). Deserializes from the
/// specification's shape, `{ "insertOne": { "document": … } }`, `{ "updateOne": { "filter": …,
/// "update": …, "upsert": true } }`, ….
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum WriteModel {
    /// Inserts a document.
    InsertOne(InsertOneModel),
    /// Updates the first matching document.
    UpdateOne(UpdateModel),
    /// Updates every matching document.
    UpdateMany(UpdateModel),
    /// Replaces the first matching document.
    ReplaceOne(ReplaceOneModel),
    /// Deletes the first matching document.
    DeleteOne(DeleteModel),
    /// Deletes every matching document.
    DeleteMany(DeleteModel),
}

impl WriteModel {
    /// `insertOne` of `document`.
    pub fn insert_one(document: Document) -> Self {
        WriteModel::InsertOne(InsertOneModel { document })
    }

    /// `updateOne` with no options (set them on the [`UpdateModel`] for more).
    pub fn update_one(filter: Document, update: impl Into<UpdateModifications>) -> Self {
        WriteModel::UpdateOne(UpdateModel::new(filter, update))
    }

    /// `updateMany` with no options.
    pub fn update_many(filter: Document, update: impl Into<UpdateModifications>) -> Self {
        WriteModel::UpdateMany(UpdateModel::new(filter, update))
    }

    /// `replaceOne` with no options.
    pub fn replace_one(filter: Document, replacement: Document) -> Self {
        WriteModel::ReplaceOne(ReplaceOneModel::new(filter, replacement))
    }

    /// `deleteOne` with no options.
    pub fn delete_one(filter: Document) -> Self {
        WriteModel::DeleteOne(DeleteModel::new(filter))
    }

    /// `deleteMany` with no options.
    pub fn delete_many(filter: Document) -> Self {
        WriteModel::DeleteMany(DeleteModel::new(filter))
    }
}

/// The model of an `insertOne` write.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct InsertOneModel {
    /// The document (an `_id` is generated when it has none).
    pub document: Document,
}

/// The model of an `updateOne` or `updateMany` write.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct UpdateModel {
    /// `filter`.
    pub filter: Document,
    /// `update`: an update document or a pipeline.
    pub update: UpdateModifications,
    /// `arrayFilters`.
    #[serde(default)]
    pub array_filters: Option<Vec<Document>>,
    /// `collation`.
    #[serde(default)]
    pub collation: Option<Document>,
    /// `hint`.
    #[serde(default)]
    pub hint: Option<Hint>,
    /// `upsert`.
    #[serde(default)]
    pub upsert: Option<bool>,
    /// `sort` (updateOne only, server 8.0+).
    #[serde(default)]
    pub sort: Option<Document>,
}

impl UpdateModel {
    /// An update of the documents matching `filter`, with no options.
    pub fn new(filter: Document, update: impl Into<UpdateModifications>) -> Self {
        UpdateModel {
            filter,
            update: update.into(),
            array_filters: None,
            collation: None,
            hint: None,
            upsert: None,
            sort: None,
        }
    }

    /// Sets `upsert`.
    #[must_use]
    pub fn upsert(mut self, upsert: bool) -> Self {
        self.upsert = Some(upsert);
        self
    }

    /// Sets `arrayFilters`.
    #[must_use]
    pub fn array_filters(mut self, filters: Vec<Document>) -> Self {
        self.array_filters = Some(filters);
        self
    }

    /// Sets `collation`.
    #[must_use]
    pub fn collation(mut self, collation: Document) -> Self {
        self.collation = Some(collation);
        self
    }

    /// Sets `hint`.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<Hint>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Sets `sort`.
    #[must_use]
    pub fn sort(mut self, sort: Document) -> Self {
        self.sort = Some(sort);
        self
    }
}

/// The model of a `replaceOne` write.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct ReplaceOneModel {
    /// `filter`.
    pub filter: Document,
    /// `replacement`: a document without update operators.
    pub replacement: Document,
    /// `collation`.
    #[serde(default)]
    pub collation: Option<Document>,
    /// `hint`.
    #[serde(default)]
    pub hint: Option<Hint>,
    /// `upsert`.
    #[serde(default)]
    pub upsert: Option<bool>,
    /// `sort` (server 8.0+).
    #[serde(default)]
    pub sort: Option<Document>,
}

impl ReplaceOneModel {
    /// A replacement of the first document matching `filter`, with no options.
    pub fn new(filter: Document, replacement: Document) -> Self {
        ReplaceOneModel {
            filter,
            replacement,
            collation: None,
            hint: None,
            upsert: None,
            sort: None,
        }
    }

    /// Sets `upsert`.
    #[must_use]
    pub fn upsert(mut self, upsert: bool) -> Self {
        self.upsert = Some(upsert);
        self
    }

    /// Sets `collation`.
    #[must_use]
    pub fn collation(mut self, collation: Document) -> Self {
        self.collation = Some(collation);
        self
    }

    /// Sets `hint`.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<Hint>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The model of a `deleteOne` or `deleteMany` write.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct DeleteModel {
    /// `filter`.
    pub filter: Document,
    /// `collation`.
    #[serde(default)]
    pub collation: Option<Document>,
    /// `hint`.
    #[serde(default)]
    pub hint: Option<Hint>,
}

impl DeleteModel {
    /// A delete of the documents matching `filter`, with no options.
    pub fn new(filter: Document) -> Self {
        DeleteModel {
            filter,
            collation: None,
            hint: None,
        }
    }

    /// Sets `collation`.
    #[must_use]
    pub fn collation(mut self, collation: Document) -> Self {
        self.collation = Some(collation);
        self
    }

    /// Sets `hint`.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<Hint>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn write_models_read_the_specification_shape() {
        let models: Vec<WriteModel> = bson::deserialize_from_bson(bson::bson!([
            {"insertOne": {"document": {"_id": 1}}},
            {"updateOne": {"filter": {}, "update": {"$set": {"x": 1}}, "upsert": true}},
            {"updateMany": {"filter": {}, "update": [{"$set": {"x": 1}}]}},
            {"replaceOne": {"filter": {}, "replacement": {"x": 1}}},
            {"deleteOne": {"filter": {"_id": 1}, "hint": "_id_"}},
            {"deleteMany": {"filter": {}}},
        ]))
        .unwrap();
        assert_eq!(models.len(), 6);
        assert_eq!(
            models[1],
            WriteModel::UpdateOne(UpdateModel::new(doc! {}, doc! {"$set": {"x": 1}}).upsert(true))
        );
        assert!(matches!(
            &models[2],
            WriteModel::UpdateMany(UpdateModel {
                update: UpdateModifications::Pipeline(_),
                ..
            })
        ));
        assert!(
            bson::deserialize_from_bson::<WriteModel>(bson::bson!({"insertOne": {"doc": {}}}))
                .is_err()
        );
    }
}
