//! Options of the reads: `find`, `findOne`, `aggregate`, `countDocuments`,
//! `estimatedDocumentCount` and `distinct` (CRUD specification, "Read").

use std::time::Duration;

use bson::{Bson, Document};

use super::{CursorType, Hint};

options_struct! {
    /// Options of [`Collection::find`](crate::Collection::find).
    pub struct FindOptions for [<'a, T> crate::client::action::Find<'a, T>] {
        /// `timeoutMode`: whether `timeoutMS` bounds the cursor's lifetime or each
        /// iteration (client-side operation timeouts; needs a `timeoutMS`).
        timeout_mode: super::TimeoutMode,
        /// `allowDiskUse`: let blocking sorts spill to disk.
        allow_disk_use: bool,
        /// `allowPartialResults`: partial results from a sharded cluster with shards down.
        allow_partial_results: bool,
        /// `batchSize` of the first batch and of each getMore.
        batch_size: i32,
        /// `collation`.
        collation: Document,
        /// `comment`: attached to the command (and, from server 4.4 on, to its getMores).
        comment: Bson,
        /// `cursorType`: tailable cursors.
        cursor_type: CursorType,
        /// `hint`: the index to use.
        hint: Hint,
        /// `limit`: the most documents to return (negative: a single batch of at most that
        /// many).
        limit: i64,
        /// `max`: the exclusive upper bound of the index keys.
        max: Document,
        /// `maxAwaitTimeMS`: how long a getMore of a `tailableAwait` cursor waits for data.
        #[serde(rename = "maxAwaitTimeMS", default, deserialize_with = "super::millis")]
        max_await_time: Duration,
        /// `maxTimeMS`: the server's time limit for the command.
        #[serde(rename = "maxTimeMS", default, deserialize_with = "super::millis")]
        max_time: Duration,
        /// `min`: the inclusive lower bound of the index keys.
        min: Document,
        /// `noCursorTimeout`: the server never times the cursor out.
        no_cursor_timeout: bool,
        /// `projection`.
        projection: Document,
        /// `returnKey`: return only the index keys.
        return_key: bool,
        /// `showRecordId`: add `$recordId` to each document.
        show_record_id: bool,
        /// `skip`.
        skip: i64,
        /// `sort`.
        sort: Document,
        /// `let`: variables for `$expr` and pipelines.
        #[serde(rename = "let")]
        let_vars: Document,
        /// `rawData`: time-series buckets as stored.
        raw_data: bool,
        /// An exhaust cursor (OP_MSG `exhaustAllowed` on its getMores; opt-in, not a CRUD
        /// specification option): after the first getMore the server streams the remaining
        /// batches on one connection without waiting for further getMores. The connection
        /// stays with the cursor until the stream ends, and is closed if the cursor is dropped
        /// before. Not with a tailable `cursorType`; ignored in a transaction, behind a load
        /// balancer and by servers before 4.2 (mongos before 7.1).
        exhaust: bool,
    }
}

options_struct! {
    /// Options of [`Collection::find_one`](crate::Collection::find_one): `find`'s, without
    /// those that make no sense for one document (`batchSize`, `cursorType`, `limit`,
    /// `noCursorTimeout`, `maxAwaitTimeMS`).
    pub struct FindOneOptions for [<'a, T> crate::client::action::FindOne<'a, T>] {
        /// `allowPartialResults`.
        allow_partial_results: bool,
        /// `collation`.
        collation: Document,
        /// `comment`.
        comment: Bson,
        /// `hint`.
        hint: Hint,
        /// `max`.
        max: Document,
        /// `maxTimeMS`.
        #[serde(rename = "maxTimeMS", default, deserialize_with = "super::millis")]
        max_time: Duration,
        /// `min`.
        min: Document,
        /// `projection`.
        projection: Document,
        /// `returnKey`.
        return_key: bool,
        /// `showRecordId`.
        show_record_id: bool,
        /// `skip`.
        skip: i64,
        /// `sort`.
        sort: Document,
        /// `let`.
        #[serde(rename = "let")]
        let_vars: Document,
        /// `rawData`.
        raw_data: bool,
    }
}

impl From<FindOneOptions> for FindOptions {
    fn from(o: FindOneOptions) -> Self {
        FindOptions {
            allow_partial_results: o.allow_partial_results,
            collation: o.collation,
            comment: o.comment,
            hint: o.hint,
            max: o.max,
            max_time: o.max_time,
            min: o.min,
            projection: o.projection,
            return_key: o.return_key,
            show_record_id: o.show_record_id,
            skip: o.skip,
            sort: o.sort,
            let_vars: o.let_vars,
            raw_data: o.raw_data,
            ..FindOptions::default()
        }
    }
}

options_struct! {
    /// Options of `aggregate` ([`Collection::aggregate`](crate::Collection::aggregate),
    /// [`Database::aggregate`](crate::Database::aggregate)).
    pub struct AggregateOptions for [<'a, T> crate::client::action::Aggregate<'a, T>] {
        /// `timeoutMode`: whether `timeoutMS` bounds the cursor's lifetime or each
        /// iteration (client-side operation timeouts; needs a `timeoutMS`).
        timeout_mode: super::TimeoutMode,
        /// `allowDiskUse`.
        allow_disk_use: bool,
        /// `cursor.batchSize` (not sent for a pipeline ending in `$out` / `$merge`).
        batch_size: i32,
        /// `bypassDocumentValidation` (for `$out` / `$merge`).
        bypass_document_validation: bool,
        /// `collation`.
        collation: Document,
        /// `maxTimeMS`.
        #[serde(rename = "maxTimeMS", default, deserialize_with = "super::millis")]
        max_time: Duration,
        /// `maxAwaitTimeMS`: the getMores' `maxTimeMS` (change streams, tailable sources).
        #[serde(rename = "maxAwaitTimeMS", default, deserialize_with = "super::millis")]
        max_await_time: Duration,
        /// `comment`.
        comment: Bson,
        /// `hint`.
        hint: Hint,
        /// `let`.
        #[serde(rename = "let")]
        let_vars: Document,
        /// `rawData`.
        raw_data: bool,
        /// An exhaust cursor (opt-in, not a CRUD specification option): as
        /// [`FindOptions::exhaust`]; ignored when the pipeline ends in `$out` / `$merge`.
        exhaust: bool,
    }
}

options_struct! {
    /// Options of [`Collection::count_documents`](crate::Collection::count_documents).
    pub struct CountOptions for [
        <'a, T> crate::client::action::CountDocuments<'a, T>,
        <'a, T> crate::client::action::Count<'a, T>,
    ] {
        /// `collation`.
        collation: Document,
        /// `hint`.
        hint: Hint,
        /// `limit`: count at most this many (a `$limit` stage).
        limit: i64,
        /// `maxTimeMS`.
        #[serde(rename = "maxTimeMS", default, deserialize_with = "super::millis")]
        max_time: Duration,
        /// `skip`: a `$skip` stage.
        skip: i64,
        /// `comment`.
        comment: Bson,
        /// `rawData`.
        raw_data: bool,
    }
}

options_struct! {
    /// Options of
    /// [`Collection::estimated_document_count`](crate::Collection::estimated_document_count).
    pub struct EstimatedDocumentCountOptions for [<'a, T> crate::client::action::EstimatedDocumentCount<'a, T>] {
        /// `maxTimeMS`.
        #[serde(rename = "maxTimeMS", default, deserialize_with = "super::millis")]
        max_time: Duration,
        /// `comment`.
        comment: Bson,
        /// `rawData`.
        raw_data: bool,
    }
}

options_struct! {
    /// Options of [`Collection::distinct`](crate::Collection::distinct).
    pub struct DistinctOptions for [<'a, T> crate::client::action::Distinct<'a, T>] {
        /// `collation`.
        collation: Document,
        /// `maxTimeMS`.
        #[serde(rename = "maxTimeMS", default, deserialize_with = "super::millis")]
        max_time: Duration,
        /// `comment`.
        comment: Bson,
        /// `hint`.
        hint: Hint,
        /// `rawData`.
        raw_data: bool,
    }
}
