//! The client facade: connection strings, options, connections, the topology (one pool and one
//! monitor per server), operations run by one executor, cursors and command monitoring.
//!
//! Everything a user needs is reachable from this crate alone: the options and their value
//! types (re-exported from the crates that own them), the monitoring events and listeners
//! ([`event`], the `mongo-events` crate), the [`bson`] crate, and the error types the
//! [`Error`] carries ([`error`]).
//!
//! ```no_run
//! use mongo_client::bson::doc;
//! use mongo_client::event::{EventRecorder, Listeners};
//! use mongo_client::{Client, ClientOptions};
//!
//! # async fn run() -> mongo_client::Result<()> {
//! let recorder = EventRecorder::shared();
//! let mut listeners = Listeners::new();
//! listeners.add_all(recorder.clone());
//! let client = Client::builder()
//!     .options(ClientOptions::parse("mongodb://localhost:27017/?appname=demo")?)
//!     .listeners(listeners)
//!     .build()
//!     .await?;
//! client.run_command("admin", doc! {"ping": 1}).await?;
//! # Ok(())
//! # }
//! ```

pub use bson;
/// Monitoring: every event as data, listener traits, process-wide [`event::register`],
/// per-client [`event::Listeners`], ready-made loggers and a recorder (the `mongo-events`
/// crate).
pub use mongo_events as event;

pub mod crud;
pub mod error;
pub mod options;
pub mod srv;
pub mod uri;

pub use crud::{
    AggregateOptions, BulkWriteOptions, BulkWriteResult, ChangeNamespace, ChangeStreamEvent,
    ChangeStreamOptions, ClientBulkWriteError, ClientBulkWriteOptions, ClientBulkWriteResult,
    ClientUpdateResult, ClientWriteModel, CountOptions, CreateCollectionOptions,
    CreateIndexOptions, CursorType, DeleteModel, DeleteOptions, DeleteResult, DistinctOptions,
    DropIndexOptions, EstimatedDocumentCountOptions, FindOneAndDeleteOptions,
    FindOneAndReplaceOptions, FindOneAndUpdateOptions, FindOneOptions, FindOptions,
    FullDocumentBeforeChangeType, FullDocumentType, GridFsDownloadByNameOptions, GridFsFindOptions,
    GridFsUploadOptions, Hint, IndexModel, IndexOptions, InsertManyOptions, InsertManyResult,
    InsertOneModel, InsertOneOptions, InsertOneResult, ListCollectionsOptions,
    ListDatabasesOptions, ListIndexesOptions, ModifyCollectionOptions, Namespace, OperationType,
    RenameCollectionOptions, ReplaceOneModel, ReplaceOptions, ResumeToken, ReturnDocument,
    RunCursorCommandOptions, SplitEvent, TimeoutMode, UpdateDescription, UpdateModel,
    UpdateModifications, UpdateOptions, UpdateResult, VerboseResults, WriteModel,
};
pub use error::{
    Error, ErrorKind, GridFsError, Result, TimeoutError, TimeoutStage, WriteConcernError,
    WriteError, WriteFailure,
};
pub use options::{
    Acknowledgment, AuthMechanism, ClientOptions, ClientOptionsBuilder, Compressor, Credential,
    HostKind, ProxyOptions, ReadMode, ReadPreference, ResolverConfig, ServerAddress,
    ServerMonitoringMode, TagSet, TlsOptions, WriteConcern,
};
pub use uri::{ConnectionString, UriError};

pub use mongo_events::{ConnectionId, ServerType, TopologyType};
pub use mongo_pool::PoolStats;
pub use mongo_sdam::{ServerDescription, TopologyDescription};

pub mod monitoring;
pub(crate) mod operation;

#[cfg(feature = "tokio")]
mod client;
#[cfg(feature = "tokio")]
pub mod conn;
#[cfg(feature = "tokio")]
pub mod gridfs;
#[cfg(feature = "tokio")]
pub mod topology;

#[cfg(feature = "tokio")]
pub use client::action;
#[cfg(feature = "tokio")]
pub use client::{
    Backoff, BackoffSleep, ChangeStream, Client, ClientBuilder, ClientSession, Collection,
    CollectionOptions, Cursor, DEFAULT_CONNECT_TIMEOUT, DEFAULT_SERVER_SELECTION_TIMEOUT, Database,
    DatabaseOptions, RandomBackoff, ReadConcern, Request, SessionOptions, TransactionOptions,
    TransactionState, UNKNOWN_TRANSACTION_COMMIT_RESULT,
};
#[cfg(feature = "tokio")]
pub use conn::{Connection, ConnectionOptions, DriverInfo, LegacyWrite, Reply, ServerApi};
#[cfg(feature = "tokio")]
pub use gridfs::{GridFsBucket, GridFsBucketOptions, GridFsDownloadStream, GridFsUploadStream};
#[cfg(feature = "tokio")]
pub use topology::{PooledConn, ServerPoolStats};
