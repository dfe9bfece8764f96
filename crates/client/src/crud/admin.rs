//! Options of the administration operations: indexes (index management specification),
//! collections and databases (enumeration and creation), and `runCursorCommand` (run command
//! specification).

use std::time::Duration;

use bson::{Bson, Document};
use serde::{Deserialize, Deserializer};

use super::CursorType;

options_struct! {
    /// The options of one index, sent in its `createIndexes` specification. The field names
    /// are the server's.
    #[derive(serde::Serialize)]
    pub struct IndexOptions {
        /// `name` (generated from the keys when absent, e.g. `a_1_b_-1`).
        name: String,
        /// `unique`.
        unique: bool,
        /// `sparse`.
        sparse: bool,
        /// `background` (ignored by servers from 4.2 on).
        background: bool,
        /// `expireAfterSeconds`: a TTL index.
        expire_after_seconds: i64,
        /// `partialFilterExpression`.
        partial_filter_expression: Document,
        /// `hidden`.
        hidden: bool,
        /// `collation`.
        collation: Document,
        /// `weights` of a text index.
        weights: Document,
        /// `default_language` of a text index.
        #[serde(rename = "default_language")]
        default_language: String,
        /// `language_override` of a text index.
        #[serde(rename = "language_override")]
        language_override: String,
        /// `textIndexVersion`.
        text_index_version: i32,
        /// `2dsphereIndexVersion`.
        #[serde(rename = "2dsphereIndexVersion")]
        sphere_2d_index_version: i32,
        /// `bits` of a 2d index.
        bits: i32,
        /// `min` of a 2d index.
        min: f64,
        /// `max` of a 2d index.
        max: f64,
        /// `storageEngine`.
        storage_engine: Document,
        /// `wildcardProjection`.
        wildcard_projection: Document,
        /// `v`: the index version.
        #[serde(rename = "v")]
        version: i32,
    }
}

/// An index to create: its key pattern and options.
///
/// Deserializes from the flat shape of the unified test format's `createIndex` arguments:
/// `{ "keys": { "x": 1 }, "name": "x_1", "unique": true }` (the keys beside `keys` are
/// [`IndexOptions`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct IndexModel {
    /// The key pattern, e.g. `{ "a": 1, "b": -1 }`.
    pub keys: Document,
    /// The options.
    pub options: Option<IndexOptions>,
}

impl IndexModel {
    /// An index on `keys` with no options.
    pub fn new(keys: Document) -> Self {
        IndexModel {
            keys,
            options: None,
        }
    }

    /// Sets the options.
    #[must_use]
    pub fn options(mut self, options: IndexOptions) -> Self {
        self.options = Some(options);
        self
    }

    /// The index's name: the one given, or the one the index management specification
    /// generates from the keys (`key_value` pairs joined with `_`, e.g. `a_1_b_-1`).
    pub fn name(&self) -> String {
        if let Some(name) = self.options.as_ref().and_then(|o| o.name.clone()) {
            return name;
        }
        self.keys
            .iter()
            .map(|(k, v)| match v {
                Bson::String(s) => format!("{k}_{s}"),
                Bson::Int32(i) => format!("{k}_{i}"),
                Bson::Int64(i) => format!("{k}_{i}"),
                Bson::Double(d) if d.fract() == 0.0 && d.abs() < 1e15 => format!("{k}_{d:.0}"),
                other => format!("{k}_{other}"),
            })
            .collect::<Vec<_>>()
            .join("_")
    }
}

impl<'de> Deserialize<'de> for IndexModel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut doc = Document::deserialize(d)?;
        let keys = match doc.remove("keys") {
            Some(Bson::Document(k)) => k,
            _ => return Err(serde::de::Error::custom("an index model needs `keys`")),
        };
        let options = if doc.is_empty() {
            None
        } else {
            Some(bson::deserialize_from_document(doc).map_err(serde::de::Error::custom)?)
        };
        Ok(IndexModel { keys, options })
    }
}

options_struct! {
    /// Options of `createIndexes`
    /// ([`Collection::create_index`](crate::Collection::create_index)).
    pub struct CreateIndexOptions for [<'a, T> crate::client::action::CreateIndex<'a, T>, <'a, T> crate::client::action::CreateIndexes<'a, T>] {
        /// `commitQuorum`: an integer or a string (`"majority"`, `"votingMembers"`).
        commit_quorum: Bson,
        /// `maxTimeMS`.
        #[serde(rename = "maxTimeMS", default, deserialize_with = "super::millis")]
        max_time: Duration,
        /// `comment`.
        comment: Bson,
    }
}

options_struct! {
    /// Options of `dropIndexes`
    /// ([`Collection::drop_index`](crate::Collection::drop_index)).
    pub struct DropIndexOptions for [<'a, T> crate::client::action::DropIndex<'a, T>] {
        /// `maxTimeMS`.
        #[serde(rename = "maxTimeMS", default, deserialize_with = "super::millis")]
        max_time: Duration,
        /// `comment`.
        comment: Bson,
    }
}

options_struct! {
    /// Options of `listIndexes`
    /// ([`Collection::list_indexes`](crate::Collection::list_indexes)).
    pub struct ListIndexesOptions for [<'a, T> crate::client::action::ListIndexes<'a, T>] {
        /// `timeoutMode`: whether `timeoutMS` bounds the cursor's lifetime or each
        /// iteration (client-side operation timeouts; needs a `timeoutMS`).
        timeout_mode: super::TimeoutMode,
        /// `cursor.batchSize` and the getMores' `batchSize`.
        batch_size: i32,
        /// `maxTimeMS`.
        #[serde(rename = "maxTimeMS", default, deserialize_with = "super::millis")]
        max_time: Duration,
        /// `comment`.
        comment: Bson,
    }
}

options_struct! {
    /// Options of `create`
    /// ([`Database::create_collection`](crate::Database::create_collection)). The field
    /// names are the server's.
    #[derive(serde::Serialize)]
    pub struct CreateCollectionOptions for [<'a> crate::client::action::CreateCollection<'a>] {
        /// `capped`.
        capped: bool,
        /// `size`: the capped collection's size in bytes.
        size: i64,
        /// `max`: the capped collection's most documents.
        max: i64,
        /// `storageEngine`.
        storage_engine: Document,
        /// `validator`.
        validator: Document,
        /// `validationLevel`.
        validation_level: String,
        /// `validationAction`.
        validation_action: String,
        /// `indexOptionDefaults`.
        index_option_defaults: Document,
        /// `viewOn`: make a view on this collection.
        view_on: String,
        /// `pipeline` of a view.
        pipeline: Vec<Document>,
        /// `collation`.
        collation: Document,
        /// `changeStreamPreAndPostImages`.
        change_stream_pre_and_post_images: Document,
        /// `clusteredIndex`.
        clustered_index: Document,
        /// `timeseries`.
        timeseries: Document,
        /// `expireAfterSeconds`.
        expire_after_seconds: i64,
        /// `comment`.
        comment: Bson,
    }
}

options_struct! {
    /// Options of `collMod`
    /// ([`Database::modify_collection`](crate::Database::modify_collection)): what to change
    /// on a collection or a view. The field names are the server's.
    #[derive(serde::Serialize)]
    pub struct ModifyCollectionOptions for [<'a> crate::client::action::ModifyCollection<'a>] {
        /// `validator`: the document validation rules (a query filter).
        validator: Document,
        /// `validationLevel`: `strict`, `moderate` or `off`.
        validation_level: String,
        /// `validationAction`: `error` or `warn`.
        validation_action: String,
        /// `viewOn`: a view's new source collection.
        view_on: String,
        /// `pipeline`: a view's new pipeline.
        pipeline: Vec<Document>,
        /// `index`: an index's options to change (`hidden`, `expireAfterSeconds`, …).
        index: Document,
        /// `changeStreamPreAndPostImages`.
        change_stream_pre_and_post_images: Document,
        /// `expireAfterSeconds` of a time-series or clustered collection.
        expire_after_seconds: i64,
        /// `timeseries`.
        timeseries: Document,
        /// `comment`.
        comment: Bson,
    }
}

options_struct! {
    /// Options of `listCollections`
    /// ([`Database::list_collections`](crate::Database::list_collections)).
    pub struct ListCollectionsOptions for [<'a> crate::client::action::ListCollections<'a>] {
        /// `timeoutMode`: whether `timeoutMS` bounds the cursor's lifetime or each
        /// iteration (client-side operation timeouts; needs a `timeoutMS`).
        timeout_mode: super::TimeoutMode,
        /// `cursor.batchSize` and the getMores' `batchSize`.
        batch_size: i32,
        /// `nameOnly`: only names and types (set by `list_collection_names`).
        name_only: bool,
        /// `authorizedCollections`: only the collections the user may use.
        authorized_collections: bool,
        /// `comment`.
        comment: Bson,
    }
}

options_struct! {
    /// Options of `listDatabases` ([`Client::list_databases`](crate::Client::list_databases)).
    pub struct ListDatabasesOptions for [<'a> crate::client::action::ListDatabases<'a>, <'a> crate::client::action::ListDatabaseNames<'a>] {
        /// `nameOnly`.
        name_only: bool,
        /// `authorizedDatabases`: only the databases the user may use.
        authorized_databases: bool,
        /// `comment`.
        comment: Bson,
    }
}

options_struct! {
    /// Options of
    /// [`Database::run_cursor_command`](crate::Database::run_cursor_command). `batchSize`,
    /// `maxTimeMS` and `comment` apply to the cursor's getMores only (the command is sent as
    /// written); `cursorType` says what the caller's command asked for.
    pub struct RunCursorCommandOptions for [<'a> crate::client::action::RunCursorCommand<'a>] {
        /// `timeoutMode`: whether `timeoutMS` bounds the cursor's lifetime or each
        /// iteration (client-side operation timeouts; needs a `timeoutMS`).
        timeout_mode: super::TimeoutMode,
        /// The getMores' `batchSize`.
        batch_size: i32,
        /// The getMores' `maxTimeMS`.
        #[serde(rename = "maxTimeMS", default, deserialize_with = "super::millis")]
        max_time: Duration,
        /// The getMores' `comment`.
        comment: Bson,
        /// The kind of cursor the command opens.
        cursor_type: CursorType,
    }
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn index_names_are_generated_from_the_keys() {
        assert_eq!(IndexModel::new(doc! {"a": 1, "b": -1}).name(), "a_1_b_-1");
        assert_eq!(IndexModel::new(doc! {"t": "text"}).name(), "t_text");
        assert_eq!(IndexModel::new(doc! {"x": 1.0}).name(), "x_1");
        let named = IndexModel::new(doc! {"a": 1}).options(IndexOptions::default().name("mine"));
        assert_eq!(named.name(), "mine");
    }

    #[test]
    fn index_models_read_the_flat_shape_and_write_server_names() {
        let m: IndexModel = bson::deserialize_from_document(
            doc! {"keys": {"x": 1}, "name": "x_1", "unique": true, "2dsphereIndexVersion": 3},
        )
        .unwrap();
        assert_eq!(m.keys, doc! {"x": 1});
        let o = m.options.unwrap();
        assert_eq!(o.unique, Some(true));
        let sent = bson::serialize_to_document(&o).unwrap();
        assert_eq!(
            sent,
            doc! {"name": "x_1", "unique": true, "2dsphereIndexVersion": 3}
        );
        assert!(bson::deserialize_from_document::<IndexModel>(doc! {"name": "x"}).is_err());
        assert!(
            bson::deserialize_from_document::<IndexModel>(doc! {"keys": {}, "bogus": 1}).is_err()
        );
    }
}

options_struct! {
    /// Options of `renameCollection`
    /// ([`Collection::rename`](crate::Collection::rename)).
    pub struct RenameCollectionOptions for [<'a, T> crate::client::action::RenameCollection<'a, T>] {
        /// `dropTarget`: drop an existing collection of the new name first.
        drop_target: bool,
        /// `comment`.
        comment: Bson,
    }
}
