//! An in-process MongoDB wire-protocol server for tests, examples and benchmarks.
//!
//! [`TestServer::start`] binds an ephemeral loopback port and speaks OP_MSG and legacy
//! OP_QUERY handshakes (through `mongo-wire`); it has SCRAM-SHA-1/256 authentication, an
//! in-memory document store with a small query engine, cursors, the `failCommand` fail point,
//! TLS (rustls), compression (zlib, snappy, zstd) and replica sets ([`ReplicaSet::start`])
//! with awaitable and streaming (exhaust) hello. It also takes the legacy write opcodes
//! (OP_INSERT / OP_UPDATE / OP_DELETE, unanswered, their outcome kept for `getLastError`),
//! MONGODB-X509 authentication from a verified TLS client certificate (also speculative), and a
//! load-balancer mode ([`ServerOptions::with_load_balancer`]) in which hello reports a
//! `serviceId` like a mongos behind a load balancer. Replica-set primaries and mongos routers
//! run multi-document transactions as mongod does: snapshot reads, writes invisible to others
//! until `commitTransaction`, `WriteConflict` between transactions, mongod's errors and
//! labels for ended or unknown transactions, and recovery tokens on mongos. Replica sets,
//! mongos routers and load-balanced mongoses serve change streams (`$changeStream` on a
//! collection, a database or the deployment) from a replication log of every write, with
//! mongod's event shapes, resume tokens, pre- and post-images and awaitData getMores.
//!
//! [`Deployment::start`] builds any of the unified test format's topologies (single,
//! replica set, sharded mongos routers sharing one store, load-balanced mongoses behind
//! in-process TCP balancers) and gives a test runner the URIs, the nodes for targeted fail
//! points, the data and a reset between tests. Fail points follow mongod's
//! `configureFailPoint` (`failCommand`, `failGetMoreAfterCursorCheckout`,
//! `onPrimaryTransactionalWrite`), including on the handshake and monitoring hellos.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mongo_testkit::Error> {
//! use mongo_testkit::{ReplicaSet, ServerOptions, TestServer};
//! let server = TestServer::start(ServerOptions::default().with_user("app", "secret")).await?;
//! println!("{}", server.uri());
//! let rs = ReplicaSet::start("rs0", 3).await?;
//! let new_primary = rs.step_down()?;
//! # let _ = new_primary; Ok(()) }
//! ```
//!
//! Commands that run without authentication when users are configured: hello / isMaster,
//! saslStart, saslContinue, authenticate, ping, buildInfo, logout and endSessions (as on
//! mongod, where ping and buildInfo need no auth). Everything else gets code 13.
#![allow(
    clippy::disallowed_methods,
    reason = "the testkit is a server: it owns its clock, its tasks and its randomness"
)]

mod deployment;
mod error;
mod failpoint;
mod history;
mod lb;
mod legacy;
mod node;
mod oplog;
mod options;
mod query;
mod replication;
mod replset;
mod scram;
mod server;
mod store;
mod tls;
mod topology;
mod txn;

pub use deployment::{Deployment, DeploymentKind, REPLICA_SET_NAME};
pub use error::{Error, codes};
pub use node::{ConnState, MAX_BSON_OBJECT_SIZE, MAX_WRITE_BATCH_SIZE};
pub use options::{ServerOptions, TlsFiles};
pub use replset::ReplicaSet;
pub use server::TestServer;
pub use store::Store;
pub use tls::{TestCerts, generate_test_certs, generate_test_certs_for, generate_test_certs_in};
