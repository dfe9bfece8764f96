//! Options of a database or collection handle: the read concern, write concern and read
//! preference its operations use instead of the client's (the CRUD spec's "Database" and
//! "Collection" options). A collection inherits what its database sets.

use std::sync::Arc;
use std::time::Duration;

use crate::options::{ReadPreference, WriteConcern};

/// A read concern (`readConcern`): the level reads see.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadConcern {
    /// `level`: `local`, `majority`, `available`, `linearizable` or `snapshot` (sent as given).
    pub level: String,
}

impl ReadConcern {
    /// A read concern of this level.
    pub fn new(level: impl Into<String>) -> Self {
        ReadConcern {
            level: level.into(),
        }
    }

    /// The `readConcern` document sent with a read: `{level: <level>}`.
    pub fn to_document(&self) -> bson::Document {
        bson::doc! { "level": self.level.clone() }
    }
}

/// The options of a [`Database`](super::Database) handle, and of a
/// [`Collection`](super::Collection) one ([`CollectionOptions`]): each unset field falls back
/// to the database's, then to the client's.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct DatabaseOptions {
    /// The read concern of its reads.
    pub read_concern: Option<ReadConcern>,
    /// The write concern of its writes.
    pub write_concern: Option<WriteConcern>,
    /// The read preference of its reads.
    pub read_preference: Option<ReadPreference>,
    /// `timeoutMS` of its operations (client-side operation timeouts): one deadline per
    /// operation; zero means no limit. Unset: the database's, then the client's.
    pub timeout: Option<Duration>,
}

/// The options of a collection handle (the same fields as a database's).
pub type CollectionOptions = DatabaseOptions;

impl DatabaseOptions {
    /// Sets the read concern.
    #[must_use]
    pub fn read_concern(mut self, rc: ReadConcern) -> Self {
        self.read_concern = Some(rc);
        self
    }

    /// Sets the write concern.
    #[must_use]
    pub fn write_concern(mut self, wc: WriteConcern) -> Self {
        self.write_concern = Some(wc);
        self
    }

    /// Sets the read preference.
    #[must_use]
    pub fn read_preference(mut self, rp: ReadPreference) -> Self {
        self.read_preference = Some(rp);
        self
    }

    /// Sets `timeoutMS` (zero: no limit).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// These options over `base`: each field set here wins.
    pub(crate) fn over(&self, base: Option<&DatabaseOptions>) -> DatabaseOptions {
        let base = base.cloned().unwrap_or_default();
        DatabaseOptions {
            read_concern: self.read_concern.clone().or(base.read_concern),
            write_concern: self.write_concern.clone().or(base.write_concern),
            read_preference: self.read_preference.clone().or(base.read_preference),
            timeout: self.timeout.or(base.timeout),
        }
    }
}

/// The options a handle's view of the client carries, with the write concern document built
/// once (the command path borrows it instead of building one per command).
#[derive(Debug)]
pub(crate) struct View {
    pub(crate) options: DatabaseOptions,
    pub(crate) write_concern_document: Option<bson::Document>,
    /// A deadline all the view's operations share (one `timeoutMS` for an operation made of
    /// several, such as a GridFS download or a bulk write's commands; `Some(None)`: no
    /// limit). `None`: each operation starts its own.
    pub(crate) deadline: Option<Option<std::time::Instant>>,
}

impl View {
    pub(crate) fn new(options: DatabaseOptions) -> View {
        View {
            write_concern_document: options
                .write_concern
                .as_ref()
                .and_then(WriteConcern::to_document),
            options,
            deadline: None,
        }
    }
}

/// The handle options a client view carries (shared by the clones of one handle).
pub(crate) type Handle = Option<Arc<View>>;
