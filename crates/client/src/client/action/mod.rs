//! Actions: what the public operations of [`Collection`](super::Collection) and
//! [`Database`](super::Database) return. An action holds the operation's arguments and
//! options; setters named like the options (`.sort(..)`, `.limit(..)`, `.upsert(..)`) or
//! [`with_options`](Find::with_options) fill them in; awaiting it (`IntoFuture`) runs it:
//!
//! ```no_run
//! # async fn f(coll: mongo_client::Collection) -> mongo_client::Result<()> {
//! use mongo_client::bson::doc;
//! let cursor = coll.find(doc! { "x": { "$gt": 1 } }).sort(doc! { "x": -1 }).limit(10).await?;
//! let n = coll.count_documents(doc! {}).await?;
//! # let _ = (cursor, n); Ok(()) }
//! ```
//!
//! An action does nothing until awaited. Each is a small struct borrowing its handle; the
//! future it becomes is boxed (one allocation per operation) and `Send`.

use std::any::Any;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;

use bson::Document;
use serde::Serialize;

use super::client_session::SharedSession;
use super::{Client, ClientSession, Collection, Database, DatabaseOptions};
use crate::error::{Error, Result};

/// The future an action becomes when awaited.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// `IntoFuture` for an action: `$body` (with the action bound to `$this`) computes the
/// output.
macro_rules! action_future {
    ($name:ident<$($g:tt),*> $(where [$($b:tt)*])? => $out:ty; |$this:ident| $body:expr) => {
        impl<$($g),*> std::future::IntoFuture for $name<$($g),*> $(where $($b)*)? {
            type Output = crate::error::Result<$out>;
            type IntoFuture = crate::client::action::BoxFuture<'a, Self::Output>;

            fn into_future(self) -> Self::IntoFuture {
                let $this = self;
                Box::pin(async move { $body })
            }
        }
    };
}

/// `with_options` for an action whose options are `$opts`.
macro_rules! with_options {
    ($name:ident<$($g:tt),*>, $opts:ty) => {
        impl<$($g),*> $name<$($g),*> {
            /// Sets every option at once (`None` keeps those set so far).
            pub fn with_options(mut self, options: impl Into<Option<$opts>>) -> Self {
                if let Some(options) = options.into() {
                    self.options = options;
                }
                self
            }
        }
    };
}

/// `session` and `timeout` for an action: its operations run in an explicit session, within
/// their own `timeoutMS`.
macro_rules! session_setter {
    ($name:ident<$($g:tt),*>) => {
        impl<$($g),*> $name<$($g),*> {
            /// Runs the operation in `session` (its `lsid`, cluster and operation times,
            /// causal consistency or snapshot reads; a cursor it opens runs its getMores in
            /// it). The session must come from the same client and not have ended.
            pub fn session(
                mut self,
                session: impl Into<Option<&'a mut crate::client::ClientSession>>,
            ) -> Self {
                self.session.session = session.into();
                self
            }

            /// Runs the operation within this `timeoutMS` instead of its handle's (client-side
            /// operation timeouts; zero: no limit). Not allowed for an operation in a session
            /// that runs `with_transaction` with a timeout (the transaction's deadline holds).
            pub fn timeout(mut self, timeout: impl Into<Option<std::time::Duration>>) -> Self {
                self.session.timeout = timeout.into();
                self
            }
        }
    };
}

/// The per-operation concerns of a read action: `read_preference` and `read_concern`.
macro_rules! read_concerns {
    ($name:ident<$($g:tt),*>) => {
        impl<$($g),*> $name<$($g),*> {
            /// Runs the operation with this read preference instead of its handle's.
            pub fn read_preference(mut self, read_preference: crate::options::ReadPreference) -> Self {
                self.concerns.read_preference = Some(read_preference);
                self
            }

            /// Runs the operation with this read concern instead of its handle's.
            pub fn read_concern(mut self, read_concern: crate::client::ReadConcern) -> Self {
                self.concerns.read_concern = Some(read_concern);
                self
            }
        }
    };
}

/// The per-operation concern of a write action: `write_concern`.
macro_rules! write_concern {
    ($name:ident<$($g:tt),*>) => {
        impl<$($g),*> $name<$($g),*> {
            /// Runs the operation with this write concern instead of its handle's.
            pub fn write_concern(mut self, write_concern: crate::options::WriteConcern) -> Self {
                self.concerns.write_concern = Some(write_concern);
                self
            }
        }
    };
}

mod admin;
mod read;
mod watch;
mod write;

pub use admin::{
    CreateCollection, CreateIndex, CreateIndexes, DropCollection, DropDatabase, DropIndex,
    ListCollectionNames, ListCollections, ListDatabaseNames, ListDatabases, ListIndexNames,
    ListIndexes, ModifyCollection, RenameCollection, RunCommand, RunCursorCommand,
};
pub use read::{
    Aggregate, Count, CountDocuments, Distinct, EstimatedDocumentCount, Find, FindOne, MapReduce,
};
pub use watch::Watch;
pub use write::{
    BulkWrite, ClientBulkWrite, Delete, FindOneAndDelete, FindOneAndReplace, FindOneAndUpdate,
    InsertMany, InsertOne, Replace, Update,
};

/// A handle an operation runs on: the action's own, or a view of it bound to an explicit
/// session.
pub(crate) enum Bound<'a, H> {
    Borrowed(&'a H),
    Owned(H),
}

impl<H> Deref for Bound<'_, H> {
    type Target = H;

    fn deref(&self) -> &H {
        match self {
            Bound::Borrowed(h) => h,
            Bound::Owned(h) => h,
        }
    }
}

/// A handle that can run its operations in an explicit session.
pub(crate) trait SessionTarget: Sized {
    /// The client it runs on.
    fn client_of(&self) -> &Client;
    /// The same handle, its operations bound to `shared`.
    fn in_session(&self, shared: SharedSession) -> Self;
    /// The same handle with `options` over its own (an operation's concerns).
    fn with_concerns(&self, options: DatabaseOptions) -> Self;
}

impl SessionTarget for Client {
    fn client_of(&self) -> &Client {
        self
    }

    fn in_session(&self, shared: SharedSession) -> Self {
        let mut view = self.clone();
        view.bound_session = Some(shared);
        view
    }

    fn with_concerns(&self, options: DatabaseOptions) -> Self {
        self.with_handle(options)
    }
}

impl SessionTarget for Database {
    fn client_of(&self) -> &Client {
        self.client()
    }

    fn in_session(&self, shared: SharedSession) -> Self {
        Database::new(self.client().in_session(shared), self.name())
    }

    fn with_concerns(&self, options: DatabaseOptions) -> Self {
        Database::new(self.client().with_handle(options), self.name())
    }
}

impl<T> SessionTarget for Collection<T> {
    fn client_of(&self) -> &Client {
        self.client()
    }

    fn in_session(&self, shared: SharedSession) -> Self {
        Collection::new(
            self.client().in_session(shared),
            self.database_name(),
            self.name(),
        )
    }

    fn with_concerns(&self, options: DatabaseOptions) -> Self {
        Collection::new(
            self.client().with_handle(options),
            self.database_name(),
            self.name(),
        )
    }
}

/// How an action binds its operations: the explicit session and the operation's own
/// `timeoutMS`.
#[derive(Default)]
pub(crate) struct Binding<'a> {
    pub(crate) session: Option<&'a mut ClientSession>,
    pub(crate) timeout: Option<std::time::Duration>,
}

/// The handle an action's operations run on: `handle` itself, or, with a session or an
/// operation `timeoutMS`, a view of it bound to them.
///
/// # Errors
/// The session was started by another client, or has ended; an operation `timeoutMS` in a
/// session whose `with_transaction` runs with a timeout.
pub(crate) fn bind<'a, H: SessionTarget>(
    handle: &'a H,
    binding: Binding<'_>,
) -> Result<Bound<'a, H>> {
    bind_with(handle, binding, DatabaseOptions::default())
}

/// As [`bind`], with the operation's own read preference, read concern and write concern
/// (`concerns`) over the handle's.
///
/// # Errors
/// As [`bind`].
pub(crate) fn bind_with<'a, H: SessionTarget>(
    handle: &'a H,
    binding: Binding<'_>,
    mut concerns: DatabaseOptions,
) -> Result<Bound<'a, H>> {
    let Binding { session, timeout } = binding;
    if timeout.is_some() {
        if let Some(session) = &session
            && session.shared().lock().callback_deadline.is_some()
        {
            return Err(Error::invalid_argument(
                "timeoutMS cannot be set on an operation in a with_transaction callback whose \
                 session has a timeout",
            ));
        }
        concerns.timeout = timeout;
    }
    if concerns == DatabaseOptions::default() {
        return match session {
            None => Ok(Bound::Borrowed(handle)),
            Some(session) => {
                let shared = session.shared();
                shared.check(handle.client_of())?;
                Ok(Bound::Owned(handle.in_session(shared)))
            }
        };
    }
    let view = handle.with_concerns(concerns);
    match session {
        None => Ok(Bound::Owned(view)),
        Some(session) => {
            let shared = session.shared();
            shared.check(view.client_of())?;
            Ok(Bound::Owned(view.in_session(shared)))
        }
    }
}

/// Encodes a value as a document; a `Document` is cloned, not re-encoded.
pub(crate) fn encode<T: Serialize + 'static>(value: &T) -> Result<Document> {
    if let Some(d) = (value as &dyn Any).downcast_ref::<Document>() {
        return Ok(d.clone());
    }
    bson::serialize_to_document(value).map_err(|e| {
        Error::invalid_argument(format!(
            "a {} does not encode as a BSON document: {e}",
            std::any::type_name::<T>()
        ))
    })
}

#[cfg(test)]
mod tests {
    use bson::doc;
    use serde::Serialize;

    use super::encode;

    #[derive(Serialize)]
    struct Point {
        x: i32,
    }

    #[test]
    fn values_encode_as_documents() {
        assert_eq!(encode(&doc! {"a": 1}).unwrap(), doc! {"a": 1});
        assert_eq!(encode(&Point { x: 3 }).unwrap(), doc! {"x": 3});
        // A value that is not a document at the top level is refused with its type named.
        let e = encode(&5_i32).unwrap_err();
        assert!(e.to_string().contains("i32"), "{e}");
    }
}
