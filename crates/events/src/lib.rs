//! Monitoring events for a MongoDB driver, as plain data.
//!
//! The vocabulary types every other crate speaks (server addresses, connection ids, service ids,
//! server and topology types, generations), every monitoring event of the command, CMAP, SDAM
//! and heartbeat families, the listener traits, process-wide `register()` and per-client
//! listener lists.
