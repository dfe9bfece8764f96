//! The CRUD and administration vocabulary as data: the options of every collection, database
//! and client operation, the write models of a bulk write, the index models, and the results.
//!
//! Every options struct deserializes from the argument documents of the unified test format
//! (and of the CRUD specification): the field names are the specification's camelCase names
//! (`arrayFilters`, `maxTimeMS`, `let`, …), and an unknown key is an error, so that a caller
//! learns that an option is not supported instead of having it ignored. `session` and
//! `timeoutMS` are not options here: they belong to whoever runs the operation.
//!
//! ```
//! use mongo_client::bson::doc;
//! use mongo_client::UpdateOptions;
//!
//! let args = doc! { "upsert": true, "arrayFilters": [{ "e.x": 1 }], "let": { "v": 1 } };
//! let options: UpdateOptions = mongo_client::bson::deserialize_from_document(args).unwrap();
//! assert_eq!(options.upsert, Some(true));
//! assert!(mongo_client::bson::deserialize_from_document::<UpdateOptions>(doc! { "nope": 1 }).is_err());
//! ```

use std::time::Duration;

use bson::{Bson, Document};
use serde::{Deserialize, Deserializer};

/// Declares an options struct: every field optional and public, `Default`, `Clone`, `Debug`,
/// `PartialEq`, `Deserialize` with camelCase names and `deny_unknown_fields`,
/// `#[non_exhaustive]`, and one builder-style setter per field (named like the field).
///
/// `pub struct XOptions for [<'a, T> Action<'a, T>, …] { … }` also gives each listed action
/// (a struct with an `options: XOptions` field) the same setters, so that
/// `coll.find(filter).sort(..).limit(..)` reads as the options do.
macro_rules! options_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident for [$(<$($g:lifetime),* $(, $t:ident)*> $action:ty),+ $(,)?] $body:tt
    ) => {
        options_struct!(@struct $(#[$meta])* $name $body);
        $(
            options_struct!(@setters [$($g),* $(, $t)*] $action, $body);
        )+
    };
    (
        $(#[$meta:meta])*
        pub struct $name:ident { $($body:tt)* }
    ) => {
        options_struct!(@struct $(#[$meta])* $name { $($body)* });
    };
    (
        @struct $(#[$meta:meta])* $name:ident {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, serde::Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        #[non_exhaustive]
        pub struct $name {
            $(
                $(#[$fmeta])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
        }

        impl $name {
            $(
                #[doc = concat!("Sets [`", stringify!($field), "`](Self::", stringify!($field), ").")]
                #[must_use]
                pub fn $field(mut self, value: impl Into<$ty>) -> Self {
                    self.$field = Some(value.into());
                    self
                }
            )*
        }
    };
    (
        @setters [$($g:tt)*] $action:ty, {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        #[cfg(feature = "tokio")]
        impl<$($g)*> $action {
            $(
                #[doc = concat!("Sets the `", stringify!($field), "` option.")]
                pub fn $field(mut self, value: impl Into<$ty>) -> Self {
                    self.options.$field = Some(value.into());
                    self
                }
            )*
        }
    };
}

mod admin;
mod change_stream;
mod client_bulk;
mod gridfs;
mod read;
mod results;
mod write;

pub use admin::{
    CreateCollectionOptions, CreateIndexOptions, DropIndexOptions, IndexModel, IndexOptions,
    ListCollectionsOptions, ListDatabasesOptions, ListIndexesOptions, ModifyCollectionOptions,
    RenameCollectionOptions, RunCursorCommandOptions,
};
pub use change_stream::{
    ChangeNamespace, ChangeStreamEvent, ChangeStreamOptions, FullDocumentBeforeChangeType,
    FullDocumentType, OperationType, ResumeToken, SplitEvent, UpdateDescription,
};
pub use client_bulk::{
    ClientBulkWriteError, ClientBulkWriteOptions, ClientBulkWriteResult, ClientUpdateResult,
    ClientWriteModel, Namespace, VerboseResults,
};
pub use gridfs::{GridFsDownloadByNameOptions, GridFsFindOptions, GridFsUploadOptions};
pub use read::{
    AggregateOptions, CountOptions, DistinctOptions, EstimatedDocumentCountOptions, FindOneOptions,
    FindOptions,
};
pub use results::{BulkWriteResult, DeleteResult, InsertManyResult, InsertOneResult, UpdateResult};
pub use write::{
    BulkWriteOptions, DeleteModel, DeleteOptions, FindOneAndDeleteOptions,
    FindOneAndReplaceOptions, FindOneAndUpdateOptions, InsertManyOptions, InsertOneModel,
    InsertOneOptions, ReplaceOneModel, ReplaceOptions, UpdateModel, UpdateOptions, WriteModel,
};

/// An index hint: the index's name or its key pattern (`hint` in the specification, a string
/// or a document).
#[derive(Clone, Debug, PartialEq)]
pub enum Hint {
    /// The index's key pattern, e.g. `{ "a": 1 }`.
    Keys(Document),
    /// The index's name, e.g. `"a_1"`.
    Name(String),
}

impl Hint {
    /// The value sent to the server.
    pub fn to_bson(&self) -> Bson {
        match self {
            Hint::Keys(d) => Bson::Document(d.clone()),
            Hint::Name(n) => Bson::String(n.clone()),
        }
    }
}

impl From<Document> for Hint {
    fn from(d: Document) -> Self {
        Hint::Keys(d)
    }
}

impl From<&str> for Hint {
    fn from(s: &str) -> Self {
        Hint::Name(s.to_owned())
    }
}

impl From<String> for Hint {
    fn from(s: String) -> Self {
        Hint::Name(s)
    }
}

impl<'de> Deserialize<'de> for Hint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Bson::deserialize(d)? {
            Bson::String(s) => Ok(Hint::Name(s)),
            Bson::Document(doc) => Ok(Hint::Keys(doc)),
            other => Err(serde::de::Error::custom(format!(
                "hint must be a string or a document, not {:?}",
                other.element_type()
            ))),
        }
    }
}

/// Which document `findOneAndUpdate` / `findOneAndReplace` return (`returnDocument`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum ReturnDocument {
    /// The document as it was before the change (the default).
    #[default]
    #[serde(alias = "before")]
    Before,
    /// The document as it is after the change (or the upserted document).
    #[serde(alias = "after")]
    After,
}

/// What `timeoutMS` bounds for an operation that opens a cursor (`timeoutMode`,
/// client-side operation timeouts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TimeoutMode {
    /// The command and every getMore of the cursor, together (the default of a cursor that
    /// does not tail); the getMores carry no `maxTimeMS`.
    CursorLifetime,
    /// The command, then each iteration apart (the only mode of a tailable cursor); no
    /// command of the cursor carries the `maxTimeMS` of `timeoutMS`.
    Iteration,
}

/// The kind of cursor `find` opens (`cursorType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CursorType {
    /// An ordinary cursor (the default).
    #[default]
    NonTailable,
    /// A tailable cursor on a capped collection (`tailable: true`).
    Tailable,
    /// A tailable cursor whose getMores wait for data (`tailable`, `awaitData`); its getMores
    /// carry `maxAwaitTimeMS` as `maxTimeMS`.
    TailableAwait,
}

/// The update of an update operation: an update document (`$set`, `$inc`, …) or an
/// aggregation pipeline.
#[derive(Clone, Debug, PartialEq)]
pub enum UpdateModifications {
    /// An update document: its first key must be an update operator.
    Document(Document),
    /// An aggregation pipeline (server 4.2+).
    Pipeline(Vec<Document>),
}

impl UpdateModifications {
    /// The value sent to the server.
    pub fn to_bson(&self) -> Bson {
        match self {
            UpdateModifications::Document(d) => Bson::Document(d.clone()),
            UpdateModifications::Pipeline(p) => {
                Bson::Array(p.iter().cloned().map(Bson::Document).collect())
            }
        }
    }

    /// Reads an update from BSON: a document or an array of documents.
    ///
    /// # Errors
    /// Anything else, or an array with an entry that is not a document.
    pub fn from_bson(value: Bson) -> crate::Result<Self> {
        match value {
            Bson::Document(d) => Ok(UpdateModifications::Document(d)),
            Bson::Array(a) => a
                .into_iter()
                .map(|s| match s {
                    Bson::Document(d) => Ok(d),
                    _ => Err(crate::Error::invalid_argument(
                        "an update pipeline stage must be a document",
                    )),
                })
                .collect::<crate::Result<Vec<_>>>()
                .map(UpdateModifications::Pipeline),
            other => Err(crate::Error::invalid_argument(format!(
                "an update must be a document or a pipeline, not {:?}",
                other.element_type()
            ))),
        }
    }
}

impl From<Document> for UpdateModifications {
    fn from(d: Document) -> Self {
        UpdateModifications::Document(d)
    }
}

impl From<Vec<Document>> for UpdateModifications {
    fn from(p: Vec<Document>) -> Self {
        UpdateModifications::Pipeline(p)
    }
}

impl<'de> Deserialize<'de> for UpdateModifications {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        UpdateModifications::from_bson(Bson::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// `maxTimeMS`-style fields: a non-negative number of milliseconds.
pub(crate) fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    use crate::error::BsonExt;
    match Option::<Bson>::deserialize(d)? {
        None | Some(Bson::Null) => Ok(None),
        Some(v) => v
            .as_i64_lossy()
            .and_then(|ms| u64::try_from(ms).ok())
            .map(|ms| Some(Duration::from_millis(ms)))
            .ok_or_else(|| {
                serde::de::Error::custom(format!("expected a non-negative count of ms, got {v}"))
            }),
    }
}

/// A duration as the int32 (or int64) number of milliseconds a command takes.
pub(crate) fn millis_bson(d: Duration) -> Bson {
    crate::operation::compact_int(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn hints_and_updates_read_either_shape() {
        let o: UpdateOptions = bson::deserialize_from_document(doc! {"hint": "a_1"}).unwrap();
        assert_eq!(o.hint, Some(Hint::Name("a_1".into())));
        let o: UpdateOptions = bson::deserialize_from_document(doc! {"hint": {"a": 1}}).unwrap();
        assert_eq!(o.hint, Some(Hint::Keys(doc! {"a": 1})));
        assert!(bson::deserialize_from_document::<UpdateOptions>(doc! {"hint": 1}).is_err());
        assert!(matches!(
            UpdateModifications::from_bson(Bson::Array(vec![Bson::Document(doc! {"$set": {}})])),
            Ok(UpdateModifications::Pipeline(p)) if p.len() == 1
        ));
        assert!(UpdateModifications::from_bson(Bson::Int32(1)).is_err());
    }

    #[test]
    fn max_time_reads_integral_milliseconds() {
        let o: FindOptions =
            bson::deserialize_from_document(doc! {"maxTimeMS": 1500, "maxAwaitTimeMS": 2.0})
                .unwrap();
        assert_eq!(o.max_time, Some(Duration::from_millis(1500)));
        assert_eq!(o.max_await_time, Some(Duration::from_millis(2)));
        assert!(bson::deserialize_from_document::<FindOptions>(doc! {"maxTimeMS": -1}).is_err());
        assert_eq!(millis_bson(Duration::from_millis(7)), Bson::Int32(7));
    }

    #[test]
    fn enums_use_the_specification_spelling() {
        let o: FindOneAndUpdateOptions =
            bson::deserialize_from_document(doc! {"returnDocument": "After"}).unwrap();
        assert_eq!(o.return_document, Some(ReturnDocument::After));
        let o: FindOptions =
            bson::deserialize_from_document(doc! {"cursorType": "tailableAwait"}).unwrap();
        assert_eq!(o.cursor_type, Some(CursorType::TailableAwait));
    }

    #[test]
    fn session_and_timeout_are_not_options() {
        for key in ["session", "timeoutMS"] {
            assert!(
                bson::deserialize_from_document::<InsertOneOptions>(doc! {key: 1}).is_err(),
                "{key}"
            );
        }
    }
}
