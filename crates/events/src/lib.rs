//! Monitoring events for a MongoDB driver, as plain data.
//!
//! This crate is the vocabulary the other crates of the workspace speak:
//!
//! - [`ServerAddress`], [`ConnectionId`], [`ServiceId`], [`ServerType`], [`TopologyType`],
//!   [`Generation`];
//! - every monitoring event with the fields its specification names: command events
//!   ([`command`]), the eleven CMAP events ([`cmap`]), server, heartbeat and topology events
//!   ([`sdam`]) whose description snapshots answer `has_writable_server()` and
//!   `has_readable_server()` as PyMongo's do;
//! - listener traits for the five families, in the spirit of PyMongo's listener classes (a
//!   listener implements only the methods it cares about; closures work through
//!   [`FnListener`]);
//! - [`register()`] for process-wide listeners and [`Listeners`] for per-client lists, combined
//!   as PyMongo does: [`Listeners::with_global`] takes the global listeners registered before a
//!   client is built; registering later does not reach existing clients;
//! - ready-made [`loggers`] writing each event through `tracing`, and an [`EventRecorder`] for
//!   tests.
//!
//! Delivery is synchronous, on the emitting task. A listener that panics does not take down the
//! emitter: the panic is caught and logged once. When nobody listens to a family, emitting does
//! not even build the event.
//!
//! ```
//! use std::sync::Arc;
//! use mongo_events::{cmap::*, EventRecorder, FnListener, Listener, Listeners, ServerAddress};
//!
//! let recorder = EventRecorder::shared();
//! let mut listeners = Listeners::new();
//! listeners.add_all(recorder.clone());
//! listeners.add(Listener::pool(FnListener(|e: &CmapEvent| println!("{}", e.name()))));
//! listeners.emit_pool(|| {
//!     CmapEvent::PoolReady(PoolReadyEvent { address: ServerAddress::default() })
//! });
//! assert_eq!(recorder.cmap_names(), ["ConnectionPoolReady"]);
//! ```

pub mod cmap;
pub mod command;
mod error;
mod listener;
pub mod log;
pub mod loggers;
pub mod percent;
mod recorder;
pub mod sdam;
mod types;

pub use error::EventError;
pub use listener::{
    CommandListener, FnListener, HeartbeatListener, Listener, Listeners, PoolListener,
    ServerListener, TopologyListener, register,
};
pub use recorder::{Event, EventRecorder};
pub use types::{
    AddressError, ConnectionId, DEFAULT_PORT, Generation, HostKind, ServerAddress, ServerType,
    ServiceId, TopologyType,
};
