//! The read actions of a collection: `find`, `find_one`, `aggregate` (also the database's),
//! `count_documents`, `estimated_document_count`, `distinct`, `map_reduce`.

use std::marker::PhantomData;

use bson::{Bson, Document};
use serde::de::DeserializeOwned;

use crate::client::stream::{Cursor, decode};
use crate::client::{Collection, Database, DatabaseOptions};
use crate::crud::{
    AggregateOptions, CountOptions, DistinctOptions, EstimatedDocumentCountOptions, FindOneOptions,
    FindOptions,
};

/// `find`: a cursor over the documents matching a filter
/// ([`Collection::find`](crate::Collection::find)).
#[must_use = "an action does nothing until awaited"]
pub struct Find<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    concerns: DatabaseOptions,
    filter: Document,
    pub(crate) options: FindOptions,
}
read_concerns!(Find<'a, T>);

session_setter!(Find<'a, T>);

with_options!(Find<'a, T>, FindOptions);
action_future!(Find<'a, T> => Cursor<T>; |this| {
    let coll = super::bind_with(this.coll, this.session, this.concerns)?;
    let core = coll.exec_find(this.filter, this.options).await?;
    Ok(Cursor::new(core))
});

/// `findOne`: the first document matching a filter, or `None`
/// ([`Collection::find_one`](crate::Collection::find_one)).
#[must_use = "an action does nothing until awaited"]
pub struct FindOne<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    concerns: DatabaseOptions,
    filter: Document,
    pub(crate) options: FindOneOptions,
}
read_concerns!(FindOne<'a, T>);

session_setter!(FindOne<'a, T>);

with_options!(FindOne<'a, T>, FindOneOptions);
action_future!(FindOne<'a, T> where [T: DeserializeOwned + 'static] => Option<T>; |this| {
    let coll = super::bind_with(this.coll, this.session, this.concerns)?;
    let mut options: FindOptions = this.options.into();
    // A single batch of one document: the server closes the cursor itself.
    options.limit = Some(-1);
    let mut core = coll.exec_find(this.filter, options).await?;
    core.try_next().await?.map(decode).transpose()
});

/// Where an aggregation runs.
enum Target<'a> {
    Collection(&'a crate::client::Client, &'a str, &'a str),
    Database(&'a Database),
}

/// `aggregate`: a cursor over a pipeline's results, on a collection
/// ([`Collection::aggregate`](crate::Collection::aggregate)) or a database
/// ([`Database::aggregate`](crate::Database::aggregate)). Its documents are `Document`s;
/// [`with_type`](Self::with_type) decodes them as another type.
#[must_use = "an action does nothing until awaited"]
pub struct Aggregate<'a, T = Document> {
    target: Target<'a>,
    session: super::Binding<'a>,
    concerns: DatabaseOptions,
    pipeline: Vec<Document>,
    pub(crate) options: AggregateOptions,
    _type: PhantomData<fn() -> T>,
}
read_concerns!(Aggregate<'a, T>);
write_concern!(Aggregate<'a, T>);

session_setter!(Aggregate<'a, T>);

impl<'a, T> Aggregate<'a, T> {
    /// The same aggregation, its results decoded as `U`.
    pub fn with_type<U>(self) -> Aggregate<'a, U> {
        Aggregate {
            target: self.target,
            session: self.session,
            concerns: self.concerns,
            pipeline: self.pipeline,
            options: self.options,
            _type: PhantomData,
        }
    }
}

with_options!(Aggregate<'a, T>, AggregateOptions);
action_future!(Aggregate<'a, T> => Cursor<T>; |this| {
    let core = match this.target {
        Target::Collection(client, db, coll) => {
            let client = super::bind_with(client, this.session, this.concerns)?;
            client.exec_aggregate(db, coll, this.pipeline, this.options).await?
        }
        Target::Database(db) => {
            let db = super::bind_with(db, this.session, this.concerns)?;
            db.exec_aggregate(this.pipeline, this.options).await?
        }
    };
    Ok(Cursor::new(core))
});

/// `countDocuments` ([`Collection::count_documents`](crate::Collection::count_documents)).
#[must_use = "an action does nothing until awaited"]
pub struct CountDocuments<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    concerns: DatabaseOptions,
    filter: Document,
    pub(crate) options: CountOptions,
}
read_concerns!(CountDocuments<'a, T>);

session_setter!(CountDocuments<'a, T>);

with_options!(CountDocuments<'a, T>, CountOptions);
action_future!(CountDocuments<'a, T> => u64; |this| {
    let coll = super::bind_with(this.coll, this.session, this.concerns)?;
    coll.exec_count_documents(this.filter, this.options).await
});

/// The deprecated `count` helper ([`Collection::count`](crate::Collection::count)).
#[must_use = "an action does nothing until awaited"]
pub struct Count<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    concerns: DatabaseOptions,
    filter: Document,
    pub(crate) options: CountOptions,
}
read_concerns!(Count<'a, T>);

session_setter!(Count<'a, T>);
with_options!(Count<'a, T>, CountOptions);
action_future!(Count<'a, T> => u64; |this| {
    let coll = super::bind_with(this.coll, this.session, this.concerns)?;
    coll.exec_count(this.filter, this.options).await
});

/// `estimatedDocumentCount`
/// ([`Collection::estimated_document_count`](crate::Collection::estimated_document_count)).
#[must_use = "an action does nothing until awaited"]
pub struct EstimatedDocumentCount<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    concerns: DatabaseOptions,
    pub(crate) options: EstimatedDocumentCountOptions,
}
read_concerns!(EstimatedDocumentCount<'a, T>);

session_setter!(EstimatedDocumentCount<'a, T>);

with_options!(EstimatedDocumentCount<'a, T>, EstimatedDocumentCountOptions);
action_future!(EstimatedDocumentCount<'a, T> => u64; |this| {
    let coll = super::bind_with(this.coll, this.session, this.concerns)?;
    coll.exec_estimated_count(this.options).await
});

/// `distinct` ([`Collection::distinct`](crate::Collection::distinct)).
#[must_use = "an action does nothing until awaited"]
pub struct Distinct<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    concerns: DatabaseOptions,
    field_name: String,
    filter: Option<Document>,
    pub(crate) options: DistinctOptions,
}
read_concerns!(Distinct<'a, T>);

session_setter!(Distinct<'a, T>);

with_options!(Distinct<'a, T>, DistinctOptions);
action_future!(Distinct<'a, T> => Vec<Bson>; |this| {
    let coll = super::bind_with(this.coll, this.session, this.concerns)?;
    coll
        .exec_distinct(&this.field_name, this.filter, this.options)
        .await
});

/// `mapReduce` with its output inline ([`Collection::map_reduce`](crate::Collection::map_reduce)).
#[must_use = "an action does nothing until awaited"]
pub struct MapReduce<'a, T> {
    coll: &'a Collection<T>,
    session: super::Binding<'a>,
    concerns: DatabaseOptions,
    map: String,
    reduce: String,
}
read_concerns!(MapReduce<'a, T>);

session_setter!(MapReduce<'a, T>);

action_future!(MapReduce<'a, T> => Vec<Document>; |this| {
    let coll = super::bind_with(this.coll, this.session, this.concerns)?;
    coll.exec_map_reduce(&this.map, &this.reduce).await
});

impl<T> Collection<T> {
    /// Runs `mapReduce` over the whole collection with the JavaScript functions `map` (it
    /// calls `emit(key, value)` for `this`, the document) and `reduce` (`(key, values)` to
    /// one value), its output inline: the `{_id: key, value}` documents. Deprecated by the
    /// server in favour of `aggregate`; not retried (retryable reads spec).
    ///
    /// Errors (when awaited): network, selection and command errors (a server without
    /// JavaScript refuses it).
    pub fn map_reduce(
        &self,
        map: impl Into<String>,
        reduce: impl Into<String>,
    ) -> MapReduce<'_, T> {
        MapReduce {
            coll: self,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            map: map.into(),
            reduce: reduce.into(),
        }
    }

    /// Finds the documents matching `filter`: a [`Cursor`] of `T` that runs `getMore` as
    /// needed and kills itself when dropped unfinished. A `tailableAwait` cursor's getMores
    /// carry `maxAwaitTimeMS` as `maxTimeMS`; getMores carry the `comment` (servers 4.4+).
    ///
    /// Errors (when awaited): network, selection and command errors of the first batch.
    pub fn find(&self, filter: Document) -> Find<'_, T> {
        Find {
            coll: self,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            filter,
            options: FindOptions::default(),
        }
    }

    /// The first document matching `filter` (a `find` with `limit: -1`: one batch of one).
    ///
    /// Errors (when awaited): as [`find`](Self::find); a document that does not decode as
    /// `T`.
    pub fn find_one(&self, filter: Document) -> FindOne<'_, T> {
        FindOne {
            coll: self,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            filter,
            options: FindOneOptions::default(),
        }
    }

    /// Runs an aggregation pipeline: a cursor over its results (documents; see
    /// [`Aggregate::with_type`]). A pipeline ending in `$out` or `$merge` is a write: it runs
    /// with the write concern and is not retried; its cursor is empty.
    ///
    /// Errors (when awaited): network, selection and command errors.
    pub fn aggregate(&self, pipeline: impl IntoIterator<Item = Document>) -> Aggregate<'_> {
        Aggregate {
            target: Target::Collection(self.client(), self.database_name(), self.name()),
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            pipeline: pipeline.into_iter().collect(),
            options: AggregateOptions::default(),
            _type: PhantomData,
        }
    }

    /// Counts the documents matching `filter`: the CRUD specification's aggregation
    /// (`$match`, `$skip`, `$limit`, `$group` summing 1). `$match` cannot use `$where`,
    /// `$near` or `$nearSphere`.
    ///
    /// Errors (when awaited): as [`aggregate`](Self::aggregate).
    pub fn count_documents(&self, filter: Document) -> CountDocuments<'_, T> {
        CountDocuments {
            coll: self,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            filter,
            options: CountOptions::default(),
        }
    }

    /// The number of documents matching `filter` by the `count` command: the CRUD
    /// specification's deprecated `count` helper, which may be wrong after an unclean
    /// shutdown or with orphaned documents on a sharded cluster; prefer
    /// [`count_documents`](Self::count_documents) or
    /// [`estimated_document_count`](Self::estimated_document_count).
    ///
    /// Errors (when awaited): network, selection and command errors.
    pub fn count(&self, filter: impl Into<Option<Document>>) -> Count<'_, T> {
        Count {
            coll: self,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            filter: filter.into().unwrap_or_default(),
            options: CountOptions::default(),
        }
    }

    /// An estimate of the number of documents from the collection's metadata: the `count`
    /// command without a filter.
    ///
    /// Errors (when awaited): network, selection and command errors.
    pub fn estimated_document_count(&self) -> EstimatedDocumentCount<'_, T> {
        EstimatedDocumentCount {
            coll: self,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            options: EstimatedDocumentCountOptions::default(),
        }
    }

    /// The distinct values of `field_name` (a dotted path) among the documents matching
    /// `filter` (`None`: all).
    ///
    /// Errors (when awaited): network, selection and command errors.
    pub fn distinct(
        &self,
        field_name: impl Into<String>,
        filter: impl Into<Option<Document>>,
    ) -> Distinct<'_, T> {
        Distinct {
            coll: self,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            field_name: field_name.into(),
            filter: filter.into(),
            options: DistinctOptions::default(),
        }
    }
}

impl Database {
    /// Runs a database-level aggregation (`aggregate: 1`), for collection-less sources such
    /// as `$currentOp`, `$listLocalSessions` or `$documents`.
    ///
    /// Errors (when awaited): network, selection and command errors.
    pub fn aggregate(&self, pipeline: impl IntoIterator<Item = Document>) -> Aggregate<'_> {
        Aggregate {
            target: Target::Database(self),
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            pipeline: pipeline.into_iter().collect(),
            options: AggregateOptions::default(),
            _type: PhantomData,
        }
    }
}
