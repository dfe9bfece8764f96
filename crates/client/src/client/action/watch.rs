//! `watch`: a change stream on a collection, a database or the whole deployment.

use std::marker::PhantomData;

use bson::Document;

use crate::client::change_stream::ChangeStream;
use crate::client::{Client, Collection, Database, DatabaseOptions};
use crate::crud::{ChangeStreamEvent, ChangeStreamOptions};
use crate::operation::WatchTarget;

/// `watch`: opens a change stream ([`Collection::watch`], [`Database::watch`],
/// [`Client::watch`]). Its events decode as [`ChangeStreamEvent`]s;
/// [`with_type`](Self::with_type) decodes them as another type (a `Document` for a pipeline
/// that reshapes them).
///
/// Prefer it to an `aggregate` with a `$changeStream` stage: only the change stream resumes
/// after a resumable error. The server takes no read concern but `majority` (or none) on a
/// change stream's aggregate.
#[must_use = "an action does nothing until awaited"]
pub struct Watch<'a, T = ChangeStreamEvent<Document>> {
    client: &'a Client,
    db: &'a str,
    target: WatchTarget,
    session: super::Binding<'a>,
    concerns: DatabaseOptions,
    pipeline: Vec<Document>,
    pub(crate) options: ChangeStreamOptions,
    _type: PhantomData<fn() -> T>,
}
read_concerns!(Watch<'a, T>);

session_setter!(Watch<'a, T>);

with_options!(Watch<'a, T>, ChangeStreamOptions);

impl<'a, T> Watch<'a, T> {
    fn new(
        client: &'a Client,
        db: &'a str,
        target: WatchTarget,
        pipeline: impl IntoIterator<Item = Document>,
    ) -> Self {
        Watch {
            client,
            db,
            target,
            session: super::Binding::default(),
            concerns: DatabaseOptions::default(),
            pipeline: pipeline.into_iter().collect(),
            options: ChangeStreamOptions::default(),
            _type: PhantomData,
        }
    }

    /// The same change stream, its events decoded as `U`.
    pub fn with_type<U>(self) -> Watch<'a, U> {
        Watch {
            client: self.client,
            db: self.db,
            target: self.target,
            session: self.session,
            concerns: self.concerns,
            pipeline: self.pipeline,
            options: self.options,
            _type: PhantomData,
        }
    }
}

action_future!(Watch<'a, T> => ChangeStream<T>; |this| {
    let client = super::bind_with(this.client, this.session, this.concerns)?;
    ChangeStream::open(
        (*client).clone(),
        this.db.to_owned(),
        this.target,
        this.pipeline,
        this.options,
    )
    .await
});

impl<T> Collection<T> {
    /// Opens a change stream on this collection, its events' `fullDocument` and
    /// `fullDocumentBeforeChange` decoded as `T`: the changes to its documents, and its
    /// drop, rename and (with `showExpandedEvents`) DDL events. `pipeline` (possibly empty)
    /// is appended after the `$changeStream` stage: `$match`, `$project`, `$addFields`,
    /// `$replaceRoot`, `$redact` (the server refuses other stages). Options through the
    /// action's setters or [`Watch::with_options`].
    ///
    /// Errors (when awaited): network, selection and command errors of the aggregate.
    pub fn watch(
        &self,
        pipeline: impl IntoIterator<Item = Document>,
    ) -> Watch<'_, ChangeStreamEvent<T>> {
        Watch::new(
            self.client(),
            self.database_name(),
            WatchTarget::Collection(self.name().to_owned()),
            pipeline,
        )
    }
}

impl Database {
    /// Opens a change stream on every collection of this database (server 4.0+), system
    /// collections excepted.
    ///
    /// Errors (when awaited): as [`Collection::watch`].
    pub fn watch(&self, pipeline: impl IntoIterator<Item = Document>) -> Watch<'_> {
        Watch::new(self.client(), self.name(), WatchTarget::Database, pipeline)
    }
}

impl Client {
    /// Opens a change stream on the whole deployment (server 4.0+): every collection of
    /// every database but `admin`, `local` and `config`, system collections excepted.
    ///
    /// Errors (when awaited): as [`Collection::watch`].
    pub fn watch(&self, pipeline: impl IntoIterator<Item = Document>) -> Watch<'_> {
        Watch::new(self, "admin", WatchTarget::Cluster, pipeline)
    }
}
