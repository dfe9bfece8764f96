//! [`Checkout`], the future of a check-out: one lock in the caller's task when a connection is
//! available, else a slot the pool answers; dropping it at any point withdraws the request or
//! gives back a connection handed to it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

#[cfg(doc)]
use super::Pool;
use super::shared::{Shared, Slot, clock};
use super::{Establish, PooledConnection};
use crate::{CheckoutStart, PoolError, WaiterId};

/// The future of [`Pool::checkout`] and [`Pool::checkout_until`].
#[must_use = "futures do nothing unless awaited"]
pub struct Checkout<'a, E: Establish> {
    pub(super) shared: &'a Arc<Shared<E>>,
    pub(super) deadline: Option<Instant>,
    pub(super) waiter: Option<WaiterId>,
    /// The driver's interrupt epoch before the request reached the core: not later than the
    /// epoch when the connection is handed out, so an interrupting clear in between is seen.
    pub(super) epoch: u64,
    pub(super) done: bool,
}

impl<E: Establish> std::fmt::Debug for Checkout<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkout")
            .field("deadline", &self.deadline)
            .field("waiter", &self.waiter)
            .finish()
    }
}

impl<E: Establish> Future for Checkout<'_, E> {
    type Output = Result<PooledConnection<E>, PoolError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.done {
            return Poll::Ready(Err(PoolError::PoolClosed {
                address: self.shared.address.clone(),
            }));
        }
        let shared = self.shared;
        let Some(waiter) = self.waiter else {
            // Read the clock before taking the lock, not while holding it; a deadline needs
            // the real clock.
            let now = if self.deadline.is_some() {
                clock()
            } else {
                shared.hot_now()
            };
            let epoch = shared.interrupt_epoch.load(Ordering::Acquire);
            self.epoch = epoch;
            let mut st = shared.lock();
            return match st.core.handle_checkout_request(now, self.deadline) {
                CheckoutStart::Ready(conn) => {
                    shared.after(st);
                    self.done = true;
                    Poll::Ready(Ok(PooledConnection::new(Arc::clone(shared), conn, epoch)))
                }
                CheckoutStart::Failed(error) => {
                    shared.after(st);
                    self.done = true;
                    Poll::Ready(Err(error))
                }
                CheckoutStart::Waiting(w) => {
                    st.slots.insert(
                        w.seq(),
                        Slot {
                            result: None,
                            waker: Some(cx.waker().clone()),
                        },
                    );
                    self.waiter = Some(w);
                    shared.after(st);
                    Poll::Pending
                }
            };
        };
        let mut st = shared.lock();
        let Some(slot) = st.slots.get_mut(&waiter.seq()) else {
            drop(st);
            self.done = true;
            return Poll::Ready(Err(PoolError::PoolClosed {
                address: shared.address.clone(),
            }));
        };
        match slot.result.take() {
            Some(result) => {
                st.slots.remove(&waiter.seq());
                drop(st);
                self.done = true;
                let epoch = self.epoch;
                Poll::Ready(
                    result.map(|conn| PooledConnection::new(Arc::clone(shared), conn, epoch)),
                )
            }
            None => {
                match &slot.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => slot.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

impl<E: Establish> Drop for Checkout<'_, E> {
    fn drop(&mut self) {
        let (Some(waiter), false) = (self.waiter, self.done) else {
            return;
        };
        let mut st = self.shared.lock();
        let Some(slot) = st.slots.remove(&waiter.seq()) else {
            return;
        };
        let now = clock();
        let leftover = match slot.result {
            Some(Ok(conn)) => st.core.handle_checkin(conn, now).err(),
            Some(Err(_)) => None,
            None => {
                let _ = st.core.cancel_waiter(waiter, now);
                None
            }
        };
        self.shared.after(st);
        drop(leftover);
    }
}
