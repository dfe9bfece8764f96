//! The pool's lifecycle: ready, clear (the whole pool, or one service in load-balanced
//! mode, with or without interrupting in-use connections) and close, and the generation
//! rules a clear sets up (stale and interrupted connections).

use std::time::Instant;

use mongo_events::cmap::*;
use mongo_events::{EventError, ServiceId};

use super::{Action, ConnectionMeta, PoolCore, PoolState};
use crate::PoolError;

impl<C> PoolCore<C> {
    /// Marks the pool ready (from paused only): emits `PoolReady`, then starts populating.
    pub fn ready(&mut self, now: Instant) {
        if self.state != PoolState::Paused {
            return;
        }
        self.state = PoolState::Ready;
        self.emit(|address| CmapEvent::PoolReady(PoolReadyEvent { address }));
        self.maintain(now);
    }

    /// Clears the pool.
    ///
    /// Without `service_id` (or when not load-balanced): bumps the generation (every current
    /// connection becomes stale), pauses the pool, emits `PoolCleared` unless the pool was
    /// already paused, fails every waiting request with a retryable `PoolCleared` error
    /// (carrying `cause`), and schedules a background run at once to close stale available
    /// connections. With `interrupt_in_use`, connections being established are closed and
    /// in-use ones of the old generations are reported interrupted.
    ///
    /// With a `service_id` in load-balanced mode: bumps that service's generation only and
    /// emits `PoolCleared` with it; the pool is not paused and waiters are not failed.
    pub fn clear(
        &mut self,
        service_id: Option<ServiceId>,
        interrupt_in_use: bool,
        cause: Option<EventError>,
        now: Instant,
    ) {
        if self.state == PoolState::Closed {
            return;
        }
        self.bg_due = Some(now);
        self.timeout_dirty = true;
        if let (true, Some(s)) = (self.load_balanced, service_id) {
            if let Some(e) = self.services.get_mut(&s) {
                e.generation = e.generation.next();
                if interrupt_in_use {
                    e.interrupt_below = e.generation;
                }
            }
            if interrupt_in_use {
                self.interrupt_epoch += 1;
            }
            self.emit(|address| {
                CmapEvent::PoolCleared(PoolClearedEvent {
                    address,
                    service_id: Some(s),
                    interrupt_in_use_connections: interrupt_in_use,
                })
            });
            return;
        }
        let was_paused = self.state == PoolState::Paused;
        self.generation = self.generation.next();
        if interrupt_in_use {
            self.interrupt_below = self.generation;
            self.interrupt_epoch += 1;
        }
        if cause.is_some() {
            self.clear_cause = cause;
        }
        if !self.load_balanced {
            self.state = PoolState::Paused;
        }
        if !was_paused {
            self.emit(|address| {
                CmapEvent::PoolCleared(PoolClearedEvent {
                    address,
                    service_id: None,
                    interrupt_in_use_connections: interrupt_in_use,
                })
            });
        }
        let error = self.cleared_error();
        if interrupt_in_use {
            for p in std::mem::take(&mut self.pending) {
                self.emit_closed(p.id, ConnectionClosedReason::Stale, None);
                self.actions.push_back(Action::CancelEstablish { id: p.id });
                if let Some(c) = self.take_covered(p.requester) {
                    self.fail_waiter(
                        c.waiter,
                        c.started,
                        error.clone(),
                        ConnectionCheckOutFailedReason::ConnectionError,
                        now,
                    );
                }
            }
        }
        if self.load_balanced {
            self.maintain(now);
            return;
        }
        self.fail_all_waiters(&error, ConnectionCheckOutFailedReason::ConnectionError, now);
    }

    fn fail_all_waiters(
        &mut self,
        error: &PoolError,
        reason: ConnectionCheckOutFailedReason,
        now: Instant,
    ) {
        let mut all: Vec<(u64, Instant)> = Vec::new();
        let mut held = Vec::new();
        for c in std::mem::take(&mut self.covered) {
            if self.pending.iter().any(|p| p.id == c.conn && p.failing) {
                // Its establishment failed: it fails with that error, not this one.
                held.push(c);
                continue;
            }
            self.release_pending(c.conn);
            all.push((c.waiter, c.started));
        }
        self.covered = held;
        all.extend(self.queue.drain(..).map(|w| (w.id, w.started)));
        all.sort_by_key(|(id, _)| *id);
        let kept: Vec<(Option<Instant>, u64)> = self
            .covered
            .iter()
            .map(|c| (c.deadline, c.waiter))
            .collect();
        self.deadlines.clear();
        for (deadline, waiter) in kept {
            self.track_deadline(deadline, waiter);
        }
        for (id, started) in all {
            self.fail_waiter(id, started, error.clone(), reason, now);
        }
    }

    /// Closes the pool: closes every available connection (reason `poolClosed`), abandons the
    /// ones being established, emits `PoolClosed`, and fails every waiting request with
    /// `PoolClosed`. In-use connections are closed when checked in.
    pub fn close(&mut self, now: Instant) {
        if self.state == PoolState::Closed {
            return;
        }
        self.state = PoolState::Closed;
        while let Some(idle) = self.idle.pop_front() {
            self.close_conn(
                idle.conn,
                &idle.meta,
                ConnectionClosedReason::PoolClosed,
                None,
            );
        }
        for p in std::mem::take(&mut self.pending) {
            self.emit_closed(p.id, ConnectionClosedReason::PoolClosed, None);
            self.actions.push_back(Action::CancelEstablish { id: p.id });
        }
        self.emit(|address| CmapEvent::PoolClosed(PoolClosedEvent { address }));
        let error = self.closed_error();
        self.fail_all_waiters(&error, ConnectionCheckOutFailedReason::PoolClosed, now);
        self.bg_due = None;
        self.populate_after = None;
    }

    pub(super) fn is_stale(&self, meta: &ConnectionMeta) -> bool {
        if meta.pool_generation != self.generation {
            return true;
        }
        match (self.load_balanced, meta.service_id) {
            (true, Some(s)) => self
                .services
                .get(&s)
                .is_none_or(|e| e.generation != meta.generation),
            _ => false,
        }
    }

    /// Whether a checked-out connection was interrupted by a clear with
    /// `interruptInUseConnections` (its operation should fail with a retryable
    /// [`PoolError::Interrupted`]).
    ///
    /// Always `false` for another pool's connection.
    pub fn is_interrupted(&self, meta: &ConnectionMeta) -> bool {
        if meta.pool_id != self.pool_id {
            return false;
        }
        if meta.pool_generation < self.interrupt_below {
            return true;
        }
        match (self.load_balanced, meta.service_id) {
            (true, Some(s)) => self
                .services
                .get(&s)
                .is_some_and(|e| meta.generation < e.interrupt_below),
            _ => false,
        }
    }
}
