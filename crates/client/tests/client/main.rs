//! Integration tests of the client against the in-process testkit server, one module per
//! behaviour. They reach everything through the `mongo_client` facade (plus `mongo_testkit`,
//! the server), never through the lower workspace crates. One binary keeps link time down.
//!
//! Log messages have their own binary (`tests/log_messages.rs`) because they install a tracing
//! subscriber; interop against independent servers lives in `tests/interop.rs`.
#![allow(
    clippy::disallowed_methods,
    reason = "integration tests wait on real time and spawn tasks"
)]

mod common;

mod auth;
mod backpressure;
mod bulk;
mod causal_replication;
mod change_stream_split;
mod change_streams;
mod client_bulk;
mod compression;
mod connection;
mod crud;
mod crud_admin;
mod crud_reads;
mod crud_writes;
mod csot_prose;
mod exhaust;
mod explicit_sessions;
mod gridfs;
mod handles;
mod handshake_errors;
mod immediate_checks;
mod late_replies;
mod legacy_writes;
mod liveness;
mod load_balanced;
mod monitoring;
mod requests;
mod retries;
mod sessions;
mod stable_api;
mod tls;
mod topology;
mod transactions;
mod typed;
