//! Check-out and delivery: a check-out request, its place in the FIFO wait queue, the
//! hand-over of a connection to a waiting request (or into the pool), serving the queue and
//! populating to minPoolSize, cancelled requests, and check-ins.

use std::time::{Duration, Instant};

use mongo_events::EventError;
use mongo_events::cmap::*;

use super::{
    Action, CheckedOut, CheckoutStart, ConnectionMeta, Covered, Idle, PoolCore, PoolState,
    Rejected, Waiter, WaiterId,
};
use crate::PoolError;

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl<C> PoolCore<C> {
    /// A check-out request. Emits `ConnectionCheckOutStarted`, then either checks out an
    /// available connection at once, fails (closed or paused pool), or queues the request.
    ///
    /// `deadline` is the request's own deadline (an operation timeout): the request fails with
    /// [`PoolError::WaitQueueTimeout`] (`ConnectionCheckOutFailed` with reason `timeout`) at the
    /// earlier of `deadline` and now + waitQueueTimeoutMS. waitQueueTimeoutMS bounds the
    /// request only while it is in the queue, as CMAP says; `deadline` also bounds it while
    /// it waits for a connection being established for it, which then stays for the pool
    /// (like the connection of a cancelled request). A `deadline` at or before `now` fails the
    /// request at once unless an available connection can be handed out at once; nothing is
    /// established for it. Deadlines are enforced by [`PoolCore::handle_timeout`], which
    /// [`PoolCore::poll_timeout`] schedules.
    pub fn handle_checkout_request(
        &mut self,
        now: Instant,
        deadline: Option<Instant>,
    ) -> CheckoutStart<C> {
        self.emit(|address| {
            CmapEvent::ConnectionCheckOutStarted(ConnectionCheckOutStartedEvent { address })
        });
        match self.state {
            PoolState::Ready => {}
            PoolState::Closed => {
                let error = self.closed_error();
                self.emit_checkout_failed(
                    ConnectionCheckOutFailedReason::PoolClosed,
                    &error,
                    now,
                    now,
                );
                return CheckoutStart::Failed(error);
            }
            PoolState::Paused => {
                let error = self.cleared_error();
                self.emit_checkout_failed(
                    ConnectionCheckOutFailedReason::ConnectionError,
                    &error,
                    now,
                    now,
                );
                return CheckoutStart::Failed(error);
            }
        }
        if self.queue.is_empty() {
            let available = self.idle.len();
            if let Some((conn, meta)) = self.pop_usable_idle(now) {
                self.in_use += 1;
                self.emit(|address| {
                    CmapEvent::ConnectionCheckedOut(ConnectionCheckedOutEvent {
                        address,
                        connection_id: meta.id,
                        duration: Duration::ZERO,
                    })
                });
                if self.idle.len() + 1 < available {
                    // Perished connections were closed on the way: refill to minPoolSize.
                    self.populate(now);
                }
                return CheckoutStart::Ready(CheckedOut { conn, meta });
            }
        }
        if deadline.is_some_and(|d| d <= now) {
            let error = self.timeout_error();
            self.emit_checkout_failed(ConnectionCheckOutFailedReason::Timeout, &error, now, now);
            // Perished connections may have been closed on the way: refill to minPoolSize.
            self.populate(now);
            return CheckoutStart::Failed(error);
        }
        let id = self.new_waiter();
        let queue_deadline = self.wait_queue_timeout.and_then(|t| now.checked_add(t));
        self.enqueue(
            Waiter {
                id,
                started: now,
                deadline: earliest(queue_deadline, deadline),
                own_deadline: deadline,
            },
            false,
        );
        self.maintain(now);
        CheckoutStart::Waiting(self.waiter_id(id))
    }

    /// A waiting request was abandoned (its check-out future was dropped). It leaves the
    /// queue; a connection being established for it stays in the pool for the next request.
    /// No event is emitted. Returns whether the request was still waiting: `false` for
    /// another pool's request, or for one already answered, whose `Deliver` or `FailWaiter`
    /// action is then queued or was drained (a delivered connection must still be checked
    /// in).
    pub fn cancel_waiter(&mut self, waiter: WaiterId, now: Instant) -> bool {
        if waiter.pool != self.pool_id {
            return false;
        }
        if let Some(pos) = self.queue.iter().position(|w| w.id == waiter.seq) {
            if let Some(w) = self.queue.remove(pos) {
                self.remove_deadline(&w);
            }
            return true;
        }
        if let Some(c) = self.take_covered(Some(waiter.seq)) {
            self.release_pending(c.conn);
            self.maintain(now);
            return true;
        }
        false
    }

    /// A checked-out connection comes back. Emits `ConnectionCheckedIn`, then closes it if the
    /// pool is closed or the connection perished (stale or expired), else makes it available
    /// (to the oldest waiting request first).
    pub fn handle_checkin(&mut self, conn: CheckedOut<C>, now: Instant) -> Result<(), Rejected<C>> {
        self.checkin(conn, None, now)
    }

    /// A checked-out connection that failed comes back: it is closed with reason `error`.
    pub fn handle_checkin_errored(
        &mut self,
        conn: CheckedOut<C>,
        error: Option<EventError>,
        now: Instant,
    ) -> Result<(), Rejected<C>> {
        self.checkin(conn, Some(error), now)
    }

    fn checkin(
        &mut self,
        conn: CheckedOut<C>,
        errored: Option<Option<EventError>>,
        now: Instant,
    ) -> Result<(), Rejected<C>> {
        if conn.meta.pool_id != self.pool_id {
            return Err(Rejected {
                error: PoolError::ForeignConnection { id: conn.meta.id.0 },
                conn,
            });
        }
        let CheckedOut { conn, meta } = conn;
        self.in_use = self.in_use.saturating_sub(1);
        self.emit(|address| {
            CmapEvent::ConnectionCheckedIn(ConnectionCheckedInEvent {
                address,
                connection_id: meta.id,
            })
        });
        let reason = if self.state == PoolState::Closed {
            Some((ConnectionClosedReason::PoolClosed, None))
        } else if let Some(error) = errored {
            Some((ConnectionClosedReason::Error, error))
        } else {
            self.perished(&meta, None, now).map(|r| (r, None))
        };
        match reason {
            Some((reason, error)) => {
                self.close_conn(conn, &meta, reason, error);
                self.maintain(now);
            }
            None => self.offer(conn, meta, now),
        }
        Ok(())
    }

    /// A request leaves the queue (its queue deadline no longer applies).
    fn remove_deadline(&mut self, w: &Waiter) {
        self.untrack_deadline(w.deadline, w.id);
    }

    /// Queues a request (at the back, or at the front to give it its place back).
    pub(super) fn enqueue(&mut self, w: Waiter, front: bool) {
        self.track_deadline(w.deadline, w.id);
        if front {
            self.queue.push_front(w);
        } else {
            self.queue.push_back(w);
        }
    }

    /// Removes the covered request at `pos` (and its deadline).
    fn take_covered_at(&mut self, pos: usize) -> Covered {
        let c = self.covered.remove(pos);
        self.untrack_deadline(c.deadline, c.waiter);
        c
    }

    /// Removes the covered request `waiter`, if it is covered (and its deadline).
    pub(super) fn take_covered(&mut self, waiter: Option<u64>) -> Option<Covered> {
        let w = waiter?;
        let pos = self.covered.iter().position(|c| c.waiter == w)?;
        Some(self.take_covered_at(pos))
    }

    fn new_waiter(&mut self) -> u64 {
        let w = self.next_waiter;
        self.next_waiter += 1;
        w
    }

    pub(super) fn deliver(
        &mut self,
        waiter: u64,
        started: Instant,
        conn: C,
        meta: ConnectionMeta,
        now: Instant,
    ) {
        self.in_use += 1;
        self.emit(|address| {
            CmapEvent::ConnectionCheckedOut(ConnectionCheckedOutEvent {
                address,
                connection_id: meta.id,
                duration: now.saturating_duration_since(started),
            })
        });
        self.actions.push_back(Action::Deliver {
            waiter: self.waiter_id(waiter),
            conn: CheckedOut { conn, meta },
        });
    }

    pub(super) fn fail_waiter(
        &mut self,
        waiter: u64,
        started: Instant,
        error: PoolError,
        reason: ConnectionCheckOutFailedReason,
        now: Instant,
    ) {
        self.emit_checkout_failed(reason, &error, started, now);
        self.actions.push_back(Action::FailWaiter {
            waiter: self.waiter_id(waiter),
            error,
        });
    }

    /// Pops the most recently used available connection that has not perished, closing the
    /// perished ones met on the way.
    fn pop_usable_idle(&mut self, now: Instant) -> Option<(C, ConnectionMeta)> {
        while let Some(idle) = self.idle.pop_back() {
            match self.perished(&idle.meta, Some(idle.since), now) {
                Some(reason) => self.close_conn(idle.conn, &idle.meta, reason, None),
                None => return Some((idle.conn, idle.meta)),
            }
        }
        None
    }

    /// An established, usable connection becomes available: the oldest waiting request gets
    /// it, else it goes into the pool.
    pub(super) fn offer(&mut self, conn: C, meta: ConnectionMeta, now: Instant) {
        if let Some(w) = self.queue.pop_front() {
            self.remove_deadline(&w);
            self.deliver(w.id, w.started, conn, meta, now);
        } else if !self.covered.is_empty() {
            // A request waiting for a connection being established takes this one now; the
            // one being established loses its owner and will go into the pool.
            let c = self.take_covered_at(0);
            self.release_pending(c.conn);
            self.deliver(c.waiter, c.started, conn, meta, now);
        } else {
            // The idle expiry follows the oldest available connection, so it only moves when
            // the pool had none; a lifetime expiry may come before every other one.
            if (self.max_idle.is_some() && self.idle.is_empty()) || self.max_lifetime.is_some() {
                self.timeout_dirty = true;
            }
            self.idle.push_back(Idle {
                conn,
                meta,
                since: now,
            });
        }
    }

    /// Serves the wait queue (available connections, owner-less pending ones, new ones) and
    /// populates the pool to minPoolSize.
    pub(super) fn maintain(&mut self, now: Instant) {
        if self.state != PoolState::Ready {
            return;
        }
        while let Some(&head) = self.queue.front() {
            if let Some((conn, meta)) = self.pop_usable_idle(now) {
                self.queue.pop_front();
                self.remove_deadline(&head);
                self.deliver(head.id, head.started, conn, meta, now);
                continue;
            }
            let conn = if let Some(p) = self.pending.iter_mut().find(|p| p.requester.is_none()) {
                p.requester = Some(head.id);
                p.id
            } else if self.can_create() {
                self.create(Some(head.id), now)
            } else {
                break;
            };
            self.queue.pop_front();
            self.remove_deadline(&head);
            self.track_deadline(head.own_deadline, head.id);
            self.covered.push(Covered {
                waiter: head.id,
                started: head.started,
                conn,
                deadline: head.own_deadline,
            });
        }
        self.populate(now);
    }

    fn populate(&mut self, now: Instant) {
        if self.state != PoolState::Ready || self.total() >= self.min_pool {
            return;
        }
        if let Some(t) = self.populate_after {
            if now < t {
                return;
            }
            self.populate_after = None;
        }
        while self.total() < self.min_pool && self.can_create() {
            self.create(None, now);
        }
    }
}
