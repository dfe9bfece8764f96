//! The client facade: connection strings, options, connections, the topology (one pool and one
//! monitor per server), commands, cursors and command monitoring.

pub mod options;
pub mod uri;

pub use options::{ClientOptions, ClientOptionsBuilder, Credential};
pub use uri::{ConnectionString, HostAddr, UriError};

pub mod error;
pub use error::{Error, ErrorKind, Result};

#[cfg(feature = "tokio")]
pub mod conn;
#[cfg(feature = "tokio")]
pub use conn::{Connection, ConnectionOptions, LegacyWrite, Reply, ServerApi};
pub mod monitoring;
#[cfg(feature = "tokio")]
pub mod topology;
#[cfg(feature = "tokio")]
pub use topology::{PooledConn, ServerPoolStats};
#[cfg(feature = "tokio")]
mod client;
#[cfg(feature = "tokio")]
pub mod cursor;
#[cfg(feature = "tokio")]
pub use client::{
    Client, ClientBuilder, Collection, DEFAULT_SERVER_SELECTION_TIMEOUT, Database, DeleteResult,
    FindOptions, InsertManyResult, InsertOneResult, Request, UpdateResult,
};
#[cfg(feature = "tokio")]
pub use cursor::Cursor;
