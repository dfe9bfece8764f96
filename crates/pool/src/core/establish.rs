//! Establishment: creating a connection (within maxPoolSize and maxConnecting), and taking
//! its outcome back with the ticket: a ready connection goes to its request, the queue or
//! the pool; a failure fails its request or delays the next population.

use std::time::Instant;

use mongo_events::cmap::*;
use mongo_events::{ConnectionId, EventError, ServiceId};

use super::{
    Action, ConnectionMeta, Establishing, POPULATE_BACKOFF, Pending, PoolCore, PoolState, Waiter,
};
use crate::PoolError;

impl<C> PoolCore<C> {
    /// The connection of `ticket` finished establishing. `service_id` is the serviceId its
    /// handshake reported (load-balanced mode). Emits `ConnectionReady`, then hands the
    /// connection to the request waiting for it, to the oldest waiting request, or to the
    /// pool. Returns the connection if the pool no longer expects it (its establishment was
    /// cancelled, or the ticket is another pool's).
    pub fn handle_established(
        &mut self,
        ticket: Establishing,
        conn: C,
        service_id: Option<ServiceId>,
        now: Instant,
    ) -> Result<(), C> {
        let Some(pos) = self.pending_pos(&ticket) else {
            return Err(conn);
        };
        let id = ticket.id;
        let p = self.pending.remove(pos);
        let mut generation = p.generation;
        let service_id = if self.load_balanced { service_id } else { None };
        if let Some(s) = service_id {
            let e = self.services.entry(s).or_default();
            e.count += 1;
            generation = e.generation;
        }
        let meta = ConnectionMeta {
            id,
            generation,
            pool_generation: p.generation,
            service_id,
            created_at: p.created_at,
            pool_id: self.pool_id,
        };
        self.emit(|address| {
            CmapEvent::ConnectionReady(ConnectionReadyEvent {
                address,
                connection_id: id,
                duration: now.saturating_duration_since(p.created_at),
            })
        });
        let requester = self.take_covered(p.requester);
        if self.state == PoolState::Closed {
            self.close_conn(conn, &meta, ConnectionClosedReason::PoolClosed, None);
        } else if let Some(reason) = self.perished(&meta, None, now) {
            self.close_conn(conn, &meta, reason, None);
            match requester {
                Some(c) if c.deadline.is_some_and(|d| d <= now) => {
                    let error = self.timeout_error();
                    self.fail_waiter(
                        c.waiter,
                        c.started,
                        error,
                        ConnectionCheckOutFailedReason::Timeout,
                        now,
                    );
                }
                Some(c) => {
                    // Give the request its place back at the head of the queue (its
                    // wait-queue timeout, spent, no longer applies; its own deadline does).
                    self.enqueue(
                        Waiter {
                            id: c.waiter,
                            started: c.started,
                            deadline: c.deadline,
                            own_deadline: c.deadline,
                        },
                        true,
                    );
                }
                None => {}
            }
        } else if let Some(c) = requester {
            self.deliver(c.waiter, c.started, conn, meta, now);
        } else {
            self.offer(conn, meta, now);
        }
        self.maintain(now);
        Ok(())
    }

    fn pending_pos(&self, ticket: &Establishing) -> Option<usize> {
        if ticket.pool_id != self.pool_id {
            return None;
        }
        self.pending.iter().position(|p| p.id == ticket.id)
    }

    /// Whether the connection of `ticket` is being established with no request waiting for it
    /// (a minPoolSize connection, or one whose request was abandoned or timed out): its failure
    /// should go to the background error handler (SDAM), as nobody else will see it.
    pub fn is_unclaimed(&self, ticket: &Establishing) -> bool {
        self.pending_pos(ticket)
            .and_then(|pos| self.pending.get(pos))
            .is_some_and(|p| p.requester.is_none())
    }

    /// Establishing the connection of `ticket` failed, and the driver is about to hand the
    /// error to SDAM, which may clear the pool (the spec's order: `PoolCleared` before the
    /// connection's `ConnectionClosed`). Until [`PoolCore::handle_establish_failed`] takes the
    /// ticket back, a clear leaves the request waiting for this connection attached to it, so
    /// that the request fails with the establishment's own error, not with the clear's
    /// retryable `PoolCleared`. Returns whether the pool still expects the connection.
    pub fn hold_failed_establishment(&mut self, ticket: &Establishing) -> bool {
        let Some(pos) = self.pending_pos(ticket) else {
            return false;
        };
        if let Some(p) = self.pending.get_mut(pos) {
            p.failing = true;
        }
        true
    }

    /// Establishing the connection of `ticket` failed with `error`; `overloaded` says whether
    /// the error may signal an overloaded server (network error or timeout during connect or
    /// `hello`), which adds the `SystemOverloadedError` and `RetryableError` labels. Emits
    /// `ConnectionClosed` (reason `error`) and, if a request was waiting for this connection,
    /// `ConnectionCheckOutFailed` (reason `connectionError`). Returns whether the pool expected
    /// this connection.
    pub fn handle_establish_failed(
        &mut self,
        ticket: Establishing,
        error: EventError,
        overloaded: bool,
        now: Instant,
    ) -> bool {
        let Some(pos) = self.pending_pos(&ticket) else {
            return false;
        };
        let p = self.pending.remove(pos);
        let pool_error = PoolError::Establish {
            address: self.address.clone(),
            source: error.clone(),
            overloaded,
        };
        self.fail_pending(p, pool_error, Some(error), now);
        self.maintain(now);
        true
    }

    pub(super) fn fail_pending(
        &mut self,
        p: Pending,
        pool_error: PoolError,
        event_error: Option<EventError>,
        now: Instant,
    ) {
        self.emit_closed(p.id, ConnectionClosedReason::Error, event_error);
        match self.take_covered(p.requester) {
            Some(c) => self.fail_waiter(
                c.waiter,
                c.started,
                pool_error,
                ConnectionCheckOutFailedReason::ConnectionError,
                now,
            ),
            None => {
                self.populate_after = Some(now.checked_add(POPULATE_BACKOFF).unwrap_or(now));
                self.timeout_dirty = true;
            }
        }
    }

    /// The pending connection `conn` loses its requester (it will go to the next request or
    /// the pool).
    pub(super) fn release_pending(&mut self, conn: ConnectionId) {
        if let Some(p) = self.pending.iter_mut().find(|p| p.id == conn) {
            p.requester = None;
        }
    }

    pub(super) fn can_create(&self) -> bool {
        self.total() < self.max_pool && self.pending.len() < self.max_connecting
    }

    pub(super) fn create(&mut self, requester: Option<u64>, now: Instant) -> ConnectionId {
        let id = ConnectionId(self.next_conn_id);
        self.next_conn_id += 1;
        let deadline = self.connect_timeout.and_then(|t| now.checked_add(t));
        if deadline.is_some() {
            self.timeout_dirty = true;
        }
        self.pending.push(Pending {
            id,
            generation: self.generation,
            created_at: now,
            deadline,
            requester,
            failing: false,
        });
        self.emit(|address| {
            CmapEvent::ConnectionCreated(ConnectionCreatedEvent {
                address,
                connection_id: id,
            })
        });
        self.actions.push_back(Action::Establish {
            ticket: Establishing {
                id,
                generation: self.generation,
                pool_id: self.pool_id,
            },
        });
        id
    }
}
