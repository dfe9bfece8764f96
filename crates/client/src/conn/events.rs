//! Command monitoring bookkeeping of a connection: the started event of a monitored command,
//! and the failed event of one abandoned in flight (its future dropped, as when an
//! interrupting pool clear stops it), so that every started event has an outcome.

use std::time::Instant;

use bson::Document;

use super::{CommandParams, Connection};
use crate::error::Error;
use crate::monitoring::CommandInfo;

/// What a command-failed event needs for a command abandoned in flight.
pub(super) struct InFlight {
    name: String,
    db: String,
    request_id: i32,
    operation_id: Option<i64>,
    sensitive: bool,
    started: Instant,
}

impl Connection {
    pub(super) fn emit_started(
        &mut self,
        name: &str,
        db: &str,
        request_id: i32,
        params: &CommandParams,
        sensitive: bool,
        shown: &Document,
    ) {
        let info = CommandInfo {
            name,
            db,
            request_id,
            operation_id: params.operation_id,
            connection: &self.info,
            service_id: self.hello.service_id,
            sensitive,
        };
        self.monitor.started(&info, shown);
        self.in_flight = Some(InFlight {
            name: name.to_owned(),
            db: db.to_owned(),
            request_id,
            operation_id: params.operation_id,
            sensitive,
            started: super::clock(),
        });
    }

    /// Publishes the failed event of a monitored command abandoned in flight (its future was
    /// dropped, as when an interrupting pool clear stops it), so that every started event
    /// has an outcome.
    pub(crate) fn fail_in_flight(&mut self, error: &Error) {
        let Some(f) = self.in_flight.take() else {
            return;
        };
        let info = CommandInfo {
            name: &f.name,
            db: &f.db,
            request_id: f.request_id,
            operation_id: f.operation_id,
            connection: &self.info,
            service_id: self.hello.service_id,
            sensitive: f.sensitive,
        };
        self.monitor.failed(
            &info,
            error,
            None,
            super::clock().saturating_duration_since(f.started),
        );
    }
}
