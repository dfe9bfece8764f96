//! The change streams specification's vocabulary: [`ChangeStreamOptions`], the
//! [`ResumeToken`], and the typed [`ChangeStreamEvent`] a change stream decodes its events as
//! by default.

use std::time::Duration;

use bson::{Binary, Bson, DateTime, Document, Timestamp};
use serde::{Deserialize, Serialize};

/// A change stream's resume token: the `_id` of a change event, or a batch's
/// `postBatchResumeToken`. Opaque; pass it back as
/// [`resume_after`](ChangeStreamOptions::resume_after) or
/// [`start_after`](ChangeStreamOptions::start_after).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResumeToken(Document);

impl ResumeToken {
    /// The token as the server sent it.
    pub fn as_document(&self) -> &Document {
        &self.0
    }

    /// The token as a document.
    pub fn into_document(self) -> Document {
        self.0
    }
}

impl From<Document> for ResumeToken {
    fn from(d: Document) -> Self {
        ResumeToken(d)
    }
}

/// Declares a string enum with an `Other` fallback: unknown values pass through (the spec
/// leaves their validation to the server).
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $s:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this driver does not know, sent or received as it is.
            Other(String),
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $($s => $name::$variant,)*
                    _ => $name::Other(s),
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name::from(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                match v {
                    $($name::$variant => $s.to_owned(),)*
                    $name::Other(s) => s,
                }
            }
        }

        impl $name {
            /// The server's spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $s,)*
                    $name::Other(s) => s,
                }
            }
        }
    };
}

string_enum! {
    /// `fullDocument`: what an update event carries of the document after the change.
    FullDocumentType {
        /// `default`: the delta only.
        Default = "default",
        /// `updateLookup`: the delta and the document as it is some time after the change.
        UpdateLookup = "updateLookup",
        /// `whenAvailable`: the post-image, when the collection records them.
        WhenAvailable = "whenAvailable",
        /// `required`: the post-image, or an error.
        Required = "required",
    }
}

string_enum! {
    /// `fullDocumentBeforeChange`: whether events carry the document before the change.
    FullDocumentBeforeChangeType {
        /// `whenAvailable`: the pre-image, when the collection records them.
        WhenAvailable = "whenAvailable",
        /// `required`: the pre-image, or an error.
        Required = "required",
        /// `off`: no pre-image.
        Off = "off",
    }
}

string_enum! {
    /// A change event's `operationType`.
    OperationType {
        /// `insert`.
        Insert = "insert",
        /// `update`.
        Update = "update",
        /// `replace`.
        Replace = "replace",
        /// `delete`.
        Delete = "delete",
        /// `drop` (of a collection).
        Drop = "drop",
        /// `rename` (of a collection).
        Rename = "rename",
        /// `dropDatabase`.
        DropDatabase = "dropDatabase",
        /// `invalidate`: the stream ends.
        Invalidate = "invalidate",
        /// `create` (expanded events).
        Create = "create",
        /// `createIndexes` (expanded events).
        CreateIndexes = "createIndexes",
        /// `dropIndexes` (expanded events).
        DropIndexes = "dropIndexes",
        /// `modify` (expanded events).
        Modify = "modify",
        /// `shardCollection` (expanded events).
        ShardCollection = "shardCollection",
        /// `reshardCollection` (expanded events).
        ReshardCollection = "reshardCollection",
        /// `refineCollectionShardKey` (expanded events).
        RefineCollectionShardKey = "refineCollectionShardKey",
    }
}

options_struct! {
    /// Options of a change stream (`watch` on a [`Collection`](crate::Collection), a
    /// [`Database`](crate::Database) or a [`Client`](crate::Client)). `fullDocument`,
    /// `fullDocumentBeforeChange`, `resumeAfter`, `startAfter`, `startAtOperationTime` and
    /// `showExpandedEvents` go into the `$changeStream` stage; `batchSize`, `collation` and
    /// `comment` are the aggregate's; `maxAwaitTimeMS` is each getMore's `maxTimeMS`. The
    /// start options are mutually exclusive: the server refuses two of them.
    pub struct ChangeStreamOptions for [<'a, T> crate::client::action::Watch<'a, T>] {
        /// `fullDocument`.
        full_document: FullDocumentType,
        /// `fullDocumentBeforeChange`.
        full_document_before_change: FullDocumentBeforeChangeType,
        /// `resumeAfter`: the changes after this token.
        resume_after: ResumeToken,
        /// `startAfter`: as `resumeAfter`, but also after an `invalidate` event.
        start_after: ResumeToken,
        /// `startAtOperationTime`: the changes at or after this cluster time.
        start_at_operation_time: Timestamp,
        /// `showExpandedEvents`: DDL events too (`create`, `createIndexes`, `modify`, ...).
        show_expanded_events: bool,
        /// `cursor.batchSize` of the aggregate and each getMore's `batchSize`.
        batch_size: i32,
        /// `maxAwaitTimeMS`: how long the server waits for changes in each getMore.
        #[serde(rename = "maxAwaitTimeMS", default, deserialize_with = "super::millis")]
        max_await_time: Duration,
        /// `collation`.
        collation: Document,
        /// `comment` (on the aggregate, and on getMores from server 4.4 on).
        comment: Bson,
    }
}

/// The namespace of a change event (`ns`, `to`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChangeNamespace {
    /// The database.
    pub db: String,
    /// The collection (absent for database-level events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coll: Option<String>,
}

/// What an `update` event changed (`updateDescription`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UpdateDescription {
    /// The fields set, by dotted path.
    #[serde(default)]
    pub updated_fields: Document,
    /// The fields removed.
    #[serde(default)]
    pub removed_fields: Vec<String>,
    /// The arrays truncated (`field`, `newSize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_arrays: Option<Vec<Document>>,
    /// How to read the ambiguous paths of `updatedFields` and `removedFields`
    /// (`showExpandedEvents`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disambiguated_paths: Option<Document>,
}

/// A change event: what a change stream returns by default. `T` is the type of
/// `fullDocument` and `fullDocumentBeforeChange`. A pipeline that reshapes the events needs
/// another type ([`ChangeStream::with_type`](crate::ChangeStream::with_type), e.g. a
/// `Document`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ChangeStreamEvent<T = Document> {
    /// The event's resume token (`_id`).
    #[serde(rename = "_id")]
    pub id: ResumeToken,
    /// `operationType`.
    pub operation_type: OperationType,
    /// `ns`: where the change happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns: Option<ChangeNamespace>,
    /// `to`: a rename's new namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<ChangeNamespace>,
    /// `documentKey`: the `_id` (and shard key) of the changed document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_key: Option<Document>,
    /// `updateDescription` of an `update`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_description: Option<UpdateDescription>,
    /// `fullDocument`: the inserted or replaced document, or the post-image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_document: Option<T>,
    /// `fullDocumentBeforeChange`: the pre-image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_document_before_change: Option<T>,
    /// `clusterTime`: the oplog entry's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_time: Option<Timestamp>,
    /// `wallTime`: the server's clock at the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_time: Option<DateTime>,
    /// `collectionUUID` (expanded events).
    #[serde(
        rename = "collectionUUID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub collection_uuid: Option<Binary>,
    /// `operationDescription` of an expanded event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_description: Option<Document>,
    /// `txnNumber` of a change made in a transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn_number: Option<i64>,
    /// `lsid` of a change made in a session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lsid: Option<Document>,
    /// `nsType` (`collection`, `view`, `timeseries`) of a `create` event (expanded events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns_type: Option<String>,
    /// `splitEvent`: which fragment of a large event split by
    /// `$changeStreamSplitLargeEvent` this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_event: Option<SplitEvent>,
}

/// `splitEvent` of a fragment of a large change event (`$changeStreamSplitLargeEvent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SplitEvent {
    /// This fragment's number, from 1.
    pub fragment: i32,
    /// How many fragments the event was split into.
    pub of: i32,
}

#[cfg(test)]
mod tests {
    use bson::doc;

    use super::*;

    #[test]
    fn change_events_decode_with_unknown_values_kept() {
        let d = doc! {
            "_id": {"_data": "82"}, "operationType": "update",
            "ns": {"db": "d", "coll": "c"}, "documentKey": {"_id": 1},
            "updateDescription": {"updatedFields": {"a": 2}, "removedFields": ["b"]},
            "fullDocument": null, "clusterTime": Timestamp { time: 5, increment: 1 },
            "somethingNew": 1, "splitEvent": {"fragment": 1, "of": 2},
        };
        let e: ChangeStreamEvent = bson::deserialize_from_document(d).unwrap();
        assert_eq!(e.operation_type, OperationType::Update);
        assert_eq!(e.id.as_document(), &doc! {"_data": "82"});
        assert_eq!(e.ns.unwrap().coll.as_deref(), Some("c"));
        assert_eq!(e.full_document, None);
        assert_eq!(e.split_event, Some(SplitEvent { fragment: 1, of: 2 }));
        assert_eq!(e.update_description.unwrap().removed_fields, vec!["b"]);
        let other: OperationType = "migrateChunk".into();
        assert_eq!(other, OperationType::Other("migrateChunk".into()));
        assert_eq!(String::from(OperationType::DropDatabase), "dropDatabase");
    }

    #[test]
    fn options_read_the_spec_names() {
        let o: ChangeStreamOptions = bson::deserialize_from_document(doc! {
            "fullDocument": "updateLookup", "fullDocumentBeforeChange": "whatever",
            "maxAwaitTimeMS": 50, "batchSize": 2, "showExpandedEvents": true,
            "resumeAfter": {"_data": "1"}, "comment": {"x": 1},
        })
        .unwrap();
        assert_eq!(o.full_document, Some(FullDocumentType::UpdateLookup));
        assert_eq!(
            o.full_document_before_change,
            Some(FullDocumentBeforeChangeType::Other("whatever".into()))
        );
        assert_eq!(o.max_await_time, Some(Duration::from_millis(50)));
        assert_eq!(o.resume_after, Some(ResumeToken::from(doc! {"_data": "1"})));
        assert!(bson::deserialize_from_document::<ChangeStreamOptions>(doc! {"x": 1}).is_err());
    }
}
