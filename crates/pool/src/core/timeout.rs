//! Time: when the driver must next call in (`poll_timeout`), the background duties due then
//! (`handle_timeout`: request deadlines, connect timeouts, idle and lifetime expiry, the run
//! after a clear, population), the request-deadline index, and when a connection perished.

use std::collections::VecDeque;
use std::time::Instant;

use mongo_events::EventError;
use mongo_events::cmap::*;

use super::{Action, ConnectionMeta, PoolCore, PoolState};
use crate::PoolError;

impl<C> PoolCore<C> {
    /// Whether [`PoolCore::poll_timeout`] may have moved earlier since the last call to this
    /// method (clears the flag).
    #[inline]
    pub fn take_timeout_changed(&mut self) -> bool {
        std::mem::take(&mut self.timeout_dirty)
    }

    /// When [`PoolCore::handle_timeout`] must next be called: the earliest request deadline
    /// (wait-queue timeout or the request's own), connect deadline, idle or lifetime expiry,
    /// scheduled background run (after a clear) or population retry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == PoolState::Closed {
            return None;
        }
        let mut t = self.bg_due;
        let mut at = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        at(self.deadlines.first().map(|(d, _)| *d));
        at(self.pending.iter().filter_map(|p| p.deadline).min());
        if let Some(max) = self.max_idle {
            at(self.idle.front().and_then(|i| i.since.checked_add(max)));
        }
        if let Some(max) = self.max_lifetime {
            at(self
                .idle
                .iter()
                .filter_map(|i| i.meta.created_at.checked_add(max))
                .min());
        }
        if self.state == PoolState::Ready && self.total() < self.min_pool {
            at(self.populate_after);
        }
        t
    }

    /// The background duties due at `now`: fail requests past their deadline (wait-queue
    /// timeout while queued, their own deadline while queued or covered; a covered request's
    /// connection stays for the next request or the pool), abandon establishments past the
    /// connect timeout, close perished available connections (stale, idle, expired), and
    /// populate to minPoolSize.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == PoolState::Closed {
            return;
        }
        while let Some(&(d, id)) = self.deadlines.first() {
            if d > now {
                break;
            }
            self.deadlines.pop_first();
            let started = if let Some(pos) = self.queue.iter().position(|w| w.id == id) {
                self.queue.remove(pos).map(|w| w.started)
            } else if let Some(pos) = self.covered.iter().position(|c| c.waiter == id) {
                let c = self.covered.remove(pos);
                self.release_pending(c.conn);
                Some(c.started)
            } else {
                None
            };
            if let Some(started) = started {
                let error = self.timeout_error();
                self.fail_waiter(
                    id,
                    started,
                    error,
                    ConnectionCheckOutFailedReason::Timeout,
                    now,
                );
            }
        }
        if let Some(after) = self.connect_timeout {
            while let Some(pos) = self
                .pending
                .iter()
                .position(|p| p.deadline.is_some_and(|d| d <= now))
            {
                let p = self.pending.remove(pos);
                let error = PoolError::ConnectTimeout {
                    address: self.address.clone(),
                    after,
                };
                self.actions.push_back(Action::CancelEstablish { id: p.id });
                self.fail_pending(p, error.clone(), Some(EventError::new(error)), now);
            }
        }
        self.bg_due = None;
        let mut kept = VecDeque::with_capacity(self.idle.len());
        while let Some(idle) = self.idle.pop_front() {
            match self.perished(&idle.meta, Some(idle.since), now) {
                Some(reason) => self.close_conn(idle.conn, &idle.meta, reason, None),
                None => kept.push_back(idle),
            }
        }
        self.idle = kept;
        self.maintain(now);
    }

    pub(super) fn perished(
        &self,
        meta: &ConnectionMeta,
        idle_since: Option<Instant>,
        now: Instant,
    ) -> Option<ConnectionClosedReason> {
        if self.is_stale(meta) {
            return Some(ConnectionClosedReason::Stale);
        }
        if let (Some(max), Some(since)) = (self.max_idle, idle_since) {
            if now.saturating_duration_since(since) >= max {
                return Some(ConnectionClosedReason::Idle);
            }
        }
        if let Some(max) = self.max_lifetime {
            if now.saturating_duration_since(meta.created_at) >= max {
                return Some(ConnectionClosedReason::Expired);
            }
        }
        None
    }

    pub(super) fn track_deadline(&mut self, deadline: Option<Instant>, waiter: u64) {
        if let Some(d) = deadline {
            self.deadlines.insert((d, waiter));
            self.timeout_dirty = true;
        }
    }

    pub(super) fn untrack_deadline(&mut self, deadline: Option<Instant>, waiter: u64) {
        if let Some(d) = deadline {
            self.deadlines.remove(&(d, waiter));
        }
    }
}
